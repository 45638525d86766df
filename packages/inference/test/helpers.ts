import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureModel, TINY_CLASSIFIER_ID } from '@inferq/tiny-models';

/** Builds the tiny classifier into a fresh temp models folder. */
export async function tinyClassifier(): Promise<{ modelsDir: string; dir: string; id: string; cleanup: () => Promise<void> }> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'inferq-models-'));
  const dir = await ensureModel(modelsDir, TINY_CLASSIFIER_ID);
  return { modelsDir, dir, id: TINY_CLASSIFIER_ID, cleanup: () => rm(modelsDir, { recursive: true, force: true }) };
}

/** Review-like texts of very different lengths, written for these tests. */
export const TEXTS = [
  'Great product, works as described.',
  'The login page keeps rejecting my password and support never answered.',
  'bad',
  'I waited three weeks for shipping, the box arrived damaged, and the refund took another month. Never again, although the price was good and the item itself is fine once you replace the broken charger.',
  'Love it!',
  'The app crashes every time I open the settings screen on my phone.',
  'Invoice numbers are wrong on every bill since the last update; please fix the billing export.',
  'ok',
];

/** Builds models by id (`DEFAULT_MODELS` presets) into a fresh temp models folder. */
export async function tinyModels(ids: string[]): Promise<{ modelsDir: string; dirs: Record<string, string>; cleanup: () => Promise<void> }> {
  const modelsDir = await mkdtemp(join(tmpdir(), 'inferq-models-'));
  const dirs: Record<string, string> = {};
  for (const id of ids) dirs[id] = await ensureModel(modelsDir, id);
  return { modelsDir, dirs, cleanup: () => rm(modelsDir, { recursive: true, force: true }) };
}

/** Points transformers.js at a local models folder, offline, as the parity tests need. */
export function useLocalModels(env: { localModelPath: string; allowRemoteModels: boolean; allowLocalModels: boolean }, modelsDir: string): void {
  env.localModelPath = modelsDir;
  env.allowRemoteModels = false;
  env.allowLocalModels = true;
}

/** Tokens up to and including the first of `eos` (all of them when none is there). */
export function upToEos(tokens: readonly number[], eos: readonly number[]): number[] {
  const at = tokens.findIndex((t) => eos.includes(t));
  return at < 0 ? [...tokens] : tokens.slice(0, at + 1);
}

/** Support-desk style texts of different lengths, written for these tests. */
export const TICKETS = [
  'The delivery was late and the box was damaged, so I want a refund.',
  'I love this phone, the battery lasts for days.',
  'hello',
  'My password does not work since the last update and the app crashes every time I open the settings screen on my laptop.',
];

/**
 * A StepModel that generates a script: row `r` gets `scripts[r][n]` as its n-th token
 * (the logit of that token is 10, every other 0), for tests that need exact outputs.
 */
export class ScriptedModel {
  private rows: { script: readonly number[]; at: number }[];
  /** Rows in each step's batch. */
  readonly batchSizes: number[] = [];
  constructor(
    scripts: readonly (readonly number[])[],
    private readonly vocab: number,
  ) {
    this.rows = scripts.map((script) => ({ script, at: 0 }));
  }
  private logits(): Float32Array[] {
    this.batchSizes.push(this.rows.length);
    return this.rows.map(({ script, at }) => {
      const l = new Float32Array(this.vocab);
      const t = script[Math.min(at, script.length - 1)];
      if (t !== undefined) l[t] = 10;
      return l;
    });
  }
  async start(): Promise<Float32Array[]> {
    return this.logits();
  }
  async next(tokens: readonly number[]): Promise<Float32Array[]> {
    this.rows.forEach((r, i) => {
      if (tokens[i] !== undefined) r.at++;
    });
    return this.logits();
  }
  select(rows: readonly number[]): void {
    this.rows = rows.map((r) => ({ ...this.rows[r]! }));
  }
}
