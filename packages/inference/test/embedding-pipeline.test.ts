import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TINY_EMBEDDINGS_ID } from '@inferq/tiny-models';
import { EmbeddingPipeline, embeddingFromBase64, embeddingToBase64 } from '../src/index.js';
import { TICKETS, tinyModels } from './helpers.js';

let models: Awaited<ReturnType<typeof tinyModels>>;
let pipe: EmbeddingPipeline;

beforeAll(async () => {
  models = await tinyModels([TINY_EMBEDDINGS_ID]);
  pipe = await EmbeddingPipeline.load(models.dirs[TINY_EMBEDDINGS_ID]!);
});
afterAll(async () => {
  await pipe.release();
  await models.cleanup();
});

const norm = (v: ArrayLike<number>) => Math.sqrt(Array.from(v).reduce((s, x) => s + x * x, 0));
const cosine = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * (b[i] ?? 0), 0) / (norm(a) * norm(b));

describe('embedding pipeline', () => {
  it('returns unit vectors as wide as the model, one per text, that differ between texts', async () => {
    const vectors = await pipe.embed(TICKETS);
    expect(vectors).toHaveLength(TICKETS.length);
    for (const v of vectors) {
      expect(v.length).toBe(pipe.hiddenSize);
      expect(norm(v)).toBeCloseTo(1, 5);
    }
    expect(cosine(vectors[0]!, vectors[1]!)).toBeLessThan(0.9999);
  });

  it('normalize: false keeps the pooled vector as it is (its direction unchanged)', async () => {
    const [unit] = await pipe.embed([TICKETS[0]!]);
    const [raw] = await pipe.embed([TICKETS[0]!], { normalize: false });
    expect(Math.abs(norm(raw!) - 1)).toBeGreaterThan(1e-3);
    expect(cosine(unit!, raw!)).toBeCloseTo(1, 5);
  });

  it('dimensions cuts the vector to its first n values and renormalizes them (Matryoshka)', async () => {
    const [full] = await pipe.embed([TICKETS[3]!], { normalize: false });
    const [cut] = await pipe.embed([TICKETS[3]!], { dimensions: 8 });
    expect(cut).toHaveLength(8);
    expect(norm(cut!)).toBeCloseTo(1, 5);
    const head = full!.slice(0, 8);
    expect(cosine(cut!, head)).toBeCloseTo(1, 5);
  });

  it('refuses dimensions wider than the model, and an unknown prompt name', () => {
    expect(() => pipe.prepare({ text: 'x', dimensions: pipe.hiddenSize + 1 })).toThrow(/dimensions must be an integer from 1 to 32/);
    expect(() => pipe.prepare({ text: 'x', promptName: 'nope' })).toThrow(/query, passage/);
    expect(() => pipe.prepare({ text: 'x', promptName: 'query', prompt: 'q: ' })).toThrow(/not both/);
  });

  it('prompt_name puts the prompt of config_sentence_transformers.json before the text', async () => {
    const [named] = await pipe.embed([TICKETS[0]!], { promptName: 'query' });
    const [literal] = await pipe.embed([`query: ${TICKETS[0]}`]);
    const [prefix] = await pipe.embed([TICKETS[0]!], { prompt: 'query: ' });
    const [plain] = await pipe.embed([TICKETS[0]!]);
    expect(Array.from(named!)).toEqual(Array.from(literal!));
    expect(Array.from(prefix!)).toEqual(Array.from(literal!));
    expect(Array.from(plain!)).not.toEqual(Array.from(literal!));
    expect(pipe.prepare({ text: TICKETS[0]!, promptName: 'query' }).encoded.ids.length).toBeGreaterThan(pipe.prepare({ text: TICKETS[0]! }).encoded.ids.length);
  });

  it('cuts inputs at sentence_bert_config.json max_seq_length (256), as sentence-transformers does', () => {
    const long = Array.from({ length: 400 }, () => 'refund').join(' ');
    expect(pipe.prepare({ text: long }).encoded.ids).toHaveLength(256);
  });

  it('base64 is little-endian float32 that decodes to the same vector', async () => {
    const [v] = await pipe.embed([TICKETS[1]!]);
    const text = embeddingToBase64(v!);
    expect(Buffer.from(text, 'base64').byteLength).toBe(4 * v!.length);
    expect(Buffer.from(text, 'base64').readFloatLE(4)).toBe(v![1]);
    expect(Array.from(embeddingFromBase64(text))).toEqual(Array.from(v!));
  });
});

describe('which models embed', () => {
  it('a bare encoder (BertModel, XLMRobertaModel) serves feature-extraction; heads and LMs do not', async () => {
    const { modelTasks, readModelConfig } = await import('../src/index.js');
    expect(modelTasks(await readModelConfig(models.dirs[TINY_EMBEDDINGS_ID]!))).toEqual(['feature-extraction']);
    expect(modelTasks({ architectures: ['XLMRobertaModel'] })).toEqual(['feature-extraction']);
    expect(modelTasks({ architectures: ['GPT2LMHeadModel'] })).toEqual(['text-generation']);
    expect(modelTasks({ architectures: ['BertForSequenceClassification'], id2label: { 0: 'a' } })).toEqual(['text-classification']);
  });
});
