// Llama (Touvron et al., 2023), as transformers' LlamaForCausalLM, and the families built
// on its block: token embedding, pre-RMSNorm blocks of grouped-query self-attention with
// rotary position embeddings (RoPE, Su et al. 2021) and a gated MLP, a final RMSNorm and an
// LM head (tied or not). What each family changes, switched by its config:
//   Qwen2: biases on q/k/v.   Qwen3: RMSNorm on each query/key head (q_norm, k_norm), head_dim
//   of its own.   Mistral (and Qwen2/Qwen3 with use_sliding_window): sliding-window attention.
//   SmolLM3: NoPE layers (no rotary embedding).   Phi-3: fused qkv_proj and gate_up_proj,
//   RoPE on part of each head.   Gemma 3: embeddings scaled by sqrt(hidden), RMSNorm as
//   x (1 + w), norms before and after attention and MLP, q/k norms, GeGLU, scores scaled by
//   query_pre_attn_scalar^-0.5, sliding (local, their own RoPE base) and full layers,
//   optional tanh soft-capping of scores and logits.
// The projections (nn.Linear, weight [out, in]: x @ W^T (+ b)) and the token table are
// layers, declared once in llamaLayers and called by name.
import * as tf from '@tensorflow/tfjs-core';
import { checkpointed, deriveSeed } from '@anneal/core';
import { tidy } from '../generate.js';
import { applyLayer, trainableOf, type LayerSpec, type Modules } from '../layers.js';
import { lmHeadOf, softcap, type LmHead } from '../lm-head.js';
import { applyRotary, attention, attentionProbs, gatedActivation, rmsNorm } from '../ops.js';
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
import { headDimOf, layerKinds, ropeLayers, type LlamaConfig } from './config.js';

export type Params = Map<string, tf.Variable>;

const isGemma = (c: LlamaConfig) => c.modelType === 'gemma3_text';
const hasQkNorm = (c: LlamaConfig) => c.modelType === 'qwen3' || isGemma(c);
const isFused = (c: LlamaConfig) => c.modelType === 'phi3';

/** Dimensions of each head that RoPE rotates (Phi-3: partial_rotary_factor of them). */
export const rotaryDim = (c: LlamaConfig) => Math.floor(headDimOf(c) * c.partialRotaryFactor);

/** The projections of one block, by module name under model.layers.N. */
function projections(c: LlamaConfig): string[] {
  if (isFused(c)) return ['self_attn.qkv_proj', 'self_attn.o_proj', 'mlp.gate_up_proj', 'mlp.down_proj'];
  return [
    'self_attn.q_proj',
    'self_attn.k_proj',
    'self_attn.v_proj',
    'self_attn.o_proj',
    'mlp.gate_proj',
    'mlp.up_proj',
    'mlp.down_proj',
  ];
}

/** The norms of one block (their weights [C], or [D] for the q/k norms). */
function norms(c: LlamaConfig): string[] {
  const n = ['input_layernorm', 'post_attention_layernorm'];
  if (isGemma(c)) n.push('pre_feedforward_layernorm', 'post_feedforward_layernorm');
  if (hasQkNorm(c)) n.push('self_attn.q_norm', 'self_attn.k_norm');
  return n;
}

/** Hugging Face parameter names and shapes (lm_head left out when tied). */
export function llamaParamShapes(c: LlamaConfig, withLmHead = true): Array<[string, number[]]> {
  const C = c.hiddenSize;
  const D = headDimOf(c);
  const [H, KV, I] = [c.numAttentionHeads, c.numKeyValueHeads, c.intermediateSize];
  const qkvBias = c.attentionBias || c.modelType === 'qwen2';
  const out: Record<string, number> = {
    'self_attn.q_proj': H * D,
    'self_attn.k_proj': KV * D,
    'self_attn.v_proj': KV * D,
    'self_attn.o_proj': C,
    'self_attn.qkv_proj': (H + 2 * KV) * D,
    'mlp.gate_proj': I,
    'mlp.up_proj': I,
    'mlp.gate_up_proj': 2 * I,
    'mlp.down_proj': C,
  };
  const inDim = (m: string) => (m === 'self_attn.o_proj' ? H * D : m === 'mlp.down_proj' ? I : C);
  const hasBias = (m: string) =>
    m.startsWith('mlp.') ? c.mlpBias : m === 'self_attn.o_proj' ? c.attentionBias : qkvBias && !isFused(c);
  const shapes: Array<[string, number[]]> = [['model.embed_tokens.weight', [c.vocabSize, C]]];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const l = `model.layers.${i}`;
    for (const m of projections(c)) {
      shapes.push([`${l}.${m}.weight`, [out[m], inDim(m)]]);
      if (hasBias(m)) shapes.push([`${l}.${m}.bias`, [out[m]]]);
    }
    for (const n of norms(c)) shapes.push([`${l}.${n}.weight`, [n.startsWith('self_attn.') ? D : C]]);
  }
  shapes.push(['model.norm.weight', [C]]);
  if (withLmHead && !c.tieWordEmbeddings) shapes.push(['lm_head.weight', [c.vocabSize, C]]);
  return shapes;
}

