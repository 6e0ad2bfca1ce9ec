// The SFT recipe on a tiny GPT-2 and the shipped sentiment data: the loss falls, a resumed
// run continues exactly, packing trains, and after chat tuning the model answers a held-out
// prompt in the chat format and stops at EOS.
import { copyFileSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { RunLogger, readSafetensors, useBackend, validateConfig } from '@anneal/core';
import { loadAdapter } from '@anneal/peft-lora';
import { loadQuantized, saveQuantized } from '@anneal/quantization';
import { silentReporter } from '@anneal/training';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, generate, loadPretrainedSync, type CausalLm } from '@anneal/modeling';
import { loadTokenizerSync, trainByteLevelBpe } from '@anneal/tokenizers';
import { SftConfigSchema, runSft, type SftConfig } from '../index.js';

const DATA = (f: string) => new URL(`../../../../datasets/sentiment/${f}`, import.meta.url).pathname;
const CHATML =
  '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}';

/** A tiny GPT-2 and a byte-level BPE trained on the reviews, saved as a model folder. */
async function baseModel(): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-sft-base-'));
  const texts = readFileSync(DATA('classification.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l).text as string);
  const tok = await trainByteLevelBpe(
    [
      texts.join('\n'),
      'This review is positive. This review is negative. product review: movie review: restaurant review:',
    ],
    {
      vocabSize: 400,
      specialTokens: ['<|endoftext|>', '<|im_start|>', '<|im_end|>'],
      eosToken: '<|im_end|>',
      padToken: '<|endoftext|>',
    },
  );
  tok.config.chatTemplate = CHATML;
  tok.save(dir);
  await useBackend('cpu', {});
  const model = Gpt2LMHeadModel.init(
    {
      ...GPT2_DEFAULTS,
      vocabSize: 400,
      nPositions: 128,
      nLayer: 2,
      nHead: 2,
      nEmbd: 48,
      residPdrop: 0,
      embdPdrop: 0,
      attnPdrop: 0,
    },
    3,
  );
  await model.savePretrained(dir);
  model.dispose();
  return dir;
}

function sftConfig(
  model: string,
  o: {
    data?: object;
    train?: object;
    packing?: 'none' | 'bfd';
    backend?: SftConfig['backend'];
    peft?: object;
    quantization?: object;
  } = {},
): SftConfig {
  return validateConfig(SftConfigSchema, {
    name: 'sft',
    recipe: 'sft',
    backend: o.backend ?? 'cpu',
    outputDir: mkdtempSync(join(tmpdir(), 'anneal-sft-runs-')),
    model: { pretrained: model },
    data: {
      train: DATA('sft-prompt-completion.jsonl'),
      format: 'prompt-completion',
      maxLength: 96,
      onBadRow: 'skip',
      evalFraction: 0.02,
      cacheDir: null,
      ...o.data,
    },
    packing: o.packing ?? 'none',
    ...(o.peft && { peft: o.peft }),
    ...(o.quantization && { quantization: o.quantization }),
    optim: { lr: 3e-3 },
    schedule: { kind: 'constant', warmupSteps: 2 },
    train: { batchSize: 4, maxSteps: 12, logEvery: 1, evalEvery: 6, evalBatches: 2, saveEvery: 6, ...o.train },
  });
}

describe('SFT recipe', () => {
  it('learns the completions (loss falls, eval metrics logged) and resumes exactly', async () => {
    const base = await baseModel();
    const losses = new Map<number, number>();
    const full = await runSft(sftConfig(base), 'sft.yaml', { onStep: (s, l) => losses.set(s, l) });
    const first = [1, 2, 3].map((s) => losses.get(s)!);
    const last = [10, 11, 12].map((s) => losses.get(s)!);
    expect(Math.max(...last)).toBeLessThan(Math.min(...first));
    const metrics = RunLogger.read(full.runDir);
    expect(metrics.some((m) => 'eval/mean_token_accuracy' in m && 'eval/entropy' in m)).toBe(true);
    // TRL's train-time token metrics: accuracy in [0, 1], entropy positive and falling as the model learns
    const train = metrics.filter((m) => 'train/mean_token_accuracy' in m);
    expect(train.length).toBeGreaterThan(1);
    for (const m of train) {
      expect(m['train/mean_token_accuracy']).toBeGreaterThanOrEqual(0);
      expect(m['train/mean_token_accuracy']).toBeLessThanOrEqual(1);
      expect(m['train/entropy']).toBeGreaterThan(0);
    }
    expect(train.at(-1)!['train/entropy']).toBeLessThan(train[0]['train/entropy']);
    expect(metrics.filter((m) => 'train/num_tokens' in m).at(-1)!['train/num_tokens']).toBeGreaterThan(0);

    let seen = 0;
    const cfg = sftConfig(base);
    const stopped = await runSft(cfg, 'sft.yaml', { onStep: () => seen++, shouldStop: () => seen >= 5 });
    const resumed = new Map<number, number>();
    await runSft(sftConfig(base), 'sft.yaml', { resume: stopped.runDir, onStep: (s, l) => resumed.set(s, l) });
    expect([...resumed.keys()]).toEqual([6, 7, 8, 9, 10, 11, 12]);
    for (const [s, l] of resumed)
      expect(Math.abs(l - losses.get(s)!), `step ${s}`).toBeLessThanOrEqual(1e-6 * Math.abs(losses.get(s)!));
  }, 120_000);

  it('with LoRA: the loss falls, checkpoints hold the adapter only (PEFT files), and a resumed run continues exactly', async () => {
    const base = await baseModel();
    const peft = { r: 8, loraAlpha: 16, targetModules: 'all-linear' };
    const losses = new Map<number, number>();
    const full = await runSft(
      sftConfig(base, { peft, train: { maxSteps: 8, evalEvery: 4, saveEvery: 4 } }),
      'sft.yaml',
      { onStep: (s, l) => losses.set(s, l) },
    );
    expect(Math.max(losses.get(7)!, losses.get(8)!)).toBeLessThan(Math.min(losses.get(1)!, losses.get(2)!));
    expect(existsSync(join(full.lastCheckpoint, 'adapter_config.json'))).toBe(true);
    expect(existsSync(join(full.lastCheckpoint, 'model.safetensors'))).toBe(false);
    const keys = [...readSafetensors(join(full.lastCheckpoint, 'adapter_model.safetensors')).tensors.keys()];
    expect(
      keys.every((k) =>
        /^base_model\.model\.transformer\.h\.\d+\.(attn|mlp)\.c_(attn|proj|fc)\.lora_[AB]\.weight$/.test(k),
      ),
    ).toBe(true);
    // The base stays as it was: the adapter disabled on the trained checkpoint gives the original model's logits.
    const lora = loadAdapter(loadPretrainedSync(base), full.lastCheckpoint);
    const ids = tf.tensor2d([[5, 6, 7, 8]], [1, 4], 'int32');
    const original = loadPretrainedSync(base) as unknown as CausalLm;
    expect(Array.from(lora.withAdapterDisabled(() => lora.forward({ inputIds: ids }).logits.dataSync()))).toEqual(
      Array.from(original.forward({ inputIds: ids }).logits.dataSync()),
    );

    let seen = 0;
    const stopped = await runSft(
      sftConfig(base, { peft, train: { maxSteps: 8, evalEvery: 4, saveEvery: 4 } }),
      'sft.yaml',
      { onStep: () => seen++, shouldStop: () => seen >= 3 },
    );
    const resumed = new Map<number, number>();
    await runSft(sftConfig(base, { peft, train: { maxSteps: 8, evalEvery: 4, saveEvery: 4 } }), 'sft.yaml', {
      resume: stopped.runDir,
      onStep: (s, l) => resumed.set(s, l),
    });
    expect([...resumed.keys()]).toEqual([4, 5, 6, 7, 8]);
    for (const [s, l] of resumed)
      expect(Math.abs(l - losses.get(s)!), `step ${s}`).toBeLessThanOrEqual(1e-6 * Math.abs(losses.get(s)!));
  }, 180_000);

  it('QLoRA: adapters train on an NF4 base (loss falls, adapter-only checkpoint, exact resume); quantization without peft is refused', async () => {
    const base = await baseModel();
    const losses: number[] = [];
    const qlora = () =>
      sftConfig(base, {
        peft: { r: 8, loraAlpha: 16, targetModules: 'all-linear' },
        quantization: { method: 'nf4' },
        train: { maxSteps: 8, evalEvery: 8, saveEvery: 4 },
      });
    const r = await runSft(qlora(), 'sft.yaml', { onStep: (_, l) => losses.push(l) });
    expect(Math.max(...losses.slice(-2))).toBeLessThan(Math.min(...losses.slice(0, 2)));
    expect(existsSync(join(r.lastCheckpoint, 'adapter_model.safetensors'))).toBe(true);
    // stopped after step 5 (a stop saves a checkpoint), resumed: the base is quantized again from model.pretrained
    let seen = 0;
    const stopped = await runSft(qlora(), 'sft.yaml', { onStep: () => seen++, shouldStop: () => seen >= 5 });
    const resumed = new Map<number, number>();
    await runSft(qlora(), 'sft.yaml', { resume: stopped.runDir, onStep: (s, l) => resumed.set(s, l) });
    expect([...resumed.keys()]).toEqual([6, 7, 8]);
    for (const [s, l] of resumed)
      expect(Math.abs(l - losses[s - 1]), `step ${s}`).toBeLessThanOrEqual(1e-6 * Math.abs(losses[s - 1]));
    await expect(
      runSft(sftConfig(base, { quantization: { method: 'nf4' }, train: { maxSteps: 2 } }), 'sft.yaml'),
    ).rejects.toThrow(/a quantized model cannot be fine-tuned in full/);
    const bf16 = await runSft(
      sftConfig(base, {
        peft: { r: 8, loraAlpha: 16, targetModules: 'all-linear' },
        quantization: { method: 'nf4', computeDtype: 'bfloat16' },
        train: { maxSteps: 2 },
      }),
      'sft.yaml',
    ).catch((e) => e);
    expect([bf16.field, bf16.hint]).toEqual([
      'quantization.computeDtype',
      'set autocast: bf16 (torch backend), or computeDtype: float32',
    ]);
    // From a checkpoint saved quantized (what `anneal quantize` writes), with no quantization
    // block: the same NF4 weights, so the same losses; without peft it is refused.
    const { model } = await loadQuantized(base, { method: 'nf4', blockSize: 64, doubleQuant: true });
    const stored = join(mkdtempSync(join(tmpdir(), 'anneal-sft-q-')), 'nf4');
    await saveQuantized(model, stored, (tmp) =>
      ['tokenizer.json', 'tokenizer_config.json'].forEach(
        (f) => existsSync(join(base, f)) && copyFileSync(join(base, f), join(tmp, f)),
      ),
    );
    model.dispose();
    const again: number[] = [];
    const info: string[] = [];
    await runSft(
      sftConfig(stored, {
        peft: { r: 8, loraAlpha: 16, targetModules: 'all-linear' },
        train: { maxSteps: 8, evalEvery: 8, saveEvery: 8 },
      }),
      'sft.yaml',
      { onStep: (_, l) => again.push(l), reporter: { ...silentReporter, info: (m) => info.push(m) } },
    );
    expect(again).toEqual(losses);
    expect(info.join('\n')).toMatch(/loaded \d+ projections in nf4: .* \(as the checkpoint stores them\)/);
    await expect(runSft(sftConfig(stored, { train: { maxSteps: 2 } }), 'sft.yaml')).rejects.toThrow(
      /a quantized model cannot be fine-tuned in full/,
    );
  }, 120_000);

  it('trains on best-fit packed rows', async () => {
    const base = await baseModel();
    const losses: number[] = [];
    await runSft(sftConfig(base, { packing: 'bfd', train: { maxSteps: 8 } }), 'sft.yaml', {
      onStep: (_, l) => losses.push(l),
    });
    expect(losses.every(Number.isFinite)).toBe(true);
    expect(losses[losses.length - 1]).toBeLessThan(losses[0]);
  }, 120_000);

  it('after chat tuning, answers a held-out prompt in the chat format and stops at EOS', async () => {
    const base = await baseModel();
    const backend = process.env.ANNEAL_BACKEND === 'cpu' ? 'cpu' : 'auto';
    const res = await runSft(
      sftConfig(base, {
        backend,
        data: { train: DATA('sft-chat.jsonl'), format: 'conversational', assistantOnlyLoss: true, maxLength: 96 },
        train: { batchSize: 8, maxSteps: 150, evalEvery: 150, saveEvery: 150 },
      }),
      'sft.yaml',
    );
    const model = loadPretrainedSync(res.lastCheckpoint) as unknown as CausalLm;
    const tok = loadTokenizerSync(res.lastCheckpoint);
    const prompt = tok.applyChatTemplate(
      [
        { role: 'system', content: 'You classify the sentiment of short reviews as positive or negative.' },
        { role: 'user', content: 'movie review: A wonderful, moving film that I will watch again.' },
      ],
      { addGenerationPrompt: true, tokenize: true },
    );
    const [out] = generate(model, [prompt], { maxNewTokens: 20, eosTokenId: tok.eosTokenId });
    const answer = tok.decode(out.slice(prompt.length));
    expect(answer).toMatch(/^This review is (positive|negative)\.<\|im_end\|>$/);
  }, 240_000);
});
