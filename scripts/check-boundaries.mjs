// Part of `npm run lint`: packages that ship in the worker must not depend on the demo-model
// builder. packages/inference and apps/worker import nothing of packages/tiny-models from their
// source, list it in no runtime dependency, and reference it from no tsconfig (their tests may
// use it as a dev dependency: building models is the scripts' and tests' job).
//   node scripts/check-boundaries.mjs [repo root]
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..'));
const FORBIDDEN = '@inferq/tiny-models';
const forbiddenDir = join(root, 'packages', 'tiny-models');
const GUARDED = ['packages/inference', 'apps/worker'];
const IMPORT = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\brequire\s*\(\s*)['"]([^'"]+)['"]/g;

const problems = [];

function* sourceFiles(dir) {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* sourceFiles(path);
    else if (/\.(?:[cm]?[jt]s|tsx)$/.test(name)) yield path;
  }
}

for (const pkg of GUARDED) {
  const base = join(root, pkg);
  const src = join(base, 'src');
  if (existsSync(src)) {
    for (const file of sourceFiles(src)) {
      const text = readFileSync(file, 'utf8');
      for (const [, spec] of text.matchAll(IMPORT)) {
        const target = spec.startsWith('.') ? resolve(dirname(file), spec) : undefined;
        if (spec === FORBIDDEN || spec.startsWith(`${FORBIDDEN}/`) || (target && (target === forbiddenDir || target.startsWith(`${forbiddenDir}/`)))) {
          problems.push(`${relative(root, file)} imports "${spec}"`);
        }
      }
    }
  }
  const manifest = join(base, 'package.json');
  if (existsSync(manifest)) {
    const json = JSON.parse(readFileSync(manifest, 'utf8'));
    for (const field of ['dependencies', 'peerDependencies', 'optionalDependencies']) {
      if (json[field]?.[FORBIDDEN] !== undefined) problems.push(`${relative(root, manifest)} lists ${FORBIDDEN} in ${field}`);
    }
  }
  const tsconfig = join(base, 'tsconfig.json');
  if (existsSync(tsconfig) && /packages\/tiny-models/.test(readFileSync(tsconfig, 'utf8'))) {
    problems.push(`${relative(root, tsconfig)} references packages/tiny-models`);
  }
}

if (problems.length > 0) {
  console.error(`These must not depend on packages/tiny-models (the demo-model builder):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`boundaries: ${GUARDED.join(' and ')} depend on nothing of packages/tiny-models`);