/** The token table (the LM head too when tied), the projections of each block, and lm_head when untied. */
export function llamaLayers(c: LlamaConfig, withLmHead = true): LayerSpec[] {
  const tied = withLmHead && c.tieWordEmbeddings;
  const specs: LayerSpec[] = [
    { kind: 'embedding', name: 'model.embed_tokens', tiedToHead: tied, paddingIdx: c.padTokenId ?? undefined },
  ];
  for (let i = 0; i < c.numHiddenLayers; i++)
    for (const m of projections(c))
      specs.push({ kind: 'projection', name: `model.layers.${i}.${m}`, layout: 'linear', role: 'hidden' });
  if (withLmHead && !c.tieWordEmbeddings)
    specs.push({ kind: 'projection', name: 'lm_head', layout: 'linear', role: 'head' });
  return specs;
}

/** Module names of the decoder blocks. */
export const llamaBlocks = (c: LlamaConfig) => Array.from({ length: c.numHiddenLayers }, (_, i) => `model.layers.${i}`);

/**
 * Fresh parameters as the families' _init_weights: N(0, 0.02) weights, zero biases, unit
 * norms (Gemma's, x (1 + w), start at w = 0), the padding row of the table zero.
 */
export function initLlamaParams(c: LlamaConfig, seed: number, withLmHead = true): Params {
  const params: Params = new Map();
  llamaParamShapes(c, withLmHead).forEach(([name, shape], i) => {
    let init = name.endsWith('norm.weight')
      ? isGemma(c)
        ? tf.zeros(shape)
        : tf.ones(shape)
      : name.endsWith('.bias')
        ? tf.zeros(shape)
        : tf.randomNormal(shape, 0, c.initializerRange, 'float32', deriveSeed(seed, i));
    if (name === 'model.embed_tokens.weight' && c.padTokenId !== null && c.padTokenId < c.vocabSize) {
      const row = tf.oneHot(tf.tensor1d([c.padTokenId], 'int32'), c.vocabSize).reshape([c.vocabSize, 1]);
      const zeroed = tf.mul(init, tf.sub(1, row));
      tf.dispose([init, row]);
      init = zeroed;
    }
    params.set(name, tf.variable(init, true));
    init.dispose();
  });
  return params;
}

/**
 * RoPE inverse frequencies, in float32 as transformers computes them, over the rotary part
 * of a head (all of it but Phi-3's partial_rotary_factor), with linear or llama3 scaling;
 * `local`: Gemma 3's sliding layers, rope_local_base_freq and no scaling.
 */
export function ropeInvFreq(c: LlamaConfig, local = false, seqLen = 0): Float32Array {
  const D = rotaryDim(c);
  const theta = local ? (c.ropeLocalBaseFreq ?? c.ropeTheta) : c.ropeTheta;
  const inv = Float32Array.from({ length: D / 2 }, (_, i) => 1 / Math.pow(theta, Math.fround((2 * i) / D)));
  const s = local ? null : c.ropeScaling;
  if ((s?.rope_type ?? s?.type) === 'longrope') {
    // longrope: each frequency divided by its factor, the long ones beyond the pretraining context
    const ext = seqLen > longropeOriginal(c) ? s!.long_factor! : s!.short_factor!;
    return inv.map((f, i) => f / ext[i]);
  }
  const kind = s?.rope_type ?? s?.type ?? 'default';
  if (!s || kind === 'default') return inv;
  const factor = s.factor ?? 1;
  if (kind === 'linear') return inv.map((f) => f / factor);
  // llama3: long wavelengths slowed by `factor`, short ones kept, a smooth blend between.
  const [low, high, old] = [
    s.low_freq_factor ?? 1,
    s.high_freq_factor ?? 4,
    s.original_max_position_embeddings ?? 8192,
  ];
  const lowWave = old / low;
  const highWave = old / high;
  return inv.map((f) => {
    const wave = (2 * Math.PI) / f;
    if (wave < highWave) return f;
    if (wave > lowWave) return f / factor;
    const smooth = (old / wave - low) / (high - low);
    return (1 - smooth) * (f / factor) + smooth * f;
  });
}

