// The language-model part of a PPO rollout (configs/ppo-sentiment.yaml's shapes: batch 16,
// 40-token responses, temperature 1, the SFT policy of configs/sft-sentiment-reviews.yaml),
// the way rollouts ran before the static cache and the way they run now, in one process:
//
//   npx tsx tools/bench/ppo-rollout.ts [UPDATES]    (default 5; needs runs/sft-sentiment-reviews)
//
// before: sampling with the growing cache, every decode step dispatched from JS, then the
//   policy's log-probs by scoring the responses again (a full forward), the reference's, the values.
// now: sampling through the static cache with the decode step replayed natively, the
//   policy's log-probs taken from the sampling forward (as TRL does), the reference's, the values.
// The reward (a model or a function) is the same work in both and left out. Both sample the
// same responses for the same seed (checked). Run each update's prompts through both.
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { registerTorchBackend } from '@anneal/backend-torch';
import { useBackend } from '@anneal/core';
import {
  DecoderForSequenceClassification,
  classifierFrom,
  generate,
  loadPretrained,
  type CausalLm,
} from '@anneal/modeling';
import { responseValues } from '@anneal/ppo';
import { layout, layoutLogprobs, responseLogprobs } from '@anneal/training';

const RUN = 'runs/sft-sentiment-reviews/checkpoints/best';
const [B, RESPONSE, EOS, PAD] = [16, 40, 0, 0];

async function main(): Promise<void> {
  if (!existsSync(RUN)) throw new Error(`${RUN} is missing: npx anneal train configs/sft-sentiment-reviews.yaml first`);
  registerTorchBackend({ warn: () => undefined });
  await useBackend('torch', {});
  const updates = Number(process.argv[2] ?? 5);
  const policy = (await loadPretrained(RUN)) as unknown as CausalLm & { dispose(): void };
  const ref = (await loadPretrained(RUN)) as unknown as CausalLm & { dispose(): void };
  const value = classifierFrom(await loadPretrained(RUN), ['LABEL_0'], PAD, 2) as DecoderForSequenceClassification;
  const V = policy.lmHead().vocabSize;
  const promptsOf = (u: number) =>
    Array.from({ length: B }, (_, b) =>
      Array.from({ length: 5 + ((b + u) % 4) }, (_, i) => 1 + ((i * 7919 + b * 131 + u * 17) % (V - 1))),
    );
  const sampling = (u: number) => ({
    maxNewTokens: RESPONSE,
    doSample: true,
    temperature: 1,
    eosTokenId: EOS,
    padTokenId: PAD,
    seed: 1000 + u,
  });
  const o = { temperature: 1, lossChunkSize: 0 as const };
  const rows = Array.from({ length: B }, (_, b) => b);

  const before = (u: number) => {
    const prompts = promptsOf(u);
    const out = generate(policy, prompts, { ...sampling(u), cache: 'dynamic', replay: false });
    const responses = out.map((r, b) => r.slice(prompts[b].length));
    const batch = layout(prompts, responses, PAD, EOS);
    tf.tidy(() => {
      responseLogprobs(policy, batch, rows, o).logprobs.dataSync();
      responseLogprobs(ref, batch, rows, o).logprobs.dataSync();
      responseValues(value, batch, rows).dataSync();
    });
    return responses;
  };
  const now = (u: number) => {
    const prompts = promptsOf(u);
    const sampled: number[][] = [];
    const out = generate(policy, prompts, { ...sampling(u), tokenLogprobs: sampled });
    const responses = out.map((r, b) => r.slice(prompts[b].length));
    const batch = layout(prompts, responses, PAD, EOS);
    layoutLogprobs(sampled, batch.Tr);
    tf.tidy(() => {
      responseLogprobs(ref, batch, rows, o).logprobs.dataSync();
      responseValues(value, batch, rows).dataSync();
    });
    return responses;
  };

  before(99); // warm-up
  now(99);
  const time = (f: (u: number) => number[][]) => {
    const t0 = performance.now();
    const all = Array.from({ length: updates }, (_, u) => f(u));
    return { seconds: (performance.now() - t0) / 1000 / updates, all };
  };
  const a = time(before);
  const b = time(now);
  const tokens = (r: number[][][]) => r.flat().reduce((n, x) => n + x.length, 0) / r.length;
  console.log(`\nPPO rollout, LM part: batch ${B}, ${RESPONSE}-token responses, ${updates} updates, 2 cores\n`);
  console.log('| rollout | seconds per update | response tokens per update | speed-up | same samples |');
  console.log('|---|---:|---:|---:|---|');
  console.log(
    `| before (growing cache, dispatched, policy scored again) | ${a.seconds.toFixed(2)} | ${tokens(a.all)} | 1.00x | |`,
  );
  const same = JSON.stringify(a.all) === JSON.stringify(b.all) ? 'yes' : 'NO';
  console.log(
    `| now (static cache replayed, policy log-probs from sampling) | ${b.seconds.toFixed(2)} | ${tokens(b.all)} | ${(a.seconds / b.seconds).toFixed(2)}x | ${same} |`,
  );
  policy.dispose();
  ref.dispose();
  value.dispose();
}

await main();
