// A causal LM's head as a thing of its own: final hidden rows [N, C] to logits [N, V]. The
// model's forward uses it on every position at once; the chunked loss (head-chunks.ts) uses it
// a slice of rows at a time, so that the [N, V] logits never exist together.
import * as tf from '@tensorflow/tfjs-core';
import { Linear, applyLayer, type Modules } from './layers.js';

export interface LmHead {
  readonly vocabSize: number;
  /**
   * hidden rows [N, C] -> logits [N, V], as the model's forward computes them (soft-capped where
   * it caps). `firstRow`: where these rows start among the batch's (a chunk's offset), so that
   * what is drawn per row (an adapter's dropout mask) differs from chunk to chunk.
   */
  logits(hidden: tf.Tensor2D, firstRow?: number): tf.Tensor2D;
  /** The trainable variables logits() reads (what a recomputation must take gradients for). */
  trainableVariables(): tf.Variable[];
  /**
   * Set when logits() is softcap(hidden · weightᵀ) with a frozen weight and nothing else (a
   * LoRA or QLoRA run's head): its gradient with respect to the hidden rows has a closed form,
   * so a chunked loss takes it in the forward pass instead of running the head again.
   */
  readonly frozen?: { weight: tf.Tensor2D; softcap?: number | null };
  /**
   * Set when logits() is softcap(hidden · weightᵀ) and nothing else (a tied head, or a plain
   * bias-free projection without an adapter), trainable or not: generation may then keep the
   * weight transposed for its decode steps (see generate.ts).
   */
  readonly plain?: { weight: tf.Tensor2D; softcap?: number | null };
}

/** Gemma's final_logit_softcapping: cap * tanh(x / cap). */
export const softcap = (x: tf.Tensor, cap: number | null | undefined) =>
  cap ? tf.mul(tf.tanh(tf.div(x, cap)), cap) : x;

/**
 * The head of m: logits = hidden · weightᵀ with `tiedTo` (the token table's parameter name, a
 * tied head), else the projection layer `layer` (lm_head, or whatever wraps it: an adapter).
 */
export function lmHeadOf(
  m: Modules,
  vocabSize: number,
  o: { tiedTo: string; softcap?: number | null } | { layer: string; softcap?: number | null },
): LmHead {
  const layer = 'layer' in o ? m.layers.get(o.layer) : undefined;
  const weight =
    'tiedTo' in o
      ? m.params.get(o.tiedTo)
      : layer instanceof Linear && layer.layout === 'linear' && !layer.bias
        ? layer.weight
        : undefined;
  return {
    vocabSize,
    ...(weight && !weight.trainable && { frozen: { weight: weight as tf.Tensor2D, softcap: o.softcap } }),
    ...(weight && { plain: { weight: weight as tf.Tensor2D, softcap: o.softcap } }),
    logits: (hidden) => {
      const z =
        'tiedTo' in o ? tf.matMul(hidden, m.params.get(o.tiedTo)!, false, true) : applyLayer(m, o.layer, hidden);
      return softcap(z, o.softcap) as tf.Tensor2D; // [N, V]
    },
    trainableVariables: () => {
      if ('tiedTo' in o) return [m.params.get(o.tiedTo)!].filter((v) => v.trainable);
      if (!layer) throw new Error(`the model has no layer ${o.layer}`);
      return [...new Set(layer.variables().map(([, v]) => v))].filter((v) => v.trainable);
    },
  };
}
