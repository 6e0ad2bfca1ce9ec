// Packing tokenized sequences into fixed-length rows, two ways:
// - greedy: concatenate everything (EOS between documents) and cut blocks of blockSize,
//   as transformers' run_clm group_texts; documents are split across rows and attend to
//   each other within a row;
// - best-fit decreasing: whole documents placed longest first into the row with the least
//   room that fits them (Johnson 1973; the packing of TRL's SFTTrainer "bfd"), each row
//   carrying per-token document ids and position ids restarted per document, so attention
//   and positions do not cross documents.
import type { TokenizedSequence } from './tokenize.js';

export interface PackedRows {
  blockSize: number;
  /** [rows * blockSize] token ids (padded with padId after the last document of a row). */
  inputIds: Int32Array;
  /** 1 where a token is a loss target (0 on padding). */
  lossMask: Uint8Array;
  /** Position of each token within its document (0 on padding). */
  positionIds: Int32Array;
  /** 1-based document number within its row; 0 on padding. */
  documentIds: Int32Array;
  rows: number;
  /** Real tokens / (rows * blockSize). */
  efficiency: number;
}

/** Concatenate with EOS separators and cut into blocks (the remainder is dropped). */
export function packGreedy(seqs: TokenizedSequence[], blockSize: number, eosId?: number): PackedRows {
  const ids: number[] = [];
  const mask: number[] = [];
  for (const s of seqs) {
    for (let i = 0; i < s.inputIds.length; i++) {
      ids.push(s.inputIds[i]);
      mask.push(s.lossMask[i]);
    }
    if (eosId !== undefined && s.inputIds[s.inputIds.length - 1] !== eosId) {
      ids.push(eosId);
      mask.push(1);
    }
  }
  const rows = Math.floor(ids.length / blockSize);
  const n = rows * blockSize;
  const positionIds = new Int32Array(n);
  const documentIds = new Int32Array(n).fill(1);
  for (let i = 0; i < n; i++) positionIds[i] = i % blockSize;
  return {
    blockSize,
    inputIds: Int32Array.from(ids.slice(0, n)),
    lossMask: Uint8Array.from(mask.slice(0, n)),
    positionIds,
    documentIds,
    rows,
    efficiency: rows ? 1 : 0,
  };
}

/**
 * Best-fit decreasing: documents (each at most blockSize long; truncate them first) go
 * longest first into the fullest row that still has room, or a new row.
 */
export function packBestFit(seqs: TokenizedSequence[], blockSize: number, padId: number): PackedRows {
  // Longest first, ties in input order: a counting sort by length (lengths are at most blockSize).
  const byLength: number[][] = Array.from({ length: blockSize + 1 }, () => []);
  seqs.forEach((s, i) => {
    if (s.inputIds.length > blockSize)
      throw new RangeError(
        `a document of ${s.inputIds.length} tokens does not fit in blockSize ${blockSize}; truncate first`,
      );
    byLength[s.inputIds.length].push(i);
  });
  const order: Array<readonly [number, number]> = [];
  for (let len = blockSize; len > 0; len--) for (const i of byLength[len]) order.push([len, i]);
  const bins: number[][] = []; // document indices per row
  const free: number[] = [];
  // Rows by free space: the best fit for a document of length L is any row in the first
  // non-empty bucket at L or above (O(blockSize) per document, not O(rows)).
  const byFree: number[][] = Array.from({ length: blockSize + 1 }, () => []);
  for (const [len, i] of order) {
    let best = -1;
    for (let f = len; f <= blockSize && best < 0; f++) if (byFree[f].length) best = byFree[f].pop()!;
    if (best < 0) {
      bins.push([]);
      free.push(blockSize);
      best = bins.length - 1;
    }
    bins[best].push(i);
    free[best] -= len;
    byFree[free[best]].push(best);
  }
  const rows = bins.length;
  const inputIds = new Int32Array(rows * blockSize).fill(padId);
  const lossMask = new Uint8Array(rows * blockSize);
  const positionIds = new Int32Array(rows * blockSize);
  const documentIds = new Int32Array(rows * blockSize);
  const arange = Int32Array.from({ length: blockSize }, (_, t) => t);
  let real = 0;
  bins.forEach((docs, r) => {
    let at = r * blockSize;
    docs.forEach((d, k) => {
      const s = seqs[d];
      const n = s.inputIds.length;
      inputIds.set(s.inputIds, at);
      lossMask.set(s.lossMask, at);
      positionIds.set(arange.subarray(0, n), at);
      documentIds.fill(k + 1, at, at + n);
      at += n;
      real += n;
    });
  });
  return {
    blockSize,
    inputIds,
    lossMask,
    positionIds,
    documentIds,
    rows,
    efficiency: rows ? real / (rows * blockSize) : 0,
  };
}

/** Row r of a packing as [blockSize] views. */
export function packedRow(
  p: PackedRows,
  r: number,
): { inputIds: Int32Array; lossMask: Uint8Array; positionIds: Int32Array; documentIds: Int32Array } {
  const [a, b] = [r * p.blockSize, (r + 1) * p.blockSize];
  return {
    inputIds: p.inputIds.subarray(a, b),
    lossMask: p.lossMask.subarray(a, b),
    positionIds: p.positionIds.subarray(a, b),
    documentIds: p.documentIds.subarray(a, b),
  };
}
