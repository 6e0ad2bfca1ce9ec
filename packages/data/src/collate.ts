// Collators: tokenized examples to padded batch arrays (plain typed arrays; the trainer
// makes tensors), with transformers' and TRL's conventions: labels are -100 where no loss
// is taken (padding, masked-out prompt or non-assistant tokens), causal labels are the
// input ids (the loss shifts them), MLM masks 15% of tokens 80/10/10, preference batches
// put all chosen rows first and all rejected rows after them.
import { Rng } from '@anneal/core';
import type { TokenizedSequence } from './tokenize.js';

export const IGNORE = -100;

export interface PadOptions {
  padId: number;
  /** Pad the batch length up to a multiple of this (e.g. 8 for tensor cores). */
  padToMultipleOf?: number;
  /** Pad to exactly this length instead of the longest row. */
  maxLength?: number;
  side?: 'left' | 'right';
}

export interface Batch {
  batchSize: number;
  length: number;
  /** [B * T] row-major. */
  inputIds: Int32Array;
  attentionMask: Int32Array;
  labels: Int32Array;
}

function widthOf(lengths: number[], o: PadOptions): number {
  let w = o.maxLength ?? Math.max(1, ...lengths);
  if (o.padToMultipleOf) w = Math.ceil(w / o.padToMultipleOf) * o.padToMultipleOf;
  return w;
}

/** Rows padded into one [B, T] batch; label(row, i) gives the label of token i of a row. */
function pad(rows: Int32Array[], o: PadOptions, label: (row: number, i: number) => number): Batch {
  const B = rows.length;
  const T = widthOf(
    rows.map((r) => r.length),
    o,
  );
  const inputIds = new Int32Array(B * T).fill(o.padId);
  const attentionMask = new Int32Array(B * T);
  const labels = new Int32Array(B * T).fill(IGNORE);
  rows.forEach((r, b) => {
    const n = Math.min(r.length, T);
    const off = o.side === 'left' ? T - n : 0;
    for (let i = 0; i < n; i++) {
      inputIds[b * T + off + i] = r[i];
      attentionMask[b * T + off + i] = 1;
      labels[b * T + off + i] = label(b, i);
    }
  });
  return { batchSize: B, length: T, inputIds, attentionMask, labels };
}

/** Causal LM / SFT: labels = ids where the loss mask is 1, else -100. */
export function collateCausal(seqs: TokenizedSequence[], o: PadOptions): Batch {
  return pad(
    seqs.map((s) => s.inputIds),
    o,
    (b, i) => (seqs[b].lossMask[i] ? seqs[b].inputIds[i] : IGNORE),
  );
}

export interface MlmOptions extends PadOptions {
  maskTokenId: number;
  vocabSize: number;
  /** Ids never masked ([CLS], [SEP], [PAD], ...). */
  specialIds: Set<number>;
  probability?: number;
  /** Whole-word masking: true when a token continues the previous word (e.g. WordPiece "##"). */
  continuesWord?: (id: number) => boolean;
  /**
   * The random draws: one generator for the batch (all rows' choices, then all replacements), or
   * a generator per row (its choices, then its replacements), e.g. seeded by the row's dataset
   * index so that a row is masked the same however a data-parallel batch is split.
   */
  rng: Rng | ((row: number) => Rng);
}

/**
 * Masked LM (BERT): each word is chosen with probability 15%; a chosen token becomes
 * [MASK] 80% of the time, a random token 10%, stays 10%; labels are the original ids at
 * chosen tokens and -100 elsewhere.
 */
export function collateMlm(rows: Int32Array[], o: MlmOptions): Batch {
  const p = o.probability ?? 0.15;
  const rngs = rows.map((_, b) => (typeof o.rng === 'function' ? o.rng(b) : o.rng));
  const chosen = rows.map((r, b) => {
    const pick = new Uint8Array(r.length);
    let current = false;
    for (let i = 0; i < r.length; i++) {
      if (o.specialIds.has(r[i])) {
        current = false;
        continue;
      }
      const continues = o.continuesWord?.(r[i]) && i > 0 && !o.specialIds.has(r[i - 1]);
      current = continues ? current : rngs[b].next() < p;
      pick[i] = current ? 1 : 0;
    }
    return pick;
  });
  const batch = pad(rows, o, (b, i) => (chosen[b][i] ? rows[b][i] : IGNORE));
  const T = batch.length;
  rows.forEach((r, b) => {
    const off = o.side === 'left' ? T - Math.min(r.length, T) : 0;
    for (let i = 0; i < Math.min(r.length, T); i++) {
      if (!chosen[b][i]) continue;
      const u = rngs[b].next();
      if (u < 0.8) batch.inputIds[b * T + off + i] = o.maskTokenId;
      else if (u < 0.9) batch.inputIds[b * T + off + i] = Math.floor(rngs[b].next() * o.vocabSize);
    }
  });
  return batch;
}

/** Classification: padded ids and one label per row. */
export function collateClassification(
  rows: Array<{ inputIds: Int32Array; label: number }>,
  o: PadOptions,
): Batch & { classLabels: Int32Array } {
  const batch = pad(
    rows.map((r) => r.inputIds),
    o,
    () => IGNORE,
  );
  return { ...batch, classLabels: Int32Array.from(rows.map((r) => r.label)) };
}

/**
 * Preference pairs for DPO and reward models: rows 0..B-1 are prompt + chosen, rows
 * B..2B-1 prompt + rejected, one length for all; labels cover the responses only.
 */
export function collatePreference(
  pairs: Array<{ prompt: Int32Array; chosen: Int32Array; rejected: Int32Array }>,
  o: PadOptions,
): Batch {
  const rows: Int32Array[] = [];
  const promptLen: number[] = [];
  for (const which of ['chosen', 'rejected'] as const) {
    for (const p of pairs) {
      const r = new Int32Array(p.prompt.length + p[which].length);
      r.set(p.prompt);
      r.set(p[which], p.prompt.length);
      rows.push(r);
      promptLen.push(p.prompt.length);
    }
  }
  return pad(rows, o, (b, i) => (i >= promptLen[b] ? rows[b][i] : IGNORE));
}

/** Prompt + completion rows (KTO's examples), right-padded; labels mask the prompt and the padding. */
export function collateCompletions(items: Array<{ prompt: Int32Array; completion: Int32Array }>, o: PadOptions): Batch {
  const rows = items.map((x) => {
    const r = new Int32Array(x.prompt.length + x.completion.length);
    r.set(x.prompt);
    r.set(x.completion, x.prompt.length);
    return r;
  });
  return pad(rows, o, (b, i) => (i >= items[b].prompt.length ? rows[b][i] : IGNORE));
}
