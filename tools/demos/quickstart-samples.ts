// The quickstart model's samples and how readable they are: for each prompt, `--n` samples
// with the config's sampling settings (train.sample), and the share of the sampled words
// (runs of letters) that are words of Moby-Dick itself — "readable English words" made
// measurable: a model that spells words right scores near 1, one that strings sub-word
// pieces together ("eied", "retallanye") far lower.
//
//   npx tsx tools/demos/quickstart-samples.ts [--run runs/quickstart] [--config configs/quickstart.yaml] [--n 8]
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { deriveSeed, loadConfig, useBackend } from '@anneal/core';
import { registerTorchBackend } from '@anneal/backend-torch';
import { generate, loadPretrained, localModelDir, type CausalLm } from '@anneal/modeling';
import { loadTokenizerSync } from '@anneal/tokenizers';
import { ClmConfigSchema } from '@anneal/trainers';

const { values: a } = parseArgs({
  options: {
    run: { type: 'string', default: 'runs/quickstart' },
    config: { type: 'string', default: 'configs/quickstart.yaml' },
    n: { type: 'string', default: '8' },
  },
});
const { config } = loadConfig(a.config!, ClmConfigSchema);
const s = config.train.sample;
try {
  registerTorchBackend({ warn: () => undefined });
} catch {
  // wasm then
}
await useBackend('auto', {});
const dir = await localModelDir(a.run!);
const model = (await loadPretrained(dir)) as unknown as CausalLm;
const tok = loadTokenizerSync(dir);
const corpus = new Set(
  (
    readFileSync(config.data.train, 'utf8')
      .toLowerCase()
      .match(/[a-z’']+/g) ?? []
  ).map((w) => w.replace(/[’']s$/, '')),
);
let words = 0;
let known = 0;
const shown: string[] = [];
for (const [p, prompt] of s.prompts.entries()) {
  for (let i = 0; i < Number(a.n); i++) {
    const ids = tok.encode(prompt);
    const [out] = generate(model, [ids], {
      maxNewTokens: s.maxNewTokens,
      doSample: s.temperature > 0,
      temperature: s.temperature,
      topK: s.topK,
      seed: deriveSeed(config.seed, 9, p, i),
    });
    const text = tok.decode(out.slice(ids.length), { skipSpecialTokens: true });
    for (const w of (text.toLowerCase().match(/[a-z’']+/g) ?? []).map((x) => x.replace(/[’']s$/, ''))) {
      words++;
      if (corpus.has(w)) known++;
    }
    if (i < 2) shown.push(`${prompt}${text.replace(/\s+/g, ' ')}`);
  }
}
console.log(
  `| run | samples | words | Moby-Dick words | share |\n|---|---:|---:|---:|---:|\n| ${a.run} (${dir.split('/').pop()}) | ${s.prompts.length * Number(a.n)} | ${words} | ${known} | ${(known / words).toFixed(3)} |\n`,
);
for (const l of shown) console.log(`> ${l}`);
