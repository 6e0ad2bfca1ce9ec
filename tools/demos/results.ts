// Regenerates docs/results.md from what the shipped configs produce on this machine, so the
// numbers there cannot drift from the configs. Each section runs its commands, reads the run
// folders (metrics.jsonl, eval.json, the console's summary line) and replaces the block
// between <!-- results:NAME --> and <!-- /results:NAME --> in docs/results.md; sections not
// asked for are left as they are.
//
//   npx tsx tools/demos/results.ts [quickstart] [export] [eval] [sft-chat] [pipeline] [verifiable] [methods]   (default: all)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

/** The win-rate demo's table and KL for one policy (the held-out prompts of configs/dpo-sentiment.yaml). */
function winRate(policy: string, show = '0'): string {
  return run([
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
    show,
  ])
    .out.trim()
    .replaceAll(ROOT, '');
}

/** The first and last value of a metric in a run's log. */
const firstLast = (name: string, key: string) => {
  const rows = evalAt(metrics(name), key);
  return [rows[0], rows.at(-1)!].map((r) => ({ step: r.step, value: r[key] }));
};

/** GRPO with verifiable rewards: an SFT policy, then GRPO on exact-answer rewards; held-out accuracy before and after. */
function verifiable(): string {
  const tasks: Array<[string, string, string]> = [
    ['counting', 'sft-counting', 'grpo-counting'],
    ['addition', 'sft-arithmetic', 'grpo-arithmetic'],
  ];
  const rows = tasks.map(([task, sft, grpo]) => {
    const a = run([BIN, 'train', `configs/${sft}.yaml`, '--overwrite']);
    const b = run([BIN, 'train', `configs/${grpo}.yaml`, '--overwrite']);
    const acc = firstLast(grpo, 'eval/rewards/exactAnswer/mean');
    const reward = evalAt(metrics(grpo), 'reward');
    const mean = (r: Array<Record<string, number>>) => r.reduce((s, x) => s + x.reward, 0) / r.length;
    const k = Math.max(1, Math.floor(reward.length / 5));
    return `| ${task} | ${line(b.out, /policy: /).match(/(\d+\.\d+)M parameters/)?.[1] ?? '?'}M | ${evalAt(metrics(sft), 'train/loss').at(-1)!.step} SFT steps (${a.seconds.toFixed(0)} s) | ${acc[1].step} GRPO steps (${b.seconds.toFixed(0)} s) | ${mean(reward.slice(0, k)).toFixed(3)} → ${mean(reward.slice(-k)).toFixed(3)} | **${(100 * acc[0].value).toFixed(1)}% → ${(100 * acc[1].value).toFixed(1)}%** |`;
  });
  return [
    `## GRPO with verifiable rewards: counting and addition (${today})`,
    '',
    '```',
    'npm run quickstart   # the base model (GPT-2 4x128 on Moby-Dick), then for each task:',
    ...tasks.flatMap(([, sft, grpo]) => [
      `npx anneal train configs/${sft}.yaml`,
      `npx anneal train configs/${grpo}.yaml`,
    ]),
    '```',
    '',
    'The reward is exact answer match (configs/rewards/arithmetic.ts) and nothing else. Held-out accuracy: the',
    "200 test prompts of each task (in no training file), answered greedily, at GRPO's step 0 and last step;",
    "training reward: the sampled completions' mean reward over the first and last fifth of the steps.",
    '',
    '| task | policy | SFT | GRPO | training reward | held-out exact match |',
    '|---|---:|---|---|---:|---:|',
    ...rows,
  ].join('\n');
}
SECTIONS.verifiable = verifiable;

/**
 * The alignment methods on the sentiment pipeline, each config as shipped: the online ones (PPO,
 * GRPO, RLOO: 2,400 episodes each) and the offline ones (DPO, KTO, ORPO, SimPO), each scored by
 * the win-rate demo (reward model, KL to the SFT policy). Needs the pipeline's SFT policy and
 * reward model.
 */
