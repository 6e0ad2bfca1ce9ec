// T5 (Raffel et al. 2020), as transformers' T5ForConditionalGeneration: a shared embedding;
// an encoder stack of pre-norm blocks (bidirectional self-attention, MLP) and a decoder stack
// (causal self-attention, cross-attention to the encoder, MLP). No absolute positions: block 0
// of each stack learns a bias per head for each bucket of relative distance (exact for short
// distances, logarithmic up to maxDistance), shared by the stack's blocks. Norms are RMS-style
// (no mean, no bias); attention is not scaled by 1/√d (the initialisation accounts for it).
// The LM head is the shared embedding applied to the decoder output × dModel^-0.5 when tied.
import * as tf from '@tensorflow/tfjs-core';
import { checkpointed, deriveSeed } from '@anneal/core';
import { tidy } from '../generate.js';
import { applyLayer, trainableOf, type LayerSpec, type Modules } from '../layers.js';
import { attention, gelu, rmsNorm } from '../ops.js';
import { causalBias, paddingBias, type KvCache, type LayerKv } from '../types.js';
import type { T5Config } from './config.js';

export type Params = Map<string, tf.Variable>;
export type Stack = 'encoder' | 'decoder';

const blockCount = (c: T5Config, s: Stack) => (s === 'encoder' ? c.numLayers : c.numDecoderLayers);
const ffnLayer = (s: Stack) => (s === 'encoder' ? 1 : 2); // the MLP's index in a block's layer list
const ffnNames = (c: T5Config) => (c.feedForwardProj === 'relu' ? ['wi', 'wo'] : ['wi_0', 'wi_1', 'wo']);

export function t5ParamShapes(c: T5Config): Array<[string, number[]]> {
  const [C, I, HD] = [c.dModel, c.dFf, c.numHeads * c.dKv];
  const s: Array<[string, number[]]> = [['shared.weight', [c.vocabSize, C]]];
  const attn = (p: string) => {
    for (const m of ['q', 'k', 'v']) s.push([`${p}.${m}.weight`, [HD, C]]);
    s.push([`${p}.o.weight`, [C, HD]]);
  };
  for (const stack of ['encoder', 'decoder'] as const) {
    for (let i = 0; i < blockCount(c, stack); i++) {
      const b = `${stack}.block.${i}.layer`;
      attn(`${b}.0.SelfAttention`);
      if (i === 0)
        s.push([`${b}.0.SelfAttention.relative_attention_bias.weight`, [c.relativeAttentionNumBuckets, c.numHeads]]);
      s.push([`${b}.0.layer_norm.weight`, [C]]);
      if (stack === 'decoder') {
        attn(`${b}.1.EncDecAttention`);
        s.push([`${b}.1.layer_norm.weight`, [C]]);
      }
      const f = `${b}.${ffnLayer(stack)}.DenseReluDense`;
      for (const n of ffnNames(c)) s.push([`${f}.${n}.weight`, n === 'wo' ? [C, I] : [I, C]]);
      s.push([`${b}.${ffnLayer(stack)}.layer_norm.weight`, [C]]);
    }
    s.push([`${stack}.final_layer_norm.weight`, [C]]);
  }
  if (!c.tieWordEmbeddings) s.push(['lm_head.weight', [c.vocabSize, C]]);
  return s;
}

/** T5's layers: the shared embedding (the LM head when tied), bias-free projections, an untied lm_head. */
export function t5Layers(c: T5Config): LayerSpec[] {
  const specs: LayerSpec[] = [{ kind: 'embedding', name: 'shared', tiedToHead: c.tieWordEmbeddings }];
  const proj = (name: string, role: 'hidden' | 'head' = 'hidden'): LayerSpec => ({
    kind: 'projection',
    name,
    layout: 'linear',
    role,
  });
  for (const stack of ['encoder', 'decoder'] as const)
    for (let i = 0; i < blockCount(c, stack); i++) {
      const b = `${stack}.block.${i}.layer`;
      for (const m of ['q', 'k', 'v', 'o']) specs.push(proj(`${b}.0.SelfAttention.${m}`));
      if (stack === 'decoder') for (const m of ['q', 'k', 'v', 'o']) specs.push(proj(`${b}.1.EncDecAttention.${m}`));
      for (const n of ffnNames(c)) specs.push(proj(`${b}.${ffnLayer(stack)}.DenseReluDense.${n}`));
    }
  if (!c.tieWordEmbeddings) specs.push(proj('lm_head', 'head'));
  return specs;
}

