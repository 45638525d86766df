import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, TINY_EMBEDDINGS_CLS_ID, TINY_EMBEDDINGS_ID } from '../src/index.js';

let modelsDir: string;
beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'tiny-models-st-'));
});
afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

const json = async (dir: string, file: string) => JSON.parse(await readFile(join(dir, file), 'utf8')) as Record<string, unknown>;

describe('tiny sentence-transformers models', () => {
  it.each([
    [TINY_EMBEDDINGS_ID, 'mean'],
    [TINY_EMBEDDINGS_CLS_ID, 'cls'],
  ])('%s has the layout of a Hub export (%s pooling)', async (id, pooling) => {
    const dir = await ensureModel(modelsDir, id);
    expect((await readdir(dir)).sort()).toEqual(
      [
        '1_Pooling',
        '2_Normalize',
        'config.json',
        'config_sentence_transformers.json',
        'modules.json',
        'onnx',
        'sentence_bert_config.json',
        'special_tokens_map.json',
        'tokenizer.json',
        'tokenizer_config.json',
        'vocab.txt',
      ].sort(),
    );
    expect(await json(dir, 'config.json')).toMatchObject({ architectures: ['BertModel'], hidden_size: 32 });
    expect((await json(dir, 'config.json')).id2label).toBeUndefined();
    expect(await json(dir, '1_Pooling/config.json')).toMatchObject({
      word_embedding_dimension: 32,
      pooling_mode_mean_tokens: pooling === 'mean',
      pooling_mode_cls_token: pooling === 'cls',
    });
    const modules = (await json(dir, 'modules.json')) as unknown as { type: string }[];
    expect(modules.map((m) => m.type.split('.').pop())).toEqual(['Transformer', 'Pooling', 'Normalize']);
    expect(await json(dir, 'config_sentence_transformers.json')).toMatchObject({ prompts: { query: 'query: ' } });
  });
});
