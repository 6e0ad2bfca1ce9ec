// Anneal's own kernels, outside tfjs's set, declared once: each name with its inputs (by
// name, in the order the native kernel takes them), its attributes, and whether it returns
// several tensors. A backend that implements them (the torch backend) registers them from
// this table; callers run them through runAnnealKernel, which checks the names and types at
// compile time and hands the inputs over by name, never by the key order of an object.
// Backends without them (cpu, wasm) run the same arithmetic as tfjs ops (hasAnnealKernel).
import * as tf from '@tensorflow/tfjs-core';

interface KernelSpec {
  /** Input names in the native kernel's order, or 'list' for a variable number (AdamW's p, g, m, v per parameter). */
  readonly inputs: readonly string[] | 'list';
  /** Returns several tensors (else one). */
  readonly multi: boolean;
}

export const ANNEAL_KERNELS = {
  // x, gamma, beta over the last axis -> y, mean, rstd; and back to dx, dgamma, dbeta
  AnnealLayerNorm: { inputs: ['x', 'gamma', 'beta'], multi: true },
  AnnealLayerNormGrad: { inputs: ['dy', 'x', 'gamma', 'beta', 'mean', 'rstd'], multi: true },
  // x, weight -> y, rstd; and back to dx, dweight
  AnnealRmsNorm: { inputs: ['x', 'weight'], multi: true },
  AnnealRmsNormGrad: { inputs: ['dy', 'x', 'weight', 'rstd'], multi: true },
  AnnealGelu: { inputs: ['x'], multi: false },
  AnnealGeluGrad: { inputs: ['dy', 'x'], multi: false },
  // act(gate) * up -> y; and back to dgate, dup
  AnnealGatedAct: { inputs: ['gate', 'up'], multi: false },
  AnnealGatedActGrad: { inputs: ['dy', 'gate', 'up'], multi: true },
  // x [B, H, T, D], cos, sin [B|1, 1, T, D] -> x cos + rotate_half(x) sin
  AnnealRope: { inputs: ['x', 'cos', 'sin'], multi: false },
  AnnealRopeGrad: { inputs: ['dy', 'cos', 'sin'], multi: false },
  // y [N, out] + u [N, r] b [out, r]ᵀ (LoRA)
  AnnealAddProduct: { inputs: ['y', 'u', 'b'], multi: false },
  // a static KV cache [B, H, L, D], new rows [B, H, T, D], int32 [1] index of the first -> the
  // cache, written in place
  AnnealCacheWrite: { inputs: ['cache', 'update', 'position'], multi: false },
  // generation's next token: logits [B, V], the generator's 32-bit words [B] -> ids, log-probs
  AnnealSampleTokens: { inputs: ['logits', 'words'], multi: true },
  // packed codes, byte table [256, 2], block scales -> [rows, cols]; int8 codes, row scales -> [rows, cols]
  AnnealDequant4bit: { inputs: ['codes', 'book', 'scales'], multi: false },
  AnnealDequantInt8: { inputs: ['codes', 'scales'], multi: false },
  AnnealInt8Linear: { inputs: ['x', 'codes', 'scales'], multi: false },
  // a checkpoint tensor read from its file
  AnnealReadFile: { inputs: [], multi: false },
  // logits [N, V], targets [N] (-100 ignored) -> loss sum, log-probs; and back to dlogits
  AnnealCrossEntropySum: { inputs: ['logits', 'targets'], multi: true },
  AnnealCrossEntropySumGrad: { inputs: ['dy', 'logProbs', 'targets'], multi: false },
  // h [N, C], head weight [V, C], targets -> loss sum, logsumexp [N]; and back to dh, dw
  AnnealLinearCrossEntropy: { inputs: ['h', 'w', 'targets'], multi: true },
  AnnealLinearCrossEntropyGrad: { inputs: ['dy', 'h', 'w', 'targets', 'lse'], multi: true },
  // q, k, v [B, H, T, D], additive bias -> y and what its backward needs: probs (one kernel
  // kind), or y with its graph and the q, k, v it recorded (a GPU's SDPA)
  AnnealAttention: { inputs: ['q', 'k', 'v', 'bias'], multi: true },
  AnnealAttentionGrad: { inputs: ['dy', 'q', 'k', 'v', 'bias', 'lse'], multi: true },
  AnnealAttentionGradAutograd: { inputs: ['dy', 'y', 'q', 'k', 'v'], multi: true },
  // p, g, m, v for each parameter [, lr, step as 0-d tensors] -> p, m, v for each parameter
  AnnealAdamW: { inputs: 'list', multi: true },
} as const satisfies Record<string, KernelSpec>;

