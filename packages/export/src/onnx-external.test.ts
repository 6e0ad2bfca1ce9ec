// Weights too large for one ONNX protobuf (2 GB) go to external data files, as
// onnx.external_data_helper writes them and transformers.js loads them: forced here on small
// models with a tiny inline limit and chunk size. onnxruntime-node runs the split model from
// its folder with the logits of the one-file model; transformers.js decodes what Anneal decodes
// (in Node onnxruntime opens the chunks from the model's folder; in a browser transformers.js
// fetches the chunks config.json names, which the first test checks).
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { env, pipeline, type TextGenerationPipeline } from '@huggingface/transformers';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { ConfigError, useBackend } from '@anneal/core';
import {
  GPT2_DEFAULTS,
  Gpt2LMHeadModel,
  generate,
  loadPretrained,
  readHfFixture,
  type CausalLm,
} from '@anneal/modeling';
import { trainByteLevelBpe } from '@anneal/tokenizers';
import { exportOnnx, onnxModelBytes } from './index.js';
import { DataLocation, ModelProto } from './onnx/proto.js';
import { emptyPast, i64 } from './testing.js';

interface Tensor {
  name: string;
  raw_data?: Uint8Array;
  data_location?: number;
  external_data?: Array<{ key: string; value: string }>;
}

describe('ONNX external data', () => {
  it('splits the weights into aligned chunks that onnxruntime reads with the one-file logits', async () => {
    await useBackend('cpu');
    const dir = fileURLToPath(new URL('../../../../shared/fixtures/hf/qwen3', import.meta.url));
    const f = readHfFixture(dir);
    const model = await loadPretrained(dir);
    const out = join(mkdtempSync(join(tmpdir(), 'anneal-onnx-ext-')), 'qwen3');
    const chunkBytes = 20_000;
    const r = exportOnnx(model, { outDir: out, inlineLimit: 0, chunkBytes, variants: ['fp16'] });
    const data = r.files.filter((n) => n.startsWith('onnx/model.onnx_data'));
    expect(data.length).toBeGreaterThan(2);
    expect(data).toContain('onnx/model.onnx_data_1');
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const fp16Chunks = r.files.filter((n) => n.startsWith('onnx/model_fp16.onnx_data')).length;
    expect(config['transformers.js_config']).toEqual({
      use_external_data_format: { 'model.onnx': data.length, 'model_fp16.onnx': fp16Chunks },
    });
    expect(config.model_type).toBe('qwen3'); // the rest of config.json as before

    // every external tensor: page-aligned, inside its chunk; a chunk over chunkBytes holds one tensor
    const proto = ModelProto.toObject(ModelProto.decode(readFileSync(join(out, 'onnx', 'model.onnx'))), {
      longs: Number,
    }) as { graph: { initializer: Tensor[] } };
    const perChunk = new Map<string, number>();
    let external = 0;
    for (const t of proto.graph.initializer) {
      if (t.data_location !== DataLocation.EXTERNAL) {
        expect(t.raw_data!.length).toBeLessThan(1024); // only small constants stay inline
        continue;
      }
      external++;
      const at = Object.fromEntries(t.external_data!.map((e) => [e.key, e.value]));
      const [offset, length] = [Number(at.offset), Number(at.length)];
      expect(offset % 4096, t.name).toBe(0);
      expect(offset + length).toBeLessThanOrEqual(statSync(join(out, 'onnx', at.location)).size);
      perChunk.set(at.location, (perChunk.get(at.location) ?? 0) + 1);
      if (offset + length > chunkBytes) expect(offset, `${t.name} alone in ${at.location}`).toBe(0);
    }
    expect(external).toBeGreaterThan(10);
    expect([...perChunk.keys()].sort()).toEqual(data.map((n) => n.slice('onnx/'.length)).sort());
    expect(r.bytes).toBeLessThan(onnxModelBytes(model).length / 4); // the graph, not the weights

    // the split model from its folder = the one-file model
    const feeds = () => {
      const c = (model as unknown as { config: { numKeyValueHeads: number; numHiddenLayers: number } }).config;
      const D = Number(config.head_dim);
      const B = f.ids.length;
      return {
        input_ids: i64(f.ids),
        attention_mask: i64(f.mask),
        position_ids: i64(f.ids.map((row) => row.map((_, t) => t))),
        ...emptyPast(c.numHiddenLayers, B, c.numKeyValueHeads, D),
      };
    };
    const split = await ort.InferenceSession.create(join(out, 'onnx', 'model.onnx'));
    const whole = await ort.InferenceSession.create(onnxModelBytes(model));
    const a = (await split.run(feeds())).logits.data as Float32Array;
    const b = (await whole.run(feeds())).logits.data as Float32Array;
    expect(a.length).toBe(b.length);
    expect(Array.from(a)).toEqual(Array.from(b));
    const half = await ort.InferenceSession.create(join(out, 'onnx', 'model_fp16.onnx'));
    const h = (await half.run(feeds())).logits.data as Float32Array;
    expect(Math.max(...Array.from(h, (v, i) => Math.abs(v - b[i])))).toBeLessThan(0.05);
    await Promise.all([split.release(), whole.release(), half.release()]);

    // one buffer cannot hold weights over the limit: a named error pointing at exportOnnx
    expect(() => onnxModelBytes(model, { inlineLimit: 1000 })).toThrow(ConfigError);
    expect(() => onnxModelBytes(model, { inlineLimit: 1000 })).toThrow(/bytes, over the 1000 that fit in one buffer/);
    try {
      onnxModelBytes(model, { inlineLimit: 1000 });
    } catch (e) {
      expect((e as ConfigError).hint).toMatch(/external data files/);
    }
    model.dispose();
  });

  it("transformers.js loads the chunks config.json names and decodes Anneal's greedy tokens", async () => {
    await useBackend('cpu');
    const moby = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8');
    const tok = await trainByteLevelBpe([moby.slice(0, 40_000)], {
      vocabSize: 400,
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
      bosToken: '<|endoftext|>',
    });
    const model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 400, nPositions: 64, nLayer: 2, nHead: 2, nEmbd: 32, initializerRange: 0.4 },
      3,
    );
    const root = mkdtempSync(join(tmpdir(), 'anneal-tjs-ext-'));
    const r = exportOnnx(model, { outDir: join(root, 'split'), tokenizer: tok, inlineLimit: 0, chunkBytes: 30_000 });
    expect(r.files.filter((n) => n.startsWith('onnx/model.onnx_data')).length).toBeGreaterThan(1);
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const gen = (await pipeline('text-generation', 'split', { dtype: 'fp32' })) as TextGenerationPipeline;
    const prompt = 'Call me Ishmael.';
    const ids = tok.encode(prompt);
    const [want] = generate(model as unknown as CausalLm, [ids], { maxNewTokens: 20, eosTokenId: tok.eosTokenId });
    const got = (await gen(prompt, { max_new_tokens: 20, do_sample: false })) as Array<{ generated_text: string }>;
    expect(want.length).toBeGreaterThan(ids.length + 5);
    expect(got[0].generated_text).toBe(prompt + tok.decode(want.slice(ids.length), { skipSpecialTokens: true }));
    await gen.dispose();
    model.dispose();
  });
});
