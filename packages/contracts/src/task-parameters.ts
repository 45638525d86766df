import Type, { type Static, type TSchema } from 'typebox';
import type { TaskName } from './tasks.js';
import { compileBounded, type BoundedValidator } from './bounded-validator.js';

/**
 * The `parameters` each task takes, in the names people know from the Hugging Face
 * pipelines. Unknown parameters are refused, not ignored.
 */
export const ClassificationParameters = Type.Object(
  {
    top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, description: 'Return the k best labels (default: all labels)' })),
  },
  { additionalProperties: false },
);
export type ClassificationParameters = Static<typeof ClassificationParameters>;

/** Most candidate labels in one zero-shot request. */
export const MAX_CANDIDATE_LABELS = 50;

export const ZeroShotParameters = Type.Object(
  {
    candidate_labels: Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
      minItems: 1,
      maxItems: MAX_CANDIDATE_LABELS,
      uniqueItems: true,
      description: `The labels to choose from (1 to ${MAX_CANDIDATE_LABELS})`,
      examples: [['billing', 'login and account', 'bug']],
    }),
    hypothesis_template: Type.Optional(
      Type.String({ pattern: '\\{\\}', maxLength: 500, description: 'Hypothesis per label; `{}` is the label. Default "This example is {}."' }),
    ),
    multi_label: Type.Optional(Type.Boolean({ description: 'Score each label on its own (scores do not sum to 1)' })),
  },
  { additionalProperties: false },
);
export type ZeroShotParameters = Static<typeof ZeroShotParameters>;

/** Settings shared by summarization and generation. */
const decoding = {
  max_new_tokens: Type.Optional(Type.Integer({ minimum: 1, description: 'Most tokens to generate (capped by the server)' })),
  min_new_tokens: Type.Optional(Type.Integer({ minimum: 0, description: 'Fewest tokens before an end-of-sequence token may end the text' })),
  do_sample: Type.Optional(Type.Boolean({ description: 'Sample instead of greedy decoding' })),
  temperature: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100, description: 'Sampling temperature (> 0)' })),
  top_k: Type.Optional(Type.Integer({ minimum: 0, description: 'Sample among the k most likely tokens (0: all)' })),
  top_p: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Nucleus sampling: the smallest set whose probability reaches p, in (0, 1]' })),
  repetition_penalty: Type.Optional(Type.Number({ exclusiveMinimum: 0, maximum: 100, description: 'Penalty for tokens already in the text (1: none)' })),
  no_repeat_ngram_size: Type.Optional(Type.Integer({ minimum: 0, maximum: 100, description: 'No n-gram of this size appears twice (0: off)' })),
  num_beams: Type.Optional(Type.Integer({ minimum: 1, maximum: 16, description: 'Beam search width (1: no beam search)' })),
  num_return_sequences: Type.Optional(
    Type.Integer({ minimum: 1, maximum: 16, description: 'Sequences to return: the best beams (at most num_beams) or independent samples (do_sample)' }),
  ),
  length_penalty: Type.Optional(Type.Number({ minimum: -10, maximum: 10, description: 'Beam score exponent on length (> 0 favours longer texts)' })),
  seed: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'Sampling seed: the same seed gives the same text' })),
};

export const SummarizationParameters = Type.Object(decoding, { additionalProperties: false });
export type SummarizationParameters = Static<typeof SummarizationParameters>;

export const GenerationParameters = Type.Object(
  {
    ...decoding,
    stop: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 100 }), { maxItems: 8, description: 'Stop when any of these texts appears (it is cut from the output)' }),
    ),
    return_full_text: Type.Optional(Type.Boolean({ description: 'Return the prompt followed by the generated text' })),
  },
  { additionalProperties: false },
);
export type GenerationParameters = Static<typeof GenerationParameters>;

/** Pooling modes of sentence-transformers; used only when the model folder has no `1_Pooling/config.json`. */
export const POOLING_NAMES = ['mean', 'cls', 'max', 'last_token'] as const;

export const EmbeddingParameters = Type.Object(
  {
    pooling: Type.Optional(Type.Enum(POOLING_NAMES, { description: "How token vectors become one; the model's 1_Pooling/config.json wins (default mean)" })),
    normalize: Type.Optional(Type.Boolean({ description: "L2-normalize the vector (default: true, or as the model's modules.json says)" })),
    dimensions: Type.Optional(Type.Integer({ minimum: 1, maximum: 65_536, description: 'Keep the first n dimensions (Matryoshka), then renormalize' })),
    prompt_name: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "A prompt of the model's config_sentence_transformers.json (e.g. `query`)" })),
    prompt: Type.Optional(Type.String({ maxLength: 1000, description: 'A literal prefix put before the input' })),
    encoding: Type.Optional(
      Type.Union([Type.Literal('float'), Type.Literal('base64')], { description: '`base64`: the vector as little-endian float32 bytes in base64 (default float)' }),
    ),
  },
  { additionalProperties: false },
);
export type EmbeddingParameters = Static<typeof EmbeddingParameters>;

/** One chat message, as in the Hugging Face chat templates. */
export const ChatMessage = Type.Object(
  {
    role: Type.Union([Type.Literal('system'), Type.Literal('user'), Type.Literal('assistant')]),
    content: Type.String({ maxLength: 100_000 }),
  },
  { additionalProperties: false },
);
export type ChatMessage = Static<typeof ChatMessage>;

export const PARAMETER_SCHEMAS: Record<TaskName, TSchema> = {
  classification: ClassificationParameters,
  'zero-shot-classification': ZeroShotParameters,
  summarization: SummarizationParameters,
  generation: GenerationParameters,
  embedding: EmbeddingParameters,
};

/** Which tasks take chat messages as `input` (the others take a string). */
export const CHAT_TASKS: readonly TaskName[] = ['generation'];

const compiled = Object.fromEntries(Object.entries(PARAMETER_SCHEMAS).map(([task, schema]) => [task, compileBounded(schema)])) as Record<
  TaskName,
  BoundedValidator
>;

/**
 * Checks a task's parameters; returns one message per problem, naming the parameter
 * (`parameters.top_p must be <= 1`), or an empty list.
 */
export function checkParameters(task: TaskName, parameters: unknown): string[] {
  const validator = compiled[task];
  if (validator.Check(parameters)) return [];
  const problems: string[] = [];
  for (const error of validator.Errors(parameters)) {
    if (error.keyword === 'boolean') continue; // the additionalProperties detail below says it better
    const path = `parameters${error.instancePath.replaceAll('/', '.')}`;
    if (error.keyword === 'additionalProperties') {
      const extra = (error.params as { additionalProperties?: string[] }).additionalProperties ?? [];
      problems.push(`unknown parameter${extra.length > 1 ? 's' : ''} ${extra.map((p) => `"${p}"`).join(', ')} for task "${task}"`);
    } else if (error.keyword === 'required') {
      const missing = (error.params as { requiredProperties?: string[] }).requiredProperties ?? [];
      problems.push(`${path} needs ${missing.map((p) => `"${p}"`).join(', ')} for task "${task}"`);
    } else {
      problems.push(`${path} ${error.message}`);
    }
  }
  return problems.length > 0 ? problems : [`parameters are invalid for task "${task}"`];
}
