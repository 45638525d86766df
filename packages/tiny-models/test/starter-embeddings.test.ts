import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureModel, STARTER_EMBEDDINGS_ID, starterEmbeddingWeights, trainEmbeddings, quantizeEmbeddings } from '../src/index.js';

let modelsDir: string;
beforeAll(async () => {
  modelsDir = await mkdtemp(join(tmpdir(), 'tiny-models-starter-emb-'));
});
afterAll(async () => {
  await rm(modelsDir, { recursive: true, force: true });
});

// Sentences of our own: two topics whose words co-occur only within their topic.
const CORPUS = Array.from({ length: 40 }, (_, i) =>
  i % 2 === 0 ? `the battery charge lasts hours and the charger ${i % 4 === 0 ? 'drains' : 'charges'} the battery fast` : `the hotel room was clean and the hotel staff ${i % 4 === 1 ? 'cleaned' : 'made'} the room bed`,
);

describe('starter embeddings', () => {
  it('training is deterministic and puts words of one topic together', () => {
    const a = trainEmbeddings(CORPUS, { dims: 4, minCount: 2, minPieceWords: 2 });
    const b = trainEmbeddings(CORPUS, { dims: 4, minCount: 2, minPieceWords: 2 });
    const meta = { description: 't', provenance: {} };
    expect(JSON.stringify(quantizeEmbeddings(a, meta))).toBe(JSON.stringify(quantizeEmbeddings(b, meta)));
    const row = (w: string) => a.vectors.subarray(a.vocab.indexOf(w) * a.dims, (a.vocab.indexOf(w) + 1) * a.dims);
    const cos = (x: Float64Array, y: Float64Array) => {
      let s = 0, nx = 0, ny = 0;
      for (let i = 0; i < x.length; i++) (s += x[i]! * y[i]!), (nx += x[i]! ** 2), (ny += y[i]! ** 2);
      return s / Math.sqrt(nx * ny);
    };
    expect(cos(row('battery'), row('charger'))).toBeGreaterThan(cos(row('battery'), row('hotel')));
    expect(cos(row('room'), row('hotel'))).toBeGreaterThan(cos(row('room'), row('charger')));
  });

  it('builds from the committed weights, without data, in the sentence-transformers layout', async () => {
    const file = starterEmbeddingWeights();
    expect(file.format).toBe('inferq-embedding-bag/1');
    expect(JSON.stringify(file)).not.toMatch(/opinosis/i);
    const dir = await ensureModel(modelsDir, STARTER_EMBEDDINGS_ID);
    const config = JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')) as { hidden_size: number; architectures: string[] };
    expect(config.architectures).toEqual(['EmbeddingBagModel']);
    expect(config.hidden_size).toBe(file.dims + 160);
    const pooling = JSON.parse(await readFile(join(dir, '1_Pooling', 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(pooling).toMatchObject({ pooling_mode_mean_tokens: true, word_embedding_dimension: config.hidden_size });
  });
});
