import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { FastifyReply, FastifySchemaValidationError } from 'fastify';
import Type from 'typebox';
import { Compile } from 'typebox/compile';
import {
  BatchList,
  BatchListQuery,
  BatchMetadata,
  BatchParams,
  BatchView,
  CreateBatchBody,
  CreateBatchQuery,
  DEFAULT_COMPLETION_WINDOW,
  ErrorBody,
  FINAL_BATCH_STATUSES,
  MAX_BATCH_INPUTS,
  NDJSON_CONTENT_TYPES,
  TASKS,
  CHAT_TASKS,
  checkParameters,
  isTask,
  parseCompletionWindow,
  type BatchStatus,
  type TaskName,
} from '@inferq/contracts';
import { StagingLineError, isBatchId, newBatchId, toBatchView, type BatchRecord } from '@inferq/queue';
import { checkBatchInput, drain, lineError, readBatchLines } from '../batch-lines.js';
import type { IdempotentCreate } from '../plugins/idempotency.js';
import { describeValidation, httpError } from '../errors.js';
import { checkWebhookUrl } from '../webhook-url.js';
import { checkBeamBudget } from './jobs.js';

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 255,
      pattern: '^[\\x20-\\x7E]+$',
      description: 'Printable ASCII, 1 to 255 characters. For 24 hours a repeated post with the same key (per tenant) and the same inputs and settings answers the batch the first one made and runs nothing twice; with other inputs it is a 422.',
    }),
  ),
});

const NdjsonUpload = Type.Unknown({
  description: 'One `{"custom_id": "...", "input": "..."}` object per line; the batch settings go in the query string',
});

const ResultsFile = {
  description: 'One line per input, in input order: `{"custom_id", "result"}` or `{"custom_id", "error": {code, message}}`. While the batch runs: the lines done so far, a prefix of the final file.',
  content: { 'application/x-ndjson': { schema: Type.String() } },
};

const checkMetadata = Compile(BatchMetadata);

/** The settings of a batch, from the JSON body or from an upload's query string. */
interface BatchSettings {
  task: string;
  model: string | undefined;
  parameters: Record<string, unknown>;
  metadata: BatchMetadata | undefined;
  completionWindow: string;
  webhookUrl: string | undefined;
}

/** A query-string value that must be JSON-encoded (and, with `check`, match its schema). */
function jsonQuery<T>(value: string | undefined, name: string, check?: typeof checkMetadata): T | undefined {
  if (value === undefined) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw httpError('INFERQ_ERR_VALIDATION', `querystring.${name} is not valid JSON`);
  }
  if (check && !check.Check(parsed)) {
    throw httpError('INFERQ_ERR_VALIDATION', describeValidation(check.Errors(parsed) as FastifySchemaValidationError[], `querystring.${name}`));
  }
  return parsed as T;
}

const isUpload = (body: unknown): body is Readable => body instanceof Readable;

/**
 * Maps a failed validation of `POST /v1/batches`: a bad item of `inputs` is that line's
 * `INFERQ_ERR_BATCH_LINE_INVALID` (with the same message an NDJSON upload gets), too many or no
 * inputs and a bad completion_window have their own codes; the rest is `INFERQ_ERR_VALIDATION`.
 */
function createValidationError(error: Error & { validation?: FastifySchemaValidationError[]; validationContext?: string }, body: unknown): Error {
  const validation = error.validation ?? [];
  const isBody = error.validationContext === 'body';
  if (validation.some((e) => e.instancePath === '/completion_window')) {
    const source = isBody ? (body as { completion_window?: unknown }) : undefined;
    throw httpError('INFERQ_ERR_COMPLETION_WINDOW', String(source?.completion_window ?? '').slice(0, 40));
  }
  if (!isBody) return error;
  const arrayError = validation.find((e) => e.instancePath === '/inputs' && (e.keyword === 'maxItems' || e.keyword === 'minItems'));
  if (arrayError?.keyword === 'maxItems') return httpError('INFERQ_ERR_BATCH_TOO_MANY_INPUTS', MAX_BATCH_INPUTS);
  if (arrayError?.keyword === 'minItems') return httpError('INFERQ_ERR_BATCH_EMPTY');
  const settingsError = validation.find((e) => !e.instancePath.startsWith('/inputs'));
  if (settingsError) return error;
  const indexes = validation.map((e) => /^\/inputs\/(\d+)/.exec(e.instancePath)?.[1]).filter((i): i is string => i !== undefined).map(Number);
  if (indexes.length === 0) return error;
  // A loop, not Math.min(...indexes): a body can hold more errors than a call has room for arguments.
  const index = indexes.reduce((min, i) => (i < min ? i : min), Number.POSITIVE_INFINITY);
  const item = (body as { inputs?: unknown[] }).inputs?.[index];
  try {
    const task = (body as { task?: unknown }).task;
    checkBatchInput(item, index + 1, `inputs[${index}]`, CHAT_TASKS.includes(task as TaskName));
  } catch (lineErr) {
    return lineErr as Error;
  }
  const itemErrors = validation.filter((e) => e.instancePath.startsWith(`/inputs/${index}`));
  return lineError(index + 1, describeValidation(itemErrors, 'body'));
}

