// Preference demos' end-to-end check: completions sampled from an aligned policy and from its
// starting point (e.g. DPO vs SFT) for the held-out prompts of a preference config, scored
// by a reward model; prints mean scores, the win rate (aligned > baseline, ties half) and a
// few samples, and the policy's KL to the baseline on its own samples (the sequence-level k1
// estimate: the mean over samples of Σ_t log π(y_t) − log π_base(y_t), at temperature 1).
// The held-out split is the config's own (data.evalFraction, seed).
//
//   npx tsx tools/demos/preference-win-rate.ts --config configs/dpo-sentiment.yaml \
//     --policy runs/dpo-sentiment --baseline runs/sft-sentiment-reviews \
//     --reward runs/reward-sentiment-bert   (a run folder stands for its best checkpoint) [--max-new-tokens 40] [--samples 1] [--seed 0]
import { parseArgs } from 'node:util';
import { registerTorchBackend } from '@anneal/backend-torch';
import { deriveSeed, loadConfig, useBackend } from '@anneal/core';
import { prepareDataset, type Tokenized } from '@anneal/data';
import { DpoConfigSchema } from '@anneal/dpo';
import { generate, loadPretrained, localModelDir, type CausalLm } from '@anneal/modeling';
import { scoreTexts } from '@anneal/reward-model';
import { loadTokenizerSync, tokenizerFingerprint } from '@anneal/tokenizers';
import { layout, responseLogprobs } from '@anneal/training';
import * as tf from '@tensorflow/tfjs-core';

const { values: a } = parseArgs({
  options: {
    config: { type: 'string' },
    policy: { type: 'string' },
    baseline: { type: 'string' },
    reward: { type: 'string' },
    'max-new-tokens': { type: 'string', default: '40' },
    samples: { type: 'string', default: '1' },
    seed: { type: 'string', default: '0' },
    show: { type: 'string', default: '6' },
  },
});
if (!a.config || !a.policy || !a.baseline || !a.reward)
  throw new Error('usage: --config <dpo config> --policy <dir> --baseline <dir> --reward <dir>');
for (const k of ['policy', 'baseline', 'reward'] as const) a[k] = await localModelDir(a[k]!, { field: `--${k}` });
registerTorchBackend({ warn: () => undefined });
const backend = await useBackend('auto', {});

// the held-out prompts, as the config's run split them
const { config: cfg } = loadConfig(a.config, DpoConfigSchema);
const tok = loadTokenizerSync(a.policy);
const fingerprint = tokenizerFingerprint(tok);
const data = await prepareDataset({ ...cfg.data, cacheDir: null }, tok, {
  tokenizerFingerprint: fingerprint,
  configFile: a.config,
  seed: cfg.seed,
});
const prompts = (data.eval as Extract<Tokenized, { kind: 'preference' }>[]).map((p) => Array.from(p.prompt));
const copies = Number(a.samples);

const rm = await loadPretrained(a.reward);
const rmTok = loadTokenizerSync(a.reward);
const load = async (dir: string) => (await loadPretrained(dir)) as unknown as CausalLm;
const sample = async (lm: CausalLm) => {
  const out: Array<{ prompt: number[]; response: number[]; completion: string }> = [];
  for (let i = 0; i < prompts.length; i++)
    for (let c = 0; c < copies; c++) {
      const [ids] = generate(lm, [prompts[i]], {
        maxNewTokens: Number(a['max-new-tokens']),
        doSample: true,
        temperature: 1,
        eosTokenId: tok.eosTokenId,
        seed: deriveSeed(Number(a.seed), i, c),
      });
      out.push({
        prompt: prompts[i],
        response: ids.slice(prompts[i].length),
        completion: tok.decode(ids.slice(prompts[i].length).filter((t) => t !== tok.eosTokenId)),
      });
    }
  return out;
};
const t0 = performance.now();
const [policyLm, baselineLm] = [await load(a.policy), await load(a.baseline)];
const [pol, base] = [await sample(policyLm), await sample(baselineLm)];
const texts = (x: typeof pol) => x.map((s) => ({ prompt: tok.decode(s.prompt), completion: s.completion }));
const [sp, sb] = [scoreTexts(rm, rmTok, texts(pol)), scoreTexts(rm, rmTok, texts(base))];
/** Σ_t log π(y_t) per sample of `x` under lm, in batches of 32. */
const seqLogps = (lm: CausalLm, x: typeof pol) => {
  const out: number[] = [];
  for (let s = 0; s < x.length; s += 32) {
    const part = x.slice(s, s + 32);
    const batch = layout(
      part.map((p) => p.prompt),
      part.map((p) => p.response),
      tok.eosTokenId!,
      tok.eosTokenId!,
    );
    const rows = part.map((_, i) => i);
    const lp = tf.tidy(() =>
      responseLogprobs(lm, batch, rows, { temperature: 1, lossChunkSize: 'auto' }).logprobs.arraySync(),
    );
    lp.forEach((r, b) => out.push(r.reduce((acc, v, t) => acc + v * batch.responseMask[b * batch.Tr + t], 0)));
  }
  return out;
};
const [lpPolicy, lpBase] = [seqLogps(policyLm, pol), seqLogps(baselineLm, pol)];
const kl = lpPolicy.reduce((acc, v, i) => acc + v - lpBase[i], 0) / pol.length;
let wins = 0;
sp.forEach((s, i) => (wins += s > sb[i] ? 1 : s === sb[i] ? 0.5 : 0));
const mean = (x: number[]) => x.reduce((s, v) => s + v, 0) / x.length;
const positive = (x: number[]) => x.filter((v) => v > 0).length / x.length;
console.log(
  `backend ${backend.name}; ${prompts.length} held-out prompts x ${copies} samples; ${((performance.now() - t0) / 1000).toFixed(0)} s\n`,
);
console.log('| policy | mean reward | reward > 0 |');
console.log('|---|---:|---:|');
console.log(`| ${a.baseline} (baseline) | ${mean(sb).toFixed(3)} | ${(100 * positive(sb)).toFixed(1)}% |`);
console.log(`| ${a.policy} | ${mean(sp).toFixed(3)} | ${(100 * positive(sp)).toFixed(1)}% |`);
console.log(
  `\nwin rate of ${a.policy} over the baseline: ${((100 * wins) / sp.length).toFixed(1)}% (${wins} of ${sp.length})`,
);
console.log(`KL(policy || baseline) on the policy's samples: ${kl.toFixed(2)} nats per completion\n`);
for (let i = 0; i < Math.min(Number(a.show), pol.length); i++) {
  console.log(
    `${tok.decode(pol[i].prompt)}\n  baseline (${sb[i].toFixed(2)}):${base[i].completion}\n  policy   (${sp[i].toFixed(2)}):${pol[i].completion}`,
  );
}
