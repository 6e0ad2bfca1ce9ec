// Quantized weights in the layout bitsandbytes (through transformers' save_pretrained) writes,
// so a quantized checkpoint is a Hugging Face folder either side can read:
//
//   4-bit (Linear4bit, QuantState.as_dict(packed=True)), for a module's weight [out, in]:
//     <m>.weight                          U8 [ceil(n/2), 1]  two codes per byte, high nibble first
//     <m>.weight.absmax                   F32 [blocks], or U8 [blocks] with double quantization
//     <m>.weight.quant_map                F32 [16]           the code book
//     <m>.weight.nested_absmax            F32 [ceil(blocks/256)]   (double quantization)
//     <m>.weight.nested_quant_map         F32 [256]          the dynamic map (double quantization)
//     <m>.weight.quant_state.bitsandbytes__nf4   U8: JSON {quant_type, blocksize, dtype, shape, nested_*}
//   8-bit (Linear8bitLt): <m>.weight I8 [out, in] and <m>.SCB F32 [out] (absmax per row).
//
// GPT-2's Conv1D weights are stored transposed ([out, in]), as transformers does when it
// swaps Conv1D for a bitsandbytes Linear.
import { CheckpointError, type SafeTensor, type TensorToWrite } from '@anneal/core';
import { FP4_CODE, NF4_CODE } from './codebooks.js';
import type { Quantized4bit } from './blockwise.js';
import type { QuantizedInt8 } from './int8.js';

/** BitsAndBytesConfig's float fields (post_init raises "llm_int8_threshold must be a float" on an int). */
export const BNB_FLOAT_KEYS = ['llm_int8_threshold'];

/** config.json's quantization_config, as transformers' BitsAndBytesConfig writes it (write it with stringifyJson and BNB_FLOAT_KEYS). */
export function bnbQuantizationConfig(
  method: 'nf4' | 'fp4' | 'int8',
  doubleQuant: boolean,
  computeDtype: 'float32' | 'bfloat16' = 'float32',
): Record<string, unknown> {
  const four = method !== 'int8';
  return {
    _load_in_4bit: four,
    _load_in_8bit: !four,
    bnb_4bit_compute_dtype: computeDtype,
    bnb_4bit_quant_storage: 'uint8',
    bnb_4bit_quant_type: four ? method : 'fp4',
    bnb_4bit_use_double_quant: four && doubleQuant,
    llm_int8_enable_fp32_cpu_offload: false,
    llm_int8_has_fp16_weight: false,
    llm_int8_skip_modules: null,
    llm_int8_threshold: 6.0,
    load_in_4bit: four,
    load_in_8bit: !four,
    quant_method: 'bitsandbytes',
  };
}

/** Python's json.dumps spacing, so the packed state reads as bitsandbytes' does. */
function pyJson(o: Record<string, unknown>): string {
  return `{${Object.entries(o)
    .map(([k, v]) => `${JSON.stringify(k)}: ${Array.isArray(v) ? `[${v.join(', ')}]` : JSON.stringify(v)}`)
    .join(', ')}}`;
}

/** The tensors of one 4-bit weight [out, in] under `key` (the weight's checkpoint name). */
export function fourBitTensors(key: string, q: Quantized4bit, shape: [number, number]): Map<string, TensorToWrite> {
  const out = new Map<string, TensorToWrite>();
  const a = q.absmax;
  out.set(key, { dtype: 'U8', shape: [q.packed.length, 1], data: q.packed });
  out.set(`${key}.quant_map`, { dtype: 'F32', shape: [16], data: q.type === 'nf4' ? NF4_CODE : FP4_CODE });
  const state: Record<string, unknown> = { quant_type: q.type, blocksize: q.blockSize, dtype: 'float32', shape };
  if (a instanceof Float32Array) out.set(`${key}.absmax`, { dtype: 'F32', shape: [a.length], data: a });
  else {
    out.set(`${key}.absmax`, { dtype: 'U8', shape: [a.codes.length], data: a.codes });
    out.set(`${key}.nested_absmax`, { dtype: 'F32', shape: [a.scales.length], data: a.scales });
    out.set(`${key}.nested_quant_map`, { dtype: 'F32', shape: [a.code.length], data: a.code });
    Object.assign(state, { nested_blocksize: a.blockSize, nested_dtype: 'float32', nested_offset: a.offset });
  }
  const json = new Uint8Array(Buffer.from(pyJson(state), 'utf8'));
  out.set(`${key}.quant_state.bitsandbytes__${q.type}`, { dtype: 'U8', shape: [json.length], data: json });
  return out;
}