/** `POST /v1/batches`, `GET /v1/batches`, `GET /v1/batches/:id`, `GET /v1/batches/:id/results`, `POST /v1/batches/:id/cancel`. */
export const batchRoutes: FastifyPluginAsyncTypebox = async (app) => {
  const { BATCH_CHUNK_SIZE, BATCH_STAGING_TTL_MS, BATCH_UPLOAD_LIMIT_BYTES, BATCH_BODY_LIMIT_BYTES, BATCH_RETENTION_SECONDS, WEBHOOK_ALLOW_PRIVATE } = app.config;
  const { store } = app.batches;

  // NDJSON bodies reach the handler as the request stream: parsed line by line, never buffered whole.
  app.addContentTypeParser([...NDJSON_CONTENT_TYPES], (_request, payload, done) => done(null, payload));

  async function findBatch(id: string): Promise<BatchRecord> {
    app.batches.assertAvailable();
    const record = isBatchId(id) ? await store.get(id) : undefined;
    if (!record) throw httpError('INFERQ_ERR_BATCH_NOT_FOUND', id.slice(0, 100));
    return record;
  }

  /** Checks the settings (task, model, window, webhook) before any input is read. */
  async function resolveSettings(settings: BatchSettings): Promise<{ model: string; windowSeconds: number }> {
    const { task } = settings;
    if (!isTask(task)) throw httpError('INFERQ_ERR_UNKNOWN_TASK', task.slice(0, 100), TASKS.join(', '));
    const problems = checkParameters(task, settings.parameters);
    if (problems.length > 0) throw httpError('INFERQ_ERR_VALIDATION', problems.join('; '));
    checkBeamBudget(settings.parameters, app.config.MAX_BEAM_TOKENS);
    const model = await app.models.resolve(task, settings.model);
    const windowSeconds = parseCompletionWindow(settings.completionWindow);
    if (windowSeconds === undefined) throw httpError('INFERQ_ERR_COMPLETION_WINDOW', settings.completionWindow.slice(0, 40));
    if (settings.webhookUrl !== undefined) await checkWebhookUrl(settings.webhookUrl, WEBHOOK_ALLOW_PRIVATE, app.log);
    return { model, windowSeconds };
  }

  function settingsFromQuery(query: Record<string, string | undefined>): BatchSettings {
    if (query.task === undefined) throw httpError('INFERQ_ERR_VALIDATION', 'querystring is missing the property "task" (an NDJSON upload takes its settings from the query string)');
    return {
      task: query.task,
      model: query.model,
      parameters: jsonQuery<Record<string, unknown>>(query.parameters, 'parameters') ?? {},
      metadata: jsonQuery<BatchMetadata>(query.metadata, 'metadata', checkMetadata),
      completionWindow: query.completion_window ?? DEFAULT_COMPLETION_WINDOW,
      webhookUrl: query.webhook_url,
    };
  }

  app.post(
    '/v1/batches',
    {
      bodyLimit: BATCH_BODY_LIMIT_BYTES,
      attachValidation: true,
      schema: {
        summary: 'Create a batch',
        description: `Up to ${MAX_BATCH_INPUTS} inputs, as a JSON body (\`inputs\`) or an NDJSON upload of \`{custom_id, input}\` lines (Content-Type application/x-ndjson; settings in the query string; at most ${BATCH_UPLOAD_LIMIT_BYTES} bytes). Every line is checked before anything runs: a bad line fails the whole request with \`INFERQ_ERR_BATCH_LINE_INVALID\` naming it. The inputs run in chunks of ${BATCH_CHUNK_SIZE}, behind single jobs.`,
        tags: ['batches'],
        headers: IdempotencyHeaders,
        querystring: CreateBatchQuery,
        body: {
          content: {
            'application/json': { schema: CreateBatchBody },
            ...Object.fromEntries(NDJSON_CONTENT_TYPES.map((type) => [type, { schema: NdjsonUpload }])),
          },
        },
        response: {
          202: BatchView,
          400: ErrorBody,
          404: ErrorBody,
          413: ErrorBody,
          422: ErrorBody,
          429: ErrorBody,
          415: ErrorBody,
          500: ErrorBody,
          503: ErrorBody,
        },
      },
    },
    async (request, reply) => {
      const body: unknown = request.body;
      if (request.validationError) throw createValidationError(request.validationError, body);
      const upload = isUpload(body) ? body : undefined;
      const query = request.query as Record<string, string | undefined>;
      if (!upload && Object.keys(query).length > 0) {
        throw httpError('INFERQ_ERR_VALIDATION', 'querystring settings are for NDJSON uploads; put them in the JSON body');
      }
      app.batches.assertAvailable();

      const json = body as CreateBatchBody;
      const settings: BatchSettings = upload
        ? settingsFromQuery(query)
        : {
            task: json.task,
            model: json.model,
            parameters: json.parameters ?? {},
            metadata: json.metadata,
            completionWindow: json.completion_window ?? DEFAULT_COMPLETION_WINDOW,
            webhookUrl: json.webhook_url,
          };
      const { model, windowSeconds } = await resolveSettings(settings);
      const chat = CHAT_TASKS.includes(settings.task as TaskName);

      // Idempotency-Key: the request's fingerprint is its settings and its inputs (hashed as they are
      // staged), so a JSON body and an upload of the same inputs are the same request.
      const inputsHash = request.headers['idempotency-key'] !== undefined ? createHash('sha256') : undefined;
      let create: IdempotentCreate | undefined;
      const stager = store.stager(BATCH_CHUNK_SIZE, BATCH_STAGING_TTL_MS);
      let staged;
      try {
        if (upload) {
          for await (const line of readBatchLines(upload, { maxBytes: BATCH_UPLOAD_LIMIT_BYTES, chat })) {
            if (stager.count >= MAX_BATCH_INPUTS) throw httpError('INFERQ_ERR_BATCH_TOO_MANY_INPUTS', MAX_BATCH_INPUTS);
            await stager.add(line.custom_id, line.input, line.line, line.raw);
            inputsHash?.update(JSON.stringify([line.custom_id, line.input])).update('\n');
          }
        } else {
          for (const [i, item] of json.inputs.entries()) {
            const checked = checkBatchInput(item, i + 1, `inputs[${i}]`, chat);
            await stager.add(checked.custom_id, checked.input, i + 1);
            inputsHash?.update(JSON.stringify([checked.custom_id, checked.input])).update('\n');
          }
        }
        if (stager.count === 0) throw httpError('INFERQ_ERR_BATCH_EMPTY');
        staged = await stager.finish();
        create = await app.idempotency.claim(request, 'batch', [settings, inputsHash?.digest('hex')], newBatchId());
        // A repeat (same settings and inputs) goes on with the first one's id: creating is
        // create-if-absent, so of two concurrent posts one makes the batch and the other answers
        // it, its own staging discarded; a repeat after a first post that died makes the batch.
        if (!create.repeat) await app.quotas.admit(request, { inputs: staged.total, batch: true });
        await app.owners.claim(request, 'batch', create.id, { ttlSeconds: windowSeconds + BATCH_RETENTION_SECONDS + 86_400, listed: true });
      } catch (err) {
        await create?.release();
        await stager.discard();
        const error = err instanceof StagingLineError ? lineError(err.line, err.reason + (upload ? '' : ` (inputs[${err.line - 1}])`)) : err;
        if (upload) {
          const tooLarge = (error as { code?: string }).code === 'INFERQ_ERR_PAYLOAD_TOO_LARGE';
          // Read the rest so the client, still sending, reads this answer; past the limit, hang up.
          if (tooLarge || !(await drain(upload, BATCH_UPLOAD_LIMIT_BYTES))) reply.header('connection', 'close');
        }
        throw error;
      }

      const { record, created } = await app.batches.start(
        {
          id: create.id,
          task: settings.task,
          model,
          parameters: settings.parameters,
          completionWindow: settings.completionWindow,
          windowSeconds,
          retentionSeconds: BATCH_RETENTION_SECONDS,
          metadata: settings.metadata,
          webhookUrl: settings.webhookUrl,
        },
        staged,
      ).catch(async (err: unknown) => {
        await create.release();
        throw err;
      });
      if (created) await app.quotas.track(request, 'batch', record.id, record.total);
      return accepted(reply, record);
    },
  );

  function accepted(reply: FastifyReply, record: BatchRecord): FastifyReply {
    return reply.code(202).header('location', `/v1/batches/${record.id}`).send(toBatchView(record));
  }

  app.get(
    '/v1/batches',
    {
      schema: {
        summary: 'List batches, newest first',
        tags: ['batches'],
        querystring: BatchListQuery,
        response: { 200: BatchList, 400: ErrorBody, 404: ErrorBody, 500: ErrorBody, 503: ErrorBody },
      },
    },
    async (request) => {
      app.batches.assertAvailable();
      const { limit = 20, after } = request.query;
      const page = await store.list(limit, after, app.owners.listKey(request, 'batch'));
      if (!page) throw httpError('INFERQ_ERR_BATCH_NOT_FOUND', (after ?? '').slice(0, 100));
      const data = page.records.map(toBatchView);
      return { object: 'list' as const, data, has_more: page.hasMore, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null };
    },
  );

  app.get(
    '/v1/batches/:id',
    {
      config: { owned: 'batch' },
      schema: {
        summary: 'Read a batch',
        description: 'Status, request counts (updated as each chunk ends) and timestamps.',
        tags: ['batches'],
        params: BatchParams,
        response: { 200: BatchView, 400: ErrorBody, 404: ErrorBody, 500: ErrorBody, 503: ErrorBody },
      },
    },
    async (request) => toBatchView(await findBatch(request.params.id)),
  );

  app.get(
    '/v1/batches/:id/results',
    {
      config: { owned: 'batch' },
      schema: {
        summary: "Stream a batch's results (JSONL)",
        description: 'Streamed in input order, one line per input. The `inferq-batch-status` header tells whether the file is complete (a final status) or a prefix.',
        tags: ['batches'],
        params: BatchParams,
        response: { 200: ResultsFile, 400: ErrorBody, 404: ErrorBody, 500: ErrorBody, 503: ErrorBody },
      },
    },
    async (request, reply) => {
      const record = await findBatch(request.params.id);
      return reply
        .type('application/x-ndjson; charset=utf-8')
        .header('inferq-batch-status', record.status)
        // A stream is sent as it is, never serialized; the schema above only documents it.
        .send(Readable.from(store.results(record.id, record.chunks)) as unknown as string);
    },
  );

  app.post(
    '/v1/batches/:id/cancel',
    {
      config: { owned: 'batch' },
      schema: {
        summary: 'Cancel a batch',
        description: 'Chunks not started are not run; the batch is `cancelling` until the chunks in flight end, then `cancelled`. Results so far stay readable.',
        tags: ['batches'],
        params: BatchParams,
        response: { 200: BatchView, 400: ErrorBody, 404: ErrorBody, 409: ErrorBody, 500: ErrorBody, 503: ErrorBody },
      },
    },
    async (request) => {
      const record = await findBatch(request.params.id);
      const after: BatchStatus | undefined = await store.transition(record.id, 'cancelling', ['validating', 'in_progress']);
      if (after === undefined) throw httpError('INFERQ_ERR_BATCH_NOT_FOUND', record.id);
      if (after !== 'cancelling' && after !== 'cancelled' && FINAL_BATCH_STATUSES.concat('finalizing').includes(after)) {
        throw httpError('INFERQ_ERR_BATCH_NOT_CANCELLABLE', record.id, after);
      }
      return toBatchView(await findBatch(record.id));
    },
  );
};