export const t5Blocks = (c: T5Config) =>
  (['encoder', 'decoder'] as const).flatMap((s) =>
    Array.from({ length: blockCount(c, s) }, (_, i) => `${s}.block.${i}`),
  );

/**
 * T5PreTrainedModel._init_weights: the embedding N(0, factor), attention q N(0, factor·(dModel·dKv)^-½),
 * k/v N(0, factor·dModel^-½), o N(0, factor·(heads·dKv)^-½), relative bias N(0, factor·dModel^-½), MLP
 * wi N(0, factor·dModel^-½), wo N(0, factor·dFf^-½), norms 1, an untied lm_head N(0, factor).
 */
export function initT5Params(c: T5Config, seed: number): Params {
  const f = c.initializerFactor;
  const std = (name: string): number => {
    if (/\.q\.weight$/.test(name)) return f * (c.dModel * c.dKv) ** -0.5;
    if (/\.[kv]\.weight$/.test(name)) return f * c.dModel ** -0.5;
    if (/\.o\.weight$/.test(name)) return f * (c.numHeads * c.dKv) ** -0.5;
    if (/relative_attention_bias/.test(name)) return f * c.dModel ** -0.5;
    if (/\.wi(_\d)?\.weight$/.test(name)) return f * c.dModel ** -0.5;
    if (/\.wo\.weight$/.test(name)) return f * c.dFf ** -0.5;
    return f; // shared, lm_head
  };
  const params: Params = new Map();
  t5ParamShapes(c).forEach(([name, shape], i) => {
    const init = /layer_norm\.weight$/.test(name)
      ? tf.ones(shape)
      : tf.randomNormal(shape, 0, std(name), 'float32', deriveSeed(seed, i));
    params.set(name, tf.variable(init, true));
    init.dispose();
  });
  return params;
}

/**
 * transformers' _relative_position_bucket for relative position n = key − query: in the
 * encoder each direction gets half the buckets; in the decoder only keys before the query
 * count. Distances below half the buckets are exact, larger ones logarithmic up to
 * maxDistance. Float32 arithmetic as torch's, so boundaries fall where transformers' do.
 */
export function relativePositionBucket(n: number, bidirectional: boolean, numBuckets: number, maxDistance: number) {
  let buckets = numBuckets;
  let ret = 0;
  if (bidirectional) {
    buckets = Math.floor(buckets / 2);
    if (n > 0) ret += buckets;
    n = Math.abs(n);
  } else n = -Math.min(n, 0);
  const maxExact = Math.floor(buckets / 2);
  if (n < maxExact) return ret + n;
  const f = Math.fround;
  const large = f(f(f(Math.log(f(n / maxExact))) / f(Math.log(maxDistance / maxExact))) * (buckets - maxExact));
  return ret + Math.min(maxExact + Math.trunc(large), buckets - 1);
}

/** The relative-position bucket of each (query, key) pair, [Tq·Tk], for queries at firstQuery.. and keys at 0..Tk−1. */
export function positionBuckets(c: T5Config, bidirectional: boolean, tq: number, tk: number, firstQuery = 0) {
  const ids = new Int32Array(tq * tk);
  for (let i = 0; i < tq; i++)
    for (let j = 0; j < tk; j++)
      ids[i * tk + j] = relativePositionBucket(
        j - (firstQuery + i),
        bidirectional,
        c.relativeAttentionNumBuckets,
        c.relativeAttentionMaxDistance,
      );
  return tf.tensor1d(ids, 'int32');
}

/** Position bias [1, H, Tq, Tk]: each pair's bucket looked up in the learned table [buckets, H]. */
export function positionBias(table: tf.Tensor, buckets: tf.Tensor, tq: number, tk: number): tf.Tensor4D {
  const H = table.shape[1]!;
  const values = tf.gather(table, buckets); // [Tq·Tk, H]
  return tf.expandDims(tf.transpose(tf.reshape(values, [tq, tk, H]), [2, 0, 1]), 0) as tf.Tensor4D; // [1, H, Tq, Tk]
}

interface StackArgs {
  training: boolean;
  dropoutSeed: number;
  gradientCheckpointing: boolean;
}

/**
 * Multi-head attention without scaling: queries from x [B, Tq, C]; keys and values projected
 * from kv [B, Tk, C], or given already projected (a decoder's cached cross-attention), after
 * `past` ones (a decoder's cached self-attention). Returns the output [B, Tq, C] and the keys
 * and values attended to, [B, H, Tk, D], for the next step's cache.
 */
