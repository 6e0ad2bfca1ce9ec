import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError } from '../errors.js';
import { parseSafetensors, readSafetensors, serializeSafetensors } from './safetensors.js';

const FIXTURE = fileURLToPath(new URL('../../../../../shared/fixtures/hf/gpt2/model.safetensors', import.meta.url));

function withHeader(header: unknown, dataBytes: number): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(8 + json.length + dataBytes);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  json.copy(out, 8);
  return out;
}

describe('safetensors', () => {
  it('reads a file written by Python safetensors and writes it back byte for byte', () => {
    const original = readFileSync(FIXTURE);
    const { tensors, metadata } = parseSafetensors(original, FIXTURE);
    expect(metadata).toEqual({ format: 'pt' });
    expect(tensors.get('transformer.wte.weight')!.shape).toEqual([1000, 64]);
    const again = serializeSafetensors(
      new Map(
        [...tensors].map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data as Float32Array }]),
      ),
      metadata,
    );
    expect(Buffer.compare(again, original)).toBe(0);
  });

  it('decodes F16, BF16 and I64 (hand-checked bit patterns)', () => {
    const header = {
      h: { dtype: 'F16', shape: [3], data_offsets: [0, 6] },
      b: { dtype: 'BF16', shape: [2], data_offsets: [6, 10] },
      i: { dtype: 'I64', shape: [2], data_offsets: [10, 26] },
    };
    const buf = withHeader(header, 26);
    const d = 8 + JSON.stringify(header).length;
    buf.writeUInt16LE(0x3c00, d); // 1.0
    buf.writeUInt16LE(0xc000, d + 2); // -2.0
    buf.writeUInt16LE(0x0001, d + 4); // smallest subnormal 2^-24
    buf.writeUInt16LE(0x3f80, d + 6); // bf16 1.0
    buf.writeUInt16LE(0x4049, d + 8); // bf16 3.140625
    buf.writeBigInt64LE(-5n, d + 10);
    buf.writeBigInt64LE(123456789n, d + 18);
    const { tensors } = parseSafetensors(buf);
    expect(Array.from(tensors.get('h')!.data)).toEqual([1, -2, 2 ** -24]);
    expect(Array.from(tensors.get('b')!.data)).toEqual([1, 3.140625]);
    expect(Array.from(tensors.get('i')!.data)).toEqual([-5, 123456789]);
  });

  const bad: Array<[string, Buffer, RegExp]> = [
    ['a truncated file', Buffer.alloc(5), /shorter than the 8-byte header/],
    [
      'a header longer than the file',
      (() => {
        const b = Buffer.alloc(16);
        b.writeBigUInt64LE(1000n, 0);
        return b;
      })(),
      /exceeds the file size/,
    ],
    [
      'a header that is not JSON',
      (() => {
        const b = Buffer.alloc(12);
        b.writeBigUInt64LE(4n, 0);
        b.write('{{{{', 8);
        return b;
      })(),
      /not valid UTF-8 JSON/,
    ],
    [
      'an unknown dtype',
      withHeader({ x: { dtype: 'F8', shape: [1], data_offsets: [0, 1] } }, 1),
      /unsupported dtype "F8"/,
    ],
    [
      'offsets past the data',
      withHeader({ x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, 4),
      /run past the data section/,
    ],
    [
      'a size that does not match the shape',
      withHeader({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8),
      /needs 12/,
    ],
    [
      'overlapping tensors',
      withHeader(
        {
          x: { dtype: 'F32', shape: [2], data_offsets: [0, 8] },
          y: { dtype: 'F32', shape: [1], data_offsets: [4, 8] },
        },
        8,
      ),
      /overlap or hole/,
    ],
    [
      'trailing bytes',
      withHeader({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, 8),
      /cover 4 bytes but the data section has 8/,
    ],
  ];
  it.each(bad)('rejects %s before trusting any offset', (_, buf, msg) => {
    expect(() => parseSafetensors(buf, 'bad.safetensors')).toThrow(msg);
    expect(() => parseSafetensors(buf, 'bad.safetensors')).toThrow(FormatError);
    const file = join(mkdtempSync(join(tmpdir(), 'anneal-st-')), 'bad.safetensors');
    writeFileSync(file, buf);
    expect(() => readSafetensors(file)).toThrow(msg); // the file reader validates the same header
  });

  it('reads a file tensor by tensor, each when its data is asked for, equal to parsing it whole', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'anneal-st-')), 'gpt2.safetensors');
    writeFileSync(file, readFileSync(FIXTURE));
    const lazy = readSafetensors(file);
    const whole = parseSafetensors(readFileSync(FIXTURE), FIXTURE);
    expect(lazy.metadata).toEqual(whole.metadata);
    for (const [name, t] of whole.tensors)
      expect(Array.from(lazy.tensors.get(name)!.data), name).toEqual(Array.from(t.data));
    // the bytes come from the file on access: the last value of the data section, changed
    // after opening, reads changed (and in one tensor only)
    const bytes = readFileSync(file);
    bytes.writeFloatLE(42, bytes.length - 4);
    writeFileSync(file, bytes);
    const changed = [...whole.tensors].filter(([name, t]) =>
      lazy.tensors.get(name)!.data.some((v, i) => v !== t.data[i]),
    );
    expect(changed.length).toBe(1);
    expect(lazy.tensors.get(changed[0][0])!.data.at(-1)).toBe(42);
  });

  it('names the tensor whose entry is wrong', () => {
    try {
      parseSafetensors(
        withHeader({ 'lm.weight': { dtype: 'F32', shape: [-1], data_offsets: [0, 0] } }, 0),
        'w.safetensors',
      );
      expect.unreachable();
    } catch (e: any) {
      expect(e.field).toBe('lm.weight');
      expect(e.file).toBe('w.safetensors');
    }
  });
});
