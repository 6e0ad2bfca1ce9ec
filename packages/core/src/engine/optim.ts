// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization"), as torch.optim.AdamW:
//   p <- p * (1 - lr * wd)
//   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// plus global-norm gradient clipping as torch.nn.utils.clip_grad_norm_.
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError } from '../errors.js';
import { hasAnnealKernel, runAnnealKernel, type AnnealKernel } from './kernels/anneal-kernels.js';
import { requireFloatTensor, type SafeTensor, type TensorToWrite } from '../io/safetensors.js';

/** Name of the optional kernel that performs a whole AdamW step (inputs p, g, m, v per parameter). */
export const FUSED_ADAMW = 'AnnealAdamW' satisfies AnnealKernel;

export interface AdamWOptions {
  betas: [number, number];
  eps: number;
  weightDecay: number;
  /** Which parameters get weight decay; by default matrices (rank >= 2) only, not biases or norms. */
  decay?: (name: string, v: tf.Variable) => boolean;
}

export class AdamW {
  /** Number of updates applied so far (t in the formulas). */
  step = 0;
  private m = new Map<string, tf.Variable>();
  private v = new Map<string, tf.Variable>();

  constructor(
    private readonly params: Map<string, tf.Variable>,
    private readonly o: AdamWOptions,
  ) {
    for (const [name, p] of params) {
      this.m.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
      );
      this.v.set(
        name,
        tf.tidy(() => tf.variable(tf.zerosLike(p), false)),
      );
    }
  }

  private decays(name: string, p: tf.Variable): boolean {
    return this.o.decay ? this.o.decay(name, p) : p.rank >= 2;
  }

  /** Applies one update with learning rate `lr`. Does not dispose `grads`. */
  apply(grads: Map<string, tf.Tensor>, lr: number): void {
    this.step += 1;
    const [b1, b2] = this.o.betas;
    const bc1 = 1 - b1 ** this.step;
    const bc2 = 1 - b2 ** this.step;
    // A backend may provide the whole step as one kernel (the torch backend does); the
    // arithmetic is the same as the op chain below.
    if (hasAnnealKernel(FUSED_ADAMW)) return this.applyFused(grads, lr, bc1, bc2);
    tf.tidy(() => {
      for (const [name, p] of this.params) {
        const g = grads.get(name);
        if (!g) continue;
        const m = this.m.get(name)!;
        const v = this.v.get(name)!;
        const mNew = tf.add(tf.mul(m, b1), tf.mul(g, 1 - b1));
        const vNew = tf.add(tf.mul(v, b2), tf.mul(tf.square(g), 1 - b2));
        m.assign(mNew);
        v.assign(vNew);
        let pNew: tf.Tensor = this.decays(name, p) ? tf.mul(p, 1 - lr * this.o.weightDecay) : p;
        const update = tf.div(tf.div(mNew, bc1), tf.add(tf.sqrt(tf.div(vNew, bc2)), this.o.eps));
        pNew = tf.sub(pNew, tf.mul(update, lr));
        p.assign(pNew);
      }
    });
  }

  private applyFused(grads: Map<string, tf.Tensor>, lr: number, bc1: number, bc2: number): void {
    const names = this.updateOrder(grads);
    const { inputs, weightDecays } = this.fusedInputs(names, grads);
    const [beta1, beta2] = this.o.betas;
    // `step` lets a GPU kernel (torch's _fused_adamw_) compute the same bias corrections.
    const attrs = {
      lr,
      beta1,
      beta2,
      eps: this.o.eps,
      biasCorrection1: bc1,
      biasCorrection2: bc2,
      step: this.step,
      weightDecays,
    };
    tf.tidy(() => this.assignState(names, runAnnealKernel(FUSED_ADAMW, inputs, attrs)));
  }

  /** The fused kernel's inputs (p, g, m, v for each name) and each parameter's weight decay. */
  private fusedInputs(names: string[], grads: Map<string, tf.Tensor>): { inputs: tf.Tensor[]; weightDecays: number[] } {
    const inputs = names.flatMap((n) => [this.params.get(n)!, grads.get(n)!, this.m.get(n)!, this.v.get(n)!]);
    return { inputs, weightDecays: names.map((n) => (this.decays(n, this.params.get(n)!) ? this.o.weightDecay : 0)) };
  }

  private assignState(names: string[], outs: tf.Tensor[]): void {
    names.forEach((n, i) => {
      this.params.get(n)!.assign(outs[3 * i]);
      this.m.get(n)!.assign(outs[3 * i + 1]);
      this.v.get(n)!.assign(outs[3 * i + 2]);
    });
  }

  /** Parameters that have a gradient in `grads`, in the order updateTensors uses. */
  updateOrder(grads: Map<string, tf.Tensor>): string[] {
    return [...this.params.keys()].filter((n) => grads.has(n));
  }

  /** The moments of `names`: [m for each name, then v for each name] (inputs of a recorded step). */
  moments(names: string[]): tf.Tensor[] {
    return [...names.map((n) => this.m.get(n)!), ...names.map((n) => this.v.get(n)!)];
  }

  /**
   * One update as a function of tensors, assigning nothing: returns [p, m, v] for each
   * parameter of updateOrder(grads), with the learning rate and the step count (t, from 1)
   * as 0-d tensors, so that a recorded step (the torch backend's RecordedStep) replays it
   * with new values. The same arithmetic as apply(); take the result with assignUpdate().
   */
  updateTensors(grads: Map<string, tf.Tensor>, lr: tf.Scalar, step: tf.Scalar): tf.Tensor[] {
    const names = this.updateOrder(grads);
    const [beta1, beta2] = this.o.betas;
    const { inputs, weightDecays } = this.fusedInputs(names, grads);
    if (hasAnnealKernel(FUSED_ADAMW)) {
      const attrs = { beta1, beta2, eps: this.o.eps, weightDecays, scalarInputs: true };
      return runAnnealKernel(FUSED_ADAMW, [...inputs, lr, step], attrs);
    }
    return tf.tidy(() => {
      const bc1 = tf.sub(1, tf.pow(beta1, step));
      const bc2 = tf.sub(1, tf.pow(beta2, step));
      return names.flatMap((n, i) => {
        const [p, g, m, v] = [this.params.get(n)!, grads.get(n)!, this.m.get(n)!, this.v.get(n)!];
        const mNew = tf.add(tf.mul(m, beta1), tf.mul(g, 1 - beta1));
        const vNew = tf.add(tf.mul(v, beta2), tf.mul(tf.square(g), 1 - beta2));
        const decayed = weightDecays[i] ? tf.mul(p, tf.sub(1, tf.mul(lr, weightDecays[i]))) : p;
        const update = tf.div(tf.div(mNew, bc1), tf.add(tf.sqrt(tf.div(vNew, bc2)), this.o.eps));
        return [tf.sub(decayed, tf.mul(update, lr)), mNew, vNew];
      });
    });
  }

  /** Takes [p, m, v] per name (updateTensors' outputs, or a replay's) as the new state: one step. */
  assignUpdate(names: string[], outs: tf.Tensor[]): void {
    this.assignState(names, outs);
    this.step += 1;
  }

  /** Moments as safetensors entries (`<param>.exp_avg`, `<param>.exp_avg_sq`) and the step. */
  async stateDict(): Promise<{ tensors: Map<string, TensorToWrite>; step: number }> {
    const tensors = new Map<string, TensorToWrite>();
    for (const [name, m] of this.m) {
      tensors.set(`${name}.exp_avg`, { dtype: 'F32', shape: m.shape, data: (await m.data()) as Float32Array });
      const v = this.v.get(name)!;
      tensors.set(`${name}.exp_avg_sq`, { dtype: 'F32', shape: v.shape, data: (await v.data()) as Float32Array });
    }
    return { tensors, step: this.step };
  }

  loadStateDict(tensors: Map<string, SafeTensor | TensorToWrite>, step: number, file = 'optimizer.safetensors'): void {
    if (!Number.isInteger(step) || step < 0)
      throw new CheckpointError(`AdamW's step ${JSON.stringify(step)} is not a non-negative integer`, {
        file,
        field: '__metadata__.step',
        hint: 'optimizer.safetensors records the number of updates applied in its metadata; the file was edited or written by another tool',
      });
    for (const [name, p] of this.params) {
      for (const [suffix, target] of [
        ['exp_avg', this.m.get(name)!],
        ['exp_avg_sq', this.v.get(name)!],
      ] as const) {
        const t = tensors.get(`${name}.${suffix}`);
        if (!t)
          throw new CheckpointError(`optimizer state for ${name}.${suffix} is missing`, {
            file,
            hint: 'the checkpoint was saved for a different model',
          });
        requireFloatTensor(t, p.shape, { file, name: `${name}.${suffix}`, what: `AdamW's ${suffix} of ${name}` });
        target.assign(tf.tensor(t.data as Float32Array, t.shape, 'float32'));
      }
    }
    this.step = step;
  }

  dispose(): void {
    for (const t of [...this.m.values(), ...this.v.values()]) t.dispose();
  }
}

/**
 * Scales gradients so their global L2 norm is at most `maxNorm` (torch's
 * clip_grad_norm_: coefficient maxNorm / (norm + 1e-6), capped at 1). Returns the
 * norm before clipping and the new gradients (the old ones are disposed when replaced).
 */
export function clipGradNorm(
  grads: Map<string, tf.Tensor>,
  maxNorm: number,
): { norm: number; grads: Map<string, tf.Tensor> } {
  const normT = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))));
  const norm = normT.dataSync()[0];
  normT.dispose();
  if (!(maxNorm > 0) || !Number.isFinite(norm)) return { norm, grads };
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef >= 1) return { norm, grads };
  const out = new Map<string, tf.Tensor>();
  for (const [k, g] of grads) {
    out.set(k, tf.mul(g, coef));
    g.dispose();
  }
  return { norm, grads: out };
}
