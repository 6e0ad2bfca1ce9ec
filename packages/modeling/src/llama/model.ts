// Llama (Touvron et al., 2023), as transformers' LlamaForCausalLM, and Qwen2 (the same
// with biases on the q/k/v projections): token embedding, pre-RMSNorm blocks of
// grouped-query self-attention with rotary position embeddings (RoPE, Su et al. 2021) and
// a SwiGLU MLP, a final RMSNorm and an LM head (tied or not). The projections (nn.Linear,
// weight [out, in]: x @ W^T (+ b)) and the token table are layers, declared once in
// llamaLayers and called by name.
import * as tf from '@tensorflow/tfjs-core';
import { deriveSeed } from '@anneal/core';
import { tidy } from '../generate.js';
import { applyLayer, type LayerSpec, type Modules } from '../layers.js';
import { applyRotary, attention, attentionProbs, gatedActivation, rmsNorm } from '../ops.js';
import { attentionBias, defaultPositions, type ForwardArgs, type KvCache, type ModelOutput } from '../types.js';
import { headDimOf, type LlamaConfig } from './config.js';

export type Params = Map<string, tf.Variable>;

/** Hugging Face parameter names and shapes (lm_head left out when tied). */
export function llamaParamShapes(c: LlamaConfig, withLmHead = true): Array<[string, number[]]> {
  const C = c.hiddenSize;
  const D = headDimOf(c);
  const [H, KV, I] = [c.numAttentionHeads, c.numKeyValueHeads, c.intermediateSize];
  const qkvBias = c.attentionBias || c.modelType === 'qwen2';
  const shapes: Array<[string, number[]]> = [['model.embed_tokens.weight', [c.vocabSize, C]]];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const l = `model.layers.${i}`;
    shapes.push(
      [`${l}.self_attn.q_proj.weight`, [H * D, C]],
      [`${l}.self_attn.k_proj.weight`, [KV * D, C]],
      [`${l}.self_attn.v_proj.weight`, [KV * D, C]],
    );
    if (qkvBias)
      shapes.push(
        [`${l}.self_attn.q_proj.bias`, [H * D]],
        [`${l}.self_attn.k_proj.bias`, [KV * D]],
        [`${l}.self_attn.v_proj.bias`, [KV * D]],
      );
    shapes.push([`${l}.self_attn.o_proj.weight`, [C, H * D]]);
    if (c.attentionBias) shapes.push([`${l}.self_attn.o_proj.bias`, [C]]);
    shapes.push(
      [`${l}.mlp.gate_proj.weight`, [I, C]],
      [`${l}.mlp.up_proj.weight`, [I, C]],
      [`${l}.mlp.down_proj.weight`, [C, I]],
    );
    if (c.mlpBias)
      shapes.push([`${l}.mlp.gate_proj.bias`, [I]], [`${l}.mlp.up_proj.bias`, [I]], [`${l}.mlp.down_proj.bias`, [C]]);
    shapes.push([`${l}.input_layernorm.weight`, [C]], [`${l}.post_attention_layernorm.weight`, [C]]);
  }
  shapes.push(['model.norm.weight', [C]]);
  if (withLmHead && !c.tieWordEmbeddings) shapes.push(['lm_head.weight', [c.vocabSize, C]]);
  return shapes;
}

const PROJECTIONS = [
  'self_attn.q_proj',
  'self_attn.k_proj',
  'self_attn.v_proj',
  'self_attn.o_proj',
  'mlp.gate_proj',
  'mlp.up_proj',
  'mlp.down_proj',
];

/** The token table (the LM head too when tied), seven projections per block, and lm_head when untied. */
export function llamaLayers(c: LlamaConfig, withLmHead = true): LayerSpec[] {
  const tied = withLmHead && c.tieWordEmbeddings;
  const specs: LayerSpec[] = [{ kind: 'embedding', name: 'model.embed_tokens', tiedToHead: tied }];
  for (let i = 0; i < c.numHiddenLayers; i++)
    for (const m of PROJECTIONS)
      specs.push({ kind: 'projection', name: `model.layers.${i}.${m}`, layout: 'linear', role: 'hidden' });
  if (withLmHead && !c.tieWordEmbeddings)
    specs.push({ kind: 'projection', name: 'lm_head', layout: 'linear', role: 'head' });
  return specs;
}