function methods(): string {
  const online: Array<[string, string, number]> = [
    ['ppo-sentiment', 'PPO', 2400],
    ['grpo-sentiment', 'GRPO', 2400],
    ['rloo-sentiment', 'RLOO', 2400],
  ];
  const offline: Array<[string, string]> = [
    ['dpo-sentiment', 'DPO'],
    ['kto-sentiment', 'KTO (unpaired reviews)'],
    ['orpo-sentiment', 'ORPO'],
    ['simpo-sentiment', 'SimPO (CPO)'],
  ];
  const times = new Map<string, number>();
  for (const [name] of [...online, ...offline])
    times.set(name, run([BIN, 'train', `configs/${name}.yaml`, '--overwrite']).seconds);
  const policyOf = (name: string) =>
    online.some(([n]) => n === name) ? `runs/${name}/checkpoints/last/policy` : `runs/${name}`;
  const scored = [...online, ...offline].map(([name, what]) => {
    const out = winRate(policyOf(name), '2');
    const win = out.match(/over the baseline: ([\d.]+)%/)?.[1] ?? '?';
    const kl = out.match(/samples: ([-\d.]+) nats/)?.[1] ?? '?';
    const meanReward =
      out
        .split('\n')
        .filter((l) => l.startsWith('| runs/'))
        .at(-1)
        ?.split('|')[2]
        .trim() ?? '?';
    return { name, what, out, win, kl, meanReward };
  });
  const perK = (name: string) => {
    const o = online.find(([n]) => n === name);
    return o ? `${((1000 * times.get(name)!) / o[2]).toFixed(0)} s` : '—';
  };
  return [
    `## The alignment methods on the sentiment pipeline (${today})`,
    '',
    '```',
    '# after the pipeline above (the SFT policy and the reward model):',
    ...[...online, ...offline].map(([name]) => `npx anneal train configs/${name}.yaml`),
    'npx tsx tools/demos/preference-win-rate.ts --config configs/dpo-sentiment.yaml --policy <the run> \\',
    '  --baseline runs/sft-sentiment-reviews --reward runs/reward-sentiment-bert',
    '```',
    '',
    'Each policy completes the 139 held-out prompts of the DPO config once (temperature 1); the reward model',
    "scores them against the SFT policy's completions. KL: the policy's log-prob of its own completions minus",
    "the SFT policy's, per completion. PPO, GRPO and RLOO see 2,400 episodes each (GRPO and RLOO: the reward",
    'model plus a format reward of weight 0.5, scored here by the reward model alone).',
    '',
    '| method | config | wall time | per 1,000 episodes | mean reward | win rate over SFT | KL to SFT (nats) |',
    '|---|---|---:|---:|---:|---:|---:|',
    ...scored.map(
      (r) =>
        `| ${r.what} | \`${r.name}\` | ${times.get(r.name)!.toFixed(0)} s | ${perK(r.name)} | ${r.meanReward} | ${r.win}% | ${r.kl} |`,
    ),
    '',
    "The win-rate demo's output, with two samples each:",
    '',
    '```',
    ...scored.map((r) => r.out + '\n'),
    '```',
  ].join('\n');
}
SECTIONS.methods = methods;

/** The quickstart model exported to ONNX: the same greedy text from Anneal and from transformers.js. */
SECTIONS.export = () => {
  const exp = run([BIN, 'export', '--model', 'runs/quickstart', '--out', 'runs/quickstart-onnx', '--overwrite']);
  const prompts = ['Call me Ishmael.', 'The whale', 'It was the best of times'];
  const rows = prompts.map((prompt) => {
    const ours = run([BIN, 'generate', '--model', 'runs/quickstart', '--prompt', prompt, '--max-new-tokens', '40']);
    const tjs = run([
      '--import',
      'tsx',
      'tools/demos/transformers-js-generate.ts',
      '--dir',
      'runs/quickstart-onnx',
      '--prompt',
      prompt,
      '--max-new-tokens',
      '40',
    ]);
    return { prompt, ours: ours.out.trim(), tjs: tjs.out.trim() };
  });
  return [
    `## The quickstart model in transformers.js (${today})`,
    '',
    '```',
    'npx anneal export --model runs/quickstart --out runs/quickstart-onnx --overwrite',
    'npx anneal generate --model runs/quickstart --prompt "Call me Ishmael." --max-new-tokens 40',
    'npx tsx tools/demos/transformers-js-generate.ts --dir runs/quickstart-onnx --prompt "Call me Ishmael." --max-new-tokens 40',
    '```',
    '',
    exp.out.trim(),
    '',
    'Greedy decoding, 40 new tokens: Anneal (libtorch, `anneal generate`) and transformers.js',
    "(onnxruntime-node, `pipeline('text-generation')` on the exported folder, remote models off):",
    '',
    '| prompt | same text | Anneal | transformers.js |',
    '|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.prompt} | ${r.ours === r.tjs ? 'yes' : '**no**'} | ${r.ours.replace(/\n/g, ' ').replace(/\|/g, '\\|')} | ${r.tjs.replace(/\n/g, ' ').replace(/\|/g, '\\|')} |`,
    ),
    ...fillMask(),
    ...text2text(),
  ].join('\n');
};