/** The tensors of one int8 weight [out, in]: `<m>.weight` and `<m>.SCB`. */
export function int8Tensors(key: string, q: QuantizedInt8): Map<string, TensorToWrite> {
  return new Map<string, TensorToWrite>([
    [key, { dtype: 'I8', shape: [q.rows, q.cols], data: q.codes }],
    [
      key.replace(/weight$/, 'SCB'),
      { dtype: 'F32', shape: [q.rows], data: Float32Array.from(q.scales, (s) => s * 127) },
    ],
  ]);
}

/** Element count from the header's shape (reading `data` would read the bytes). */
const numel = (t: SafeTensor) => t.shape.reduce((a, d) => a * d, 1);

function need(tensors: Map<string, SafeTensor>, name: string, dtype: string, file: string): SafeTensor {
  const t = tensors.get(name);
  if (!t)
    throw new CheckpointError(`tensor ${name} is missing`, {
      file,
      field: name,
      hint: 'a bitsandbytes 4-bit weight needs .absmax, .quant_map and .quant_state.bitsandbytes__<type> next to it',
    });
  if (t.dtype !== dtype)
    throw new CheckpointError(`tensor ${name} is ${t.dtype}, expected ${dtype}`, { file, field: name });
  return t;
}

/**
 * Reads one 4-bit weight stored under `key` whose Linear shape must be `shape` [out, in];
 * returns it and the names of the tensors read.
 */
