// A recorded training step (the torch backend's RecordedStep over core's FunctionalStep)
// against the same step dispatched kernel by kernel from JS: on the cpu device the replay
// runs the very same kernel calls, so losses and parameters must agree bit for bit, step
// after step, with the learning rate and step count changing. Steps that are not the same
// program every time are found and stay dispatched. Required in CI (the addon is built there).
import { existsSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH, RecordedStep, registerTorchBackend, type TorchBackend } from '@anneal/backend-torch';
import { AdamW, FunctionalStep, Rng, useBackend } from '@anneal/core';
import {
  GPT2_DEFAULTS,
  Gpt2LMHeadModel,
  LLAMA_DEFAULTS,
  LlamaForCausalLM,
  causalLmTargets,
  crossEntropySumOfTargets,
} from '@anneal/modeling';

const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const d = existsSync(ADDON_PATH) || required ? describe : describe.skip;

const CFG = {
  ...GPT2_DEFAULTS,
  vocabSize: 61,
  nPositions: 16,
  nEmbd: 32,
  nHead: 4,
  nLayer: 2,
  residPdrop: 0,
  embdPdrop: 0,
  attnPdrop: 0,
};
const T = 12;

type Model = Gpt2LMHeadModel | LlamaForCausalLM;
interface Options {
  perStepUpload?: boolean;
  readBack?: boolean;
  llama?: boolean;
}
// A small Llama (RoPE, SwiGLU, grouped-query attention): its rotary tables are made on the device.
const LLAMA = {
  ...LLAMA_DEFAULTS,
  vocabSize: 61,
  hiddenSize: 32,
  intermediateSize: 64,
  numHiddenLayers: 2,
  numAttentionHeads: 4,
  numKeyValueHeads: 2,
  maxPositionEmbeddings: 16,
};

/** A model, its optimizer and its step; `perStepUpload` makes the step upload batch data itself (not the same program each step). */
function setup(o: Options = {}) {
  const model: Model = o.llama ? LlamaForCausalLM.init(LLAMA, 7) : Gpt2LMHeadModel.init(CFG, 7);
  const opt = new AdamW(model.params, { betas: [0.9, 0.95], eps: 1e-8, weightDecay: 0.1 });
  let hostTargets: Int32Array = new Int32Array(0);
  const step = new FunctionalStep(model.params, opt, ([ids, targets, count]) => {
    const [B, Tn] = ids.shape;
    const logits = tf.reshape(model.forward({ inputIds: ids as tf.Tensor2D }).logits, [
      B * Tn,
      CFG.vocabSize,
    ]) as tf.Tensor2D; // both vocabularies are 61
    const t = o.perStepUpload ? tf.tensor1d(hostTargets, 'int32') : (targets as tf.Tensor1D);
    const loss = tf.div(crossEntropySumOfTargets(logits, t), count) as tf.Scalar;
    if (o.readBack) loss.dataSync();
    return loss;
  });
  return { model, opt, step, setHostTargets: (t: Int32Array) => (hostTargets = t) };
}

function batch(rng: Rng, B: number) {
  const ids = Int32Array.from({ length: B * T }, () => Math.floor(rng.next() * CFG.vocabSize));
  return { ids, ...causalLmTargets(ids, B, T) };
}

const snapshot = (m: Model) => [...m.params].map(([n, v]) => [n, Array.from(v.dataSync())] as const);

// On a GPU (tools/gpu/check.sh) the replay is a CUDA graph, and kernels with atomics (the
// embedding gradient's index_add) differ run to run even when dispatched twice, so there
// the two runs are compared closely rather than exactly, and the graph must be captured.
const gpu = (process.env.ANNEAL_DEVICE ?? 'cpu').startsWith('cuda');
function expectSame(got: number[], want: number[]) {
  if (!gpu) return expect(got).toEqual(want); // exact, not close
  got.forEach((g, i) =>
    expect(Math.abs(g - want[i]), `entry ${i}`).toBeLessThanOrEqual(1e-3 * Math.max(1, Math.abs(want[i]))),
  );
}
function expectSameParams(b: Model, a: Model) {
  const [sb, sa] = [snapshot(b), snapshot(a)];
  if (!gpu) return expect(sb).toEqual(sa);
  sb.forEach(([, v], i) => expectSame(v, sa[i][1]));
}