/** The context longrope's short factors are for: original_max_position_embeddings (or the rope_scaling's). */
const longropeOriginal = (c: LlamaConfig) =>
  c.originalMaxPositionEmbeddings ?? c.ropeScaling?.original_max_position_embeddings ?? c.maxPositionEmbeddings;

/**
 * The factor cos and sin are scaled by: longrope's attention_factor, by default
 * sqrt(1 + ln(s) / ln(original)) for s = max_position_embeddings / original (1 when s <= 1).
 */
export function ropeAttentionFactor(c: LlamaConfig): number {
  const s = c.ropeScaling;
  if ((s?.rope_type ?? s?.type) !== 'longrope') return 1;
  if (s!.attention_factor !== undefined) return s!.attention_factor;
  const original = longropeOriginal(c);
  const factor = c.maxPositionEmbeddings / original;
  return factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(original));
}

/**
 * cos and sin [B, 1, T, R] of positions [B, T] (the frequencies repeated twice, as
 * transformers; R the rotary dimensions), computed on the device in float32 as transformers
 * does: nothing is read back to the host, so a step stays recordable.
 */
function rotaryTables(invFreq: Float32Array, positions: tf.Tensor2D, scale = 1): [tf.Tensor4D, tf.Tensor4D] {
  const [B, T] = positions.shape;
  const R = 2 * invFreq.length;
  return tf.tidy(() => {
    const angles = tf.mul(tf.reshape(tf.cast(positions, 'float32'), [B, T, 1]), tf.tensor1d(invFreq)); // [B, T, R/2]
    const full = tf.reshape(tf.concat([angles, angles], -1), [B, 1, T, R]);
    if (scale === 1) return [tf.cos(full) as tf.Tensor4D, tf.sin(full) as tf.Tensor4D];
    return [tf.mul(tf.cos(full), scale) as tf.Tensor4D, tf.mul(tf.sin(full), scale) as tf.Tensor4D];
  });
}

