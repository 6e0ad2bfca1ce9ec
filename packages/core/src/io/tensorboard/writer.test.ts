// The event files are checked with the decoder in testing-events.ts, written from the
// formats' specs and sharing no code with the writer.
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { all, decodeEvents, decodeLogdir, fields, get, readRecords } from '../../testing-events.js';
import { SummaryWriter } from './writer.js';

describe('SummaryWriter', () => {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-tb-'));
  const w = new SummaryWriter(dir);
  w.scalar('train/loss', 2.5, 10);
  w.scalar('eval/loss', 0.125, 20);
  w.text('samples', 'Call me **Ishmael**', 20);
  w.histogram('weights', [0, 1, 1, 2, 3], 20, 3);
  w.hparams({ 'optim.lr': 0.003, recipe: 'clm', tied: true });
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
    const scalars = events.flatMap((e) =>
      e.values.filter((v) => v.simple !== undefined).map((v) => [v.tag, e.step, v.simple, v.plugin]),
    );
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
      all(h, no).flatMap((v) =>
        Buffer.isBuffer(v) ? Array.from({ length: v.length / 8 }, (_, i) => v.readDoubleLE(8 * i)) : [v as number],
      );
    expect(packed(7)).toEqual([1, 2, 2]); // [0,1) [1,2) [2,3]
    expect(packed(6)).toEqual([1, 2, 3]);
  });

  it('writes the HParams plugin session start (every hyperparameter) and end, and no experiment summary', () => {
    const hp = events.flatMap((e) => e.values).filter((v) => v.plugin === 'hparams');
    expect(hp.map((v) => v.tag)).toEqual(['_hparams_/session_start_info', '_hparams_/session_end_info']);
    const start = fields(get(fields(hp[0].pluginContent!), 3) as Buffer);
    const entries = all(start, 1).map((b) => fields(b as Buffer));
    expect(entries.map((e) => (get(e, 1) as Buffer).toString())).toEqual(['optim.lr', 'recipe', 'tied']);
    const lr = entries.find((e) => (get(e, 1) as Buffer).toString() === 'optim.lr')!;
    expect(get(fields(get(lr, 2) as Buffer), 2)).toBe(0.003);
    const end = fields(get(fields(hp[1].pluginContent!), 4) as Buffer);
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
    expect(() => readRecords(readFileSync(file))).toThrow(
      `record 1 at offset ${16 + records[0].length}: data CRC mismatch`,
    );
    const badLen = Buffer.from(buf);
    badLen[0] ^= 0x01;
    expect(() => readRecords(badLen)).toThrow('record 0 at offset 0: length CRC mismatch');
  });
});

describe('runs of different recipes in one logdir (TensorBoard HParams tab)', () => {
  // TensorBoard uses the first _hparams_/experiment it finds for the whole logdir; with none, it
  // builds the experiment from every run's session_start_info and every run's scalar tags
  // (tensorboard/plugins/hparams/backend_context.py). Here: what it would build.
  const logdir = mkdtempSync(join(tmpdir(), 'anneal-tb-runs-'));
  const runs: Array<[string, Record<string, number | string | boolean>, string[]]> = [
    ['clm-small', { recipe: 'clm', 'optim.lr': 0.003, 'model.config.nLayer': 2 }, ['train/loss', 'eval/perplexity']],
    ['dpo-beta', { recipe: 'dpo', 'optim.lr': 5e-7, 'dpo.beta': 0.1 }, ['train/loss', 'eval/rewards/accuracies']],
    ['ppo', { recipe: 'ppo', 'optim.lr': 1e-6, 'ppo.klCoef': 0.05 }, ['objective/scores']],
  ];
  for (const [name, hp, metrics] of runs) {
    mkdirSync(join(logdir, name));
    const w = new SummaryWriter(join(logdir, name));
    w.hparams(hp);
    metrics.forEach((m, i) => w.scalar(m, i, 1));
    w.hparamsEnd(true);
  }
  const byRun = decodeLogdir(logdir);

  it('no run writes an experiment summary, so TensorBoard builds one from all runs', () => {
    expect([...byRun.keys()].sort()).toEqual(['clm-small', 'dpo-beta', 'ppo']);
    for (const events of byRun.values())
      expect(events.flatMap((e) => e.values).map((v) => v.tag)).not.toContain('_hparams_/experiment');
  });

  it('every hyperparameter and metric of every recipe is in the experiment, and differing columns differ', () => {
    const sessions = new Map<string, Map<string, unknown>>();
    const metricTags = new Set<string>();
    for (const [run, events] of byRun) {
      const values = events.flatMap((e) => e.values);
      const start = values.find((v) => v.tag === '_hparams_/session_start_info')!;
      const hp = all(fields(get(fields(start.pluginContent!), 3) as Buffer), 1).map((b) => fields(b as Buffer));
      // hparams map entry: key (1), google.protobuf.Value (2) with number (2) or string (3) or bool (4)
      sessions.set(
        run,
        new Map(
          hp.map((e) => {
            const v = fields(get(e, 2) as Buffer);
            return [
              (get(e, 1) as Buffer).toString(),
              get(v, 2) ?? (get(v, 3) as Buffer | undefined)?.toString() ?? get(v, 4),
            ];
          }),
        ),
      );
      for (const v of values) if (v.plugin === 'scalars') metricTags.add(v.tag);
    }
    const columns = new Set([...sessions.values()].flatMap((m) => [...m.keys()]));
    expect([...columns].sort()).toEqual(['dpo.beta', 'model.config.nLayer', 'optim.lr', 'ppo.klCoef', 'recipe']);
    expect([...metricTags].sort()).toEqual([
      'eval/perplexity',
      'eval/rewards/accuracies',
      'objective/scores',
      'train/loss',
    ]);
    const differs = (col: string) => new Set([...sessions.values()].map((m) => m.get(col))).size > 1;
    expect(['recipe', 'optim.lr'].map(differs)).toEqual([true, true]);
    expect(sessions.get('dpo-beta')!.get('dpo.beta')).toBeCloseTo(0.1);
  });
});
