// How the API process starts with and without keys: the built server (dist), real Redis.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { authMode, isLoopbackHost } from '../src/auth-mode.js';
import { REDIS_URL } from './helpers.js';

const server = fileURLToPath(new URL('../dist/server.js', import.meta.url));

/** Starts the API; resolves with its output once it listens (then stops it) or once it exits. */
async function start(env: Record<string, string>): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, [server], {
    env: { ...process.env, REDIS_URL, QUEUE_PREFIX: `test-auth-start-${randomBytes(4).toString('hex')}`, PORT: '0', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = once(child, 'exit');
  const onData = (chunk: Buffer): void => {
    output += chunk.toString();
    if (output.includes('Server listening at')) child.kill('SIGTERM');
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const [code] = (await exited) as [number | null];
  return { code, output };
}

describe('auth mode', () => {
  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.5', '192.168.1.2', 'example.com', '::ffff:10.0.0.1']) expect(isLoopbackHost(host), host).toBe(false);
  });

  it('keys whenever an admin key is set; without one, open on loopback and refused elsewhere unless AUTH=off', () => {
    const admin = 'x'.repeat(32);
    expect(authMode({ HOST: '0.0.0.0', AUTH: 'on', ADMIN_API_KEY: admin })).toEqual({ kind: 'keys', adminKey: admin });
    expect(authMode({ HOST: '127.0.0.1', AUTH: 'on', ADMIN_API_KEY: '' })).toEqual({ kind: 'open', reason: 'loopback' });
    expect(() => authMode({ HOST: '0.0.0.0', AUTH: 'on', ADMIN_API_KEY: '' })).toThrow(/ADMIN_API_KEY.*AUTH=off/);
    expect(authMode({ HOST: '0.0.0.0', AUTH: 'off', ADMIN_API_KEY: '' })).toEqual({ kind: 'open', reason: 'trusted' });
    // An admin key wins over AUTH=off: AUTH=off only allows serving without keys.
    expect(authMode({ HOST: '0.0.0.0', AUTH: 'off', ADMIN_API_KEY: admin })).toEqual({ kind: 'keys', adminKey: admin });
  });
});

describe('the API process at start', () => {
  it('bound to a non-loopback address without keys, it refuses to start and says what to set', async () => {
    const { code, output } = await start({ HOST: '0.0.0.0', ADMIN_API_KEY: '', AUTH: 'on' });
    expect(code).toBe(1);
    expect(output).toContain('refusing to serve without API keys on 0.0.0.0');
    expect(output).not.toContain('Server listening');
  });

  it('with AUTH=off it starts on any address and logs a warning', async () => {
    const { output } = await start({ HOST: '0.0.0.0', ADMIN_API_KEY: '', AUTH: 'off' });
    const warning = output.split('\n').find((line) => line.includes('WITHOUT authentication'));
    expect(warning).toBeDefined();
    expect(JSON.parse(warning ?? '{}')).toMatchObject({ level: 40, auth: 'off' });
    expect(output).toContain('Server listening');
  });

  it('on loopback without keys it starts and says it serves without authentication', async () => {
    const { output } = await start({ HOST: '127.0.0.1', ADMIN_API_KEY: '' });
    expect(output).toMatch(/WITHOUT authentication \(bound to a loopback address\)/);
    expect(output).toContain('Server listening');
  });

  it('an admin key shorter than 32 characters is a configuration error', async () => {
    const { code, output } = await start({ HOST: '127.0.0.1', ADMIN_API_KEY: 'short' });
    expect(code).toBe(1);
    expect(output).toContain('ADMIN_API_KEY');
  });
});
