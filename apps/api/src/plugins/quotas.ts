import fp from 'fastify-plugin';
import rateLimit from '@fastify/rate-limit';
import type { FastifyRequest } from 'fastify';
import type { ErrorCode } from '@inferq/contracts';
import { TenantQuota } from '@inferq/queue';
import { httpError } from '../errors.js';
import { routeAccess } from './auth.js';

export interface QuotasOptions {
  /** BullMQ key prefix. */
  prefix: string;
  /** Requests per key per window; 0: no rate limit. */
  rateLimitMax: number;
  /** The rate limit's window, in milliseconds. */
  rateLimitWindowMs: number;
  /** Most inputs a tenant may have queued; 0: no cap. */
  tenantMaxQueuedInputs: number;
  /** Most batches a tenant may have in progress; 0: no cap. */
  tenantMaxActiveBatches: number;
  /** Most single jobs waiting in one model's queue; 0: no cap. */
  modelMaxWaitingJobs: number;
}

/** What a create request is about to add. */
export interface Admission {
  /** Inputs it queues. */
  inputs: number;
  /** Whether it starts a batch. */
  batch?: boolean;
  /** Models whose queue of single jobs it adds to. */
  models?: readonly string[];
}

export interface QuotaService {
  /** Throws a 429 (`INFERQ_ERR_QUOTA_*`, `INFERQ_ERR_MODEL_BUSY`, with Retry-After) when accepting would pass a cap. */
  admit(request: FastifyRequest, admission: Admission): Promise<void>;
  /** Records what was accepted, against the caller's tenant. */
  track(request: FastifyRequest, kind: 'job' | 'batch', id: string, inputs: number): Promise<void>;
}

declare module 'fastify' {
  interface FastifyInstance {
    quotas: QuotaService;
  }
}

/** How long a client is told to wait, in seconds, by cap. */
const RETRY_AFTER_SECONDS = { inputs: 30, batches: 60, model: 5 } as const;

function quotaError(code: ErrorCode, retryAfter: number, ...args: unknown[]): Error {
  return Object.assign(httpError(code, ...args), { retryAfter });
}

/**
 * Quotas and backpressure. A per-key request rate (`@fastify/rate-limit`, counted in Redis so
 * every API process shares it; health and docs are not counted); per-tenant caps on queued
 * inputs and batches in progress (`TenantQuota`); a per-model cap on waiting single jobs.
 * Each answers 429 with its own code and `Retry-After`. Checks happen before anything is
 * accepted, so nothing accepted is ever dropped.
 */
export const quotasPlugin = fp<QuotasOptions>(
  async (app, opts) => {
    const redis = app.queues.redis;
    if (opts.rateLimitMax > 0) {
      await app.register(rateLimit, {
        global: true,
        max: opts.rateLimitMax,
        timeWindow: opts.rateLimitWindowMs,
        redis,
        nameSpace: `${opts.prefix}:ratelimit:`,
        // Redis down: let the request through; its route answers 503 itself.
        skipOnError: true,
        keyGenerator: (request) => `key:${request.apiKeyId ?? request.ip}`,
        allowList: (request) => routeAccess(request) === 'public',
        errorResponseBuilder: (_request, context) =>
          Object.assign(httpError('INFERQ_ERR_RATE_LIMITED', context.max, context.after, Math.ceil(context.ttl / 1000)), { statusCode: 429 }),
      });
    }

    const tenants = new TenantQuota(redis, opts.prefix);
    const service: QuotaService = {
      async admit(request, { inputs, batch = false, models = [] }) {
        const { tenantMaxQueuedInputs: maxInputs, tenantMaxActiveBatches: maxBatches, modelMaxWaitingJobs: maxWaiting } = opts;
        if (maxInputs > 0 || (batch && maxBatches > 0)) {
          const over = (u: { inputs: number; batches: number }) =>
            (maxInputs > 0 && u.inputs + inputs > maxInputs) || (batch && maxBatches > 0 && u.batches + 1 > maxBatches);
          let usage = await tenants.recorded(request.tenant);
          if (over(usage)) usage = await tenants.prune(request.tenant);
          if (maxInputs > 0 && usage.inputs + inputs > maxInputs) {
            throw quotaError('INFERQ_ERR_QUOTA_QUEUED_INPUTS', RETRY_AFTER_SECONDS.inputs, usage.inputs, maxInputs);
          }
          if (batch && maxBatches > 0 && usage.batches + 1 > maxBatches) {
            throw quotaError('INFERQ_ERR_QUOTA_BATCHES', RETRY_AFTER_SECONDS.batches, usage.batches, maxBatches);
          }
        }
        if (maxWaiting > 0) {
          for (const model of models) {
            const waiting = await app.queues.forModel(model).getJobCountByTypes('waiting', 'prioritized');
            if (waiting >= maxWaiting) throw quotaError('INFERQ_ERR_MODEL_BUSY', RETRY_AFTER_SECONDS.model, model, waiting, maxWaiting);
          }
        }
      },
      async track(request, kind, id, inputs) {
        if (opts.tenantMaxQueuedInputs > 0 || opts.tenantMaxActiveBatches > 0) await tenants.add(request.tenant, kind, id, inputs);
      },
    };
    app.decorate('quotas', service);
  },
  { name: 'inferq-quotas', dependencies: ['inferq-queues', 'inferq-auth'] },
);
