// GPT-2 (Radford et al., 2019), as transformers' GPT2LMHeadModel: learned token and
// position embeddings, pre-LayerNorm blocks of causal self-attention and a GELU MLP,
// a final LayerNorm, and an LM head tied to the token embedding.
// Parameters are tf.Variables keyed by their Hugging Face names; the projections (GPT-2's
// Conv1D, weight [in, out]: x @ W + b) and embedding tables are layers, declared once in
// gpt2Layers and called by name.
import * as tf from '@tensorflow/tfjs-core';
import { checkpointed, deriveSeed } from '@anneal/core';
import { applyLayer, trainableOf, type LayerSpec, type Modules } from '../layers.js';
import { lmHeadOf, type LmHead } from '../lm-head.js';
import { attention, attentionProbs, gelu, layerNorm } from '../ops.js';
import { tidy } from '../generate.js';
import { staticCacheBias } from '../kv-cache.js';
import {
  attentionBias,
  defaultPositions,
  staticMask,
  staticPosition,
  type ForwardArgs,
  type KvCache,
  type ModelOutput,
} from '../types.js';
import type { Gpt2Config } from './config.js';

export type Params = Map<string, tf.Variable>;

interface DropoutOptions {
  training: boolean;
  dropoutSeed: number;
}

/** Hugging Face parameter names and shapes of a GPT2LMHeadModel (lm_head is tied to wte). */
export function gpt2ParamShapes(c: Gpt2Config): Array<[string, number[]]> {
  const C = c.nEmbd;
  const inner = c.nInner ?? 4 * C;
  const shapes: Array<[string, number[]]> = [
    ['transformer.wte.weight', [c.vocabSize, C]],
    ['transformer.wpe.weight', [c.nPositions, C]],
  ];
  for (let i = 0; i < c.nLayer; i++) {
    const h = `transformer.h.${i}`;
    shapes.push(
      [`${h}.ln_1.weight`, [C]],
      [`${h}.ln_1.bias`, [C]],
      [`${h}.attn.c_attn.weight`, [C, 3 * C]],
      [`${h}.attn.c_attn.bias`, [3 * C]],
      [`${h}.attn.c_proj.weight`, [C, C]],
      [`${h}.attn.c_proj.bias`, [C]],
      [`${h}.ln_2.weight`, [C]],
      [`${h}.ln_2.bias`, [C]],
      [`${h}.mlp.c_fc.weight`, [C, inner]],
      [`${h}.mlp.c_fc.bias`, [inner]],
      [`${h}.mlp.c_proj.weight`, [inner, C]],
      [`${h}.mlp.c_proj.bias`, [C]],
    );
  }
  shapes.push(['transformer.ln_f.weight', [C]], ['transformer.ln_f.bias', [C]]);
  return shapes;
}

/** GPT-2's layers: token and position tables (wte is also the LM head), four Conv1D projections per block. */
export function gpt2Layers(c: Gpt2Config, lmHead = true): LayerSpec[] {
  const specs: LayerSpec[] = [
    { kind: 'embedding', name: 'transformer.wte', tiedToHead: lmHead },
    { kind: 'embedding', name: 'transformer.wpe', tiedToHead: false },
  ];
  for (let i = 0; i < c.nLayer; i++)
    for (const m of ['attn.c_attn', 'attn.c_proj', 'mlp.c_fc', 'mlp.c_proj'])
      specs.push({ kind: 'projection', name: `transformer.h.${i}.${m}`, layout: 'conv1d', role: 'hidden' });
  return specs;
}

/** Module names of GPT-2's blocks. */
export const gpt2Blocks = (c: Gpt2Config) => Array.from({ length: c.nLayer }, (_, i) => `transformer.h.${i}`);

/**
 * Fresh parameters, initialised as GPT2PreTrainedModel._init_weights: N(0, 0.02) for
 * embeddings and projections, N(0, 0.02 / sqrt(2 * nLayer)) for the residual output
 * projections (c_proj), zeros for biases, ones for LayerNorm gains.
 */
