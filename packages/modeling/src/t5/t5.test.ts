// T5ForConditionalGeneration against transformers 4.57.6 (../shared/fixtures/hf/t5: a tied,
// relu T5 with 2 + 2 layers): logits at every position, the loss over the non −100 labels,
// the encoder's output, every parameter's gradient norm and greedy generation; the relative
// position buckets by hand; save → load round trip; a gated-gelu, untied (T5 v1.1) layout. On the
// cpu and wasm backends here; on torch in test/torch-backend.test.ts (this package cannot load it).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, useBackend, valueAndGrads } from '@anneal/core';
import {
  T5EncoderModel,
  T5ForConditionalGeneration,
  T5_DEFAULTS,
  crossEntropySum,
  loadPretrained,
  readHfFixture,
  relativePositionBucket,
  seq2seqGenerate,
} from '../index.js';

const DIR = fileURLToPath(new URL('../../../../../shared/fixtures/hf/t5', import.meta.url));
const f = readHfFixture(DIR);
const labels = f.io.inputs.labels as number[][];

describe.each(['cpu', 'wasm'] as const)('T5 (%s backend)', (backend) => {
  let model: T5ForConditionalGeneration;
  beforeAll(async () => {
    await useBackend(backend);
    model = (await loadPretrained(DIR)) as T5ForConditionalGeneration;
  });

  const args = () => ({
    inputIds: tf.tensor2d(f.ids, undefined, 'int32'),
    attentionMask: tf.tensor2d(f.mask, undefined, 'int32'),
    decoderInputIds: tf.tensor2d(model.shiftRight(labels), undefined, 'int32'),
  });
  const lossOf = (logits: tf.Tensor) => {
    const [B, T, V] = logits.shape as number[];
    const { sum, count } = crossEntropySum(
      tf.reshape(logits, [B * T, V]) as tf.Tensor2D,
      Int32Array.from(labels.flat()),
    );
    return tf.div(sum, count) as tf.Scalar;
  };

  it('shifts labels right as transformers does', () => {
    expect(model.shiftRight(labels)).toEqual(f.io.inputs.decoder_input_ids_derived);
  });

  it('matches the logits (every position), the encoder output and the loss', () => {
    tf.tidy(() => {
      const out = model.forward(args());
      const got = out.logits.dataSync();
      let max = 0;
      for (let i = 0; i < got.length; i++) max = Math.max(max, Math.abs(got[i] - f.logits[i]));
      expect(max).toBeLessThan(1e-4);
      const enc = out.encoderLastHiddenState.dataSync();
      expect(
        Math.abs(tf.sum(out.encoderLastHiddenState).dataSync()[0] - f.io.encoder_last_hidden_state_sum),
      ).toBeLessThan(1e-3);
      (f.io.encoder_last_hidden_state_first8 as number[]).forEach((v, i) => expect(enc[i]).toBeCloseTo(v, 4));
      const loss = lossOf(out.logits).dataSync()[0];
      expect(Math.abs(loss - f.io.loss) / f.io.loss).toBeLessThan(1e-5);
    });
  });

  it('has the gradient norms transformers has, for every parameter', () => {
    const { value, grads } = valueAndGrads(model.params, () => lossOf(model.forward(args()).logits));
    value.dispose();
    const want = f.io.grad_norms as Record<string, number>;
    expect([...grads.keys()].sort()).toEqual(Object.keys(want).sort());
    for (const [name, g] of grads) {
      const norm = tf.tidy(() => tf.norm(g).dataSync()[0]);
      expect(Math.abs(norm - want[name]) / Math.max(want[name], 1e-6), name).toBeLessThan(1e-3);
    }
    tf.dispose([...grads.values()]);
  });

  it('gives every parameter the same gradient under activation checkpointing (the position table and the encoder included)', () => {
    const grads = (checkpointing: boolean) => {
      model.gradientCheckpointing = checkpointing;
      const { value, grads: g } = valueAndGrads(model.params, () =>
        lossOf(model.forward({ ...args(), training: true }).logits),
      );
      value.dispose();
      const out = new Map([...g].map(([k, t]) => [k, Array.from(t.dataSync())]));
      tf.dispose([...g.values()]);
      return out;
    };
    const plain = grads(false);
    const recomputed = grads(true);
    model.gradientCheckpointing = false;
    expect([...recomputed.keys()].sort()).toEqual([...plain.keys()].sort());
    for (const [name, g] of plain) {
      const r = recomputed.get(name)!;
      const scale = Math.max(...g.map(Math.abs), 1e-12);
      expect(Math.max(...g.map((v, i) => Math.abs(v - r[i]))) / scale, name).toBeLessThan(1e-5);
    }
  });

  it('generates greedily as transformers does, with and without the cache', () => {
    const g = f.io.generate.greedy as {
      prompt_ids: number[];
      output_ids: number[][];
      kwargs: { max_new_tokens: number };
    };
    for (const useCache of [true, false])
      expect(seq2seqGenerate(model, [g.prompt_ids], { maxNewTokens: g.kwargs.max_new_tokens, useCache })).toEqual(
        g.output_ids,
      );
  });
});

