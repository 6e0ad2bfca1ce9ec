// generate(): the KV cache changes nothing but speed, batching with left padding changes
// nothing per prompt, sampling is reproducible, the logits processors do what transformers'
// do on hand-built distributions, and beam search finds what exhaustive search finds.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, generate, processLogits } from './index.js';

describe('generate', () => {
  let model: Gpt2LMHeadModel;
  beforeAll(async () => {
    await useBackend('cpu', {});
    // A larger init than GPT-2's makes the distributions peaked, so argmaxes are not near-ties.
    model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 40, nPositions: 32, nLayer: 2, nHead: 2, nEmbd: 16, initializerRange: 0.5 },
      7,
    );
  });

  it('greedy with the KV cache equals recomputing the whole sequence each step', () => {
    const prompts = [
      [1, 2, 3, 4, 5],
      [7, 8],
    ];
    const cached = generate(model, prompts, { maxNewTokens: 12 });
    expect(cached).toEqual(generate(model, prompts, { maxNewTokens: 12, useCache: false }));
    expect(cached[0]).toHaveLength(17);
  });

  it('a left-padded batch gives each prompt what it gets alone', () => {
    const prompts = [[3, 1, 4, 1, 5, 9], [2, 7], [18]];
    const batch = generate(model, prompts, { maxNewTokens: 8 });
    prompts.forEach((p, i) => expect(batch[i]).toEqual(generate(model, [p], { maxNewTokens: 8 })[0]));
  });

  it('stops a sequence at EOS and respects minNewTokens', () => {
    const [free] = generate(model, [[1, 2]], { maxNewTokens: 10 });
    const eos = free[3]; // the second new token
    const [stopped] = generate(model, [[1, 2]], { maxNewTokens: 10, eosTokenId: eos });
    expect(stopped[stopped.length - 1]).toBe(eos);
    expect(stopped.length).toBeLessThanOrEqual(4);
    const [held] = generate(model, [[1, 2]], { maxNewTokens: 10, eosTokenId: eos, minNewTokens: 5 });
    expect(held.slice(2, 7)).not.toContain(eos);
  });

  it('samples reproducibly with a seed, and differently with another', () => {
    const o = { maxNewTokens: 15, doSample: true, temperature: 1.5, seed: 3 };
    const a = generate(model, [[1, 2, 3]], o);
    expect(generate(model, [[1, 2, 3]], o)).toEqual(a);
    expect(generate(model, [[1, 2, 3]], { ...o, seed: 4 })).not.toEqual(a);
    const streamed: number[] = [];
    generate(model, [[1, 2, 3]], { ...o, onToken: (t) => streamed.push(t[0]) });
    expect(streamed).toEqual(a[0].slice(3));
  });

  it('finds the most likely continuation, as exhaustive search does (beam width = all prefixes)', () => {
    const small = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 5, nPositions: 8, nLayer: 1, nHead: 2, nEmbd: 8, initializerRange: 0.8 },
      11,
    );
    const prompt = [2];
    // score every continuation of 3 tokens: sum of log p(token | prefix)
    const seqs: number[][] = [];
    for (let a = 0; a < 5; a++) for (let b = 0; b < 5; b++) for (let c = 0; c < 5; c++) seqs.push([...prompt, a, b, c]);
    const scores = tf.tidy(() => {
      const logp = tf
        .logSoftmax(small.forward({ inputIds: tf.tensor2d(seqs, [seqs.length, 4], 'int32') }).logits)
        .arraySync() as number[][][];
      return seqs.map(
        (s) => logp[seqs.indexOf(s)][0][s[1]] + logp[seqs.indexOf(s)][1][s[2]] + logp[seqs.indexOf(s)][2][s[3]],
      );
    });
    const ranked = seqs.map((s, i) => [scores[i], s] as const).sort((x, y) => y[0] - x[0]);
    const beams = generate(small, [prompt], { maxNewTokens: 3, numBeams: 25, lengthPenalty: 0, numReturnSequences: 3 });
    expect(beams).toEqual(ranked.slice(0, 3).map(([, s]) => s));
    // and a narrow beam still returns a valid sequence of the right length
    expect(generate(small, [prompt], { maxNewTokens: 3, numBeams: 2 })[0]).toHaveLength(4);
    small.dispose();
  });
});

