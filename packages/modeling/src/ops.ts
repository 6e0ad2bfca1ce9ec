// Building blocks shared by the architectures. Each is written with tfjs ops, and uses a
// fused kernel with its own backward instead when the active backend registers one
// (the torch backend does: fewer, larger kernels; same arithmetic).
import * as tf from '@tensorflow/tfjs-core';
import { hasAnnealKernel as hasKernel, runAnnealKernel as run } from '@anneal/core';

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * gamma + beta. */
export function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  if (hasKernel('AnnealLayerNorm')) {
    // tfjs types custom-gradient inputs as (Tensor | GradSaveFunc)[]; the order is fixed.
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [xi, g, b, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      const [y, mean, rstd] = run('AnnealLayerNorm', { x: xi, gamma: g, beta: b }, { eps });
      save([xi, g, b, mean, rstd]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
          const [sx, sg, sb, sm, sr] = saved;
          return run('AnnealLayerNormGrad', { dy, x: sx, gamma: sg, beta: sb, mean: sm, rstd: sr }, {});
        },
      };
    });
    return f(x, gamma, beta);
  }
  const { mean, variance } = tf.moments(x, -1, true);
  return tf.add(tf.mul(tf.div(tf.sub(x, mean), tf.sqrt(tf.add(variance, eps))), gamma), beta);
}

/**
 * RMSNorm over the last axis (Llama, Qwen2): x / sqrt(mean(x^2) + eps) * weight.
 * No mean subtraction and no bias, unlike LayerNorm.
 */
export function rmsNorm(x: tf.Tensor, weight: tf.Tensor, eps: number): tf.Tensor {
  if (hasKernel('AnnealRmsNorm')) {
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [xi, w, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      const [y, rstd] = run('AnnealRmsNorm', { x: xi, weight: w }, { eps });
      save([xi, w, rstd]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, [sx, sw, sr]: tf.Tensor[]) =>
          run('AnnealRmsNormGrad', { dy, x: sx, weight: sw, rstd: sr }, {}),
      };
    });
    return f(x, weight);
  }
  const rstd = tf.rsqrt(tf.add(tf.mean(tf.square(x), -1, true), eps)); // [..., 1]
  return tf.mul(tf.mul(x, rstd), weight);
}

/**
 * log σ(x) = −softplus(−x), stable at any |x| (softplus is, and so is its gradient σ).
 * Not tf.logSigmoid: its gradient closes over its input, which a surrounding tf.tidy frees
 * before the backward pass runs.
 */
export function logSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.neg(tf.softplus(tf.neg(x)));
}

/** GELU: exact x * Phi(x), or the tanh approximation (gelu_new / gelu_pytorch_tanh). */
export function gelu(x: tf.Tensor, approximate: 'tanh' | 'none'): tf.Tensor {
  if (hasKernel('AnnealGelu')) {
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [xi, save] = args as [tf.Tensor, tf.GradSaveFunc];
      save([xi]);
      return {
        value: run('AnnealGelu', { x: xi }, { approximate })[0],
        gradFunc: (dy: tf.Tensor, [sx]: tf.Tensor[]) => run('AnnealGeluGrad', { dy, x: sx }, { approximate })[0],
      };
    });
    return f(x);
  }
  if (approximate === 'none') return tf.mul(tf.mul(x, 0.5), tf.add(1, tf.erf(tf.div(x, Math.SQRT2))));
  // 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
  const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(tf.mul(x, x), x))));
  return tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)));
}

/**
 * Gated MLP activation: silu(gate) * up (SwiGLU, Llama/Qwen/Mistral), gelu(gate) * up
 * (GeGLU; gelu_tanh as Gemma's gelu_pytorch_tanh). On the torch backend one kernel each way
 * that saves only gate and up for the backward pass.
 */
export function gatedActivation(gate: tf.Tensor, up: tf.Tensor, act: 'silu' | 'gelu' | 'gelu_tanh'): tf.Tensor {
  if (hasKernel('AnnealGatedAct')) {
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [g, u, save] = args as [tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      save([g, u]);
      return {
        value: run('AnnealGatedAct', { gate: g, up: u }, { act })[0],
        gradFunc: (dy: tf.Tensor, [sg, su]: tf.Tensor[]) =>
          run('AnnealGatedActGrad', { dy, gate: sg, up: su }, { act }),
      };
    });
    return f(gate, up);
  }
  const h = act === 'silu' ? tf.mul(gate, tf.sigmoid(gate)) : gelu(gate, act === 'gelu_tanh' ? 'tanh' : 'none');
  return tf.mul(h, up);
}

/**
 * y + u bᵀ for y [N, out], u [N, r], b [out, r]: a low-rank term added to a projection's
 * output (LoRA). On the torch backend the sum happens inside the product (addmm), without a
 * separate pass over [N, out]; the gradients are dy, dy b and dyᵀ u.
 */
