import { isIP } from 'node:net';
import type { ApiConfig } from './config.js';

/**
 * How the API authenticates: `keys` (an admin key is set: every route but health and docs
 * needs a key), or `open` (no keys: one tenant, `default`), on a loopback address or, with
 * `AUTH=off`, on a network the operator says is trusted.
 */
export type AuthMode = { kind: 'keys'; adminKey: string } | { kind: 'open'; reason: 'loopback' | 'trusted' };

/** Whether `host` is a loopback address (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  const bare = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (bare === 'localhost') return true;
  if (isIP(bare) === 4) return bare.startsWith('127.');
  if (bare === '::1') return true;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(bare)?.[1];
  return mapped !== undefined && mapped.startsWith('127.');
}

/** The API's auth mode for a configuration; throws (with what to do) when it must not start. */
export function authMode(config: Pick<ApiConfig, 'ADMIN_API_KEY' | 'AUTH' | 'HOST'>): AuthMode {
  // An admin key means keys, whatever AUTH says: AUTH=off only allows serving without them.
  if (config.ADMIN_API_KEY) return { kind: 'keys', adminKey: config.ADMIN_API_KEY };
  if (config.AUTH === 'off') return { kind: 'open', reason: 'trusted' };
  if (isLoopbackHost(config.HOST)) return { kind: 'open', reason: 'loopback' };
  throw new Error(
    `refusing to serve without API keys on ${config.HOST}, which is not a loopback address: set ADMIN_API_KEY (at least 32 characters) ` +
      'and create tenant keys with `inferq keys create <tenant>`, or set AUTH=off if this network is trusted, or HOST=127.0.0.1',
  );
}
