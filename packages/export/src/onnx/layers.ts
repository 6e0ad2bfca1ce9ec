// The pieces the ONNX graphs share (gpt2.ts, llama.ts, bert.ts), each as its model file in
// packages/modeling computes it: the additive -1e9 attention mask, head splitting, attention,
// the MLP activations, a classifier's score head pooled at each row's last token.
import type { OnnxGraph } from './graph.js';

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

/** -1e9 where a key lies after the query, `window` or more positions before it, or is padding: [B, 1, T, S]. */
export function maskBias(g: OnnxGraph, inputIds: string, attentionMask: string, window?: number): string {
  const seq = g.op('Gather', [g.op('Shape', [inputIds]), g.ints([1], [])], { axis: { i: 0 } }); // T
  const total = g.op('Gather', [g.op('Shape', [attentionMask]), g.ints([1], [])], { axis: { i: 0 } }); // S
  const q = g.op('Unsqueeze', [g.op('Range', [g.op('Sub', [total, seq]), total, g.ints([1], [])]), g.ints([1])]); // [T, 1]
  const k = g.op('Unsqueeze', [g.op('Range', [g.ints([0], []), total, g.ints([1], [])]), g.ints([0])]); // [1, S]
  let hidden = g.op('Greater', [k, q]); // future keys
  if (window) hidden = g.op('Or', [hidden, g.op('LessOrEqual', [k, g.op('Sub', [q, g.ints([window], [])])])]);
  const causal = g.op('Mul', [g.op('Cast', [hidden], { to: { i: 1 } }), g.float(-1e9)]); // [T, S]
  const keep = g.op('Cast', [attentionMask], { to: { i: 1 } }); // [B, S]
  const padded = g.op('Mul', [g.op('Sub', [g.float(1), keep]), g.float(-1e9)]);
  return g.op('Add', [causal, g.op('Unsqueeze', [padded, g.ints([1, 2])])]); // [B, 1, T, S]
}

/** The MLP activations: gelu (erf), gelu_tanh (GPT-2's gelu_new, Gemma's), relu, silu. */
export function activation(g: OnnxGraph, x: string, kind: 'gelu' | 'gelu_tanh' | 'relu' | 'silu'): string {
  if (kind === 'relu') return g.op('Relu', [x]);
  if (kind === 'silu') return g.op('Mul', [x, g.op('Sigmoid', [x])]);
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

/** A float32 initializer per parameter name, in the graph's weight format. */
export const weightOf = (io: DecoderIo) => (name: string) => {
  const t = io.weight(name);
  return io.graph.weight(name, t.data, t.shape);
};

/**
 * A decoder graph's inputs: input_ids and attention_mask, and for generation position_ids (a
 * classifier, as Optimum exports one, has none: 0 .. T-1) and the logits output, listed first.
 */
export function decoderInputs(g: OnnxGraph, vocabSize: number, o: DecoderOptions) {
  const inputIds = g.input('input_ids', 'INT64', ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', 'INT64', [
    'batch_size',
    o.classifier ? 'sequence_length' : 'past_sequence_length + sequence_length',
  ]);
  const positions = o.classifier
    ? defaultPositions(g, inputIds)
    : g.input('position_ids', 'INT64', ['batch_size', 'sequence_length']);
  if (!o.classifier) g.output('logits', 'FLOAT', ['batch_size', 'sequence_length', vocabSize]);
  return { inputIds, mask, positions };
}

/**
 * Layer l's keys and values [B, heads, T, D] after the cache (generation): past_key_values.l.*
 * inputs before them, the result output as present.l.* (a classifier keeps them as they are).
 */
export function withCache(
  g: OnnxGraph,
  l: number,
  key: string,
  value: string,
  heads: number,
  headDim: number,
  o: DecoderOptions,
): [string, string] {
  if (o.classifier) return [key, value];
  const past = ['key', 'value'].map((kv) =>
    g.input(`past_key_values.${l}.${kv}`, 'FLOAT', ['batch_size', heads, 'past_sequence_length', headDim]),
  );
  const out = [key, value].map((t, j) =>
    g.op('Concat', [past[j], t], { axis: { i: 2 } }, `present.${l}.${j ? 'value' : 'key'}`),
  ); // [B, heads, S, D]
  for (const name of out)
    g.output(name, 'FLOAT', ['batch_size', heads, 'past_sequence_length + sequence_length', headDim]);
  return [out[0], out[1]];
}