export function addProduct(y: tf.Tensor2D, u: tf.Tensor2D, b: tf.Tensor2D): tf.Tensor2D {
  if (hasKernel('AnnealAddProduct')) {
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [yi, ui, bi, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      save([ui, bi]);
      return {
        value: run('AnnealAddProduct', { y: yi, u: ui, b: bi }, {})[0],
        gradFunc: (dy: tf.Tensor, [su, sb]: tf.Tensor[]) => [
          tf.clone(dy),
          tf.matMul(dy, sb),
          tf.matMul(dy, su, true, false),
        ],
      };
    });
    return f(y, u, b) as tf.Tensor2D;
  }
  return tf.add(y, tf.matMul(u, b, false, true));
}

/**
 * Rotary position embedding (RoPE, Su et al. 2021) as transformers applies it: x cos +
 * rotate_half(x) sin, rotate_half(x) = [-x2, x1] over the halves of the last axis; x
 * [B, H, T, D], cos and sin [B|1, 1, T, D]. One kernel each way on the torch backend.
 */
export function applyRotary(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  if (hasKernel('AnnealRope')) {
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [xi, save] = args as [tf.Tensor, tf.GradSaveFunc];
      save([cos, sin]);
      return {
        value: run('AnnealRope', { x: xi, cos, sin }, {})[0],
        gradFunc: (dy: tf.Tensor, [c, s]: tf.Tensor[]) => run('AnnealRopeGrad', { dy, cos: c, sin: s }, {})[0],
      };
    });
    return f(x);
  }
  const [x1, x2] = tf.split(x, 2, -1);
  return tf.add(tf.mul(x, cos), tf.mul(tf.concat([tf.neg(x2), x1], -1), sin));
}

/** Attention dropout on the probabilities: its rate and the seed its mask is drawn from. */
export interface AttentionDropout {
  rate: number;
  seed: number;
}

/**
 * Scaled dot-product attention: softmax(q k^T * scale + bias) v, for q, k, v [B, H, T, D]
 * and an additive bias broadcastable to [B, H, T, T] (0 where allowed, -1e9 where masked).
 * `dropout` drops probabilities (training only; the mask is drawn from its seed, so a
 * recomputation draws it again). `causal` promises that the bias is exactly the causal mask
 * (queries and keys aligned, no padding): a GPU kernel may then skip reading it.
 */
export function attention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  bias: tf.Tensor,
  scale: number,
  dropout?: AttentionDropout,
  causal = false,
  /** The bias is a parameter's function (T5's learned position bias), not a mask: it needs a gradient. */
  trainableBias = false,
): tf.Tensor {
  // the fused kernel's backward gives q, k and v their gradients, not the bias (a mask elsewhere)
  if (hasKernel('AnnealAttention') && !trainableBias) {
    const drop = dropout ? { dropout: dropout.rate, seed: dropout.seed } : {};
    const f = tf.customGrad((...args: Array<tf.Tensor | tf.GradSaveFunc>) => {
      const [qi, ki, vi, save] = args as [tf.Tensor, tf.Tensor, tf.Tensor, tf.GradSaveFunc];
      const [y, ...saved] = run('AnnealAttention', { q: qi, k: ki, v: vi, bias }, { scale, causal, ...drop });
      // Two kinds of kernel: one that returns each query's log-sum-exp (its backward,
      // AnnealAttentionGrad, rebuilds the probabilities from q, k, the bias and it, and the
      // dropout mask from its seed: no [B, H, T, S] kept), and a GPU one (SDPA, without
      // dropout) that returns y with its backward graph and the q, k, v it recorded
      // (AnnealAttentionGradAutograd).
      const graph = saved.length === 4;
      save(graph ? saved : [qi, ki, vi, bias, saved[0]]);
      return {
        value: y,
        gradFunc: (dy: tf.Tensor, s: tf.Tensor[]) =>
          graph
            ? run('AnnealAttentionGradAutograd', { dy, y: s[0], q: s[1], k: s[2], v: s[3] }, {})
            : run('AnnealAttentionGrad', { dy, q: s[0], k: s[1], v: s[2], bias: s[3], lse: s[4] }, { scale, ...drop }),
      };
    });
    return f(q, k, v);
  }
  const probs = tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), scale), bias), -1); // [B, H, T, T]
  return tf.matMul(dropout ? tf.dropout(probs, dropout.rate, undefined, dropout.seed) : probs, v); // [B, H, T, D]
}

/** softmax(q k^T * scale + bias): the attention probabilities [B, H, T, S] (for outputAttentions). */
export function attentionProbs(q: tf.Tensor, k: tf.Tensor, bias: tf.Tensor, scale: number): tf.Tensor4D {
  return tf.softmax(tf.add(tf.mul(tf.matMul(q, k, false, true), scale), bias), -1) as tf.Tensor4D;
}
