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
