// Generation for an encoder–decoder model, as transformers' generate() for T5: the encoder runs
// once over the inputs; the decoder starts from decoder_start_token_id and runs one new
// position per step with a cache of its self-attention keys/values and of the cross-attention
// keys/values of the encoder's output (projected once, at the first step). The decoder, with
// the encoder's output bound to it, is handed to the decoder-only generate(), so greedy
// decoding, sampling, beam search and the logits processors are the same code as for GPT-2.
import * as tf from '@tensorflow/tfjs-core';
import { generate, type Decoder, type GenerateOptions } from '../generate.js';
import type { ForwardArgs, KvCache, ModelOutput } from '../types.js';
import type { T5ForConditionalGeneration } from './index.js';

export interface Seq2SeqGenerateOptions extends GenerateOptions {
  /** [N, S]: 1 for real input tokens, 0 for padding (default all 1). */
  attentionMask?: number[][];
}

/**
 * Each input's decoder output: decoder_start_token_id, then the new tokens up to and including
 * EOS (numReturnSequences of them per input, in order). EOS and padding default to the model's.
 */
export function seq2seqGenerate(
  model: T5ForConditionalGeneration,
  inputIds: number[][],
  o: Seq2SeqGenerateOptions,
): number[][] {
  if (!inputIds.length || inputIds.some((r) => r.length === 0 || r.length !== inputIds[0].length))
    throw new Error('seq2seqGenerate: inputs must be non-empty rows of one length (pad them, with an attentionMask)');
  const { decoderStartTokenId: start, eosTokenId, padTokenId } = model.config;
  const N = inputIds.length;
  const mask = o.attentionMask && tf.tensor2d(o.attentionMask, undefined, 'int32'); // [N, S]
  const encoded = tf.tidy(() =>
    model.encode({ inputIds: tf.tensor2d(inputIds, undefined, 'int32'), attentionMask: mask, training: false }),
  ); // [N, S, C]
  // generate() repeats each input numBeams or numReturnSequences times, consecutively: the
  // encoder's rows are repeated alike once the decoder's batch size is known
  let rows: { B: number; hidden: tf.Tensor3D; mask?: tf.Tensor2D } | undefined;
  const encoderRows = (B: number) => {
    if (rows?.B === B) return rows;
    if (B % N) throw new Error(`seq2seqGenerate: ${B} decoder rows for ${N} inputs`);
    const idx = tf.tensor1d(
      Array.from({ length: B }, (_, r) => Math.floor(r / (B / N))),
      'int32',
    );
    if (rows) tf.dispose([rows.hidden, rows.mask!].filter(Boolean));
    // kept: made inside the decoder step's tidy, used by every later step
    rows = { B, hidden: tf.keep(tf.gather(encoded, idx)), mask: mask && tf.keep(tf.gather(mask, idx)) };
    idx.dispose();
    return rows;
  };
  const decoder: Decoder = {
    maxPositions: model.maxPositions,
    // decoder inputs [B, T] (the new positions when a cache is given), their mask over past and new
    forward(a: ForwardArgs): ModelOutput {
      const enc = encoderRows(a.inputIds.shape[0]);
      const cache = a.useCache ? { past: a.pastKeyValues, present: [] as KvCache } : undefined;
      const hidden = model.decodeHidden(
        {
          inputIds: a.inputIds,
          attentionMask: enc.mask,
          decoderInputIds: a.inputIds,
          decoderAttentionMask: a.attentionMask,
          training: false,
        },
        enc.hidden,
        cache,
      ); // [B, T, C]
      return { logits: model.logitsOf(hidden), pastKeyValues: cache?.present };
    },
  };
  try {
    return generate(
      decoder,
      inputIds.map(() => [start]),
      { ...o, eosTokenId: o.eosTokenId ?? eosTokenId, padTokenId: o.padTokenId ?? padTokenId },
    );
  } finally {
    tf.dispose([encoded, ...(mask ? [mask] : [])]);
    if (rows) tf.dispose([rows.hidden, ...(rows.mask ? [rows.mask] : [])]);
  }
}
