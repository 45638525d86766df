/**
 * Generation settings: the defaults a model ships (`config.json` then
 * `generation_config.json`, as transformers.js merges them), overridden by the request.
 * Names are camelCase; {@link modelGenerationDefaults} maps the snake_case files.
 */

/** What ends a row: an EOS token or a stop string (`stop`), or the token limit (`length`). */
export type FinishReason = 'stop' | 'length';

/** Everything that steers generation for one row, after defaults are merged and checked. */
export interface GenerationConfig {
  /**
   * Most tokens to generate, the EOS token included. @defaultValue the model's
   * `max_new_tokens`, else its `max_length` minus the prompt (decoder start token for
   * encoder-decoders), else 256
   */
  maxNewTokens: number;
  /** EOS is suppressed until this many tokens are generated. @defaultValue 0 */
  minNewTokens: number;
  /** Sample from the distribution instead of taking the most likely token. @defaultValue false */
  doSample: boolean;
  /** Divides the logits before sampling; 0 means greedy. Only used when sampling. @defaultValue 1 */
  temperature: number;
  /** Sample among the k most likely tokens only; 0 turns it off. Only used when sampling. @defaultValue 50 */
  topK: number;
  /**
   * Nucleus sampling: sample among the fewest most likely tokens whose probabilities add up
   * to at least topP, in (0, 1]. Only used when sampling. @defaultValue 1
   */
  topP: number;
  /** Logits of tokens already in the row are divided (if > 0) or multiplied by this; 1 is off. @defaultValue 1 */
  repetitionPenalty: number;
  /** No n-gram of this size occurs twice in a row's tokens; 0 is off. @defaultValue 0 */
  noRepeatNgramSize: number;
  /** Beam search with this many beams; 1 is greedy or sampling. @defaultValue 1 */
  numBeams: number;
  /**
   * Sequences to return (Python's `num_return_sequences`, OpenAI's `n`): the best ones of a
   * beam search (at most `numBeams`), or independent samples. Greedy decoding returns one.
   * @defaultValue 1
   */
  numReturnSequences: number;
  /**
   * Beam search: a finished hypothesis scores `sum(logprobs) / length ** lengthPenalty`
   * (length counts generated tokens, EOS included); > 0 favours longer outputs. @defaultValue 1
   */
  lengthPenalty: number;
  /**
   * Beam search: `true` stops as soon as `numBeams` hypotheses are finished; `false` stops
   * when no running beam can beat the worst finished one, by a length-normalised estimate
   * (HF's heuristic); `'never'` only when that is certain. @defaultValue false
   */
  earlyStopping: boolean | 'never';
  /** Tokens that end a row. @defaultValue the model's `eos_token_id` */
  eosTokenId: number[];
  /** Token that pads finished rows. @defaultValue the model's `pad_token_id` */
  padTokenId: number | undefined;
  /** Token forced as the first generated one (mBART language ids). @defaultValue the model's, if any */
  forcedBosTokenId: number | undefined;
  /** Token forced as the last one when the limit is reached (BART). @defaultValue the model's, if any */
  forcedEosTokenId: number | undefined;
  /** Strings that end generation; the text is cut before the first of them. @defaultValue [] */
  stop: string[];
  /**
   * Special tokens among the stop strings (`<|im_end|>`): decoding skips them, so they are
   * matched as tokens, as Python's `StopStringCriteria` matches token strings. Set by the
   * pipeline from its tokenizer. @defaultValue []
   */
  stopTokenIds: number[];
  /** Seed of this row's sampler: the same seed gives the same tokens in any batch. @defaultValue random */
  seed: number | undefined;
  /**
   * What was adjusted while merging, as Python `transformers` warns of it (a model
   * `min_length` over the request's limit, ...): for the worker's log. @defaultValue []
   */
  warnings: string[];
}

