import { spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/processes.js';

// deploy/k8s: the KEDA ScaledObject scales the worker Deployment it names, on PromQL that
// Prometheus accepts (checked with Debian's promtool, as CI checks deploy/'s rules).

const hasPromtool = spawnSync('promtool', ['--version']).status === 0;
const read = (name: string) => readFile(join(ROOT, 'deploy/k8s', name), 'utf8');

describe('deploy/k8s autoscaling example', () => {
  it('the ScaledObject targets the worker Deployment, which runs on a Redis Cluster with a hash-tagged prefix', async () => {
    const [scaled, deployment] = await Promise.all([read('keda-scaledobject.yaml'), read('worker-deployment.yaml')]);
    const target = /scaleTargetRef:\s*\n\s*name:\s*([\w-]+)/.exec(scaled)?.[1];
    const name = /kind: Deployment\s*\nmetadata:\s*\n\s*name:\s*([\w-]+)/.exec(deployment)?.[1];
    expect(target).toBeDefined();
    expect(target).toBe(name);
    expect(scaled).toMatch(/apiVersion: keda\.sh\/v1alpha1\s*\nkind: ScaledObject/);
    expect(deployment).toMatch(/name: REDIS_URL, value: "redis-cluster:\/\//);
    expect(deployment).toMatch(/name: QUEUE_PREFIX, value: "\{inferq\}"/);
  });

  it.skipIf(!hasPromtool)('its queries are valid PromQL on the oldest-waiting age and the queue depth', async () => {
    const scaled = await read('keda-scaledobject.yaml');
    const queries = [...scaled.matchAll(/^\s*query:\s*(.+)$/gm)].map((m) => m[1]!.trim());
    expect(queries.some((q) => q.includes('inferq_queue_oldest_waiting_age_seconds'))).toBe(true);
    expect(queries.some((q) => q.includes('inferq_queue_jobs'))).toBe(true);
    const dir = await mkdtemp(join(tmpdir(), 'inferq-keda-'));
    try {
      const rules = ['groups:', '  - name: keda', '    rules:', ...queries.flatMap((q, i) => [`      - record: keda:query_${i}`, `        expr: '${q.replace(/'/g, "''")}'`])];
      await writeFile(join(dir, 'rules.yml'), rules.join('\n') + '\n');
      const run = spawnSync('promtool', ['check', 'rules', join(dir, 'rules.yml')], { encoding: 'utf8' });
      expect(run.stdout + run.stderr).toContain(`SUCCESS: ${queries.length} rules found`);
      expect(run.status).toBe(0);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
