// PPO's pieces against hand-computed values: GAE (returns and advantages, with a response
// that ends early), masked whitening, the k1/k3 KL estimators, the adaptive KL rule, and
// the clipped policy and value losses on both sides of their clip boundaries.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, LlamaForCausalLM, llamaConfigFromHf } from '@anneal/modeling';
import { klPerToken, layout, layoutLogprobs, maskedWhiten, responseLogprobs, sampleResponses } from '@anneal/training';
import { AdaptiveKlController, gae, ppoPolicyLoss, ppoValueLoss } from './index.js';

const near = (got: ArrayLike<number>, want: number[], digits = 6) =>
  want.forEach((w, i) => expect(got[i], `[${i}]`).toBeCloseTo(w, digits));

beforeAll(async () => {
  await useBackend('cpu', {});
});

describe('advantages', () => {
  it('GAE (γ 1, λ 0.95) by hand, a row that ends after two tokens contributing nothing after it', () => {
    // row 0: rewards [0, 0, 1], values [0.5, 0.4, 0.3]
    //   δ = [−0.1, −0.1, 0.7]; A2 = 0.7, A1 = −0.1 + 0.95·0.7 = 0.565, A0 = −0.1 + 0.95·0.565 = 0.43675
    // row 1: rewards [0, 2, (99)], values [1, 0.5, (7)], mask [1, 1, 0]
    //   A1 = 2 − 0.5 = 1.5, A0 = (0 + 0.5 − 1) + 0.95·1.5 = 0.925
    const { advantages, returns } = gae([0, 0, 1, 0, 2, 99], [0.5, 0.4, 0.3, 1, 0.5, 7], [1, 1, 1, 1, 1, 0], 2, 3, {
      gamma: 1,
      lam: 0.95,
    });
    near(advantages, [0.43675, 0.565, 0.7, 0.925, 1.5, 0]);
    near(returns, [0.93675, 0.965, 1.0, 1.925, 2.0, 0]);
  });

  it('GAE with λ 1 is the discounted return minus the value (Monte Carlo)', () => {
    // γ 0.9: returns-to-go of rewards [0, 0, 1] are [0.81, 0.9, 1]
    const { advantages, returns } = gae([0, 0, 1], [0.5, 0.4, 0.3], [1, 1, 1], 1, 3, { gamma: 0.9, lam: 1 });
    near(returns, [0.81, 0.9, 1]);
    near(advantages, [0.31, 0.5, 0.7]);
  });

  it('whitens over the masked entries only (unbiased variance)', () => {
    near(maskedWhiten([1, 2, 3, 100], [1, 1, 1, 0]), [-1, 0, 1, 0]);
    near(maskedWhiten([1, 2, 3, 100], [1, 1, 1, 0], false), [1, 2, 3, 0]);
  });
});

describe('KL', () => {
  it('k1 and k3 per token', () => {
    // log π = −1, log π_ref = −2: log r = −1 -> k1 1, k3 e^−1 − 1 + 1; and the other way round
    near(klPerToken([-1, -2], [-2, -1], 'k1'), [1, -1]);
    near(klPerToken([-1, -2], [-2, -1], 'k3'), [Math.exp(-1), Math.E - 2]);
  });

  it('the adaptive controller moves β by at most 20% × n / horizon (Ziegler et al.)', () => {
    const c = new AdaptiveKlController(0.05, 6, 10000);
    c.update(12, 64); // KL twice the target: error clipped to +0.2
    expect(c.value).toBeCloseTo(0.05 * (1 + (0.2 * 64) / 10000), 12);
    c.update(5.7, 64); // error −0.05
    expect(c.value).toBeCloseTo(0.05 * (1 + (0.2 * 64) / 10000) * (1 - (0.05 * 64) / 10000), 12);
  });
});

