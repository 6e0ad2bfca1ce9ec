// A small builder for one ONNX graph: typed inputs and outputs (a dimension is a size or a
// symbol such as "batch_size"), float32 weights and int64 constants as initializers, and
// nodes added in topological order (each returns its output names). encode() writes the
// ModelProto bytes for a given opset and IR version.
import { AttrType, DataLocation, DataType, ModelProto } from './proto.js';

export type Dim = number | string;

/**
 * How weights are stored: float32 as they are; float16 (half the bytes, widened by a Cast node);
 * int8 weight-only (a quarter: each 2-D weight per row as int8 × a float32 scale, widened by
 * DequantizeLinear; vectors stay float32). The graph computes in float32 either way.
 */
export type WeightFormat = 'float32' | 'float16' | 'int8';
export type ElemType = keyof typeof DataType;

/** An attribute value, tagged with its ONNX type (a plain number would not say int or float). */
export type Attr = { i: number } | { f: number } | { ints: number[] } | { floats: number[] } | { s: string };

interface Initializer {
  name: string;
  dims: number[];
  data_type: number;
  raw_data: Buffer;
}

/** Where initializers go when the weights do not fit in the protobuf (ONNX's external data). */
export interface ExternalDataOptions {
  /** The file name of chunk k (relative to the model file), e.g. "model.onnx_data", "model.onnx_data_1". */
  location: (chunk: number) => string;
  /** A chunk holds at most this many bytes (one tensor larger than that gets a chunk of its own). */
  chunkBytes: number;
  /** Initializers of fewer bytes stay in the model file (ONNX's size_threshold: 1024). */
  threshold?: number;
}

/** Offsets of external tensors are multiples of this (a page: onnxruntime can map them). */
const EXTERNAL_ALIGN = 4096;

interface Value {
  name: string;
  type: { tensor_type: { elem_type: number; shape: { dim: Array<{ dim_value: number } | { dim_param: string }> } } };
}

const valueInfo = (name: string, elem: ElemType, dims: Dim[]): Value => ({
  name,
  type: {
    tensor_type: {
      elem_type: DataType[elem],
      shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) },
    },
  },
});

function attribute(name: string, a: Attr) {
  if ('i' in a) return { name, type: AttrType.INT, i: a.i };
  if ('f' in a) return { name, type: AttrType.FLOAT, f: a.f };
  if ('ints' in a) return { name, type: AttrType.INTS, ints: a.ints };
  if ('floats' in a) return { name, type: AttrType.FLOATS, floats: a.floats };
  return { name, type: AttrType.STRING, s: Buffer.from(a.s, 'utf8') };
}

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** IEEE 754 half-precision bits of each value (round to nearest even; overflow to ±inf). */
export function toFloat16(x: Float32Array): Uint16Array {
  const out = new Uint16Array(x.length);
  const f32 = new Float32Array(1);
  const u32 = new Uint32Array(f32.buffer);
  for (let i = 0; i < x.length; i++) {
    f32[0] = x[i];
    const b = u32[0];
    const sign = (b >>> 16) & 0x8000;
    const exp = (b >>> 23) & 0xff;
    const man = b & 0x7fffff;
    if (exp === 0xff)
      out[i] = sign | 0x7c00 | (man ? 0x200 : 0); // inf / nan
    else if (exp > 142)
      out[i] = sign | 0x7c00; // too large: inf
    else if (exp < 113) {
      // subnormal half (or zero): shift the implicit-1 mantissa, round to nearest even
      if (exp < 102) out[i] = sign;
      else {
        const m = man | 0x800000;
        const shift = 126 - exp;
        let h = m >>> shift;
        const rest = m & ((1 << shift) - 1);
        const half = 1 << (shift - 1);
        if (rest > half || (rest === half && h & 1)) h++;
        out[i] = sign | h;
      }
    } else {
      let h = ((exp - 112) << 10) | (man >>> 13);
      const rest = man & 0x1fff;
      if (rest > 0x1000 || (rest === 0x1000 && h & 1)) h++; // may carry into the exponent: still right
      out[i] = sign | h;
    }
  }
  return out;
}

