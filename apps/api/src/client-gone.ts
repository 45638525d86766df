import type { FastifyReply } from 'fastify';

/**
 * A signal aborted when the client's connection closes (or the answer is complete). Call it
 * first in a handler, before any await: a client that leaves during an await is then seen,
 * and one that left before the handler ran is seen at once.
 */
export function clientGone(reply: FastifyReply): AbortSignal {
  const gone = new AbortController();
  const raw = reply.raw;
  if (raw.destroyed || raw.writableEnded || raw.socket?.destroyed) {
    gone.abort();
    return gone.signal;
  }
  raw.once('close', () => gone.abort());
  return gone.signal;
}
