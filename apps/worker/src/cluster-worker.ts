import { Worker as Thread } from 'node:worker_threads';
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { MAX_INLINE_MEMBERS, encodeJobError, type Cluster, type ClusterResult, type ErrorCode } from '@inferq/contracts';
import { BatchStore, CLUSTERS_QUEUE, ClusterStore, createRedis, type ClusterJobData } from '@inferq/queue';
import { embeddingFromBase64 } from '@inferq/inference';
import type { ClusterThreadInput, ClusterThreadOutput } from './cluster-thread.js';
import { writeTitles } from './cluster-titles.js';

export interface ClusterWorkerOptions {
  redisUrl: string;
  prefix: string;
}

/** How many examples each cluster shows. */
const EXAMPLES = 3;

class ClusterError extends UnrecoverableError {
  constructor(
    readonly code: ErrorCode,
    message: string,
  ) {
    super(encodeJobError(code, message));
  }
}

/** Runs k-means and names the clusters on a thread of its own. */
function clusterOnThread(input: ClusterThreadInput): Promise<ClusterThreadOutput> {
  return new Promise((resolve, reject) => {
    const thread = new Thread(new URL('./cluster-thread.js', import.meta.url), { workerData: input, transferList: [input.vectors.buffer as ArrayBuffer] });
    thread.once('message', (m: { ok: true; value: ClusterThreadOutput } | { ok: false; message: string }) => {
      if (m.ok) resolve(m.value);
      else reject(new ClusterError('INFERQ_ERR_VALIDATION', m.message));
      void thread.terminate();
    });
    thread.once('error', reject);
  });
}

/**
 * Runs the clustering jobs of cluster runs (queue `clusters`): BullMQ starts one once the
 * run's embedding batch has ended. It reads the batch's vectors (result lines) and texts
 * (its kept inputs), clusters them, and stores the result and the members file.
 */
export class ClusterWorker {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker<ClusterJobData, string>,
    private readonly redis: ReturnType<typeof createRedis>,
    private readonly log: Logger,
  ) {}

  static async start(options: ClusterWorkerOptions, logger: Logger): Promise<ClusterWorker> {
    const log = logger.child({ queue: CLUSTERS_QUEUE });
    const redis = createRedis(options.redisUrl, 'worker');
    const batches = new BatchStore(redis, options.prefix);
    const clusters = new ClusterStore(redis, options.prefix);

    const processor = async (job: Job<ClusterJobData, string>): Promise<string> => {
      const record = await clusters.get(job.data.cluster);
      if (!record) return 'gone';
      try {
        await clusters.clustering(record.id);
        const batch = await batches.get(job.data.batch);
        if (!batch) throw new ClusterError('INFERQ_ERR_BATCH_NOT_FOUND', `the embedding batch ${job.data.batch} is gone`);
        const texts = new Map<string, string>();
        for (let c = 0; c < batch.chunks; c++) for (const [id, text] of (await batches.readKeptInputs(batch.id, c)) ?? []) texts.set(id, text);
        const ids: string[] = [];
        const inputs: string[] = [];
        const parts: Float32Array[] = [];
        let failed = 0;
        for await (const chunk of batches.results(batch.id, batch.chunks)) {
          for (const line of chunk.split('\n')) {
            if (!line) continue;
            const parsed = JSON.parse(line) as { custom_id: string; result?: { embedding: number[] | string } };
            if (!parsed.result) {
              failed++;
              continue;
            }
            ids.push(parsed.custom_id);
            inputs.push(texts.get(parsed.custom_id) ?? '');
            const e = parsed.result.embedding;
            parts.push(typeof e === 'string' ? embeddingFromBase64(e) : Float32Array.from(e));
          }
        }
        if (ids.length < 2) throw new ClusterError('INFERQ_ERR_CLUSTER_EMPTY', `${ids.length} input(s) could be embedded (${failed} failed)`);
        const { numClusters } = record.settings;
        if (numClusters !== undefined && numClusters > ids.length) {
          throw new ClusterError('INFERQ_ERR_CLUSTER_K_RANGE', `num_clusters ${numClusters} is more than the ${ids.length} inputs embedded`);
        }
        const dims = parts[0]!.length;
        const vectors = new Float32Array(ids.length * dims);
        parts.forEach((v, i) => vectors.set(v, i * dims));
        const started = performance.now();
        const { clusters: found, keywords } = await clusterOnThread({
          vectors,
          dims,
          texts: inputs,
          options: { numClusters, minClusterSize: record.settings.minClusterSize, maxClusters: record.settings.maxClusters },
        });
        const inline = ids.length <= MAX_INLINE_MEMBERS;
        const { titleModel } = record.settings;
        const titles = titleModel
          ? await writeTitles(
              found.members.map((members, c) => ({ examples: members.slice(0, EXAMPLES).map((i) => inputs[i]!), keywords: keywords[c] ?? [] })),
              { redisUrl: options.redisUrl, prefix: options.prefix, model: titleModel },
              log,
            )
          : [];
        const result: ClusterResult = {
          clusters: found.members.map(
            (members, c): Cluster => ({
              id: c,
              size: members.length,
              share: members.length / ids.length,
              keywords: keywords[c] ?? [],
              ...(titles[c] !== undefined ? { title: titles[c] } : {}),
              examples: members.slice(0, EXAMPLES).map((i) => ({ custom_id: ids[i]!, input: inputs[i]! })),
              ...(inline ? { members: members.map((i) => ids[i]!) } : {}),
            }),
          ),
          outliers: { size: found.outliers.length, ...(inline ? { members: found.outliers.map((i) => ids[i]!) } : {}) },
          num_clusters: found.k,
          chosen_automatically: numClusters === undefined,
          failed,
        };
        const members = ids.map((id, i) => JSON.stringify({ custom_id: id, cluster: found.assignments[i] })).join('\n') + '\n';
        await clusters.complete(record.id, result, members);
        log.info(
          { workerId: worker.id, jobId: job.id, inputs: ids.length, k: found.k, clusters: result.clusters.length, ms: Math.round(performance.now() - started) },
          'cluster run ended',
        );
        return 'completed';
      } catch (err) {
        const final = err instanceof UnrecoverableError || job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
        if (final) {
          const code = err instanceof ClusterError ? err.code : 'INFERQ_ERR_INTERNAL';
          const message = err instanceof ClusterError ? err.message.replace(/^INFERQ_ERR_[A-Z_]+: /, '') : 'clustering failed';
          await clusters.fail(record.id, { code, message });
          log.warn({ err, jobId: job.id }, 'cluster run failed');
        }
        throw err;
      }
    };

    const worker = new Worker<ClusterJobData, string>(CLUSTERS_QUEUE, processor, {
      connection: createRedis(options.redisUrl, 'worker'),
      prefix: options.prefix,
      concurrency: 1,
      autorun: false,
    });
    worker.on('error', (err) => log.error({ err }, 'queue error'));
    void worker.run();
    await worker.waitUntilReady();
    return new ClusterWorker(worker, redis, log);
  }

  /** Stops taking cluster runs and waits for the one in progress. Idempotent. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.worker.close();
      } catch (err) {
        this.log.warn({ err }, 'closing the cluster worker failed');
      }
      this.redis.disconnect();
    })();
    return this.closing;
  }
}