d(`recorded training step (torch backend, ${process.env.ANNEAL_DEVICE ?? 'cpu'})`, () => {
  let backend: TorchBackend;
  beforeAll(async () => {
    registerTorchBackend({ warn: () => undefined });
    await useBackend('torch', {});
    backend = tf.backend() as TorchBackend;
  });

  /** Runs `sizes.length` steps on a dispatched and a recorded copy; returns both runs' losses and the recorder. */
  function twin(sizes: number[], o: Options = {}) {
    const a = setup(o);
    const b = setup(o);
    const recorded = new RecordedStep(b.step.fn, { warmup: 1 });
    const lossesA: number[] = [];
    const lossesB: number[] = [];
    const counts: number[] = [];
    sizes.forEach((B, i) => {
      for (const [side, losses, run] of [
        [a, lossesA, (inp: tf.Tensor[]) => tf.tidy(() => a.step.fn(inp))],
        [b, lossesB, (inp: tf.Tensor[]) => recorded.run(inp)],
      ] as const) {
        const { ids, targets, count } = batch(new Rng(3 + (i % 2)), B); // two batches, in turn
        side.setHostTargets(targets);
        const inputs = [tf.tensor2d(ids, [B, T], 'int32'), tf.tensor1d(targets, 'int32'), tf.scalar(count)];
        const lr = tf.scalar(1e-2 * (1 - i / 20)); // a schedule: a new value every step
        const stepT = tf.scalar(i + 1);
        const loss = side.step.take(run(side.step.inputs(inputs, lr, stepT)));
        losses.push(loss.dataSync()[0]);
        tf.dispose([loss, lr, stepT, ...inputs]);
      }
      counts.push(tf.memory().numTensors);
    });
    return { a, b, lossesA, lossesB, recorded, counts };
  }

  it('a replayed step equals the dispatched step bit for bit, with a changing learning rate, and leaks nothing', () => {
    const { a, b, lossesA, lossesB, recorded, counts } = twin([2, 2, 2, 2, 2, 2, 2]);
    expect(recorded.stats).toMatchObject({ dispatched: 1, recorded: 2, replayed: 4, fallback: '' });
    expect(recorded.stats.calls).toBeGreaterThan(100);
    expectSame(lossesB, lossesA);
    expect(lossesA[6]).toBeLessThan(lossesA[0]); // it trains (steps 1 and 7 see the same batch)
    expectSameParams(b.model, a.model);
    if (gpu) expect(recorded.stats.graph).toBe('captured');
    expect(a.opt.step).toBe(7);
    expect(b.opt.step).toBe(7);
    // flat across the replayed steps: no tensor kept by a replay, in tfjs or in libtorch
    expect(new Set(counts.slice(3)).size).toBe(1);
    expect(backend.nativeCount()).toBe(backend.numDataIds());
    recorded.dispose();
  });

  it('a Llama step (RoPE tables made on the device, SwiGLU) records and replays as exactly', () => {
    const { a, b, lossesA, lossesB, recorded } = twin([2, 2, 2, 2, 2], { llama: true });
    expect(recorded.stats).toMatchObject({ dispatched: 1, recorded: 2, replayed: 2, fallback: '' });
    expectSame(lossesB, lossesA);
    expectSameParams(b.model, a.model);
    recorded.dispose();
  });

  it('another batch shape (the last partial batch) is dispatched normally, and replays resume after it', () => {
    const { a, b, lossesA, lossesB, recorded } = twin([2, 2, 2, 2, 1, 2]);
    expect(recorded.stats).toMatchObject({ dispatched: 2, recorded: 2, replayed: 2, fallback: '' });
    expectSame(lossesB, lossesA);
    expectSameParams(b.model, a.model);
    recorded.dispose();
  });

  it('a step that uploads data of its own each step is not the same program: found, and it stays dispatched', () => {
    const { a, b, lossesA, lossesB, recorded } = twin([2, 2, 2, 2], { perStepUpload: true });
    expect(recorded.stats.fallback).toMatch(/other values in the two steps: pass it as an input/);
    expect(recorded.stats.replayed).toBe(0);
    expectSame(lossesB, lossesA);
    expectSameParams(b.model, a.model);
  });

  it('a step that reads a value back to the host is never replayed', () => {
    const { lossesA, lossesB, recorded } = twin([2, 2, 2], { readBack: true });
    expect(recorded.stats.fallback).toMatch(/reads a tensor back to the host/);
    expect(recorded.stats.replayed).toBe(0);
    expectSame(lossesB, lossesA);
  });
});
