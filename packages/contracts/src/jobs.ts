import Type, { type Static } from 'typebox';
import { ErrorDetail } from './errors.js';
import { ModelId } from './models.js';
import { ChatMessage } from './task-parameters.js';

/** Longest accepted input, in characters. Longer texts are rejected, not silently cut. */
export const MAX_INPUT_CHARS = 100_000;

export const CreateJobBody = Type.Object(
  {
    task: Type.String({ description: 'One of the supported tasks, e.g. "classification"', examples: ['classification'] }),
    model: Type.Optional(ModelId),
    input: Type.Union([Type.String(), Type.Array(ChatMessage, { minItems: 1, maxItems: 100 })], {
      description: 'The text to process; for `generation` also an array of chat messages `[{role, content}]`',
      examples: ['The battery lasts all day.'],
    }),
    parameters: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Task settings: `top_k` (classification); `candidate_labels`, `hypothesis_template`, `multi_label` (zero-shot-classification); `max_new_tokens`, `num_beams`, `do_sample`, `temperature`, `top_k`, `top_p`, `repetition_penalty`, `no_repeat_ngram_size`, `length_penalty`, `seed`, and for generation `stop`, `return_full_text`; `pooling`, `normalize`, `dimensions`, `prompt_name`, `prompt`, `encoding` (embedding)',
      }),
    ),
    stream: Type.Optional(
      Type.Boolean({ description: 'summarization and generation: send the text as it is generated, as `token` events on `GET /v1/jobs/:id/events`' }),
    ),
    webhook_url: Type.Optional(
      Type.String({
        description: 'http(s) URL that receives the final job view, signed (`Inferq-Signature`); private and loopback addresses are refused',
        examples: ['https://example.com/hooks/inferq'],
      }),
    ),
  },
  { additionalProperties: false, $id: 'CreateJobBody' },
);
export type CreateJobBody = Static<typeof CreateJobBody>;

export const JobStatus = Type.Union([
  Type.Literal('queued'),
  Type.Literal('running'),
  Type.Literal('succeeded'),
  Type.Literal('failed'),
  Type.Literal('cancelled'),
]);
export type JobStatus = Static<typeof JobStatus>;

export const FINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled'];

export const LabelScore = Type.Object({ label: Type.String(), score: Type.Number() });
export type LabelScore = Static<typeof LabelScore>;

/** Labels with scores, best first (classification and zero-shot-classification). */
export const ClassificationResult = Type.Array(LabelScore);
export type ClassificationResult = Static<typeof ClassificationResult>;

/** A summary or a generated text. */
export const GenerationResult = Type.Object({
  text: Type.String(),
  finish_reason: Type.Union([Type.Literal('stop'), Type.Literal('length')], {
    description: '`stop`: an end-of-sequence token or a stop text ended it; `length`: it reached max_new_tokens',
  }),
  usage: Type.Object({ input_tokens: Type.Integer(), output_tokens: Type.Integer() }),
  sequences: Type.Optional(
    Type.Array(
      Type.Object({
        text: Type.String(),
        finish_reason: Type.Union([Type.Literal('stop'), Type.Literal('length')]),
        output_tokens: Type.Integer(),
      }),
      { description: 'With num_return_sequences > 1: every sequence, the first one (text above) first; beams best first' },
    ),
  ),
});
export type GenerationResult = Static<typeof GenerationResult>;

/** A sentence embedding. */
export const EmbeddingResult = Type.Object({
  embedding: Type.Union([Type.Array(Type.Number()), Type.String()], {
    description: 'The vector; with `encoding: "base64"`, its little-endian float32 bytes in base64',
  }),
  dimensions: Type.Integer({ description: 'Length of the vector' }),
  usage: Type.Object({ input_tokens: Type.Integer() }),
});
export type EmbeddingResult = Static<typeof EmbeddingResult>;

export const JobResult = Type.Union([ClassificationResult, GenerationResult, EmbeddingResult]);
export type JobResult = Static<typeof JobResult>;

export const JobAccepted = Type.Object(
  { id: Type.String(), status: JobStatus },
  { $id: 'JobAccepted' },
);
export type JobAccepted = Static<typeof JobAccepted>;

export const JobView = Type.Object(
  {
    id: Type.String(),
    task: Type.String(),
    model: Type.String(),
    status: JobStatus,
    result: Type.Optional(JobResult),
    error: Type.Optional(ErrorDetail),
    created_at: Type.String({ format: 'date-time' }),
    started_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
    finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'JobView' },
);
export type JobView = Static<typeof JobView>;

export const JobParams = Type.Object({ id: Type.String({ minLength: 1, maxLength: 300 }) });
export type JobParams = Static<typeof JobParams>;

export const JobQuery = Type.Object(
  {
    wait: Type.Optional(
      Type.Number({ minimum: 0, description: 'Hold the request up to this many seconds until the job ends (capped by the server)' }),
    ),
  },
  { additionalProperties: false },
);
export type JobQuery = Static<typeof JobQuery>;
