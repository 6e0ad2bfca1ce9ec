// Where a run's numbers go: metrics.jsonl (one JSON object per logging step) and
// TensorBoard event files in the run folder. Metric names are stable ("train/loss",
// "eval/loss", ...) and identical in both.
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { writing } from './storage.js';
import { SummaryWriter } from './tensorboard/writer.js';

export class RunLogger {
  readonly metricsFile: string;
  readonly tb: SummaryWriter;

  /**
   * `resumeStep`: when continuing a run, records written after that step by the
   * interrupted process are dropped (from metrics.jsonl here, and in TensorBoard by a
   * SessionLog START event), so the logs read as one uninterrupted run.
   */
  constructor(runDir: string, resumeStep?: number) {
    this.metricsFile = join(runDir, 'metrics.jsonl');
    if (resumeStep !== undefined && existsSync(this.metricsFile)) {
      const kept = readFileSync(this.metricsFile, 'utf8')
        .split('\n')
        .filter((line) => {
          if (!line.trim()) return false;
          try {
            return (JSON.parse(line) as { step: number }).step <= resumeStep;
          } catch {
            return false; // a line cut short by a crash
          }
        });
      writeFileAtomic(this.metricsFile, kept.map((l) => l + '\n').join(''));
    }
    this.tb = new SummaryWriter(runDir);
    if (resumeStep !== undefined) this.tb.sessionStart(resumeStep);
  }

  scalars(step: number, values: Record<string, number>): void {
    writing(this.metricsFile, () =>
      appendFileSync(this.metricsFile, JSON.stringify({ step, time: new Date().toISOString(), ...values }) + '\n'),
    );
    for (const [tag, v] of Object.entries(values)) this.tb.scalar(tag, v, step);
  }

  text(tag: string, markdown: string, step: number): void {
    this.tb.text(tag, markdown, step);
  }

  /** Reads metrics.jsonl back (for tests and summaries). */
  static read(runDir: string): Array<Record<string, number>> {
    const f = join(runDir, 'metrics.jsonl');
    if (!existsSync(f)) return [];
    return readFileSync(f, 'utf8')
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l));
  }
}
