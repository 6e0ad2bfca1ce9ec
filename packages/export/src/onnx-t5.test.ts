// T5 exported as transformers.js loads it (encoder_model.onnx + decoder_model_merged.onnx):
// onnxruntime-node gives the t5 fixture's encoder output and logits (transformers'), in one
// decoder pass and one position at a time through the self-attention cache; a gated-gelu,
// untied T5 with long relative distances (the logarithmic buckets) gives Anneal's logits; and
// transformers.js' text2text-generation pipeline decodes what Anneal's seq2seqGenerate decodes.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, pipeline, type Text2TextGenerationPipeline } from '@huggingface/transformers';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ConfigError, useBackend } from '@anneal/core';
import {
  T5ForConditionalGeneration,
  T5_DEFAULTS,
  loadPretrained,
  readHfFixture,
  seq2seqGenerate,
} from '@anneal/modeling';
import { trainByteLevelBpe } from '@anneal/tokenizers';
import { exportOnnx, onnxModelBytes, onnxModelFiles } from './index.js';
import { emptyPast, i64, initializerNames } from './testing.js';

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

/** Encoder output, then decoder logits for all decoder ids at once and one position at a time (with the cache). */
async function runOnnx(model: T5ForConditionalGeneration, ids: number[][], mask: number[][], dec: number[][]) {
  const files = onnxModelFiles(model);
  expect(Object.keys(files)).toEqual(['encoder_model.onnx', 'decoder_model_merged.onnx']);
  const names = initializerNames(files['decoder_model_merged.onnx']);
  expect(new Set(names).size).toBe(names.length); // shared.weight once, for the embedding and the tied head
  const encoder = await ort.InferenceSession.create(files['encoder_model.onnx']);
  const decoder = await ort.InferenceSession.create(files['decoder_model_merged.onnx']);
  const c = model.config;
  const B = ids.length;
  const hidden = (await encoder.run({ input_ids: i64(ids), attention_mask: i64(mask) })).last_hidden_state;
  const empty = () => emptyPast(c.numDecoderLayers, B, c.numHeads, c.dKv, '.decoder');
  const step = (input: number[][], past: Record<string, ort.Tensor>) =>
    decoder.run({ input_ids: i64(input), encoder_attention_mask: i64(mask), encoder_hidden_states: hidden, ...past });
  const full = (await step(dec, empty())).logits.data as Float32Array;
  const T = dec[0].length;
  const V = c.vocabSize;
  const stepped = new Float32Array(B * T * V);
  let past = empty();
  for (let t = 0; t < T; t++) {
    const r = await step(
      dec.map((row) => [row[t]]),
      past,
    );
    const logits = r.logits.data as Float32Array; // [B, 1, V]
    for (let b = 0; b < B; b++) stepped.set(logits.subarray(b * V, (b + 1) * V), (b * T + t) * V);
    past = Object.fromEntries(Object.keys(past).map((name) => [name, r[name.replace('past_key_values', 'present')]]));
    expect(past['past_key_values.0.decoder.key'].dims[2]).toBe(t + 1);
  }
  await Promise.all([encoder.release(), decoder.release()]);
  return { hidden: hidden.data as Float32Array, full, stepped };
}

