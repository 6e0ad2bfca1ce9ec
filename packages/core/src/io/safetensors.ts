// safetensors: 8-byte little-endian header length N, N bytes of JSON header, then the
// raw little-endian tensor bytes. Spec: https://github.com/huggingface/safetensors
// The header is validated completely before any offset in it is trusted.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { CheckpointError, FormatError } from '../errors.js';

export type SafeDtype = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const DTYPE_BYTES: Record<SafeDtype, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** Largest header we accept (the reference implementation uses 100 MB). */
const MAX_HEADER_BYTES = 100_000_000;

export interface SafeTensor {
  dtype: SafeDtype;
  shape: number[];
  /** Float types come back as Float32Array, integer types as Int32Array (I64 checked to fit). */
  data: Float32Array | Int32Array | Uint8Array;
  /** Where the bytes are, for a tensor read from a file (readSafetensors): a backend may read them itself. */
  source?: { file: string; offset: number };
}

const FLOAT_DTYPES: ReadonlySet<SafeDtype> = new Set(['F64', 'F32', 'F16', 'BF16']);

/**
 * Checks that a tensor read from `file` can stand for a float parameter or optimizer moment
 * of `shape`: a float dtype (F32, or F16/BF16/F64, read as float32) and exactly that shape.
 * An integer tensor in their place (an F32 bias edited to I32) is an error, not garbage weights.
 */
export function requireFloatTensor(
  t: { dtype: string; shape: readonly number[] },
  shape: readonly number[],
  o: { file: string; name: string; what?: string },
): void {
  const want = `F32 [${shape.join(', ')}]`;
  const found = `${t.dtype} [${t.shape.join(', ')}]`;
  if (!FLOAT_DTYPES.has(t.dtype as SafeDtype) || t.shape.join(',') !== shape.join(',')) {
    throw new CheckpointError(`tensor ${o.name} is ${found}, expected ${want}${o.what ? ` (${o.what})` : ''}`, {
      file: o.file,
      field: o.name,
      hint: FLOAT_DTYPES.has(t.dtype as SafeDtype)
        ? 'the file was saved for a model of another size or architecture'
        : 'the file was edited or written by another tool: a float tensor is needed here',
    });
  }
}

/** A tensor's values as float32 (integers widened); its `data` read once, as a file-backed tensor reads its bytes on every access. */
export function float32Data(t: SafeTensor): Float32Array {
  const d = t.data;
  return d instanceof Float32Array ? d : Float32Array.from(d);
}

export interface SafetensorsFile {
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
}

function fail(file: string, msg: string, field?: string): never {
  throw new FormatError(msg, {
    file,
    field,
    hint: 'the file is not a valid safetensors file (truncated or not safetensors)',
  });
}

function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (f / 1024);
  if (e === 31) return f ? NaN : s * Infinity;
  return s * 2 ** (e - 15) * (1 + f / 1024);
}

function decode(
  bytes: Uint8Array,
  dtype: SafeDtype,
  n: number,
  file: string,
  name: string,
  owned = false,
): SafeTensor['data'] {
  // Copy (Buffer#slice would only make a view) so the result is aligned and independent of
  // the file buffer; bytes read for this tensor alone (`owned`) are used as they are.
  const copy = owned ? bytes : new Uint8Array(bytes.byteLength);
  if (!owned) copy.set(bytes);
  const buf = copy.buffer as ArrayBuffer;
  const dv = new DataView(buf);
  switch (dtype) {
    case 'F32':
      return new Float32Array(buf);
    case 'F64':
      return Float32Array.from(new Float64Array(buf));
    case 'F16': {
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = halfToFloat(dv.getUint16(2 * i, true));
      return out;
    }
    case 'BF16': {
      const out = new Float32Array(n);
      const u32 = new Uint32Array(out.buffer);
      for (let i = 0; i < n; i++) u32[i] = dv.getUint16(2 * i, true) << 16;
      return out;
    }
    case 'I32':
      return new Int32Array(buf);
    case 'I64': {
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = dv.getBigInt64(8 * i, true);
        if (v > 2147483647n || v < -2147483648n) fail(file, `I64 value ${v} does not fit in int32`, name);
        out[i] = Number(v);
      }
      return out;
    }
    case 'I16':
      return Int32Array.from(new Int16Array(buf));
    case 'I8':
      return Int32Array.from(new Int8Array(buf));
    case 'U8':
    case 'BOOL':
      return new Uint8Array(buf);
  }
}

