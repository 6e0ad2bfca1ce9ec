// The Llama family (Llama, Qwen2, Qwen3, Mistral, SmolLM3, Phi-3, Gemma 3) as an ONNX decoder
// with a key/value cache, inputs and outputs as gpt2.ts (Optimum's layout; the cache holds the
// key/value heads, before grouped-query repetition). Op for op it follows Anneal's
// packages/modeling/src/llama/model.ts, each family's switches included: RMSNorm (Gemma's
// x (1 + w), folded into the stored weight), RoPE from position_ids with the model's own
// inverse frequencies (scaled, partial, NoPE layers, Gemma's local base), q/k norms, biases,
// fused projections, sliding windows, Gemma's scalings and soft-capping.
import {
  headDimOf,
  layerKinds,
  ropeAttentionFactor,
  ropeInvFreq,
  ropeLayers,
  rotaryDim,
  type LlamaConfig,
} from '@anneal/modeling';
import type { OnnxGraph } from './graph.js';
import {
  activation,
  decoderInputs,
  maskBias,
  mergeHeads,
  scoreHead,
  splitHeads,
  weightOf,
  withCache,
  type DecoderIo,
  type DecoderOptions,
} from './layers.js';

/** cos and sin [B, 1, T, R] of position_ids for these inverse frequencies (× scale). */
function rotaryTables(g: OnnxGraph, positions: string, invFreq: Float32Array, scale: number, name: string) {
  const freq = g.weight(name, invFreq, [invFreq.length]);
  const angles = g.op('Mul', [g.op('Unsqueeze', [g.op('Cast', [positions], { to: { i: 1 } }), g.ints([2])]), freq]); // [B, T, R/2]
  const full = g.op('Unsqueeze', [g.op('Concat', [angles, angles], { axis: { i: -1 } }), g.ints([1])]); // [B, 1, T, R]
  const scaled = (t: string) => (scale === 1 ? t : g.op('Mul', [t, g.float(scale)]));
  return { cos: scaled(g.op('Cos', [full])), sin: scaled(g.op('Sin', [full])) };
}

/**
 * longrope (Phi-3 128k, Phi-4-mini): the short factors' tables while the sequence fits the
 * pretraining context, the long factors' beyond it — chosen in the graph, as transformers does,
 * by max(position_ids) + 1 > original_max_position_embeddings; both scaled by the attention factor.
 */
function longropeTables(g: OnnxGraph, c: LlamaConfig, positions: string) {
  const original =
    c.originalMaxPositionEmbeddings ?? c.ropeScaling?.original_max_position_embeddings ?? c.maxPositionEmbeddings;
  const factor = ropeAttentionFactor(c);
  const short = rotaryTables(g, positions, ropeInvFreq(c, false, original), factor, 'rope.short_inv_freq');
  const long = rotaryTables(g, positions, ropeInvFreq(c, false, original + 1), factor, 'rope.long_inv_freq');
  const length = g.op('Add', [g.op('ReduceMax', [positions], { keepdims: { i: 0 } }), g.ints([1], [])]);
  const beyond = g.op('Greater', [length, g.ints([original], [])]); // a scalar bool
  return {
    cos: g.op('Where', [beyond, long.cos, short.cos]),
    sin: g.op('Where', [beyond, long.sin, short.sin]),
  };
}

/** x cos + rotate_half(x) sin over the first R dimensions of each head [B, n, T, D]; the rest pass. */
function rotate(g: OnnxGraph, x: string, t: { cos: string; sin: string }, R: number, D: number): string {
  const [rot, pass] = R === D ? [x, undefined] : g.opN('Split', [x, g.ints([R, D - R])], 2, { axis: { i: -1 } });
  const [x1, x2] = g.opN('Split', [rot, g.ints([R / 2, R / 2])], 2, { axis: { i: -1 } });
  const half = g.op('Concat', [g.op('Neg', [x2]), x1], { axis: { i: -1 } });
  const out = g.op('Add', [g.op('Mul', [rot, t.cos]), g.op('Mul', [half, t.sin])]);
  return pass ? g.op('Concat', [out, pass], { axis: { i: -1 } }) : out;
}