describe('T5 as ONNX', () => {
  it("gives the t5 fixture's encoder output and logits, in one pass and through the cache", async () => {
    await useBackend('cpu');
    const dir = fileURLToPath(new URL('../../../../shared/fixtures/hf/t5', import.meta.url));
    const f = readHfFixture(dir);
    const model = (await loadPretrained(dir)) as T5ForConditionalGeneration;
    const dec = f.io.inputs.decoder_input_ids_derived as number[][];
    const { hidden, full, stepped } = await runOnnx(model, f.ids, f.mask, dec);
    expect(Math.abs(hidden.reduce((a, b) => a + b, 0) - f.io.encoder_last_hidden_state_sum)).toBeLessThan(1e-3);
    (f.io.encoder_last_hidden_state_first8 as number[]).forEach((v, i) => expect(hidden[i]).toBeCloseTo(v, 4));
    expect(maxDiff(full, f.logits)).toBeLessThan(1e-4);
    expect(maxDiff(stepped, f.logits)).toBeLessThan(1e-4);
    expect(() => onnxModelBytes(model)).toThrow(ConfigError); // two graphs: onnxModelFiles
    model.dispose();
  });

  it("a gated-gelu, untied T5 over long distances gives Anneal's logits", async () => {
    await useBackend('cpu');
    const model = T5ForConditionalGeneration.init(
      {
        ...T5_DEFAULTS,
        vocabSize: 50,
        dModel: 16,
        dKv: 4,
        dFf: 24,
        numLayers: 2,
        numDecoderLayers: 2,
        numHeads: 2,
        relativeAttentionNumBuckets: 8,
        relativeAttentionMaxDistance: 20,
        feedForwardProj: 'gated-gelu',
        tieWordEmbeddings: false,
        initializerFactor: 1,
      },
      4,
    );
    // position biases of std 1 (not 0.25): a token in a wrong bucket moves the logits visibly
    for (const [name, p] of model.params)
      if (name.includes('relative_attention_bias')) p.assign(tf.tidy(() => tf.mul(p, 4)));
    const S = 40; // distances up to 39: exact, logarithmic and capped buckets
    const ids = [
      Array.from({ length: S }, (_, i) => 2 + ((i * 7) % 45)),
      Array.from({ length: S }, (_, i) => (i < 30 ? 3 + (i % 40) : 0)),
    ];
    const mask = ids.map((row, b) => row.map((_, i) => (b === 1 && i >= 30 ? 0 : 1)));
    const dec = [
      Array.from({ length: 24 }, (_, i) => (i * 5) % 50),
      Array.from({ length: 24 }, (_, i) => (i * 3 + 1) % 50),
    ];
    const ours = tf.tidy(() => {
      const out = model.forward({
        inputIds: tf.tensor2d(ids, undefined, 'int32'),
        attentionMask: tf.tensor2d(mask, undefined, 'int32'),
        decoderInputIds: tf.tensor2d(dec, undefined, 'int32'),
      });
      return { logits: out.logits.dataSync(), hidden: out.encoderLastHiddenState.dataSync() };
    });
    const { hidden, full, stepped } = await runOnnx(model, ids, mask, dec);
    expect(maxDiff(hidden, ours.hidden)).toBeLessThan(1e-4);
    expect(maxDiff(full, ours.logits)).toBeLessThan(1e-4);
    expect(maxDiff(stepped, ours.logits)).toBeLessThan(1e-4);
    model.dispose();
  });

  it("transformers.js' text2text-generation decodes Anneal's greedy output", async () => {
    await useBackend('cpu');
    const moby = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8');
    const tok = await trainByteLevelBpe([moby.slice(0, 40_000)], {
      vocabSize: 400,
      specialTokens: ['<pad>', '</s>', '<unk>'],
      padToken: '<pad>',
      eosToken: '</s>',
      unkToken: '<unk>',
    });
    const model = T5ForConditionalGeneration.init(
      {
        ...T5_DEFAULTS,
        vocabSize: 400,
        dModel: 32,
        dKv: 8,
        dFf: 64,
        numLayers: 2,
        numDecoderLayers: 2,
        numHeads: 4,
        padTokenId: tok.padTokenId!,
        eosTokenId: tok.eosTokenId!,
        decoderStartTokenId: tok.padTokenId!,
        initializerFactor: 4,
      },
      6,
    );
    const root = mkdtempSync(join(tmpdir(), 'anneal-tjs-t5-'));
    const r = exportOnnx(model, { outDir: join(root, 't5'), tokenizer: tok, variants: ['int8'] });
    expect(r.files.filter((n) => n.startsWith('onnx/'))).toEqual([
      'onnx/decoder_model_merged.onnx',
      'onnx/decoder_model_merged_quantized.onnx',
      'onnx/encoder_model.onnx',
      'onnx/encoder_model_quantized.onnx',
    ]);
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const gen = (await pipeline('text2text-generation', 't5', { dtype: 'fp32' })) as Text2TextGenerationPipeline;
    for (const prompt of ['Call me Ishmael.', 'The whale']) {
      const ids = tok.encode(prompt);
      expect(Array.from(gen.tokenizer.encode(prompt))).toEqual(ids);
      const [want] = seq2seqGenerate(model, [ids], { maxNewTokens: 16 });
      const out = (await gen(prompt, { max_new_tokens: 16, do_sample: false })) as Array<{ generated_text: string }>;
      expect(want.length).toBeGreaterThan(6); // a real continuation, not an immediate EOS
      expect(out[0].generated_text).toBe(tok.decode(want.slice(1), { skipSpecialTokens: true }));
    }
    await gen.dispose();
    model.dispose();
  });
});