/** RoPE on the first R dimensions of each head, the rest passed through (all of them when R = D). */
function rotate(x: tf.Tensor, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor {
  const D = x.shape[3]!;
  const R = cos.shape[3]!;
  if (R === D) return applyRotary(x, cos, sin);
  const [rot, pass] = tf.split(x, [R, D - R], -1);
  return tf.concat([applyRotary(rot, cos, sin), pass], -1);
}

/** x tanh(x / cap) soft-capping (Gemma): values squashed into (-cap, cap). */

/** The decoder stack: ids [B, T] to final hidden states [B, T, C] (see ForwardArgs). */
export function llamaHidden(
  c: LlamaConfig,
  m: Modules,
  a: ForwardArgs,
): { hidden: tf.Tensor3D; cache: KvCache; hiddenStates: tf.Tensor3D[]; attentions: tf.Tensor4D[] } {
  const [B, T] = a.inputIds.shape;
  const C = c.hiddenSize;
  const D = headDimOf(c);
  const [H, KV] = [c.numAttentionHeads, c.numKeyValueHeads];
  const sc = a.staticCache;
  const past = sc ? sc.length : (a.pastKeyValues?.[0]?.key.shape[2] ?? 0);
  const get = (name: string) => m.params.get(name)!;
  const linear = (name: string, x: tf.Tensor) => applyLayer(m, name, x); // nn.Linear: x @ W^T (+ b)
  // RMSNorm; Gemma's multiplies by (1 + w)
  const norm = (x: tf.Tensor, name: string) =>
    rmsNorm(x, isGemma(c) ? tf.add(get(`${name}.weight`), 1) : get(`${name}.weight`), c.rmsNormEps);
  const training = a.training ?? false;

  let x = applyLayer(m, 'model.embed_tokens', a.inputIds) as tf.Tensor3D; // [B, T, C]
  if (isGemma(c)) x = tf.mul(x, Math.sqrt(C)); // Gemma scales the embeddings by sqrt(hidden)
  const positions = a.positionIds ?? defaultPositions(B, T, past); // [B, T]
  const kinds = layerKinds(c);
  const withRope = ropeLayers(c);
  // (longrope picks its factors by the sequence's length: past + T here, the cache index, where
  // transformers takes max(position_ids) + 1; the two differ only for left-padded rows)
  const global = rotaryTables(ropeInvFreq(c, false, past + T), positions, ropeAttentionFactor(c)); // [B, 1, T, R] cos, sin
  const local = isGemma(c) && kinds.includes('sliding') ? rotaryTables(ropeInvFreq(c, true), positions) : global;
  // Attention bias [B|1, 1, T, past + T]: causal and padding, and for sliding layers the window.
  // With a static cache [B, 1, T, L] over all its slots, from tensors only (see staticCacheBias).
  const position = sc ? staticPosition(a) : undefined; // static cache index of the first token
  const biasOf = (window?: number) =>
    sc
      ? staticCacheBias(B, T, sc.maxLength, position!, staticMask(a), window)
      : attentionBias(B, T, past, a.attentionMask, true, a.documentIds, window);
  const fullBias = biasOf();
  const slidingBias = kinds.includes('sliding') ? biasOf(c.slidingWindow ?? undefined) : fullBias;
  const causalOnly = !sc && past === 0 && !a.attentionMask && !a.documentIds; // the bias is the causal mask alone
  const scale = isGemma(c) ? 1 / Math.sqrt(c.queryPreAttnScalar ?? D) : 1 / Math.sqrt(D);
  const checkpointing = Boolean(a.gradientCheckpointing) && training && !a.useCache && !a.outputAttentions;
  const hiddenStates: tf.Tensor3D[] = [];
  const attentions: tf.Tensor4D[] = [];
  const cache: KvCache = [];

  for (let i = 0; i < c.numHiddenLayers; i++) {
    const l = `model.layers.${i}`;
    if (a.outputHiddenStates) hiddenStates.push(x);
    const prev = a.pastKeyValues?.[i];
    const sliding = kinds[i] === 'sliding';
    const [cosL, sinL] = sliding ? local : global;
    const biasL = sliding ? slidingBias : fullBias;
    // One block, a function of its input (what activation checkpointing recomputes).
    const layer = (x: tf.Tensor, [cos, sin, bias]: tf.Tensor[]) => {
      // Grouped-query self-attention with rotary positions.
      const n1 = norm(x, `${l}.input_layernorm`);
      const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, D]), [0, 2, 1, 3]); // [B, n, T, D]
      let [q, k, v] = isFused(c)
        ? tf.split(linear(`${l}.self_attn.qkv_proj`, n1), [H * D, KV * D, KV * D], -1) // Phi-3: one fused projection
        : [
            linear(`${l}.self_attn.q_proj`, n1),
            linear(`${l}.self_attn.k_proj`, n1),
            linear(`${l}.self_attn.v_proj`, n1),
          ];
      [q, k, v] = [heads(q, H), heads(k, KV), heads(v, KV)];
      if (hasQkNorm(c)) {
        // Qwen3 / Gemma 3: RMSNorm over each head's dimensions, before RoPE
        q = norm(q, `${l}.self_attn.q_norm`);
        k = norm(k, `${l}.self_attn.k_norm`);
      }
      if (withRope[i]) {
        q = rotate(q, cos, sin);
        k = rotate(k, cos, sin);
      } // SmolLM3's NoPE layers: no rotary embedding at all
      if (sc)
        ({ key: k, value: v } = sc.write(i, k, v, position!)); // [B, KV, L, D]
      else if (prev) {
        k = tf.concat([prev.key, k], 2); // [B, KV, past + T, D]
        v = tf.concat([prev.value, v], 2);
      }
      // Each key/value head serves H / KV consecutive query heads.
      const S = sc ? sc.maxLength : past + T;
      // (tiled at rank 4: tfjs has no gradient for rank-5 tile)
      const repeat = (t: tf.Tensor) =>
        H === KV ? t : tf.reshape(tf.tile(tf.reshape(t, [B, KV, 1, S * D]), [1, 1, H / KV, 1]), [B, H, S, D]);
      const drop =
        training && c.attentionDropout > 0
          ? { rate: c.attentionDropout, seed: deriveSeed(a.dropoutSeed ?? 0, i) }
          : undefined;
      const att = c.attnLogitSoftcapping
        ? tf.matMul(
            tf.softmax(
              tf.add(softcap(tf.mul(tf.matMul(q, repeat(k), false, true), scale), c.attnLogitSoftcapping), bias),
            ),
            repeat(v),
          )
        : attention(q, repeat(k), repeat(v), bias, scale, drop, causalOnly && !sliding); // [B, H, T, D]
      let y = linear(`${l}.self_attn.o_proj`, tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B, T, H * D])); // [B, T, C]
      if (isGemma(c)) y = norm(y, `${l}.post_attention_layernorm`); // Gemma normalises the sublayer's output too
      const r = tf.add(x, y);

      // Gated MLP: down(act(gate(x)) * up(x)); SwiGLU, or GeGLU (tanh GELU) for Gemma.
      const n2 = norm(r, isGemma(c) ? `${l}.pre_feedforward_layernorm` : `${l}.post_attention_layernorm`);
      const [gate, up] = isFused(c)
        ? tf.split(linear(`${l}.mlp.gate_up_proj`, n2), 2, -1) // Phi-3: gate | up in one projection
        : [linear(`${l}.mlp.gate_proj`, n2), linear(`${l}.mlp.up_proj`, n2)]; // [B, T, I]
      let mlp = linear(`${l}.mlp.down_proj`, gatedActivation(gate, up, c.hiddenAct === 'silu' ? 'silu' : 'gelu_tanh'));
      if (isGemma(c)) mlp = norm(mlp, `${l}.post_feedforward_layernorm`);
      const pr = a.outputAttentions ? attentionProbs(q, repeat(k), bias, scale) : undefined;
      const kv = a.useCache && !sc ? { key: k as tf.Tensor4D, value: v as tf.Tensor4D } : undefined;
      return [tf.add(r, mlp), kv, pr] as const;
    };
    // Activation checkpointing (training only): keep the block's input, recompute the rest in backward.
    const [out, kv, probs] = checkpointing
      ? [
          tidy(() => checkpointed((xi, ts) => layer(xi, ts)[0], x, [cosL, sinL, biasL], trainableOf(m, l))),
          undefined,
          undefined,
        ]
      : tidy(() => layer(x, [cosL, sinL, biasL]));
    x = out as tf.Tensor3D;
    if (kv) cache.push(kv);
    if (probs) attentions.push(probs);
  }
  x = norm(x, 'model.norm') as tf.Tensor3D;
  if (a.outputHiddenStates) hiddenStates.push(x);
  return { hidden: x, cache, hiddenStates, attentions };
}

