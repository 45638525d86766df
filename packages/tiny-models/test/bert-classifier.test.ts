import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceSession } from 'onnxruntime-node';
import {
  BASE_VOCAB_SIZE,
  BENCH_CLASSIFIER,
  bertClassifierConfig,
  bertClassifierOnnx,
  buildBertClassifier,
  SPECIAL_TOKEN_IDS,
  TINY_CLASSIFIER,
} from '../src/index.js';
import { createSession, loadTokenizer, logits, maxAbsDiff, softmax } from './helpers.js';

let root: string;
let dir: string;
let session: InferenceSession;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tiny-models-'));
  dir = join(root, 'tiny');
  await buildBertClassifier({ ...TINY_CLASSIFIER, dir });
  session = await createSession(dir);
});

afterAll(async () => {
  await session?.release();
  await rm(root, { recursive: true, force: true });
});

async function readJson(file: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, file), 'utf8')) as Record<string, unknown>;
}

describe('tiny BERT classifier', () => {
  it('writes the files of a Hugging Face ONNX export', async () => {
    expect((await readdir(dir)).sort()).toEqual([
      'config.json',
      'onnx',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
      'vocab.txt',
    ]);
    expect(await readdir(join(dir, 'onnx'))).toEqual(['model.onnx']);
  });

  it('writes a BertForSequenceClassification config', async () => {
    const config = await readJson('config.json');
    expect(config).toMatchObject({
      model_type: 'bert',
      architectures: ['BertForSequenceClassification'],
      hidden_size: 32,
      num_hidden_layers: 2,
      num_attention_heads: 4,
      intermediate_size: 128,
      vocab_size: BASE_VOCAB_SIZE,
      max_position_embeddings: 512,
      type_vocab_size: 2,
      id2label: { '0': 'negative', '1': 'positive' },
      label2id: { negative: 0, positive: 1 },
      pad_token_id: SPECIAL_TOKEN_IDS.pad,
      layer_norm_eps: 1e-12,
      hidden_act: 'gelu',
    });
    expect(config.transformers_version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(config).not.toHaveProperty('problem_type');

    const tokenizerConfig = await readJson('tokenizer_config.json');
    expect(tokenizerConfig).toMatchObject({
      tokenizer_class: 'BertTokenizer',
      model_max_length: 512,
      do_lower_case: true,
      cls_token: '[CLS]',
      sep_token: '[SEP]',
      pad_token: '[PAD]',
      unk_token: '[UNK]',
      mask_token: '[MASK]',
      clean_up_tokenization_spaces: true,
    });
    const vocab = (await readFile(join(dir, 'vocab.txt'), 'utf8')).trimEnd().split('\n');
    expect(vocab).toHaveLength(BASE_VOCAB_SIZE);
  });

  it('stays well under 1 MB on disk', async () => {
    const files = ['config.json', 'special_tokens_map.json', 'tokenizer.json', 'tokenizer_config.json', 'vocab.txt', 'onnx/model.onnx'];
    const sizes = await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size));
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(1024 * 1024);
  });

  it('has the exporters tensor names', () => {
    expect(session.inputNames).toEqual(['input_ids', 'attention_mask', 'token_type_ids']);
    expect(session.outputNames).toEqual(['logits']);
  });

  it('gives different texts visibly different scores', async () => {
    const tokenizer = await loadTokenizer(dir);
    const a = tokenizer.encode('This product is great, I love it!').ids;
    const b = tokenizer.encode('My login password does not work after the update').ids;
    const [la] = await logits(session, [a]);
    const [lb] = await logits(session, [b]);
    expect(la).toHaveLength(2);
    expect(maxAbsDiff([la!], [lb!])).toBeGreaterThan(0.1);
    const [pa, pb] = [softmax(la!)[1]!, softmax(lb!)[1]!];
    expect(Math.abs(pa - pb)).toBeGreaterThan(0.1);
    // Not saturated: neither text is scored near 0 or 1.
    for (const p of [pa, pb]) {
      expect(p).toBeGreaterThan(0.02);
      expect(p).toBeLessThan(0.98);
    }
  });

  it('runs a batch the same as its rows one by one', async () => {
    const rows = [
      [2, 10, 20, 30, 3],
      [2, 40, 50, 60, 3],
    ];
    const batch = await logits(session, rows);
    const single = [...(await logits(session, [rows[0]!])), ...(await logits(session, [rows[1]!]))];
    expect(maxAbsDiff(batch, single)).toBeLessThan(1e-5);
  });

  it('is byte-identical for the same seed, and different for another seed', () => {
    const a = bertClassifierOnnx(TINY_CLASSIFIER);
    const b = bertClassifierOnnx({ ...TINY_CLASSIFIER });
    const c = bertClassifierOnnx({ ...TINY_CLASSIFIER, seed: 43 });
    expect(Buffer.compare(a, b)).toBe(0);
    expect(a.length).toBe(c.length);
    expect(Buffer.compare(a, c)).not.toBe(0);
  });

  it('matches the file it wrote', async () => {
    const written = await readFile(join(dir, 'onnx', 'model.onnx'));
    expect(Buffer.compare(written, bertClassifierOnnx(TINY_CLASSIFIER))).toBe(0);
  });
});

describe('classifier options', () => {
  it('takes any label set and a multi-label problem type', async () => {
    const labels = ['billing', 'login', 'shipping', 'bug', 'other'];
    const custom = join(root, 'multi');
    await buildBertClassifier({ dir: custom, labels, problemType: 'multi_label_classification', seed: 7 });
    const config = JSON.parse(await readFile(join(custom, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config.id2label).toEqual({ '0': 'billing', '1': 'login', '2': 'shipping', '3': 'bug', '4': 'other' });
    expect(config.label2id).toEqual({ billing: 0, login: 1, shipping: 2, bug: 3, other: 4 });
    expect(config.problem_type).toBe('multi_label_classification');
    const s = await createSession(custom);
    try {
      const [row] = await logits(s, [[2, 10, 11, 3]]);
      expect(row).toHaveLength(5);
    } finally {
      await s.release();
    }
  });

  it('rejects sizes a BERT cannot have', () => {
    expect(() => bertClassifierConfig({ hiddenSize: 30, numHeads: 4 })).toThrow(/multiple of numHeads/);
    expect(() => bertClassifierConfig({ vocabSize: 10 })).toThrow(/vocabSize/);
    expect(() => bertClassifierConfig({ labels: [] })).toThrow(/at least one label/);
    expect(() => bertClassifierConfig({ labels: ['a', 'a'] })).toThrow(/unique/);
  });

  it('describes a bench-sized model (config only, not built here)', () => {
    expect(bertClassifierConfig(BENCH_CLASSIFIER)).toMatchObject({
      hidden_size: 384,
      num_hidden_layers: 6,
      num_attention_heads: 12,
      intermediate_size: 1536,
      vocab_size: 30522,
      max_position_embeddings: 512,
    });
  });
});
