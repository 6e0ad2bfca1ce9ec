// Scores of texts under a reward model: what PPO's reward and evaluation use. A
// {prompt, completion} is tokenized exactly as the reward recipe tokenized its training
// pairs (the prompt with special tokens, the completion without, then EOS when the
// tokenizer has one); a plain string as one text. Scored in right-padded batches. It lives
// here, below the method packages, because reward modelling, PPO and evaluation all use it.
import * as tf from '@tensorflow/tfjs-core';
import { ConfigError } from '@anneal/core';
import type { PretrainedModel } from './pretrained.js';

/** What scoring needs from a tokenizer (@anneal/tokenizers' Tokenizer has it). */
export interface ScoreTokenizer {
  encode(text: string, o?: { addSpecialTokens?: boolean }): number[];
  readonly eosTokenId: number | undefined;
  readonly padTokenId: number | undefined;
}

export interface ScoreOptions {
  batchSize?: number;
  /** Longest token sequence scored; longer texts keep their start (default: the model's positions). */
  maxLength?: number;
  /** Append EOS as the reward recipe does (default true). */
  addEos?: boolean;
}

export type ScoredText = string | { prompt: string; completion: string };

/** One scalar reward per text from a one-output sequence-classification model. */
export function scoreTexts(
  model: PretrainedModel,
  tok: ScoreTokenizer,
  texts: ScoredText[],
  o: ScoreOptions = {},
): number[] {
  const numLabels = Number(
    model.hfConfig().num_labels ?? Object.keys((model.hfConfig().id2label ?? {}) as object).length,
  );
  if (numLabels !== 1)
    throw new ConfigError(`a reward model has one output, and this model has ${numLabels}`, {
      field: 'num_labels',
      hint: 'train it with the reward recipe (recipe: reward)',
    });
  const maxLength = o.maxLength ?? model.maxPositions;
  const padId = tok.padTokenId ?? tok.eosTokenId ?? 0;
  const rows = texts.map((t) => {
    let ids =
      typeof t === 'string'
        ? tok.encode(t)
        : [...tok.encode(t.prompt), ...tok.encode(t.completion, { addSpecialTokens: false })];
    if ((o.addEos ?? true) && tok.eosTokenId !== undefined && ids[ids.length - 1] !== tok.eosTokenId)
      ids = [...ids, tok.eosTokenId];
    return ids.slice(0, maxLength);
  });
  const scores: number[] = [];
  const B = o.batchSize ?? 16;
  for (let k = 0; k < rows.length; k += B) {
    const batch = rows.slice(k, k + B);
    const T = Math.max(1, ...batch.map((r) => r.length));
    const ids = new Int32Array(batch.length * T).fill(padId);
    const mask = new Int32Array(batch.length * T);
    batch.forEach((r, b) => r.forEach((id, t) => ((ids[b * T + t] = id), (mask[b * T + t] = 1))));
    const out = tf.tidy(() =>
      model
        .forward({
          inputIds: tf.tensor2d(ids, [batch.length, T], 'int32'),
          attentionMask: tf.tensor2d(mask, [batch.length, T], 'int32'),
          training: false,
        })
        .logits.dataSync(),
    );
    scores.push(...Array.from(out));
  }
  return scores;
}
