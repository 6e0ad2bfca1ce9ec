// Data parallelism end to end through the CLI: `anneal launch --nproc 2` trains a tiny GPT-2
// (and a tiny T5: span corruption, then seq2seq; and a tiny BERT with MLM) on loopback (c10d, Gloo) with the same
// losses as one process with the doubled batch, only
// rank 0 writes the run folder, resume refuses a different world size, and a killed worker
// stops the job with the failed rank named.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { collectivesAvailable } from '@anneal/backend-torch';
import { RunLogger, freeLocalPort } from '@anneal/core';
import { rankDevice } from './launch-command.js';

const BIN = fileURLToPath(new URL('../bin/anneal.js', import.meta.url));
const CORPUS = fileURLToPath(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url));
const SENTIMENT = fileURLToPath(new URL('../../../datasets/sentiment/sft-prompt-completion.jsonl', import.meta.url));
const REVIEWS = fileURLToPath(new URL('../../../datasets/sentiment/classification.jsonl', import.meta.url));
// In CI (CI=true) the collectives are required: set-up installs libgloo-dev, so a skip would hide a broken build.
const d = collectivesAvailable() || process.env.CI === 'true' ? describe : describe.skip;

function setup(batchSize: number, maxSteps = 6): { dir: string; file: string } {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-dp-'));
  writeFileSync(join(dir, 'corpus.txt'), readFileSync(CORPUS, 'utf8').slice(0, 30_000));
  const file = join(dir, 'dp.yaml');
  writeFileSync(
    file,
    `# data-parallel test run
name: dp
recipe: clm
backend: torch
outputDir: ${join(dir, 'runs')}
tokenizer: { train: { vocabSize: 300 } }
model: { arch: gpt2, config: { nLayer: 2, nHead: 2, nEmbd: 32, residPdrop: 0, embdPdrop: 0, attnPdrop: 0 } }
data: { train: ${join(dir, 'corpus.txt')}, blockSize: 16, valFraction: 0.1 }
optim: { lr: 3.0e-3 }
train: { batchSize: ${batchSize}, maxSteps: ${maxSteps}, logEvery: 1, evalEvery: 1000, evalBatches: 1, saveEvery: 3, sample: { every: 1000, prompts: [], maxNewTokens: 1 } }
`,
  );
  return { dir, file };
}

function anneal(
  args: string[],
  onSpawn?: (pid: number) => void,
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ANNEAL_NUM_THREADS: '1' } });
    onSpawn?.(p.pid!);
    let [out, err] = ['', ''];
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('close', (code) => res({ code, out, err }));
  });
}

const losses = (runDir: string) =>
  RunLogger.read(runDir)
    .filter((m) => 'train/loss' in m)
    .map((m) => m['train/loss']);

