import Type, { type Static } from 'typebox';
import { ErrorDetail } from './errors.js';
import { ModelId } from './models.js';

/** Longest accepted input, in characters. Longer texts are rejected, not silently cut. */
export const MAX_INPUT_CHARS = 100_000;

export const ClassificationParameters = Type.Object(
  {
    top_k: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 1000, description: 'Return the k best labels (default: all labels)' }),
    ),
  },
  { additionalProperties: false },
);
export type ClassificationParameters = Static<typeof ClassificationParameters>;

export const CreateJobBody = Type.Object(
  {
    task: Type.String({ description: 'One of the supported tasks, e.g. "classification"', examples: ['classification'] }),
    model: Type.Optional(ModelId),
    input: Type.String({ description: 'The text to process', examples: ['The battery lasts all day.'] }),
    parameters: Type.Optional(ClassificationParameters),
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

/** Labels with scores, best first. */
export const ClassificationResult = Type.Array(LabelScore);
export type ClassificationResult = Static<typeof ClassificationResult>;

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
    result: Type.Optional(ClassificationResult),
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
