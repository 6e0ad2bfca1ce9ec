// Decoder sequence classifiers and reward models (GPT2ForSequenceClassification,
// LlamaForSequenceClassification) exported to ONNX and run by onnxruntime-node: logits
// [batch, num_labels] pooled at each row's last real token, equal to transformers' (the shared
// gpt2_seqcls fixture, a right-padded batch) and Anneal's. (transformers.js has no decoder
// classifiers: these run in onnxruntime.)
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { DecoderForSequenceClassification, LLAMA_DEFAULTS, loadPretrained, readHfFixture } from '@anneal/modeling';
import { onnxModelBytes } from './index.js';
import { annealLogits, i64 } from './testing.js';

async function onnxLogits(model: DecoderForSequenceClassification, ids: number[][], mask: number[][]) {
  const session = await ort.InferenceSession.create(onnxModelBytes(model));
  expect(session.inputNames).toEqual(['input_ids', 'attention_mask']);
  const r = await session.run({ input_ids: i64(ids), attention_mask: i64(mask) });
  return { logits: Array.from(r.logits.data as Float32Array), dims: r.logits.dims };
}

describe('decoder classifiers as ONNX', () => {
  it("GPT-2 reward model: transformers' logits at the last non-pad token", async () => {
    await useBackend('cpu');
    const dir = fileURLToPath(new URL('../../../../shared/fixtures/hf/gpt2_seqcls', import.meta.url));
    const f = readHfFixture(dir);
    const model = (await loadPretrained(dir)) as DecoderForSequenceClassification;
    const { logits, dims } = await onnxLogits(model, f.ids, f.mask);
    expect(dims).toEqual([2, 1]);
    const want = (f.io.logits as { values: number[][] }).values.flat();
    logits.forEach((v, i) => expect(Math.abs(v - want[i])).toBeLessThan(1e-5));
    const ours = annealLogits(model, f.ids, f.mask);
    logits.forEach((v, i) => expect(Math.abs(v - ours[i])).toBeLessThan(1e-5));
    model.dispose();
  });

  it("Llama classifier (grouped-query attention, 3 labels): Anneal's logits on a right-padded batch", async () => {
    await useBackend('cpu');
    const config = {
      ...LLAMA_DEFAULTS,
      vocabSize: 100,
      hiddenSize: 32,
      intermediateSize: 64,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      maxPositionEmbeddings: 64,
      initializerRange: 0.3,
      padTokenId: 0,
    };
    const model = DecoderForSequenceClassification.init({ arch: 'llama', config }, { numLabels: 3, padTokenId: 0 }, 5);
    const ids = [
      [5, 17, 42, 9, 81, 33, 0, 0],
      [12, 13, 14, 15, 16, 17, 18, 19],
    ];
    const mask = ids.map((r) => r.map((t) => (t === 0 ? 0 : 1)));
    const { logits, dims } = await onnxLogits(model, ids, mask);
    expect(dims).toEqual([2, 3]);
    const ours = annealLogits(model, ids, mask);
    logits.forEach((v, i) => expect(Math.abs(v - ours[i])).toBeLessThan(1e-4));
    expect(new Set(ours.map((v) => v.toFixed(3))).size).toBeGreaterThan(3); // distinct scores: a real check
    model.dispose();
  });
});
