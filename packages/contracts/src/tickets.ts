import Type, { type Static } from 'typebox';
import { ErrorDetail } from './errors.js';
import { JobStatus, LabelScore, MAX_INPUT_CHARS } from './jobs.js';
import { MAX_CANDIDATE_LABELS } from './task-parameters.js';

/** The issue labels a ticket is sorted into when the request names none. */
export const DEFAULT_TICKET_LABELS = ['billing', 'login and account', 'bug', 'feature request', 'shipping', 'refund', 'other'] as const;

export const CreateTicketBody = Type.Object(
  {
    subject: Type.Optional(Type.String({ maxLength: 1000, description: 'The ticket subject line' })),
    body: Type.String({ description: `The ticket text, at most ${MAX_INPUT_CHARS} characters (longer: 413 INFERQ_ERR_INPUT_TOO_LARGE, as for jobs)`, examples: ['I was charged twice this month.'] }),
    labels: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 200 }), {
        minItems: 1,
        maxItems: MAX_CANDIDATE_LABELS,
        uniqueItems: true,
        description: `Issue labels to choose from (default: ${DEFAULT_TICKET_LABELS.join(', ')})`,
      }),
    ),
  },
  { additionalProperties: false, $id: 'CreateTicketBody' },
);
export type CreateTicketBody = Static<typeof CreateTicketBody>;

export const TicketResult = Type.Object({
  issue: LabelScore,
  labels: Type.Array(LabelScore, { description: 'Every label with its score, best first' }),
  summary: Type.String({ description: 'A one-line summary of the ticket' }),
});
export type TicketResult = Static<typeof TicketResult>;

export const TicketView = Type.Object(
  {
    id: Type.String(),
    object: Type.Literal('ticket'),
    status: JobStatus,
    result: Type.Optional(TicketResult),
    error: Type.Optional(ErrorDetail),
    jobs: Type.Object(
      { classification: Type.String(), summary: Type.String() },
      { description: 'The two jobs the ticket ran as (readable at /v1/jobs/:id)' },
    ),
    created_at: Type.String({ format: 'date-time' }),
    finished_at: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'TicketView' },
);
export type TicketView = Static<typeof TicketView>;
