#!/usr/bin/env node
// Finds libtorch: $LIBTORCH (a libtorch folder or a PyTorch install's torch/), a CMake
// prefix in $CMAKE_PREFIX_PATH, or Debian's libtorch-dev at /usr.
// `node libtorch.mjs` prints the folder or exits 1; `include` / `libs` print gyp flags;
// `version HEADER` prints the version a torch/version.h states.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

function candidates() {
  const c = [];
  if (process.env.LIBTORCH) c.push(process.env.LIBTORCH);
  for (const p of (process.env.CMAKE_PREFIX_PATH ?? '').split(':').filter(Boolean)) c.push(p);
  c.push('/usr');
  return c;
}

/**
 * The libtorch version a torch/version.h states: its TORCH_VERSION string, or (libtorch
 * 2.x builds it with C10_STRINGIZE) MAJOR.MINOR.PATCH. Same as torchVersionOf in src/addon.ts.
 */
export function headerVersion(text) {
  const literal = /#define TORCH_VERSION\s*\\?\s*"([^"]+)"/.exec(text)?.[1];
  if (literal) return literal;
  const part = (p) => new RegExp(`#define TORCH_VERSION_${p}\\s+(\\d+)`).exec(text)?.[1];
  const [major, minor, patch] = ['MAJOR', 'MINOR', 'PATCH'].map(part);
  return major && minor && patch ? `${major}.${minor}.${patch}` : undefined;
}

export function findLibtorch() {
  for (const root of candidates()) {
    const inc = join(root, 'include');
    const header = join(inc, 'ATen', 'ATen.h');
    if (!existsSync(header)) continue;
    for (const lib of [
      join(root, 'lib'),
      join(root, 'lib', 'x86_64-linux-gnu'),
      join(root, 'lib', 'aarch64-linux-gnu'),
      '/usr/lib/x86_64-linux-gnu',
      '/usr/lib/aarch64-linux-gnu',
    ]) {
      if (existsSync(join(lib, 'libtorch_cpu.so')) && existsSync(join(lib, 'libc10.so'))) {
        return { root, include: [inc, join(inc, 'torch', 'csrc', 'api', 'include')], lib };
      }
    }
  }
  return undefined;
}

/** Gloo's headers and library (Debian: libgloo-dev), for c10d's Gloo process group. */
export function gloo() {
  for (const root of ['/usr', '/usr/local']) {
    if (!existsSync(join(root, 'include', 'gloo', 'algorithm.h'))) continue;
    for (const lib of [
      join(root, 'lib'),
      join(root, 'lib', 'x86_64-linux-gnu'),
      join(root, 'lib', 'aarch64-linux-gnu'),
    ])
      if (existsSync(join(lib, 'libgloo.so'))) return { include: join(root, 'include'), lib };
  }
  return undefined;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const found = findLibtorch();
  const what = process.argv[2];
  if (!found && what !== 'version') process.exit(1);
  if (what === 'include') console.log(found.include.join(' '));
  else if (what === 'version') console.log(headerVersion(readFileSync(process.argv[3], 'utf8')) ?? 'unknown');
  else if (what === 'libs')
    console.log(`-L${found.lib} -Wl,-rpath,${found.lib} -ltorch_cpu -lc10${gloo() ? ` -L${gloo().lib} -lgloo` : ''}`);
  else if (what === 'defines') console.log(gloo() ? 'ANNEAL_GLOO USE_C10D_GLOO' : 'ANNEAL_NO_GLOO');
  else console.log(found.root);
}
