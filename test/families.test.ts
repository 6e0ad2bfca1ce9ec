// Today's families beyond their transformers fixtures (packages/modeling/src/causal-lm.test.ts
// holds those): sliding windows through the KV cache, left-padded batched generation, PEFT's
// LoRA on Qwen3 (peft 0.17.1's own files), LoRA on Phi-3's fused projections, classification
// heads named as transformers names them, and Gemma 3's multimodal config nesting its text model.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, readSafetensors, serializeSafetensors, useBackend, type TensorToWrite } from '@anneal/core';
import {
  LlamaForCausalLM,
  classifierFrom,
  generate,
  llamaConfigFromHf,
  loadPretrainedSync,
  maxLogitDiff,
  readHfFixture,
  type KvCache,
} from '@anneal/modeling';
import { LoraConfigSchema, LoraModel, loadAdapter } from '@anneal/peft-lora';

const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/hf/', import.meta.url));
const FAMILIES = ['qwen3', 'mistral', 'smollm3', 'phi3', 'gemma3'];
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) =>
  Array.from(a).reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const load = (name: string) => loadPretrainedSync(join(FIXTURES, name)) as LlamaForCausalLM;
const IDS = Array.from({ length: 16 }, (_, i) => (i * 37 + 11) % 1000);

describe("today's families", () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  for (const name of ['mistral', 'gemma3']) {
    it(`${name}: past the window (16 tokens, window 8) the cached path equals the full forward, and the window matters`, () => {
      const model = load(name);
      const full = tf.tidy(() => model.forward({ inputIds: tf.tensor2d([IDS], [1, 16], 'int32') }).logits.dataSync());
      // token by token through the KV cache
      let cache: KvCache | undefined;
      const stepwise: number[] = [];
      for (let t = 0; t < 16; t++) {
        const out = model.forward({
          inputIds: tf.tensor2d([[IDS[t]]], [1, 1], 'int32'),
          pastKeyValues: cache,
          useCache: true,
        });
        stepwise.push(...out.logits.dataSync());
        out.logits.dispose();
        if (cache) tf.dispose(cache.flatMap((l) => [l.key, l.value]));
        cache = out.pastKeyValues;
      }
      tf.dispose(cache!.flatMap((l) => [l.key, l.value]));
      expect(maxDiff(stepwise, full)).toBeLessThan(1e-4);
      const unwindowed = LlamaForCausalLM.init({ ...model.config, slidingWindow: 4096 }, 0); // a window past the sequence
      for (const [n, p] of model.params) unwindowed.params.get(n)!.assign(p);
      const noWindow = tf.tidy(() =>
        unwindowed.forward({ inputIds: tf.tensor2d([IDS], [1, 16], 'int32') }).logits.dataSync(),
      );
      const V = model.config.vocabSize;
      expect(maxDiff(noWindow.slice(0, 8 * V), full.slice(0, 8 * V))).toBeLessThan(1e-5); // inside the window: the same
      expect(maxDiff(noWindow, full)).toBeGreaterThan(1e-2); // beyond it: not
      unwindowed.dispose();
      model.dispose();
    });
  }

  for (const name of FAMILIES) {
    it(`${name}: left-padded batched greedy generation equals each prompt alone`, () => {
      const model = load(name);
      const prompts = [IDS.slice(0, 5), IDS.slice(3, 12)];
      const together = generate(model, prompts, { maxNewTokens: 6, padTokenId: 0 });
      const alone = prompts.map((p) => generate(model, [p], { maxNewTokens: 6 })[0]);
      expect(together).toEqual(alone);
      model.dispose();
    });
  }

  it("qwen3: PEFT 0.17.1's LoRA adapter gives peft's logits, adapted and merged (head_dim 24: lora_B of q_proj 96 x 4)", () => {
    const dir = join(FIXTURES, 'qwen3_lora');
    const lora = loadAdapter(load('qwen3'), dir);
    const f = readHfFixture(join(FIXTURES, 'qwen3'));
    const [B, T] = f.shape;
    const logitsOf = (file: string) => {
      const buf = readFileSync(join(dir, file));
      return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    };
    const run = () =>
      tf.tidy(() =>
        lora
          .forward({
            inputIds: tf.tensor2d(f.ids, [B, T], 'int32'),
            attentionMask: tf.tensor2d(f.mask, [B, T], 'int32'),
          })
          .logits.dataSync(),
      );
    expect(maxLogitDiff({ ...f, logits: logitsOf('logits_lora.bin') }, run())).toBeLessThan(1e-4);
    expect(maxLogitDiff({ ...f, logits: logitsOf('logits_lora.bin') }, lora.withAdapterDisabled(run))).toBeGreaterThan(
      0.1,
    );
    lora.merge();
    expect(maxLogitDiff({ ...f, logits: logitsOf('logits_merged.bin') }, run())).toBeLessThan(1e-4);
    for (const [name, t] of readSafetensors(join(dir, 'merged_qv_proj.safetensors')).tensors)
      expect(maxDiff(lora.base.params.get(name)!.dataSync(), t.data as Float32Array), name).toBeLessThan(1e-6);
    lora.dispose();
  });

  it('phi3: LoRA targets the fused qkv_proj and gate_up_proj by those names, as PEFT does; all-linear adapts them too', () => {
    const lora = new LoraModel(
      load('phi3'),
      LoraConfigSchema.parse({ r: 2, targetModules: ['qkv_proj', 'gate_up_proj'] }),
    );
    expect(lora.adapters.map((a) => a.name)).toEqual([
      'model.layers.0.self_attn.qkv_proj',
      'model.layers.0.mlp.gate_up_proj',
      'model.layers.1.self_attn.qkv_proj',
      'model.layers.1.mlp.gate_up_proj',
    ]);
    expect(lora.params.get('base_model.model.model.layers.0.self_attn.qkv_proj.lora_B.weight')!.shape).toEqual([
      128, 2,
    ]); // q 64 | k 32 | v 32
    tf.tidy(() => void lora.forward({ inputIds: tf.tensor2d([IDS], [1, 16], 'int32') })); // every adapter is applied
    lora.dispose();
    const all = new LoraModel(load('phi3'), LoraConfigSchema.parse({ r: 2, targetModules: 'all-linear' }));
    expect(all.adapters).toHaveLength(2 * 4); // qkv, o, gate_up, down per layer; lm_head left out
    all.dispose();
  });

  it('each family takes a sequence-classification head named as transformers names it, saved and loaded back exactly', async () => {
    const names: Record<string, string> = {
      qwen3: 'Qwen3ForSequenceClassification',
      mistral: 'MistralForSequenceClassification',
      smollm3: 'SmolLM3ForSequenceClassification',
      phi3: 'Phi3ForSequenceClassification',
      gemma3: 'Gemma3ForSequenceClassification',
    };
    for (const name of FAMILIES) {
      const clf = classifierFrom(load(name), ['neg', 'pos'], 0, 1);
      expect(clf.hfConfig().architectures, name).toEqual([names[name]]);
      const logits = tf.tidy(() => clf.forward({ inputIds: tf.tensor2d([IDS.slice(0, 6)], [1, 6], 'int32') }).logits);
      expect(logits.shape).toEqual([1, 2]);
      expect(Array.from(logits.dataSync()).every(Number.isFinite)).toBe(true);
      // saved as transformers' *ForSequenceClassification folder, it loads back to the same scores
      const out = mkdtempSync(join(tmpdir(), `anneal-${name}-cls-`));
      await clf.savePretrained(out);
      const back = loadPretrainedSync(out);
      const again = tf.tidy(() => back.forward({ inputIds: tf.tensor2d([IDS.slice(0, 6)], [1, 6], 'int32') }).logits);
      expect(Array.from(again.dataSync())).toEqual(Array.from(logits.dataSync()));
      tf.dispose([logits, again]);
      back.dispose();
      clf.dispose();
    }
  });

  it("gemma3: a multimodal checkpoint's text model loads from text_config and its language_model tensors", async () => {
    const src = join(FIXTURES, 'gemma3');
    const dir = mkdtempSync(join(tmpdir(), 'anneal-gemma3-mm-'));
    const text = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({
        architectures: ['Gemma3ForConditionalGeneration'],
        model_type: 'gemma3',
        text_config: text,
        vision_config: {},
      }),
    );
    const tensors = new Map<string, TensorToWrite>();
    for (const [name, t] of readSafetensors(join(src, 'model.safetensors')).tensors)
      tensors.set(name.replace(/^model\./, 'model.language_model.'), {
        dtype: 'F32',
        shape: t.shape,
        data: t.data as Float32Array,
      });
    tensors.set('model.vision_tower.vision_model.post_layernorm.weight', {
      dtype: 'F32',
      shape: [2],
      data: new Float32Array(2),
    });
    tensors.set('model.multi_modal_projector.mm_soft_emb_norm.weight', {
      dtype: 'F32',
      shape: [2],
      data: new Float32Array(2),
    });
    writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(tensors, { format: 'pt' }));
    const model = loadPretrainedSync(dir) as LlamaForCausalLM;
    const f = readHfFixture(src);
    const [B, T] = f.shape;
    const got = tf.tidy(() =>
      model
        .forward({ inputIds: tf.tensor2d(f.ids, [B, T], 'int32'), attentionMask: tf.tensor2d(f.mask, [B, T], 'int32') })
        .logits.dataSync(),
    );
    expect(maxLogitDiff(f, got)).toBeLessThan(1e-4);
    model.dispose();
  });

  it('settings a family has and Anneal does not support are named errors; a missing key is the class default', () => {
    const phi3 = JSON.parse(readFileSync(join(FIXTURES, 'phi3', 'config.json'), 'utf8'));
    const errorOf = (hf: Record<string, unknown>) => {
      try {
        llamaConfigFromHf(hf, 'config.json');
        return 'read';
      } catch (e) {
        return e instanceof ConfigError ? `${e.field}: ${e.message}` : `not a named error: ${String(e)}`;
      }
    };
    expect(errorOf({ ...phi3, rope_scaling: { type: 'yarn', factor: 4 } })).toMatch(
      /^rope_scaling: rope_scaling type "yarn" is not supported/,
    );
    expect(errorOf({ ...phi3, rope_scaling: { type: 'longrope', short_factor: [1], long_factor: [1] } })).toMatch(
      /^rope_scaling.short_factor: rope_scaling.short_factor has 1 entries, expected 4/,
    );
    expect(errorOf({ ...phi3, resid_pdrop: 0.1 })).toMatch(/^resid_pdrop: .*Phi-3 residual dropout is not supported/);
    const gemma = JSON.parse(readFileSync(join(FIXTURES, 'gemma3', 'config.json'), 'utf8'));
    expect('tie_word_embeddings' in gemma).toBe(false); // transformers 4.57 leaves the default out
    expect(llamaConfigFromHf(gemma).tieWordEmbeddings).toBe(true);
    const { tie_word_embeddings: _, ...smol } = JSON.parse(
      readFileSync(join(FIXTURES, 'smollm3', 'config.json'), 'utf8'),
    );
    expect(llamaConfigFromHf(smol).tieWordEmbeddings).toBe(true); // SmolLM3Config's default
    const { sliding_window: __, ...mistral } = JSON.parse(
      readFileSync(join(FIXTURES, 'mistral', 'config.json'), 'utf8'),
    );
    expect(llamaConfigFromHf(mistral).slidingWindow).toBe(4096); // MistralConfig's default
  });

  it("gemma3: final_logit_softcapping gives cap·tanh(logits/cap), attn_logit_softcapping caps the scores (both off equals the fixture's model)", () => {
    const model = load('gemma3');
    const ids = tf.tensor2d([IDS.slice(0, 10)], [1, 10], 'int32');
    const raw = tf.tidy(() => model.forward({ inputIds: ids }).logits.dataSync());
    const capped = LlamaForCausalLM.init({ ...model.config, finalLogitSoftcapping: 2 }, 0);
    for (const [n, p] of model.params) capped.params.get(n)!.assign(p);
    const got = tf.tidy(() => capped.forward({ inputIds: ids }).logits.dataSync());
    expect(
      maxDiff(
        got,
        Array.from(raw, (x) => 2 * Math.tanh(x / 2)),
      ),
    ).toBeLessThan(1e-5);
    expect(Math.max(...Array.from(got, Math.abs))).toBeLessThan(2);
    // a score cap far above every score changes nothing; a small one changes the output
    const attn = (cap: number) => {
      const m = LlamaForCausalLM.init({ ...model.config, attnLogitSoftcapping: cap }, 0);
      for (const [n, p] of model.params) m.params.get(n)!.assign(p);
      const out = tf.tidy(() => m.forward({ inputIds: ids }).logits.dataSync());
      m.dispose();
      return out;
    };
    expect(maxDiff(attn(1e6), raw)).toBeLessThan(1e-4);
    expect(maxDiff(attn(0.05), raw)).toBeGreaterThan(1e-3);
    tf.dispose(ids);
    capped.dispose();
    model.dispose();
  });

  it('phi3 with longrope: unit short factors and attention_factor 1 give the fixture model; beyond the original context the long factors apply', () => {
    const model = load('phi3');
    const ones = [1, 1, 1, 1];
    const withRope = (over: Partial<LlamaForCausalLM['config']>) => {
      const m = LlamaForCausalLM.init({ ...model.config, ...over }, 0);
      for (const [n, p] of model.params) m.params.get(n)!.assign(p);
      return m;
    };
    const logits = (m: LlamaForCausalLM, ids: number[]) =>
      tf.tidy(() => m.forward({ inputIds: tf.tensor2d([ids], [1, ids.length], 'int32') }).logits.dataSync());
    const short = withRope({
      originalMaxPositionEmbeddings: 8,
      ropeScaling: { rope_type: 'longrope', short_factor: ones, long_factor: [2, 4, 8, 16], attention_factor: 1 },
    });
    expect(maxDiff(logits(short, IDS.slice(0, 8)), logits(model, IDS.slice(0, 8)))).toBeLessThan(1e-6); // 8 <= 8: short
    expect(maxDiff(logits(short, IDS.slice(0, 9)), logits(model, IDS.slice(0, 9)))).toBeGreaterThan(1e-3); // 9 > 8: long
    short.dispose();
    model.dispose();
  });
});
