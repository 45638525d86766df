import fp from 'fastify-plugin';
import cors from '@fastify/cors';
import helmet from '@fastify/helmet';

export interface WebSecurityOptions {
  /** Origins allowed to call the API from a browser (CORS); empty: CORS off, no browser origin is allowed. */
  corsOrigins: readonly string[];
}

/**
 * Browser-facing headers. `@fastify/helmet` on every answer (nosniff, frame denial, referrer
 * policy, ...); the docs pages also carry swagger-ui's own Content-Security-Policy
 * (`staticCSP`), so the JSON API's answers need none. CORS only for the configured origins,
 * never `*`: with none configured, a browser on another origin can't read any answer.
 */
export const webSecurityPlugin = fp<WebSecurityOptions>(
  async (app, { corsOrigins }) => {
    await app.register(helmet, { global: true, contentSecurityPolicy: false });
    if (corsOrigins.length > 0) {
      await app.register(cors, {
        origin: [...corsOrigins],
        methods: ['GET', 'POST', 'DELETE'],
        allowedHeaders: ['authorization', 'content-type', 'idempotency-key'],
        exposedHeaders: ['location', 'retry-after', 'inferq-batch-status'],
        maxAge: 600,
      });
    }
  },
  { name: 'inferq-web-security' },
);
