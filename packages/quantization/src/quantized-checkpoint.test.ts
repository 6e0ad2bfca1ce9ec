// Quantizing while loading, and quantized checkpoints in bitsandbytes' layout: what loads
// computes exactly what quantize() of the loaded float32 model does, a saved quantized model
// reloads bit-exactly, and the files carry transformers' names, dtypes and config.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  CheckpointError,
  ConfigError,
  parseSafetensors,
  pythonJsonTypes,
  serializeSafetensors,
  useBackend,
  type TensorToWrite,
} from '@anneal/core';
import { loadPretrained, tinyGpt2, tinyLlama, type PretrainedModel } from '@anneal/modeling';
import {
  NF4_CODE,
  dequantize,
  dynamicMap,
  isQuantized,
  loadQuantized,
  quantize,
  saveQuantized,
  type QuantizationConfig,
} from './index.js';

const gpt2 = () => tinyGpt2(3);
const llama = () => tinyLlama(3);
const IDS = Int32Array.from({ length: 2 * 12 }, (_, i) => (i * 17 + 5) % 61);
const logits = (m: PretrainedModel) =>
  tf.tidy(() => Array.from(m.forward({ inputIds: tf.tensor2d(IDS, [2, 12], 'int32') }).logits!.dataSync()));
/**
 * The Python types of transformers' BitsAndBytesConfig.to_dict() (transformers 4.40.0,
 * src/transformers/utils/quantization_config.py: to_dict deep-copies __dict__ and turns the
 * torch dtypes into strings; post_init raises TypeError unless llm_int8_threshold is a float
 * and the flags are bools). Written by hand from that source.
 */
const BNB_TO_DICT_TYPES: Record<string, string> = {
  quant_method: 'str',
  _load_in_8bit: 'bool',
  _load_in_4bit: 'bool',
  llm_int8_threshold: 'float',
  llm_int8_skip_modules: 'null',
  llm_int8_enable_fp32_cpu_offload: 'bool',
  llm_int8_has_fp16_weight: 'bool',
  bnb_4bit_quant_type: 'str',
  bnb_4bit_use_double_quant: 'bool',
  bnb_4bit_compute_dtype: 'str',
  bnb_4bit_quant_storage: 'str',
  load_in_4bit: 'bool',
  load_in_8bit: 'bool',
};

const METHODS: QuantizationConfig[] = [
  { method: 'nf4', blockSize: 64, doubleQuant: true },
  { method: 'fp4', blockSize: 32, doubleQuant: false },
  { method: 'int8', blockSize: 64, doubleQuant: false },
];

async function saved(make: () => PretrainedModel): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-q-'));
  const m = make();
  await m.savePretrained(dir);
  m.dispose();
  return dir;
}