/** Request-side generation parameters: any subset of {@link GenerationConfig}. */
export interface GenerationOptions {
  /** {@inheritDoc GenerationConfig.maxNewTokens} */
  maxNewTokens?: number;
  /** {@inheritDoc GenerationConfig.minNewTokens} */
  minNewTokens?: number;
  /** {@inheritDoc GenerationConfig.doSample} */
  doSample?: boolean;
  /** {@inheritDoc GenerationConfig.temperature} */
  temperature?: number;
  /** {@inheritDoc GenerationConfig.topK} */
  topK?: number;
  /** {@inheritDoc GenerationConfig.topP} */
  topP?: number;
  /** {@inheritDoc GenerationConfig.repetitionPenalty} */
  repetitionPenalty?: number;
  /** {@inheritDoc GenerationConfig.noRepeatNgramSize} */
  noRepeatNgramSize?: number;
  /** {@inheritDoc GenerationConfig.numBeams} */
  numBeams?: number;
  /** {@inheritDoc GenerationConfig.numReturnSequences} */
  numReturnSequences?: number;
  /** {@inheritDoc GenerationConfig.lengthPenalty} */
  lengthPenalty?: number;
  /** {@inheritDoc GenerationConfig.earlyStopping} */
  earlyStopping?: boolean | 'never';
  /** One EOS token or several. {@inheritDoc GenerationConfig.eosTokenId} */
  eosTokenId?: number | number[];
  /** {@inheritDoc GenerationConfig.padTokenId} */
  padTokenId?: number;
  /** {@inheritDoc GenerationConfig.forcedBosTokenId} */
  forcedBosTokenId?: number;
  /** {@inheritDoc GenerationConfig.forcedEosTokenId} */
  forcedEosTokenId?: number;
  /** One stop string or several. {@inheritDoc GenerationConfig.stop} */
  stop?: string | string[];
  /** {@inheritDoc GenerationConfig.seed} */
  seed?: number;
}

/**
 * A model's own defaults, read from its files: {@link GenerationOptions} plus the lengths
 * HF counts from the start of the sequence (prompt included for decoder-only models).
 */
export interface ModelGenerationDefaults extends GenerationOptions {
  /** `max_length`: most tokens in all (prompt or decoder start token included). */
  maxLength?: number;
  /** `min_length`: fewest tokens in all before EOS may come. */
  minLength?: number;
  /** `decoder_start_token_id` (encoder-decoders). */
  decoderStartTokenId?: number;
  /** `bos_token_id`. */
  bosTokenId?: number;
}

/** Upper bounds that keep one request from taking a worker down. */
export const GENERATION_LIMITS = Object.freeze({
  /** Most beams. */
  maxBeams: 16,
  /** Most sequences returned per request. */
  maxReturnSequences: 16,
  /** Most stop strings. */
  maxStopStrings: 16,
  /** Longest stop string, in characters. */
  maxStopLength: 200,
});

/** Defaults used where neither the model nor the request says. */
export const GENERATION_DEFAULTS = Object.freeze({
  maxNewTokens: 256,
  minNewTokens: 0,
  doSample: false,
  temperature: 1,
  topK: 50,
  topP: 1,
  repetitionPenalty: 1,
  noRepeatNgramSize: 0,
  numBeams: 1,
  numReturnSequences: 1,
  lengthPenalty: 1,
  earlyStopping: false as boolean | 'never',
});

/** Keys of `config.json` / `generation_config.json` and the option each sets. */
const HF_KEYS: Record<string, keyof ModelGenerationDefaults> = {
  max_new_tokens: 'maxNewTokens',
  min_new_tokens: 'minNewTokens',
  max_length: 'maxLength',
  min_length: 'minLength',
  do_sample: 'doSample',
  temperature: 'temperature',
  top_k: 'topK',
  top_p: 'topP',
  repetition_penalty: 'repetitionPenalty',
  no_repeat_ngram_size: 'noRepeatNgramSize',
  num_beams: 'numBeams',
  num_return_sequences: 'numReturnSequences',
  length_penalty: 'lengthPenalty',
  early_stopping: 'earlyStopping',
  eos_token_id: 'eosTokenId',
  pad_token_id: 'padTokenId',
  forced_bos_token_id: 'forcedBosTokenId',
  forced_eos_token_id: 'forcedEosTokenId',
  decoder_start_token_id: 'decoderStartTokenId',
  bos_token_id: 'bosTokenId',
};

/**
 * The generation defaults a model ships: the generation keys of `config.json`, then those
 * of `generation_config.json` over them (the order transformers.js merges them in).
 * Null values are skipped.
 */
export function modelGenerationDefaults(
  config: Record<string, unknown>,
  generationConfig: Record<string, unknown> | undefined,
): ModelGenerationDefaults {
  const out: Record<string, unknown> = {};
  for (const source of [config, generationConfig ?? {}]) {
    for (const [hfKey, key] of Object.entries(HF_KEYS)) {
      const value = source[hfKey];
      if (value !== undefined && value !== null) out[key] = value;
    }
  }
  return out as ModelGenerationDefaults;
}