export function readFourBit(
  key: string,
  shape: [number, number],
  tensors: Map<string, SafeTensor>,
  file: string,
): { q: Quantized4bit; used: string[] } {
  const stateKey = [...tensors.keys()].find((k) => k.startsWith(`${key}.quant_state.bitsandbytes__`));
  if (!stateKey)
    throw new CheckpointError(`no ${key}.quant_state.bitsandbytes__<nf4|fp4> tensor`, {
      file,
      field: key,
      hint: 'expected a bitsandbytes 4-bit checkpoint (transformers save_pretrained of a load_in_4bit model)',
    });
  let state: Record<string, unknown>;
  try {
    state = JSON.parse(Buffer.from(need(tensors, stateKey, 'U8', file).data as Uint8Array).toString('utf8'));
  } catch (e) {
    throw new CheckpointError(`quant state is not JSON: ${(e as Error).message}`, { file, field: stateKey });
  }
  const type = state.quant_type;
  if (type !== 'nf4' && type !== 'fp4')
    throw new CheckpointError(`quant_type ${JSON.stringify(type)}; expected nf4 or fp4`, { file, field: stateKey });
  const blockSize = Number(state.blocksize);
  const n = shape[0] * shape[1];
  if (!Number.isInteger(blockSize) || blockSize < 2)
    throw new CheckpointError(`blocksize ${String(state.blocksize)} is not an integer >= 2`, { file, field: stateKey });
  if (String(state.shape) !== String(shape))
    throw new CheckpointError(`shape [${String(state.shape)}] does not match [${shape}] implied by config.json`, {
      file,
      field: stateKey,
    });
  const packedT = need(tensors, key, 'U8', file);
  if (numel(packedT) !== Math.ceil(n / 2))
    throw new CheckpointError(`${numel(packedT)} packed bytes for ${n} values; expected ${Math.ceil(n / 2)}`, {
      file,
      field: key,
    });
  const map = need(tensors, `${key}.quant_map`, 'F32', file).data as Float32Array;
  const want = type === 'nf4' ? NF4_CODE : FP4_CODE;
  if (map.length !== 16 || map.some((v, i) => Math.abs(v - want[i]) > 1e-6))
    throw new CheckpointError(`quant_map is not bitsandbytes' ${type} code book`, { file, field: `${key}.quant_map` });
  const blocks = Math.ceil(n / blockSize);
  const used = [stateKey, `${key}.quant_map`, `${key}.absmax`];
  const absmaxT = tensors.get(`${key}.absmax`);
  if (!absmaxT || numel(absmaxT) !== blocks)
    throw new CheckpointError(
      `${key}.absmax has ${absmaxT ? numel(absmaxT) : 'no'} values; expected ${blocks} (one per block of ${blockSize})`,
      { file, field: `${key}.absmax` },
    );
  const packed = packedT.data as Uint8Array; // the bulk of the file: read once
  if (state.nested_blocksize === undefined)
    return {
      q: { type, n, blockSize, packed, absmax: need(tensors, `${key}.absmax`, 'F32', file).data as Float32Array },
      used,
    };
  const codes = need(tensors, `${key}.absmax`, 'U8', file).data as Uint8Array;
  const nestedBlock = Number(state.nested_blocksize);
  const scales = need(tensors, `${key}.nested_absmax`, 'F32', file).data as Float32Array;
  const code = need(tensors, `${key}.nested_quant_map`, 'F32', file).data as Float32Array;
  if (!Number.isInteger(nestedBlock) || nestedBlock < 1 || scales.length !== Math.ceil(blocks / nestedBlock))
    throw new CheckpointError(
      `nested_absmax has ${scales.length} values; expected ${Math.ceil(blocks / nestedBlock)} (blocks of ${String(state.nested_blocksize)})`,
      { file, field: `${key}.nested_absmax` },
    );
  if (code.length !== 256)
    throw new CheckpointError(`nested_quant_map has ${code.length} values; expected 256`, {
      file,
      field: `${key}.nested_quant_map`,
    });
  const offset = Number(state.nested_offset);
  if (!Number.isFinite(offset))
    throw new CheckpointError(`nested_offset ${String(state.nested_offset)} is not a number`, {
      file,
      field: stateKey,
    });
  used.push(`${key}.nested_absmax`, `${key}.nested_quant_map`);
  return { q: { type, n, blockSize, packed, absmax: { codes, code, scales, offset, blockSize: nestedBlock } }, used };
}

/** Reads one int8 weight [out, in] (`<m>.weight` I8 and `<m>.SCB`). */
export function readInt8(
  key: string,
  shape: [number, number],
  tensors: Map<string, SafeTensor>,
  file: string,
): { q: QuantizedInt8; used: string[] } {
  const w = need(tensors, key, 'I8', file);
  if (String(w.shape) !== String(shape))
    throw new CheckpointError(`shape [${w.shape}] does not match [${shape}] implied by config.json`, {
      file,
      field: key,
    });
  const scbKey = key.replace(/weight$/, 'SCB');
  const scb = need(tensors, scbKey, 'F32', file).data as Float32Array;
  if (scb.length !== shape[0])
    throw new CheckpointError(`${scb.length} row scales; expected ${shape[0]}`, { file, field: scbKey });
  const used = [scbKey, ...[key.replace(/weight$/, 'weight_format')].filter((k) => tensors.has(k))];
  return {
    q: {
      rows: shape[0],
      cols: shape[1],
      codes: Int8Array.from(w.data as Int32Array),
      scales: Float32Array.from(scb, (s) => s / 127),
    },
    used,
  };
}