export function initGpt2Params(c: Gpt2Config, seed: number): Params {
  const params: Params = new Map();
  gpt2ParamShapes(c).forEach(([name, shape], i) => {
    let init: tf.Tensor;
    if (name.endsWith('ln_1.weight') || name.endsWith('ln_2.weight') || name.endsWith('ln_f.weight'))
      init = tf.ones(shape);
    else if (name.endsWith('.bias')) init = tf.zeros(shape);
    else {
      const std = name.endsWith('c_proj.weight') ? c.initializerRange / Math.sqrt(2 * c.nLayer) : c.initializerRange;
      init = tf.randomNormal(shape, 0, std, 'float32', deriveSeed(seed, i));
    }
    params.set(name, tf.variable(init, true));
    init.dispose();
  });
  return params;
}

function activation(x: tf.Tensor, kind: Gpt2Config['activationFunction']): tf.Tensor {
  return kind === 'relu' ? tf.relu(x) : gelu(x, kind === 'gelu' ? 'none' : 'tanh');
}

function dropout(x: tf.Tensor, rate: number, o: DropoutOptions, ...site: number[]): tf.Tensor {
  if (!o.training || rate === 0) return x;
  return tf.dropout(x, rate, undefined, deriveSeed(o.dropoutSeed ?? 0, ...site));
}

