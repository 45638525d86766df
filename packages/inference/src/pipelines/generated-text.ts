import type { FinishReason } from '../generation/generation-config.js';

/** What a generation pipeline returns for one request. */
export interface GeneratedText {
  /**
   * The generated text (special tokens skipped, cut before the first stop string); with
   * `returnFullText`, the prompt text followed by it.
   */
  text: string;
  /** Generated token ids, `[outputTokens]`, the EOS token included when one ended the text. */
  tokenIds: number[];
  /** `stop`: an EOS token or a stop string ended it; `length`: it reached `maxNewTokens`. */
  finishReason: FinishReason;
  /** Tokens in the prompt (decoder-only) or the encoder input (encoder-decoder). */
  inputTokens: number;
  /** Tokens generated: `tokenIds.length`. */
  outputTokens: number;
  /**
   * With `numReturnSequences` > 1: every returned sequence, this one first (beam search:
   * best first). `outputTokens` above counts the first only.
   */
  sequences?: Omit<GeneratedText, 'inputTokens' | 'sequences'>[];
}

/** Options of a generation pipeline's `run`. */
export interface GenerationRunOptions {
  /** Called with each new piece of text of row `rowIndex` (its index in the batch), for streaming. */
  onToken?: (rowIndex: number, textDelta: string) => void;
}
