// LoRA against PEFT's own files and numbers (../shared/fixtures/hf/llama_lora, made by peft
// 0.10 on the llama fixture), and the properties PEFT promises: an untrained adapter changes
// nothing, merge and unmerge are inverses, save/load is exact, only adapters train.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AdamW,
  ConfigError,
  FormatError,
  pythonJsonTypes,
  readSafetensors,
  useBackend,
  valueAndGrads,
} from '@anneal/core';
import { LlamaForCausalLM, tinyGpt2 as tinyModel, causalLmLoss, maxLogitDiff, readHfFixture } from '@anneal/modeling';
import { LoraConfigSchema, LoraModel, PEFT_0_10_KEYS, fromPeftConfig, loadAdapter, peftTaskType } from './index.js';

const FIXTURES = fileURLToPath(new URL('../../../../shared/fixtures/hf/', import.meta.url));
const LORA = join(FIXTURES, 'llama_lora');

function fixtureLogits(file: string): Float32Array {
  const buf = readFileSync(join(LORA, file));
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

const tinyGpt2 = (seed = 3) => tinyModel(seed, { nEmbd: 16 });

const IDS = Int32Array.from({ length: 2 * 12 }, (_, i) => (i * 17 + 5) % 61);
const logitsOf = (m: { forward: LoraModel['forward'] }) =>
  tf.tidy(() => Float32Array.from(m.forward({ inputIds: tf.tensor2d(IDS, [2, 12], 'int32') }).logits.dataSync()));
const maxDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);

