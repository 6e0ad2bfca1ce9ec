// Metrics that run a model: perplexity with the strided sliding window of Hugging Face's
// perplexity guide (token-weighted, so windows that score fewer tokens count less), and
// self-consistency (Wang et al., 2022): sample several answers, keep the most common.
import * as tf from '@tensorflow/tfjs-core';
import { causalLmLossSum, generate, type CausalLm } from '@anneal/modeling';

export interface TextTokenizer {
  encode(text: string, o?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], o?: { skipSpecialTokens?: boolean }): string;
}

/**
 * Perplexity of `texts` joined by blank lines: windows of maxLength tokens every `stride`
 * tokens, each scoring only the tokens not scored before (the others are context).
 */
export function perplexity(
  model: CausalLm,
  tokenizer: TextTokenizer,
  texts: string[],
  o: { stride?: number; maxLength?: number } = {},
): { perplexity: number; meanNll: number; tokens: number } {
  const ids = tokenizer.encode(texts.join('\n\n'));
  const maxLength = Math.min(o.maxLength ?? model.maxPositions, model.maxPositions);
  const stride = o.stride ?? maxLength;
  if (ids.length < 2) throw new RangeError('perplexity needs at least two tokens');
  let nllSum = 0;
  let count = 0;
  let prevEnd = 0;
  for (let begin = 0; begin < ids.length; begin += stride) {
    const end = Math.min(begin + maxLength, ids.length);
    const window = ids.slice(begin, end);
    const scored = end - prevEnd; // the last `scored` tokens of the window are new targets
    const targets = window.map((t, i) => (i < window.length - scored ? -100 : t));
    const { sum, count: n } = tf.tidy(() => {
      const logits = model.forward({ inputIds: tf.tensor2d([window], [1, window.length], 'int32') })
        .logits as tf.Tensor3D;
      const r = causalLmLossSum(logits, Int32Array.from(targets));
      return { sum: r.sum.dataSync()[0], count: r.count };
    });
    nllSum += sum;
    count += n;
    prevEnd = end;
    if (end === ids.length) break;
  }
  const meanNll = nllSum / count;
  return { perplexity: Math.exp(meanNll), meanNll, tokens: count };
}

/** Samples `samples` completions, extracts an answer from each, returns the majority (ties: first seen). */
export function selfConsistency(
  model: CausalLm,
  tokenizer: TextTokenizer,
  prompt: string,
  o: {
    samples: number;
    extractAnswer: (completion: string) => string | undefined;
    maxNewTokens: number;
    temperature?: number;
    topP?: number;
    topK?: number;
    seed?: number;
    eosTokenId?: number;
  },
): { answer: string | undefined; votes: Map<string, number>; completions: string[] } {
  const ids = tokenizer.encode(prompt);
  const outs = generate(model, [ids], {
    maxNewTokens: o.maxNewTokens,
    doSample: true,
    temperature: o.temperature ?? 0.7,
    topP: o.topP,
    topK: o.topK,
    seed: o.seed,
    numReturnSequences: o.samples,
    eosTokenId: o.eosTokenId,
  });
  const completions = outs.map((s) => tokenizer.decode(s.slice(ids.length), { skipSpecialTokens: true }));
  const votes = new Map<string, number>();
  for (const c of completions) {
    const a = o.extractAnswer(c);
    if (a !== undefined) votes.set(a, (votes.get(a) ?? 0) + 1);
  }
  let answer: string | undefined;
  for (const [a, n] of votes) if (answer === undefined || n > votes.get(answer)!) answer = a;
  return { answer, votes, completions };
}
