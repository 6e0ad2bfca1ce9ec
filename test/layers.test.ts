// The model object shows its layers: which are adapted (LoRA wraps the layer and keeps it as
// baseLayer, as PEFT's base_layer), which are quantized, and for each transformer block every
// variable its forward reads. Checked against gradients: a variable outside a block's list
// gets no gradient from that block's output.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend, valueAndGrads } from '@anneal/core';
import { Linear, layerChain, tinyGpt2, tinyLlama } from '@anneal/modeling';
import { quantize } from '@anneal/quantization';
import { LoraConfigSchema, LoraLinear, LoraModel } from '@anneal/peft-lora';

const gpt2 = () => tinyGpt2(3, { nEmbd: 16 });
const llama = () => tinyLlama(3);
const IDS = () =>
  tf.tensor2d(
    Int32Array.from({ length: 2 * 8 }, (_, i) => (i * 17 + 5) % 61),
    [2, 8],
    'int32',
  );

describe('visible layers', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('GPT-2 declares its tables and Conv1D projections once; LoRA wraps them in place and unload puts them back', () => {
    const base = gpt2();
    const types = [...base.layers.values()].map((l) => `${l.name}:${l.type}`);
    expect(types.slice(0, 3)).toEqual([
      'transformer.wte:Embedding',
      'transformer.wpe:Embedding',
      'transformer.h.0.attn.c_attn:Conv1D',
    ]);
    expect(base.layers.size).toBe(2 + 4 * 2);
    const plain = base.layers.get('transformer.h.1.attn.c_attn')!;
    const lora = new LoraModel(base, LoraConfigSchema.parse({ r: 2, targetModules: ['c_attn'] }));
    const wrapped = base.layers.get('transformer.h.1.attn.c_attn')!;
    expect(wrapped).toBeInstanceOf(LoraLinear);
    expect(wrapped.type).toBe('lora.Conv1D');
    expect(wrapped.baseLayer).toBe(plain);
    expect(base.layers.get('transformer.h.1.mlp.c_fc')!.type).toBe('Conv1D'); // not a target
    expect(lora.adapters.map((a) => a.name)).toEqual(['transformer.h.0.attn.c_attn', 'transformer.h.1.attn.c_attn']);
    // which variables train, as the variables say: the adapters, not the frozen base
    const vars = new Map(wrapped.variables());
    expect(vars.get('transformer.h.1.attn.c_attn.lora_A.weight')!.trainable).toBe(true);
    expect(vars.get('transformer.h.1.attn.c_attn.weight')!.trainable).toBe(false);
    expect([...base.params.values()].some((v) => v.trainable)).toBe(false);
    const merged = lora.mergeAndUnload();
    expect(merged.layers.get('transformer.h.1.attn.c_attn')).toBe(plain);
    expect([...merged.params.values()].every((v) => v.trainable)).toBe(true);
    merged.dispose();
  });

  it('quantize replaces each hidden projection with a Linear4bit (no float32 weight left in params); QLoRA wraps that', () => {
    const base = llama();
    const nBefore = base.numParameters;
    quantize(base, { method: 'nf4', blockSize: 64, doubleQuant: true });
    const q = base.layers.get('model.layers.0.self_attn.q_proj')!;
    expect(q.type).toBe('Linear4bit');
    expect(base.params.has('model.layers.0.self_attn.q_proj.weight')).toBe(false);
    expect(base.layers.get('model.embed_tokens')!.type).toBe('Embedding');
    expect(base.layers.get('lm_head')).toBeInstanceOf(Linear); // heads stay float32
    expect(base.numParameters).toBe(nBefore);
    const lora = new LoraModel(base, LoraConfigSchema.parse({ r: 2, targetModules: 'all-linear' }));
    const chain = layerChain(base.layers.get('model.layers.0.self_attn.q_proj')!).map((l) => l.type);
    expect(chain).toEqual(['lora.Linear4bit', 'Linear4bit']);
    expect(base.layers.get('lm_head')!.type).toBe('Linear'); // all-linear leaves the head out, as PEFT
    expect(() => lora.merge()).toThrow(/its base layer is Linear4bit, not float32/);
    lora.dispose();
  });

  for (const [arch, make, targets] of [
    ['GPT-2', gpt2, ['c_attn', 'c_fc']],
    ['Llama', llama, ['q_proj', 'down_proj']],
  ] as const) {
    it(`${arch}: each block lists exactly the variables that get gradients through it (base, norms and adapters)`, () => {
      const base = make();
      const lora = new LoraModel(
        base,
        LoraConfigSchema.parse({ r: 2, targetModules: [...targets], initLoraWeights: false }),
      );
      const blocks = base.blocks();
      expect(blocks.map((b) => b.name)).toEqual(base.blockNames);
      expect(blocks).toHaveLength(2);
      // Adapters are listed in their block.
      const names0 = [...blocks[0].variables.keys()];
      for (const t of targets) expect(names0.some((n) => n.endsWith(`${t}.lora_A.weight`))).toBe(true);
      expect(names0.some((n) => n.includes('.1.'))).toBe(false);

      // Every variable any block lists, trainable, so each gets a gradient.
      const all = new Map<string, tf.Variable>();
      for (const b of blocks) for (const [n, v] of b.variables) all.set(n, v);
      const frozen = [...all.values()].filter((v) => !v.trainable);
      frozen.forEach((v) => (v.trainable = true));
      // The loss of block 0's output reads each of block 0's variables and none of block 1's.
      const { value, grads } = valueAndGrads(all, () => {
        const h = lora.forward({ inputIds: IDS(), outputHiddenStates: true }).hiddenStates![1]; // after block 0
        return tf.sum(tf.square(h));
      });
      for (const [n] of blocks[0].variables) {
        const g = grads.get(n);
        expect(g, n).toBeDefined();
        expect(
          tf.tidy(() => tf.norm(g!).dataSync()[0]),
          n,
        ).toBeGreaterThan(0);
      }
      for (const [n] of blocks[1].variables) {
        const g = grads.get(n);
        if (g)
          expect(
            tf.tidy(() => tf.norm(g).dataSync()[0]),
            n,
          ).toBe(0);
      }
      tf.dispose([value, ...grads.values()]);
      frozen.forEach((v) => (v.trainable = false));
      lora.dispose();
    });
  }
});