describe('loadQuantized and saveQuantized', () => {
  beforeAll(async () => {
    await useBackend('cpu', {});
  });

  it('quantizing while loading equals quantizing after loading, without building the float32 projections', async () => {
    for (const make of [gpt2, llama]) {
      const dir = await saved(make);
      for (const c of METHODS) {
        const after = await loadPretrained(dir);
        const r1 = quantize(after, c);
        const before = tf.memory().numBytes;
        const { model, report } = await loadQuantized(dir, c);
        // only the float32 parameters that stay float32 (embeddings, norms, biases) were kept
        let kept = 0;
        for (const p of model.params.values()) if (!p.isDisposed) kept += p.size * 4;
        expect(tf.memory().numBytes - before).toBe(kept);
        expect(report).toEqual(r1);
        expect(logits(model)).toEqual(logits(after));
        after.dispose();
        model.dispose();
      }
    }
  });

  it('saves in bitsandbytes layout and reloads bit-exactly (nf4 + double quant, fp4, int8; Conv1D and Linear)', async () => {
    for (const make of [gpt2, llama]) {
      const dir = await saved(make);
      for (const c of METHODS) {
        const { model } = await loadQuantized(dir, c);
        const out = mkdtempSync(join(tmpdir(), 'anneal-q-out-'));
        const bytes = await saveQuantized(model, join(out, 'q'));
        expect(readFileSync(join(out, 'q', 'model.safetensors')).length).toBe(bytes);
        const back = await loadQuantized(join(out, 'q'));
        expect(back.config.method).toBe(c.method);
        expect(logits(back.model)).toEqual(logits(model));
        // and without asking: loadPretrained refuses it with the way to load it
        await expect(loadPretrained(join(out, 'q'))).rejects.toThrow(
          `this checkpoint is quantized (bitsandbytes ${c.method})`,
        );
        model.dispose();
        back.model.dispose();
      }
    }
  });

  it('dequantize restores float32 parameters holding the dequantized values: same logits, saveable, loads as a plain model', async () => {
    for (const make of [gpt2, llama]) {
      const dir = await saved(make);
      const { model, report } = await loadQuantized(dir, METHODS[0]);
      const want = logits(model);
      expect(dequantize(model)).toBe(report.layers);
      expect(isQuantized(model)).toBe(false);
      const got = logits(model);
      expect(Math.max(...got.map((v, i) => Math.abs(v - want[i])))).toBeLessThan(1e-5);
      const out = join(mkdtempSync(join(tmpdir(), 'anneal-q-out-')), 'f32');
      await model.savePretrained((mkdirSync(out), out));
      const back = await loadPretrained(out);
      expect(logits(back)).toEqual(got);
      model.dispose();
      back.dispose();
    }
  });

  it("writes quantization_config with the Python types of transformers' BitsAndBytesConfig.to_dict() (llm_int8_threshold 6.0, a float)", async () => {
    const dir = await saved(gpt2);
    for (const q of [METHODS[0], METHODS[2]]) {
      const { model } = await loadQuantized(dir, q);
      const out = join(mkdtempSync(join(tmpdir(), 'anneal-q-out-')), 'q');
      await saveQuantized(model, out);
      model.dispose();
      const types = pythonJsonTypes(readFileSync(join(out, 'config.json'), 'utf8'));
      const written = Object.fromEntries(
        Object.entries(types)
          .filter(([k]) => k.startsWith('quantization_config.'))
          .map(([k, t]) => [k.slice('quantization_config.'.length), t]),
      );
      expect(written, q.method).toEqual(BNB_TO_DICT_TYPES);
      // and the model config's own float fields stay floats (GPT2Config: layer_norm_epsilon, initializer_range, *_pdrop)
      expect([types.layer_norm_epsilon, types.initializer_range, types.resid_pdrop]).toEqual([
        'float',
        'float',
        'float',
      ]);
    }
  });

  it("writes transformers' names, dtypes, quant state and quantization_config (GPT-2's c_attn stored [out, in])", async () => {
    const dir = await saved(gpt2);
    const { model } = await loadQuantized(dir, { ...METHODS[0], computeDtype: 'bfloat16' });
    const out = join(mkdtempSync(join(tmpdir(), 'anneal-q-out-')), 'q');
    await saveQuantized(model, out);
    const config = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(config.quantization_config).toMatchObject({
      quant_method: 'bitsandbytes',
      load_in_4bit: true,
      bnb_4bit_quant_type: 'nf4',
      bnb_4bit_use_double_quant: true,
      bnb_4bit_compute_dtype: 'bfloat16',
    });
    const back = await loadQuantized(out);
    expect(back.config).toEqual({ method: 'nf4', blockSize: 64, doubleQuant: true, computeDtype: 'bfloat16' });
    back.model.dispose();
    const { tensors } = parseSafetensors(readFileSync(join(out, 'model.safetensors')));
    const k = 'transformer.h.0.attn.c_attn.weight'; // Conv1D [64, 192] -> Linear [192, 64]
    const n = 64 * 192;
    expect(tensors.get(k)).toMatchObject({ dtype: 'U8', shape: [n / 2, 1] });
    expect(tensors.get(`${k}.absmax`)).toMatchObject({ dtype: 'U8', shape: [n / 64] });
    expect(tensors.get(`${k}.nested_absmax`)).toMatchObject({ dtype: 'F32', shape: [Math.ceil(n / 64 / 256)] });
    expect(Array.from(tensors.get(`${k}.quant_map`)!.data)).toEqual(Array.from(NF4_CODE));
    expect(Array.from(tensors.get(`${k}.nested_quant_map`)!.data)).toEqual(Array.from(dynamicMap()));
    const state = JSON.parse(
      Buffer.from(tensors.get(`${k}.quant_state.bitsandbytes__nf4`)!.data as Uint8Array).toString('utf8'),
    );
    expect(state).toMatchObject({
      quant_type: 'nf4',
      blocksize: 64,
      dtype: 'float32',
      shape: [192, 64],
      nested_blocksize: 256,
      nested_dtype: 'float32',
    });
    expect(Object.keys(state)).toEqual([
      'quant_type',
      'blocksize',
      'dtype',
      'shape',
      'nested_blocksize',
      'nested_dtype',
      'nested_offset',
    ]);
    expect(tensors.get('transformer.wte.weight')).toMatchObject({ dtype: 'F32', shape: [61, 64] }); // embeddings stay float32
    expect(tensors.get('transformer.h.0.attn.c_attn.bias')).toMatchObject({ dtype: 'F32', shape: [192] });
    model.dispose();
  });

  it('reports bad quantized files naming the tensor: a wrong shape in the quant state, a missing absmax, a method mismatch', async () => {
    const dir = await saved(gpt2);
    const { model } = await loadQuantized(dir, METHODS[0]);
    const out = join(mkdtempSync(join(tmpdir(), 'anneal-q-out-')), 'q');
    await saveQuantized(model, out);
    model.dispose();
    const file = join(out, 'model.safetensors');
    const good = readFileSync(file);
    const k = 'transformer.h.1.mlp.c_fc.weight';
    const edit = (f: (t: Map<string, TensorToWrite>) => void) => {
      const t = parseSafetensors(good).tensors as unknown as Map<string, TensorToWrite>;
      f(t);
      writeFileSync(file, serializeSafetensors(t));
    };
    edit((t) => {
      const s = `${k}.quant_state.bitsandbytes__nf4`;
      const json = Buffer.from(t.get(s)!.data as Uint8Array)
        .toString('utf8')
        .replace('[256, 64]', '[64, 256]');
      t.set(s, { dtype: 'U8', shape: [json.length], data: new Uint8Array(Buffer.from(json)) });
    });
    await expect(loadQuantized(out)).rejects.toThrow(CheckpointError);
    await expect(loadQuantized(out)).rejects.toThrow(/shape \[64,256\] does not match \[256,64\]/);
    edit((t) => t.delete(`${k}.absmax`));
    await expect(loadQuantized(out)).rejects.toThrow(/transformer\.h\.1\.mlp\.c_fc\.weight\.absmax has no values/);
    writeFileSync(file, good);
    await expect(loadQuantized(out, { method: 'int8', blockSize: 64, doubleQuant: false })).rejects.toThrow(
      ConfigError,
    );
    await expect(loadQuantized(dir)).rejects.toThrow(/not quantized and no quantization was asked for/);
  });
});
