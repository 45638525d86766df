import http from 'node:http';
import https from 'node:https';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { WEBHOOK_HEADERS } from '@inferq/contracts';
import {
  WEBHOOKS_QUEUE,
  WebhookTargetError,
  checkWebhookTarget,
  createRedis,
  safeLookup,
  signWebhook,
  type WebhookJobData,
} from '@inferq/queue';

export interface DeliveryOptions {
  /** Key of the `Inferq-Signature` HMAC. */
  secret: string;
  /** Let deliveries reach loopback and private addresses. */
  allowPrivate: boolean;
  /** Longest a delivery may take, connect to answer, in milliseconds. */
  timeoutMs: number;
  /** Sent as `Inferq-Delivery`: the same across retries. */
  deliveryId: string;
}

/**
 * POSTs one webhook body, signed, and resolves when the receiver answers 2xx. Rejects with a
 * {@link WebhookTargetError} for a URL that must not be reached (a private address, checked on
 * the address actually connected to), and with an Error for anything a retry may fix (a refused
 * connection, a timeout, a non-2xx answer). Redirects are not followed.
 */
export async function deliverWebhook(data: WebhookJobData, options: DeliveryOptions): Promise<number> {
  const url = await checkWebhookTarget(data.url, { allowPrivate: options.allowPrivate, resolve: false });
  const body = Buffer.from(data.body);
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise<number>((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        lookup: safeLookup(options.allowPrivate) as never,
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': body.length,
          'user-agent': 'inferq-webhooks/1',
          [WEBHOOK_HEADERS.event]: data.event,
          [WEBHOOK_HEADERS.signature]: signWebhook(options.secret, data.body),
          [WEBHOOK_HEADERS.delivery]: options.deliveryId,
        },
      },
      (res) => {
        res.resume(); // the answer's body is not read
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) resolve(status);
        else reject(new Error(`the receiver answered ${status}`));
      },
    );
    req.setTimeout(options.timeoutMs, () => req.destroy(new Error(`no answer within ${options.timeoutMs} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

export interface WebhookSenderOptions {
  redisUrl: string;
  prefix: string;
  secret: string;
  allowPrivate: boolean;
  timeoutMs: number;
  /** Deliveries in flight. @defaultValue 8 */
  concurrency?: number;
}

/**
 * The worker process's sender: a BullMQ Worker on the `webhooks` queue. A failed delivery is
 * retried by BullMQ (attempts with exponential backoff, set when it was queued); one to an
 * address that must not be reached fails at once.
 */
export class WebhookSender {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker<WebhookJobData, number>,
    private readonly log: Logger,
  ) {}

  static async start(options: WebhookSenderOptions, logger: Logger): Promise<WebhookSender> {
    const log = logger.child({ queue: WEBHOOKS_QUEUE });
    const processor = async (job: Job<WebhookJobData, number>): Promise<number> => {
      const jobLog = log.child({ workerId: worker.id, jobId: job.id, event: job.data.event });
      try {
        const status = await deliverWebhook(job.data, {
          secret: options.secret,
          allowPrivate: options.allowPrivate,
          timeoutMs: options.timeoutMs,
          deliveryId: String(job.id),
        });
        jobLog.info({ status, attempt: job.attemptsMade + 1 }, 'webhook delivered');
        return status;
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        if (err instanceof WebhookTargetError && !err.transient) {
          jobLog.warn({ reason }, 'webhook refused: its address must not be reached');
          throw new UnrecoverableError(reason);
        }
        jobLog.warn({ reason, attempt: job.attemptsMade + 1 }, 'webhook delivery failed; it will be retried');
        throw err instanceof Error ? err : new Error(reason);
      }
    };
    const worker = new Worker<WebhookJobData, number>(WEBHOOKS_QUEUE, processor, {
      connection: createRedis(options.redisUrl, 'worker'),
      prefix: options.prefix,
      concurrency: options.concurrency ?? 8,
      autorun: false,
    });
    worker.on('error', (err) => log.error({ err }, 'queue error'));
    void worker.run();
    await worker.waitUntilReady();
    return new WebhookSender(worker, log);
  }

  /** Stops taking deliveries and waits for those in flight. Idempotent. */
  close(): Promise<void> {
    this.closing ??= this.worker.close().catch((err: unknown) => this.log.warn({ err }, 'closing the webhook sender failed'));
    return this.closing;
  }
}
