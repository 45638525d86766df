import { describe, expect, it } from 'vitest';
import { WebhookTargetError, checkWebhookTarget, isPrivateAddress, signWebhook, verifyWebhook } from '../src/index.js';

describe('webhook targets', () => {
  it.each([
    '127.0.0.1', '127.255.0.9', '10.0.0.1', '172.16.0.1', '172.31.255.255', '192.168.0.10', '169.254.169.254', '100.64.0.1',
    '0.0.0.0', '224.0.0.1', '255.255.255.255', '198.18.0.1', '192.0.2.5',
    '::', '::1', 'fe80::1', 'fe80::1%eth0', 'fd12:3456::1', 'fc00::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1',
    '::ffff:7f00:1', '64:ff9b::a00:1', '2002:c0a8:101::1', '2001:db8::1', '::127.0.0.1', 'not-an-ip',
  ])('%s is refused', (ip) => {
    expect(isPrivateAddress(ip)).toBe(true);
  });

  it.each(['93.184.215.14', '8.8.8.8', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8', '64:ff9b::808:808', '2002:808:808::1'])(
    '%s is allowed',
    (ip) => {
      expect(isPrivateAddress(ip)).toBe(false);
    },
  );

  it('checks the form, then IP literals, then every address a name resolves to', async () => {
    await expect(checkWebhookTarget('ftp://example.com/')).rejects.toThrow(/http or https/);
    await expect(checkWebhookTarget('http://[::1]:80/')).rejects.toThrow(WebhookTargetError);
    await expect(checkWebhookTarget('http://localhost/')).rejects.toThrow(/resolves to/);
    await expect(checkWebhookTarget('https://93.184.215.14/hook')).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookTarget('http://localhost/', { allowPrivate: true })).resolves.toBeInstanceOf(URL);
    await expect(checkWebhookTarget('http://no-such-host.invalid/')).rejects.toThrow(/does not resolve/);
  });
});

describe('webhook signatures', () => {
  const body = '{"id":"batch_1","status":"completed"}';

  it('sign "<t>.<body>" with HMAC-SHA256 and verify within the tolerance only', () => {
    const header = signWebhook('s3cret', body, 1_700_000_000);
    expect(header).toMatch(/^t=1700000000,v1=[0-9a-f]{64}$/);
    expect(verifyWebhook('s3cret', body, header, { nowSeconds: 1_700_000_100 })).toBe(true);
    expect(verifyWebhook('s3cret', body, header, { nowSeconds: 1_700_001_000 })).toBe(false);
    expect(verifyWebhook('other', body, header, { nowSeconds: 1_700_000_000 })).toBe(false);
    expect(verifyWebhook('s3cret', body + ' ', header, { nowSeconds: 1_700_000_000 })).toBe(false);
    expect(verifyWebhook('s3cret', body, 'garbage', { nowSeconds: 1_700_000_000 })).toBe(false);
  });
});
