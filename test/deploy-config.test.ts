// deploy/ as operators load it: promtool accepts the Prometheus config and the alert rules, the
// alerts fire on what they promise (deploy/alerts.test.yml), and the monitoring profile of
// docker-compose mounts files that exist.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { requireBinary } from './support/binaries.js';
import { ROOT } from './support/processes.js';

const DEPLOY = join(ROOT, 'deploy');

function promtool(...args: string[]): { status: number | null; output: string } {
  const run = spawnSync(requireBinary('promtool', 'prometheus'), args, { cwd: DEPLOY, encoding: 'utf8' });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

describe('deploy/', () => {
  it('promtool check config: prometheus.yml and the rule files it loads are valid', () => {
    const { status, output } = promtool('check', 'config', 'prometheus.yml');
    expect(output).toMatch(/SUCCESS: 1 rule files found/);
    expect(status, output).toBe(0);
  });

  it('promtool check rules: alerts.yml holds the alerts the operators were promised', () => {
    const { status, output } = promtool('check', 'rules', 'alerts.yml');
    expect(status, output).toBe(0);
    const names = (parse(readFileSync(join(DEPLOY, 'alerts.yml'), 'utf8')) as { groups: { rules: { alert: string }[] }[] }).groups.flatMap((g) =>
      g.rules.map((r) => r.alert),
    );
    expect(names).toEqual(
      expect.arrayContaining(['InferqSingleJobsWaitingTooLong', 'InferqNoWorkerForModel', 'InferqApiErrorRate', 'InferqWebhookDeliveriesFailing']),
    );
  });

  it('promtool test rules: each alert fires on its scenario and stays quiet otherwise', () => {
    const { status, output } = promtool('test', 'rules', 'alerts.test.yml');
    expect(status, output).toBe(0);
  });

  it('the monitoring profile runs Prometheus and Grafana with deploy/ mounted', () => {
    const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { profiles?: string[]; volumes?: string[] }>;
    };
    for (const name of ['prometheus', 'grafana']) {
      const service = compose.services[name];
      expect(service?.profiles, name).toEqual(['monitoring']);
      const mounts = (service?.volumes ?? []).filter((v) => v.startsWith('./')).map((v) => v.split(':')[0] as string);
      expect(mounts.length, name).toBeGreaterThan(0);
      for (const source of mounts) expect(existsSync(join(ROOT, source)), source).toBe(true);
    }
    // Grafana's datasource is the profile's Prometheus, under the uid the dashboard uses.
    const datasource = parse(readFileSync(join(DEPLOY, 'grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as {
      datasources: { uid: string; url: string }[];
    };
    const dashboard = JSON.parse(readFileSync(join(DEPLOY, 'grafana/dashboards/inferq.json'), 'utf8')) as { panels: { datasource: { uid: string } }[] };
    expect(datasource.datasources[0]?.url).toBe('http://prometheus:9090');
    for (const panel of dashboard.panels) expect(panel.datasource.uid).toBe(datasource.datasources[0]?.uid);
  });
});