d('anneal launch (data parallel on c10d/Gloo)', () => {
  it('2 processes with batch 4 each equal 1 process with batch 8; only rank 0 writes; resume needs the same world size', async () => {
    const one = setup(8);
    const single = await anneal(['train', one.file]);
    expect(single.code, single.err).toBe(0);
    const two = setup(4);
    const port = String(await freeLocalPort());
    const dp = await anneal(['launch', '--nproc', '2', '--master-port', port, '--', 'train', two.file]);
    expect(dp.code, dp.err).toBe(0);
    expect(dp.out).toMatch(/data parallel: rank 0 of 2/);
    const [a, b] = [losses(join(one.dir, 'runs', 'dp')), losses(join(two.dir, 'runs', 'dp'))];
    expect(b.length).toBe(6);
    a.forEach((l, i) => expect(Math.abs(l - b[i]), `step ${i + 1}: ${l} vs ${b[i]}`).toBeLessThanOrEqual(1e-5 * l));
    expect(readdirSync(join(two.dir, 'runs', 'dp', 'checkpoints')).sort()).toEqual([
      'best',
      'last',
      'step-3',
      'step-6',
    ]);
    // one process cannot continue a two-process run
    const wrong = await anneal(['train', '--resume', join(two.dir, 'runs', 'dp'), '--set', 'train.maxSteps=8']);
    expect(wrong.code).toBe(2);
    expect(wrong.err).toMatch(/written by 2 process\(es\) and this run has 1/);
  }, 240_000);

  it('T5: span corruption, then seq2seq from its checkpoint, in 2 processes equal 1 process with the doubled batch', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-dp-t5-'));
    writeFileSync(join(dir, 'corpus.txt'), readFileSync(CORPUS, 'utf8').slice(0, 20_000));
    const t5 = (name: string, batchSize: number, runs: string) => {
      const file = join(dir, `${name}-${batchSize}.yaml`);
      writeFileSync(
        file,
        `# data-parallel T5 test run
name: ${name}
recipe: t5-span
seed: 5
backend: torch
outputDir: ${join(dir, runs)}
tokenizer: { train: { vocabSize: 300 } }
model: { config: { dModel: 32, dKv: 8, dFf: 64, numLayers: 1, numDecoderLayers: 1, numHeads: 4, dropoutRate: 0 } }
data: { train: { path: ${join(dir, 'corpus.txt')}, textUnit: paragraph }, format: text, maxLength: 32, onBadRow: truncate, evalFraction: 0.1, cacheDir: null }
optim: { lr: 3.0e-3 }
train: { batchSize: ${batchSize}, maxSteps: 4, logEvery: 1, evalEvery: 1000, evalBatches: 1, saveEvery: 4 }
`,
      );
      return file;
    };
    const s2s = (batchSize: number, pretrained: string, runs: string) => {
      const file = join(dir, `s2s-${batchSize}.yaml`);
      writeFileSync(
        file,
        `# data-parallel seq2seq test run
name: s2s
recipe: seq2seq
seed: 6
backend: torch
outputDir: ${join(dir, runs)}
model: { pretrained: ${pretrained} }
data: { train: ${SENTIMENT}, format: prompt-completion, maxLength: 512, onBadRow: skip, evalFraction: 0.05, cacheDir: null }
generationMaxLength: 3
generationLimit: 2
optim: { lr: 1.0e-3 }
train: { batchSize: ${batchSize}, maxSteps: 4, logEvery: 1, evalEvery: 1000, evalBatches: 1, saveEvery: 4 }
`,
      );
      return file;
    };
    const single = await anneal(['train', t5('span', 8, 'one')]);
    expect(single.code, single.err).toBe(0);
    const port = String(await freeLocalPort());
    const dp = await anneal(['launch', '--nproc', '2', '--master-port', port, '--', 'train', t5('span', 4, 'two')]);
    expect(dp.code, dp.err).toBe(0);
    const close = (a: number[], b: number[]) => {
      expect(b.length).toBe(4);
      a.forEach((l, i) => expect(Math.abs(l - b[i]), `step ${i + 1}: ${l} vs ${b[i]}`).toBeLessThanOrEqual(1e-5 * l));
    };
    close(losses(join(dir, 'one', 'span')), losses(join(dir, 'two', 'span')));
    // seq2seq from the (identical) span-corruption checkpoint of the single-process run
    const pretrained = join(dir, 'one', 'span');
    const s1 = await anneal(['train', s2s(8, pretrained, 'one')]);
    expect(s1.code, s1.err).toBe(0);
    const port2 = String(await freeLocalPort());
    const s2 = await anneal([
      'launch',
      '--nproc',
      '2',
      '--master-port',
      port2,
      '--',
      'train',
      s2s(4, pretrained, 'two'),
    ]);
    expect(s2.code, s2.err).toBe(0);
    close(losses(join(dir, 'one', 's2s')), losses(join(dir, 'two', 's2s')));
  }, 300_000);

  it('MLM (BERT) in 2 processes equals 1 process with the doubled batch: each row masked the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-dp-mlm-'));
    const mlm = (batchSize: number, runs: string) => {
      const file = join(dir, `mlm-${batchSize}.yaml`);
      writeFileSync(
        file,
        `# data-parallel MLM test run
name: mlm
recipe: mlm
seed: 3
backend: torch
outputDir: ${join(dir, runs)}
tokenizer: { train: { vocabSize: 300 } }
model: { config: { hiddenSize: 32, numHiddenLayers: 1, numAttentionHeads: 2, intermediateSize: 64, maxPositionEmbeddings: 64, hiddenDropoutProb: 0, attentionProbsDropoutProb: 0 } }
data: { train: ${REVIEWS}, format: text, maxLength: 32, onBadRow: truncate, evalFraction: 0.05, cacheDir: null }
optim: { lr: 3.0e-3 }
train: { batchSize: ${batchSize}, maxSteps: 4, logEvery: 1, evalEvery: 1000, evalBatches: 1, saveEvery: 4 }
`,
      );
      return file;
    };
    const single = await anneal(['train', mlm(8, 'one')]);
    expect(single.code, single.err).toBe(0);
    const port = String(await freeLocalPort());
    const dp = await anneal(['launch', '--nproc', '2', '--master-port', port, '--', 'train', mlm(4, 'two')]);
    expect(dp.code, dp.err).toBe(0);
    const [a, b] = [losses(join(dir, 'one', 'mlm')), losses(join(dir, 'two', 'mlm'))];
    expect(b.length).toBe(4);
    a.forEach((l, i) => expect(Math.abs(l - b[i]), `step ${i + 1}: ${l} vs ${b[i]}`).toBeLessThanOrEqual(1e-5 * l));
  }, 240_000);

  it('a killed worker stops the job, and the exit status names its rank', async () => {
    const job = setup(4, 100_000);
    const port = String(await freeLocalPort());
    let launcher = 0;
    const done = anneal(
      ['launch', '--nproc', '2', '--master-port', port, '--', 'train', job.file],
      (pid) => (launcher = pid),
    );
    // find rank 1 among the launcher's children and kill it once training runs (rank 0 has
    // logged a step); generous waiting: under a loaded CI machine start-up takes a while
    const rank1 = async (): Promise<number> => {
      for (let i = 0; i < 600; i++) {
        for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
          try {
            const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
            const env = readFileSync(`/proc/${pid}/environ`, 'utf8');
            if (
              Number(stat.split(') ')[1].split(' ')[1]) === launcher &&
              env.includes('\0RANK=1\0') &&
              existsSync(join(job.dir, 'runs', 'dp', 'metrics.jsonl'))
            )
              return Number(pid);
          } catch {
            // gone or not ours
          }
        }
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error('rank 1 not found');
    };
    process.kill(await rank1(), 'SIGKILL');
    const r = await done;
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/launch: rank 1 failed \(signal SIGKILL\); the other ranks were stopped/);
  }, 240_000);
});

describe('one GPU per local rank', () => {
  it('cuda:N becomes cuda:LOCAL_RANK when several processes run; cpu and single processes keep theirs', () => {
    expect(rankDevice('cuda:0', { WORLD_SIZE: '4', LOCAL_RANK: '3' })).toBe('cuda:3');
    expect(rankDevice('cuda:1', { WORLD_SIZE: '1', LOCAL_RANK: '0' })).toBe('cuda:1');
    expect(rankDevice('cuda:1', {})).toBe('cuda:1');
    expect(rankDevice('cpu', { WORLD_SIZE: '2', LOCAL_RANK: '1' })).toBe('cpu');
  });
});
