import { spawnSync } from 'node:child_process';

/**
 * The path of a program a test needs (Debian's chromium, prometheus, promtool). CI installs them
 * (.ci/run); elsewhere a missing one fails the test with the command that installs it, never
 * a silent skip.
 */
export function requireBinary(name: string, debianPackage: string): string {
  const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  const path = found.stdout.trim();
  if (found.status !== 0 || !path) {
    throw new Error(`${name} is not installed: run \`apt-get install -y ${debianPackage}\` (Debian's package; .ci/run installs it in CI)`);
  }
  return path;
}
