import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebhookTargetError, verifyWebhook, type WebhookJobData } from '@inferq/queue';
import { deliverWebhook } from '../src/webhook-sender.js';

const received: { headers: IncomingHttpHeaders; body: string }[] = [];
let answer = 204;
const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    received.push({ headers: req.headers, body: Buffer.concat(chunks).toString() });
    res.writeHead(answer).end();
  });
});
let port = 0;

beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const data = (url: string): WebhookJobData => ({ url, event: 'job.succeeded', body: '{"id":"a--b--1","status":"succeeded"}' });
const options = { secret: 'k', allowPrivate: false, timeoutMs: 2000, deliveryId: 'wh-1' };

describe('deliverWebhook', () => {
  it('never connects to a loopback address without allowPrivate, by IP or by a name resolving to it', async () => {
    received.length = 0;
    await expect(deliverWebhook(data(`http://127.0.0.1:${port}/`), options)).rejects.toBeInstanceOf(WebhookTargetError);
    await expect(deliverWebhook(data(`http://localhost:${port}/`), options)).rejects.toBeInstanceOf(WebhookTargetError);
    await expect(deliverWebhook(data(`http://[::ffff:127.0.0.1]:${port}/`), options)).rejects.toBeInstanceOf(WebhookTargetError);
    expect(received).toHaveLength(0);
  });

  it('with allowPrivate: POSTs the body with a valid signature, event and delivery id; a non-2xx answer rejects', async () => {
    received.length = 0;
    answer = 204;
    await expect(deliverWebhook(data(`http://localhost:${port}/hook`), { ...options, allowPrivate: true })).resolves.toBe(204);
    const [got] = received;
    expect(got?.body).toBe(data('').body);
    expect(got?.headers['inferq-event']).toBe('job.succeeded');
    expect(got?.headers['inferq-delivery']).toBe('wh-1');
    expect(verifyWebhook('k', got?.body ?? '', String(got?.headers['inferq-signature']))).toBe(true);
    answer = 500;
    await expect(deliverWebhook(data(`http://127.0.0.1:${port}/hook`), { ...options, allowPrivate: true })).rejects.toThrow(/answered 500/);
  });
});
