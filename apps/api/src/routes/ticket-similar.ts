import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import Type from 'typebox';
import { ErrorBody, SimilarTickets, SimilarTicketsQuery } from '@inferq/contracts';
import { TicketArchive, isTicketId } from '@inferq/queue';
import { httpError } from '../errors.js';

/**
 * `GET /v1/tickets/:id/similar?top_k=5`: the kept tickets most like this one (cosine over the
 * embeddings kept for TICKET_RETENTION_SECONDS), each with its score and issue label.
 */
export const similarTicketRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const archive = new TicketArchive(app.queues.redis, app.config.QUEUE_PREFIX);
  app.get(
    '/v1/tickets/:id/similar',
    {
      config: { owned: 'ticket' },
      schema: {
        summary: 'Tickets similar to this one',
        description: 'Among the tickets kept (with their embeddings) for TICKET_RETENTION_SECONDS. A ticket is kept once triaged, when a worker serves the embedding model.',
        tags: ['tickets'],
        params: Type.Object({ id: Type.String({ minLength: 1, maxLength: 200 }) }),
        querystring: SimilarTicketsQuery,
        response: { 200: SimilarTickets, 400: ErrorBody, 404: ErrorBody, 503: ErrorBody },
      },
    },
    async (request) => {
      app.batches.assertAvailable();
      const { id } = request.params;
      const ticket = isTicketId(id) ? await archive.get(id) : undefined;
      if (!ticket) throw httpError('INFERQ_ERR_TICKET_NOT_FOUND', id.slice(0, 100));
      // Among the caller's own tickets only.
      const similar = await archive.similar(ticket, request.query.top_k ?? 5, (ids) => app.owners.store.ownedAmong('ticket', ids, request.tenant));
      return {
        id,
        model: ticket.model,
        data: similar.map(({ ticket: t, score }) => ({ id: t.id, score, issue: t.issue, text: t.text, created_at: new Date(t.at).toISOString() })),
      };
    },
  );
};