describe('clipped losses', () => {
  it('policy: the clipped term wins outside 1 ± ε in the direction of the advantage, with zero gradient there', () => {
    // A = [1, 1, −1, −1], ρ = [1.5, 0.5, 1.5, 0.5], ε 0.2 -> per token max(−Aρ, −A clip ρ) = [−1.2, −0.5, 1.5, 0.8]
    const adv = tf.tensor1d([1, 1, -1, -1]);
    const mask = tf.tensor1d([1, 1, 1, 1]);
    const old = tf.zeros([4]);
    const lp = tf.tensor1d([Math.log(1.5), Math.log(0.5), Math.log(1.5), Math.log(0.5)]);
    const r = ppoPolicyLoss(lp, old, adv, mask, 0.2);
    expect(r.loss.dataSync()[0]).toBeCloseTo(0.15, 6);
    expect(r.clipfrac.dataSync()[0]).toBeCloseTo(0.5, 6);
    expect(r.ratio.dataSync()[0]).toBeCloseTo(1, 6);
    // d/dlogπ of −Aρ is −Aρ (unclipped tokens), 0 where the clip is active; divided by 4 tokens
    near(
      tf
        .grad((x: tf.Tensor) => ppoPolicyLoss(x, old, adv, mask, 0.2).loss)(lp)
        .dataSync(),
      [0, -0.125, 0.375, 0],
    );
    // masked tokens do not count
    expect(ppoPolicyLoss(lp, old, adv, tf.tensor1d([0, 1, 1, 0]), 0.2).loss.dataSync()[0]).toBeCloseTo(0.5, 6);
  });

  it('value: ½ max((V − R)², (clip(V, V_old ± ε) − R)²)', () => {
    // V = [2, 0], V_old = [1, 1], R = [0, 0], ε 0.2: clipped V = [1.2, 0.8]; max terms [4, 0.64]
    const r = ppoValueLoss(tf.tensor1d([2, 0]), tf.tensor1d([1, 1]), tf.zeros([2]), tf.ones([2]), 0.2);
    expect(r.loss.dataSync()[0]).toBeCloseTo((0.5 * (4 + 0.64)) / 2, 6);
    expect(r.clipfrac.dataSync()[0]).toBeCloseTo(0.5, 6);
  });
});

describe('rollout log-probs', () => {
  it("the sampling forward's log-probs of the sampled tokens equal scoring the responses again (GPT-2 and Llama, left-padded batch)", async () => {
    await useBackend('cpu');
    const models = [
      Gpt2LMHeadModel.init({ ...GPT2_DEFAULTS, vocabSize: 50, nPositions: 32, nLayer: 2, nHead: 2, nEmbd: 16 }, 3),
      LlamaForCausalLM.init(
        llamaConfigFromHf({
          model_type: 'llama',
          vocab_size: 50,
          hidden_size: 16,
          intermediate_size: 32,
          num_hidden_layers: 2,
          num_attention_heads: 4,
          num_key_value_heads: 2,
          max_position_embeddings: 32,
        }),
        4,
      ),
    ];
    for (const lm of models) {
      const prompts = [
        [5, 6, 7],
        [8, 9, 10, 11, 12],
      ];
      const o = { responseLength: 8, temperature: 0.7, eosTokenId: 3, padTokenId: 0, seed: 11 };
      const sampled: number[][] = [];
      const responses = sampleResponses(lm, prompts, o, sampled);
      expect(sampleResponses(lm, prompts, o)).toEqual(responses); // the same samples with or without them
      sampled.forEach((row, b) => expect(row.length).toBe(responses[b].length));
      const batch = layout(prompts, responses, 0, 3);
      const fromSampling = layoutLogprobs(sampled, batch.Tr);
      const rescored = tf.tidy(() =>
        responseLogprobs(lm, batch, [0, 1], { temperature: 0.7, lossChunkSize: 0 }).logprobs.dataSync(),
      );
      fromSampling.forEach((v, i) => {
        if (batch.responseMask[i]) expect(Math.abs(v - rescored[i])).toBeLessThan(1e-4);
        else expect(v).toBe(0);
      });
      expect(Math.min(...fromSampling)).toBeLessThan(-0.5); // real log-probs, not all near 0
      lm.dispose();
    }
  });
});
