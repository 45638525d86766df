import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifySchemaValidationError } from 'fastify';
import { Queue, QueueEvents } from 'bullmq';
import Type from 'typebox';
import {
  ClusterParams,
  ClusterQuery,
  ClusterView,
  CreateClusterBody,
  CreateClusterQuery,
  DEFAULT_COMPLETION_WINDOW,
  ErrorBody,
  MAX_BATCH_INPUTS,
  MAX_CLUSTERS,
  NDJSON_CONTENT_TYPES,
  decodeJobError,
  parseCompletionWindow,
  parseSince,
} from '@inferq/contracts';
import {
  CLUSTERS_QUEUE,
  ClusterStore,
  StagingLineError,
  TicketArchive,
  createRedis,
  isBatchId,
  isClusterId,
  newBatchId,
  newClusterId,
  type BatchStager,
  type ClusterJobData,
  type ClusterRecord,
  type ClusterSettings,
} from '@inferq/queue';
import { checkBatchInput, drain, lineError, readBatchLines } from '../batch-lines.js';
import { describeValidation, httpError } from '../errors.js';
import { watchJobEnd } from '../job-end-watch.js';

const NdjsonUpload = Type.Unknown({ description: 'One `{"custom_id": "...", "input": "..."}` object per line; the settings go in the query string' });
const MembersFile = {
  description: 'One `{"custom_id", "cluster"}` line per clustered input, in input order; `cluster` is -1 for an outlier.',
  content: { 'application/x-ndjson': { schema: Type.String() } },
};

const isUpload = (body: unknown): body is Readable => body instanceof Readable;

/**
 * `POST /v1/clusters`: common-issue discovery. The inputs (a JSON list, an NDJSON upload, an
 * existing batch's inputs, or the tickets of the last N days) become an ordinary embedding
 * batch, whose flow is the child of one clustering job (queue `clusters`): BullMQ runs it on a
 * worker once every embedding chunk has ended. `GET /v1/clusters/:id` reads the run,
 * `?wait=N` long-polls; `GET /v1/clusters/:id/members` streams every input's cluster.
 */