describe('T5EncoderModel', () => {
  it("loads the encoder of a whole T5 checkpoint: transformers' encoder output; saves and loads as itself", async () => {
    await useBackend('cpu');
    const whole = (await loadPretrained(DIR)) as T5ForConditionalGeneration;
    const encoder = T5EncoderModel.fromPretrained(DIR);
    const a = () => ({
      inputIds: tf.tensor2d(f.ids, undefined, 'int32'),
      attentionMask: tf.tensor2d(f.mask, undefined, 'int32'),
    });
    const out = (m: T5EncoderModel) => tf.tidy(() => Array.from(m.forward(a()).lastHiddenState.dataSync()));
    const got = out(encoder);
    expect(got).toEqual(tf.tidy(() => Array.from(whole.encode(a()).dataSync())));
    expect(Math.abs(got.reduce((s, x) => s + x, 0) - f.io.encoder_last_hidden_state_sum)).toBeLessThan(1e-3);
    expect([...encoder.params.keys()].some((k) => /^(decoder|lm_head)/.test(k))).toBe(false);
    expect(encoder.blockNames).toEqual(['encoder.block.0', 'encoder.block.1']);
    const dir = join(mkdtempSync(join(tmpdir(), 'anneal-t5enc-')), 'm');
    await encoder.savePretrained(dir);
    // transformers' T5EncoderModel layout: shared.weight and encoder.*, architectures T5EncoderModel
    const saved = [...readSafetensors(join(dir, 'model.safetensors')).tensors.keys()];
    expect(saved.every((k) => k === 'shared.weight' || k.startsWith('encoder.'))).toBe(true);
    const back = await loadPretrained(dir);
    expect(back).toBeInstanceOf(T5EncoderModel);
    expect(back.hfConfig().architectures).toEqual(['T5EncoderModel']);
    expect(out(back as T5EncoderModel)).toEqual(got);
    for (const m of [whole, encoder, back]) m.dispose();
  });
});

describe('T5 pieces', () => {
  it('buckets relative positions as transformers does (exact below half, logarithmic up to maxDistance)', () => {
    // bidirectional, 32 buckets, max 128: 16 per direction, exact below 8
    expect([0, -1, -7, 1, 7].map((n) => relativePositionBucket(n, true, 32, 128))).toEqual([0, 1, 7, 17, 23]);
    // logarithmic: 8 + floor(ln(n/8) / ln(16) * 8)
    for (const n of [8, 9, 15, 16, 40, 127])
      expect(relativePositionBucket(-n, true, 32, 128)).toBe(
        Math.min(15, 8 + Math.floor((Math.log(n / 8) / Math.log(16)) * 8)),
      );
    expect(relativePositionBucket(-1000, true, 32, 128)).toBe(15);
    // causal: keys after the query share bucket 0; 32 buckets, exact below 16
    expect([3, 0, -5, -15, -16, -1000].map((n) => relativePositionBucket(n, false, 32, 128))).toEqual([
      0, 0, 5, 15, 16, 31,
    ]);
  });

  it('saves in transformers layout and loads back; a gated-gelu, untied (T5 v1.1) model round-trips too', async () => {
    await useBackend('cpu');
    const small = {
      ...T5_DEFAULTS,
      vocabSize: 50,
      dModel: 16,
      dKv: 4,
      dFf: 24,
      numLayers: 2,
      numDecoderLayers: 1,
      numHeads: 2,
    };
    for (const over of [{}, { feedForwardProj: 'gated-gelu' as const, tieWordEmbeddings: false }]) {
      const m = T5ForConditionalGeneration.init({ ...small, ...over }, 5);
      const dir = join(mkdtempSync(join(tmpdir(), 'anneal-t5-')), 'm');
      await m.savePretrained(dir);
      const back = (await loadPretrained(dir)) as T5ForConditionalGeneration;
      expect(back.config).toEqual(m.config);
      const run = (x: T5ForConditionalGeneration) =>
        tf.tidy(() =>
          Array.from(
            x
              .forward({
                inputIds: tf.tensor2d([[5, 6, 7, 1]], undefined, 'int32'),
                decoderInputIds: tf.tensor2d([[0, 9, 10]], undefined, 'int32'),
              })
              .logits.dataSync(),
          ),
        );
      expect(run(back)).toEqual(run(m));
      expect(back.params.has('lm_head.weight')).toBe(!m.config.tieWordEmbeddings);
      m.dispose();
      back.dispose();
    }
  });
});
