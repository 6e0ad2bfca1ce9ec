// GPT-2 as an ONNX decoder with a key/value cache, in the layout Hugging Face Optimum exports
// for text generation with past (what transformers.js and onnxruntime-genai-style loops feed):
//   inputs   input_ids [batch_size, sequence_length], attention_mask [batch_size,
//            past_sequence_length + sequence_length], position_ids [batch_size, sequence_length],
//            past_key_values.{i}.key|value [batch_size, n_head, past_sequence_length, head_dim]
//   outputs  logits [batch_size, sequence_length, vocab], present.{i}.key|value (past + new).
// The graph follows Anneal's GPT-2 (packages/modeling/src/gpt2/model.ts) op for op: the same
// additive -1e9 mask for future and padded keys, softmax(q kᵀ / √d + mask) v, the tied head.
import type { Gpt2Config } from '@anneal/modeling';
import { OnnxGraph } from './graph.js';

/** A sequence classifier's head (GPT2ForSequenceClassification, LlamaForSequenceClassification, ...). */
export interface ClassifierHead {
  numLabels: number;
  /** Locates each row's last token (the one before the first pad id); null: the last position. */
  padTokenId: number | null;
}

/** What a decoder graph ends in: the LM head with the cache (generation), or a score head without it. */
export interface DecoderOptions {
  classifier?: ClassifierHead;
}

/** position_ids of a classifier graph (no such input, as Optimum exports it): 0 .. T-1, [1, T]. */
export function defaultPositions(g: OnnxGraph, inputIds: string): string {
  const seq = g.op('Gather', [g.op('Shape', [inputIds]), g.ints([1], [])], { axis: { i: 0 } });
  return g.op('Unsqueeze', [g.op('Range', [g.ints([0], []), seq, g.ints([1], [])]), g.ints([0])]);
}

/**
 * The score head on final hidden states [B, T, C]: scores [B, T, L] pooled at each row's last
 * token — the position before its first pad id, modulo T (transformers' rule) — into logits [B, L].
 */
export function scoreHead(g: OnnxGraph, hidden: string, inputIds: string, score: string, head: ClassifierHead): void {
  const scores = g.op('MatMul', [hidden, g.op('Transpose', [score], { perm: { ints: [1, 0] } })]); // [B, T, L]
  const seq = g.op('Gather', [g.op('Shape', [inputIds]), g.ints([1], [])], { axis: { i: 0 } }); // T
  const last =
    head.padTokenId === null
      ? g.op('Expand', [
          g.op('Sub', [seq, g.ints([1], [])]),
          g.op('Slice', [g.op('Shape', [inputIds]), g.ints([0]), g.ints([1])]),
        ])
      : g.op('Mod', [
          g.op('Add', [
            g.op('Sub', [
              g.op(
                'ArgMax',
                [g.op('Cast', [g.op('Equal', [inputIds, g.ints([head.padTokenId], [])])], { to: { i: 7 } })],
                {
                  axis: { i: 1 },
                  keepdims: { i: 0 },
                },
              ),
              g.ints([1], []),
            ]),
            seq,
          ]),
          seq,
        ]); // [B]
  g.op('GatherND', [scores, g.op('Unsqueeze', [last, g.ints([1])])], { batch_dims: { i: 1 } }, 'logits'); // [B, L]
  g.output('logits', 'FLOAT', ['batch_size', head.numLabels]);
}

export interface DecoderIo {
  graph: OnnxGraph;
  /** Reads a parameter (Hugging Face name) as float32. */
  weight: (name: string) => { data: Float32Array; shape: number[] };
  /** Whether the model has this parameter. */
  has: (name: string) => boolean;
}

/** The attention bias [batch, 1, T, S] shared by every layer: -1e9 for keys after the query or padded. */
export function maskBias(g: OnnxGraph, inputIds: string, attentionMask: string): string {
  const seq = g.op('Gather', [g.op('Shape', [inputIds]), g.ints([1], [])], { axis: { i: 0 } }); // T
  const total = g.op('Gather', [g.op('Shape', [attentionMask]), g.ints([1], [])], { axis: { i: 0 } }); // S = past + T
  const queries = g.op('Range', [g.op('Sub', [total, seq]), total, g.ints([1], [])]); // [T]: past .. S-1
  const keys = g.op('Range', [g.ints([0], []), total, g.ints([1], [])]); // [S]
  const future = g.op('Greater', [
    g.op('Unsqueeze', [keys, g.ints([0])]), // [1, S]
    g.op('Unsqueeze', [queries, g.ints([1])]), // [T, 1]
  ]); // [T, S]
  const causal = g.op('Mul', [g.op('Cast', [future], { to: { i: 1 } }), g.float(-1e9)]); // [T, S]
  const keep = g.op('Cast', [attentionMask], { to: { i: 1 } }); // [B, S]
  const padded = g.op('Mul', [g.op('Sub', [g.float(1), keep]), g.float(-1e9)]); // [B, S]
  return g.op('Add', [causal, g.op('Unsqueeze', [padded, g.ints([1, 2])])]); // [B, 1, T, S]
}

/** [B, T, H·D] -> [B, H, T, D]. */
export const splitHeads = (g: OnnxGraph, x: string, H: number, D: number) =>
  g.op('Transpose', [g.op('Reshape', [x, g.ints([0, 0, H, D])])], { perm: { ints: [0, 2, 1, 3] } });

