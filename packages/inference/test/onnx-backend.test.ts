import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableDevices, createSession, onnxFile } from '../src/index.js';
import { tinyClassifier } from './helpers.js';

let file: string;
let cleanup: () => Promise<void>;

beforeAll(async () => {
  const model = await tinyClassifier();
  cleanup = model.cleanup;
  file = await onnxFile(model.dir);
});
afterAll(() => cleanup());

describe('onnx backend', () => {
  it('lists cpu and the bundled webgpu provider', () => {
    expect(availableDevices()).toEqual(expect.arrayContaining(['cpu', 'webgpu']));
  });

  it('runs on webgpu where an adapter exists, and otherwise falls back to cpu and says why', async () => {
    const fallbacks: string[] = [];
    const session = await createSession(file, { device: 'webgpu', onFallback: (requested, reason) => fallbacks.push(`${requested}: ${reason}`) });
    try {
      if (session.device === 'cpu') expect(fallbacks).toEqual([expect.stringMatching(/^webgpu: .+/)]);
      else expect(fallbacks).toEqual([]);
      expect(session.inputNames).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
    } finally {
      await session.release();
    }
  });

  /** A batch of 64 rows of 128 tokens: long enough to outlast many event-loop turns. */
  function bigBatch() {
    const n = 64 * 128;
    const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(5 + (i % 600)));
    const ones = new BigInt64Array(n).fill(1n);
    return {
      input_ids: { type: 'int64' as const, data: ids, dims: [64, 128] },
      attention_mask: { type: 'int64' as const, data: ones, dims: [64, 128] },
      token_type_ids: { type: 'int64' as const, data: new BigInt64Array(n), dims: [64, 128] },
    };
  }

  /** Event-loop turns (setImmediate) taken while `work` runs. */
  async function turnsDuring(work: Promise<unknown>): Promise<number> {
    let done = false;
    void work.finally(() => (done = true));
    let turns = 0;
    while (!done) {
      await new Promise((r) => setImmediate(r));
      turns++;
    }
    return turns;
  }

  it('runs on a thread of its own: the same outputs, and the event loop keeps turning during a run', async () => {
    const threaded = await createSession(file);
    const inline = await createSession(file, { thread: false });
    try {
      expect(threaded.inputNames).toEqual(inline.inputNames);
      expect(threaded.inputInfo).toEqual(inline.inputInfo);
      const feeds = bigBatch();
      const a = await threaded.run(feeds);
      const b = await inline.run(feeds);
      expect(a.logits?.dims).toEqual([64, 2]);
      expect([...(a.logits?.data ?? [])]).toEqual([...(b.logits?.data ?? [])]);
      // The caller's inputs are copied, not moved: still there after the run.
      expect(feeds.input_ids.data.length).toBe(64 * 128);
      // onnxruntime-node's own run blocks the caller's event loop for the whole run; the
      // thread's doesn't (a worker keeps fetching jobs and renewing locks meanwhile).
      expect(await turnsDuring(inline.run(bigBatch()))).toBeLessThanOrEqual(3);
      expect(await turnsDuring(threaded.run(bigBatch()))).toBeGreaterThan(10);
    } finally {
      await threaded.release();
      await inline.release();
    }
  });

  it("rejects a bad run with onnxruntime's message, and a run after release", async () => {
    const session = await createSession(file);
    const feeds = bigBatch();
    await expect(session.run({ ...feeds, attention_mask: { ...feeds.attention_mask, dims: [64, 127] } })).rejects.toThrow(/size\(8128\) does not match/);
    // The thread is still usable after a failed run.
    expect((await session.run(feeds)).logits?.dims).toEqual([64, 2]);
    await session.release();
    await expect(session.run(feeds)).rejects.toThrow(/session thread exited/);
  });

  it('reports a missing ONNX file by name', async () => {
    await expect(onnxFile('/nonexistent-model')).rejects.toThrow(/onnx\/model\.onnx/);
  });
});

describe('onnxFile', () => {
  it('uses a variant when the folder has only that one (as `models pull --variant` leaves it)', async () => {
    const { mkdtemp, mkdir, writeFile, rm } = await import('node:fs/promises');
    const { join } = await import('node:path');
    const { tmpdir } = await import('node:os');
    const dir = await mkdtemp(join(tmpdir(), 'inferq-variant-'));
    try {
      await mkdir(join(dir, 'onnx'));
      await writeFile(join(dir, 'onnx', 'model_quantized.onnx'), '');
      expect(await onnxFile(dir)).toBe(join(dir, 'onnx', 'model_quantized.onnx'));
      await writeFile(join(dir, 'onnx', 'model.onnx'), '');
      expect(await onnxFile(dir)).toBe(join(dir, 'onnx', 'model.onnx'));
      await expect(onnxFile(dir, 'model', 'fp16')).rejects.toThrow(/model_fp16\.onnx/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