/** Module names of the decoder blocks. */
export const llamaBlocks = (c: LlamaConfig) => Array.from({ length: c.numHiddenLayers }, (_, i) => `model.layers.${i}`);

/** Fresh parameters as LlamaPreTrainedModel._init_weights: N(0, 0.02) weights, zero biases, unit norms. */
export function initLlamaParams(c: LlamaConfig, seed: number, withLmHead = true): Params {
  const params: Params = new Map();
  llamaParamShapes(c, withLmHead).forEach(([name, shape], i) => {
    const init = name.endsWith('norm.weight')
      ? tf.ones(shape)
      : name.endsWith('.bias')
        ? tf.zeros(shape)
        : tf.randomNormal(shape, 0, c.initializerRange, 'float32', deriveSeed(seed, i));
    params.set(name, tf.variable(init, true));
    init.dispose();
  });
  return params;
}

/** RoPE inverse frequencies, in float32 as transformers computes them, with linear or llama3 scaling. */
export function ropeInvFreq(c: LlamaConfig): Float32Array {
  const D = headDimOf(c);
  const inv = Float32Array.from({ length: D / 2 }, (_, i) => 1 / Math.pow(c.ropeTheta, Math.fround((2 * i) / D)));
  const s = c.ropeScaling;
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

/**
 * cos and sin [B, 1, T, D] of positions [B, T] (the frequencies repeated twice, as
 * transformers), computed on the device in float32 as transformers does: nothing is read
 * back to the host, so a step stays recordable.
 */
function rotaryTables(invFreq: Float32Array, positions: tf.Tensor2D): [tf.Tensor4D, tf.Tensor4D] {
  const [B, T] = positions.shape;
  const D = 2 * invFreq.length;
  return tf.tidy(() => {
    const angles = tf.mul(tf.reshape(tf.cast(positions, 'float32'), [B, T, 1]), tf.tensor1d(invFreq)); // [B, T, D/2]
    const full = tf.reshape(tf.concat([angles, angles], -1), [B, 1, T, D]);
    return [tf.cos(full) as tf.Tensor4D, tf.sin(full) as tf.Tensor4D];
  });
}

/** The decoder stack: ids [B, T] to final hidden states [B, T, C] (see ForwardArgs). */
export function llamaHidden(
  c: LlamaConfig,
  m: Modules,
  a: ForwardArgs,
): { hidden: tf.Tensor3D; cache: KvCache; hiddenStates: tf.Tensor3D[]; attentions: tf.Tensor4D[] } {
  const [B, T] = a.inputIds.shape;
  const D = headDimOf(c);
  const [H, KV] = [c.numAttentionHeads, c.numKeyValueHeads];
  const past = a.pastKeyValues?.[0]?.key.shape[2] ?? 0;
  const get = (name: string) => m.params.get(name);
  const linear = (name: string, x: tf.Tensor) => applyLayer(m, name, x); // nn.Linear: x @ W^T (+ b)
  const training = a.training ?? false;

  let x = applyLayer(m, 'model.embed_tokens', a.inputIds) as tf.Tensor3D; // [B, T, C]
  const positions = a.positionIds ?? defaultPositions(B, T, past); // [B, T]
  const [cos, sin] = rotaryTables(ropeInvFreq(c), positions); // [B, 1, T, D]
  const bias = attentionBias(B, T, past, a.attentionMask, true, a.documentIds); // [B|1, 1, T, past + T]
  const causalOnly = past === 0 && !a.attentionMask && !a.documentIds; // the bias is the causal mask alone
  const hiddenStates: tf.Tensor3D[] = [];
  const attentions: tf.Tensor4D[] = [];
  const cache: KvCache = [];

  for (let i = 0; i < c.numHiddenLayers; i++) {
    const l = `model.layers.${i}`;
    if (a.outputHiddenStates) hiddenStates.push(x);
    const prev = a.pastKeyValues?.[i];
    const [out, kv, probs] = tidy(() => {
      // Grouped-query self-attention with rotary positions.
      const n1 = rmsNorm(x, get(`${l}.input_layernorm.weight`)!, c.rmsNormEps);
      const heads = (t: tf.Tensor, n: number) => tf.transpose(tf.reshape(t, [B, T, n, D]), [0, 2, 1, 3]); // [B, n, T, D]
      const q = applyRotary(heads(linear(`${l}.self_attn.q_proj`, n1), H), cos, sin);
      let k = applyRotary(heads(linear(`${l}.self_attn.k_proj`, n1), KV), cos, sin);
      let v = heads(linear(`${l}.self_attn.v_proj`, n1), KV);
      if (prev) {
        k = tf.concat([prev.key, k], 2); // [B, KV, past + T, D]
        v = tf.concat([prev.value, v], 2);
      }
      // Each key/value head serves H / KV consecutive query heads.
      const S = past + T;
      // (tiled at rank 4: tfjs has no gradient for rank-5 tile)
      const repeat = (t: tf.Tensor) =>
        H === KV ? t : tf.reshape(tf.tile(tf.reshape(t, [B, KV, 1, S * D]), [1, 1, H / KV, 1]), [B, H, S, D]);
      const scale = 1 / Math.sqrt(D);
      const dropProbs =
        training && c.attentionDropout > 0
          ? (pr: tf.Tensor) => tf.dropout(pr, c.attentionDropout, undefined, deriveSeed(a.dropoutSeed ?? 0, i))
          : undefined;
      const att = attention(q, repeat(k), repeat(v), bias, scale, dropProbs, causalOnly); // [B, H, T, D]
      const y = tf.reshape(tf.transpose(att, [0, 2, 1, 3]), [B, T, H * D]);
      const r = tf.add(x, linear(`${l}.self_attn.o_proj`, y)); // [B, T, C]

      // SwiGLU MLP: down(silu(gate(x)) * up(x)).
      const n2 = rmsNorm(r, get(`${l}.post_attention_layernorm.weight`)!, c.rmsNormEps);
      const gate = linear(`${l}.mlp.gate_proj`, n2); // [B, T, I]
      const up = linear(`${l}.mlp.up_proj`, n2);
      const mlp = linear(`${l}.mlp.down_proj`, gatedActivation(gate, up, 'silu'));
      const pr = a.outputAttentions ? attentionProbs(q, repeat(k), bias, scale) : undefined;
      return [tf.add(r, mlp), a.useCache ? { key: k as tf.Tensor4D, value: v as tf.Tensor4D } : undefined, pr] as const;
    });
    x = out as tf.Tensor3D;
    if (kv) cache.push(kv);
    if (probs) attentions.push(probs);
  }
  x = rmsNorm(x, get('model.norm.weight')!, c.rmsNormEps) as tf.Tensor3D;
  if (a.outputHiddenStates) hiddenStates.push(x);
  return { hidden: x, cache, hiddenStates, attentions };
}

/** LlamaForCausalLM's forward pass: logits [B, T, V]. */
export function llamaForward(c: LlamaConfig, m: Modules, a: ForwardArgs): ModelOutput {
  const { hidden, cache, hiddenStates, attentions } = llamaHidden(c, m, a);
  const [B, T, C] = hidden.shape;
  // Tied: logits = x @ embed_tokens^T; else the lm_head layer.
  const logits = c.tieWordEmbeddings
    ? tf.reshape(tf.matMul(tf.reshape(hidden, [B * T, C]), m.params.get('model.embed_tokens.weight')!, false, true), [
        B,
        T,
        c.vocabSize,
      ])
    : applyLayer(m, 'lm_head', hidden); // [B, T, V]
  return {
    logits,
    ...(a.useCache && { pastKeyValues: cache }),
    ...(a.outputHiddenStates && { hiddenStates }),
    ...(a.outputAttentions && { attentions }),
  };
}
