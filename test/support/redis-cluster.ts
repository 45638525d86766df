import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

export const hasRedisCluster =
  spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0;

/** A free port whose +10000 (the cluster bus port) is free too. */
async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (port + 10000 > 65535) continue;
    const bus = createServer();
    const busFree = await new Promise<boolean>((resolve) => {
      bus.once('error', () => resolve(false));
      bus.listen(port + 10000, '127.0.0.1', () => resolve(true));
    });
    if (busFree) {
      await new Promise<void>((resolve) => bus.close(() => resolve()));
      return port;
    }
  }
}

interface Node {
  port: number;
  child: ChildProcess;
}

/** Reads `CLUSTER INFO` / `INFO` style `key:value` lines. */
function fields(text: string): Record<string, string> {
  return Object.fromEntries(
    text
      .split(/\r?\n/)
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );
}

/**
 * A real Redis Cluster of six redis-server processes (three masters, one replica each) on
 * free loopback ports, in a temp folder, joined with `redis-cli --cluster create`.
 */
export class OwnRedisCluster {
  private constructor(
    readonly dir: string,
    private readonly nodes: Node[],
  ) {}

  /** `redis-cluster://` URL with every node as a seed. */
  get url(): string {
    return `redis-cluster://${this.nodes.map((n) => `127.0.0.1:${n.port}`).join(',')}`;
  }

  static async start(size = 6): Promise<OwnRedisCluster> {
    const dir = await mkdtemp(join(tmpdir(), 'inferq-cluster-'));
    const nodes: Node[] = [];
    for (let i = 0; i < size; i++) {
      const port = await freePort();
      const nodeDir = join(dir, String(port));
      await mkdir(nodeDir);
      const child = spawn(
        'redis-server',
        [
          '--port', String(port), '--bind', '127.0.0.1', '--dir', nodeDir,
          '--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '3000',
          '--appendonly', 'yes', '--save', '',
        ],
        { stdio: 'ignore' },
      );
      nodes.push({ port, child });
    }
    const cluster = new OwnRedisCluster(dir, nodes);
    for (const n of nodes) await cluster.ping(n.port);
    const create = spawnSync(
      'redis-cli',
      ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`), '--cluster-replicas', '1', '--cluster-yes'],
      { encoding: 'utf8' },
    );
    if (create.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${create.stdout}\n${create.stderr}`);
    await cluster.waitUntil(async () => {
      for (const n of nodes) {
        const info = fields(await cluster.command(n.port, ['CLUSTER', 'INFO']) as string);
        if (info.cluster_state !== 'ok' || info.cluster_known_nodes !== String(size)) return false;
      }
      // Every replica has synced with its master.
      for (const n of nodes) {
        const repl = fields(await cluster.command(n.port, ['INFO', 'replication']) as string);
        if (repl.role === 'slave' && repl.master_link_status !== 'up') return false;
      }
      return true;
    });
    return cluster;
  }

  private async ping(port: number): Promise<void> {
    const probe = new Redis({ port, host: '127.0.0.1', retryStrategy: () => 50, maxRetriesPerRequest: null });
    probe.on('error', () => {});
    try {
      await probe.ping();
    } finally {
      probe.disconnect();
    }
  }

  /** One command on one node (not through the cluster client). */
  async command(port: number, args: string[]): Promise<unknown> {
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true });
    try {
      await client.connect();
      const [cmd, ...rest] = args;
      return await client.call(cmd!, ...rest);
    } finally {
      client.disconnect();
    }
  }

  private async waitUntil(check: () => Promise<boolean>): Promise<void> {
    for (;;) {
      if (await check()) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** The node ports of the master serving `key`'s slot, and of its replica. */
  async ownersOf(key: string): Promise<{ master: number; replica: number }> {
    const port0 = this.nodes[0]!.port;
    const slot = Number(await this.command(port0, ['CLUSTER', 'KEYSLOT', key]));
    const shards = (await this.command(port0, ['CLUSTER', 'SLOTS'])) as [number, number, ...[string, number, string][]][];
    const shard = shards.find(([from, to]) => slot >= from && slot <= to);
    if (!shard) throw new Error(`no shard serves slot ${slot}`);
    const [, , master, replica] = shard;
    if (!master || !replica) throw new Error(`slot ${slot} has no replica`);
    return { master: master[1], replica: replica[1] };
  }

  /**
   * Fails over the master serving `key` with `CLUSTER FAILOVER` on its replica (a manual
   * failover: the replica catches up first, then takes over), and resolves once the replica
   * is the master and every node agrees.
   */
  async failover(key: string): Promise<{ from: number; to: number }> {
    const { master, replica } = await this.ownersOf(key);
    await this.command(replica, ['CLUSTER', 'FAILOVER']);
    await this.waitUntil(async () => {
      const role = fields((await this.command(replica, ['INFO', 'replication'])) as string);
      if (role.role !== 'master') return false;
      for (const n of this.nodes) {
        const info = fields((await this.command(n.port, ['CLUSTER', 'INFO'])) as string);
        if (info.cluster_state !== 'ok') return false;
      }
      return (await this.ownersOf(key)).master === replica;
    });
    return { from: master, to: replica };
  }

  async destroy(): Promise<void> {
    await Promise.all(
      this.nodes.map(async (n) => {
        if (n.child.exitCode !== null || n.child.signalCode !== null) return;
        const exited = once(n.child, 'exit');
        n.child.kill('SIGKILL');
        await exited;
      }),
    );
    await rm(this.dir, { recursive: true, force: true });
  }
}
