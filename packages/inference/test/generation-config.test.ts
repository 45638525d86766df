import { describe, expect, it } from 'vitest';
import { GENERATION_DEFAULTS, modelGenerationDefaults, resolveGenerationConfig } from '../src/index.js';

describe('generation config', () => {
  it('merges config.json, then generation_config.json, then the request', () => {
    const model = modelGenerationDefaults(
      { eos_token_id: 2, pad_token_id: 1, num_beams: 4, forced_eos_token_id: 2, no_repeat_ngram_size: null },
      { eos_token_id: [5, 6], max_new_tokens: 40, temperature: 0.7 },
    );
    expect(model).toEqual({ eosTokenId: [5, 6], padTokenId: 1, numBeams: 4, forcedEosTokenId: 2, maxNewTokens: 40, temperature: 0.7 });
    const config = resolveGenerationConfig(model, { numBeams: 1, maxNewTokens: 10, stop: 'END' }, 7);
    expect(config).toMatchObject({ eosTokenId: [5, 6], numBeams: 1, maxNewTokens: 10, temperature: 0.7, stop: ['END'], topK: 50, topP: 1 });
  });

  it('documents its defaults and uses them where nothing is said', () => {
    const config = resolveGenerationConfig({}, {}, 3);
    expect(config).toMatchObject(GENERATION_DEFAULTS);
    expect(config).toMatchObject({ maxNewTokens: 256, doSample: false, eosTokenId: [], stop: [], seed: undefined });
  });

  it('turns max_length and min_length, which count the start, into new-token limits', () => {
    expect(resolveGenerationConfig({ maxLength: 64, minLength: 10 }, {}, 1)).toMatchObject({ maxNewTokens: 63, minNewTokens: 9 });
    expect(resolveGenerationConfig({ maxLength: 64 }, {}, 20)).toMatchObject({ maxNewTokens: 44 });
    expect(resolveGenerationConfig({ maxLength: 64, maxNewTokens: 5 }, {}, 20)).toMatchObject({ maxNewTokens: 5 });
    expect(resolveGenerationConfig({ maxLength: 64 }, { maxNewTokens: 100 }, 20)).toMatchObject({ maxNewTokens: 100 });
  });

  it('treats temperature 0 as greedy', () => {
    expect(resolveGenerationConfig({}, { doSample: true, temperature: 0 }, 1).doSample).toBe(false);
  });

  it.each([
    [{ temperature: -0.5 }, /temperature must be a number >= 0/],
    [{ temperature: Number.NaN }, /temperature/],
    [{ topP: 0 }, /topP must be in \(0, 1\]/],
    [{ topP: 1.2 }, /topP must be in \(0, 1\]/],
    [{ topK: -1 }, /topK must be an integer >= 0/],
    [{ topK: 2.5 }, /topK/],
    [{ maxNewTokens: 0 }, /maxNewTokens must be an integer >= 1/],
    [{ minNewTokens: 20, maxNewTokens: 10 }, /minNewTokens \(20\) must be <= maxNewTokens \(10\)/],
    [{ repetitionPenalty: 0 }, /repetitionPenalty must be a number > 0/],
    [{ noRepeatNgramSize: -2 }, /noRepeatNgramSize/],
    [{ numBeams: 0 }, /numBeams must be an integer from 1 to 16/],
    [{ numBeams: 64 }, /numBeams must be an integer from 1 to 16/],
    [{ numBeams: 4, doSample: true }, /beam sampling/],
    [{ numBeams: 4, stop: ['x'] }, /stop strings are not supported with beam search/],
    [{ stop: [''] }, /stop strings must be 1 to 200 characters/],
    [{ stop: Array.from({ length: 17 }, (_, i) => `s${i}`) }, /at most 16 stop strings/],
    [{ seed: -1 }, /seed must be an integer/],
    [{ seed: 1.5 }, /seed/],
    [{ eosTokenId: [-3] }, /eosTokenId/],
    [{ earlyStopping: 'sometimes' as unknown as boolean }, /earlyStopping/],
  ])('rejects %o', (request, message) => {
    expect(() => resolveGenerationConfig({}, request, 1)).toThrow(message);
  });
});