function t5Attention(
  c: T5Config,
  m: Modules,
  p: string,
  x: tf.Tensor,
  kv: tf.Tensor | LayerKv,
  bias: tf.Tensor,
  drop?: { rate: number; seed: number },
  past?: LayerKv,
  learnedBias = false,
): { out: tf.Tensor } & LayerKv {
  const [B, Tq] = x.shape as [number, number];
  const [H, D] = [c.numHeads, c.dKv];
  const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, -1, H, D]), [0, 2, 1, 3]) as tf.Tensor4D; // [B, H, T, D]
  const q = heads(applyLayer(m, `${p}.q`, x));
  let key: tf.Tensor4D, value: tf.Tensor4D;
  if (kv instanceof tf.Tensor) {
    [key, value] = [heads(applyLayer(m, `${p}.k`, kv)), heads(applyLayer(m, `${p}.v`, kv))];
    if (past) [key, value] = [tf.concat([past.key, key], 2), tf.concat([past.value, value], 2)];
  } else [key, value] = [tf.clone(kv.key), tf.clone(kv.value)]; // a copy: the old cache is disposed, this one kept
  const ctx = tf.reshape(tf.transpose(attention(q, key, value, bias, 1, drop, false, learnedBias), [0, 2, 1, 3]), [
    B,
    Tq,
    H * D,
  ]); // [B, Tq, H·D]
  return { out: applyLayer(m, `${p}.o`, ctx), key, value };
}

/** The MLP: relu(wi x) or gelu_new(wi_0 x) ⊙ wi_1 x, then wo. */
function t5Ffn(c: T5Config, m: Modules, p: string, x: tf.Tensor, drop: (t: tf.Tensor) => tf.Tensor) {
  const inner =
    c.feedForwardProj === 'relu'
      ? tf.relu(applyLayer(m, `${p}.wi`, x))
      : tf.mul(gelu(applyLayer(m, `${p}.wi_0`, x), 'tanh'), applyLayer(m, `${p}.wi_1`, x)); // [B, T, dFf]
  return applyLayer(m, `${p}.wo`, drop(inner));
}

/**
 * A decoder's cache between generation steps: per block, its self-attention keys and values so
 * far and its cross-attention keys and values of the encoder output (computed at the first
 * step), as [self 0, cross 0, self 1, cross 1, …] so that beam search reorders both alike.
 */
export interface DecoderCache {
  /** From the previous step (absent at the first). */
  past?: KvCache;
  /** Filled in by the call: the cache for the next step. */
  present: KvCache;
}

/**
 * One stack over embedded inputs x [B, T, C]: the encoder (mask [B, T]) or the decoder (its
 * mask [B, past + T], and the encoder's output and mask for cross-attention, and optionally its
 * cache). Returns [B, T, C] after the final norm and dropout.
 */
