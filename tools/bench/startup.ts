// How long the `anneal` command takes to answer when it has nothing heavy to do: `--help`,
// and a flag error (`generate --temperature 0`), as a user waits for them; against
// torchrun's `--help` (python3 -m torch.distributed.run, Debian's python3-torch), the
// nearest Python CLI of the same kind. Median of N runs, after one warm-up run (tsx's
// compile cache filled).
//
//   npx tsx tools/bench/startup.ts [N]
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { pythonWithTorch } from './python.js';

const N = Number(process.argv[2] ?? 7);
const BIN = fileURLToPath(new URL('../../apps/anneal/bin/anneal.js', import.meta.url));

function median(cmd: string, args: string[]): number {
  spawnSync(cmd, args, { stdio: 'ignore' });
  const times: number[] = [];
  for (let i = 0; i < N; i++) {
    const t0 = performance.now();
    spawnSync(cmd, args, { stdio: 'ignore' });
    times.push(performance.now() - t0);
  }
  return times.sort((a, b) => a - b)[Math.floor(N / 2)];
}

const rows: Array<[string, number]> = [
  ['anneal --help', median(process.execPath, [BIN, '--help'])],
  [
    'anneal generate --temperature 0 (flag error)',
    median(process.execPath, [BIN, 'generate', '--model', 'x', '--prompt', 'y', '--temperature', '0']),
  ],
  ['anneal train --help', median(process.execPath, [BIN, 'train', '--help'])],
];
const py = pythonWithTorch();
if (py)
  rows.push([
    'peer: torchrun --help (python3 -m torch.distributed.run)',
    median(py, ['-m', 'torch.distributed.run', '--help']),
  ]);
else console.error('python3 with torch not found: no peer row');
console.log(`\n| command (median of ${N}) | ms |\n|---|---|`);
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(0)} |`);
