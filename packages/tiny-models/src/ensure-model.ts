/**
 * Builds a model into `MODELS_DIR/<org>/<name>` once. The model is written to a temporary
 * sibling folder and renamed into place, so a reader (or a second process building the
 * same model at the same time) sees either no folder or a complete one.
 */
import { access, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BENCH_CLASSIFIER, buildBertClassifier, TINY_CLASSIFIER, type BertClassifierPreset } from './bert-classifier.js';

/** Id of the tiny classifier that tests use. */
export const TINY_CLASSIFIER_ID = 'inferq/tiny-bert-classifier';
/** Id of the bench-sized classifier that benchmarks use. */
export const BENCH_CLASSIFIER_ID = 'inferq/bench-bert-classifier';

/** The models this package builds by default, by model id. */
export const DEFAULT_MODELS: Readonly<Record<string, BertClassifierPreset>> = Object.freeze({
  [TINY_CLASSIFIER_ID]: TINY_CLASSIFIER,
  [BENCH_CLASSIFIER_ID]: BENCH_CLASSIFIER,
});

const ID_PART = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

/** Splits `<org>/<name>`; throws on anything else (no `..`, no further slashes). */
export function parseModelId(id: string): { org: string; name: string } {
  const [org, name, ...rest] = id.split('/');
  if (org === undefined || name === undefined || rest.length > 0 || !ID_PART.test(org) || !ID_PART.test(name)) {
    throw new Error(`model id must look like "<org>/<name>", got "${id}"`);
  }
  return { org, name };
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

function isTargetTaken(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'EPERM' || code === 'EISDIR';
}

/**
 * Returns the folder of model `id` under `modelsDir`, building it first if its
 * `onnx/model.onnx` is missing. A model already there is left as it is, whatever preset
 * built it.
 *
 * @param modelsDir - the models root (`MODELS_DIR`); created if missing.
 * @param id - `<org>/<name>`; the model lands in `modelsDir/<org>/<name>`.
 * @param preset - sizes, labels and seed; defaults to `DEFAULT_MODELS[id]`, and is
 *   required for any other id.
 * @returns the model's folder.
 */
export async function ensureModel(modelsDir: string, id: string, preset?: BertClassifierPreset): Promise<string> {
  const { org, name } = parseModelId(id);
  const spec = preset ?? DEFAULT_MODELS[id];
  if (spec === undefined) {
    throw new Error(`no preset for model "${id}": pass one, or use one of ${Object.keys(DEFAULT_MODELS).join(', ')}`);
  }
  const target = join(modelsDir, org, name);
  const marker = join(target, 'onnx', 'model.onnx');
  if (await exists(marker)) return target;

  const parent = join(modelsDir, org);
  await mkdir(parent, { recursive: true });
  const temp = await mkdtemp(join(parent, `.${name}.tmp-`));
  try {
    await buildBertClassifier({ ...spec, dir: temp });
    try {
      await rename(temp, target);
      return target;
    } catch (error) {
      if (!isTargetTaken(error)) throw error;
    }
    // The target exists: another process finished first, or a folder without a model
    // (say, a half-copied one) is in the way.
    if (await exists(marker)) return target;
    const stale = `${temp}.stale`;
    await rename(target, stale);
    try {
      await rename(temp, target);
    } catch (error) {
      if (!(isTargetTaken(error) && (await exists(marker)))) throw error;
    }
    await rm(stale, { recursive: true, force: true });
    return target;
  } finally {
    await rm(temp, { recursive: true, force: true });
  }
}
