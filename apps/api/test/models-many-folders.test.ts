import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createModelCatalog } from '../src/plugins/model-catalog.js';

/**
 * Issue 15 item 4: `GET /v1/models` with 20,000 model folders held the API's event loop for
 * 10 s (the catalog scanned its whole cache on every insert past 1,024 entries). The listing
 * must be linear and let the event loop run while it reads.
 */
const ORGS = 40;
const PER_ORG = 500;

let modelsDir: string;
beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'inferq-many-models-'));
  const config = JSON.stringify({ architectures: ['BertForSequenceClassification'], id2label: { '0': 'no', '1': 'yes' } });
  for (let o = 0; o < ORGS; o++) {
    await Promise.all(
      Array.from({ length: PER_ORG }, async (_, n) => {
        const dir = join(modelsDir, `org${o}`, `model${n}`);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'config.json'), config);
      }),
    );
  }
}, 120_000);
afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

describe('model catalog with 20,000 folders', () => {
  it('lists every model, and the event loop keeps running while it reads them', { timeout: 120_000 }, async () => {
    const models = createModelCatalog({ modelsDir, defaults: { classification: 'org0/model0' }, cacheTtlMs: 60_000 });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    let ticks = 0;
    const ticker = setInterval(() => ticks++, 5);
    delay.enable();
    const listed = await models.list();
    delay.disable();
    clearInterval(ticker);

    expect(listed).toHaveLength(ORGS * PER_ORG);
    expect(listed.map((m) => m.id)).toEqual([...listed.map((m) => m.id)].sort());
    expect(listed.find((m) => m.id === 'org0/model0')).toMatchObject({ tasks: ['classification'], default_for: ['classification'] });
    // The listing yields between small groups of reads: a timer set to fire every 5 ms ran
    // many times during it, and no stretch held the loop anywhere near the old 10 s.
    expect(ticks).toBeGreaterThan(10);
    expect(delay.max / 1e6).toBeLessThan(1000);

    // Reading it again comes from the cache: the same 20,000 entries, all kept.
    const again = await models.list();
    expect(again).toHaveLength(ORGS * PER_ORG);
  });

  it('30,000 lookups of absent ids stay cheap: the cache prunes in order, not by scanning', { timeout: 60_000 }, async () => {
    const models = createModelCatalog({ modelsDir, defaults: { classification: 'org0/model0' }, cacheTtlMs: 60_000 });
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    for (let start = 0; start < 30_000; start += 1000) {
      const found = await Promise.all(Array.from({ length: 1000 }, (_, i) => models.get(`absent/model${start + i}`)));
      expect(found.every((f) => f === undefined)).toBe(true);
    }
    delay.disable();
    expect(delay.max / 1e6).toBeLessThan(1000);
    await expect(models.get('org3/model7')).resolves.toMatchObject({ id: 'org3/model7' });
  });
});
