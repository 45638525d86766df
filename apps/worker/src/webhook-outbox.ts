import { Queue, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { FINAL_STATUSES, decodeJobError, type BatchView, type JobView, type WebhookEvent } from '@inferq/contracts';
import { WEBHOOKS_QUEUE, createRedis, webhookJobId, webhookJobOptions, type InferenceJobData, type WebhookJobData } from '@inferq/queue';

export interface WebhookOutboxOptions {
  redisUrl: string;
  prefix: string;
  /** Deliveries tried before giving up. */
  attempts: number;
  /** First retry delay, doubled on each retry, in milliseconds. */
  backoffMs: number;
}

const iso = (ms: number | undefined): string | null => (ms ? new Date(ms).toISOString() : null);

/**
 * Queues webhook deliveries on the `webhooks` queue. One delivery per subject (job or batch):
 * its BullMQ job id is derived from the subject, so a repeated end (a retried job) queues nothing twice.
 */
export class WebhookOutbox {
  private readonly queue: Queue<WebhookJobData>;
  private readonly connection;
  private readonly jobOptions;

  constructor(
    options: WebhookOutboxOptions,
    private readonly log: Logger,
  ) {
    this.connection = createRedis(options.redisUrl, 'worker');
    this.queue = new Queue<WebhookJobData>(WEBHOOKS_QUEUE, { connection: this.connection, prefix: options.prefix });
    this.queue.on('error', (err) => log.warn({ err }, 'webhook queue error'));
    this.jobOptions = webhookJobOptions({ attempts: options.attempts, backoffMs: options.backoffMs });
  }

  /** Queues the delivery of `view` to `url`. Never throws: a delivery that can't be queued is logged. */
  async send(subject: string, url: string, event: WebhookEvent, view: JobView | BatchView): Promise<void> {
    const data: WebhookJobData = { url, event, body: JSON.stringify(view) };
    try {
      await this.queue.add(event, data, { ...this.jobOptions, jobId: webhookJobId(subject, Date.parse(view.created_at)) });
    } catch (err) {
      this.log.error({ err, subject, event }, 'could not queue a webhook delivery');
    }
  }

  /** Queues the webhook of a job that ended for good (`result` or `error`), when it asked for one. */
  async jobEnded(job: Job<InferenceJobData>, end: { result: unknown } | { errorReason: string }): Promise<void> {
    const url = job.data.webhook_url;
    if (!url) return;
    const succeeded = 'result' in end;
    const view: JobView = {
      id: String(job.id),
      task: job.data.task,
      model: job.data.model,
      status: succeeded ? 'succeeded' : 'failed',
      created_at: new Date(job.timestamp).toISOString(),
      started_at: iso(job.processedOn),
      finished_at: new Date().toISOString(),
    };
    if (succeeded) view.result = end.result as JobView['result'];
    else view.error = decodeJobError(end.errorReason);
    if (!FINAL_STATUSES.includes(view.status)) return;
    await this.send(`job-${String(job.id)}`, url, succeeded ? 'job.succeeded' : 'job.failed', view);
  }

  async close(): Promise<void> {
    try {
      await this.queue.close();
    } catch (err) {
      this.log.warn({ err }, 'closing the webhook queue failed');
    }
    this.connection.disconnect();
  }
}
