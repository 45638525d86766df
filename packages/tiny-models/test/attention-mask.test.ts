import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceSession } from 'onnxruntime-node';
import { buildBertClassifier, SPECIAL_TOKEN_IDS, TINY_CLASSIFIER } from '../src/index.js';
import { createSession, loadTokenizer, logits, maxAbsDiff } from './helpers.js';

let root: string;
let session: InferenceSession;
let ids: number[];

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tiny-models-mask-'));
  const dir = join(root, 'tiny');
  await buildBertClassifier({ ...TINY_CLASSIFIER, dir });
  session = await createSession(dir);
  ids = (await loadTokenizer(dir)).encode('The refund never arrived and support is slow').ids;
});

afterAll(async () => {
  await session?.release();
  await rm(root, { recursive: true, force: true });
});

describe('attention mask and positions', () => {
  it('ignores right padding that the mask hides', async () => {
    const padded = [...ids, ...Array<number>(7).fill(SPECIAL_TOKEN_IDS.pad)];
    const mask = padded.map((_, i) => (i < ids.length ? 1 : 0));
    const alone = await logits(session, [ids]);
    expect(maxAbsDiff(await logits(session, [padded], [mask]), alone)).toBeLessThan(1e-5);
  });

  it('ignores padding in a batch with a longer row', async () => {
    const other = [SPECIAL_TOKEN_IDS.cls, ...Array<number>(ids.length + 5).fill(42), SPECIAL_TOKEN_IDS.sep];
    const padded = [...ids, ...Array<number>(other.length - ids.length).fill(SPECIAL_TOKEN_IDS.pad)];
    const batch = await logits(session, [padded, other], [padded.map((_, i) => (i < ids.length ? 1 : 0)), other.map(() => 1)]);
    expect(maxAbsDiff([batch[0]!], await logits(session, [ids]))).toBeLessThan(1e-5);
  });

  it('changes its output when the padding is attended to', async () => {
    const padded = [...ids, ...Array<number>(7).fill(SPECIAL_TOKEN_IDS.pad)];
    const alone = await logits(session, [ids]);
    expect(maxAbsDiff(await logits(session, [padded], [padded.map(() => 1)]), alone)).toBeGreaterThan(1e-3);
  });

  it('depends on token order', async () => {
    const swapped = [...ids];
    [swapped[1], swapped[2]] = [ids[2]!, ids[1]!];
    expect(swapped).not.toEqual(ids);
    expect(maxAbsDiff(await logits(session, [swapped]), await logits(session, [ids]))).toBeGreaterThan(1e-3);
  });
});
