// How busy the machine was with other work while a figure was measured: CPU time of the
// whole machine (/proc/stat) minus that of our own processes, in cores.
import { readFileSync } from 'node:fs';

const TICKS = 100; // USER_HZ on Linux

function busySeconds() {
  try {
    const [, ...fields] = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/);
    const v = fields.map(Number);
    // user nice system idle iowait irq softirq steal
    return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / TICKS;
  } catch {
    return NaN;
  }
}

/** Starts a measurement; `stop(ourCpuSeconds)` returns `{wallS, backgroundCores}`. */
export function startLoadMeter() {
  const busy0 = busySeconds();
  const t0 = performance.now();
  return {
    stop(ourCpuSeconds) {
      const wallS = (performance.now() - t0) / 1000;
      return { wallS, backgroundCores: Math.max(0, (busySeconds() - busy0 - ourCpuSeconds) / wallS) };
    },
  };
}

/** CPU seconds of this process since `since` (a `process.cpuUsage()` value). */
export function selfCpuSeconds(since) {
  const u = process.cpuUsage(since);
  return (u.user + u.system) / 1e6;
}
