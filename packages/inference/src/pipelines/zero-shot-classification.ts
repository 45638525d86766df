/**
 * Zero-shot classification with an NLI model (`*ForSequenceClassification` with an
 * `entailment` label): each candidate label becomes a hypothesis ("This example is
 * {label}."), each (text, hypothesis) pair is scored by the model, and the entailment
 * logits become scores, with transformers.js' (and HF Python's) rules:
 *
 * - single-label: softmax of the entailment logits over the labels (they sum to 1);
 * - multi-label, or a single candidate label: for each label, softmax over its
 *   [contradiction, entailment] logits, the entailment side.
 *
 * Labels come back sorted by score, best first. The pairs of many requests can share ONNX
 * batches: {@link ZeroShotClassificationPipeline.run} flattens the pairs of a batch of
 * requests, or a worker may schedule pairs itself with {@link encodePair},
 * {@link runPairs} and {@link combine}.
 */
import { createSession, type Session } from '../backend/onnx.js';
import { onnxFile, readModelConfig, type ModelConfig } from '../model-folder.js';
import { padBatch } from '../padding.js';
import { TextTokenizer, type Encoded } from '../text-tokenizer.js';
import { softmax, type PipelineLoadOptions } from './text-classification.js';

/** Most candidate labels in one request. */
export const MAX_CANDIDATE_LABELS = 50;

/** One zero-shot request. */
export interface ZeroShotRequest {
  /** The text to classify (the NLI premise). */
  text: string;
  /** 1 to {@link MAX_CANDIDATE_LABELS} distinct, non-empty labels. */
  candidateLabels: string[];
  /** Turns a label into a hypothesis; `{}` is replaced by the label. @defaultValue "This example is {}." */
  hypothesisTemplate?: string;
  /** Score each label on its own (scores don't sum to 1). @defaultValue false */
  multiLabel?: boolean;
}

/** A validated request with its (premise, hypothesis) pairs tokenized, one per label. */
export interface ZeroShotPrepared {
  readonly text: string;
  readonly labels: readonly string[];
  /** Softmax per label over [contradiction, entailment] (multi-label, or one label). */
  readonly softmaxEach: boolean;
  /** One tokenized pair per label, in label order. */
  readonly pairs: readonly Encoded[];
}

/** Labels by score, best first (the shape transformers.js returns). */
export interface ZeroShotOutput {
  sequence: string;
  labels: string[];
  scores: number[];
}

/** The two logits of one (premise, hypothesis) pair that zero-shot uses. */
export interface PairLogits {
  entailment: number;
  contradiction: number;
}

/** Options of {@link ZeroShotClassificationPipeline.load}. */
export interface ZeroShotLoadOptions extends PipelineLoadOptions {
  /** Most pairs in one ONNX run of {@link ZeroShotClassificationPipeline.run}. @defaultValue 64 */
  maxPairsPerRun?: number;
}

/** Options of {@link ZeroShotClassificationPipeline.classify}. */
export type ZeroShotOptions = Pick<ZeroShotRequest, 'hypothesisTemplate' | 'multiLabel'>;

const DEFAULT_TEMPLATE = 'This example is {}.';

/**
 * Label ids of entailment and contradiction as Python's zero-shot pipeline finds them: the
 * entailment label is the first of `label2id` (or `id2label`) whose name starts with
 * "entail" (`entailment`, `ENTAILMENT`, `entails`); the contradiction logit is the last
 * label's when entailment is label 0, else label 0's (whatever either is called).
 * Undefined when no label starts with "entail".
 */
export function nliLabelIds(config: ModelConfig): { entailment: number; contradiction: number } | undefined {
  const numLabels = Object.keys(config.id2label ?? config.label2id ?? {}).length;
  const byName: [string, number][] =
    config.label2id && Object.keys(config.label2id).length > 0
      ? Object.entries(config.label2id)
      : Object.entries(config.id2label ?? {}).map(([id, label]) => [label, Number(id)]);
  const entailment = byName.find(([label]) => label.toLowerCase().startsWith('entail'))?.[1];
  if (entailment === undefined || numLabels < 2) return undefined;
  return { entailment, contradiction: entailment === 0 ? numLabels - 1 : 0 };
}

/**
 * A label in its hypothesis, as Python's `str.format` puts it: the label's text as it is
 * (`US$$` stays `US$$`; a string replacement would read `$$` as a pattern).
 */
export function fillHypothesis(template: string, label: string): string {
  return template.replace('{}', () => label);
}

export class ZeroShotClassificationPipeline {
  readonly entailmentId: number;
  readonly contradictionId: number;

  private constructor(
    readonly config: ModelConfig,
    readonly tokenizer: TextTokenizer,
    readonly session: Session,
    readonly maxPairsPerRun: number,
  ) {
    const ids = nliLabelIds(config);
    if (!ids) throw new Error('config.json needs an "entailment" label (a label starting with "entail") and another for zero-shot classification');
    this.entailmentId = ids.entailment;
    this.contradictionId = ids.contradiction;
  }

  static async load(dir: string, options: ZeroShotLoadOptions = {}): Promise<ZeroShotClassificationPipeline> {
    const { maxPairsPerRun = 64, ...rest } = options;
    if (!Number.isInteger(maxPairsPerRun) || maxPairsPerRun < 1) throw new Error('maxPairsPerRun must be an integer >= 1');
    const config = await readModelConfig(dir);
    const [tokenizer, session] = await Promise.all([
      TextTokenizer.load(dir, config.max_position_embeddings),
      onnxFile(dir, 'model', rest.variant).then((file) => createSession(file, rest)),
    ]);
    return new ZeroShotClassificationPipeline(config, tokenizer, session, maxPairsPerRun);
  }