/** GPT-2's transformer: ids [B, T] to final hidden states [B, T, C] (see ForwardArgs). */
export function gpt2Hidden(
  c: Gpt2Config,
  m: Modules,
  a: ForwardArgs,
): { hidden: tf.Tensor3D; cache: KvCache; hiddenStates: tf.Tensor3D[]; attentions: tf.Tensor4D[] } {
  const o = { training: a.training ?? false, dropoutSeed: a.dropoutSeed ?? 0 };
  const [B, T] = a.inputIds.shape;
  const C = c.nEmbd;
  const H = c.nHead;
  const D = C / H;
  const sc = a.staticCache;
  const past = sc ? sc.length : (a.pastKeyValues?.[0]?.key.shape[2] ?? 0);
  const get = (name: string) => m.params.get(name)!;
  const conv1d = (name: string, x: tf.Tensor) => applyLayer(m, name, x); // Conv1D: x [..., in] @ W [in, out] + b
  if (past + T > c.nPositions)
    throw new Error(`GPT-2 sees at most nPositions ${c.nPositions} positions, got ${past + T}`);

  // Embeddings.
  const positions = a.positionIds ?? defaultPositions(B, T, past); // [B, T]
  const tokEmb = applyLayer(m, 'transformer.wte', a.inputIds); // [B, T, C]
  const posEmb = applyLayer(m, 'transformer.wpe', positions); // [B, T, C]
  let x = dropout(tf.add(tokEmb, posEmb), c.embdPdrop, o, -1, 0); // [B, T, C]

  // Attention bias: future keys and padded keys get -1e9.
  const position = sc ? staticPosition(a) : undefined; // static cache index of the first token
  const attnBias = sc
    ? staticCacheBias(B, T, sc.maxLength, position!, staticMask(a)) // [B, 1, T, L]
    : attentionBias(B, T, past, a.attentionMask, true, a.documentIds); // [B|1, 1, T, past + T]
  const causalOnly = !sc && past === 0 && !a.attentionMask && !a.documentIds; // the bias is the causal mask alone
  const checkpointing = Boolean(a.gradientCheckpointing) && o.training && !a.useCache && !a.outputAttentions;
  const hidden: tf.Tensor3D[] = [];
  const attentions: tf.Tensor4D[] = [];
  const cache: KvCache = [];

  for (let l = 0; l < c.nLayer; l++) {
    const h = `transformer.h.${l}`;
    if (a.outputHiddenStates) hidden.push(x as tf.Tensor3D);
    const prev = a.pastKeyValues?.[l];
    // One scope per block: what backward needs is kept by the tape, the rest is freed
    // now rather than at the end of the forward pass (lower peak memory).
    // One block, a function of its input (what activation checkpointing recomputes).
    const layer = (x: tf.Tensor, [bias]: tf.Tensor[]) => {
      // Causal self-attention.
      const n1 = layerNorm(x, get(`${h}.ln_1.weight`), get(`${h}.ln_1.bias`), c.layerNormEpsilon);
      const qkv = conv1d(`${h}.attn.c_attn`, n1); // [B, T, 3C]
      const [q, kNew, vNew] = tf.split(qkv, 3, -1).map((t) => tf.transpose(tf.reshape(t, [B, T, H, D]), [0, 2, 1, 3])); // [B, H, T, D]
      let [k, v] = [kNew, vNew];
      if (sc)
        ({ key: k, value: v } = sc.write(l, kNew, vNew, position!)); // [B, H, L, D]
      else if (prev) {
        k = tf.concat([prev.key, k], 2); // [B, H, past + T, D]
        v = tf.concat([prev.value, v], 2);
      }
      const drop =
        o.training && c.attnPdrop > 0 ? { rate: c.attnPdrop, seed: deriveSeed(o.dropoutSeed ?? 0, l, 0) } : undefined;
      const scale = 1 / Math.sqrt(D);
      const att = attention(q, k, v, bias, scale, drop, causalOnly); // softmax(q k^T / sqrt(D) + bias) v: [B, H, T, D]
      const y = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B, T, C]); // [B, T, C]
      const attnOut = conv1d(`${h}.attn.c_proj`, y);
      const r = tf.add(x, dropout(attnOut, c.residPdrop, o, l, 1));

      // MLP.
      const n2 = layerNorm(r, get(`${h}.ln_2.weight`), get(`${h}.ln_2.bias`), c.layerNormEpsilon);
      const inner = activation(conv1d(`${h}.mlp.c_fc`, n2), c.activationFunction); // [B, T, 4C]
      const mlpOut = conv1d(`${h}.mlp.c_proj`, inner); // [B, T, C]
      const probs = a.outputAttentions ? attentionProbs(q, k, bias, scale) : undefined;
      return [
        tf.add(r, dropout(mlpOut, c.residPdrop, o, l, 2)),
        a.useCache && !sc ? { key: k as tf.Tensor4D, value: v as tf.Tensor4D } : undefined,
        probs,
      ] as const;
    };
    // Activation checkpointing (training only): keep the block's input, recompute the rest in backward.
    const [out, kv, probs] = checkpointing
      ? [tidy(() => checkpointed((xi, ts) => layer(xi, ts)[0], x, [attnBias], trainableOf(m, h))), undefined, undefined]
      : tidy(() => layer(x, [attnBias]));
    x = out as tf.Tensor3D;
    if (kv) cache.push(kv);
    if (probs) attentions.push(probs);
  }

  x = layerNorm(x, get('transformer.ln_f.weight'), get('transformer.ln_f.bias'), c.layerNormEpsilon);
  if (a.outputHiddenStates) hidden.push(x as tf.Tensor3D);
  return { hidden: x as tf.Tensor3D, cache, hiddenStates: hidden, attentions };
}

/** The LM head, tied to the token embedding: logits = x @ wte^T. */
export const gpt2Head = (c: Gpt2Config, m: Modules): LmHead =>
  lmHeadOf(m, c.vocabSize, { tiedTo: 'transformer.wte.weight' });

/** GPT2LMHeadModel's forward pass: logits [B, T, V]. */
export function gpt2Forward(c: Gpt2Config, m: Modules, a: ForwardArgs): ModelOutput {
  const { hidden, cache, hiddenStates, attentions } = gpt2Hidden(c, m, a);
  const [B, T, C] = hidden.shape;
  const logits = gpt2Head(c, m).logits(tf.reshape(hidden, [B * T, C]) as tf.Tensor2D); // [B*T, V]
  return {
    logits: tf.reshape(logits, [B, T, c.vocabSize]),
    ...(a.useCache && { pastKeyValues: cache }),
    ...(a.outputHiddenStates && { hiddenStates }),
    ...(a.outputAttentions && { attentions }),
  };
}
