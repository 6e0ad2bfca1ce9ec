// Decoding speed with and without the KV cache, and a full training step next to PyTorch,
// for the GPT-2 small shape, in one run:
//
//   npx tsx tools/bench/modeling.ts
//
// Decoding: batch 1, a 16-token prompt, 256 new tokens, greedy, tokens/s per backend
// (`cpu` is left out: one GPT-2 small forward takes it seconds). Each (backend, mode) runs
// in its own process. Training: the rows of train-throughput.ts's shape B (forward +
// backward + AdamW, Anneal torch vs PyTorch) from the same invocation.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { registerTorchBackend } from '@anneal/backend-torch';
import { useBackend, type BackendName } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, generate } from '@anneal/modeling';
import { runSelf } from './child.js';

const NEW_TOKENS = 256;

async function child(backend: BackendName, useCache: boolean): Promise<void> {
  if (backend === 'torch') registerTorchBackend({ warn: () => undefined });
  await useBackend(backend, {});
  const model = Gpt2LMHeadModel.init({ ...GPT2_DEFAULTS, residPdrop: 0, embdPdrop: 0, attnPdrop: 0 }, 1);
  const prompt = Array.from({ length: 16 }, (_, i) => (i * 7919) % 50257);
  generate(model, [prompt], { maxNewTokens: 4, useCache }); // warm-up
  const t0 = performance.now();
  const [out] = generate(model, [prompt], { maxNewTokens: NEW_TOKENS, useCache });
  const s = (performance.now() - t0) / 1000;
  console.log(JSON.stringify({ backend, useCache, tokens: out.length - prompt.length, seconds: s }));
}

type Row = { backend: string; useCache: boolean; tokens: number; seconds: number };
const run = (args: string[]) => runSelf<Row>(fileURLToPath(import.meta.url), args);

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return child(process.argv[3] as BackendName, process.argv[4] === 'cache');
  process.env.OPENBLAS_NUM_THREADS ??= '1';
  const rows = [
    run(['--child', 'torch', 'cache']),
    run(['--child', 'torch', 'nocache']),
    run(['--child', 'wasm', 'cache']),
  ].filter((r): r is Row => r !== undefined);
  console.log(`\nGPT-2 small (124M), batch 1, 16-token prompt, ${NEW_TOKENS} new tokens, greedy\n`);
  console.log('| backend | KV cache | tokens/s | seconds | speed-up from the cache |');
  console.log('|---|---|---:|---:|---:|');
  for (const r of rows) {
    const other = rows.find((x) => x.backend === r.backend && x.useCache !== r.useCache);
    const up = r.useCache && other ? `${(other.seconds / r.seconds).toFixed(1)}x` : '';
    console.log(
      `| ${r.backend} | ${r.useCache ? 'yes' : 'no'} | ${(r.tokens / r.seconds).toFixed(1)} | ${r.seconds.toFixed(1)} | ${up} |`,
    );
  }
  console.log('\nTraining step, GPT-2 small at ctx 256, batch 2 (tools/bench/train-throughput.ts B):');
  const t = spawnSync(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(new URL('./train-throughput.ts', import.meta.url)), 'B'],
    { encoding: 'utf8', maxBuffer: 1 << 24 },
  );
  console.log(
    t.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('|'))
      .join('\n'),
  );
}

await main();
