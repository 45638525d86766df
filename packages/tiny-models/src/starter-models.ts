/**
 * The starter models: two small classifiers that give sensible answers with no download,
 * so a fresh clone can serve something meaningful. Same layout as any
 * `BertForSequenceClassification` export (see `linear-text-classifier.ts`).
 *
 * - `inferq/starter-sentiment` (`negative`, `positive`): the weights trained by
 *   `scripts/train-sentiment.mjs`, committed as `data/starter-sentiment.json`.
 * - `inferq/starter-tickets` (`billing`, `login and account`, `bug`, `feature request`,
 *   `shipping`, `refund`, `other`): a keyword table of our own, {@link TICKET_KEYWORDS}.
 */
import { readFileSync } from 'node:fs';
import { buildLinearTextClassifier, type LinearTextClassifierSpec, type PhraseWeights } from './linear-text-classifier.js';
import { SENTIMENT_LABELS } from './sentiment-training.js';
import { buildStarterEmbeddings } from './starter-embeddings.js';

/** Which starter model to build. */
export type StarterModelName = 'sentiment' | 'tickets' | 'embeddings';

/** What {@link buildStarterModel} builds. */
export interface StarterModelPreset {
  /** `sentiment`, `tickets` or `embeddings`. */
  starter: StarterModelName;
}

/** Options of {@link buildStarterModel}. */
export interface StarterModelOptions extends StarterModelPreset {
  /** Folder to write the model into (created if missing). */
  dir: string;
}

/** The file `scripts/train-sentiment.mjs` writes: the vocabulary and the trained weights. */
export interface SentimentWeightsFile {
  format: 'inferq-linear-sentiment/1';
  description: string;
  provenance: Record<string, unknown>;
  labels: string[];
  negation: { negators: string[]; breakers: string[]; window: number };
  /** Bias of the positive-class logit. */
  bias: number;
  /** Tokens in id order. */
  vocab: string[];
  /** Each token's addition to the positive-class logit, outside a negation scope. */
  weights: number[];
  /** The same within a negation scope. */
  negated_weights: number[];
}

const WEIGHTS_URL = new URL('../data/starter-sentiment.json', import.meta.url);

let cachedWeights: SentimentWeightsFile | undefined;

/** Reads (once) and checks the committed sentiment weights. */
export function sentimentWeights(): SentimentWeightsFile {
  if (cachedWeights) return cachedWeights;
  const file = JSON.parse(readFileSync(WEIGHTS_URL, 'utf8')) as SentimentWeightsFile;
  if (file.format !== 'inferq-linear-sentiment/1') throw new Error(`${WEIGHTS_URL.pathname}: unknown format ${String(file.format)}`);
  const V = file.vocab.length;
  if (file.weights.length !== V || file.negated_weights.length !== V) {
    throw new Error(`${WEIGHTS_URL.pathname}: weights do not match the vocabulary (${V} tokens)`);
  }
  cachedWeights = file;
  return file;
}

/**
 * The sentiment model: two logits, `negative` = -z/2 and `positive` = z/2, where z is the
 * trained positive-class logit, so softmax gives the logistic regression's probability.
 */
export function starterSentimentSpec(file: SentimentWeightsFile = sentimentWeights()): LinearTextClassifierSpec {
  const halves = (values: readonly number[]): Float32Array => {
    const table = new Float32Array(values.length * 2);
    values.forEach((v, i) => {
      table[2 * i] = -v / 2;
      table[2 * i + 1] = v / 2;
    });
    return table;
  };
  return {
    vocab: file.vocab,
    labels: [...SENTIMENT_LABELS],
    weights: halves(file.weights),
    bias: [-file.bias / 2, file.bias / 2],
    negation: { ...file.negation, weights: halves(file.negated_weights) },
    description: file.description,
  };
}

/** Labels of the ticket model, in id order. `other` wins when no keyword speaks. */
export const TICKET_LABELS = ['billing', 'login and account', 'bug', 'feature request', 'shipping', 'refund', 'other'] as const;
export type TicketLabel = (typeof TICKET_LABELS)[number];

/** Logit of `other` before any keyword: a ticket needs about one strong keyword to leave it. */
export const TICKET_OTHER_BIAS = 2;

/**
 * Keywords per label with their weight (3 strong, 2 clear, 1 a hint). A key with a space is
 * a two-token phrase, added on top of its words' own weights. Our own table.
 */