  /**
   * Tokenizes one (premise, hypothesis) pair. A pair over the model's limit loses tokens
   * from the end of the premise only (`only_first`, as HF's zero-shot pipeline), so the
   * hypothesis stays whole.
   */
  encodePair(premise: string, hypothesis: string): Encoded {
    return this.encodePairs(premise, [hypothesis])[0] as Encoded;
  }

  /** {@link encodePair} for several hypotheses of one premise; the premise is tokenized once. */
  encodePairs(premise: string, hypotheses: readonly string[]): Encoded[] {
    return this.tokenizer.encodePairs(premise, hypotheses, { truncation: 'only_first' });
  }

  /** Validates and tokenizes one request. Throws an Error with a clear message on bad input. */
  prepare(request: ZeroShotRequest): ZeroShotPrepared {
    const { text, candidateLabels, hypothesisTemplate = DEFAULT_TEMPLATE, multiLabel = false } = request;
    if (typeof text !== 'string' || text.length === 0) throw new Error('text must be a non-empty string');
    if (!Array.isArray(candidateLabels) || candidateLabels.length === 0) {
      throw new Error('candidateLabels must name at least one label');
    }
    if (candidateLabels.length > MAX_CANDIDATE_LABELS) {
      throw new Error(`candidateLabels has ${candidateLabels.length} labels; at most ${MAX_CANDIDATE_LABELS} are allowed`);
    }
    if (candidateLabels.some((l) => typeof l !== 'string' || l.trim().length === 0)) {
      throw new Error('candidateLabels must be non-empty strings');
    }
    if (new Set(candidateLabels).size !== candidateLabels.length) throw new Error('candidateLabels must be distinct');
    if (typeof hypothesisTemplate !== 'string' || !hypothesisTemplate.includes('{}')) {
      throw new Error('hypothesisTemplate must contain "{}", where the label goes');
    }
    if (typeof multiLabel !== 'boolean') throw new Error('multiLabel must be a boolean');
    const pairs = this.encodePairs(text, candidateLabels.map((label) => fillHypothesis(hypothesisTemplate, label)));
    return { text, labels: [...candidateLabels], softmaxEach: multiLabel || candidateLabels.length === 1, pairs };
  }

  /** Tokens a request costs: pairs x longest pair (it runs as that many padded rows). */
  cost(prepared: ZeroShotPrepared): number {
    return prepared.pairs.length * prepared.pairs.reduce((m, p) => Math.max(m, p.ids.length), 0);
  }

  /** Every zero-shot request can share a batch. */
  groupKey(_prepared: ZeroShotPrepared): string {
    return 'zero-shot';
  }

  /** Runs tokenized pairs as one ONNX batch; one {@link PairLogits} per pair, in order. */
  async runPairs(rows: readonly Encoded[]): Promise<PairLogits[]> {
    if (rows.length === 0) return [];
    const batch = padBatch(rows, { padId: this.tokenizer.padId, side: 'right' });
    const { logits } = await this.session.run(
      { input_ids: batch.inputIds, attention_mask: batch.attentionMask, token_type_ids: batch.tokenTypeIds },
      ['logits'],
    );
    if (!logits) throw new Error('The model has no logits output');
    const numLabels = logits.dims[1] ?? 0;
    return rows.map((_, r) => ({
      entailment: logits.data[r * numLabels + this.entailmentId] as number,
      contradiction: logits.data[r * numLabels + this.contradictionId] as number,
    }));
  }

  /** Scores of one request from its pairs' logits (in label order). */
  combine(prepared: ZeroShotPrepared, logits: readonly PairLogits[]): ZeroShotOutput {
    if (logits.length !== prepared.labels.length) throw new Error(`combine: ${logits.length} logits for ${prepared.labels.length} labels`);
    const scores = prepared.softmaxEach
      ? logits.map((l) => softmax([l.contradiction, l.entailment])[1] as number)
      : softmax(logits.map((l) => l.entailment));
    const order = scores.map((score, i) => ({ score, i })).sort((a, b) => b.score - a.score);
    return {
      sequence: prepared.text,
      labels: order.map((o) => prepared.labels[o.i] as string),
      scores: order.map((o) => o.score),
    };
  }

  /**
   * Classifies a batch of prepared requests: their pairs, sorted by length, run in ONNX
   * batches of up to `maxPairsPerRun`; one output per request, in order.
   */
  async run(batch: readonly ZeroShotPrepared[]): Promise<ZeroShotOutput[]> {
    const flat = batch.flatMap((p, req) => p.pairs.map((pair, label) => ({ pair, req, label })));
    const order = flat.map((_, i) => i).sort((a, b) => (flat[a]?.pair.ids.length ?? 0) - (flat[b]?.pair.ids.length ?? 0));
    const logits: PairLogits[][] = batch.map((p) => new Array<PairLogits>(p.pairs.length));
    for (let start = 0; start < order.length; start += this.maxPairsPerRun) {
      const chunk = order.slice(start, start + this.maxPairsPerRun).map((i) => flat[i] as (typeof flat)[number]);
      const out = await this.runPairs(chunk.map((c) => c.pair));
      chunk.forEach((c, k) => {
        (logits[c.req] as PairLogits[])[c.label] = out[k] as PairLogits;
      });
    }
    return batch.map((p, i) => this.combine(p, logits[i] as PairLogits[]));
  }

  /** Classifies texts against the same labels as one batch (convenience). */
  async classify(texts: readonly string[], candidateLabels: string[], options: ZeroShotOptions = {}): Promise<ZeroShotOutput[]> {
    return this.run(texts.map((text) => this.prepare({ text, candidateLabels, ...options })));
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
