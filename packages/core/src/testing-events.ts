// Test support: TensorBoard event files decoded with code written from the formats' specs
// (TFRecord framing, CRC-32C bit by bit, protobuf wire format), sharing no code with the
// writer (which uses protobufjs and the crc-32 package), so tests of what we write do not
// trust the writer's own encoding.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

// CRC-32C (Castagnoli), reflected polynomial 0x82F63B78, bitwise.
function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
const masked = (c: number) => ((((c >>> 15) | (c << 17)) >>> 0) + 0xa282ead8) >>> 0;

/** TFRecord reader that validates both CRCs and names the record and offset that fail. */
export function readRecords(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 12 > buf.length) throw new Error(`record ${out.length} at offset ${off}: truncated header`);
    const len = Number(buf.readBigUInt64LE(off));
    if (buf.readUInt32LE(off + 8) !== masked(crc32c(buf.subarray(off, off + 8))))
      throw new Error(`record ${out.length} at offset ${off}: length CRC mismatch`);
    const data = buf.subarray(off + 12, off + 12 + len);
    if (data.length !== len || off + 16 + len > buf.length)
      throw new Error(`record ${out.length} at offset ${off}: truncated data`);
    if (buf.readUInt32LE(off + 12 + len) !== masked(crc32c(data)))
      throw new Error(`record ${out.length} at offset ${off}: data CRC mismatch`);
    out.push(data);
    off += 16 + len;
  }
  return out;
}

export type Field = { no: number; wire: number; value: bigint | Buffer | number };
/** Minimal protobuf decoder: a list of (field number, wire type, value). */
export function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let i = 0;
  const varint = () => {
    let r = 0n;
    let s = 0n;
    for (;;) {
      const b = buf[i++];
      r |= BigInt(b & 0x7f) << s;
      if (!(b & 0x80)) return r;
      s += 7n;
    }
  };
  while (i < buf.length) {
    const key = Number(varint());
    const no = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ no, wire, value: varint() });
    else if (wire === 1) {
      out.push({ no, wire, value: buf.readDoubleLE(i) });
      i += 8;
    } else if (wire === 5) {
      out.push({ no, wire, value: buf.readFloatLE(i) });
      i += 4;
    } else if (wire === 2) {
      const n = Number(varint());
      out.push({ no, wire, value: buf.subarray(i, i + n) });
      i += n;
    } else throw new Error(`wire type ${wire}`);
  }
  return out;
}
export const get = (fs: Field[], no: number) => fs.find((f) => f.no === no)?.value;
export const all = (fs: Field[], no: number) => fs.filter((f) => f.no === no).map((f) => f.value);

export function decodeEvents(file: string) {
  return readRecords(readFileSync(file)).map((rec) => {
    const ev = fields(rec);
    const summary = get(ev, 5) as Buffer | undefined;
    const values = summary
      ? all(fields(summary), 1).map((v) => {
          const fv = fields(v as Buffer);
          const meta = get(fv, 9) as Buffer | undefined;
          const plugin = meta ? fields(get(fields(meta), 1) as Buffer) : [];
          const tensor = get(fv, 8) as Buffer | undefined;
          return {
            tag: (get(fv, 1) as Buffer).toString(),
            simple: get(fv, 2) as number | undefined,
            plugin: plugin.length ? (get(plugin, 1) as Buffer).toString() : undefined,
            pluginContent: plugin.length ? (get(plugin, 2) as Buffer | undefined) : undefined,
            strings: tensor ? all(fields(tensor), 8).map((b) => (b as Buffer).toString()) : [],
            histo: get(fv, 5) as Buffer | undefined,
          };
        })
      : [];
    return {
      wallTime: get(ev, 1) as number,
      step: Number(get(ev, 2) ?? 0n),
      fileVersion: (get(ev, 3) as Buffer | undefined)?.toString(),
      sessionLog: get(ev, 7) as Buffer | undefined,
      values,
    };
  });
}

/** Every event of every event file under `logdir` (recursively), keyed by the run folder (relative). */
export function decodeLogdir(logdir: string): Map<string, ReturnType<typeof decodeEvents>> {
  const out = new Map<string, ReturnType<typeof decodeEvents>>();
  const walk = (dir: string, rel: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(dir, e.name), rel ? `${rel}/${e.name}` : e.name);
      else if (e.name.startsWith('events.out.tfevents.'))
        out.set(rel, [...(out.get(rel) ?? []), ...decodeEvents(join(dir, e.name))]);
    }
  };
  walk(logdir, '');
  return out;
}
