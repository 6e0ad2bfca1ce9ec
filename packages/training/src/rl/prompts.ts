// The prompts of an online RL run: read from a JSONL/CSV/... file, each kept with its whole
// row (reward functions get the other columns, e.g. the answer a verifiable reward checks),
// tokenized, and split into train and held-out prompts by a seeded shuffle.
import { ConfigError, Rng, deriveSeed } from '@anneal/core';
import { readRows } from '@anneal/data';

export interface PromptRow {
  /** Token ids (truncated on the left to maxPromptLength, as TRL does). */
  ids: number[];
  /** The prompt text as the reward functions see it (decoded from the kept ids when truncated). */
  text: string;
  /** The dataset row, every column. */
  row: Record<string, unknown>;
}

export interface PromptSource {
  train: string;
  column: string;
  evalFraction: number;
}

export async function readPrompts(
  src: PromptSource,
  tok: { encode(text: string): number[]; decode(ids: number[]): string },
  o: { seed: number; maxPromptLength?: number },
): Promise<{ train: PromptRow[]; eval: PromptRow[] }> {
  const all: PromptRow[] = [];
  for await (const { row, at } of readRows({ path: src.train })) {
    const text = row[src.column];
    if (typeof text !== 'string')
      throw new ConfigError(`prompt column "${src.column}" is missing or not text at line ${at.line ?? at.row}`, {
        file: src.train,
        field: 'prompts.column',
        hint: `the row has ${Object.keys(row).join(', ') || 'no columns'}`,
      });
    let ids = tok.encode(text);
    const max = o.maxPromptLength;
    const cut = max !== undefined && ids.length > max;
    if (cut) ids = ids.slice(ids.length - max);
    all.push({ ids, text: cut ? tok.decode(ids) : text, row });
  }
  if (!all.length) throw new ConfigError(`no prompts in ${src.train}`, { file: src.train, field: 'prompts.train' });
  const order = Int32Array.from(all.keys());
  new Rng(deriveSeed(o.seed, 7)).shuffle(order);
  const nEval = Math.round(all.length * src.evalFraction);
  return {
    train: Array.from(order.subarray(0, order.length - nEval), (i) => all[i]),
    eval: Array.from(order.subarray(order.length - nEval), (i) => all[i]),
  };
}
