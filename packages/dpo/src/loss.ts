// The DPO loss family as pure tensor functions (Rafailov et al. 2023 and its variants, with
// TRL's names and formulas). Everything is a function of four per-pair sequence log-probs:
//   logits = (π_c − π_r) − (ref_c − ref_r)   (how much more the policy prefers chosen than the reference does)
// Log-sigmoid is written as −softplus(−x): stable for any logit difference.
import * as tf from '@tensorflow/tfjs-core';
import { logSigmoid } from '@anneal/modeling';

export type DpoLossType = 'sigmoid' | 'ipo' | 'hinge' | 'robust' | 'kto_pair';

export interface DpoLogps {
  policyChosenLogps: tf.Tensor1D;
  policyRejectedLogps: tf.Tensor1D;
  /** Ignored (taken as 0) with referenceFree. */
  referenceChosenLogps?: tf.Tensor1D;
  referenceRejectedLogps?: tf.Tensor1D;
}

export interface DpoLossOptions {
  /** Inverse temperature of the implicit reward (TRL default 0.1). */
  beta: number;
  lossType?: DpoLossType;
  /** cDPO / robust DPO: the assumed probability that a pair's label is flipped (0 ≤ ε < 0.5). */
  labelSmoothing?: number;
  /** Compare against a uniform reference (reference log-probs 0). */
  referenceFree?: boolean;
}

export interface DpoLossResult {
  /** Per-pair losses [N] ([2N] for kto_pair); their mean is TRL's loss. */
  losses: tf.Tensor1D;
  /** Implicit rewards β · (log π − log ref): [N] each (metrics; not part of the loss). */
  chosenRewards: tf.Tensor1D;
  rejectedRewards: tf.Tensor1D;
}

/** The DPO loss of a batch of pairs. Call inside tf.tidy or a gradient function. */
export function dpoLoss(l: DpoLogps, o: DpoLossOptions): DpoLossResult {
  const { beta } = o;
  const ls = o.labelSmoothing ?? 0;
  const zero = tf.zerosLike(l.policyChosenLogps);
  const refC = o.referenceFree ? zero : (l.referenceChosenLogps ?? required('referenceChosenLogps'));
  const refR = o.referenceFree ? zero : (l.referenceRejectedLogps ?? required('referenceRejectedLogps'));
  const chosenRatio = tf.sub(l.policyChosenLogps, refC); // [N] log π/ref of chosen
  const rejectedRatio = tf.sub(l.policyRejectedLogps, refR); // [N]
  const logits = tf.sub(chosenRatio, rejectedRatio); // [N]
  const bl = tf.mul(beta, logits);
  let losses: tf.Tensor;
  switch (o.lossType ?? 'sigmoid') {
    case 'sigmoid': // −log σ(β·logits), label-smoothed (conservative DPO)
      losses = tf.sub(tf.mul(tf.neg(logSigmoid(bl)), 1 - ls), tf.mul(logSigmoid(tf.neg(bl)), ls));
      break;
    case 'robust': // Chowdhury et al. 2024: unbiased under label noise ε
      if (ls >= 0.5) throw new RangeError(`robust DPO needs labelSmoothing < 0.5, got ${ls}`);
      losses = tf.div(tf.add(tf.mul(tf.neg(logSigmoid(bl)), 1 - ls), tf.mul(logSigmoid(tf.neg(bl)), ls)), 1 - 2 * ls);
      break;
    case 'hinge': // SLiC
      losses = tf.relu(tf.sub(1, bl));
      break;
    case 'ipo': // Azar et al. 2023: (logits − 1/(2β))², on averaged log-probs
      losses = tf.square(tf.sub(logits, 1 / (2 * beta)));
      break;
    case 'kto_pair': {
      // KTO on pairs, as TRL 0.8: each side against the other side's batch-mean KL (clamped at 0)
      const chosenKl = tf.maximum(tf.mean(chosenRatio), 0);
      const rejectedKl = tf.maximum(tf.mean(rejectedRatio), 0);
      losses = tf.concat([
        tf.sub(1, tf.sigmoid(tf.mul(beta, tf.sub(chosenRatio, rejectedKl)))),
        tf.sub(1, tf.sigmoid(tf.mul(beta, tf.sub(chosenKl, rejectedRatio)))),
      ]);
      break;
    }
    default:
      throw new RangeError(
        `unknown DPO loss type ${String(o.lossType)}: expected sigmoid, ipo, hinge, robust or kto_pair`,
      );
  }
  return {
    losses: losses as tf.Tensor1D,
    chosenRewards: tf.mul(beta, chosenRatio) as tf.Tensor1D,
    rejectedRewards: tf.mul(beta, rejectedRatio) as tf.Tensor1D,
  };
}

function required(name: string): never {
  throw new RangeError(`dpoLoss: ${name} is missing; pass the reference log-probs or set referenceFree`);
}
