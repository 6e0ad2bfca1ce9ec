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
  const warm = spawnSync(cmd, args, { stdio: 'ignore' });
  if (warm.error || (warm.status !== 0 && !args.includes('--temperature')))
    throw new Error(`${cmd} ${args.join(' ')} failed: nothing to time`);
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
// pythonWithTorch falls back to plain python3, whose torchrun would fail at once: median() refuses to time that.
rows.push([
  'peer: torchrun --help (python3 -m torch.distributed.run)',
  median(pythonWithTorch(), ['-m', 'torch.distributed.run', '--help']),
]);
console.log(`\n| command (median of ${N}) | ms |\n|---|---|`);
for (const [name, ms] of rows) console.log(`| ${name} | ${ms.toFixed(0)} |`);