export type AnnealKernel = keyof typeof ANNEAL_KERNELS;

/** Each kernel's attributes. */
export interface AnnealKernelAttrs {
  AnnealLayerNorm: { eps: number };
  AnnealLayerNormGrad: Record<string, never>;
  AnnealRmsNorm: { eps: number };
  AnnealRmsNormGrad: Record<string, never>;
  AnnealGelu: { approximate: 'tanh' | 'none' };
  AnnealGeluGrad: { approximate: 'tanh' | 'none' };
  AnnealGatedAct: { act: 'silu' | 'gelu' | 'gelu_tanh' };
  AnnealGatedActGrad: { act: 'silu' | 'gelu' | 'gelu_tanh' };
  AnnealRope: Record<string, never>;
  AnnealRopeGrad: Record<string, never>;
  AnnealAddProduct: Record<string, never>;
  AnnealCacheWrite: Record<string, never>;
  AnnealSampleTokens: { temperature: number; topK: number; topP: number; minP: number };
  AnnealDequant4bit: { rows: number; cols: number; blockSize: number };
  AnnealDequantInt8: { rows: number; cols: number };
  /** x [N, cols] · (codes × scales) [rows, cols]ᵀ -> [N, rows]. */
  AnnealInt8Linear: { rows: number; cols: number };
  AnnealReadFile: { path: string; offset: number; dtype: 'F32' | 'F16' | 'BF16'; shape: number[] };
  AnnealCrossEntropySum: Record<string, never>;
  AnnealCrossEntropySumGrad: Record<string, never>;
  AnnealLinearCrossEntropy: { chunk: number };
  AnnealLinearCrossEntropyGrad: { chunk: number };
  /** block: query rows per block (default: one block's float32 scores under 64 MiB). */
  AnnealAttention: { scale: number; causal: boolean; dropout?: number; seed?: number; block?: number };
  AnnealAttentionGrad: { scale: number; dropout?: number; seed?: number; block?: number };
  AnnealAttentionGradAutograd: Record<string, never>;
  AnnealAdamW: {
    beta1: number;
    beta2: number;
    eps: number;
    /** One per parameter. */
    weightDecays: number[];
    /** lr and step: numbers here, or (scalarInputs) the last two inputs. */
    lr?: number;
    biasCorrection1?: number;
    biasCorrection2?: number;
    step?: number;
    scalarInputs?: boolean;
  };
}

type Spec<K extends AnnealKernel> = (typeof ANNEAL_KERNELS)[K];

/** The inputs of kernel K: a tensor for each declared name, or a list. */
export type AnnealKernelInputs<K extends AnnealKernel> = Spec<K>['inputs'] extends readonly string[]
  ? { [N in Spec<K>['inputs'][number]]: tf.Tensor }
  : tf.Tensor[];

/** Does the active backend implement kernel `name`? */
export function hasAnnealKernel(name: AnnealKernel): boolean {
  return tf.getKernel(name, tf.getBackend()) !== undefined;
}

/** The inputs in the order the kernel takes them (declared names; a list as given). */
export function orderedInputs(name: AnnealKernel, inputs: tf.NamedTensorInfoMap): tf.TensorInfo[] {
  const spec: KernelSpec = ANNEAL_KERNELS[name];
  if (spec.inputs === 'list') {
    const keys = Object.keys(inputs).sort((a, b) => Number(a) - Number(b));
    return keys.map((k) => inputs[k]!);
  }
  const names = spec.inputs;
  return names.map((n) => {
    const t = inputs[n];
    if (!t) throw new Error(`kernel ${name}: input ${n} is missing (it takes ${names.join(', ')})`);
    return t;
  });
}

/** Runs one of Anneal's kernels on the active backend; always returns a list of outputs. */
export function runAnnealKernel<K extends AnnealKernel>(
  name: K,
  inputs: AnnealKernelInputs<K>,
  attrs: AnnealKernelAttrs[K],
): tf.Tensor[] {
  const named: tf.NamedTensorMap = Array.isArray(inputs)
    ? Object.fromEntries(inputs.map((t, i) => [String(i), t]))
    : (inputs as tf.NamedTensorMap);
  const out = tf.engine().runKernel(name, named, attrs as unknown as tf.NamedAttrMap);
  return Array.isArray(out) ? out : [out];
}
