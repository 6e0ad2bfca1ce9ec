// A small builder for one ONNX graph: typed inputs and outputs (a dimension is a size or a
// symbol such as "batch_size"), float32 weights and int64 constants as initializers, and
// nodes added in topological order (each returns its output names). encode() writes the
// ModelProto bytes for a given opset and IR version.
import { AttrType, DataType, ModelProto } from './proto.js';

export type Dim = number | string;
export type ElemType = keyof typeof DataType;

/** An attribute value, tagged with its ONNX type (a plain number would not say int or float). */
export type Attr = { i: number } | { f: number } | { ints: number[] } | { floats: number[] } | { s: string };

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

export class OnnxGraph {
  private readonly nodes: object[] = [];
  private readonly initializers: object[] = [];
  private readonly inputs: Value[] = [];
  private readonly outputs: Value[] = [];
  private readonly constants = new Map<string, string>();
  private count = 0;

  constructor(readonly name: string) {
    if (!littleEndian) throw new Error('ONNX raw tensor data is little-endian; this machine is not');
  }

  input(name: string, elem: ElemType, dims: Dim[]): string {
    this.inputs.push(valueInfo(name, elem, dims));
    return name;
  }

  output(name: string, elem: ElemType, dims: Dim[]): void {
    this.outputs.push(valueInfo(name, elem, dims));
  }

  /** A float32 initializer (a weight), stored as raw bytes. */
  weight(name: string, data: Float32Array, dims: number[]): string {
    const size = dims.reduce((a, b) => a * b, 1);
    if (data.length !== size) throw new Error(`weight ${name}: ${data.length} values for shape [${dims}]`);
    const raw = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({ name, dims, data_type: DataType.FLOAT, raw_data: raw });
    return name;
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

  encode(o: { opset: number; irVersion: number; producerVersion: string; doc?: string }): Uint8Array {
    const model = {
      ir_version: o.irVersion,
      opset_import: [{ domain: '', version: o.opset }],
      producer_name: 'anneal',
      producer_version: o.producerVersion,
      doc_string: o.doc ?? '',
      graph: {
        name: this.name,
        node: this.nodes,
        initializer: this.initializers,
        input: this.inputs,
        output: this.outputs,
      },
    };
    const err = ModelProto.verify(model);
    if (err) throw new Error(`ONNX model does not match onnx.proto: ${err}`);
    return ModelProto.encode(ModelProto.fromObject(model)).finish();
  }
}
