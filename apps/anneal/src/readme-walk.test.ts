// The README from top to bottom, as a newcomer runs it: every command of its blocks, in
// order, in one fresh folder (configs/, datasets/, tools/ and node_modules/ linked in, runs/ its own), each
// exiting 0 — so a command that needs another's output before the README has made it, a
// renamed flag, or a config naming a checkpoint that a shorter run does not have fails here.
// Settings are tiny (a few steps, small models, short generations): what is walked is the
// order and the wiring, not the quality. Skipped: set-up and the test command, TensorBoard,
// placeholders (<dir>, path/to/…), Hub repo ids (no network in tests), multi-node launches.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { readConfig } from '@anneal/core';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = join(ROOT, 'apps/anneal/bin/anneal.js');

/** The README's shell lines in order: continuation lines joined, comments dropped. */
function readmeLines(): string[] {
  const md = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const out: string[] = [];
  for (const [, lang, body] of md.matchAll(/```([a-z]*)\n([\s\S]*?)```/g)) {
    if (lang !== 'bash') continue;
    for (const line of body.replace(/\\\n\s*/g, ' ').split('\n')) {
      const code = line.replace(/(^|\s)#.*$/, '').trim();
      if (code) out.push(code);
    }
  }
  return out;
}

const words = (line: string) => [...line.matchAll(/"[^"]*"|'[^']*'|\S+/g)].map((m) => m[0].replace(/^["']|["']$/g, ''));

/** Tiny settings for a training config, by recipe (appended --set flags win over the config's). */
function tinyTrain(config: string, cwd: string): string[] {
  const recipe = String(readConfig(join(cwd, config)).recipe ?? 'clm');
  const steps = [
    '--set',
    'train.maxSteps=2',
    '--set',
    'train.evalEvery=2',
    '--set',
    'train.saveEvery=2',
    '--set',
    'train.logEvery=1',
  ];
  if (recipe === 'ppo')
    return [
      '--set',
      'ppo.totalEpisodes=8',
      '--set',
      'ppo.batchSize=4',
      '--set',
      'ppo.responseLength=4',
      '--set',
      'train.evalEvery=2',
      '--set',
      'train.saveEvery=2',
    ];
  if (recipe === 'clm')
    return [
      ...steps,
      '--set',
      'tokenizer.train.vocabSize=300',
      '--set',
      'model.config.nLayer=1',
      '--set',
      'model.config.nEmbd=32',
      '--set',
      'model.config.nHead=2',
      '--set',
      'train.sample.maxNewTokens=2',
    ];
  if (recipe === 'mlm') return [...steps, '--set', 'tokenizer.train.vocabSize=300'];
  if (recipe === 'sft' || recipe === 'dpo' || recipe === 'orpo' || recipe === 'cpo')
    return [...steps, '--set', 'sample.maxNewTokens=2'];
  if (recipe === 'grpo' || recipe === 'rloo')
    return [...steps, '--set', `${recipe}.maxCompletionLength=4`, '--set', 'prompts.evalLimit=4'];
  if (recipe === 't5-span')
    return [
      ...steps,
      '--set',
      'tokenizer.train.vocabSize=300',
      ...['dModel=16', 'dKv=4', 'dFf=32', 'numLayers=1', 'numDecoderLayers=1', 'numHeads=2'].flatMap((x) => [
        '--set',
        `model.config.${x}`,
      ]),
    ];
  if (recipe === 'seq2seq') return [...steps, '--set', 'generationLimit=2', '--set', 'generationMaxLength=2'];
  return steps;
}

/** Does a config train a model named by a Hub repo id (org/name, not a folder here)? */
function hubModel(config: string, cwd: string): boolean {
  const pretrained = (readConfig(join(cwd, config)).model as { pretrained?: unknown } | undefined)?.pretrained;
  return typeof pretrained === 'string' && /^[\w.-]+\/[\w.-]+$/.test(pretrained) && !existsSync(join(cwd, pretrained));
}

/** The command a README line stands for, with tiny settings; undefined: not walked. */
function walked(line: string, cwd: string): { cmd: string; args: string[] } | undefined {
  if (/<[^>]+>|path\/to\/|openai-community\/|--nnodes/.test(line)) return undefined;
  const w = words(line.replace(/^bash tools\/setup\.sh && /, ''));
  if (w[0] === 'npm' && w[2] === 'quickstart')
    return {
      cmd: process.execPath,
      args: [BIN, 'train', 'configs/quickstart.yaml', '--overwrite', ...tinyTrain('configs/quickstart.yaml', cwd)],
    };
  if (w[0] === 'npx' && w[1] === 'tsx')
    return {
      cmd: process.execPath,
      args: [
        '--import',
        pathToFileURL(join(ROOT, 'node_modules/tsx/dist/loader.mjs')).href,
        join(ROOT, w[2]),
        ...w.slice(3),
        '--max-new-tokens',
        '2',
      ],
    };
  if (w[0] !== 'npx' || w[1] !== 'anneal') return undefined; // npm test, pip, tensorboard
  const args = w
    .slice(2)
    .map((a) => a.replace(/^train\.maxSteps=(\d+)$/, (_, n: string) => `train.maxSteps=${Number(n) >= 500 ? 4 : 3}`));
  const at = (flag: string) => args.indexOf(flag);
  if (at('--max-new-tokens') >= 0) args[at('--max-new-tokens') + 1] = '3';
  if (args[0] === 'train' && args[1] !== '--resume') {
    if (hubModel(args[1], cwd)) return undefined; // its model comes from the Hub
    args.push(...tinyTrain(args[1], cwd));
  }
  if (args[0] === 'launch') args.push(...tinyTrain(args[args.indexOf('--') + 2], cwd));
  if (args[0] === 'eval') args.push('--set', 'limit=2');
  return { cmd: process.execPath, args: [BIN, ...args] };
}

function run(cmd: string, args: string[], cwd: string): Promise<{ status: number | null; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd,
      env: { ...process.env, ANNEAL_BACKEND: '', HF_HUB_OFFLINE: '1' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (status) => resolve({ status, stderr }));
  });
}

describe('the README, top to bottom', () => {
  it('every command runs in the order shown, in a fresh folder', { timeout: 600_000 }, async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'anneal-readme-'));
    for (const d of ['configs', 'datasets', 'tools', 'node_modules']) symlinkSync(join(ROOT, d), join(cwd, d));
    const ran: string[] = [];
    for (const line of readmeLines()) {
      const c = walked(line, cwd);
      if (!c) continue;
      const r = await run(c.cmd, c.args, cwd); // async: a long synchronous spawn would stall vitest's worker
      expect(r.status, `${line}\n${r.stderr.slice(-2000)}`).toBe(0);
      ran.push(line);
    }
    // The walk covers the quickstart, its variants, tokenizers, models/data/eval and the preference pipeline.
    expect(ran.length).toBeGreaterThanOrEqual(15);
  });
});