interface Entry {
  name: string;
  dtype: SafeDtype;
  shape: number[];
  begin: number;
  end: number;
}

/** Validates a header (`headerLen` bytes of JSON) against a file of `fileSize` bytes. */
function parseHeader(
  headerBytes: Uint8Array,
  fileSize: number,
  file: string,
): { entries: Entry[]; metadata: Record<string, string>; dataStart: number } {
  const headerLen = headerBytes.byteLength;
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(headerBytes));
  } catch (e) {
    fail(file, `header is not valid UTF-8 JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail(file, 'header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = fileSize - dataStart;
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof raw !== 'object' || raw === null) fail(file, '__metadata__ must be an object of strings', name);
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(file, `metadata value for ${k} is not a string`, name);
        metadata[k] = v;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info !== 'object' || info === null) fail(file, 'tensor entry is not an object', name);
    if (typeof info.dtype !== 'string' || !(info.dtype in DTYPE_BYTES)) {
      fail(
        file,
        `unsupported dtype ${JSON.stringify(info.dtype)}; expected one of ${Object.keys(DTYPE_BYTES).join(', ')}`,
        name,
      );
    }
    const dtype = info.dtype as SafeDtype;
    if (!Array.isArray(info.shape) || !info.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(file, `shape ${JSON.stringify(info.shape)} is not a list of non-negative integers`, name);
    }
    const off = info.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((d) => Number.isSafeInteger(d) && d >= 0) ||
      off[0] > off[1]
    ) {
      fail(file, `data_offsets ${JSON.stringify(off)} is not [begin, end] with 0 <= begin <= end`, name);
    }
    const shape = info.shape as number[];
    const numel = shape.reduce((a, d) => a * d, 1);
    const [begin, end] = off as [number, number];
    if (end > dataLen) fail(file, `data_offsets [${begin}, ${end}] run past the data section (${dataLen} bytes)`, name);
    if (end - begin !== numel * DTYPE_BYTES[dtype]) {
      fail(
        file,
        `data_offsets span ${end - begin} bytes but ${dtype}${JSON.stringify(shape)} needs ${numel * DTYPE_BYTES[dtype]}`,
        name,
      );
    }
    entries.push({ name, dtype, shape, begin, end });
  }
  // Tensors must tile the data section exactly: no overlaps, no holes.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const { name, begin, end } of sorted) {
    if (begin !== cursor) fail(file, `tensor data starts at ${begin}, expected ${cursor} (overlap or hole)`, name);
    cursor = end;
  }
  if (cursor !== dataLen) fail(file, `tensors cover ${cursor} bytes but the data section has ${dataLen}`);
  return { entries, metadata, dataStart };
}

/** The header length the first 8 bytes state, checked against the file size. */
function headerLength(first8: Uint8Array, fileSize: number, file: string): number {
  if (fileSize < 8) fail(file, `file is ${fileSize} bytes, shorter than the 8-byte header length`);
  const n = new DataView(first8.buffer, first8.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, fileSize - 8)))
    fail(file, `header length ${n} exceeds the file size ${fileSize} (or the 100 MB limit)`);
  return Number(n);
}

/** Parses a safetensors buffer. `file` is used in error messages only. */
export function parseSafetensors(buf: Uint8Array, file = '<buffer>'): SafetensorsFile {
  const headerLen = headerLength(buf.subarray(0, 8), buf.byteLength, file);
  const { entries, metadata, dataStart } = parseHeader(buf.subarray(8, 8 + headerLen), buf.byteLength, file);
  const tensors = new Map<string, SafeTensor>();
  for (const { name, dtype, shape, begin, end } of entries) {
    const numel = shape.reduce((a, d) => a * d, 1);
    tensors.set(name, {
      dtype,
      shape,
      data: decode(buf.subarray(dataStart + begin, dataStart + end), dtype, numel, file, name),
    });
  }
  return { tensors, metadata };
}

/**
 * Reads a safetensors file's header (validated as parseSafetensors does) and each tensor's
 * data only when its `data` is read, from the file, each time: loading a model then holds one
 * tensor's bytes at a time instead of the whole file.
 */
export function readSafetensors(path: string): SafetensorsFile {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new FormatError(`cannot read safetensors file: ${(e as Error).message}`, { file: path, cause: e });
  }
  try {
    const size = fstatSync(fd).size;
    const first8 = new Uint8Array(8);
    readSync(fd, first8, 0, Math.min(8, size), 0);
    const headerLen = headerLength(first8, size, path);
    const headerBytes = new Uint8Array(headerLen);
    readFully(fd, headerBytes, 8, path);
    const { entries, metadata, dataStart } = parseHeader(headerBytes, size, path);
    const tensors = new Map<string, SafeTensor>();
    for (const { name, dtype, shape, begin, end } of entries) {
      const numel = shape.reduce((a, d) => a * d, 1);
      const read = () => {
        const bytes = new Uint8Array(end - begin);
        const f = openSync(path, 'r');
        try {
          readFully(f, bytes, dataStart + begin, path);
        } finally {
          closeSync(f);
        }
        return decode(bytes, dtype, numel, path, name, true);
      };
      tensors.set(
        name,
        Object.defineProperty(
          { dtype, shape, source: { file: path, offset: dataStart + begin } } as SafeTensor,
          'data',
          { get: read, enumerable: true },
        ),
      );
    }
    return { tensors, metadata };
  } finally {
    closeSync(fd);
  }
}

function readFully(fd: number, into: Uint8Array, position: number, file: string): void {
  let done = 0;
  while (done < into.byteLength) {
    const n = readSync(fd, into, done, into.byteLength - done, position + done);
    if (n === 0)
      fail(
        file,
        `file ended at byte ${position + done}, inside the data the header describes (changed while reading?)`,
      );
    done += n;
  }
}

export interface TensorToWrite {
  dtype: 'F32' | 'I32' | 'I8' | 'U8';
  shape: number[];
  data: Float32Array | Int32Array | Int8Array | Uint8Array;
}

/**
 * Serialises tensors the way Python's safetensors does: `__metadata__` first, tensors
 * sorted by name, header padded with spaces to a multiple of 8 bytes.
 */
export function serializeSafetensors(
  tensors: Map<string, TensorToWrite> | Record<string, TensorToWrite>,
  metadata: Record<string, string> = { format: 'pt' },
): Buffer {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const names = [...map.keys()].sort();
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let offset = 0;
  for (const name of names) {
    const t = map.get(name)!;
    const numel = t.shape.reduce((a, d) => a * d, 1);
    if (numel !== t.data.length)
      throw new FormatError(`shape ${JSON.stringify(t.shape)} has ${numel} elements but data has ${t.data.length}`, {
        field: name,
      });
    const bytes = t.data.byteLength;
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes] };
    offset += bytes;
  }
  let json = JSON.stringify(header);
  const pad = (8 - (Buffer.byteLength(json) % 8)) % 8;
  json += ' '.repeat(pad);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length;
  for (const name of names) {
    const t = map.get(name)!;
    Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).copy(out, pos);
    pos += t.data.byteLength;
  }
  return out;
}
