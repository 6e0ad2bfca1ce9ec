// Writes TensorBoard event files (events.out.tfevents.*) without TensorFlow:
// scalars, text, histograms and the HParams plugin's session summaries.
import { appendFileSync, openSync, closeSync, fsyncSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DT_STRING, Event, HParamsPluginData } from './protos.js';
import { frameRecord } from './tfrecord.js';
import { makeDir, writing } from '../storage.js';

type HParamValue = string | number | boolean;

function pluginMeta(pluginName: string, content: Uint8Array = new Uint8Array(0), dataClass = 0) {
  return { plugin_data: { plugin_name: pluginName, content }, data_class: dataClass };
}

function toValue(v: HParamValue) {
  if (typeof v === 'number') return { number_value: v };
  if (typeof v === 'boolean') return { bool_value: v };
  return { string_value: v };
}

export class SummaryWriter {
  readonly file: string;

  /** Opens a new event file in `logdir` (one per process, as TensorFlow does). */
  constructor(readonly logdir: string) {
    makeDir(logdir);
    const secs = Math.floor(Date.now() / 1000);
    this.file = join(logdir, `events.out.tfevents.${secs}.${hostname()}.${process.pid}.0`);
    writing(this.file, () => closeSync(openSync(this.file, 'a')));
    this.write({ file_version: 'brain.Event:2' }, 0);
  }

  private write(what: Record<string, unknown>, step: number): void {
    const msg = Event.fromObject({ wall_time: Date.now() / 1000, step, ...what });
    writing(this.file, () => appendFileSync(this.file, frameRecord(Event.encode(msg).finish())));
  }

  /**
   * Marks a restart at `step`: TensorBoard then drops events with a larger step
   * written by the interrupted process, so a resumed run shows one clean curve.
   */
  sessionStart(step: number): void {
    this.write({ session_log: { status: 1 } }, step);
  }

  scalar(tag: string, value: number, step: number): void {
    this.write(
      { summary: { value: [{ tag, simple_value: value, metadata: pluginMeta('scalars', undefined, 1) }] } },
      step,
    );
  }

  /** Markdown text, shown in the Text tab. */
  text(tag: string, markdown: string, step: number): void {
    const tensor = { dtype: DT_STRING, tensor_shape: { dim: [] }, string_val: [Buffer.from(markdown, 'utf8')] };
    this.write({ summary: { value: [{ tag, tensor, metadata: pluginMeta('text', undefined, 2) }] } }, step);
  }

  /** A histogram of `values` with `bins` equal-width buckets. */
  histogram(tag: string, values: ArrayLike<number>, step: number, bins = 30): void {
    let min = Infinity;
    let max = -Infinity;
    let sum = 0;
    let sumSq = 0;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      min = Math.min(min, v);
      max = Math.max(max, v);
      sum += v;
      sumSq += v * v;
    }
    if (values.length === 0) min = max = 0;
    const width = (max - min) / bins || 1;
    const counts = new Array<number>(bins).fill(0);
    for (let i = 0; i < values.length; i++) counts[Math.min(bins - 1, Math.floor((values[i] - min) / width))]++;
    const limits = counts.map((_, i) => (i === bins - 1 ? max : min + (i + 1) * width));
    const histo = { min, max, num: values.length, sum, sum_squares: sumSq, bucket_limit: limits, bucket: counts };
    this.write({ summary: { value: [{ tag, histo }] } }, step);
  }

  private hparamsSummary(tag: string, data: Record<string, unknown>): void {
    const content = HParamsPluginData.encode(HParamsPluginData.fromObject({ version: 0, ...data })).finish();
    const tensor = { dtype: DT_STRING, tensor_shape: { dim: [] }, string_val: [] };
    this.write({ summary: { value: [{ tag, tensor, metadata: pluginMeta('hparams', content) }] } }, 0);
  }

  /**
   * HParams plugin: this run's session and its hyperparameters. No experiment summary is
   * written: TensorBoard uses the first `_hparams_/experiment` it finds for the whole logdir,
   * so one per run would hide the columns and metrics of every other recipe. Without one it
   * builds the experiment from all runs' session_start_info (every hyperparameter of every
   * run) and their scalar tags (every metric), as its HParams plugin documents.
   */
  hparams(hparams: Record<string, HParamValue>, startTimeSecs = Date.now() / 1000): void {
    const values = Object.fromEntries(Object.entries(hparams).map(([k, v]) => [k, toValue(v)]));
    this.hparamsSummary('_hparams_/session_start_info', {
      session_start_info: { hparams: values, start_time_secs: startTimeSecs },
    });
  }

  /** HParams plugin: marks the session finished (status 1 success, 2 failure). */
  hparamsEnd(success: boolean): void {
    this.hparamsSummary('_hparams_/session_end_info', {
      session_end_info: { status: success ? 1 : 2, end_time_secs: Date.now() / 1000 },
    });
  }

  /** Forces the file to disk. */
  flush(): void {
    const fd = openSync(this.file, 'r+');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }
}
