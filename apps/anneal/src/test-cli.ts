// Test support: the anneal command run as a user runs it (a separate process, the bin script),
// and the shape every bad-input error must have.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { expect } from 'vitest';
import { useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel } from '@anneal/modeling';
import { LoraConfigSchema, LoraModel } from '@anneal/peft-lora';
import { trainByteLevelBpe } from '@anneal/tokenizers';

export const BIN = fileURLToPath(new URL('../bin/anneal.js', import.meta.url));
const CORPUS = fileURLToPath(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `anneal …` in `cwd` and waits for it (blocking this process). */
export function anneal(args: string[], cwd: string, env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ANNEAL_BACKEND: '', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `anneal …` without blocking (a fake server in this process can answer it). */
export function annealAsync(args: string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ANNEAL_BACKEND: '', ...env } });
    let [stdout, stderr] = ['', ''];
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** One paragraph naming file/field, exit 2, no stack trace. */
export function expectCleanError(r: CliResult, ...parts: RegExp[]): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^error: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  for (const p of parts) expect(r.stderr).toMatch(p);
}

/**
 * A tiny GPT-2 base (with a BPE tokenizer trained on Moby-Dick) saved in dir/base, and a LoRA
 * adapter on c_attn and c_fc whose B matrices are drawn large enough to change the outputs,
 * saved in dir/adapter naming the base as its base_model_name_or_path (cpu backend).
 */
export async function tinyGpt2WithAdapter(dir: string) {
  const modelDir = join(dir, 'base');
  mkdirSync(modelDir, { recursive: true });
  const tok = await trainByteLevelBpe([readFileSync(CORPUS, 'utf8').slice(0, 30_000)], {
    vocabSize: 300,
    specialTokens: ['<|endoftext|>'],
    eosToken: '<|endoftext|>',
  });
  tok.save(modelDir);
  await useBackend('cpu');
  const model = Gpt2LMHeadModel.init(
    { ...GPT2_DEFAULTS, vocabSize: 300, nPositions: 64, nLayer: 1, nHead: 2, nEmbd: 16, initializerRange: 0.5 },
    2,
  );
  await model.savePretrained(modelDir);
  const adapterDir = join(dir, 'adapter');
  const lora = await saveTinyAdapter(model, modelDir, adapterDir);
  return { modelDir, adapterDir, tok, model, lora };
}

/** A LoRA adapter on `model` (r 2 on c_attn and c_fc, B non-zero so that it changes the output), saved to adapterDir with modelDir as its base. */
export async function saveTinyAdapter(
  model: Gpt2LMHeadModel,
  modelDir: string,
  adapterDir: string,
): Promise<LoraModel> {
  const lora = new LoraModel(
    model,
    LoraConfigSchema.parse({ r: 2, loraAlpha: 8, targetModules: ['c_attn', 'c_fc'], initLoraWeights: false }),
    3,
  );
  for (const [name, p] of lora.params)
    if (name.includes('lora_B')) p.assign(tf.randomNormal(p.shape, 0, 0.5, 'float32', 11)); // an adapter that matters
  lora.baseModelNameOrPath = modelDir;
  await lora.saveAdapter(adapterDir);
  return lora;
}
