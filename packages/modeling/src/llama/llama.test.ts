// Llama details not covered by the fixture: rotary scaling (formulas checked by hand),
// Qwen2's q/k/v biases, hidden states and attentions, seeded dropout, and no tensor leaks.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  readSafetensors,
  serializeSafetensors,
  useBackend,
  valueAndGrads,
  writeFileDurable,
  type TensorToWrite,
} from '@anneal/core';
import {
  LLAMA_DEFAULTS,
  LlamaForCausalLM,
  causalLmLoss,
  loadPretrainedSync,
  ropeAttentionFactor,
  ropeInvFreq,
} from '../index.js';

const LLAMA = fileURLToPath(new URL('../../../../../shared/fixtures/hf/llama/', import.meta.url));
const ids = [[5, 17, 3, 99, 42, 7]];

describe('rotary embedding frequencies', () => {
  const base = { ...LLAMA_DEFAULTS, hiddenSize: 64, numAttentionHeads: 4 }; // head dim 16
  it('default: theta^(-2i/D)', () => {
    const f = ropeInvFreq({ ...base, ropeTheta: 10000 });
    expect(f.length).toBe(8);
    expect(f[0]).toBe(1);
    expect(f[1]).toBeCloseTo(Math.pow(10000, -2 / 16), 7);
    expect(f[7]).toBeCloseTo(Math.pow(10000, -14 / 16), 9);
  });
  it('longrope (Phi-3): short factors up to original_max_position_embeddings, long ones beyond; cos/sin scaled by sqrt(1 + ln s / ln original)', () => {
    const cfg = {
      ...base,
      modelType: 'phi3' as const,
      partialRotaryFactor: 0.5, // 8 rotary dims of 16: 4 frequencies
      maxPositionEmbeddings: 4096,
      originalMaxPositionEmbeddings: 1024,
      ropeScaling: { rope_type: 'longrope' as const, short_factor: [1, 1.5, 2, 4], long_factor: [2, 3, 8, 16] },
    };
    const plain = ropeInvFreq({ ...cfg, ropeScaling: null }); // theta^(-2i/8)
    expect(plain[1]).toBeCloseTo(Math.pow(10000, -2 / 8), 7);
    const short = ropeInvFreq(cfg, false, 1024);
    const long = ropeInvFreq(cfg, false, 1025);
    [1, 1.5, 2, 4].forEach((f, i) => expect(short[i]).toBeCloseTo(plain[i] / f, 7));
    [2, 3, 8, 16].forEach((f, i) => expect(long[i]).toBeCloseTo(plain[i] / f, 7));
    expect(ropeAttentionFactor(cfg)).toBeCloseTo(Math.sqrt(1 + Math.log(4) / Math.log(1024)), 12); // 1.0954...
    expect(ropeAttentionFactor({ ...cfg, ropeScaling: { ...cfg.ropeScaling, attention_factor: 1.25 } })).toBe(1.25);
    expect(ropeAttentionFactor({ ...cfg, maxPositionEmbeddings: 1024 })).toBe(1);
  });
  it('linear scaling divides every frequency by the factor', () => {
    const plain = ropeInvFreq(base);
    const scaled = ropeInvFreq({ ...base, ropeScaling: { rope_type: 'linear', factor: 4 } });
    scaled.forEach((v, i) => expect(v).toBeCloseTo(plain[i] / 4, 9));
  });
  it('llama3 scaling keeps short wavelengths, divides long ones, blends between', () => {
    const cfg = {
      ...base,
      ropeTheta: 500000,
      ropeScaling: {
        rope_type: 'llama3' as const,
        factor: 8,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
    };
    const plain = ropeInvFreq({ ...cfg, ropeScaling: null });
    const scaled = ropeInvFreq(cfg);
    const near = (got: number, want: number) => expect(Math.abs(got - want) / want).toBeLessThan(1e-6); // float32
    plain.forEach((f, i) => {
      const wave = (2 * Math.PI) / f;
      if (wave < 8192 / 4) near(scaled[i], f);
      else if (wave > 8192) near(scaled[i], f / 8);
      else {
        const s = (8192 / wave - 1) / (4 - 1);
        near(scaled[i], (1 - s) * (f / 8) + s * f);
      }
    });
    expect(
      new Set(
        Array.from(plain).map((f) => ((2 * Math.PI) / f < 2048 ? 'short' : (2 * Math.PI) / f > 8192 ? 'long' : 'mid')),
      ).size,
    ).toBe(3);
  });
});

describe('LlamaForCausalLM', () => {
  let model: LlamaForCausalLM;
  beforeAll(async () => {
    await useBackend('cpu');
    model = LlamaForCausalLM.fromPretrained(LLAMA);
  });
  const logits = (m: LlamaForCausalLM, extra = {}) =>
    tf.tidy(() => Array.from(m.forward({ inputIds: tf.tensor2d(ids, [1, 6], 'int32'), ...extra }).logits.dataSync()));

  it('as Qwen2 with zero q/k/v biases gives the same logits; a v bias acts as W_o b added after attention', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-qwen2-'));
    const cfg = JSON.parse(readFileSync(join(LLAMA, 'config.json'), 'utf8'));
    const { tensors } = readSafetensors(join(LLAMA, 'model.safetensors'));
    const write = (bias: (layer: number, which: string, n: number) => Float32Array) => {
      const w = new Map<string, TensorToWrite>(
        [...tensors].map(([n, t]) => [n, { dtype: 'F32', shape: t.shape, data: t.data as Float32Array }]),
      );
      for (let l = 0; l < cfg.num_hidden_layers; l++)
        for (const [which, n] of [
          ['q', 64],
          ['k', 32],
          ['v', 32],
        ] as const)
          w.set(`model.layers.${l}.self_attn.${which}_proj.bias`, {
            dtype: 'F32',
            shape: [n],
            data: bias(l, which, n),
          });
      writeFileDurable(join(dir, 'model.safetensors'), serializeSafetensors(w, { format: 'pt' }));
      writeFileDurable(
        join(dir, 'config.json'),
        JSON.stringify({ ...cfg, model_type: 'qwen2', architectures: ['Qwen2ForCausalLM'] }),
      );
      return loadPretrainedSync(dir) as LlamaForCausalLM;
    };
    const zero = write((_, __, n) => new Float32Array(n));
    expect(zero.config.modelType).toBe('qwen2');
    const a = logits(model);
    logits(zero).forEach((v, i) => expect(Math.abs(v - a[i])).toBeLessThan(1e-5));
    // v bias b (layer 0): softmax rows sum to 1, so each head's output gains b; o_proj maps it to W_o b.
    const b = Float32Array.from({ length: 32 }, (_, i) => Math.sin(i) * 0.3);
    const withV = write((l, which, n) => (l === 0 && which === 'v' ? b : new Float32Array(n)));
    const llamaBias = LlamaForCausalLM.init({ ...model.config, attentionBias: true }, 0);
    for (const [n, p] of model.params) llamaBias.params.get(n)!.assign(p);
    for (const [n, p] of llamaBias.params) if (n.endsWith('.bias')) p.assign(tf.zerosLike(p));
    // GQA: kv head j serves query heads 2j, 2j+1, so the per-query-head bias is b repeated per group.
    const perHead = tf.tensor1d(Array.from({ length: 64 }, (_, i) => b[Math.floor(i / 32) * 16 + (i % 16)]));
    llamaBias.params
      .get('model.layers.0.self_attn.o_proj.bias')!
      .assign(
        tf.squeeze(
          tf.matMul(model.params.get('model.layers.0.self_attn.o_proj.weight')!, tf.reshape(perHead, [64, 1])),
        ),
      );
    const want = logits(llamaBias);
    logits(withV).forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5));
  });

  it('returns hidden states and attention probabilities on request', () => {
    tf.tidy(() => {
      const out = model.forward({
        inputIds: tf.tensor2d(ids, [1, 6], 'int32'),
        outputHiddenStates: true,
        outputAttentions: true,
      });
      expect(out.hiddenStates!.length).toBe(3); // embeddings + 2 layers (the last after the final norm)
      expect(out.hiddenStates![0].shape).toEqual([1, 6, 64]);
      expect(out.attentions!.length).toBe(2);
      const att = out.attentions![0].arraySync() as number[][][][];
      expect(att[0].length).toBe(4); // heads
      for (const row of att[0][1]) expect(row.reduce((s, v) => s + v, 0)).toBeCloseTo(1, 5);
      expect(att[0][2][1][4]).toBe(0); // causal: position 1 never sees position 4
    });
  });

  it('applies dropout only in training mode, with masks fixed by the seed', () => {
    const m = LlamaForCausalLM.init({ ...model.config, attentionDropout: 0.3 }, 1);
    const evalOut = logits(m);
    m.train();
    const a = logits(m, { dropoutSeed: 4 });
    expect(logits(m, { dropoutSeed: 4 })).toEqual(a);
    expect(logits(m, { dropoutSeed: 5 })).not.toEqual(a);
    expect(a).not.toEqual(evalOut);
    m.eval();
    expect(logits(m)).toEqual(evalOut);
    m.dispose();
  });

  it('keeps the tensor count flat over 20 forward/backward steps', () => {
    const counts: number[] = [];
    for (let s = 0; s < 20; s++) {
      const { value, grads } = valueAndGrads(
        model.params,
        () =>
          causalLmLoss(model.forward({ inputIds: tf.tensor2d(ids, [1, 6], 'int32') }).logits as tf.Tensor3D, ids).loss,
      );
      tf.dispose([value, ...grads.values()]);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts.slice(1)).size).toBe(1);
  });
});
