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
  /**
   * Longest a delivery may take in total, from connecting to the answer's last byte read, in
   * milliseconds. A receiver that answers one byte a second is cut at this deadline, not kept
   * alive by each byte.
   */
  timeoutMs: number;
  /** Most bytes of the answer's body read before the socket is destroyed. @defaultValue 4096 */
  maxResponseBytes?: number;
  /** Sent as `Inferq-Delivery`: the same across retries. */
  deliveryId: string;
}

/** Default of {@link DeliveryOptions.maxResponseBytes}: a receiver's answer is read only to see it end. */
export const WEBHOOK_MAX_RESPONSE_BYTES = 4096;

/**
 * POSTs one webhook body, signed, and resolves with the status when the receiver answers 2xx.
 * Rejects with a {@link WebhookTargetError} for a URL that must not be reached (a private
 * address, checked on the address actually connected to), and with an Error for anything a
 * retry may fix (a refused connection, the deadline passing before the status line, a non-2xx
 * answer). Redirects are not followed. The exchange never outlives `timeoutMs`, and at most
 * `maxResponseBytes` of the answer's body are read: then the socket is destroyed, so a
 * receiver with an endless body holds no socket and no sender slot.
 */
export async function deliverWebhook(data: WebhookJobData, options: DeliveryOptions): Promise<number> {
  const url = await checkWebhookTarget(data.url, { allowPrivate: options.allowPrivate, resolve: false });
  const body = Buffer.from(data.body);
  const maxResponseBytes = options.maxResponseBytes ?? WEBHOOK_MAX_RESPONSE_BYTES;
  const request = url.protocol === 'https:' ? https.request : http.request;
  return new Promise<number>((resolve, reject) => {
    let status: number | undefined;
    let settled = false;
    const finish = (error?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      // Whatever is left of the exchange (an unread body, a half-sent request) is dropped with its socket.
      req.destroy();
      // Once the status line is in, it decides; the rest of the answer is only read to its end or cap.
      if (status === undefined) reject(error ?? new Error('the receiver closed the connection without answering'));
      else if (status >= 200 && status < 300) resolve(status);
      else reject(new Error(`the receiver answered ${status}`));
    };
    const deadline = setTimeout(() => finish(new Error(`no complete answer within ${options.timeoutMs} ms`)), options.timeoutMs);
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
        status = res.statusCode ?? 0;
        let read = 0;
        res.on('data', (chunk: Buffer) => {
          read += chunk.length;
          if (read > maxResponseBytes) finish();
        });
        res.on('end', () => finish());
        res.on('error', (err) => finish(err));
        res.on('aborted', () => finish());
      },
    );
    req.on('error', (err) => finish(err));
    req.end(body);
  });
}

export interface WebhookSenderOptions {
  redisUrl: string;
  prefix: string;
  secret: string;
  allowPrivate: boolean;
  /** Longest one delivery may take in total, in milliseconds. */
  timeoutMs: number;
  /** Most bytes of a receiver's answer read before its socket is destroyed. @defaultValue 4096 */
  maxResponseBytes?: number;
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
          ...(options.maxResponseBytes !== undefined ? { maxResponseBytes: options.maxResponseBytes } : {}),
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
