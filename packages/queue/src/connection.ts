import { Cluster, Redis, type ClusterNode, type RedisOptions } from 'ioredis';

/**
 * `producer`: the API. Commands fail at once while Redis is down (no offline queue), so a
 * request gets a 503 instead of hanging.
 * `worker`: BullMQ workers and blocking readers. Commands wait and retry forever
 * (`maxRetriesPerRequest: null`), as BullMQ requires, so a Redis restart is survived.
 */
export type ConnectionRole = 'producer' | 'worker';

/** A connection to a standalone Redis or to a Redis Cluster. */
export type RedisClient = Redis | Cluster;

const CLUSTER_URL = /^(rediss?)-cluster:\/\//;

/** Whether `url` names a Redis Cluster: `redis-cluster://[user:password@]host:port[,host:port...]` (`rediss-cluster://` for TLS). */
export function isClusterUrl(url: string): boolean {
  return CLUSTER_URL.test(url);
}

/** The seed nodes and credentials of a `redis-cluster://` URL. */
export function parseClusterUrl(url: string): { nodes: ClusterNode[]; username?: string; password?: string; tls: boolean } {
  const match = CLUSTER_URL.exec(url);
  if (!match) throw new Error(`not a redis-cluster:// URL: ${url}`);
  let rest = url.slice(match[0].length).replace(/\/.*$/, '');
  let username: string | undefined;
  let password: string | undefined;
  const at = rest.lastIndexOf('@');
  if (at !== -1) {
    const auth = rest.slice(0, at);
    rest = rest.slice(at + 1);
    const colon = auth.indexOf(':');
    username = decodeURIComponent(colon === -1 ? auth : auth.slice(0, colon)) || undefined;
    password = colon === -1 ? undefined : decodeURIComponent(auth.slice(colon + 1));
  }
  const nodes = rest
    .split(',')
    .filter(Boolean)
    .map((hostPort) => {
      const colon = hostPort.lastIndexOf(':');
      const host = colon === -1 ? hostPort : hostPort.slice(0, colon);
      const port = colon === -1 ? 6379 : Number(hostPort.slice(colon + 1));
      if (!host || !Number.isInteger(port)) throw new Error(`bad cluster node "${hostPort}" in ${url}`);
      return { host: host.replace(/^\[(.*)\]$/, '$1'), port };
    });
  if (nodes.length === 0) throw new Error(`no cluster node in ${url}`);
  return { nodes, username, password, tls: match[1] === 'rediss' };
}

/**
 * Whether every key under `prefix:` hashes to one Redis Cluster slot: Redis hashes only the
 * part between the first `{` and the next `}` when it is not empty, so the prefix must hold
 * such a tag (`{inferq}`). inferq's scripts, multi-key DELs and pipelines need that.
 */
export function hasHashTag(prefix: string): boolean {
  const open = prefix.indexOf('{');
  if (open === -1) return false;
  const close = prefix.indexOf('}', open + 1);
  return close > open + 1;
}

/** Throws, with what to do, when `url` is a cluster and `prefix` has no hash tag. */
export function assertClusterPrefix(url: string, prefix: string): void {
  if (!isClusterUrl(url) || hasHashTag(prefix)) return;
  throw new Error(
    `QUEUE_PREFIX "${prefix}" has no hash tag, and REDIS_URL is a Redis Cluster: inferq's scripts and pipelines use ` +
      `several keys at once, which must share one slot. Use a prefix in braces, e.g. QUEUE_PREFIX={${prefix.replace(/[{}]/g, '') || 'inferq'}}`,
  );
}

/**
 * A connection for `role`: a standalone client for `redis://` and `rediss://`, an ioredis
 * `Cluster` for `redis-cluster://` (which follows slot moves and failovers).
 */
export function createRedis(url: string, role: ConnectionRole, extra: RedisOptions = {}): RedisClient {
  const options: RedisOptions =
    role === 'producer'
      ? { enableOfflineQueue: false, maxRetriesPerRequest: 1, ...extra }
      : { maxRetriesPerRequest: null, enableReadyCheck: true, ...extra };
  if (!isClusterUrl(url)) return new Redis(url, options);
  const { nodes, username, password, tls } = parseClusterUrl(url);
  const { enableOfflineQueue, enableReadyCheck, lazyConnect, ...redisOptions } = options;
  return new Cluster(nodes, {
    enableOfflineQueue: enableOfflineQueue ?? true,
    enableReadyCheck: enableReadyCheck ?? true,
    lazyConnect: lazyConnect ?? false,
    redisOptions: { ...redisOptions, username, password, ...(tls ? { tls: {} } : {}) },
  });
}
