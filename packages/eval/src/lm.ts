// Metrics that run a model: perplexity with the strided sliding window of Hugging Face's
// perplexity guide (token-weighted, so windows that score fewer tokens count less), and
// self-consistency (Wang et al., 2022): sample several answers, keep the most common.
import * as tf from '@tensorflow/tfjs-core';
import { causalLmTargets, chunkRowsFor, generate, headCrossEntropySum, type CausalLm } from '@anneal/modeling';

export interface TextTokenizer {
  encode(text: string, o?: { addSpecialTokens?: boolean }): number[];
  decode(ids: number[], o?: { skipSpecialTokens?: boolean }): string;
}

/**
 * Perplexity of `texts` joined by blank lines: windows of maxLength tokens every `stride`
 * tokens, each scoring only the tokens not scored before (the others are context). The head
 * runs a chunk of rows at a time where a window's logits would be large (a long window of a
 * big-vocabulary model).
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
      // the head in chunks of rows once the window's logits would pass 256 MB (as training's auto chunks)
      const T = window.length;
      const hidden = model.hidden({ inputIds: tf.tensor2d([window], [1, T], 'int32') }); // [1, T, C]
      const head = model.lmHead();
      const r = headCrossEntropySum(
        tf.reshape(hidden, [T, hidden.shape[2]]) as tf.Tensor2D,
        head,
        causalLmTargets(Int32Array.from(targets), 1, T).targets,
        { chunkRows: chunkRowsFor('auto', T, head.vocabSize) },
      );
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