export const TICKET_KEYWORDS: Readonly<Record<Exclude<TicketLabel, 'other'>, Readonly<Record<string, number>>>> = Object.freeze({
  billing: {
    invoice: 3, invoices: 3, invoiced: 3, billing: 3, billed: 3, bill: 2.5, bills: 2.5, charge: 2, charges: 2.5, charged: 2.5,
    overcharged: 3.5, payment: 2.5, payments: 2.5, pay: 1.5, paid: 1, paying: 1.5, card: 1.5, credit: 1, debit: 1.5,
    subscription: 2, plan: 1, pricing: 2, price: 1, receipt: 2.5, tax: 2, vat: 2.5, renewal: 2, renew: 1.5, fee: 2.5, fees: 2.5,
    declined: 2, transaction: 2, transactions: 2, statement: 1.5, cost: 1, upgrade: 1, downgrade: 1.5, discount: 1.5, coupon: 1.5,
    'charged twice': 1.5, 'double charged': 1.5, 'credit card': 1,
  },
  'login and account': {
    login: 3, logins: 3, logout: 2.5, log: 2, logged: 1.5, password: 3, passwords: 3, username: 3, account: 2, accounts: 2,
    locked: 2.5, lock: 1, authentication: 3, authenticate: 3, authenticator: 3, verification: 2, verify: 1.5, code: 1,
    reset: 1.5, email: 1, profile: 2, otp: 3, mfa: 3, sso: 3, credentials: 3, forgot: 2, access: 1, signin: 3, sign: 1, unlock: 2,
    'log in': 2, 'logged in': 1.5, 'logged out': 2, 'sign in': 2.5, 'sign up': 1.5, 'two factor': 3, 'password reset': 1,
  },
  bug: {
    bug: 3, bugs: 3, crash: 3, crashes: 3, crashed: 3, crashing: 3, error: 2.5, errors: 2.5, broken: 1.5, freeze: 3, freezes: 3,
    frozen: 2, glitch: 3, glitches: 3, exception: 3, fails: 2, failed: 1.5, failing: 2, working: 1.5, works: 1, blank: 2,
    loading: 2, load: 1.5, slow: 1.5, stuck: 1.5, button: 1.5, screen: 1, page: 1, app: 1, update: 1, wrong: 1, display: 1.5,
    displays: 1.5, unresponsive: 3, timeout: 2.5, sync: 2, syncing: 2,
  },
  'feature request': {
    feature: 3, features: 2.5, request: 1, suggestion: 3, suggestions: 3, suggest: 2.5, idea: 2.5, wish: 2.5, add: 2, adding: 2,
    option: 2, options: 1.5, integration: 2.5, export: 2, allow: 1.5, ability: 2, improve: 2, improvement: 2.5, enhancement: 3,
    would: 1, mode: 1, support: 0.5, customize: 2, customizable: 2.5,
    'dark mode': 3, 'would love': 1.5, 'be nice': 1.5, 'be great': 1.5, 'feature request': 1,
  },
  shipping: {
    shipping: 3, shipped: 3, ship: 2, shipment: 3, delivery: 3, delivered: 2.5, deliver: 2.5, package: 2.5, parcel: 3,
    tracking: 3, track: 1.5, courier: 3, arrived: 2, arrive: 2, arrival: 2, transit: 3, carrier: 2.5, address: 1.5, late: 1.5,
    delayed: 2, delay: 2, lost: 1, postage: 2.5, warehouse: 2, dispatched: 3, dispatch: 3, order: 1, fedex: 3, usps: 3, dhl: 3,
    customs: 2.5, box: 1, damaged: 1.5, 'my order': 0.5,
  },
  refund: {
    refund: 4, refunds: 4, refunded: 4, refunding: 4, money: 2, reimburse: 3, reimbursed: 3, reimbursement: 3, return: 2.5,
    returns: 2, returned: 2, returning: 2, chargeback: 3, cancel: 1.5, cancelled: 1, cancellation: 1.5, exchange: 1.5,
    compensation: 2.5, 'money back': 2.5,
  },
});

/** The ticket model's tokens: the sentiment model's vocabulary plus any keyword it lacks. */
export function ticketVocab(base: readonly string[] = sentimentWeights().vocab): string[] {
  const vocab = [...base];
  const seen = new Set(vocab);
  for (const table of Object.values(TICKET_KEYWORDS)) {
    for (const key of Object.keys(table)) {
      for (const word of key.split(' ')) {
        if (!seen.has(word)) {
          seen.add(word);
          vocab.push(word);
        }
      }
    }
  }
  return vocab;
}

/** The ticket model from {@link TICKET_KEYWORDS}. */
export function starterTicketsSpec(vocab: readonly string[] = ticketVocab()): LinearTextClassifierSpec {
  const labels = [...TICKET_LABELS];
  const L = labels.length;
  const ids = new Map(vocab.map((token, id) => [token, id]));
  const weights = new Float32Array(vocab.length * L);
  const phrases: PhraseWeights[] = [];
  for (const [label, table] of Object.entries(TICKET_KEYWORDS)) {
    const column = labels.indexOf(label as TicketLabel);
    for (const [key, weight] of Object.entries(table)) {
      const words = key.split(' ');
      if (words.length === 1) {
        const id = ids.get(key);
        if (id === undefined) throw new Error(`ticket keyword "${key}" is not in the vocabulary`);
        weights[id * L + column] = (weights[id * L + column] as number) + weight;
      } else if (words.length === 2) {
        const row = new Array<number>(L).fill(0);
        row[column] = weight;
        phrases.push({ tokens: [words[0] as string, words[1] as string], weights: row });
      } else {
        throw new Error(`ticket keyword "${key}": phrases have two words`);
      }
    }
  }
  const bias = labels.map((label) => (label === 'other' ? TICKET_OTHER_BIAS : 0));
  return {
    vocab,
    labels,
    weights,
    bias,
    phrases,
    description: 'Starter ticket classifier: a keyword table (words and two-word phrases) per issue category, summed over the ticket; "other" when no keyword speaks',
  };
}

/** Writes a starter model (`sentiment` or `tickets`) into `options.dir`. */
export async function buildStarterModel(options: StarterModelOptions): Promise<void> {
  if (options.starter === 'embeddings') return buildStarterEmbeddings(options.dir);
  const spec = options.starter === 'sentiment' ? starterSentimentSpec() : starterTicketsSpec();
  await buildLinearTextClassifier({ ...spec, dir: options.dir });
}
