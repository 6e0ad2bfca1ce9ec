// Int8 absmax quantization per row (LLM.int8()'s vector-wise scaling, without its outlier
// decomposition): each row of a [rows, cols] matrix is stored as round(x / s) with
// s = max|row| / 127.
export interface QuantizedInt8 {
  rows: number;
  cols: number;
  codes: Int8Array;
  /** One scale per row. */
  scales: Float32Array;
}

export function quantizeInt8Rows(data: Float32Array, rows: number, cols: number): QuantizedInt8 {
  if (rows * cols !== data.length) throw new RangeError(`${data.length} values are not ${rows} x ${cols}`);
  const codes = new Int8Array(data.length);
  const scales = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(data[r * cols + c]));
    scales[r] = m / 127;
    for (let c = 0; c < cols; c++) codes[r * cols + c] = m > 0 ? Math.round((data[r * cols + c] / m) * 127) : 0;
  }
  return { rows, cols, codes, scales };
}

/** The values back; into `out` when given (a scratch buffer of at least rows x cols values). */
export function dequantizeInt8Rows(
  q: QuantizedInt8,
  out: Float32Array<ArrayBuffer> = new Float32Array(q.codes.length),
): Float32Array<ArrayBuffer> {
  for (let i = 0; i < q.codes.length; i++) out[i] = q.codes[i] * q.scales[Math.floor(i / q.cols)];
  return out.length === q.codes.length ? out : new Float32Array(out.buffer, out.byteOffset, q.codes.length);
}

export function storedBytesInt8(q: QuantizedInt8): number {
  return q.codes.byteLength + q.scales.byteLength;
}
