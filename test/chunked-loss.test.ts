// The LM head and the loss a chunk of rows at a time (headCrossEntropySum, headTargetLogprobs):
// the same loss, log-probs and gradients as the one-pass head, for tied and untied heads,
// Gemma's soft-capping, ignored targets, a temperature, LoRA on lm_head (dropout on), and
// chunk sizes that do not divide the token count; only one chunk's logits stay alive, so
// the bytes held at the end of the forward pass fall by at least the [N, V] logits.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend, valueAndGrads } from '@anneal/core';
import {
  IGNORE_INDEX,
  causalLmTargets,
  chunkRowsFor,
  headCrossEntropySum,
  headTargetLogprobs,
  tinyGpt2,
  tinyLlama,
  type CausalLm,
} from '@anneal/modeling';
import { LoraConfigSchema, LoraModel } from '@anneal/peft-lora';

const [B, T] = [2, 12];
const IDS = Array.from({ length: B }, (_, b) => Array.from({ length: T }, (_, t) => (b * 31 + t * 7 + 5) % 61));
// labels: the ids, with the first three positions of each row ignored (a prompt)
const LABELS = Int32Array.from(IDS.flat(), (id, i) => (i % T < 3 ? IGNORE_INDEX : id));

type Loss = 'cross-entropy' | 'logprobs';

/** Loss and gradients of the trainable parameters, with the head in chunks of chunkRows rows (0 = one pass). */
function step(lm: CausalLm, params: Map<string, tf.Variable>, loss: Loss, chunkRows: number) {
  let atEnd = 0;
  const seen: number[] = [];
  const observe = (logits: tf.Tensor2D, start: number) =>
    seen.push(...Array.from({ length: logits.shape[0] }, (_, i) => start + i));
  const { value, grads } = valueAndGrads(params, () => {
    const h = lm.hidden({ inputIds: tf.tensor2d(IDS, [B, T], 'int32'), training: true, dropoutSeed: 5 });
    const hidden = tf.reshape(h, [B * T, -1]) as tf.Tensor2D; // [N, C]
    const { targets } = causalLmTargets(LABELS, B, T);
    let out: tf.Scalar;
    if (loss === 'cross-entropy') out = headCrossEntropySum(hidden, lm.lmHead(), targets, { chunkRows, observe }).sum;
    else {
      // log-probs at a temperature, weighted per position (a DPO/PPO-like use of them)
      const safe = targets.map((t) => (t === IGNORE_INDEX ? 0 : t));
      const lp = headTargetLogprobs(hidden, lm.lmHead(), safe, { chunkRows, observe, temperature: 0.7 });
      out = tf.sum(tf.mul(lp, tf.linspace(-1, 2, B * T))) as tf.Scalar;
    }
    atEnd = tf.memory().numBytes;
    return out;
  });
  const r = { loss: value.dataSync()[0], grads: new Map([...grads].map(([n, g]) => [n, g.dataSync()])), atEnd, seen };
  tf.dispose([value, ...grads.values()]);
  return r;
}

/** |a - b| <= 1e-6 of the largest |b| (float32 sums in another order). */
function expectClose(a: ArrayLike<number>, b: ArrayLike<number>, what: string) {
  const scale = Math.max(1e-12, ...Array.from(b, Math.abs));
  let worst = 0;
  for (let i = 0; i < b.length; i++) worst = Math.max(worst, Math.abs(a[i] - b[i]) / scale);
  expect(worst, what).toBeLessThanOrEqual(1e-6);
}

function expectSame(lm: CausalLm, params: Map<string, tf.Variable>, loss: Loss, chunkRows: number) {
  const plain = step(lm, params, loss, 0);
  const chunked = step(lm, params, loss, chunkRows);
  expectClose([chunked.loss], [plain.loss], 'loss');
  expect([...chunked.grads.keys()].sort()).toEqual([...plain.grads.keys()].sort());
  for (const [n, g] of plain.grads) expectClose(chunked.grads.get(n)!, g, n);
  expect(chunked.seen).toEqual(Array.from({ length: B * T }, (_, i) => i)); // every row observed once, in order
  return { plain, chunked };
}

const trainable = (m: { params: Map<string, tf.Variable> }) => new Map([...m.params].filter(([, v]) => v.trainable));

