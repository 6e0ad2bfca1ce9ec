// The event files are checked with a decoder written here from the formats' specs
// (TFRecord framing, CRC32C bit by bit, protobuf wire format), sharing no code with
// the writer (which uses protobufjs and the crc-32 package).
import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SummaryWriter } from './writer.js';

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
function readRecords(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let off = 0;
  while (off < buf.length) {
    if (off + 12 > buf.length) throw new Error(`record ${out.length} at offset ${off}: truncated header`);
    const len = Number(buf.readBigUInt64LE(off));
    if (buf.readUInt32LE(off + 8) !== masked(crc32c(buf.subarray(off, off + 8)))) throw new Error(`record ${out.length} at offset ${off}: length CRC mismatch`);
    const data = buf.subarray(off + 12, off + 12 + len);
    if (data.length !== len || off + 16 + len > buf.length) throw new Error(`record ${out.length} at offset ${off}: truncated data`);
    if (buf.readUInt32LE(off + 12 + len) !== masked(crc32c(data))) throw new Error(`record ${out.length} at offset ${off}: data CRC mismatch`);
    out.push(data);
    off += 16 + len;
  }
  return out;
}

type Field = { no: number; wire: number; value: bigint | Buffer | number };
/** Minimal protobuf decoder: a list of (field number, wire type, value). */
function fields(buf: Buffer): Field[] {
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
const get = (fs: Field[], no: number) => fs.find((f) => f.no === no)?.value;
const all = (fs: Field[], no: number) => fs.filter((f) => f.no === no).map((f) => f.value);

function decodeEvents(file: string) {
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

describe('SummaryWriter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-tb-'));
  const w = new SummaryWriter(dir);
  w.scalar('train/loss', 2.5, 10);
  w.scalar('eval/loss', 0.125, 20);
  w.text('samples', 'Call me **Ishmael**', 20);
  w.histogram('weights', [0, 1, 1, 2, 3], 20, 3);
  w.hparams({ 'optim.lr': 0.003, recipe: 'clm', tied: true }, ['eval/loss']);
  w.sessionStart(15);
  w.hparamsEnd(true);
  w.flush();

  it('names the file as TensorFlow does', () => {
    expect(readdirSync(dir)).toEqual([w.file.split('/').pop()]);
    expect(w.file).toMatch(/events\.out\.tfevents\.\d+\..+\.\d+\.0$/);
  });

  const events = decodeEvents(w.file);

  it('starts with the brain.Event:2 file_version record', () => {
    expect(events[0].fileVersion).toBe('brain.Event:2');
    expect(events[0].wallTime).toBeGreaterThan(1.7e9);
  });

  it('writes scalars with tag, step and value', () => {
    const scalars = events.flatMap((e) => e.values.filter((v) => v.simple !== undefined).map((v) => [v.tag, e.step, v.simple, v.plugin]));
    expect(scalars).toEqual([
      ['train/loss', 10, 2.5, 'scalars'],
      ['eval/loss', 20, 0.125, 'scalars'],
    ]);
  });

  it('writes text as a string tensor for the text plugin', () => {
    const t = events.flatMap((e) => e.values).find((v) => v.tag === 'samples')!;
    expect(t.plugin).toBe('text');
    expect(t.strings).toEqual(['Call me **Ishmael**']);
  });

  it('writes a histogram with counts in each bucket', () => {
    const h = fields(events.flatMap((e) => e.values).find((v) => v.tag === 'weights')!.histo!);
    expect([get(h, 1), get(h, 2), get(h, 3), get(h, 4), get(h, 5)]).toEqual([0, 3, 5, 7, 15]);
    // Parsers must accept repeated doubles packed (one length-delimited field) or not.
    const packed = (no: number) =>
      all(h, no).flatMap((v) => (Buffer.isBuffer(v) ? Array.from({ length: v.length / 8 }, (_, i) => v.readDoubleLE(8 * i)) : [v as number]));
    expect(packed(7)).toEqual([1, 2, 2]); // [0,1) [1,2) [2,3]
    expect(packed(6)).toEqual([1, 2, 3]);
  });

  it('writes the HParams plugin experiment, session start and end', () => {
    const hp = events.flatMap((e) => e.values).filter((v) => v.plugin === 'hparams');
    expect(hp.map((v) => v.tag)).toEqual(['_hparams_/experiment', '_hparams_/session_start_info', '_hparams_/session_end_info']);
    const experiment = fields(get(fields(hp[0].pluginContent!), 2) as Buffer);
    const hparamNames = all(experiment, 4).map((b) => (get(fields(b as Buffer), 1) as Buffer).toString());
    expect(hparamNames).toEqual(['optim.lr', 'recipe', 'tied']);
    const metric = fields(get(fields(all(experiment, 5)[0] as Buffer), 1) as Buffer);
    expect((get(metric, 2) as Buffer).toString()).toBe('eval/loss');
    const start = fields(get(fields(hp[1].pluginContent!), 3) as Buffer);
    const entries = all(start, 1).map((b) => fields(b as Buffer));
    const lr = entries.find((e) => (get(e, 1) as Buffer).toString() === 'optim.lr')!;
    expect(get(fields(get(lr, 2) as Buffer), 2)).toBe(0.003);
    const end = fields(get(fields(hp[2].pluginContent!), 4) as Buffer);
    expect(get(end, 1)).toBe(1n);
  });

  it('marks a restart with SessionLog START at the resume step', () => {
    const restart = events.find((e) => e.sessionLog)!;
    expect(restart.step).toBe(15);
    expect(get(fields(restart.sessionLog!), 1)).toBe(1n);
  });

  it('has CRCs that catch a corrupted byte, reported with the record and offset', () => {
    const buf = readFileSync(w.file);
    const records = readRecords(buf);
    // Flip one byte inside the data of the second record.
    const off = 16 + records[0].length + 12 + 3;
    const bad = Buffer.from(buf);
    bad[off] ^= 0xff;
    const file = join(dir, 'corrupt');
    writeFileSync(file, bad);
    expect(() => readRecords(readFileSync(file))).toThrow(`record 1 at offset ${16 + records[0].length}: data CRC mismatch`);
    const badLen = Buffer.from(buf);
    badLen[0] ^= 0x01;
    expect(() => readRecords(badLen)).toThrow('record 0 at offset 0: length CRC mismatch');
  });
});
