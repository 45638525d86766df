import { once } from 'node:events';
import { createServer as createHttpServer, type ServerResponse } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebhookJobData } from '@inferq/queue';
import { deliverWebhook } from '../src/webhook-sender.js';

/**
 * Issue 15 item 7: a delivery's timeout fired only after silence, so a receiver sending one
 * byte a second held it for as long as it liked; and a delivery counted as done at the
 * headers while its body was drained without limit, keeping the socket open.
 */
const data = (url: string): WebhookJobData => ({ url, event: 'job.succeeded', body: '{"id":"a--b--1","status":"succeeded"}' });
const options = { secret: 'k', allowPrivate: true, deliveryId: 'wh-1' };
const closers: (() => Promise<void>)[] = [];
/** Resolves when the socket has closed (an EPIPE or reset on the way is expected: the sender hung up). */
const closed = (socket: Socket): Promise<void> =>
  socket.destroyed ? Promise.resolve() : new Promise((resolve) => socket.on('error', () => {}).once('close', () => resolve()));
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

describe('webhook delivery bounds', () => {
  it('a receiver that dribbles its answer one byte at a time is cut at the total deadline', async () => {
    const sockets: Socket[] = [];
    const timers: NodeJS.Timeout[] = [];
    // Sends a byte of a never-ending status line every 100 ms: never silent for the old
    // per-silence timeout, never a complete answer.
    const server = createTcpServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
      const text = 'HTTP/1.1 200 OK\r\nX-Slow: ' + 'a'.repeat(100_000);
      let at = 0;
      const timer = setInterval(() => socket.write(text[at++ % text.length] ?? 'a'), 100);
      timers.push(timer);
      socket.on('close', () => clearInterval(timer));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(async () => {
      for (const t of timers) clearInterval(t);
      for (const s of sockets) s.destroy();
      server.close();
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    await expect(deliverWebhook(data(url), { ...options, timeoutMs: 800 })).rejects.toThrow(/no complete answer within 800 ms/);
    // The receiver's side of the connection is closed too: nothing keeps it.
    const socket = sockets[0];
    expect(socket).toBeDefined();
    if (socket) await closed(socket);
  });

  it('a 2xx answer with an endless body: delivered, at most the cap read, and the socket destroyed', async () => {
    let written = 0;
    let response: ServerResponse | undefined;
    const server = createHttpServer((req, res) => {
      req.resume();
      response = res;
      res.writeHead(200, { 'content-type': 'text/plain' });
      const pump = (): void => {
        // Writes as long as the client reads; never ends.
        while (!res.destroyed && res.write(Buffer.alloc(1024, 120))) written += 1024;
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    // A deadline far beyond the test's timeout: only the body cap can end the delivery.
    await expect(deliverWebhook(data(url), { ...options, timeoutMs: 60_000, maxResponseBytes: 2048 })).resolves.toBe(200);
    const socket = response?.socket;
    if (socket) await closed(socket);
    // No connection stays open on the receiver's side.
    const open = await new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n))));
    expect(open).toBe(0);
    expect(written).toBeGreaterThan(0);
  });

  it('three endless receivers at once hold no socket once their deliveries end', async () => {
    const server = createHttpServer((req, res) => {
      req.resume();
      res.writeHead(202);
      const pump = (): void => {
        while (!res.destroyed && res.write(Buffer.alloc(1024, 121)));
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const results = await Promise.all([1, 2, 3].map(() => deliverWebhook(data(url), { ...options, timeoutMs: 60_000 })));
    expect(results).toEqual([202, 202, 202]);
    await expect
      .poll(() => new Promise<number>((resolve, reject) => server.getConnections((err, n) => (err ? reject(err) : resolve(n)))), { timeout: 5000, interval: 20 })
      .toBe(0);
  });
});
