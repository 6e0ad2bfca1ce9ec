// `anneal push` and `anneal card` as a user runs them, against a fake Hub served on
// 127.0.0.1 (HF_ENDPOINT): a trained run goes up in one commit with its card and, with --onnx,
// the ONNX export — without optimizer or trainer state; a LoRA adapter goes up merged, or alone
// with --adapter-only; a missing token, a bad repo id and a failed upload are named errors.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { serveFakeHub } from '@anneal/core/testing';
import { annealAsync as anneal, expectCleanError, tinyGpt2WithAdapter } from './test-cli.js';

const CORPUS = fileURLToPath(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url));

const cardMeta = (text: string) => parse(text.split(/^---$/m)[1]);

describe('anneal push / anneal card', () => {
  it('pushes a trained run in one commit: model, tokenizer, card and ONNX, no training state', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-push-'));
    writeFileSync(join(dir, 'corpus.txt'), readFileSync(CORPUS, 'utf8').slice(0, 20_000));
    writeFileSync(
      join(dir, 'tiny.yaml'),
      `# tiny run to push
name: tiny
recipe: clm
backend: cpu
outputDir: ${join(dir, 'runs')}
tokenizer: { train: { vocabSize: 300 } }
model: { arch: gpt2, config: { nLayer: 1, nHead: 2, nEmbd: 16 } }
data: { train: ${join(dir, 'corpus.txt')}, blockSize: 16, valFraction: 0.1 }
optim: { lr: 3.0e-3 }
train: { batchSize: 4, maxSteps: 6, logEvery: 2, evalEvery: 3, evalBatches: 1, saveEvery: 3, sample: { every: 100, prompts: [], maxNewTokens: 1 } }
`,
    );
    const trained = await anneal(['train', 'tiny.yaml'], dir);
    expect(trained.code, trained.stderr).toBe(0);
    const hub = await serveFakeHub();
    try {
      const env = { HF_ENDPOINT: hub.url, HF_TOKEN: 'hf_test' };
      const r = await anneal(
        ['push', '--run', 'runs/tiny', '--repo', 'anneal-test/tiny', '--onnx', '--private'],
        dir,
        env,
      );
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/created .*anneal-test\/tiny: one commit/);
      const repo = hub.repos.get('anneal-test/tiny')!;
      expect(repo.private).toBe(true);
      expect(repo.commits).toHaveLength(1);
      expect([...repo.files.keys()].sort()).toEqual([
        'README.md',
        'config.json',
        'generation_config.json',
        'model.safetensors',
        'onnx/model.onnx',
        'special_tokens_map.json',
        'tokenizer.json',
        'tokenizer_config.json',
      ]);
      const card = new TextDecoder().decode(repo.files.get('README.md'));
      expect(cardMeta(card)).toEqual({
        library_name: 'transformers',
        pipeline_tag: 'text-generation',
        tags: ['anneal', 'clm', 'onnx', 'transformers.js'],
        license: 'other',
      });
      expect(card).toMatch(/\| eval\/loss \| [\d.]+ \|/);
      expect(card).toMatch(/trained from scratch/);
      // --with-state adds the optimizer and trainer state
      const withState = await anneal(
        ['push', '--run', 'runs/tiny', '--repo', 'anneal-test/tiny', '--with-state'],
        dir,
        env,
      );
      expect(withState.code, withState.stderr).toBe(0);
      expect(withState.stdout).toMatch(/updated /);
      expect(repo.files.has('optimizer.safetensors') && repo.files.has('anneal_state.json')).toBe(true);
      expect(repo.commits).toHaveLength(2);

      // the card alone, written locally
      const local = await anneal(['card', '--run', 'runs/tiny', '--repo', 'me/tiny', '--out', 'README.md'], dir);
      expect(local.code, local.stderr).toBe(0);
      expect(cardMeta(readFileSync(join(dir, 'README.md'), 'utf8')).pipeline_tag).toBe('text-generation');

      // named errors: a bad repo id, no token, a failing upload (nothing committed)
      expectCleanError(
        await anneal(['push', '--run', 'runs/tiny', '--repo', 'tiny'], dir, env),
        /"tiny" is not a Hub repo id/,
      );
      const home = mkdtempSync(join(tmpdir(), 'anneal-hf-home-'));
      expectCleanError(
        await anneal(['push', '--run', 'runs/tiny', '--repo', 'anneal-test/x'], dir, {
          HF_ENDPOINT: hub.url,
          HF_TOKEN: '',
          HF_HOME: home,
        }),
        /no Hugging Face token/,
        /HF_TOKEN or run huggingface-cli login/,
      );
    } finally {
      await hub.close();
    }
    const failing = await serveFakeHub({ failUploads: true });
    try {
      const r = await anneal(['push', '--run', 'runs/tiny', '--repo', 'anneal-test/tiny'], dir, {
        HF_ENDPOINT: failing.url,
        HF_TOKEN: 'hf_test',
      });
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/push to anneal-test\/tiny failed: .*500/);
      expect(r.stderr).toMatch(/nothing was committed/);
      expect(failing.repos.get('anneal-test/tiny')!.commits).toEqual([]);
    } finally {
      await failing.close();
    }
  }, 120_000);

  it('pushes a LoRA adapter merged into its base, or alone with --adapter-only', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-push-lora-'));
    const { modelDir, adapterDir } = await tinyGpt2WithAdapter(dir);
    const hub = await serveFakeHub();
    try {
      const env = { HF_ENDPOINT: hub.url, HF_TOKEN: 'hf_test' };
      const merged = await anneal(['push', '--run', adapterDir, '--repo', 'me/merged'], dir, env);
      expect(merged.code, merged.stderr).toBe(0);
      expect([...hub.repos.get('me/merged')!.files.keys()].sort()).toEqual([
        'README.md',
        'config.json',
        'generation_config.json',
        'model.safetensors',
        'special_tokens_map.json',
        'tokenizer.json',
        'tokenizer_config.json',
      ]);
      const only = await anneal(['push', '--run', adapterDir, '--repo', 'me/adapter', '--adapter-only'], dir, env);
      expect(only.code, only.stderr).toBe(0);
      const files = hub.repos.get('me/adapter')!.files;
      expect([...files.keys()].sort()).toEqual(['README.md', 'adapter_config.json', 'adapter_model.safetensors']);
      expect(cardMeta(new TextDecoder().decode(files.get('README.md'))).library_name).toBe('peft');
      expectCleanError(
        await anneal(['push', '--run', modelDir, '--repo', 'me/x', '--adapter-only'], dir, env),
        /holds a full model, not a LoRA adapter/,
      );
    } finally {
      await hub.close();
    }
  }, 120_000);
});
