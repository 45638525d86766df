/**
 * `inferq/starter-embeddings`: sentence vectors that make sense offline. An embedding-bag
 * model in the sentence-transformers ONNX layout: `onnx/model.onnx` looks each token up in
 * a trained table (`last_hidden_state` `[batch, seq, dims]`), `1_Pooling/config.json` says
 * mean pooling and `modules.json` normalization, so inferq (or any sentence-transformers
 * reader) serves it as any export. The table is `data/starter-embeddings.json`, written
 * byte for byte by `scripts/train-embeddings.mjs` (see `embedding-training.ts`).
 */
import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { TRANSFORMERS_VERSION } from './bert-classifier.js';
import { dequantizeEmbeddings, type EmbeddingWeightsFile } from './embedding-training.js';
import { ElemType, GraphBuilder } from './onnx-graph.js';
import { fnv1a, mulberry32 } from './rng.js';
import { writeSentenceTransformerFiles } from './sentence-transformer.js';
import { SPECIAL_TOKEN_IDS, writeTokenizer } from './wordpiece-tokenizer.js';

const WEIGHTS_URL = new URL('../data/starter-embeddings.json', import.meta.url);

/** Reads and checks the committed embedding weights. */
export function starterEmbeddingWeights(): EmbeddingWeightsFile {
  const file = JSON.parse(readFileSync(WEIGHTS_URL, 'utf8')) as EmbeddingWeightsFile;
  if (file.format !== 'inferq-embedding-bag/1') throw new Error(`${WEIGHTS_URL.pathname}: unknown format ${String(file.format)}`);
  if (file.scales.length !== file.vocab.length) throw new Error(`${WEIGHTS_URL.pathname}: ${file.scales.length} scales for ${file.vocab.length} tokens`);
  return file;
}

/** Options of {@link buildStarterEmbeddings}. */
export interface StarterEmbeddingOptions {
  /**
   * Width of each token's identity part: a pseudo-random unit vector from a hash of the token,
   * appended to its trained vector, so that texts sharing rare words (product names, error
   * codes) stay close even where the corpus taught nothing about them: a random projection of
   * TF-IDF next to the semantic part. @defaultValue 160
   */
  identityDims?: number;
  /** Length of the identity part relative to the trained part of the same token. @defaultValue 2 */
  identityWeight?: number;
}

export const STARTER_EMBEDDING_DEFAULTS: Required<StarterEmbeddingOptions> = Object.freeze({ identityDims: 160, identityWeight: 2 });

/**
 * The model's table `[vocab, dims + identityDims]`: each trained row, then its identity part
 * (uniform values from `mulberry32(fnv1a(token))`, scaled to `identityWeight` times the trained
 * row's length).
 */
export function starterEmbeddingTable(file: EmbeddingWeightsFile, options: StarterEmbeddingOptions = {}): { table: Float32Array; width: number } {
  const { identityDims, identityWeight } = { ...STARTER_EMBEDDING_DEFAULTS, ...options };
  const trained = dequantizeEmbeddings(file);
  const width = file.dims + identityDims;
  const table = new Float32Array(file.vocab.length * width);
  const random = new Float64Array(identityDims);
  file.vocab.forEach((token, r) => {
    const row = trained.subarray(r * file.dims, (r + 1) * file.dims);
    table.set(row, r * width);
    let norm = 0;
    for (const x of row) norm += x * x;
    if (norm === 0 || identityDims === 0) return;
    const rng = mulberry32(fnv1a(token));
    let rn = 0;
    for (let j = 0; j < identityDims; j++) {
      random[j] = rng() * 2 - 1;
      rn += random[j]! ** 2;
    }
    const scale = (identityWeight * Math.sqrt(norm)) / Math.sqrt(rn);
    for (let j = 0; j < identityDims; j++) table[r * width + file.dims + j] = random[j]! * scale;
  });
  return { table, width };
}

/** The ONNX bytes of an embedding bag over `table` (`[vocab, dims]`). */
export function embeddingBagOnnx(table: Float32Array, vocabSize: number, dims: number, description: string): Uint8Array {
  const g = new GraphBuilder('main_graph');
  const ids = g.input('input_ids', ElemType.int64, ['batch_size', 'sequence_length']);
  g.input('attention_mask', ElemType.int64, ['batch_size', 'sequence_length']);
  g.output('last_hidden_state', ElemType.float32, ['batch_size', 'sequence_length', dims]);
  const weights = g.float('embeddings.word_embeddings.weight', table, [vocabSize, dims]);
  g.node('Gather', [weights, ids], { name: '/embeddings/word_embeddings/Gather', output: 'last_hidden_state' });
  return g.toModelBytes({ docString: description });
}

/** Writes `inferq/starter-embeddings` into `dir` from the committed weights (or `file`). */
export async function buildStarterEmbeddings(
  dir: string,
  file: EmbeddingWeightsFile = starterEmbeddingWeights(),
  options: StarterEmbeddingOptions = {},
): Promise<void> {
  const { table, width } = starterEmbeddingTable(file, options);
  const maxLength = 512;
  await mkdir(join(dir, 'onnx'), { recursive: true });
  const config = {
    architectures: ['EmbeddingBagModel'],
    model_type: 'inferq-embedding-bag',
    description: file.description,
    hidden_size: width,
    vocab_size: file.vocab.length,
    max_position_embeddings: maxLength,
    pad_token_id: SPECIAL_TOKEN_IDS.pad,
    torch_dtype: 'float32',
    transformers_version: TRANSFORMERS_VERSION,
  };
  await writeFile(join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
  await writeTokenizer(dir, { vocab: file.vocab, modelMaxLength: maxLength });
  await writeSentenceTransformerFiles(dir, { width, pooling: 'mean', normalize: true, maxSeqLength: maxLength });
  await writeFile(join(dir, 'onnx', 'model.onnx'), embeddingBagOnnx(table, file.vocab.length, width, file.description));
}
