// Parity with Hugging Face transformers: the fixture in ../shared/fixtures/hf/gpt2 was
// produced by GPT2LMHeadModel (see its README): logits, losses, gradient norms, greedy
// generation. Our model loads its safetensors and must reproduce all of them.
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend, valueAndGrads } from '@anneal/core';
import { Gpt2LMHeadModel, causalLmLoss, generate, IGNORE_INDEX } from '../index.js';

const FIXTURES = fileURLToPath(new URL('../../../../../shared/fixtures/hf/', import.meta.url));
const dir = join(FIXTURES, 'gpt2');
const io = JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8'));

function readLogits(): Float32Array {
  const buf = readFileSync(join(dir, io.logits.file));
  return new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
}

describe('GPT2LMHeadModel vs transformers', () => {
  let model: Gpt2LMHeadModel;
  beforeAll(async () => {
    expect(existsSync(dir)).toBe(true);
    await useBackend('cpu');
    model = Gpt2LMHeadModel.fromPretrained(dir);
  });

  const ids = io.inputs.input_ids as number[][];
  const mask = io.inputs.attention_mask as number[][];

  it('reproduces the logits at every real position to 1e-4', () => {
    const ref = readLogits();
    const [B, T, V] = io.logits.shape;
    const out = tf.tidy(
      () =>
        model.forward({
          inputIds: tf.tensor2d(ids, [B, T], 'int32'),
          attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
        }).logits,
    );
    expect(out.shape).toEqual([B, T, V]);
    const got = out.dataSync();
    out.dispose();
    let maxDiff = 0;
    for (let b = 0; b < B; b++) {
      for (let t = 0; t < T; t++) {
        if (!mask[b][t]) continue;
        for (let v = 0; v < V; v++)
          maxDiff = Math.max(maxDiff, Math.abs(got[(b * T + t) * V + v] - ref[(b * T + t) * V + v]));
      }
    }
    expect(maxDiff).toBeLessThan(1e-4);
  });

  it('reproduces the loss (pads counted) and the pad-masked loss', () => {
    const [B, T] = io.logits.shape;
    const lossOf = (labels: number[][]) =>
      tf.tidy(() => {
        const logits = model.forward({
          inputIds: tf.tensor2d(ids, [B, T], 'int32'),
          attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
        }).logits;
        return causalLmLoss(logits, labels).loss.dataSync()[0];
      });
    expect(lossOf(ids)).toBeCloseTo(io.loss, 5);
    const masked = ids.map((row, b) => row.map((id, t) => (mask[b][t] ? id : IGNORE_INDEX)));
    expect(lossOf(masked)).toBeCloseTo(io.loss_pad_masked, 5);
  });

  it('reproduces every parameter gradient norm', () => {
    const [B, T] = io.logits.shape;
    const { grads, value } = valueAndGrads(model.params, () => {
      const logits = model.forward({
        inputIds: tf.tensor2d(ids, [B, T], 'int32'),
        attentionMask: tf.tensor2d(mask, [B, T], 'int32'),
      }).logits;
      return causalLmLoss(logits, ids).loss;
    });
    value.dispose();
    let total = 0;
    for (const [name, ref] of Object.entries(io.grad_norms as Record<string, number>)) {
      const g = grads.get(name)!;
      expect(g, name).toBeDefined();
      const n = tf.tidy(() => tf.norm(g).dataSync()[0]);
      total += n * n;
      expect(Math.abs(n - ref) / Math.max(ref, 1e-3), name).toBeLessThan(1e-3);
    }
    expect(Math.sqrt(total)).toBeCloseTo(io.grad_norm_total, 4);
    tf.dispose([...grads.values()]);
  });

  it('generates the same greedy tokens', () => {
    const g = io.generate;
    const [out] = generate(model, [g.prompt_ids], { maxNewTokens: g.max_new_tokens });
    expect(out).toEqual(g.output_ids);
    const [noCache] = generate(model, [g.prompt_ids], { maxNewTokens: g.max_new_tokens, useCache: false });
    expect(noCache).toEqual(g.output_ids);
  });

  it('saves a checkpoint that loads back bit-exactly with the same safetensors layout', async () => {
    const out = mkdtempSync(join(tmpdir(), 'anneal-gpt2-'));
    await model.savePretrained(out);
    const back = Gpt2LMHeadModel.fromPretrained(out);
    for (const [name, p] of model.params)
      expect(Array.from(back.params.get(name)!.dataSync())).toEqual(Array.from(p.dataSync()));
    const header = (f: string) => {
      const b = readFileSync(f);
      const n = Number(b.readBigUInt64LE(0));
      const h = JSON.parse(b.subarray(8, 8 + n).toString());
      return Object.fromEntries(
        Object.entries(h).map(([k, v]: [string, any]) => [k, k === '__metadata__' ? v : [v.dtype, v.shape]]),
      );
    };
    expect(header(join(out, 'model.safetensors'))).toEqual(header(join(dir, 'model.safetensors')));
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'))).toMatchObject({
      n_embd: 64,
      n_layer: 2,
      vocab_size: 1000,
      model_type: 'gpt2',
    });
    back.dispose();
  });
});
