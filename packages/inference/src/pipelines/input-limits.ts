import type { TextTokenizer } from '../text-tokenizer.js';

/** A prompt over the request's token limit (`maxPromptTokens`); the worker reports it with its own code. */
export class PromptTooLongError extends Error {
  constructor(
    /** The limit, in tokens. */
    readonly limit: number,
  ) {
    super(`The prompt is over ${limit} tokens`);
    this.name = 'PromptTooLongError';
  }
}

/**
 * Throws {@link PromptTooLongError} when `prompt` tokenizes to more than `limit` tokens,
 * tokenizing no more of it than `limit + 1` tokens need (a 100,000-character prompt costs
 * what its first tokens cost).
 */
export function checkPromptTokens(tokenizer: TextTokenizer, prompt: string, addSpecialTokens: boolean, limit: number): void {
  if (tokenizer.encodeWith(prompt, { addSpecialTokens, maxLength: limit + 1, side: 'right' }).ids.length > limit) {
    throw new PromptTooLongError(limit);
  }
}
