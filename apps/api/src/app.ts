import { readFileSync } from 'node:fs';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type RawReplyDefaultExpression,
  type RawRequestDefaultExpression,
  type RawServerDefault,
} from 'fastify';
import fp from 'fastify-plugin';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import { boundedValidatorCompiler } from './validator-compiler.js';
import type { LoggerOptions } from 'pino';
import type { ApiConfig } from './config.js';
import { clientErrorHandler, errorHandlers, frameworkErrors } from './errors.js';
import { loggerOptions } from './logger.js';
import { modelCatalogPlugin } from './plugins/model-catalog.js';
import { queuesPlugin } from './plugins/queues.js';
import { batchesPlugin } from './plugins/batches.js';
import { clientLimitsPlugin } from './plugins/client-limits.js';
import { batchRoutes } from './routes/batches.js';
import { clusterRoutes } from './routes/clusters.js';
import { similarTicketRoutes } from './routes/ticket-similar.js';
import { healthRoutes } from './routes/health.js';
import { jobRoutes } from './routes/jobs.js';
import { ticketRoutes } from './routes/tickets.js';
import { jobEventRoutes } from './routes/job-events.js';
import { modelRoutes } from './routes/models.js';
import { authMode } from './auth-mode.js';
import { authPlugin } from './plugins/auth.js';
import { idempotencyPlugin } from './plugins/idempotency.js';
import { quotasPlugin } from './plugins/quotas.js';
import { metricsPlugin } from './plugins/metrics.js';
import { webSecurityPlugin } from './plugins/web-security.js';
import { adminKeyRoutes } from './routes/admin-keys.js';
import { deletionRoutes } from './routes/deletion.js';
import { adminWorkerRoutes } from './routes/admin-workers.js';
import { queueInventoryPlugin } from './plugins/queue-inventory.js';
import { queueDashboardPlugin } from './plugins/queue-dashboard.js';
import { adminKeyGuard } from './admin-guard.js';
import { openaiRoutes } from './routes/openai/index.js';

declare module 'fastify' {
  interface FastifyInstance {
    config: ApiConfig;
  }
}

export type ApiApp = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface AppOptions {
  /** The parsed environment (`loadConfig()`). */
  config: ApiConfig;
}

const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

/**
 * The whole API as one plugin: error handlers, external plugins (OpenAPI, docs UI), app
 * plugins (queues, model catalog), then routes. Requests are validated with TypeBox's
 * compiler (errors in linear time, see `validator-compiler.ts`): bodies are never coerced (`input: 5` is a 400), query strings and params are.
 */
