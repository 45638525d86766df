/**
 * Webhooks: when a job or a batch reaches its final state, its view (the JSON `GET` returns)
 * is POSTed to the `webhook_url` given at submit, with these headers:
 *
 * - `Inferq-Event`: what happened, one of {@link WEBHOOK_EVENTS};
 * - `Inferq-Signature`: `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with WEBHOOK_SECRET>`;
 * - `Inferq-Delivery`: an id that stays the same across retries of one delivery.
 *
 * A delivery is retried with exponential backoff until the receiver answers 2xx.
 */
export const WEBHOOK_EVENTS = [
  'job.succeeded',
  'job.failed',
  'batch.completed',
  'batch.failed',
  'batch.cancelled',
  'batch.expired',
] as const;
export type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

export const WEBHOOK_HEADERS = {
  event: 'inferq-event',
  signature: 'inferq-signature',
  delivery: 'inferq-delivery',
} as const;

/** Longest accepted `webhook_url`, in characters. */
export const MAX_WEBHOOK_URL_CHARS = 2048;

/**
 * What is wrong with a webhook URL's form, or undefined when it is an absolute http(s) URL
 * with a host and no credentials. (Where it points is checked apart: that needs DNS.)
 */
export function webhookUrlProblem(url: string): string | undefined {
  if (url.length > MAX_WEBHOOK_URL_CHARS) return `it is longer than ${MAX_WEBHOOK_URL_CHARS} characters`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'it is not an absolute URL';
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') return `the scheme must be http or https, not ${parsed.protocol.slice(0, -1).slice(0, 20)}`;
  if (!parsed.hostname) return 'it has no host';
  if (parsed.username || parsed.password) return 'it must not carry credentials';
  return undefined;
}