/** Symmetric int8 per row: q = round(x / s), s = max|row| / 127 (1 for an all-zero row). */
export function quantizeRows(x: Float32Array, rows: number, cols: number): { q: Int8Array; scale: Float32Array } {
  const q = new Int8Array(x.length);
  const scale = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(x[r * cols + c]));
    const s = max > 0 ? max / 127 : 1;
    scale[r] = s;
    for (let c = 0; c < cols; c++) q[r * cols + c] = Math.max(-127, Math.min(127, Math.round(x[r * cols + c] / s)));
  }
  return { q, scale };
}

export class OnnxGraph {
  private readonly nodes: object[] = [];
  private readonly initializers: Initializer[] = [];
  private readonly inputs: Value[] = [];
  private readonly outputs: Value[] = [];
  private readonly constants = new Map<string, string>();
  private readonly weights = new Set<string>();
  private count = 0;

  constructor(
    readonly name: string,
    readonly weightFormat: WeightFormat = 'float32',
    /** The opset the nodes are written for (ReduceMean's axes moved from attribute to input at 18). */
    readonly opset = 17,
  ) {
    if (!littleEndian) throw new Error('ONNX raw tensor data is little-endian; this machine is not');
  }

  input(name: string, elem: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  output(name: string, elem: ElemType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /**
   * A weight as a float32 tensor named `name`, stored in the graph's weight format (once: a
   * second use of the name, such as a tied head's embedding, refers to the same initializer).
   */
  weight(name: string, data: Float32Array, dims: number[]): string {
    if (this.weights.has(name)) return name;
    this.weights.add(name);
    const size = dims.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`weight ${name}: ${data.length} values for shape [${dims}]`);
    if (this.weightFormat === 'float16') {
      this.raw(`${name}.f16`, DataType.FLOAT16, dims, Buffer.from(toFloat16(data).buffer));
      this.opN('Cast', [`${name}.f16`], 1, { to: { i: DataType.FLOAT } }, [name]);
      return name;
    }
    if (this.weightFormat === 'int8' && dims.length === 2) {
      const { q, scale } = quantizeRows(data, dims[0], dims[1]);
      this.raw(`${name}.q`, DataType.INT8, dims, Buffer.from(q.buffer));
      this.raw(`${name}.scale`, DataType.FLOAT, [dims[0]], Buffer.from(scale.buffer));
      // per-axis DequantizeLinear (opset 13): row r times scale[r]
      this.opN('DequantizeLinear', [`${name}.q`, `${name}.scale`], 1, { axis: { i: 0 } }, [name]);
      return name;
    }
    this.raw(name, DataType.FLOAT, dims, Buffer.from(data.buffer, data.byteOffset, data.byteLength));
    return name;
  }

  private raw(name: string, dataType: number, dims: number[], bytes: Buffer): void {
    this.initializers.push({ name, dims, data_type: dataType, raw_data: bytes });
  }

  /** An int64 constant initializer (shared by value): a scalar when dims is [], else a vector. */
  ints(values: number[], dims: number[] = [values.length]): string {
    const key = `i64:${dims.join('x')}:${values.join(',')}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const_${this.constants.size}`;
    const raw = Buffer.from(BigInt64Array.from(values.map(BigInt)).buffer);
    this.initializers.push({ name, dims, data_type: DataType.INT64, raw_data: raw });
    this.constants.set(key, name);
    return name;
  }

  /** A float32 scalar constant (shared by value). */
  float(value: number): string {
    const key = `f32:${value}`;
    const known = this.constants.get(key);
    if (known) return known;
    const name = `const_${this.constants.size}`;
    const raw = Buffer.from(Float32Array.of(value).buffer);
    this.initializers.push({ name, dims: [], data_type: DataType.FLOAT, raw_data: raw });
    this.constants.set(key, name);
    return name;
  }

  /** Mean over the last axis, keeping it (as the opset in use spells ReduceMean). */
  meanLast(x: string): string {
    return this.opset >= 18
      ? this.op('ReduceMean', [x, this.ints([-1])], { keepdims: { i: 1 } })
      : this.op('ReduceMean', [x], { axes: { ints: [-1] }, keepdims: { i: 1 } });
  }

  /** Adds a node; returns its single output's name ("" inputs are omitted optional ones). */
  op(type: string, inputs: string[], attrs: Record<string, Attr> = {}, output?: string): string {
    return this.opN(type, inputs, 1, attrs, output ? [output] : undefined)[0];
  }

  /** Adds a node with n outputs (named `outputs`, or fresh names). */
  opN(type: string, inputs: string[], n: number, attrs: Record<string, Attr> = {}, outputs?: string[]): string[] {
    const id = this.count++;
    const out = outputs ?? Array.from({ length: n }, (_, k) => `${type.toLowerCase()}_${id}${n > 1 ? `_${k}` : ''}`);
    this.nodes.push({
      name: `${type}_${id}`,
      op_type: type,
      input: inputs,
      output: out,
      attribute: Object.entries(attrs).map(([k, v]) => attribute(k, v)),
    });
    return out;
  }

  /** Bytes of all initializers (the weights and constants): what the model file holds inline. */
  get initializerBytes(): number {
    return this.initializers.reduce((n, t) => n + t.raw_data.length, 0);
  }

  encode(o: { opset: number; irVersion: number; producerVersion: string; doc?: string }): Uint8Array {
    return this.encodeWith(this.initializers, o);
  }

  /**
   * The model with its large initializers in external data chunks (TensorProto data_location
   * EXTERNAL, external_data location/offset/length, as onnx.external_data_helper writes them):
   * the model bytes, and each chunk's bytes in order.
   */
  encodeExternal(
    o: { opset: number; irVersion: number; producerVersion: string; doc?: string },
    ext: ExternalDataOptions,
  ): { model: Uint8Array; chunks: Buffer[] } {
    const threshold = ext.threshold ?? 1024;
    const chunks: Buffer[][] = [];
    let [chunk, used] = [-1, Infinity];
    const initializers = this.initializers.map((t) => {
      if (t.raw_data.length < threshold) return t;
      let offset = Math.ceil(used / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
      if (offset + t.raw_data.length > ext.chunkBytes && used > 0) {
        chunks.push([]);
        [chunk, offset] = [chunk + 1, 0];
      }
      if (offset > used) chunks[chunk].push(Buffer.alloc(offset - used));
      chunks[chunk].push(t.raw_data);
      used = offset + t.raw_data.length;
      return {
        name: t.name,
        dims: t.dims,
        data_type: t.data_type,
        data_location: DataLocation.EXTERNAL,
        external_data: [
          { key: 'location', value: ext.location(chunk) },
          { key: 'offset', value: String(offset) },
          { key: 'length', value: String(t.raw_data.length) },
        ],
      };
    });
    return { model: this.encodeWith(initializers, o), chunks: chunks.map((parts) => Buffer.concat(parts)) };
  }

  private encodeWith(
    initializers: object[],
    o: { opset: number; irVersion: number; producerVersion: string; doc?: string },
  ): Uint8Array {
    const model = {
      ir_version: o.irVersion,
      opset_import: [{ domain: '', version: o.opset }],
      producer_name: 'anneal',
      producer_version: o.producerVersion,
      doc_string: o.doc ?? '',
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    const err = ModelProto.verify(model);
    if (err) throw new Error(`ONNX model does not match onnx.proto: ${err}`);
    return ModelProto.encode(ModelProto.fromObject(model)).finish();
  }
}
