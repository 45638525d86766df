import type { FastifyBaseLogger } from 'fastify';
import { WebhookTargetError, checkWebhookTarget } from '@inferq/queue';
import { httpError } from './errors.js';

/**
 * Checks a `webhook_url` at submit: an absolute http(s) URL, and (unless `allowPrivate`) a host
 * that is not, and does not resolve to, a loopback, private or link-local address. Throws
 * `INFERQ_ERR_WEBHOOK_URL`. A DNS failure other than "no such host" lets the URL through: the
 * worker checks again before every delivery.
 */
export async function checkWebhookUrl(url: string, allowPrivate: boolean, log?: FastifyBaseLogger): Promise<void> {
  try {
    await checkWebhookTarget(url, { allowPrivate });
  } catch (err) {
    if (!(err instanceof WebhookTargetError)) throw err;
    if (err.transient) {
      log?.warn({ reason: err.message }, 'webhook_url host could not be resolved now; accepted, checked again at delivery');
      return;
    }
    throw httpError('INFERQ_ERR_WEBHOOK_URL', err.message);
  }
}