describe('logits processors (transformers semantics, hand-built distributions)', () => {
  const finite = (s: Float32Array) => Array.from(s.keys()).filter((i) => Number.isFinite(s[i]));

  it('top-k keeps the k largest', () => {
    expect(
      finite(processLogits(Float32Array.from([1, 3, 2, 0]), [], 0, { maxNewTokens: 1, doSample: true, topK: 2 })),
    ).toEqual([1, 2]);
  });

  it('top-p keeps the fewest most likely tokens whose probability reaches p', () => {
    const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
    expect(finite(processLogits(logits, [], 0, { maxNewTokens: 1, doSample: true, topP: 0.7 }))).toEqual([0, 1]);
    expect(finite(processLogits(logits, [], 0, { maxNewTokens: 1, doSample: true, topP: 0.4 }))).toEqual([0]);
    expect(finite(processLogits(logits, [], 0, { maxNewTokens: 1, doSample: true, topP: 0.9 }))).toEqual([0, 1, 2]);
  });

  it('temperature divides, the repetition penalty divides positive and multiplies negative scores of seen tokens', () => {
    expect(
      Array.from(processLogits(Float32Array.from([2, -2, 1]), [0, 1, 1], 0, { maxNewTokens: 1, repetitionPenalty: 2 })),
    ).toEqual([1, -4, 1]);
    expect(
      Array.from(
        processLogits(Float32Array.from([2, -2, 1]), [], 0, { maxNewTokens: 1, doSample: true, temperature: 2 }),
      ),
    ).toEqual([1, -1, 0.5]);
  });

  it('min-p keeps tokens at least minP x the top probability (the top one always)', () => {
    const logits = Float32Array.from([0.5, 0.3, 0.15, 0.05].map(Math.log));
    expect(finite(processLogits(logits, [], 0, { maxNewTokens: 1, doSample: true, minP: 0.2 }))).toEqual([0, 1, 2]); // 0.05 < 0.1
    expect(finite(processLogits(logits, [], 0, { maxNewTokens: 1, doSample: true, minP: 0.7 }))).toEqual([0]); // 0.3 < 0.35
    expect(finite(processLogits(logits, [], 0, { maxNewTokens: 1, doSample: true, minP: 0.55 }))).toEqual([0, 1]); // 0.15 < 0.275 <= 0.3
  });

  it('no-repeat n-gram bans the tokens that would complete an n-gram already in the sequence', () => {
    const row = Float32Array.from([0, 0, 0, 0, 0]);
    const banned = (seq: number[], n: number) =>
      Array.from(processLogits(row, seq, 0, { maxNewTokens: 1, noRepeatNgramSize: n })).flatMap((v, i) =>
        v === -Infinity ? [i] : [],
      );
    expect(banned([1, 2, 3, 1, 2], 3)).toEqual([3]); // "1 2 3" seen: after "1 2", 3 is banned
    expect(banned([1, 2, 4, 1, 2], 3)).toEqual([4]);
    expect(banned([1, 2, 3, 2, 4, 2], 2)).toEqual([3, 4]); // after "2": the bigrams "2 3" and "2 4" seen
    expect(banned([1, 2], 3)).toEqual([]); // too short
  });

  it('bad words: one-token entries banned always, longer ones after their prefix', () => {
    const row = Float32Array.from([0, 0, 0, 0, 0, 0]);
    const o = { maxNewTokens: 1, badWordsIds: [[4], [2, 5]] };
    const banned = (seq: number[]) =>
      Array.from(processLogits(row, seq, 0, o)).flatMap((v, i) => (v === -Infinity ? [i] : []));
    expect(banned([1, 2])).toEqual([4, 5]);
    expect(banned([2, 1])).toEqual([4]);
    expect(banned([])).toEqual([4]);
  });

  it('minNewTokens forbids EOS until enough tokens are new', () => {
    expect(
      processLogits(Float32Array.from([1, 2]), [], 0, { maxNewTokens: 5, minNewTokens: 1, eosTokenId: 1 })[1],
    ).toBe(-Infinity);
    expect(
      processLogits(Float32Array.from([1, 2]), [], 1, { maxNewTokens: 5, minNewTokens: 1, eosTokenId: 1 })[1],
    ).toBe(2);
  });
});

describe('packed rows (documentIds + restarted positions)', () => {
  it('give each document the logits it gets alone (GPT-2 and Llama)', async () => {
    await useBackend('cpu', {});
    const { LlamaForCausalLM, LLAMA_DEFAULTS } = await import('./index.js');
    const models = [
      Gpt2LMHeadModel.init({ ...GPT2_DEFAULTS, vocabSize: 40, nPositions: 16, nLayer: 2, nHead: 2, nEmbd: 16 }, 3),
      LlamaForCausalLM.init(
        {
          ...LLAMA_DEFAULTS,
          vocabSize: 40,
          hiddenSize: 16,
          intermediateSize: 24,
          numHiddenLayers: 2,
          numAttentionHeads: 4,
          numKeyValueHeads: 2,
          maxPositionEmbeddings: 16,
        },
        3,
      ),
    ];
    const [d1, d2] = [
      [3, 9, 4, 1, 5],
      [7, 2, 8],
    ];
    for (const m of models) {
      tf.tidy(() => {
        const packed = m
          .forward({
            inputIds: tf.tensor2d([[...d1, ...d2]], [1, 8], 'int32'),
            positionIds: tf.tensor2d([[0, 1, 2, 3, 4, 0, 1, 2]], [1, 8], 'int32'),
            documentIds: tf.tensor2d([[1, 1, 1, 1, 1, 2, 2, 2]], [1, 8], 'int32'),
          })
          .logits.arraySync() as number[][][];
        const alone1 = m.forward({ inputIds: tf.tensor2d([d1], [1, 5], 'int32') }).logits.arraySync() as number[][][];
        const alone2 = m.forward({ inputIds: tf.tensor2d([d2], [1, 3], 'int32') }).logits.arraySync() as number[][][];
        const want = [...alone1[0], ...alone2[0]];
        packed[0].forEach((row, t) => row.forEach((v, j) => expect(Math.abs(v - want[t][j])).toBeLessThan(1e-5)));
      });
      m.dispose();
    }
  });
});
