/**
 * A request whose parameters turn out unusable only while it generates (a temperature so
 * small that the scores overflow): the caller's input is at fault, not the model, so
 * callers answer it as a bad request (Python `transformers` raises there too).
 */
export class GenerationParameterError extends Error {
  override readonly name = 'GenerationParameterError';
}