function defined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value);
}

/**
 * Merges the model's defaults and the request into one checked {@link GenerationConfig}.
 * Throws an Error naming the bad parameter.
 *
 * @param model - the model's defaults ({@link modelGenerationDefaults}).
 * @param request - the request's parameters; undefined ones are ignored.
 * @param startLength - tokens before the first generated one that `max_length` and
 *   `min_length` count: the prompt (decoder-only) or 1, the decoder start token (encoder-decoder).
 */
export function resolveGenerationConfig(
  model: ModelGenerationDefaults,
  request: GenerationOptions,
  startLength: number,
): GenerationConfig {
  const { maxLength, minLength, decoderStartTokenId: _d, bosTokenId: _b, ...modelOptions } = model;
  // Python's `_prepare_generated_length`: `max_new_tokens` (the request's, else the model's)
  // wins over `max_length`, and `min_new_tokens` over `min_length`; both `*_length` count
  // from the start of the sequence.
  const fromLengths: GenerationOptions = {};
  if (modelOptions.maxNewTokens === undefined && maxLength !== undefined) {
    fromLengths.maxNewTokens = Math.max(1, maxLength - startLength);
  }
  if (modelOptions.minNewTokens === undefined && minLength !== undefined) {
    fromLengths.minNewTokens = Math.max(0, minLength - startLength);
  }
  const merged = { ...GENERATION_DEFAULTS, ...defined(fromLengths), ...defined(modelOptions), ...defined(request) };
  const eos = merged.eosTokenId === undefined ? [] : Array.isArray(merged.eosTokenId) ? [...merged.eosTokenId] : [merged.eosTokenId];
  const stop = merged.stop === undefined ? [] : Array.isArray(merged.stop) ? [...merged.stop] : [merged.stop];
  const warnings: string[] = [];
  let minNewTokens = merged.minNewTokens;
  // A minimum the request did not set (the model's `min_length`, say distilbart-cnn's 56)
  // above the maximum is unfeasible: Python warns and generates up to the maximum, EOS
  // suppressed all along. A request that contradicts itself is still refused below.
  if (request.minNewTokens === undefined && isInt(minNewTokens) && isInt(merged.maxNewTokens) && minNewTokens > merged.maxNewTokens) {
    warnings.push(
      `Unfeasible length constraints: the model's minimum of ${minNewTokens} new tokens is over maxNewTokens (${merged.maxNewTokens}); ` +
        'generation stops at maxNewTokens',
    );
    minNewTokens = merged.maxNewTokens;
  }
  const config: GenerationConfig = {
    maxNewTokens: merged.maxNewTokens,
    minNewTokens,
    doSample: merged.doSample,
    temperature: merged.temperature,
    topK: merged.topK,
    topP: merged.topP,
    repetitionPenalty: merged.repetitionPenalty,
    noRepeatNgramSize: merged.noRepeatNgramSize,
    numBeams: merged.numBeams,
    numReturnSequences: merged.numReturnSequences,
    lengthPenalty: merged.lengthPenalty,
    earlyStopping: merged.earlyStopping,
    eosTokenId: eos,
    padTokenId: merged.padTokenId,
    forcedBosTokenId: merged.forcedBosTokenId,
    forcedEosTokenId: merged.forcedEosTokenId,
    stop,
    stopTokenIds: [],
    seed: merged.seed,
    warnings,
  };
  // temperature 0 means greedy, as in transformers.js and most serving APIs.
  if (config.temperature === 0) config.doSample = false;
  validateGenerationConfig(config);
  return config;
}

/**
 * Draws a seed for a sampling row that has none, so that a retry of its batch samples the
 * same tokens (and the text it already streamed is not sent again with a different end).
 */
export function fixSeed(config: GenerationConfig): void {
  if (config.doSample && config.seed === undefined) config.seed = Math.floor(Math.random() * 0x100000000);
}

