import { randomUUID } from 'node:crypto';

/** The queue of ticket parents: each waits for its two children, then combines them. */
export const TICKETS_QUEUE = 'tickets';

/** What a ticket's parent job holds; the texts are in its children. */
export interface TicketJobData {
  /** Child job ids, also readable at `/v1/jobs/:id`. */
  jobs: { classification: string; summary: string };
  /** The zero-shot child's queue and the summary child's queue, to find their results. */
  queues: { classification: string; summary: string };
  /**
   * The embedding child, when a worker served the embedding model as the ticket came in: the
   * parent then keeps the ticket's text and vector for TICKET_RETENTION_SECONDS (clusters of
   * tickets, similar tickets).
   */
  embedding?: { job: string; queue: string; model: string };
  /** The ticket's text, kept with its embedding. */
  text?: string;
}

export function newTicketId(): string {
  return `ticket-${randomUUID().replaceAll('-', '')}`;
}

export function isTicketId(id: string): boolean {
  return /^ticket-[a-f0-9]{32}$/.test(id);
}