export const app = fp<AppOptions>(
  async (fastify, { config }) => {
    fastify.decorate('config', config);
    // Answers sent once closing has begun (long-polls cut short) close their connection, so
    // a keep-alive socket doesn't hold the shutdown for the keep-alive timeout.
    let closing = false;
    fastify.addHook('preClose', async () => {
      closing = true;
    });
    fastify.addHook('onSend', async (_request, reply) => {
      if (closing) reply.header('connection', 'close');
    });
    fastify.setValidatorCompiler(boundedValidatorCompiler);
    // JSON only: without fastify's text/plain parser, any other body is a 415, not a confusing 400.
    fastify.removeContentTypeParser('text/plain');
    await fastify.register(errorHandlers);

    await fastify.register(webSecurityPlugin, { corsOrigins: config.CORS_ORIGINS.split(',').map((o) => o.trim()).filter(Boolean) });
    await fastify.register(swagger, {
      openapi: {
        openapi: '3.1.0',
        info: {
          title: 'inferq',
          version,
          description: 'Batch inference service: queue text jobs, read their results. Every error body is `{error: {code, message}}`.',
        },
        tags: [
          { name: 'jobs', description: 'Single inference jobs' },
          { name: 'batches', description: 'Bulk batches: many inputs, results as JSONL' },
          { name: 'tickets', description: 'Support ticket triage: issue and summary' },
          { name: 'clusters', description: 'Common issues: embeddings of many texts, clustered' },
          { name: 'models', description: 'Models in the models folder' },
          { name: 'health', description: 'Liveness and readiness' },
          { name: 'admin', description: 'Tenant keys (the admin key only), live workers' },
          { name: 'openai', description: 'The OpenAI protocol under /openai/v1 (errors in OpenAI\'s shape there)' },
        ],
        components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'A tenant key (the admin key for /v1/admin)' } } },
        security: [{ bearer: [] }],
      },
    });
    await fastify.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

    await fastify.register(queuesPlugin, { redisUrl: config.REDIS_URL, prefix: config.QUEUE_PREFIX });
    await fastify.register(clientLimitsPlugin, { maxStreams: config.MAX_STREAMS_PER_CLIENT, maxWaits: config.MAX_WAITS_PER_CLIENT });
    await fastify.register(authPlugin, { mode: authMode(config), prefix: config.QUEUE_PREFIX, jobOwnerTtlSeconds: config.JOB_RETENTION_SECONDS + 86_400 });
    await fastify.register(idempotencyPlugin, { prefix: config.QUEUE_PREFIX });
    await fastify.register(quotasPlugin, {
      prefix: config.QUEUE_PREFIX,
      // A rate per key: without keys (loopback, AUTH=off) there is no one to count against.
      rateLimitMax: authMode(config).kind === 'keys' ? config.RATE_LIMIT_MAX : 0,
      rateLimitWindowMs: config.RATE_LIMIT_WINDOW_MS,
      tenantMaxQueuedInputs: config.TENANT_MAX_QUEUED_INPUTS,
      tenantMaxActiveBatches: config.TENANT_MAX_ACTIVE_BATCHES,
      modelMaxWaitingJobs: config.MODEL_MAX_WAITING_JOBS,
    });
    await fastify.register(batchesPlugin, {
      prefix: config.QUEUE_PREFIX,
      retentionSeconds: config.BATCH_RETENTION_SECONDS,
      stagingGraceMs: config.BATCH_STAGING_GRACE_SECONDS * 1000,
    });
    await fastify.register(modelCatalogPlugin, {
      modelsDir: config.MODELS_DIR,
      defaults: {
        classification: config.DEFAULT_MODEL_CLASSIFICATION,
        'zero-shot-classification': config.DEFAULT_MODEL_ZERO_SHOT,
        summarization: config.DEFAULT_MODEL_SUMMARIZATION,
        generation: config.DEFAULT_MODEL_GENERATION,
        embedding: config.DEFAULT_MODEL_EMBEDDING,
      },
    });

    await fastify.register(queueInventoryPlugin, { prefix: config.QUEUE_PREFIX, cacheTtlMs: config.QUEUE_STATS_CACHE_MS });
    await fastify.register(metricsPlugin);
    await fastify.register(queueDashboardPlugin, { guard: config.ADMIN_API_KEY ? adminKeyGuard(config.ADMIN_API_KEY) : undefined });

    await fastify.register(healthRoutes);
    await fastify.register(modelRoutes);
    await fastify.register(jobRoutes);
    await fastify.register(ticketRoutes);
    await fastify.register(jobEventRoutes);
    await fastify.register(batchRoutes);
    await fastify.register(adminKeyRoutes);
    await fastify.register(deletionRoutes);
    await fastify.register(adminWorkerRoutes);
    await fastify.register(clusterRoutes);
    await fastify.register(similarTicketRoutes);
    await fastify.register(openaiRoutes, { prefix: '/openai/v1' });
  },
  { name: 'inferq-api' },
);

export interface BuildAppOptions {
  /** pino options, or `false` for no logs. @defaultValue `loggerOptions(config)` */
  logger?: LoggerOptions | boolean;
}

/** A Fastify instance with the API registered, not yet listening (`inject` works at once). */
export async function buildApp(config: ApiConfig, options: BuildAppOptions = {}): Promise<ApiApp> {
  const fastify = Fastify({
    logger: options.logger ?? loggerOptions(config),
    bodyLimit: config.BODY_LIMIT_BYTES,
    frameworkErrors,
    clientErrorHandler,
  }).withTypeProvider<TypeBoxTypeProvider>();
  await fastify.register(app, { config });
  return fastify;
}