describe('the LM head and loss in chunks', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('chunkRowsFor: off while a batch of logits is small, chunks of 2^24 logits past 2^26', () => {
    expect(chunkRowsFor('auto', 2048, 1000)).toBe(0); // 2M logits
    expect(chunkRowsFor('auto', 2048, 151936)).toBe(110); // floor(16777216 / 151936)
    expect(chunkRowsFor('auto', 8192, 50257)).toBe(333);
    expect(chunkRowsFor(7, 10, 10)).toBe(7);
    expect(chunkRowsFor(0, 1e6, 1e6)).toBe(0);
  });

  for (const loss of ['cross-entropy', 'logprobs'] as const) {
    it(`${loss}, GPT-2 (head tied to wte, dropout on): chunks of 5 of 24 rows = one pass`, () => {
      const m = tinyGpt2(3, { residPdrop: 0.1, embdPdrop: 0.1 });
      expectSame(m, trainable(m), loss, 5);
      m.dispose();
    });

    it(`${loss}, Llama with an untied, soft-capped head (Gemma's final_logit_softcapping): chunks of 7`, () => {
      const m = tinyLlama(4, { tieWordEmbeddings: false, finalLogitSoftcapping: 2 });
      const { plain } = expectSame(m, trainable(m), loss, 7);
      expect(plain.grads.has('lm_head.weight')).toBe(true);
      m.dispose();
    });

    it(`${loss}, LoRA on lm_head, q and v: the adapters' gradients match`, () => {
      const base = tinyLlama(4, { tieWordEmbeddings: false });
      const lora = new LoraModel(
        base,
        LoraConfigSchema.parse({ r: 4, targetModules: ['q_proj', 'v_proj', 'lm_head'], initLoraWeights: false }),
        2,
      );
      const { plain } = expectSame(lora as unknown as CausalLm, lora.params, loss, 11);
      expect([...plain.grads.keys()].some((n) => n.includes('lm_head.lora_B'))).toBe(true);
      base.dispose();
    });

    it(`${loss}, frozen heads (LoRA on the blocks only), tied and untied soft-capped: the closed-form gradient`, () => {
      for (const base of [tinyGpt2(3), tinyLlama(4, { tieWordEmbeddings: false, finalLogitSoftcapping: 2 })]) {
        const lora = new LoraModel(base, LoraConfigSchema.parse({ r: 4, targetModules: 'all-linear' }), 2);
        const lm = lora as unknown as CausalLm;
        expect(lm.lmHead().frozen, 'the head takes the closed-form path').toBeDefined();
        expectSame(lm, lora.params, loss, 5);
        base.dispose();
      }
    });

    it(`${loss}, LoRA with dropout on q and v (the head untargeted): the same gradients`, () => {
      const base = tinyLlama(4);
      const lora = new LoraModel(
        base,
        LoraConfigSchema.parse({ r: 4, targetModules: ['q_proj', 'v_proj'], loraDropout: 0.2, initLoraWeights: false }),
        2,
      );
      expectSame(lora as unknown as CausalLm, lora.params, loss, 9);
      base.dispose();
    });
  }

  it('dropout on an lm_head adapter: each chunk draws its own masks, and its recomputation draws them again', () => {
    // the chunked loss is then another draw than the one-pass loss; its gradient must still be its own
    const base = tinyLlama(4, { tieWordEmbeddings: false });
    const lora = new LoraModel(
      base,
      LoraConfigSchema.parse({ r: 4, targetModules: ['lm_head'], loraDropout: 0.5, initLoraWeights: false }),
      2,
    );
    const lm = lora as unknown as CausalLm;
    const name = [...lora.params.keys()].find((n) => n.endsWith('lm_head.lora_A.weight'))!;
    const a = lora.params.get(name)!;
    const { grads, loss } = step(lm, lora.params, 'cross-entropy', 5);
    const g = grads.get(name)!;
    // a central difference along the gradient: (L(a + e g) - L(a - e g)) / 2e = |g|^2
    const norm2 = Array.from(g).reduce((s, x) => s + x * x, 0);
    const e = 1e-2 / Math.sqrt(norm2);
    const original = a.clone();
    const lossAt = (sign: number) => {
      tf.tidy(() => a.assign(tf.add(original, tf.mul(tf.tensor(g, a.shape), sign * e))));
      return step(lm, lora.params, 'cross-entropy', 5).loss;
    };
    const slope = (lossAt(1) - lossAt(-1)) / (2 * e);
    a.assign(original);
    expect(Math.abs(slope - norm2) / norm2).toBeLessThan(1e-2);
    expect(step(lm, lora.params, 'cross-entropy', 5).loss).toBe(loss); // the same masks every time
    expect(step(lm, lora.params, 'cross-entropy', 0).loss).not.toBe(loss); // one pass draws one mask for all rows
    tf.dispose(original);
    base.dispose();
  });

  it('only one chunk of logits is alive at the end of the forward pass, and no tensor is left behind', () => {
    // a wide vocabulary next to a narrow model: the logits [24, 4000] dwarf everything else
    const m = tinyLlama(5, { vocabSize: 4000, hiddenSize: 16, intermediateSize: 32, numAttentionHeads: 2 });
    const params = trainable(m);
    step(m, params, 'cross-entropy', 4); // warm (the first pass builds constants)
    const before = tf.memory().numTensors;
    const plain = step(m, params, 'cross-entropy', 0);
    const chunked = step(m, params, 'cross-entropy', 4);
    expect(tf.memory().numTensors).toBe(before);
    const logitsBytes = B * T * 4000 * 4;
    expect(plain.atEnd - chunked.atEnd).toBeGreaterThanOrEqual(logitsBytes);
    m.dispose();
  });

  it('a target outside the vocabulary is a named error with its position', () => {
    const m = tinyGpt2();
    const bad = Int32Array.from(LABELS);
    bad[9] = 61;
    expect(() =>
      tf.tidy(() => headCrossEntropySum(tf.zeros([B * T, 64]) as tf.Tensor2D, m.lmHead(), bad, { chunkRows: 5 })),
    ).toThrow(/target id 61 at position 9 is outside the vocabulary \(size 61\)/);
    m.dispose();
  });
});
