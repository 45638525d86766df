import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT, ServiceProcess, workerScript } from './support/processes.js';
import { REDIS_URL, deletePrefix, uniquePrefix } from './support/redis.js';

// Issue 12 item 6: the worker ships no demo-model builder. packages/inference and apps/worker
// import nothing of packages/tiny-models (checked by `npm run lint`), and a worker whose models
// are missing says so instead of building them.

const check = (root?: string) =>
  spawnSync(process.execPath, [join(ROOT, 'scripts/check-boundaries.mjs'), ...(root ? [root] : [])], { encoding: 'utf8' });

const temps: string[] = [];
afterAll(async () => {
  for (const dir of temps) await rm(dir, { recursive: true, force: true });
});

describe('packages/inference and apps/worker depend on nothing of packages/tiny-models', () => {
  it('holds for this repository', () => {
    const run = check();
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
  });

  it('the check fails, naming the file, on an import, a runtime dependency or a tsconfig reference', async () => {
    const root = await mkdtemp(join(tmpdir(), 'inferq-boundaries-'));
    temps.push(root);
    await mkdir(join(root, 'packages/inference/src/pipelines'), { recursive: true });
    await mkdir(join(root, 'apps/worker/src'), { recursive: true });
    await writeFile(join(root, 'packages/inference/src/pipelines/x.ts'), "import { build } from '../../../tiny-models/src/index.js';\n");
    await writeFile(join(root, 'apps/worker/src/main.ts'), "const m = await import('@inferq/tiny-models');\n");
    await writeFile(join(root, 'apps/worker/package.json'), JSON.stringify({ dependencies: { '@inferq/tiny-models': '*' } }));
    await writeFile(join(root, 'apps/worker/tsconfig.json'), JSON.stringify({ references: [{ path: '../../packages/tiny-models' }] }));
    const run = check(root);
    expect(run.status).toBe(1);
    for (const named of ['packages/inference/src/pipelines/x.ts', 'apps/worker/src/main.ts', 'apps/worker/package.json', 'apps/worker/tsconfig.json']) {
      expect(run.stderr).toContain(named);
    }
  });

  it('a worker whose model is missing from MODELS_DIR builds nothing: it says so and stops', async () => {
    const modelsDir = await mkdtemp(join(tmpdir(), 'inferq-no-models-'));
    temps.push(modelsDir);
    const prefix = uniquePrefix('no-models');
    const worker = ServiceProcess.start('worker', workerScript, {
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      MODELS_DIR: modelsDir,
      WORKER_MODELS: 'inferq/tiny-bert-classifier',
      METRICS_PORT: '0',
    });
    const code = await worker.exited;
    await deletePrefix(prefix);
    expect(code).toBe(1);
    expect(worker.lines.some((l) => l.model === 'inferq/tiny-bert-classifier' && /could not be loaded/.test(String(l.msg)))).toBe(true);
    expect(await readdir(modelsDir)).toEqual([]);
  });
});