/** The T5 seq2seq run (configs/seq2seq-sentiment.yaml) exported, answering in transformers.js' text2text-generation. */
function text2text(): string[] {
  if (!existsSync(`${ROOT}runs/seq2seq-sentiment`)) return [];
  const out = 'runs/seq2seq-sentiment-onnx';
  const exp = run([BIN, 'export', '--model', 'runs/seq2seq-sentiment', '--out', out, '--overwrite']);
  const reviews = [
    'A wonderful, moving film with great acting.',
    'The plot was boring and the acting was terrible.',
    'I laughed, I cried, I would see it again.',
  ];
  const rows = reviews.map((review) => {
    const prompt = `Is this movie review positive or negative?\n\n${review}\n\nAnswer:`;
    const common = ['--prompt', prompt, '--max-new-tokens', '5'];
    const ours = run([BIN, 'generate', '--model', 'runs/seq2seq-sentiment', ...common]).out.trim();
    const tjs = run([
      '--import',
      'tsx',
      'tools/demos/transformers-js-generate.ts',
      '--dir',
      out,
      ...common,
      '--task',
      'text2text-generation',
    ]).out.trim();
    return `| ${review} | ${ours} | ${tjs} | ${ours === tjs ? 'yes' : '**no**'} |`;
  });
  return [
    '',
    'The T5 of `configs/seq2seq-sentiment.yaml` (below) exported (encoder and decoder graphs), answering in',
    "transformers.js' `text2text-generation` pipeline and in `anneal generate` (prompts as in its data; the",
    'demo ends each with `</s>`, as the recipe ends its inputs). This small T5 answers the majority label',
    'whatever the review (its section below says so); the point here is that both runtimes agree:',
    '',
    '```',
    `npx anneal export --model runs/seq2seq-sentiment --out ${out} --overwrite`,
    `npx tsx tools/demos/transformers-js-generate.ts --dir ${out} --task text2text-generation --prompt "…" --max-new-tokens 5`,
    '```',
    '',
    exp.out.trim(),
    '',
    '| review | Anneal | transformers.js | same |',
    '|---|---|---|---|',
    ...rows,
  ];
}

/** The sentiment MLM run (the pipeline section's first config) exported, in transformers.js' fill-mask pipeline. */
function fillMask(): string[] {
  if (!existsSync(`${ROOT}runs/mlm-sentiment-bert`)) return [];
  const exp = run([
    BIN,
    'export',
    '--model',
    'runs/mlm-sentiment-bert',
    '--out',
    'runs/mlm-sentiment-bert-onnx',
    '--overwrite',
  ]);
  const texts = ['This movie was really [MASK].', 'The acting was [MASK] and the plot was boring.', 'A [MASK] film.'];
  const args = ['--run', 'runs/mlm-sentiment-bert/checkpoints/best', '--onnx', 'runs/mlm-sentiment-bert-onnx'];
  const table = run(['--import', 'tsx', 'tools/demos/fill-mask.ts', ...args, ...texts.flatMap((t) => ['--text', t])]);
  return [
    '',
    'The sentiment BERT of the pipeline below (`configs/mlm-sentiment-bert.yaml`, a masked LM) exported',
    "and filled in by transformers.js' `fill-mask` pipeline, beside Anneal's own top 5:",
    '',
    '```',
    'npx anneal export --model runs/mlm-sentiment-bert --out runs/mlm-sentiment-bert-onnx --overwrite',
    `npx tsx tools/demos/fill-mask.ts ${args.join(' ')} --text "${texts[0]}"`,
    '```',
    '',
    exp.out.trim(),
    '',
    table.out.trim(),
  ];
}

const asked = process.argv.slice(2).length ? process.argv.slice(2) : Object.keys(SECTIONS);
let doc = readFileSync(DOC, 'utf8');
for (const name of asked) {
  if (!SECTIONS[name]) throw new Error(`unknown section ${name}; sections: ${Object.keys(SECTIONS).join(', ')}`);
  console.error(`results: ${name} ...`);
  const block = `<!-- results:${name} -->\n${SECTIONS[name]()}\n<!-- /results:${name} -->`;
  const re = new RegExp(`<!-- results:${name} -->[\\s\\S]*?<!-- /results:${name} -->`);
  // A new section goes after the introduction, before the first section or block.
  // replacer functions: the block is inserted as it is (a sample with "$'" in it is not a pattern)
  doc = re.test(doc) ? doc.replace(re, () => block) : doc.replace(/\n(?=<!-- results:|## )/, () => `\n${block}\n\n`);
  writeFileSync(DOC, doc);
}
