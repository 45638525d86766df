import Type, { type Static } from 'typebox';

export const SimilarTicketsQuery = Type.Object(
  { top_k: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'How many similar tickets (default 5)' })) },
  { additionalProperties: false },
);
export type SimilarTicketsQuery = Static<typeof SimilarTicketsQuery>;

export const SimilarTicket = Type.Object({
  id: Type.String(),
  score: Type.Number({ description: 'Cosine similarity of the two tickets\' embeddings' }),
  issue: Type.String({ description: 'The issue label the ticket was given' }),
  text: Type.String(),
  created_at: Type.String({ format: 'date-time' }),
});

export const SimilarTickets = Type.Object(
  { id: Type.String(), model: Type.String(), data: Type.Array(SimilarTicket, { description: 'Most similar first' }) },
  { $id: 'SimilarTickets' },
);
export type SimilarTickets = Static<typeof SimilarTickets>;