export function t5Stack(
  c: T5Config,
  m: Modules,
  stack: Stack,
  x: tf.Tensor3D,
  mask: tf.Tensor2D | undefined,
  a: StackArgs,
  encoder?: { hidden: tf.Tensor3D; mask?: tf.Tensor2D },
  cache?: DecoderCache,
): tf.Tensor3D {
  const [, T] = x.shape;
  const P = cache?.past ? cache.past[0].key.shape[2] : 0; // positions already decoded
  const p = m.params;
  const siteBase = stack === 'encoder' ? 0 : 1 << 12;
  const rate = a.training ? c.dropoutRate : 0;
  const drop = (t: tf.Tensor, ...site: number[]) =>
    rate > 0 ? tf.dropout(t, rate, undefined, deriveSeed(a.dropoutSeed, siteBase, ...site)) : t;
  const table = p.get(`${stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`)!;
  // self-attention: block 0's learned position bias (queries at P.., keys at 0..P+T−1), looked up
  // inside each block so that the table takes its gradient there (also when the block is
  // recomputed under checkpointing), plus the causal mask (decoder) and padding
  const buckets = positionBuckets(c, stack === 'encoder', T, P + T, P);
  let selfMask: tf.Tensor = tf.zeros([1, 1, T, P + T]);
  if (stack === 'decoder') selfMask = causalBias(tf.scalar(P, 'int32'), T, P + T);
  if (mask) selfMask = tf.add(selfMask, paddingBias(mask));
  const crossBias = encoder?.mask ? paddingBias(encoder.mask) : tf.zeros([1, 1, 1, encoder?.hidden.shape[1] ?? 1]);
  let h = drop(x, -1) as tf.Tensor3D;
  const checkpointing = a.gradientCheckpointing && a.training;
  if (cache && (stack === 'encoder' || checkpointing))
    throw new Error('t5Stack: a cache is for the decoder, and not with gradient checkpointing');
  for (let i = 0; i < blockCount(c, stack); i++) {
    const b = `${stack}.block.${i}.layer`;
    const probsDrop = (j: number) =>
      rate > 0 ? { rate, seed: deriveSeed(a.dropoutSeed, siteBase, i, j, 7) } : undefined;
    // -> the block's output, then (with a cache) its self and cross keys and values
    const block = (xi: tf.Tensor, [ids, sm, cb]: tf.Tensor[], [enc]: tf.Tensor[]): tf.Tensor[] => {
      const sb = tf.add(positionBias(table, ids, T, P + T), sm); // [B|1, H, T, P + T]
      const norm = (t: tf.Tensor, l: number) => rmsNorm(t, p.get(`${b}.${l}.layer_norm.weight`)!, c.layerNormEpsilon);
      const self = t5Attention(
        c,
        m,
        `${b}.0.SelfAttention`,
        norm(xi, 0),
        norm(xi, 0),
        sb,
        probsDrop(0),
        cache?.past?.[2 * i],
        true, // the learned position bias takes a gradient
      );
      let y = tf.add(xi, drop(self.out, i, 0));
      let cross: LayerKv | undefined;
      if (stack === 'decoder') {
        const r = t5Attention(
          c,
          m,
          `${b}.1.EncDecAttention`,
          norm(y, 1),
          cache?.past?.[2 * i + 1] ?? enc,
          cb,
          probsDrop(1),
        );
        y = tf.add(y, drop(r.out, i, 1));
        cross = r;
      }
      const f = ffnLayer(stack);
      const out = tf.add(
        y,
        drop(
          t5Ffn(c, m, `${b}.${f}.DenseReluDense`, norm(y, f), (t) => drop(t, i, 3)),
          i,
          2,
        ),
      );
      return cache ? [out, self.key, self.value, cross!.key, cross!.value] : [out];
    };
    const constants = [buckets, selfMask, crossBias];
    const enc = [encoder?.hidden ?? tf.zeros([1, 1, c.dModel])];
    if (checkpointing) {
      // every block reads block 0's position table; the decoder's cross-attention reads the
      // encoder output, which takes its gradient through the recomputation as the block input does
      const own = trainableOf(m, `${stack}.block.${i}`);
      const variables = table instanceof tf.Variable && table.trainable && !own.includes(table) ? [...own, table] : own;
      h = tidy(() =>
        checkpointed((xi, ts, ins) => block(xi, ts, ins)[0], h, constants, variables, stack === 'decoder' ? enc : []),
      ) as tf.Tensor3D;
    } else {
      const [out, ...kv] = tidy(() => block(h, constants, enc));
      h = out as tf.Tensor3D;
      if (cache) {
        cache.present.push({ key: kv[0] as tf.Tensor4D, value: kv[1] as tf.Tensor4D });
        cache.present.push({ key: kv[2] as tf.Tensor4D, value: kv[3] as tf.Tensor4D });
      }
    }
  }
  return drop(rmsNorm(h, p.get(`${stack}.final_layer_norm.weight`)!, c.layerNormEpsilon), -2) as tf.Tensor3D;
}

/** LM logits [B, T, V] of decoder outputs: the tied embedding after × dModel^-0.5, or lm_head. */
export function t5Logits(c: T5Config, m: Modules, hidden: tf.Tensor3D): tf.Tensor3D {
  const [B, T, C] = hidden.shape;
  if (!c.tieWordEmbeddings) return applyLayer(m, 'lm_head', hidden) as tf.Tensor3D;
  const scaled = tf.reshape(tf.mul(hidden, c.dModel ** -0.5), [B * T, C]);
  return tf.reshape(tf.matMul(scaled, m.params.get('shared.weight')!, false, true), [B, T, c.vocabSize]) as tf.Tensor3D;
}

/** transformers' _shift_right: the decoder's inputs for labels [B, T] — the start token, then labels[:-1], −100 → pad. */
export function shiftRight(labels: number[][], c: Pick<T5Config, 'decoderStartTokenId' | 'padTokenId'>): number[][] {
  return labels.map((row) => [c.decoderStartTokenId, ...row.slice(0, -1)].map((t) => (t === -100 ? c.padTokenId : t)));
}