describe('LoRA', () => {
  beforeAll(async () => {
    await useBackend('cpu', {});
  });

  it("loads PEFT's adapter files and reproduces peft's logits, then merged logits and merged weights (1e-4)", () => {
    const f = readHfFixture(join(FIXTURES, 'llama'));
    const io = JSON.parse(readFileSync(join(LORA, 'io.json'), 'utf8'));
    const lora = loadAdapter(LlamaForCausalLM.fromPretrained(join(FIXTURES, 'llama')), LORA);
    expect(lora.scaling).toBe(io.lora_config.scaling);
    const { input_ids: ids, attention_mask: mask } = io.inputs as Record<string, number[][]>;
    const [B, T] = [ids.length, ids[0].length];
    const run = () =>
      tf.tidy(() =>
        lora
          .forward({ inputIds: tf.tensor2d(ids, [B, T], 'int32'), attentionMask: tf.tensor2d(mask, [B, T], 'int32') })
          .logits.dataSync(),
      );
    const ref = { ...f, mask };
    expect(maxLogitDiff({ ...ref, logits: fixtureLogits('logits_lora.bin') }, run())).toBeLessThan(1e-4);
    const base = lora.withAdapterDisabled(run);
    expect(maxLogitDiff({ ...ref, logits: fixtureLogits('logits_lora.bin') }, base)).toBeGreaterThan(0.1); // the adapter matters (peft: 0.52)
    lora.merge();
    expect(maxLogitDiff({ ...ref, logits: fixtureLogits('logits_merged.bin') }, run())).toBeLessThan(1e-4);
    const merged = readSafetensors(join(LORA, 'merged_qv_proj.safetensors')).tensors;
    for (const [name, t] of merged) {
      const got = lora.base.params.get(name)!.dataSync();
      expect(maxDiff(Float32Array.from(got), Float32Array.from(t.data as Float32Array)), name).toBeLessThan(1e-6);
    }
    lora.dispose();
  });

  it('an untrained adapter (B = 0) leaves the output bit-identical; disabling it gives the base model', () => {
    const base = tinyGpt2();
    const want = logitsOf(base);
    const lora = new LoraModel(
      base,
      LoraConfigSchema.parse({ r: 4, loraAlpha: 16, targetModules: ['c_attn', 'c_fc'] }),
      1,
    );
    expect(lora.params.size).toBe(2 * 2 * 2); // 2 layers x 2 modules x (A, B)
    expect(maxDiff(logitsOf(lora), want)).toBe(0);
    for (const [name, p] of lora.params)
      if (name.endsWith('lora_B.weight')) p.assign(tf.randomNormal(p.shape, 0, 0.2, 'float32', 9));
    expect(maxDiff(logitsOf(lora), want)).toBeGreaterThan(1e-3);
    expect(
      maxDiff(
        lora.withAdapterDisabled(() => logitsOf(lora)),
        want,
      ),
    ).toBe(0);
    lora.dispose();
  });

  it('merge and unmerge are inverses (1e-6), merged equals unmerged forward (1e-5), for Conv1D and Linear layouts', () => {
    for (const [make, targets] of [
      [() => tinyGpt2(), 'all-linear'],
      [() => LlamaForCausalLM.fromPretrained(join(FIXTURES, 'llama')), ['q_proj', 'k_proj', 'down_proj']],
    ] as const) {
      const base = make();
      const lora = new LoraModel(
        base,
        LoraConfigSchema.parse({ r: 3, loraAlpha: 6, targetModules: targets, initLoraWeights: false }),
        2,
      );
      const before = new Map([...base.params].map(([n, p]) => [n, Float32Array.from(p.dataSync())]));
      const unmerged = logitsOf(lora);
      lora.merge();
      expect(maxDiff(logitsOf(lora), unmerged)).toBeLessThan(1e-5);
      const changed = [...base.params].filter(
        ([n, p]) => maxDiff(Float32Array.from(p.dataSync()), before.get(n)!) > 0,
      ).length;
      expect(changed).toBeGreaterThan(0);
      lora.unmerge();
      for (const [n, p] of base.params)
        expect(maxDiff(Float32Array.from(p.dataSync()), before.get(n)!), n).toBeLessThanOrEqual(1e-6);
      lora.dispose();
    }
  });

  it('trains only the adapters: the loss falls and every base parameter stays bit-identical', () => {
    const base = tinyGpt2();
    const before = new Map([...base.params].map(([n, p]) => [n, Float32Array.from(p.dataSync())]));
    const lora = new LoraModel(
      base,
      LoraConfigSchema.parse({ r: 4, loraAlpha: 8, loraDropout: 0.1, targetModules: 'all-linear' }),
      4,
    );
    const opt = new AdamW(lora.params, { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 });
    const losses: number[] = [];
    for (let step = 0; step < 30; step++) {
      const { value, grads } = valueAndGrads(
        lora.params,
        () =>
          causalLmLoss(
            lora.forward({ inputIds: tf.tensor2d(IDS, [2, 12], 'int32'), training: true, dropoutSeed: step })
              .logits as tf.Tensor3D,
            IDS,
          ).loss,
      );
      losses.push(value.dataSync()[0]);
      opt.apply(grads, 1e-2);
      tf.dispose([value, ...grads.values()]);
    }
    expect(losses.at(-1)!).toBeLessThan(losses[0] - 0.15); // 4.09 -> ~3.86 (the frozen tied embedding limits a 16-wide model)
    for (const [n, p] of base.params) expect(maxDiff(Float32Array.from(p.dataSync()), before.get(n)!), n).toBe(0);
    opt.dispose();
    lora.dispose();
  });

  it('saves PEFT files and loads them back bit-exactly', async () => {
    const lora = new LoraModel(
      tinyGpt2(),
      LoraConfigSchema.parse({
        r: 2,
        loraAlpha: 4,
        targetModules: ['c_attn'],
        bias: 'lora_only',
        modulesToSave: ['ln_f'],
        initLoraWeights: false,
      }),
      5,
    );
    const dir = mkdtempSync(join(tmpdir(), 'anneal-lora-'));
    await lora.saveAdapter(dir, { baseModel: 'openai-community/gpt2', taskType: 'CAUSAL_LM' });
    const cfg = JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8'));
    expect(cfg).toMatchObject({
      peft_type: 'LORA',
      r: 2,
      lora_alpha: 4,
      target_modules: ['c_attn'],
      fan_in_fan_out: true,
      bias: 'lora_only',
      modules_to_save: ['ln_f'],
      task_type: 'CAUSAL_LM',
    });
    const keys = [...readSafetensors(join(dir, 'adapter_model.safetensors')).tensors.keys()].sort();
    expect(keys).toContain('base_model.model.transformer.h.0.attn.c_attn.lora_A.weight');
    expect(keys).toContain('base_model.model.transformer.h.1.attn.c_attn.bias');
    expect(keys).toContain('base_model.model.transformer.ln_f.weight');
    const back = loadAdapter(tinyGpt2(), dir);
    for (const [n, p] of lora.params)
      expect(Array.from(back.params.get(n)!.dataSync()), n).toEqual(Array.from(p.dataSync()));
    expect(maxDiff(logitsOf(back), logitsOf(lora))).toBe(0);
    back.dispose();
    lora.dispose();
  });

  it('writes adapter_config.json that peft 0.10 loads: only its keys, its types, task_type and base model filled; creates the folder', async () => {
    const peft010 = readFileSync(join(LORA, 'adapter_config.json'), 'utf8'); // written by peft 0.10.0's save_pretrained
    const refTypes = pythonJsonTypes(peft010);
    const lora = new LoraModel(
      tinyGpt2(),
      LoraConfigSchema.parse({ r: 2, loraAlpha: 4, targetModules: ['c_attn'] }),
      5,
    );
    lora.baseModelNameOrPath = 'models/gpt2-tiny';
    const dir = join(mkdtempSync(join(tmpdir(), 'anneal-lora-')), 'a', 'b'); // parents do not exist yet
    await lora.saveAdapter(dir);
    const text = readFileSync(join(dir, 'adapter_config.json'), 'utf8');
    const cfg = JSON.parse(text);
    // PEFT builds LoraConfig(**json): a key peft 0.10 does not know (exclude_modules: null) is a TypeError there.
    expect(Object.keys(cfg).filter((k) => !(PEFT_0_10_KEYS as readonly string[]).includes(k))).toEqual([]);
    expect(Object.keys(JSON.parse(peft010)).sort()).toEqual([...PEFT_0_10_KEYS].sort());
    expect(cfg).toMatchObject({ task_type: 'CAUSAL_LM', base_model_name_or_path: 'models/gpt2-tiny' });
    const types = pythonJsonTypes(text);
    for (const k of Object.keys(cfg))
      if (refTypes[k] !== 'null' && cfg[k] !== null) expect(types[k], k).toBe(refTypes[k]); // lora_dropout 0.0, not 0
    lora.dispose();
    const withExclude = new LoraModel(
      tinyGpt2(),
      LoraConfigSchema.parse({ targetModules: ['c_attn', 'c_fc'], excludeModules: ['h.0.mlp.c_fc'] }),
      5,
    );
    await withExclude.saveAdapter(dir);
    expect(JSON.parse(readFileSync(join(dir, 'adapter_config.json'), 'utf8')).exclude_modules).toEqual([
      'h.0.mlp.c_fc',
    ]); // set: written (peft >= 0.14)
    withExclude.dispose();
    expect([
      peftTaskType('GPT2LMHeadModel'),
      peftTaskType('LlamaForCausalLM'),
      peftTaskType('BertForSequenceClassification'),
      peftTaskType('BertForMaskedLM'),
    ]).toEqual(['CAUSAL_LM', 'CAUSAL_LM', 'SEQ_CLS', null]);
  });

  it("embedding tables take PEFT's embedding adapter: a no-op at init, lora_embedding_A/B keys, merge/unmerge inverses; a tied table refuses to merge", async () => {
    const base = tinyGpt2();
    const want = logitsOf(base);
    const lora = new LoraModel(
      base,
      LoraConfigSchema.parse({ r: 4, loraAlpha: 8, targetModules: ['wpe', 'c_attn'] }),
      6,
    );
    expect([...lora.params.keys()].filter((k) => k.includes('wpe'))).toEqual([
      'base_model.model.transformer.wpe.lora_embedding_A',
      'base_model.model.transformer.wpe.lora_embedding_B',
    ]);
    expect(lora.params.get('base_model.model.transformer.wpe.lora_embedding_A')!.shape).toEqual([4, 32]);
    expect(lora.params.get('base_model.model.transformer.wpe.lora_embedding_B')!.shape).toEqual([16, 4]);
    expect(maxDiff(logitsOf(lora), want)).toBe(0); // A = 0 (embedding) and B = 0 (linear) at init
    const a = lora.params.get('base_model.model.transformer.wpe.lora_embedding_A')!;
    a.assign(tf.randomNormal(a.shape, 0, 0.5, 'float32', 8));
    const adapted = logitsOf(lora);
    expect(maxDiff(adapted, want)).toBeGreaterThan(1e-3);
    const table = Float32Array.from(base.params.get('transformer.wpe.weight')!.dataSync());
    lora.merge();
    expect(maxDiff(logitsOf(lora), adapted)).toBeLessThan(1e-5);
    lora.unmerge();
    expect(
      maxDiff(Float32Array.from(base.params.get('transformer.wpe.weight')!.dataSync()), table),
    ).toBeLessThanOrEqual(1e-6);
    const tied = new LoraModel(tinyGpt2(), LoraConfigSchema.parse({ r: 2, targetModules: ['wte'] }));
    expect(() => tied.merge()).toThrow(
      /cannot merge the adapter on transformer.wte: the table is tied to the output head/,
    );
    tied.dispose();
    const dir = mkdtempSync(join(tmpdir(), 'anneal-lora-'));
    await lora.saveAdapter(dir);
    const back = loadAdapter(tinyGpt2(), dir);
    expect(maxDiff(logitsOf(back), adapted)).toBe(0);
    back.dispose();
    lora.dispose();
  });

  it('names the field of a bad config or adapter file', () => {
    const base = tinyGpt2();
    expect(() => new LoraModel(base, LoraConfigSchema.parse({ targetModules: ['q_proj'] }))).toThrow(ConfigError);
    expect(() => new LoraModel(base, LoraConfigSchema.parse({ targetModules: ['q_proj'] }))).toThrow(
      /targetModules \["q_proj"\] matches none of the model's linear layers/,
    );
    expect(
      () => new LoraModel(base, LoraConfigSchema.parse({ targetModules: ['c_attn'], fanInFanOut: false })),
    ).toThrow(/fanInFanOut false does not match transformer.h.0.attn.c_attn/);
    const peft = JSON.parse(readFileSync(join(LORA, 'adapter_config.json'), 'utf8'));
    expect(() => fromPeftConfig({ ...peft, use_dora: true }, 'adapter_config.json')).toThrow(FormatError);
    expect(() => fromPeftConfig({ ...peft, r: 0 }, 'adapter_config.json')).toThrow(/r/);
    const dir = mkdtempSync(join(tmpdir(), 'anneal-lora-'));
    writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(peft));
    expect(() => loadAdapter(base, dir)).toThrow(/adapter_model.safetensors is missing/);
    base.dispose();
  });
});
