import { Queue, QueueEvents } from 'bullmq';
import type { Logger } from 'pino';
import { createRedis, inferenceJobOptions, newJobId, queueNameForModel, type InferenceJobData } from '@inferq/queue';

export interface TitleOptions {
  redisUrl: string;
  prefix: string;
  /** The generation model that writes the titles. */
  model: string;
  /** Longest wait for all titles, in milliseconds. @defaultValue 120000 */
  timeoutMs?: number;
}

/** Most clusters titled in one run (the largest); the others keep their keywords. */
export const MAX_TITLED_CLUSTERS = 30;

/** The prompt for one cluster: its examples, then "Title:". */
export function titlePrompt(examples: readonly string[], keywords: readonly string[]): string {
  const lines = examples.map((e) => `- ${e.replace(/\s+/g, ' ').slice(0, 300)}`).join('\n');
  return `Support tickets about one common issue (keywords: ${keywords.join(', ')}):\n${lines}\nA short title (a few words) for this issue:`;
}

/** The first line of a generated text, trimmed of quotes and punctuation, at most 80 characters. */
export function cleanTitle(text: string): string | undefined {
  const line = text.split('\n').map((l) => l.trim()).find(Boolean) ?? '';
  const title = line.replace(/^["'“”*#\-\s]+|["'“”*\s.]+$/g, '').slice(0, 80);
  return title || undefined;
}

/**
 * Titles for clusters, one single generation job per cluster on the title model's queue
 * (ahead of bulk work, batched by its scheduler like any job). A title that fails or does not
 * come in time is left out: the cluster keeps its keywords.
 */
export async function writeTitles(
  clusters: readonly { examples: readonly string[]; keywords: readonly string[] }[],
  options: TitleOptions,
  log: Logger,
): Promise<(string | undefined)[]> {
  const { timeoutMs = 120_000 } = options;
  const name = queueNameForModel(options.model);
  const connection = createRedis(options.redisUrl, 'worker');
  const queue = new Queue<InferenceJobData>(name, { connection, prefix: options.prefix });
  const events = new QueueEvents(name, { connection: createRedis(options.redisUrl, 'worker'), prefix: options.prefix });
  try {
    await events.waitUntilReady();
    const jobs = await Promise.all(
      clusters.slice(0, MAX_TITLED_CLUSTERS).map((c) =>
        queue.add(
          'infer',
          { task: 'generation', model: options.model, input: titlePrompt(c.examples, c.keywords), parameters: { max_new_tokens: 16 } },
          { ...inferenceJobOptions({ retentionSeconds: 3600, attempts: 1 }), jobId: newJobId(options.model) },
        ),
      ),
    );
    return await Promise.all(
      jobs.map(async (job) => {
        try {
          const out = (await job.waitUntilFinished(events, timeoutMs)) as { text?: string };
          return cleanTitle(out.text ?? '');
        } catch (err) {
          log.warn({ err, jobId: job.id }, 'cluster title failed');
          return undefined;
        }
      }),
    );
  } finally {
    await events.close().catch(() => {});
    await queue.close().catch(() => {});
    connection.disconnect();
  }
}