/** [B, H, T, D] -> [B, T, H·D]. */
export const mergeHeads = (g: OnnxGraph, x: string, HD: number) =>
  g.op('Reshape', [g.op('Transpose', [x], { perm: { ints: [0, 2, 1, 3] } }), g.ints([0, 0, HD])]);

/** softmax(q kᵀ · scale + bias) v for q [B, H, T, D], k and v [B, H, S, D]. */
export function attention(g: OnnxGraph, q: string, k: string, v: string, bias: string, scale: number): string {
  const scores = g.op('Mul', [
    g.op('MatMul', [q, g.op('Transpose', [k], { perm: { ints: [0, 1, 3, 2] } })]),
    g.float(scale),
  ]);
  const probs = g.op('Softmax', [g.op('Add', [scores, bias])], { axis: { i: -1 } }); // [B, H, T, S]
  return g.op('MatMul', [probs, v]); // [B, H, T, D]
}

/** GPT-2's activations: gelu_new / gelu_pytorch_tanh (tanh form), gelu (erf), relu. */
function activation(g: OnnxGraph, x: string, kind: Gpt2Config['activationFunction']): string {
  if (kind === 'relu') return g.op('Relu', [x]);
  const half = g.op('Mul', [x, g.float(0.5)]);
  if (kind === 'gelu')
    return g.op('Mul', [half, g.op('Add', [g.float(1), g.op('Erf', [g.op('Mul', [x, g.float(Math.SQRT1_2)])])])]);
  // 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))
  const cube = g.op('Mul', [g.op('Mul', [x, x]), x]);
  const inner = g.op('Mul', [
    g.op('Add', [x, g.op('Mul', [cube, g.float(0.044715)])]),
    g.float(Math.sqrt(2 / Math.PI)),
  ]);
  return g.op('Mul', [half, g.op('Add', [g.float(1), g.op('Tanh', [inner])])]);
}

/** Builds the decoder graph of a GPT2LMHeadModel into io.graph. */
export function gpt2Decoder(c: Gpt2Config, io: DecoderIo, o: DecoderOptions = {}): void {
  const { graph: g } = io;
  const [C, H] = [c.nEmbd, c.nHead];
  const D = C / H;
  const w = (name: string) => {
    const t = io.weight(name);
    return g.weight(name, t.data, t.shape);
  };
  const inputIds = g.input('input_ids', 'INT64', ['batch_size', 'sequence_length']);
  const cls = o.classifier;
  const mask = g.input('attention_mask', 'INT64', [
    'batch_size',
    cls ? 'sequence_length' : 'past_sequence_length + sequence_length',
  ]);
  const positions = cls
    ? defaultPositions(g, inputIds)
    : g.input('position_ids', 'INT64', ['batch_size', 'sequence_length']);
  const pastDims = ['batch_size', H, 'past_sequence_length', D];
  const presentDims = ['batch_size', H, 'past_sequence_length + sequence_length', D];
  if (!cls) g.output('logits', 'FLOAT', ['batch_size', 'sequence_length', c.vocabSize]); // first, as Optimum lists it

  const wte = w('transformer.wte.weight'); // [V, C]
  let x = g.op('Add', [g.op('Gather', [wte, inputIds]), g.op('Gather', [w('transformer.wpe.weight'), positions])]); // [B, T, C]
  const bias = maskBias(g, inputIds, mask);
  const layerNorm = (t: string, p: string) =>
    g.op('LayerNormalization', [t, w(`${p}.weight`), w(`${p}.bias`)], {
      axis: { i: -1 },
      epsilon: { f: c.layerNormEpsilon },
    });
  const conv1d = (t: string, p: string) => g.op('Add', [g.op('MatMul', [t, w(`${p}.weight`)]), w(`${p}.bias`)]); // x W + b, W [in, out]

  for (let l = 0; l < c.nLayer; l++) {
    const h = `transformer.h.${l}`;
    // causal self-attention
    const qkv = conv1d(layerNorm(x, `${h}.ln_1`), `${h}.attn.c_attn`); // [B, T, 3C]
    const [q, k, v] = g.opN('Split', [qkv, g.ints([C, C, C])], 3, { axis: { i: 2 } });
    let [key, value] = [splitHeads(g, k, H, D), splitHeads(g, v, H, D)]; // [B, H, T, D]
    if (!cls) {
      const past = ['key', 'value'].map((kv) => g.input(`past_key_values.${l}.${kv}`, 'FLOAT', pastDims));
      key = g.op('Concat', [past[0], key], { axis: { i: 2 } }, `present.${l}.key`); // [B, H, S, D]
      value = g.op('Concat', [past[1], value], { axis: { i: 2 } }, `present.${l}.value`);
      g.output(key, 'FLOAT', presentDims);
      g.output(value, 'FLOAT', presentDims);
    }
    const att = attention(g, splitHeads(g, q, H, D), key, value, bias, 1 / Math.sqrt(D));
    const r = g.op('Add', [x, conv1d(mergeHeads(g, att, C), `${h}.attn.c_proj`)]);
    // MLP
    const inner = activation(g, conv1d(layerNorm(r, `${h}.ln_2`), `${h}.mlp.c_fc`), c.activationFunction);
    x = g.op('Add', [r, conv1d(inner, `${h}.mlp.c_proj`)]);
  }
  const hidden = layerNorm(x, 'transformer.ln_f');
  if (cls) return scoreHead(g, hidden, inputIds, w('score.weight'), cls);
  // the tied head: hidden · wteᵀ (wte stored once)
  g.op('MatMul', [hidden, g.op('Transpose', [wte], { perm: { ints: [1, 0] } })], {}, 'logits');
}
