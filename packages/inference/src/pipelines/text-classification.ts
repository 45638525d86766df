import { createSession, type Session, type SessionOptions } from '../backend/onnx.js';
import { labelsOf, onnxFile, readModelConfig, type ModelConfig } from '../model-folder.js';
import { padBatch } from '../padding.js';
import { TextTokenizer, type Encoded } from '../text-tokenizer.js';

export interface LabelScore {
  label: string;
  score: number;
}

export interface PipelineLoadOptions extends SessionOptions {
  /** ONNX variant suffix, e.g. `quantized` for `onnx/model_quantized.onnx`. @defaultValue undefined (model.onnx) */
  variant?: string;
}

export interface ClassifyOptions {
  /** Keep the k best labels. @defaultValue all labels */
  topK?: number;
}

/**
 * Sequence classification on an `*ForSequenceClassification` export: tokenize, pad, run,
 * scores as Python's pipeline makes them ({@link scoreFunction}), labels from `id2label`.
 */
export class TextClassificationPipeline {
  readonly labels: string[];

  private constructor(
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    readonly session: Session,
  ) {
    this.labels = labelsOf(config);
    if (this.labels.length === 0) throw new Error('config.json has no id2label');
  }

  static async load(dir: string, options: PipelineLoadOptions = {}): Promise<TextClassificationPipeline> {
    const config = await readModelConfig(dir);
    const [tokenizer, session] = await Promise.all([
      TextTokenizer.load(dir, config.max_position_embeddings),
      onnxFile(dir, 'model', options.variant).then((file) => createSession(file, options)),
    ]);
    return new TextClassificationPipeline(config, tokenizer, session);
  }

  /** Tokenizes one text (truncated to the model's maximum length). */
  encode(text: string): Encoded {
    return this.tokenizer.encode(text);
  }

  /**
   * Runs one padded batch. Returns, per row, every label with its score, best first.
   */
  async run(rows: readonly Encoded[]): Promise<LabelScore[][]> {
    if (rows.length === 0) return [];
    const batch = padBatch(rows, { padId: this.tokenizer.padId, side: 'right' });
    const { logits } = await this.session.run(
      {
        input_ids: batch.inputIds,
        attention_mask: batch.attentionMask,
        token_type_ids: batch.tokenTypeIds,
      },
      ['logits'],
    );
    if (!logits) throw new Error('The model has no logits output');
    const numLabels = logits.dims[1] ?? 0;
    if (numLabels !== this.labels.length) {
      throw new Error(`logits has ${numLabels} columns but id2label has ${this.labels.length} labels`);
    }
    const scoreOf = scoreFunction(this.config.problem_type, numLabels);
    return rows.map((_, b) => {
      const row = logits.data.subarray(b * numLabels, (b + 1) * numLabels);
      const scores = scoreOf(row);
      return this.labels
        .map((label, i) => ({ label, score: scores[i] ?? 0 }))
        .sort((x, y) => y.score - x.score);
    });
  }

  /** Classifies texts as one batch. */
  async classify(texts: readonly string[], options: ClassifyOptions = {}): Promise<LabelScore[][]> {
    const results = await this.run(texts.map((t) => this.encode(t)));
    return results.map((r) => topK(r, options.topK));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

/**
 * How logits become scores, as Python's text-classification pipeline decides: the raw value
 * for `problem_type: "regression"`; a sigmoid for `multi_label_classification` or a single
 * logit (cross-encoders, rerankers: logit -3.2 scores 0.039); else a softmax over the labels.
 */
export function scoreFunction(problemType: unknown, numLabels: number): (logits: ArrayLike<number>) => number[] {
  if (problemType === 'regression') return (logits) => Array.from(logits);
  if (problemType === 'multi_label_classification' || numLabels === 1) return sigmoid;
  return softmax;
}

export function topK(scores: LabelScore[], k?: number): LabelScore[] {
  return k === undefined ? scores : scores.slice(0, k);
}

export function softmax(values: ArrayLike<number>): number[] {
  let max = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i] ?? 0);
  const exps = Array.from(values, (v) => Math.exp(v - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

export function sigmoid(values: ArrayLike<number>): number[] {
  return Array.from(values, (v) => 1 / (1 + Math.exp(-v)));
}