/** Builds the decoder graph of a Llama-family causal LM into io.graph. */
export function llamaDecoder(c: LlamaConfig, io: DecoderIo, o: DecoderOptions = {}): void {
  const { graph: g } = io;
  const gemma = c.modelType === 'gemma3_text';
  const fused = c.modelType === 'phi3';
  const qkNorm = c.modelType === 'qwen3' || gemma;
  const C = c.hiddenSize;
  const D = headDimOf(c);
  const [H, KV] = [c.numAttentionHeads, c.numKeyValueHeads];
  const R = rotaryDim(c);
  const has = (name: string) => io.has(name);
  const w = weightOf(io);
  // Gemma's RMSNorm multiplies by (1 + w): stored so, the graph multiplies by the weight alone
  const normWeight = (name: string) => {
    if (!gemma) return w(`${name}.weight`);
    const t = io.weight(`${name}.weight`);
    return g.weight(
      `${name}.weight_plus_one`,
      t.data.map((v) => v + 1),
      t.shape,
    );
  };
  const rmsNorm = (x: string, name: string) => {
    const meanSq = g.meanLast(g.op('Mul', [x, x]));
    const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [meanSq, g.float(c.rmsNormEps)])])]);
    return g.op('Mul', [g.op('Mul', [x, inv]), normWeight(name)]);
  };
  // nn.Linear: x Wᵀ (+ b), W stored [out, in] and transposed once in the graph
  const linear = (x: string, name: string) => {
    const y = g.op('MatMul', [x, g.op('Transpose', [w(`${name}.weight`)], { perm: { ints: [1, 0] } })]);
    return has(`${name}.bias`) ? g.op('Add', [y, w(`${name}.bias`)]) : y;
  };
  const softcap = (x: string, cap: number | null) =>
    cap ? g.op('Mul', [g.op('Tanh', [g.op('Mul', [x, g.float(1 / cap)])]), g.float(cap)]) : x;

  const cls = o.classifier;
  const { inputIds, mask, positions } = decoderInputs(g, c.vocabSize, o);

  const table = w('model.embed_tokens.weight'); // [V, C]
  let x = g.op('Gather', [table, inputIds]); // [B, T, C]
  if (gemma) x = g.op('Mul', [x, g.float(Math.fround(Math.sqrt(C)))]); // Gemma scales the embeddings by sqrt(hidden)
  const kinds = layerKinds(c);
  const withRope = ropeLayers(c);
  const longrope = (c.ropeScaling?.rope_type ?? c.ropeScaling?.type) === 'longrope';
  const global = longrope
    ? longropeTables(g, c, positions)
    : rotaryTables(g, positions, ropeInvFreq(c), ropeAttentionFactor(c), 'rope.inv_freq');
  const local =
    gemma && kinds.includes('sliding')
      ? rotaryTables(g, positions, ropeInvFreq(c, true), 1, 'rope.local_inv_freq')
      : global;
  const fullBias = maskBias(g, inputIds, mask);
  const slidingBias = kinds.includes('sliding') ? maskBias(g, inputIds, mask, c.slidingWindow ?? undefined) : fullBias;
  const scale = gemma ? 1 / Math.sqrt(c.queryPreAttnScalar ?? D) : 1 / Math.sqrt(D);
  // each key/value head serves H / KV consecutive query heads: [B, KV, S, D] -> [B, H, S, D]
  const repeat = (t: string) =>
    H === KV
      ? t
      : g.op('Reshape', [
          g.op('Expand', [g.op('Unsqueeze', [t, g.ints([2])]), g.ints([1, 1, H / KV, 1, 1])]),
          g.ints([0, H, -1, D]),
        ]);

  for (let i = 0; i < c.numHiddenLayers; i++) {
    const l = `model.layers.${i}`;
    const sliding = kinds[i] === 'sliding';
    // grouped-query self-attention with rotary positions
    const n1 = rmsNorm(x, `${l}.input_layernorm`);
    let [q, k, v] = fused
      ? g.opN('Split', [linear(n1, `${l}.self_attn.qkv_proj`), g.ints([H * D, KV * D, KV * D])], 3, { axis: { i: -1 } })
      : [linear(n1, `${l}.self_attn.q_proj`), linear(n1, `${l}.self_attn.k_proj`), linear(n1, `${l}.self_attn.v_proj`)];
    [q, k, v] = [splitHeads(g, q, H, D), splitHeads(g, k, KV, D), splitHeads(g, v, KV, D)]; // [B, n, T, D]
    if (qkNorm) [q, k] = [rmsNorm(q, `${l}.self_attn.q_norm`), rmsNorm(k, `${l}.self_attn.k_norm`)];
    if (withRope[i]) {
      const t = sliding ? local : global;
      [q, k] = [rotate(g, q, t, R, D), rotate(g, k, t, R, D)];
    } // SmolLM3's NoPE layers: no rotary embedding
    const [key, value] = withCache(g, i, k, v, KV, D, o); // [B, KV, S, D]
    const scores = softcap(
      g.op('Mul', [
        g.op('MatMul', [q, g.op('Transpose', [repeat(key)], { perm: { ints: [0, 1, 3, 2] } })]),
        g.float(scale),
      ]),
      c.attnLogitSoftcapping,
    );
    const probs = g.op('Softmax', [g.op('Add', [scores, sliding ? slidingBias : fullBias])], { axis: { i: -1 } });
    let y = linear(mergeHeads(g, g.op('MatMul', [probs, repeat(value)]), H * D), `${l}.self_attn.o_proj`); // [B, T, C]
    if (gemma) y = rmsNorm(y, `${l}.post_attention_layernorm`);
    const r = g.op('Add', [x, y]);
    // gated MLP: down(act(gate) * up), SwiGLU or Gemma's GeGLU (tanh GELU)
    const n2 = rmsNorm(r, gemma ? `${l}.pre_feedforward_layernorm` : `${l}.post_attention_layernorm`);
    const [gate, up] = fused
      ? g.opN('Split', [linear(n2, `${l}.mlp.gate_up_proj`), g.ints([c.intermediateSize, c.intermediateSize])], 2, {
          axis: { i: -1 },
        })
      : [linear(n2, `${l}.mlp.gate_proj`), linear(n2, `${l}.mlp.up_proj`)];
    const act = activation(g, gate, c.hiddenAct === 'silu' ? 'silu' : 'gelu_tanh');
    let mlp = linear(g.op('Mul', [act, up]), `${l}.mlp.down_proj`);
    if (gemma) mlp = rmsNorm(mlp, `${l}.post_feedforward_layernorm`);
    x = g.op('Add', [r, mlp]);
  }
  const hidden = rmsNorm(x, 'model.norm');
  if (cls) return scoreHead(g, hidden, inputIds, w('score.weight'), cls);
  const head = c.tieWordEmbeddings
    ? g.op('MatMul', [hidden, g.op('Transpose', [table], { perm: { ints: [1, 0] } })])
    : linear(hidden, 'lm_head');
  const capped = softcap(head, c.finalLogitSoftcapping);
  g.op('Identity', [capped], {}, 'logits');
}
