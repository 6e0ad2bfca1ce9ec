// Test helpers for the method packages: a tiny GPT-2 language model and its byte-level BPE
// (trained on the given texts) saved as a model folder, so recipe tests run in seconds.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel } from '@anneal/modeling';
import { trainByteLevelBpe } from '@anneal/tokenizers';

export async function tinyGpt2Dir(
  texts: string[],
  o: { vocabSize?: number; nLayer?: number; nEmbd?: number; seed?: number; nPositions?: number } = {},
): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-tiny-gpt2-'));
  const vocabSize = o.vocabSize ?? 300;
  const tok = await trainByteLevelBpe(texts, {
    vocabSize,
    specialTokens: ['<|endoftext|>'],
    eosToken: '<|endoftext|>',
    padToken: '<|endoftext|>',
  });
  tok.save(dir);
  await useBackend('cpu', {});
  await Gpt2LMHeadModel.init(
    {
      ...GPT2_DEFAULTS,
      vocabSize,
      nPositions: o.nPositions ?? 64,
      nLayer: o.nLayer ?? 1,
      nHead: 2,
      nEmbd: o.nEmbd ?? 32,
    },
    o.seed ?? 1,
  ).savePretrained(dir);
  return dir;
}

/** The shipped sentiment preference pairs (prompt, chosen, rejected), for the preference recipes' tests. */
export const SENTIMENT_PAIRS = fileURLToPath(new URL('../../../datasets/sentiment/preference.jsonl', import.meta.url));

/** Every text (prompt, chosen, rejected) of the first n pairs: a tokenizer's training texts. */
export function pairTexts(n: number): string[] {
  return readFileSync(SENTIMENT_PAIRS, 'utf8')
    .trim()
    .split('\n')
    .slice(0, n)
    .flatMap((l) => Object.values(JSON.parse(l)) as string[]);
}
