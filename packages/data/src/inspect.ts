// What `anneal data inspect` reports about a prepared dataset: counts, a length
// histogram, how well packing would fill rows, and the bad rows.
import { packBestFit, packGreedy } from './pack.js';
import type { PreparedDataset } from './dataset.js';
import type { TokenizedSequence } from './tokenize.js';

export interface DatasetReport {
  rows: number;
  trainExamples: number;
  evalExamples: number;
  tokens: number;
  lengths: { min: number; mean: number; max: number; histogram: Array<{ from: number; to: number; count: number }> };
  /** Packing into maxLength rows (sequence formats): best-fit's share of slots filled, greedy's share of tokens kept. */
  packing?: { greedy: number; bestFit: number; rowsBestFit: number };
  badRows: number;
  firstBadRows: string[];
  cached: boolean;
}

export function inspectDataset(d: PreparedDataset, maxLength: number, bins = 8): DatasetReport {
  const lengths = d.train.map((t) =>
    t.kind === 'preference'
      ? t.prompt.length + Math.max(t.chosen.length, t.rejected.length)
      : t.kind === 'unpaired'
        ? t.prompt.length + t.completion.length
        : t.inputIds.length,
  );
  const max = Math.max(0, ...lengths);
  const min = lengths.length ? Math.min(...lengths) : 0;
  const width = Math.max(1, Math.ceil((max + 1) / bins));
  const histogram = Array.from({ length: bins }, (_, i) => ({ from: i * width, to: (i + 1) * width - 1, count: 0 }));
  for (const n of lengths) histogram[Math.min(bins - 1, Math.floor(n / width))].count++;
  const seqs = d.train.filter((t): t is { kind: 'sequence' } & TokenizedSequence => t.kind === 'sequence');
  let packing: DatasetReport['packing'];
  if (seqs.length === d.train.length && seqs.length) {
    const bfd = packBestFit(seqs, maxLength, 0);
    // greedy cuts full rows and drops the remainder: the share of tokens it keeps
    const real = seqs.reduce((s, t) => s + t.inputIds.length, 0);
    packing = {
      greedy: (packGreedy(seqs, maxLength).rows * maxLength) / Math.max(real, 1),
      bestFit: bfd.efficiency,
      rowsBestFit: bfd.rows,
    };
  }
  return {
    rows: d.stats.rows,
    trainExamples: d.train.length,
    evalExamples: d.eval.length,
    tokens: d.stats.tokens,
    lengths: {
      min,
      mean: lengths.reduce((s, n) => s + n, 0) / Math.max(1, lengths.length),
      max,
      histogram: histogram.filter((h) => h.from <= max),
    },
    packing,
    badRows: d.stats.badRows.count,
    firstBadRows: d.stats.badRows.lines(),
    cached: d.stats.cached,
  };
}

/** The report as the CLI prints it. */
export function formatReport(r: DatasetReport): string {
  const most = Math.max(1, ...r.lengths.histogram.map((h) => h.count));
  const lines = [
    `rows read: ${r.rows}${r.cached ? ' (tokenized data from the cache)' : ''}`,
    `examples: ${r.trainExamples} train, ${r.evalExamples} eval; tokens: ${r.tokens}`,
    `length (train): min ${r.lengths.min}, mean ${r.lengths.mean.toFixed(1)}, max ${r.lengths.max}`,
    ...r.lengths.histogram.map(
      (h) =>
        `  ${String(h.from).padStart(6)}-${String(h.to).padEnd(6)} ${'#'.repeat(Math.round((40 * h.count) / most)).padEnd(40)} ${h.count}`,
    ),
  ];
  if (r.packing)
    lines.push(
      `packing into rows of maxLength: best-fit ${(100 * r.packing.bestFit).toFixed(1)}% of slots filled (${r.packing.rowsBestFit} rows, documents kept whole); greedy keeps ${(100 * r.packing.greedy).toFixed(1)}% of tokens (documents split across rows)`,
    );
  lines.push(
    r.badRows ? `bad rows skipped: ${r.badRows}\n${r.firstBadRows.map((b) => `  ${b}`).join('\n')}` : 'bad rows: none',
  );
  return lines.join('\n');
}