export const clusterRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { QUEUE_PREFIX, REDIS_URL, BATCH_CHUNK_SIZE, BATCH_UPLOAD_LIMIT_BYTES, BATCH_BODY_LIMIT_BYTES, BATCH_RETENTION_SECONDS, MAX_WAIT_SECONDS } =
    app.config;
  const clusters = new ClusterStore(app.queues.redis, QUEUE_PREFIX);
  const archive = new TicketArchive(app.queues.redis, QUEUE_PREFIX);
  const { store: batches } = app.batches;
  const queue = new Queue<ClusterJobData>(CLUSTERS_QUEUE, { connection: app.queues.redis, prefix: QUEUE_PREFIX });
  let events: QueueEvents | undefined;
  app.addHook('onClose', async () => {
    for (const closable of [events, queue]) {
      try {
        await closable?.close();
      } catch {
        /* closing anyway */
      }
    }
  });

  // POST /v1/batches registers the NDJSON parser for the whole app; register it here only if absent.
  if (!app.hasContentTypeParser('application/x-ndjson')) {
    app.addContentTypeParser([...NDJSON_CONTENT_TYPES], (_request, payload, done) => done(null, payload));
  }

  async function readView(id: string): Promise<ClusterView> {
    app.batches.assertAvailable();
    const record = isClusterId(id) ? await clusters.get(id) : undefined;
    if (!record) throw httpError('INFERQ_ERR_CLUSTER_NOT_FOUND', id.slice(0, 100));
    return view(record);
  }

  async function view(record: ClusterRecord): Promise<ClusterView> {
    const batch = await batches.get(record.batch);
    let { status, error } = record;
    // A run whose embedding batch failed is failed by BullMQ (failParentOnFailure), not by its processor.
    if (status !== 'completed' && status !== 'failed' && (await queue.getJobState(record.id)) === 'failed') {
      const job = await queue.getJob(record.id);
      status = 'failed';
      error = decodeJobError(job?.failedReason ?? 'the embedding batch failed');
    }
    const out: ClusterView = {
      id: record.id,
      object: 'cluster_run',
      status,
      model: record.model,
      source: record.source,
      batch_id: record.batch,
      request_counts: { total: batch?.total ?? 0, completed: batch?.completed ?? 0, failed: batch?.failed ?? 0 },
      created_at: Math.floor(record.createdAt / 1000),
      finished_at: record.finishedAt ? Math.floor(record.finishedAt / 1000) : null,
    };
    if (status === 'completed') {
      const result = await clusters.result(record.id);
      if (result) out.result = result;
    }
    if (error) out.error = error;
    return out;
  }

  /** Checks the settings that need no inputs; the model must serve `embedding`. */
  async function resolveSettings(s: { model?: string; num_clusters?: number; min_cluster_size?: number; max_clusters?: number; title_model?: string }) {
    if (s.num_clusters !== undefined && (s.num_clusters < 1 || s.num_clusters > MAX_CLUSTERS)) {
      throw httpError('INFERQ_ERR_CLUSTER_K_RANGE', MAX_CLUSTERS, String(s.num_clusters));
    }
    const model = await app.models.resolve('embedding', s.model);
    if (s.title_model !== undefined) await app.models.resolve('generation', s.title_model);
    const settings: ClusterSettings = {
      ...(s.num_clusters !== undefined ? { numClusters: s.num_clusters } : {}),
      ...(s.min_cluster_size !== undefined ? { minClusterSize: s.min_cluster_size } : {}),
      ...(s.max_clusters !== undefined ? { maxClusters: s.max_clusters } : {}),
      ...(s.title_model !== undefined ? { titleModel: s.title_model } : {}),
    };
    return { model, settings };
  }

  /** Stages the inputs of an existing batch (kept with its results, or still staged). */
  async function stageBatch(stager: BatchStager, batchId: string, tenant: string): Promise<void> {
    // Another tenant's batch reads exactly as an unknown one.
    const mine = isBatchId(batchId) && (await app.owners.store.owns('batch', batchId, tenant));
    const record = mine ? await batches.get(batchId) : undefined;
    if (!record) throw httpError('INFERQ_ERR_BATCH_NOT_FOUND', batchId.slice(0, 100));
    let line = 0;
    for (let c = 0; c < record.chunks; c++) {
      const inputs = (await batches.readKeptInputs(record.id, c)) ?? (await batches.readChunk(record.stage, c));
      if (!inputs) throw httpError('INFERQ_ERR_CLUSTER_INPUTS_GONE', record.id);
      for (const [customId, input] of inputs) await stager.add(customId, input, ++line);
    }
  }

  app.post(
    '/v1/clusters',
    {
      bodyLimit: BATCH_BODY_LIMIT_BYTES,
      attachValidation: true,
      schema: {
        summary: 'Find the common issues among texts',
        description: `Embeds the inputs on the bulk path (an embedding batch, chunks of ${BATCH_CHUNK_SIZE}) and clusters them on a worker. Inputs: exactly one of \`inputs\` (JSON), an NDJSON upload (settings in the query string), \`batch_id\`, or \`source: "tickets"\` with \`since\`. Up to ${MAX_BATCH_INPUTS} inputs, checked as a batch's are.`,
        tags: ['clusters'],
        querystring: CreateClusterQuery,
        body: {
          content: {
            'application/json': { schema: CreateClusterBody },
            ...Object.fromEntries(NDJSON_CONTENT_TYPES.map((type) => [type, { schema: NdjsonUpload }])),
          },
        },
        response: { 202: ClusterView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 413: ErrorBody, 415: ErrorBody, 500: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const body: unknown = request.body;
      if (request.validationError) {
        const failure = request.validationError as Error & { validation?: FastifySchemaValidationError[]; validationContext?: string };
        const validation = failure.validation ?? [];
        const item = validation.map((e) => /^\/inputs\/(\d+)/.exec(e.instancePath)?.[1]).find((i) => i !== undefined);
        if (item !== undefined) {
          // The same line errors as POST /v1/batches: checkBatchInput names what is wrong.
          const index = Number(item);
          checkBatchInput((body as { inputs?: unknown[] }).inputs?.[index], index + 1, `inputs[${index}]`);
          throw lineError(index + 1, describeValidation(validation, 'body'));
        }
        throw httpError('INFERQ_ERR_VALIDATION', describeValidation(validation, failure.validationContext ?? 'body'));
      }
      const upload = isUpload(body) ? body : undefined;
      const json = (upload ? {} : body) as CreateClusterBody;
      const query = request.query;
      if (!upload && Object.keys(query).length > 0) throw httpError('INFERQ_ERR_VALIDATION', 'querystring settings are for NDJSON uploads; put them in the JSON body');
      const sources = [upload && 'an NDJSON upload', json.inputs && 'inputs', json.batch_id && 'batch_id', json.source && 'source'].filter(Boolean);
      if (sources.length !== 1) {
        throw httpError('INFERQ_ERR_CLUSTER_SOURCE', sources.length === 0 ? 'none given (inputs, an NDJSON upload, batch_id or source)' : `got ${sources.join(' and ')}`);
      }
      if (json.since !== undefined && json.source === undefined) throw httpError('INFERQ_ERR_VALIDATION', 'since goes with source "tickets"');
      app.batches.assertAvailable();
      const { model, settings } = await resolveSettings(upload ? query : json);

      const stager = batches.stager(BATCH_CHUNK_SIZE);
      let staged;
      try {
        if (upload) {
          for await (const line of readBatchLines(upload, { maxBytes: BATCH_UPLOAD_LIMIT_BYTES })) {
            if (stager.count >= MAX_BATCH_INPUTS) throw httpError('INFERQ_ERR_BATCH_TOO_MANY_INPUTS', MAX_BATCH_INPUTS);
            await stager.add(line.custom_id, line.input, line.line, line.raw);
          }
        } else if (json.inputs) {
          if (json.inputs.length > MAX_BATCH_INPUTS) throw httpError('INFERQ_ERR_BATCH_TOO_MANY_INPUTS', MAX_BATCH_INPUTS);
          for (const [i, item] of json.inputs.entries()) {
            const checked = checkBatchInput(item, i + 1, `inputs[${i}]`);
            await stager.add(checked.custom_id, checked.input, i + 1);
          }
        } else if (json.batch_id !== undefined) {
          await stageBatch(stager, json.batch_id, request.tenant);
        } else {
          const seconds = parseSince(json.since ?? '7d');
          if (seconds === undefined) throw httpError('INFERQ_ERR_VALIDATION', `since "${json.since}" is not a number and a unit (s, m, h, d)`);
          let line = 0;
          const mine = (ids: string[]) => app.owners.store.ownedAmong('ticket', ids, request.tenant);
          for (const ticket of await archive.since(Date.now() - seconds * 1000, mine)) await stager.add(ticket.id, ticket.text, ++line);
        }
        if (stager.count < 2) {
          throw httpError('INFERQ_ERR_CLUSTER_EMPTY', stager.count === 0 ? 'it has none' : 'it has one');
        }
        if (settings.numClusters !== undefined && settings.numClusters > stager.count) {
          throw httpError('INFERQ_ERR_CLUSTER_K_RANGE', Math.min(stager.count, MAX_CLUSTERS), String(settings.numClusters));
        }
        staged = await stager.finish();
      } catch (err) {
        await stager.discard();
        const error = err instanceof StagingLineError ? lineError(err.line, err.reason + (json.inputs ? ` (inputs[${err.line - 1}])` : '')) : err;
        if (upload) {
          const tooLarge = (error as { code?: string }).code === 'INFERQ_ERR_PAYLOAD_TOO_LARGE';
          if (tooLarge || !(await drain(upload, BATCH_UPLOAD_LIMIT_BYTES))) reply.header('connection', 'close');
        }
        throw error;
      }

      const id = newClusterId();
      const batchId = newBatchId();
      const source = upload ? 'upload' : json.inputs ? 'inputs' : json.batch_id !== undefined ? 'batch' : 'tickets';
      const createdAt = Date.now();
      const windowSeconds = parseCompletionWindow(DEFAULT_COMPLETION_WINDOW) ?? 86_400;
      // The run and its embedding batch belong to the caller's tenant, and count against its quotas.
      try {
        await app.quotas.admit(request, { inputs: staged.total, batch: true });
      } catch (err) {
        await stager.discard();
        throw err;
      }
      const ownedFor = windowSeconds + BATCH_RETENTION_SECONDS + 86_400;
      await app.owners.claim(request, 'cluster', id, { ttlSeconds: ownedFor, listed: true });
      await app.owners.claim(request, 'batch', batchId, { ttlSeconds: ownedFor, listed: false });
      await clusters.create({ id, batch: batchId, model, source, settings, createdAt, retentionSeconds: BATCH_RETENTION_SECONDS });
      await app.batches.start(
        {
          id: batchId,
          task: 'embedding',
          model,
          // base64 float32: a quarter of the JSON numbers' bytes in Redis, and exact.
          parameters: { encoding: 'base64' },
          completionWindow: DEFAULT_COMPLETION_WINDOW,
          windowSeconds,
          retentionSeconds: BATCH_RETENTION_SECONDS,
          metadata: { cluster_run: id },
        },
        staged,
        { queueName: CLUSTERS_QUEUE, name: 'cluster', jobId: id, data: { cluster: id, batch: batchId } satisfies ClusterJobData },
      );
      await app.quotas.track(request, 'batch', batchId, staged.total);
      const record = await clusters.get(id);
      if (!record) throw new Error(`cluster run ${id} vanished`);
      return reply.code(202).header('location', `/v1/clusters/${id}`).send(await view(record));
    },
  );

  app.get(
    '/v1/clusters/:id',
    {
      config: { owned: 'cluster' },
      schema: {
        summary: 'Read a cluster run',
        description: `Status, embedding progress and, once completed, the clusters (largest first) with keywords, examples and members (inlined up to 10,000 inputs). \`?wait=N\` holds the request until the run ends or N seconds pass (at most ${MAX_WAIT_SECONDS}).`,
        tags: ['clusters'],
        params: ClusterParams,
        querystring: ClusterQuery,
        response: { 200: ClusterView, 400: ErrorBody, 404: ErrorBody, 500: ErrorBody, 503: ErrorBody },
      },
    },
    async (request) => {
      const { id } = request.params;
      let current = await readView(id);
      const waitMs = Math.min(request.query.wait ?? 0, MAX_WAIT_SECONDS) * 1000;
      const final = (v: ClusterView) => v.status === 'completed' || v.status === 'failed';
      if (waitMs <= 0 || final(current)) return current;
      if (!events) {
        events = new QueueEvents(CLUSTERS_QUEUE, { connection: createRedis(REDIS_URL, 'worker'), prefix: QUEUE_PREFIX });
        events.setMaxListeners(0);
      }
      await events.waitUntilReady();
      const gone = new AbortController();
      request.raw.once('close', () => gone.abort());
      const deadline = Date.now() + waitMs;
      while (!final(current) && Date.now() < deadline && !gone.signal.aborted) {
        const watch = watchJobEnd(events, id, deadline - Date.now(), [gone.signal, app.queues.closing]);
        try {
          current = await readView(id);
          if (final(current)) break;
          const outcome = await watch.outcome;
          current = await readView(id);
          if (outcome !== 'ended') break;
        } finally {
          watch.stop();
        }
      }
      return current;
    },
  );

  app.get(
    '/v1/clusters/:id/members',
    {
      config: { owned: 'cluster' },
      schema: {
        summary: "Stream a cluster run's members (JSONL)",
        tags: ['clusters'],
        params: ClusterParams,
        response: { 200: MembersFile, 404: ErrorBody, 409: ErrorBody, 500: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const current = await readView(request.params.id);
      if (current.status !== 'completed') throw httpError('INFERQ_ERR_CLUSTER_NOT_READY', current.id, current.status);
      const members = (await clusters.members(current.id)) ?? '';
      return reply.type('application/x-ndjson; charset=utf-8').send(members);
    },
  );
};
