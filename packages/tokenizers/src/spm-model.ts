// A SentencePiece Unigram model file (spiece.model: T5, T5 v1.1, mT5 repos ship only this) as
// the tokenizer.json transformers' T5Converter makes of it: the pieces and 100 <extra_id_N>
// sentinels (99 first) as a Unigram model; SentencePiece's precompiled charsmap, a right
// strip and runs of spaces to one ▁ as the normalizer; Metaspace splitting and decoding;
// </s> appended by the post-processor. The file is protobuf (sentencepiece_model.proto),
// read with protobufjs through the subset of the schema used here.
import { readFileSync } from 'node:fs';
import protobuf from 'protobufjs';
import { FormatError } from '@anneal/core';
import type { Json } from './json.js';
import { addedTokenJson } from './save.js';

const PROTO = `
syntax = "proto2";
package sentencepiece;
message TrainerSpec {
  enum ModelType { UNIGRAM = 1; BPE = 2; WORD = 3; CHAR = 4; }
  optional ModelType model_type = 3 [default = UNIGRAM];
  optional bool byte_fallback = 35 [default = false];
  optional int32 unk_id = 40 [default = 0];
  optional int32 bos_id = 41 [default = 1];
  optional int32 eos_id = 42 [default = 2];
  optional int32 pad_id = 43 [default = -1];
}
message NormalizerSpec {
  optional string name = 1;
  optional bytes precompiled_charsmap = 2;
  optional bool add_dummy_prefix = 3 [default = true];
  optional bool remove_extra_whitespaces = 4 [default = true];
  optional bool escape_whitespaces = 5 [default = true];
}
message ModelProto {
  message SentencePiece {
    enum Type { NORMAL = 1; UNKNOWN = 2; CONTROL = 3; USER_DEFINED = 4; UNUSED = 5; BYTE = 6; }
    optional string piece = 1;
    optional float score = 2;
    optional Type type = 3 [default = NORMAL];
  }
  repeated SentencePiece pieces = 1;
  optional TrainerSpec trainer_spec = 2;
  optional NormalizerSpec normalizer_spec = 3;
}
`;

const ModelProto = protobuf.parse(PROTO, { keepCase: true }).root.lookupType('sentencepiece.ModelProto');

interface SpmModel {
  pieces: Array<{ piece: string; score: number; type: number }>;
  trainer_spec: { model_type: number; byte_fallback: boolean; unk_id: number; eos_id: number; pad_id: number };
  normalizer_spec: { precompiled_charsmap: Uint8Array; add_dummy_prefix: boolean };
}

const UNKNOWN = 2;
const CONTROL = 3;
const USER_DEFINED = 4;

/** The fields of a .model file that the conversion reads (with proto2's defaults filled in). */
export function readSpmModel(file: string): SpmModel {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (e) {
    throw new FormatError(`cannot read: ${(e as Error).message}`, { file });
  }
  let m: SpmModel;
  try {
    const msg = ModelProto.decode(bytes);
    m = ModelProto.toObject(msg, { defaults: true }) as unknown as SpmModel;
  } catch (e) {
    throw new FormatError(`not a SentencePiece model: ${(e as Error).message}`, {
      file,
      hint: 'expected a sentencepiece_model.proto ModelProto (spiece.model / tokenizer.model)',
    });
  }
  if (!m.pieces.length) throw new FormatError('the model has no pieces', { file, field: 'pieces' });
  return m;
}

/**
 * tokenizer.json (as an object) for T5's tokenizer over a spiece.model: what T5TokenizerFast
 * converts it to, with `extraIds` sentinels (tokenizer_config.json's extra_ids, default 100).
 */
export function t5TokenizerJsonFromSpm(file: string, extraIds = 100): Json {
  const m = readSpmModel(file);
  const t = m.trainer_spec;
  if (t.model_type !== 1)
    throw new FormatError(
      `a ${['', 'Unigram', 'BPE', 'word', 'char'][t.model_type] ?? t.model_type} model, not Unigram`,
      {
        file,
        field: 'trainer_spec.model_type',
        hint: "T5's tokenizer is a Unigram model; for a BPE .model (Llama 2, Gemma) use the repo's tokenizer.json",
      },
    );
  const eos = m.pieces.findIndex((p) => p.piece === '</s>');
  if (eos < 0) throw new FormatError('no </s> piece', { file, field: 'pieces', hint: "T5's EOS token is </s>" });
  if (t.unk_id < 0 || t.unk_id >= m.pieces.length)
    throw new FormatError(`unk_id ${t.unk_id} is not a piece`, { file, field: 'trainer_spec.unk_id' });
  const vocab: Array<[string, number]> = m.pieces.map((p) => [p.piece, p.score]);
  const sentinels = Array.from({ length: extraIds }, (_, i) => `<extra_id_${extraIds - 1 - i}>`);
  for (const s of sentinels) vocab.push([s, 0]);
  const added = (id: number, content: string, special: boolean) =>
    addedTokenJson({ id, content, singleWord: false, lstrip: false, rstrip: false, normalized: false, special });
  const addedTokens = [
    ...m.pieces.flatMap((p, id) =>
      [UNKNOWN, CONTROL, USER_DEFINED].includes(p.type) ? [added(id, p.piece, p.type !== USER_DEFINED)] : [],
    ),
    ...sentinels.map((s, i) => added(m.pieces.length + i, s, true)),
  ].sort((a, b) => a.id - b.id);
  const charsmap = m.normalizer_spec.precompiled_charsmap;
  const prepend = m.normalizer_spec.add_dummy_prefix ? 'always' : 'never';
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        ...(charsmap.length
          ? [{ type: 'Precompiled', precompiled_charsmap: Buffer.from(charsmap).toString('base64') }]
          : []),
        { type: 'Strip', strip_left: false, strip_right: true },
        { type: 'Replace', pattern: { Regex: ' {2,}' }, content: '▁' },
      ],
    },
    pre_tokenizer: { type: 'Metaspace', replacement: '▁', prepend_scheme: prepend, split: true },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '</s>', type_id: 0 } }],
      pair: [
        { Sequence: { id: 'A', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 0 } },
        { SpecialToken: { id: '</s>', type_id: 0 } },
      ],
      special_tokens: { '</s>': { id: '</s>', ids: [eos], tokens: ['</s>'] } },
    },
    decoder: { type: 'Metaspace', replacement: '▁', prepend_scheme: prepend, split: true },
    model: { type: 'Unigram', unk_id: t.unk_id, vocab, byte_fallback: false },
  };
}
