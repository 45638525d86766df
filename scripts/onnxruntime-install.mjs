// The root `postinstall`: fetches onnxruntime-node's CUDA provider only when asked.
//
// onnxruntime-node's own postinstall downloads the CUDA 12 provider (hundreds of MB, from a
// NuGet feed) on every Linux x64 install. package.json's `allowScripts` denies that script, so
// `npm ci` needs only the npm registry and prints no warning. A GPU host asks for the provider
// as before, and this runs onnxruntime-node's installer with the same setting:
//   ONNXRUNTIME_NODE_INSTALL=cuda12 npm ci
// (the installer reads ONNXRUNTIME_NODE_INSTALL itself; `skip` or unset installs nothing).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const flag = process.env.ONNXRUNTIME_NODE_INSTALL || process.env.ONNXRUNTIME_NODE_INSTALL_CUDA || '';
if (!flag || flag === 'skip') process.exit(0);

let installer;
try {
  installer = join(dirname(createRequire(import.meta.url).resolve('onnxruntime-node/package.json')), 'script', 'install.js');
} catch {
  // `npm ci --omit=…` without the inference package: nothing to install into.
  process.exit(0);
}
if (!existsSync(installer)) {
  console.error(`ONNXRUNTIME_NODE_INSTALL=${flag}, but onnxruntime-node has no ${installer}`);
  process.exit(1);
}
console.log(`onnxruntime-node: ONNXRUNTIME_NODE_INSTALL=${flag}: fetching its providers`);
const run = spawnSync(process.execPath, [installer], { stdio: 'inherit', cwd: dirname(dirname(installer)), env: process.env });
process.exit(run.status ?? 1);
