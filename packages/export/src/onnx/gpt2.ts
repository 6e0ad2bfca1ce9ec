// GPT-2 as an ONNX decoder with a key/value cache, in the layout Hugging Face Optimum exports
// for text generation with past (what transformers.js and onnxruntime-genai-style loops feed):
//   inputs   input_ids [batch_size, sequence_length], attention_mask [batch_size,
//            past_sequence_length + sequence_length], position_ids [batch_size, sequence_length],
//            past_key_values.{i}.key|value [batch_size, n_head, past_sequence_length, head_dim]
//   outputs  logits [batch_size, sequence_length, vocab], present.{i}.key|value (past + new).
// The graph follows Anneal's GPT-2 (packages/modeling/src/gpt2/model.ts) op for op: the same
// additive -1e9 mask for future and padded keys, softmax(q kᵀ / √d + mask) v, the tied head.
import type { Gpt2Config } from '@anneal/modeling';
import {
  activation,
  attention,
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

/** Builds the decoder graph of a GPT2LMHeadModel into io.graph. */
export function gpt2Decoder(c: Gpt2Config, io: DecoderIo, o: DecoderOptions = {}): void {
  const { graph: g } = io;
  const [C, H] = [c.nEmbd, c.nHead];
  const D = C / H;
  const w = weightOf(io);
  const cls = o.classifier;
  const { inputIds, mask, positions } = decoderInputs(g, c.vocabSize, o);

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
    const [key, value] = withCache(g, l, splitHeads(g, k, H, D), splitHeads(g, v, H, D), H, D, o); // [B, H, S, D]
    const att = attention(g, splitHeads(g, q, H, D), key, value, bias, 1 / Math.sqrt(D));
    const r = g.op('Add', [x, conv1d(mergeHeads(g, att, C), `${h}.attn.c_proj`)]);
    // MLP
    const inner = activation(g, conv1d(layerNorm(r, `${h}.ln_2`), `${h}.mlp.c_fc`), gpt2Activation(c));
    x = g.op('Add', [r, conv1d(inner, `${h}.mlp.c_proj`)]);
  }
  const hidden = layerNorm(x, 'transformer.ln_f');
  if (cls) return scoreHead(g, hidden, inputIds, w('score.weight'), cls);
  // the tied head: hidden · wteᵀ (wte stored once)
  g.op('MatMul', [hidden, g.op('Transpose', [wte], { perm: { ints: [1, 0] } })], {}, 'logits');
}

/** GPT-2's activation_function as the shared activations name it. */
const gpt2Activation = (c: Gpt2Config) =>
  c.activationFunction === 'relu' ? 'relu' : c.activationFunction === 'gelu' ? 'gelu' : 'gelu_tanh';