/** Throws an Error naming the first parameter that is out of range. */
export function validateGenerationConfig(c: GenerationConfig): void {
  const fail = (message: string): never => {
    throw new Error(`Invalid generation parameter: ${message}`);
  };
  if (!isInt(c.maxNewTokens) || c.maxNewTokens < 1) fail(`maxNewTokens must be an integer >= 1, got ${c.maxNewTokens}`);
  if (!isInt(c.minNewTokens) || c.minNewTokens < 0) fail(`minNewTokens must be an integer >= 0, got ${c.minNewTokens}`);
  if (c.minNewTokens > c.maxNewTokens) fail(`minNewTokens (${c.minNewTokens}) must be <= maxNewTokens (${c.maxNewTokens})`);
  if (typeof c.doSample !== 'boolean') fail(`doSample must be a boolean, got ${String(c.doSample)}`);
  if (typeof c.temperature !== 'number' || !Number.isFinite(c.temperature) || c.temperature < 0) {
    fail(`temperature must be a number >= 0, got ${c.temperature}`);
  }
  if (!isInt(c.topK) || c.topK < 0) fail(`topK must be an integer >= 0 (0 turns it off), got ${c.topK}`);
  if (typeof c.topP !== 'number' || !(c.topP > 0 && c.topP <= 1)) fail(`topP must be in (0, 1], got ${c.topP}`);
  if (typeof c.repetitionPenalty !== 'number' || !Number.isFinite(c.repetitionPenalty) || c.repetitionPenalty <= 0) {
    fail(`repetitionPenalty must be a number > 0, got ${c.repetitionPenalty}`);
  }
  if (!isInt(c.noRepeatNgramSize) || c.noRepeatNgramSize < 0) fail(`noRepeatNgramSize must be an integer >= 0, got ${c.noRepeatNgramSize}`);
  if (!isInt(c.numBeams) || c.numBeams < 1 || c.numBeams > GENERATION_LIMITS.maxBeams) {
    fail(`numBeams must be an integer from 1 to ${GENERATION_LIMITS.maxBeams}, got ${c.numBeams}`);
  }
  if (c.numBeams > 1 && c.doSample) fail('beam sampling (numBeams > 1 with doSample) is not supported');
  if (!isInt(c.numReturnSequences) || c.numReturnSequences < 1 || c.numReturnSequences > GENERATION_LIMITS.maxReturnSequences) {
    fail(`numReturnSequences must be an integer from 1 to ${GENERATION_LIMITS.maxReturnSequences}, got ${c.numReturnSequences}`);
  }
  // Python: "num_return_sequences has to be smaller or equal to num_beams", and greedy
  // decoding (one deterministic answer) can't return more than one.
  if (c.numBeams > 1 && c.numReturnSequences > c.numBeams) fail(`numReturnSequences (${c.numReturnSequences}) must be <= numBeams (${c.numBeams})`);
  if (c.numBeams === 1 && !c.doSample && c.numReturnSequences > 1) fail('numReturnSequences > 1 needs sampling (doSample) or beam search (numBeams > 1)');
  if (typeof c.lengthPenalty !== 'number' || !Number.isFinite(c.lengthPenalty)) fail(`lengthPenalty must be a finite number, got ${c.lengthPenalty}`);
  if (c.earlyStopping !== true && c.earlyStopping !== false && c.earlyStopping !== 'never') {
    fail(`earlyStopping must be true, false or 'never', got ${String(c.earlyStopping)}`);
  }
  if (c.eosTokenId.some((id) => !isInt(id) || id < 0)) fail(`eosTokenId must be token ids, got ${JSON.stringify(c.eosTokenId)}`);
  for (const [name, id] of [['padTokenId', c.padTokenId], ['forcedBosTokenId', c.forcedBosTokenId], ['forcedEosTokenId', c.forcedEosTokenId]] as const) {
    if (id !== undefined && (!isInt(id) || id < 0)) fail(`${name} must be a token id, got ${id}`);
  }
  if (c.stop.length > GENERATION_LIMITS.maxStopStrings) fail(`at most ${GENERATION_LIMITS.maxStopStrings} stop strings, got ${c.stop.length}`);
  for (const s of c.stop) {
    if (typeof s !== 'string' || s.length === 0 || s.length > GENERATION_LIMITS.maxStopLength) {
      fail(`stop strings must be 1 to ${GENERATION_LIMITS.maxStopLength} characters, got ${JSON.stringify(s)}`);
    }
  }
  if (c.stop.length > 0 && c.numBeams > 1) fail('stop strings are not supported with beam search (numBeams > 1)');
  if (c.seed !== undefined && (!isInt(c.seed) || c.seed < 0 || c.seed > 0xffffffff)) {
    fail(`seed must be an integer from 0 to 4294967295, got ${c.seed}`);
  }
}
