// T5ForConditionalGeneration as transformers.js loads it (Optimum's seq2seq layout): two graphs.
//   encoder_model: input_ids, attention_mask [batch_size, encoder_sequence_length] -> last_hidden_state
//   decoder_model_merged: input_ids [batch_size, decoder_sequence_length], encoder_attention_mask,
//     encoder_hidden_states, past_key_values.{l}.decoder.key/value -> logits, present.{l}.decoder.key/value
// Optimum's merged decoder also takes the cross-attention keys and values as past (and a
// use_cache_branch flag choosing between computing and reusing them); this one computes them
// from encoder_hidden_states, which transformers.js passes at every step, and declares no such
// inputs (transformers.js feeds a session only the inputs it declares). Op for op as
// packages/modeling/src/t5/model.ts: RMS norms without bias, unscaled attention with block 0's
// learned relative-position bias (buckets computed in the graph, in float32 as transformers
// does), relu or gated-gelu MLPs, the tied head after × d_model^-0.5.
import type { T5Config } from '@anneal/modeling';
import type { OnnxGraph } from './graph.js';
import { activation, attention, mergeHeads, splitHeads, weightOf, type DecoderIo } from './layers.js';

/** Builds T5's encoder graph into io.graph. */
export function t5EncoderGraph(c: T5Config, io: DecoderIo): void {
  const { graph: g } = io;
  const t5 = pieces(c, io);
  const ids = g.input('input_ids', 'INT64', ['batch_size', 'encoder_sequence_length']);
  const mask = g.input('attention_mask', 'INT64', ['batch_size', 'encoder_sequence_length']);
  g.output('last_hidden_state', 'FLOAT', ['batch_size', 'encoder_sequence_length', c.dModel]);
  const T = lengthOf(g, ids, 1);
  const positions = g.op('Range', [g.ints([0], []), T, g.ints([1], [])]); // [T]
  const bias = g.op('Add', [t5.positionBias('encoder', positions, positions, true), paddingBias(g, mask)]); // [B, H, T, T]
  let x = g.op('Gather', [t5.w('shared.weight'), ids]); // [B, T, C]
  for (let i = 0; i < c.numLayers; i++) {
    const b = `encoder.block.${i}.layer`;
    const h = t5.norm(x, `${b}.0.layer_norm`);
    x = g.op('Add', [x, t5.attend(`${b}.0.SelfAttention`, h, t5.heads(h, `${b}.0.SelfAttention`), bias)]);
    x = g.op('Add', [x, t5.ffn(t5.norm(x, `${b}.1.layer_norm`), `${b}.1.DenseReluDense`)]);
  }
  g.op('Identity', [t5.norm(x, 'encoder.final_layer_norm')], {}, 'last_hidden_state');
}

/** Builds T5's decoder graph (with its self-attention cache) into io.graph. */
export function t5DecoderGraph(c: T5Config, io: DecoderIo): void {
  const { graph: g } = io;
  const t5 = pieces(c, io);
  const [H, D] = [c.numHeads, c.dKv];
  const ids = g.input('input_ids', 'INT64', ['batch_size', 'decoder_sequence_length']);
  const encMask = g.input('encoder_attention_mask', 'INT64', ['batch_size', 'encoder_sequence_length']);
  const enc = g.input('encoder_hidden_states', 'FLOAT', ['batch_size', 'encoder_sequence_length', c.dModel]);
  const past = Array.from({ length: c.numDecoderLayers }, (_, l) =>
    ['key', 'value'].map((kv) =>
      g.input(`past_key_values.${l}.decoder.${kv}`, 'FLOAT', ['batch_size', H, 'past_decoder_sequence_length', D]),
    ),
  );
  g.output('logits', 'FLOAT', ['batch_size', 'decoder_sequence_length', c.vocabSize]);
  // queries at P .. P+T-1 (P cached positions), keys at 0 .. P+T-1
  const T = lengthOf(g, ids, 1);
  const P = lengthOf(g, past[0][0], 2);
  const total = g.op('Add', [P, T]);
  const queries = g.op('Range', [P, total, g.ints([1], [])]); // [T]
  const keys = g.op('Range', [g.ints([0], []), total, g.ints([1], [])]); // [P + T]
  const future = g.op('Greater', [g.op('Unsqueeze', [keys, g.ints([0])]), g.op('Unsqueeze', [queries, g.ints([1])])]);
  const causal = g.op('Mul', [g.op('Cast', [future], { to: { i: 1 } }), g.float(-1e9)]); // [T, P + T]
  const selfBias = g.op('Add', [t5.positionBias('decoder', queries, keys, false), causal]); // [1, H, T, P + T]
  const crossBias = paddingBias(g, encMask); // [B, 1, 1, Te]
  let x = g.op('Gather', [t5.w('shared.weight'), ids]); // [B, T, C]
  for (let i = 0; i < c.numDecoderLayers; i++) {
    const b = `decoder.block.${i}.layer`;
    const h = t5.norm(x, `${b}.0.layer_norm`);
    const [k, v] = t5.heads(h, `${b}.0.SelfAttention`);
    const kv = [k, v].map((t, j) =>
      g.op('Concat', [past[i][j], t], { axis: { i: 2 } }, `present.${i}.decoder.${j ? 'value' : 'key'}`),
    );
    for (const name of kv)
      g.output(name, 'FLOAT', ['batch_size', H, 'past_decoder_sequence_length + decoder_sequence_length', D]);
    x = g.op('Add', [x, t5.attend(`${b}.0.SelfAttention`, h, [kv[0], kv[1]], selfBias)]);
    const y = t5.norm(x, `${b}.1.layer_norm`);
    x = g.op('Add', [x, t5.attend(`${b}.1.EncDecAttention`, y, t5.heads(enc, `${b}.1.EncDecAttention`), crossBias)]);
    x = g.op('Add', [x, t5.ffn(t5.norm(x, `${b}.2.layer_norm`), `${b}.2.DenseReluDense`)]);
  }
  const out = t5.norm(x, 'decoder.final_layer_norm');
  if (c.tieWordEmbeddings)
    g.op('MatMul', [g.op('Mul', [out, g.float(c.dModel ** -0.5)]), t5.transposed('shared.weight')], {}, 'logits');
  else g.op('MatMul', [out, t5.transposed('lm_head.weight')], {}, 'logits');
}

