#!/usr/bin/env node
// Builds the native addon when libtorch is present; otherwise says so in one line and
// exits 0 (Anneal then runs on wasm/cpu). Run by the workspace's postinstall.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findLibtorch, headerVersion } from './libtorch.mjs';

const pkg = join(dirname(fileURLToPath(import.meta.url)), '..');
const found = findLibtorch();
if (!found) {
  console.log(
    '@anneal/backend-torch: libtorch not found (set LIBTORCH, or apt-get install libtorch-dev); the torch backend is skipped, Anneal will use wasm/cpu.',
  );
  process.exit(0);
}
const gyp = join(pkg, 'node_modules', '.bin', 'node-gyp');
const bin = existsSync(gyp) ? gyp : join(pkg, '..', '..', 'node_modules', '.bin', 'node-gyp');
console.log(`@anneal/backend-torch: building against libtorch in ${found.root} (${found.lib})`);
// Build against the headers of the running Node (no download: the network may be closed).
const nodeDir = process.env.npm_config_nodedir || join(dirname(process.execPath), '..');
const headers = existsSync(join(nodeDir, 'include', 'node', 'node_api.h')) ? [`--nodedir=${nodeDir}`] : [];
const r = spawnSync(bin, ['rebuild', '--release', ...headers], { cwd: pkg, stdio: 'inherit', env: process.env });
if (r.status !== 0) {
  console.log(
    '@anneal/backend-torch: the build FAILED (see above); the torch backend is unavailable, Anneal will use wasm/cpu.',
  );
  process.exit(process.env.ANNEAL_REQUIRE_TORCH ? 1 : 0);
}

// Record what the addon was built against, so a later libtorch upgrade or removal is
// reported clearly at load time instead of as a dynamic-linker error.
const versionHeader = found.include.map((d) => join(d, 'torch', 'version.h')).find((f) => existsSync(f));
const version = versionHeader ? headerVersion(readFileSync(versionHeader, 'utf8')) : undefined;
writeFileSync(
  join(pkg, 'build', 'Release', 'anneal_torch.json'),
  JSON.stringify(
    {
      torchVersion: version ?? 'unknown',
      versionHeader: versionHeader ?? null,
      libDir: found.lib,
      builtAt: new Date().toISOString(),
    },
    null,
    2,
  ) + '\n',
);
