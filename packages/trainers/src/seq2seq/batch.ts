// An encoder–decoder batch, shared by the seq2seq and t5-span recipes: input -> target pairs
// padded into encoder inputs, labels and the decoder inputs transformers derives from them.
import { shiftRight } from '@anneal/modeling';

/** An input -> target pair of token ids (EOS ending both). */
export interface Seq2SeqPair {
  input: number[];
  target: number[];
}

/** Right-padded encoder inputs, −100-padded labels and the decoder inputs (labels shifted right). */
export function seq2seqBatch(pairs: Seq2SeqPair[], ids: { pad: number; decoderStart: number }) {
  const [Te, Tt] = [Math.max(...pairs.map((p) => p.input.length)), Math.max(...pairs.map((p) => p.target.length))];
  const inputIds = pairs.map((p) => [...p.input, ...Array<number>(Te - p.input.length).fill(ids.pad)]);
  const attentionMask = pairs.map((p) => Array.from({ length: Te }, (_, t) => (t < p.input.length ? 1 : 0)));
  const labels = pairs.map((p) => [...p.target, ...Array<number>(Tt - p.target.length).fill(-100)]);
  const decoderInputIds = shiftRight(labels, { decoderStartTokenId: ids.decoderStart, padTokenId: ids.pad });
  return { B: pairs.length, Te, Tt, inputIds, attentionMask, labels, decoderInputIds };
}
