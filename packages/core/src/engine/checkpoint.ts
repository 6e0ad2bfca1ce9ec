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
 * Frozen variables need not be listed (no gradient is computed for them).
 */
export function checkpointed(
  block: (x: tf.Tensor, constants: tf.Tensor[]) => tf.Tensor,
  x: tf.Tensor,
  constants: tf.Tensor[],
  variables: tf.Variable[],
): tf.Tensor {
  const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
    const save = args[args.length - 1] as tf.GradSaveFunc;
    const input = args[0] as tf.Tensor;
    save([input, ...constants]);
    return {
      value: block(input, constants), // not recorded: its activations are freed with the caller's scope
      gradFunc: (dy: tf.Tensor, [saved, ...kept]: tf.Tensor[]) => {
        // d/d(x, variables) of sum(block(x) * dy) is the vector-Jacobian product the tape needs
        const { value, grads } = gradients(() => tf.sum(tf.mul(block(saved, kept), dy)), [saved, ...variables]);
        value.dispose();
        return grads.map((g, i) => g ?? tf.zerosLike(i === 0 ? saved : variables[i - 1]));
      },
    };
  });
  return f(x, ...variables);
}