/** Dimension `axis` of t's shape, as a scalar int64. */
const lengthOf = (g: OnnxGraph, t: string, axis: number) =>
  g.op('Gather', [g.op('Shape', [t]), g.ints([axis], [])], { axis: { i: 0 } });

/** -1e9 at padded keys: [B, 1, 1, S]. */
function paddingBias(g: OnnxGraph, mask: string): string {
  const keep = g.op('Cast', [mask], { to: { i: 1 } });
  return g.op('Unsqueeze', [g.op('Mul', [g.op('Sub', [g.float(1), keep]), g.float(-1e9)]), g.ints([1, 2])]);
}

function pieces(c: T5Config, io: DecoderIo) {
  const { graph: g } = io;
  const [H, D] = [c.numHeads, c.dKv];
  const w = weightOf(io);
  const transposed = (name: string) => g.op('Transpose', [w(name)], { perm: { ints: [1, 0] } });
  const linear = (x: string, name: string) => g.op('MatMul', [x, transposed(`${name}.weight`)]);
  return {
    w,
    transposed,
    /** x / √(mean(x²) + ε) · w (T5LayerNorm: no mean, no bias). */
    norm: (x: string, name: string) => {
      const ms = g.meanLast(g.op('Mul', [x, x]));
      const inv = g.op('Reciprocal', [g.op('Sqrt', [g.op('Add', [ms, g.float(c.layerNormEpsilon)])])]);
      return g.op('Mul', [g.op('Mul', [x, inv]), w(`${name}.weight`)]);
    },
    /** Keys and values [B, H, S, D] projected from kv [B, S, C]. */
    heads: (kv: string, p: string): [string, string] => [
      splitHeads(g, linear(kv, `${p}.k`), H, D),
      splitHeads(g, linear(kv, `${p}.v`), H, D),
    ],
    /** Unscaled attention of queries from x [B, T, C] over keys/values [B, H, S, D], output projected: [B, T, C]. */
    attend: (p: string, x: string, [k, v]: [string, string], bias: string) =>
      linear(mergeHeads(g, attention(g, splitHeads(g, linear(x, `${p}.q`), H, D), k, v, bias, 1), H * D), `${p}.o`),
    /** relu(wi x) wo, or gelu_tanh(wi_0 x) ⊙ (wi_1 x) wo. */
    ffn: (x: string, p: string) =>
      linear(
        c.feedForwardProj === 'relu'
          ? g.op('Relu', [linear(x, `${p}.wi`)])
          : g.op('Mul', [activation(g, linear(x, `${p}.wi_0`), 'gelu_tanh'), linear(x, `${p}.wi_1`)]),
        `${p}.wo`,
      ),
    /**
     * Block 0's learned bias [1, H, Tq, Tk] for queries and keys at these positions (int64 [Tq],
     * [Tk]): transformers' _relative_position_bucket of key − query, looked up in the table.
     */
    positionBias: (stack: 'encoder' | 'decoder', queries: string, keys: string, bidirectional: boolean) => {
      const rel = g.op('Sub', [g.op('Unsqueeze', [keys, g.ints([0])]), g.op('Unsqueeze', [queries, g.ints([1])])]); // [Tq, Tk]
      const buckets = bidirectional ? Math.floor(c.relativeAttentionNumBuckets / 2) : c.relativeAttentionNumBuckets;
      let base = g.ints([0], []);
      let n: string;
      if (bidirectional) {
        base = g.op('Mul', [
          g.op('Cast', [g.op('Greater', [rel, g.ints([0], [])])], { to: { i: 7 } }),
          g.ints([buckets], []),
        ]);
        n = g.op('Abs', [rel]);
      } else n = g.op('Neg', [g.op('Min', [rel, g.ints([0], [])])]);
      const maxExact = Math.floor(buckets / 2);
      const nf = g.op('Cast', [g.op('Max', [n, g.ints([1], [])])], { to: { i: 1 } }); // (log of ≥ 1: the small branch takes n < maxExact)
      const ratio = Math.fround(Math.log(c.relativeAttentionMaxDistance / maxExact));
      const large = g.op('Add', [
        g.ints([maxExact], []),
        g.op(
          'Cast',
          [
            g.op('Mul', [
              g.op('Div', [g.op('Log', [g.op('Div', [nf, g.float(maxExact)])]), g.float(ratio)]),
              g.float(buckets - maxExact),
            ]),
          ],
          { to: { i: 7 } },
        ), // truncation toward zero, as torch's .to(long)
      ]);
      const capped = g.op('Min', [large, g.ints([buckets - 1], [])]);
      const bucket = g.op('Add', [base, g.op('Where', [g.op('Less', [n, g.ints([maxExact], [])]), n, capped])]); // [Tq, Tk]
      const table = w(`${stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`); // [buckets, H]
      const values = g.op('Gather', [table, bucket]); // [Tq, Tk, H]
      return g.op('Unsqueeze', [g.op('Transpose', [values], { perm: { ints: [2, 0, 1] } }), g.ints([0])]); // [1, H, Tq, Tk]
    },
  };
}
