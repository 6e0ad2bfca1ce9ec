// Activation (gradient) checkpointing, as torch.utils.checkpoint: a block's forward runs
// without recording what its backward would need, keeping only its input; the backward pass
// runs the block again, this time recorded, and takes the gradients from that recomputation.
// Memory: one block's activations at a time instead of every block's, for one more forward
// per block. The block must compute the same values both times (dropout seeds are derived,
// so it does), which makes the gradients those of the plain run, bit for bit.
import * as tf from '@tensorflow/tfjs-core';
import { gradients } from './backprop.js';

/**
 * y = block(x, constants), recorded as one operation whose inputs are x and `variables` (every
 * trainable variable the block reads: a model's blocks() lists them), so gradients reach them
 * through the recomputation. `constants` (an attention bias, RoPE tables: tensors made before
 * the block that it reads but takes no gradient for) are kept until the backward pass and
 * handed to the recomputation; the block must read them from its argument, not its closure.
 * `inputs`: other tensors the block reads that DO take a gradient, as x does (a decoder block's
 * encoder output, which its cross-attention reads). Frozen variables need not be listed (no
 * gradient is computed for them).
 */
export function checkpointed(
  block: (x: tf.Tensor, constants: tf.Tensor[], inputs: tf.Tensor[]) => tf.Tensor,
  x: tf.Tensor,
  constants: tf.Tensor[],
  variables: tf.Variable[],
  inputs: tf.Tensor[] = [],
): tf.Tensor {
  const n = inputs.length;
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const [input, ...extra] = args.slice(0, 1 + n) as tf.Tensor[];
    save([input, ...extra, ...constants]);
    return {
      value: block(input, constants, extra), // not recorded: its activations are freed with the caller's scope
      gradFunc: (dy: tf.Tensor, [saved, ...rest]: tf.Tensor[]) => {
        // d/d(x, inputs, variables) of sum(block(x) * dy) is the vector-Jacobian product the tape needs
        const [savedInputs, kept] = [rest.slice(0, n), rest.slice(n)];
        const wrt = [saved, ...savedInputs, ...variables];
        const { value, grads } = gradients(() => tf.sum(tf.mul(block(saved, kept, savedInputs), dy)), wrt);
        value.dispose();
        return grads.map((g, i) => g ?? tf.zerosLike(wrt[i]));
      },
    };
  });
  return f(x, ...inputs, ...variables);
}
