/**
 * Training of the starter sentiment model: a logistic regression over WordPiece tokens,
 * each token with two weights (as it is, and within a negation scope), pulled towards a
 * lexicon's valence rather than towards zero. With no data the model is the lexicon
 * (negation flips and halves a word's valence); data moves the weights where it has
 * evidence, and the lexicon keeps the words it never saw.
 *
 * Pure functions: the script `scripts/train-sentiment.mjs` reads the data, tokenizes it
 * with the model's own tokenizer and calls {@link trainSentiment}; the result is committed
 * as `data/starter-sentiment.json`, so building the model needs no data.
 */
import { BASE_VOCAB } from './wordpiece-tokenizer.js';

/** Labels of the sentiment model, in id order. */
export const SENTIMENT_LABELS = ['negative', 'positive'] as const;

/** Tokens that open a negation scope. `t` is the end of `don't`, which BERT splits as `don ' t`. */
export const SENTIMENT_NEGATORS: readonly string[] = Object.freeze([
  'not', 'no', 'never', 't', 'nothing', 'nor', 'neither', 'without', 'cannot', 'nobody', 'none', 'hardly', 'barely',
]);

/** Tokens that close a negation scope: clause punctuation and contrast words. */
export const SENTIMENT_BREAKERS: readonly string[] = Object.freeze([
  '.', ',', ';', ':', '!', '?', 'but', 'however', 'although', 'though', 'yet',
]);

/**
 * Which tokens are within a negation scope: those at most `window` tokens after a negator
 * with no breaker between. The ONNX graph computes the same thing (see
 * `linear-text-classifier.ts`); a test holds them equal.
 *
 * @param ids - token ids of one text `[seqLen]`.
 * @returns one flag per token.
 */
export function negationScope(ids: readonly number[], negators: ReadonlySet<number>, breakers: ReadonlySet<number>, window: number): boolean[] {
  const scope: boolean[] = [];
  let left = 0;
  for (const id of ids) {
    scope.push(left > 0);
    if (breakers.has(id)) left = 0;
    else if (negators.has(id)) left = window;
    else if (left > 0) left--;
  }
  return scope;
}

/**
 * Splits text roughly as BERT's normalizer and pre-tokenizer do (lower case, accents
 * stripped, punctuation split off), to count words when choosing a vocabulary.
 */
export function roughWords(text: string): string[] {
  const normalized = text.normalize('NFD').replace(/\p{Mn}/gu, '').toLowerCase();
  return normalized.match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? [];
}

/** Options of {@link sentimentVocab}. */
export interface SentimentVocabOptions {
  /** Words that must be whole tokens: the lexicon's (and any the model must know). */
  required: Iterable<string>;
  /** How often each word occurs in the training data. */
  counts: ReadonlyMap<string, number>;
  /** Fewest occurrences for a training word to become a token. @defaultValue 2 */
  minCount?: number;
}

/**
 * The vocabulary: {@link BASE_VOCAB} (special tokens, punctuation, letters, common words,
 * sub-word pieces), then the required words and the training words seen `minCount` times,
 * most frequent first. Only words of letters and digits are added (BERT splits the rest).
 */
export function sentimentVocab(options: SentimentVocabOptions): string[] {
  const { required, counts, minCount = 2 } = options;
  const vocab = [...BASE_VOCAB];
  const seen = new Set(vocab);
  const add = (word: string): void => {
    if (seen.has(word) || !/^[\p{Ll}\p{N}]+$/u.test(word)) return;
    seen.add(word);
    vocab.push(word);
  };
  const frequent = [...counts].filter(([, n]) => n >= minCount).sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1));
  for (const [word] of frequent) add(word);
  for (const word of [...required].sort()) add(word);
  return vocab;
}

/** One training text: its token ids (special tokens included or not) and its label. */
export interface SentimentExample {
  ids: readonly number[];
  /** 1 positive, 0 negative. */
  label: 0 | 1;
}