/** The LM head: tied (x @ embed_tokens^T) or the lm_head layer, soft-capped when final_logit_softcapping is set. */
export const llamaHead = (c: LlamaConfig, m: Modules): LmHead =>
  c.tieWordEmbeddings
    ? lmHeadOf(m, c.vocabSize, { tiedTo: 'model.embed_tokens.weight', softcap: c.finalLogitSoftcapping })
    : lmHeadOf(m, c.vocabSize, { layer: 'lm_head', softcap: c.finalLogitSoftcapping });

/** The causal LM's forward pass: logits [B, T, V] (Gemma's soft-capped when final_logit_softcapping is set). */
export function llamaForward(c: LlamaConfig, m: Modules, a: ForwardArgs): ModelOutput {
  const { hidden, cache, hiddenStates, attentions } = llamaHidden(c, m, a);
  const [B, T, C] = hidden.shape;
  const logits = llamaHead(c, m).logits(tf.reshape(hidden, [B * T, C]) as tf.Tensor2D); // [B*T, V]
  return {
    logits: tf.reshape(logits, [B, T, c.vocabSize]),
    ...(a.useCache && { pastKeyValues: cache }),
    ...(a.outputHiddenStates && { hiddenStates }),
    ...(a.outputAttentions && { attentions }),
  };
}
