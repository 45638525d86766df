import { access, readFile } from 'node:fs/promises';
import { isAbsolute, join, relative, resolve } from 'node:path';

/** The `config.json` fields inferq reads. */
export interface ModelConfig {
  model_type?: string;
  architectures?: string[];
  id2label?: Record<string, string>;
  label2id?: Record<string, number>;
  problem_type?: 'single_label_classification' | 'multi_label_classification' | 'regression';
  max_position_embeddings?: number;
  [key: string]: unknown;
}

const MODEL_ID = /^(?!.*(?:--|\.\.))[A-Za-z0-9][A-Za-z0-9._-]{0,95}\/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$/;

/**
 * `MODELS_DIR/<org>/<name>` for a model id. Throws for an id that is not `<org>/<name>`
 * or that would leave the models folder.
 */
export function modelPath(modelsDir: string, modelId: string): string {
  if (!MODEL_ID.test(modelId)) throw new Error(`Invalid model id "${modelId}": expected <org>/<name>`);
  const root = resolve(modelsDir);
  const dir = resolve(root, modelId);
  const rel = relative(root, dir);
  if (rel.startsWith('..') || isAbsolute(rel)) throw new Error(`Model id "${modelId}" leaves the models folder`);
  return dir;
}

export async function readModelConfig(dir: string): Promise<ModelConfig> {
  return JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as ModelConfig;
}

/** Variants tried, in this order, when a folder has no full-precision file (what `models pull --variant` fetches). */
export const ONNX_VARIANTS = ['fp16', 'quantized', 'int8', 'uint8', 'q4', 'q4f16', 'bnb4'] as const;

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}

/**
 * The ONNX file `onnx/<base>.onnx` of a model folder, or `onnx/<base>_<variant>.onnx` when a
 * variant is asked for. With none asked for and no `<base>.onnx`, the first variant present
 * (in {@link ONNX_VARIANTS} order) is used, so a folder pulled with `--variant` just works.
 */
export async function onnxFile(dir: string, base = 'model', variant?: string): Promise<string> {
  const name = (v?: string) => join(dir, 'onnx', v ? `${base}_${v}.onnx` : `${base}.onnx`);
  if (await exists(name(variant))) return name(variant);
  if (variant === undefined) {
    for (const v of ONNX_VARIANTS) if (await exists(name(v))) return name(v);
  }
  throw new Error(`Missing ${relative(dir, name(variant))} in ${dir}`);
}

/** Labels in id order. */
export function labelsOf(config: ModelConfig): string[] {
  const entries = Object.entries(config.id2label ?? {}).sort(([a], [b]) => Number(a) - Number(b));
  return entries.map(([, label]) => label);
}

/** `generation_config.json`, or undefined when the folder has none. */
export async function readGenerationConfig(dir: string): Promise<Record<string, unknown> | undefined> {
  try {
    return JSON.parse(await readFile(join(dir, 'generation_config.json'), 'utf8')) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The first ONNX file of `bases` that exists (with the `variant` suffix when given), e.g.
 * `['model', 'decoder_model_merged']` for a decoder-only export, whose older Optimum
 * versions name the file `decoder_model_merged.onnx`.
 */
export async function firstOnnxFile(dir: string, bases: readonly string[], variant?: string): Promise<string> {
  for (const base of bases) {
    try {
      return await onnxFile(dir, base, variant);
    } catch {
      // try the next name
    }
  }
  const names = bases.map((b) => `onnx/${variant ? `${b}_${variant}` : b}.onnx`);
  throw new Error(`Missing ${names.join(' or ')} in ${dir}`);
}
