// Post-processors of tokenizer.json: add the special tokens of a single sequence or a
// pair ([CLS] A [SEP] B [SEP], <s> A </s>, a BOS template, ...) and set type ids.
import { FormatError } from '@anneal/core';
import { type Json, unsupported } from './json.js';

/** One encoded sequence: parallel arrays. Offsets are UTF-16 spans in the input text. */
export interface Encoding {
  ids: number[];
  typeIds: number[];
  specialTokensMask: number[];
  offsets: Array<[number, number]>;
  /** Which input each token comes from: 0 (first), 1 (pair), null (added by the post-processor). */
  sequenceIds: Array<number | null>;
}

export type PostProcessor = (a: Encoding, b: Encoding | undefined, addSpecialTokens: boolean) => Encoding;

export function emptyEncoding(): Encoding {
  return { ids: [], typeIds: [], specialTokensMask: [], offsets: [], sequenceIds: [] };
}

function push(out: Encoding, e: Encoding, typeId: number | null, seq: number | null): void {
  for (let i = 0; i < e.ids.length; i++) {
    out.ids.push(e.ids[i]);
    out.typeIds.push(typeId ?? e.typeIds[i]);
    out.specialTokensMask.push(e.specialTokensMask[i]);
    out.offsets.push(e.offsets[i]);
    out.sequenceIds.push(seq);
  }
}

function special(out: Encoding, id: number, typeId: number): void {
  out.ids.push(id);
  out.typeIds.push(typeId);
  out.specialTokensMask.push(1);
  out.offsets.push([0, 0]);
  out.sequenceIds.push(null);
}

/** Concatenation without special tokens (also what addSpecialTokens: false gives). */
export function concat(a: Encoding, b: Encoding | undefined): Encoding {
  const out = emptyEncoding();
  push(out, a, 0, 0);
  if (b) push(out, b, 1, 1);
  return out;
}

/** ByteLevel's trim_offsets: offsets leave out the spaces a token starts or ends with. */
function trimOffsets(e: Encoding, tokenOf: (id: number) => string | undefined): void {
  e.offsets.forEach((o, i) => {
    if (e.specialTokensMask[i]) return;
    const t = tokenOf(e.ids[i]) ?? '';
    let lead = 0;
    while (lead < t.length && t[lead] === 'Ġ') lead++;
    let trail = 0;
    while (trail < t.length - lead && t[t.length - 1 - trail] === 'Ġ') trail++;
    const start = Math.min(o[0] + lead, o[1]);
    e.offsets[i] = [start, Math.max(start, o[1] - trail)];
  });
}

export function buildPostProcessor(
  j: Json | null | undefined,
  file: string,
  tokenOf: (id: number) => string | undefined,
  field = 'post_processor',
): PostProcessor | undefined {
  if (!j) return undefined;
  switch (j.type) {
    case 'TemplateProcessing': {
      const specials = j.special_tokens ?? {};
      const render = (template: Json[], a: Encoding, b: Encoding | undefined) => {
        const out = emptyEncoding();
        for (const piece of template) {
          if (piece.SpecialToken) {
            const s = specials[piece.SpecialToken.id];
            if (!s)
              throw new FormatError(
                `template uses special token ${JSON.stringify(piece.SpecialToken.id)} that special_tokens does not define`,
                { file, field: `${field}.special_tokens` },
              );
            for (const id of s.ids) special(out, id, piece.SpecialToken.type_id);
          } else if (piece.Sequence) {
            const which = piece.Sequence.id === 'A' ? a : b;
            if (which) push(out, which, piece.Sequence.type_id, piece.Sequence.id === 'A' ? 0 : 1);
          }
        }
        return out;
      };
      return (a, b, add) => (add ? render(b ? j.pair : j.single, a, b) : concat(a, b));
    }
    case 'BertProcessing':
    case 'RobertaProcessing': {
      const [, sep] = j.sep as [string, number];
      const [, cls] = j.cls as [string, number];
      const roberta = j.type === 'RobertaProcessing';
      return (a, b, add) => {
        if (roberta && j.trim_offsets) {
          trimOffsets(a, tokenOf);
          if (b) trimOffsets(b, tokenOf);
        }
        if (!add) return concat(a, b);
        const out = emptyEncoding();
        special(out, cls, 0);
        push(out, a, 0, 0);
        special(out, sep, 0);
        if (b) {
          // BERT: B [SEP] with type 1; RoBERTa: </s> B </s>, type ids 1 too, as `tokenizers` sets them
          if (roberta) special(out, sep, 1);
          push(out, b, 1, 1);
          special(out, sep, 1);
        }
        return out;
      };
    }
    case 'ByteLevel':
      return (a, b) => {
        if (j.trim_offsets) {
          trimOffsets(a, tokenOf);
          if (b) trimOffsets(b, tokenOf);
        }
        return concat(a, b);
      };
    case 'Sequence': {
      const list = (j.processors as Json[])
        .map((x, i) => buildPostProcessor(x, file, tokenOf, `${field}.processors[${i}]`))
        .filter((f): f is PostProcessor => f !== undefined);
      // In use, a sequence is offset trimming (ByteLevel, in place on a and b) followed by
      // one processor that adds special tokens: the last one's result is the encoding.
      return (a, b, add) => {
        let out = concat(a, b);
        for (const f of list) out = f(a, b, add);
        return out;
      };
    }
    default:
      throw unsupported('post_processor', j.type, file, field);
  }
}
