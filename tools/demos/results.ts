// Regenerates docs/results.md from what the shipped configs produce on this machine, so the
// numbers there cannot drift from the configs. Each section runs its commands, reads the run
// folders (metrics.jsonl, eval.json, the console's summary line) and replaces the block
// between <!-- results:NAME --> and <!-- /results:NAME --> in docs/results.md; sections not
// asked for are left as they are.
//
//   npx tsx tools/demos/results.ts [quickstart] [eval] [sft-chat] [pipeline]   (default: all)
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = `${ROOT}apps/anneal/bin/anneal.js`;
const DOC = `${ROOT}docs/results.md`;
const today = new Date().toISOString().slice(0, 10);

/** Runs a command from the repo root; returns its output and wall time. */
function run(args: string[], cmd = process.execPath): { out: string; seconds: number } {
  const t0 = performance.now();
  const out = execFileSync(cmd, args, {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    maxBuffer: 1 << 26,
    env: { ...process.env, ANNEAL_BACKEND: '' },
  });
  return { out, seconds: (performance.now() - t0) / 1000 };
}

const metrics = (run: string) =>
  readFileSync(`${ROOT}runs/${run}/metrics.jsonl`, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
const evalAt = (rows: Array<Record<string, number>>, key: string) => rows.filter((r) => r[key] !== undefined);
const line = (out: string, re: RegExp) => out.split('\n').find((l) => re.test(l)) ?? '(not printed)';

const SECTIONS: Record<string, () => string> = {
  quickstart: () => {
    const r = run([BIN, 'train', 'configs/quickstart.yaml', '--overwrite']);
    const evals = evalAt(metrics('quickstart'), 'eval/loss');
    const samples = run(['--import', 'tsx', 'tools/demos/quickstart-samples.ts']).out.trim();
    return [
      `## Quickstart (${today})`,
      '',
      '```',
      'npm run quickstart                               # anneal train configs/quickstart.yaml --overwrite',
      "npx tsx tools/demos/quickstart-samples.ts        # 8 samples per prompt, the config's sampling settings",
      '```',
      '',
      `${line(r.out, /^torch backend|^backend/)}; ${line(r.out, /^model: /)}`,
      `Wall time ${r.seconds.toFixed(0)} s (tokenizer training included).`,
      '',
      '| step | eval/loss | eval/perplexity |',
      '|---:|---:|---:|',
      ...evals.map((e) => `| ${e.step} | ${e['eval/loss'].toFixed(4)} | ${e['eval/perplexity'].toFixed(1)} |`),
      '',
      line(r.out, /^done at step/).replace(/; run folder.*$/, ''),
      '',
      'Sampled words that are words of Moby-Dick (a spelling check, not a fluency one), and the first samples:',
      '',
      samples,
    ].join('\n');
  },
  eval: () => {
    const r = run([BIN, 'eval', 'configs/eval-quickstart.yaml']);
    const results = JSON.parse(readFileSync(`${ROOT}runs/quickstart/eval.json`, 'utf8')).results as Record<
      string,
      number
    >;
    return [
      `## Evaluating the quickstart model (${today})`,
      '',
      '```',
      'npx anneal eval configs/eval-quickstart.yaml     # after the quickstart',
      '```',
      '',
      `Wall time ${r.seconds.toFixed(0)} s. Generation: 8 new tokens after the first words of 40 held-out sentences`,
      "(datasets/moby-dick/continuations.jsonl), greedy; the references are the sentences' last 6 words.",
      '',
      '| metric | value |',
      '|---|---:|',
      ...Object.entries(results).map(([k, v]) => `| ${k} | ${v.toFixed(4)} |`),
    ].join('\n');
  },
  'sft-chat': () => {
    const r = run([BIN, 'train', 'configs/sft-quickstart-chat.yaml', '--overwrite']);
    const evals = evalAt(metrics('sft-quickstart-chat'), 'eval/loss');
    const [first, last] = [evals[0], evals[evals.length - 1]];
    const row = (name: string, e: Record<string, number>) =>
      `| ${name} | ${e['eval/loss'].toFixed(4)} | ${e['eval/mean_token_accuracy'].toFixed(3)} | ${(e['eval/entropy'] ?? NaN).toFixed(3)} |`;
    return [
      `## SFT: chat-tuning the quickstart model (${today})`,
      '',
      '```',
      'npx anneal train configs/sft-quickstart-chat.yaml   # after the quickstart',
      '```',
      '',
      `Wall time ${r.seconds.toFixed(0)} s. Held-out loss on the assistant tokens only (assistantOnlyLoss):`,
      '',
      '| | eval/loss | eval/mean_token_accuracy | eval/entropy |',
      '|---|---:|---:|---:|',
      row(`base model (step ${first.step})`, first),
      row(`after ${last.step} steps`, last),
      '',
      'Last samples:',
      '',
      ...r.out
        .split('\n')
        .filter((l) => l.startsWith(`sample @${last.step}`))
        .map((l) => `- ${l}`),
    ].join('\n');
  },
};

/** The sentiment pipeline as the README lists it, each config as shipped (about 20 minutes on 2 cores). */
function pipeline(): string {
  const steps: Array<[string, string]> = [
    ['mlm-sentiment-bert', 'BERT 2x128 MLM (base of the classifier and the reward model)'],
    ['classification-sentiment-bert', 'sentiment classifier from the MLM run'],
    ['reward-sentiment-bert', 'reward model from the MLM run'],
    ['sft-sentiment-reviews', 'SFT policy from the quickstart model'],
    ['dpo-sentiment', 'DPO from the SFT policy'],
    ['ppo-sentiment', 'PPO from the SFT policy against the reward model'],
  ];
  const rows = steps.map(([name, what]) => {
    const r = run([BIN, 'train', `configs/${name}.yaml`, '--overwrite']);
    return `| \`${name}\` | ${what} | ${r.seconds.toFixed(0)} s | ${line(r.out, /^(done|stopped) at (step|update)/)
      .replace(/; run folder.*$/, '')
      .replace(/\|/g, '/')} |`;
  });
  const winRate = (policy: string) =>
    run([
      '--import',
      'tsx',
      'tools/demos/preference-win-rate.ts',
      '--config',
      'configs/dpo-sentiment.yaml',
      '--policy',
      policy,
      '--baseline',
      'runs/sft-sentiment-reviews',
      '--reward',
      'runs/reward-sentiment-bert',
      '--show',
      '0',
    ])
      .out.trim()
      .replaceAll(ROOT, '');
  return [
    `## The sentiment pipeline, configs as shipped (${today})`,
    '',
    '```',
    'npm run quickstart   # then, in order:',
    ...steps.map(([name]) => `npx anneal train configs/${name}.yaml`),
    'npx tsx tools/demos/preference-win-rate.ts --config configs/dpo-sentiment.yaml --policy runs/dpo-sentiment \\',
    '  --baseline runs/sft-sentiment-reviews --reward runs/reward-sentiment-bert          # and --policy runs/ppo-sentiment/checkpoints/last/policy',
    '```',
    '',
    'Each config names the runs it starts from (their best checkpoints), so the pipeline runs as listed.',
    '',
    '| config | what | wall time | end of run (its summary line) |',
    '|---|---|---:|---|',
    ...rows,
    '',
    'Completions of the held-out DPO prompts, scored by the reward model (win rate over the SFT policy):',
    '',
    '```',
    winRate('runs/dpo-sentiment'),
    '',
    winRate('runs/ppo-sentiment/checkpoints/last/policy'),
    '```',
  ].join('\n');
}
SECTIONS.pipeline = pipeline;

const asked = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(SECTIONS);
let doc = readFileSync(DOC, 'utf8');
for (const name of asked) {
  if (!SECTIONS[name]) throw new Error(`unknown section ${name}; sections: ${Object.keys(SECTIONS).join(', ')}`);
  console.error(`results: ${name} ...`);
  const block = `<!-- results:${name} -->\n${SECTIONS[name]()}\n<!-- /results:${name} -->`;
  const re = new RegExp(`<!-- results:${name} -->[\\s\\S]*?<!-- /results:${name} -->`);
  // A new section goes after the introduction, before the first section or block.
  doc = re.test(doc) ? doc.replace(re, block) : doc.replace(/\n(?=<!-- results:|## )/, `\n${block}\n\n`);
  writeFileSync(DOC, doc);
}
