/**
 * Truncation rules of the Rust `tokenizers` (what Python `transformers`' fast tokenizers
 * run), applied to content tokens (special tokens are added after).
 */

/** Which end of a text loses tokens (`truncation_side` of `tokenizer_config.json`). */
export type TruncationSide = 'left' | 'right';

/**
 * How many tokens each text of a pair keeps under `longest_first`, as `tokenizers`'
 * `truncate_encodings` decides: nothing is cut when both fit; when the shorter text fits in
 * half the budget it stays whole and the longer one gets the rest; otherwise each gets
 * half, and an odd budget's extra token goes to the longer text (to the second on a tie).
 *
 * Example: 20 and 10 tokens into a budget of 15 keep 8 and 7 (taking one token at a time
 * from the longer text, as transformers.js does, keeps 7 and 8).
 *
 * @param first - content tokens of the first text
 * @param second - content tokens of the second text
 * @param budget - tokens both may keep together (the limit less the special tokens)
 * @returns the tokens to keep of `[first, second]`
 */
export function longestFirstLengths(first: number, second: number, budget: number): [number, number] {
  if (first + second <= budget) return [first, second];
  const swap = first > second;
  let n1 = Math.min(first, second);
  let n2: number;
  // A shorter text over the whole budget would make `budget - n1` negative.
  if (n1 > budget) n2 = n1;
  else n2 = Math.max(n1, budget - n1);
  if (n1 + n2 > budget) {
    n1 = Math.floor(budget / 2);
    n2 = n1 + (budget % 2);
  }
  return swap ? [n2, n1] : [n1, n2];
}

/** The `keep` tokens that stay of `tokens`: the first ones, or the last ones for `left`. */
export function keepTokens<T>(tokens: T[], keep: number, side: TruncationSide): T[] {
  if (tokens.length <= keep) return tokens;
  return side === 'right' ? tokens.slice(0, Math.max(0, keep)) : tokens.slice(tokens.length - Math.max(0, keep));
}