/** Options of {@link trainSentiment}. */
export interface SentimentTrainingOptions {
  /** Number of vocabulary entries. */
  vocabSize: number;
  /** The training texts. */
  examples: readonly SentimentExample[];
  /** Prior weight of each token (the lexicon's valence, scaled), `[vocabSize]`; 0 where unknown. */
  prior: ArrayLike<number>;
  /** Prior weight of each token within a negation scope, `[vocabSize]`. */
  negatedPrior: ArrayLike<number>;
  /** Token ids that open a negation scope. */
  negators: ReadonlySet<number>;
  /** Token ids that close one. */
  breakers: ReadonlySet<number>;
  /** Tokens in a scope after a negator. @defaultValue 4 */
  window?: number;
  /** Passes over the data. @defaultValue 10 */
  epochs?: number;
  /** AdaGrad learning rate. @defaultValue 0.05 */
  learningRate?: number;
  /** Strength of the pull of each weight towards its prior (L2 on weight - prior). @defaultValue 0.01 */
  l2ToPrior?: number;
  /** Seed of the shuffling: the same seed and data give the same weights. @defaultValue 1 */
  seed?: number;
}

/** What {@link trainSentiment} learns: logit(positive) = bias + sum of the tokens' weights. */
export interface SentimentModelWeights {
  /** Weight of each token outside a negation scope, `[vocabSize]`. */
  weights: Float64Array;
  /** Weight of each token within a negation scope, `[vocabSize]`. */
  negatedWeights: Float64Array;
  bias: number;
}

/** A 31-bit linear congruential generator: deterministic shuffles without a dependency. */
function lcg(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1103515245) + 12345) >>> 1;
    return state / 2 ** 31;
  };
}

/**
 * Logistic regression by AdaGrad on the summed token weights, each weight regularised
 * towards its prior. Deterministic for a given seed.
 */
export function trainSentiment(options: SentimentTrainingOptions): SentimentModelWeights {
  const o = { window: 4, epochs: 10, learningRate: 0.05, l2ToPrior: 0.01, seed: 1, ...options };
  const V = o.vocabSize;
  if (o.prior.length !== V || o.negatedPrior.length !== V) throw new Error('trainSentiment: priors must have vocabSize entries');
  // Feature f < V: token f outside a scope; f >= V: token f - V inside one.
  const prior = new Float64Array(2 * V);
  for (let i = 0; i < V; i++) {
    prior[i] = o.prior[i] ?? 0;
    prior[V + i] = o.negatedPrior[i] ?? 0;
  }
  const features = o.examples.map((example) => {
    const scope = negationScope(example.ids, o.negators, o.breakers, o.window);
    const counts = new Map<number, number>();
    example.ids.forEach((id, i) => {
      if (id < 0 || id >= V) throw new Error(`trainSentiment: token id ${id} is outside the vocabulary`);
      const f = scope[i] ? V + id : id;
      counts.set(f, (counts.get(f) ?? 0) + 1);
    });
    return { counts: [...counts], label: example.label };
  });

  const w = Float64Array.from(prior);
  let bias = 0;
  const squared = new Float64Array(2 * V).fill(1e-8);
  let biasSquared = 1e-8;
  const random = lcg(o.seed);
  const order = features.map((_, i) => i);
  for (let epoch = 0; epoch < o.epochs; epoch++) {
    for (let i = order.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [order[i], order[j]] = [order[j] as number, order[i] as number];
    }
    for (const k of order) {
      const { counts, label } = features[k] as (typeof features)[number];
      let z = bias;
      for (const [f, n] of counts) z += (w[f] as number) * n;
      const error = 1 / (1 + Math.exp(-z)) - label;
      for (const [f, n] of counts) {
        const grad = error * n + o.l2ToPrior * ((w[f] as number) - (prior[f] as number));
        squared[f] = (squared[f] as number) + grad * grad;
        w[f] = (w[f] as number) - (o.learningRate * grad) / Math.sqrt(squared[f] as number);
      }
      biasSquared += error * error;
      bias -= (o.learningRate * error) / Math.sqrt(biasSquared);
    }
  }
  return { weights: w.slice(0, V), negatedWeights: w.slice(V), bias };
}

/**
 * The positive-class logit of one text under trained weights: what the ONNX model
 * computes, in TypeScript (for tests and evaluation without a session).
 */
export function sentimentLogit(
  ids: readonly number[],
  model: { weights: ArrayLike<number>; negatedWeights: ArrayLike<number>; bias: number },
  negators: ReadonlySet<number>,
  breakers: ReadonlySet<number>,
  window: number,
): number {
  const scope = negationScope(ids, negators, breakers, window);
  let z = model.bias;
  ids.forEach((id, i) => {
    z += (scope[i] ? model.negatedWeights[id] : model.weights[id]) ?? 0;
  });
  return z;
}
