/**
 * Builds a model into `MODELS_DIR/<org>/<name>` once. The model is written to a temporary
 * sibling folder and renamed into place, so a reader (or a second process building the
 * same model at the same time) sees either no folder or a complete one.
 */
import { access, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBart, TINY_BART, type BartPreset } from './bart-model.js';
import { BENCH_CLASSIFIER, buildBertClassifier, TINY_CLASSIFIER, TINY_NLI, type BertClassifierPreset } from './bert-classifier.js';
import { BENCH_LLAMA, BENCH_LLAMA_152K, buildLlama, TINY_LLAMA, type LlamaPreset } from './llama-model.js';
import { BENCH_EMBEDDINGS, buildSentenceTransformer, TINY_EMBEDDINGS, TINY_EMBEDDINGS_CLS, type SentenceTransformerPreset } from './sentence-transformer.js';
import { buildStarterModel, type StarterModelPreset } from './starter-models.js';

/** Id of the tiny classifier that tests use. */
export const TINY_CLASSIFIER_ID = 'inferq/tiny-bert-classifier';
/** Id of the bench-sized classifier that benchmarks use. */
export const BENCH_CLASSIFIER_ID = 'inferq/bench-bert-classifier';
/** Id of the tiny NLI classifier (zero-shot classification). */
export const TINY_NLI_ID = 'inferq/tiny-nli';
/** Id of the tiny BART encoder-decoder (summarization). */
export const TINY_BART_ID = 'inferq/tiny-bart';
/** Id of the tiny Llama decoder-only LM (text generation, chat). */
export const TINY_LLAMA_ID = 'inferq/tiny-llama';
/** Id of the bench-sized decoder-only LM that benchmarks use. */
export const BENCH_LLAMA_ID = 'inferq/bench-llama';
/** Id of the bench-sized decoder-only LM with a 152k vocabulary (Qwen2.5's size). */
export const BENCH_LLAMA_152K_ID = 'inferq/bench-llama-152k';
/** Id of the starter sentiment model (`negative`, `positive`): trained weights, sensible answers. */
export const STARTER_SENTIMENT_ID = 'inferq/starter-sentiment';
/** Id of the starter ticket classifier (billing, login and account, bug, ...): a keyword table. */
export const STARTER_TICKETS_ID = 'inferq/starter-tickets';
/** Id of the starter embedding model: trained word vectors, mean-pooled (sensible sentence vectors offline). */
export const STARTER_EMBEDDINGS_ID = 'inferq/starter-embeddings';
/** Id of the tiny sentence-transformers model, mean pooling (embeddings). */
export const TINY_EMBEDDINGS_ID = 'inferq/tiny-embeddings';
/** Id of the bench-sized sentence-transformers model (6 x 384, as all-MiniLM-L6-v2) that benchmarks use. */
export const BENCH_EMBEDDINGS_ID = 'inferq/bench-embeddings';
/** Id of the tiny sentence-transformers model, CLS pooling. */
export const TINY_EMBEDDINGS_CLS_ID = 'inferq/tiny-embeddings-cls';

/**
 * What to build: a BERT classifier preset (`kind` left out or `bert-classifier`, as
 * before), a BART preset (`kind: 'bart'`), a Llama preset (`kind: 'llama'`) or a starter
 * model (`kind: 'starter'`).
 */
export type ModelSpec =
  | (BertClassifierPreset & { kind?: 'bert-classifier' })
  | (BartPreset & { kind: 'bart' })
  | (LlamaPreset & { kind: 'llama' })
  | (StarterModelPreset & { kind: 'starter' })
  | (SentenceTransformerPreset & { kind: 'sentence-transformer' });

/** The models this package builds by default, by model id. */
export const DEFAULT_MODELS: Readonly<Record<string, ModelSpec>> = Object.freeze({
  [TINY_CLASSIFIER_ID]: TINY_CLASSIFIER,
  [BENCH_CLASSIFIER_ID]: BENCH_CLASSIFIER,
  [TINY_NLI_ID]: TINY_NLI,
  [TINY_BART_ID]: { kind: 'bart', ...TINY_BART },
  [TINY_LLAMA_ID]: { kind: 'llama', ...TINY_LLAMA },
  [BENCH_LLAMA_ID]: { kind: 'llama', ...BENCH_LLAMA },
  [BENCH_LLAMA_152K_ID]: { kind: 'llama', ...BENCH_LLAMA_152K },
  [STARTER_SENTIMENT_ID]: { kind: 'starter', starter: 'sentiment' },
  [STARTER_TICKETS_ID]: { kind: 'starter', starter: 'tickets' },
  [STARTER_EMBEDDINGS_ID]: { kind: 'starter', starter: 'embeddings' },
  [TINY_EMBEDDINGS_ID]: { kind: 'sentence-transformer', ...TINY_EMBEDDINGS },
  [TINY_EMBEDDINGS_CLS_ID]: { kind: 'sentence-transformer', ...TINY_EMBEDDINGS_CLS },
  [BENCH_EMBEDDINGS_ID]: { kind: 'sentence-transformer', ...BENCH_EMBEDDINGS },
});

/** The file whose presence means a model folder is complete (the last one a build writes). */
export function modelMarkerFile(spec: ModelSpec): string {
  return spec.kind === 'bart' ? join('onnx', 'decoder_model_merged.onnx') : join('onnx', 'model.onnx');
}

/** Builds the model `spec` describes into `dir` (created if missing). */
export async function buildModel(dir: string, spec: ModelSpec): Promise<void> {
  switch (spec.kind) {
    case 'bart': {
      const { kind: _kind, ...preset } = spec;
      return buildBart({ ...preset, dir });
    }
    case 'llama': {
      const { kind: _kind, ...preset } = spec;
      return buildLlama({ ...preset, dir });
    }
    case 'starter':
      return buildStarterModel({ starter: spec.starter, dir });
    case 'sentence-transformer': {
      const { kind: _kind, ...preset } = spec;
      return buildSentenceTransformer({ ...preset, dir });
    }
    default: {
      const { kind: _kind, ...preset } = spec;
      return buildBertClassifier({ ...preset, dir });
    }
  }
}

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
 * Returns the folder of model `id` under `modelsDir`, building it first if its ONNX file
 * (`onnx/model.onnx`, or `onnx/decoder_model_merged.onnx` for BART) is missing. A model
 * already there is left as it is, whatever preset built it.
 *
 * @param modelsDir - the models root (`MODELS_DIR`); created if missing.
 * @param id - `<org>/<name>`; the model lands in `modelsDir/<org>/<name>`.
 * @param preset - what to build; defaults to `DEFAULT_MODELS[id]`, and is required for
 *   any other id.
 * @returns the model's folder.
 */
export async function ensureModel(modelsDir: string, id: string, preset?: ModelSpec): Promise<string> {
  const { org, name } = parseModelId(id);
  const spec = preset ?? DEFAULT_MODELS[id];
  if (spec === undefined) {
    throw new Error(`no preset for model "${id}": pass one, or use one of ${Object.keys(DEFAULT_MODELS).join(', ')}`);
  }
  const target = join(modelsDir, org, name);
  const marker = join(target, modelMarkerFile(spec));
  if (await exists(marker)) return target;

  const parent = join(modelsDir, org);
  await mkdir(parent, { recursive: true });
  const temp = await mkdtemp(join(parent, `.${name}.tmp-`));
  try {
    await buildModel(temp, spec);
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
