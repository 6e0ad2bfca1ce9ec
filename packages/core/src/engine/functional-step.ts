// A training step (forward, backward, AdamW) written as a function of tensors, so that it can
// be recorded once and replayed (the torch backend's RecordedStep): everything that changes
// from step to step goes in as an input — the batch tensors, the learning rate and step count
// as 0-d tensors, the trainable parameters and their moments — and the loss and the new
// parameters and moments come out; `take` makes those the optimizer's state.
import * as tf from '@tensorflow/tfjs-core';
import { valueAndGrads } from './grad.js';
import type { AdamW } from './optim.js';

export class FunctionalStep {
  /** Trainable parameters, in the order of the inputs and outputs. */
  readonly names: string[];

  constructor(
    private readonly params: Map<string, tf.Variable>,
    private readonly opt: AdamW,
    private readonly loss: (batch: tf.Tensor[]) => tf.Scalar,
  ) {
    this.names = [...params].filter(([, v]) => v.trainable).map(([n]) => n);
  }

  /** [...batch, lr, step, ...parameters, ...m, ...v]: the step's inputs. `step` counts from 1. */
  inputs(batch: tf.Tensor[], lr: tf.Scalar, step: tf.Scalar): tf.Tensor[] {
    return [...batch, lr, step, ...this.names.map((n) => this.params.get(n)!), ...this.opt.moments(this.names)];
  }

  /** The step itself: inputs -> [loss, p, m, v for each parameter]. */
  readonly fn = (inputs: tf.Tensor[]): tf.Tensor[] => {
    const nBatch = inputs.length - 2 - 3 * this.names.length;
    const batch = inputs.slice(0, nBatch);
    const [lr, step] = inputs.slice(nBatch, nBatch + 2) as [tf.Scalar, tf.Scalar];
    const { value, grads } = valueAndGrads(this.params, () => this.loss(batch));
    const missing = this.names.filter((n) => !grads.has(n));
    if (missing.length)
      throw new Error(
        `FunctionalStep: the loss does not depend on ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}: freeze them (trainable false)`,
      );
    return [value, ...this.opt.updateTensors(grads, lr, step)];
  };

  /** Takes the step's outputs as the new state (disposing them) and returns the loss. */
  take(outs: tf.Tensor[]): tf.Scalar {
    this.opt.assignUpdate(this.names, outs.slice(1));
    tf.dispose(outs.slice(1));
    return outs[0] as tf.Scalar;
  }
}
