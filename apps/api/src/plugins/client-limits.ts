import fp from 'fastify-plugin';
import type { FastifyRequest } from 'fastify';
import { ClientHolds } from '../client-holds.js';
import { httpError } from '../errors.js';

export interface ClientLimitsOptions {
  /** Event streams one client may hold open at once. */
  maxStreams: number;
  /** Long-polls one client may hold at once. */
  maxWaits: number;
}

export interface ClientLimits {
  /** Open event streams, per client. */
  readonly streams: ClientHolds;
  /** Long-polls in progress, per client. */
  readonly waits: ClientHolds;
  /** Takes a stream hold for the request's client; throws 429 `INFERQ_ERR_TOO_MANY_STREAMS` past the limit. */
  holdStream(request: FastifyRequest): () => void;
  /** Takes a long-poll hold for the request's client; throws 429 `INFERQ_ERR_TOO_MANY_WAITS` past the limit. */
  holdWait(request: FastifyRequest): () => void;
}

declare module 'fastify' {
  interface FastifyInstance {
    clientLimits: ClientLimits;
  }
}

/** `app.clientLimits`: what one client (by IP address) may hold open at once. */
export const clientLimitsPlugin = fp<ClientLimitsOptions>(
  async (app, { maxStreams, maxWaits }) => {
    const streams = new ClientHolds(maxStreams);
    const waits = new ClientHolds(maxWaits);
    const hold = (holds: ClientHolds, code: 'INFERQ_ERR_TOO_MANY_STREAMS' | 'INFERQ_ERR_TOO_MANY_WAITS', request: FastifyRequest) => {
      const taken = holds.acquire(request.ip);
      if ('held' in taken) throw httpError(code, taken.held, holds.limit);
      return taken.release;
    };
    app.decorate('clientLimits', {
      streams,
      waits,
      holdStream: (request) => hold(streams, 'INFERQ_ERR_TOO_MANY_STREAMS', request),
      holdWait: (request) => hold(waits, 'INFERQ_ERR_TOO_MANY_WAITS', request),
    } satisfies ClientLimits);
  },
  { name: 'inferq-client-limits' },
);
