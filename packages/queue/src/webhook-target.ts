import dns, { type LookupAddress, type LookupOptions } from 'node:dns';
import { isIP } from 'node:net';
import { webhookUrlProblem } from '@inferq/contracts';

/** A webhook URL that must not be used: its message says why. */
export class WebhookTargetError extends Error {
  override readonly name = 'WebhookTargetError';
  constructor(
    message: string,
    /** Whether asking again later could give another answer (a DNS failure). */
    readonly transient = false,
  ) {
    super(message);
  }
}

type V4 = [number, number, number, number];

function v4Blocked([a, b, c]: V4): boolean {
  return (
    a === 0 || // "this network"
    a === 10 || // private
    (a === 100 && b >= 64 && b <= 127) || // carrier-grade NAT
    a === 127 || // loopback
    (a === 169 && b === 254) || // link-local (cloud metadata endpoints live here)
    (a === 172 && b >= 16 && b <= 31) || // private
    (a === 192 && b === 0 && (c === 0 || c === 2)) || // IETF protocol assignments, documentation
    (a === 192 && b === 88 && c === 99) || // 6to4 relay anycast
    (a === 192 && b === 168) || // private
    (a === 198 && (b === 18 || b === 19)) || // benchmarking
    (a === 198 && b === 51 && c === 100) || // documentation
    (a === 203 && b === 0 && c === 113) || // documentation
    a >= 224 // multicast, reserved, broadcast
  );
}

function parseV4(ip: string): V4 {
  return ip.split('.').map(Number) as V4;
}

/** The 16 bytes of an IPv6 address (with an embedded dotted IPv4 tail, if any). */
function parseV6(ip: string): number[] {
  let text = ip.split('%')[0] ?? ''; // zone id
  let tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.', lastColon)) {
    tail = parseV4(text.slice(lastColon + 1));
    text = text.slice(0, lastColon + 1) + '0:0';
  }
  const [head = '', rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = rest === undefined ? [] : groups(rest);
  const all = [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const bytes = all.flatMap((g) => [g >> 8, g & 0xff]);
  if (tail.length === 4) bytes.splice(12, 4, ...tail);
  return bytes;
}

function v6Blocked(b: number[]): boolean {
  const zeros = (from: number, to: number): boolean => b.slice(from, to).every((x) => x === 0);
  const embedded = (at: number): boolean => v4Blocked(b.slice(at, at + 4) as V4);
  if (zeros(0, 10) && b[10] === 0xff && b[11] === 0xff) return embedded(12); // IPv4-mapped ::ffff:a.b.c.d
  if (zeros(0, 12)) return true; // ::, ::1, and the deprecated IPv4-compatible ::a.b.c.d
  if (b[0] === 0x00 && b[1] === 0x64 && b[2] === 0xff && b[3] === 0x9b) {
    return zeros(4, 12) ? embedded(12) : true; // NAT64 64:ff9b::/96; 64:ff9b:1::/48 is local-use
  }
  if (b[0] === 0x01 && b[1] === 0x00 && zeros(2, 8)) return true; // discard-only 100::/64
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x0d && b[3] === 0xb8) return true; // documentation 2001:db8::/32
  if (b[0] === 0x20 && b[1] === 0x01 && b[2] === 0x00 && b[3] === 0x00) return true; // Teredo 2001::/32 (tunnels to any v4)
  if (b[0] === 0x20 && b[1] === 0x02) return embedded(2); // 6to4 2002:aabb:ccdd::/48
  const first = b[0] ?? 0;
  if ((first & 0xfe) === 0xfc) return true; // unique local fc00::/7
  if (first === 0xfe && ((b[1] ?? 0) & 0xc0) === 0x80) return true; // link-local fe80::/10
  if (first === 0xfe && ((b[1] ?? 0) & 0xc0) === 0xc0) return true; // site-local fec0::/10 (deprecated)
  if (first === 0xff) return true; // multicast
  return false;
}

/**
 * Whether an IP address is one a webhook must not reach: loopback, private, link-local,
 * carrier-grade NAT, multicast, reserved or documentation ranges, in IPv4 or IPv6 (IPv4
 * inside IPv6 included: mapped, NAT64, 6to4). Anything that is not an IP address counts as blocked.
 */
export function isPrivateAddress(ip: string): boolean {
  const family = isIP(ip.split('%')[0] ?? '');
  if (family === 4) return v4Blocked(parseV4(ip));
  if (family === 6) return v6Blocked(parseV6(ip));
  return true;
}

/** The URL's host as `net` sees it: IPv6 literals without their brackets. */
export function hostOf(url: URL): string {
  const host = url.hostname;
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
}

function lookupAll(host: string): Promise<LookupAddress[]> {
  return new Promise((resolve, reject) => {
    dns.lookup(host, { all: true, verbatim: true }, (err, addresses) => (err ? reject(err) : resolve(addresses)));
  });
}

export interface WebhookTargetOptions {
  /** Let webhooks reach loopback and private addresses (tests, a receiver on the same host). @defaultValue false */
  allowPrivate?: boolean;
  /** Resolve host names and check every address they resolve to. @defaultValue true */
  resolve?: boolean;
}

/**
 * Checks a webhook URL: an absolute http(s) URL whose host (an IP literal, or every address its
 * name resolves to, IPv4 and IPv6) is not private. Throws a {@link WebhookTargetError} saying why not;
 * a DNS failure other than "no such host" is `transient`.
 */
export async function checkWebhookTarget(url: string, options: WebhookTargetOptions = {}): Promise<URL> {
  const { allowPrivate, resolve } = { allowPrivate: false, resolve: true, ...options };
  const problem = webhookUrlProblem(url);
  if (problem) throw new WebhookTargetError(problem);
  const parsed = new URL(url);
  if (allowPrivate) return parsed;
  const host = hostOf(parsed);
  if (isIP(host)) {
    if (isPrivateAddress(host)) throw new WebhookTargetError(`${host} is a private, loopback or reserved address`);
    return parsed;
  }
  if (!resolve) return parsed;
  let addresses: LookupAddress[];
  try {
    addresses = await lookupAll(host);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTFOUND' || code === 'ENODATA') throw new WebhookTargetError(`the host ${host.slice(0, 100)} does not resolve`);
    throw new WebhookTargetError(`the host ${host.slice(0, 100)} could not be resolved (${code ?? 'error'})`, true);
  }
  const bad = addresses.find((a) => isPrivateAddress(a.address));
  if (bad) throw new WebhookTargetError(`the host ${host.slice(0, 100)} resolves to ${bad.address}, a private, loopback or reserved address`);
  return parsed;
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

/**
 * A `lookup` for `http.request` that resolves the host and refuses the connection when any
 * address is private (unless `allowPrivate`): the address connected to is the one checked, so
 * a name that changes its answer between check and connect (DNS rebinding) gets nowhere.
 * (IP literals never reach a lookup; check them with {@link checkWebhookTarget} first.)
 */
export function safeLookup(allowPrivate: boolean) {
  return (hostname: string, options: LookupOptions, callback: LookupCallback): void => {
    dns.lookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return callback(err, '');
      const bad = allowPrivate ? undefined : addresses.find((a) => isPrivateAddress(a.address));
      if (bad) {
        const error: NodeJS.ErrnoException = new WebhookTargetError(`the host ${hostname} resolves to ${bad.address}, a private, loopback or reserved address`);
        error.code = 'EINFERQ_PRIVATE_ADDRESS';
        return callback(error, '');
      }
      const first = addresses[0];
      if (!first) return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }), '');
      if (options.all) return callback(null, addresses);
      callback(null, first.address, first.family);
    });
  };
}
