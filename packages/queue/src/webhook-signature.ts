import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * The `Inferq-Signature` header of a webhook body: `t=<unix seconds>,v1=<hex HMAC-SHA256 of
 * "<t>.<body>" keyed with the secret>`. Signing the time with the body lets a receiver
 * refuse replays older than its tolerance.
 */
export function signWebhook(secret: string, body: string, timestampSeconds = Math.floor(Date.now() / 1000)): string {
  const mac = createHmac('sha256', secret).update(`${timestampSeconds}.${body}`).digest('hex');
  return `t=${timestampSeconds},v1=${mac}`;
}

export interface VerifyWebhookOptions {
  /** Oldest accepted signature time, in seconds before now. @defaultValue 300 */
  toleranceSeconds?: number;
  /** Now, in unix seconds (for tests). @defaultValue the clock */
  nowSeconds?: number;
}

/**
 * Whether a signature header is valid for the body and recent: what a receiver runs. Any
 * `v1=` entry may match (a sender rotating its secret signs with both).
 */
export function verifyWebhook(secret: string, body: string, header: string, options: VerifyWebhookOptions = {}): boolean {
  const { toleranceSeconds, nowSeconds } = { toleranceSeconds: 300, nowSeconds: Math.floor(Date.now() / 1000), ...options };
  const parts = header.split(',').map((p) => p.trim().split('=') as [string, string | undefined]);
  const t = Number(parts.find(([k]) => k === 't')?.[1]);
  if (!Number.isInteger(t) || Math.abs(nowSeconds - t) > toleranceSeconds) return false;
  const expected = Buffer.from(createHmac('sha256', secret).update(`${t}.${body}`).digest('hex'));
  return parts
    .filter(([k, v]) => k === 'v1' && v !== undefined)
    .some(([, v]) => {
      const got = Buffer.from(v ?? '');
      return got.length === expected.length && timingSafeEqual(got, expected);
    });
}
