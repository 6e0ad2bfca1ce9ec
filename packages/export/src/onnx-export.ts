// exportOnnx: a model folder as transformers.js loads it for text generation (or, for a
// sequence classifier or reward model, text classification; for a masked LM, fill-mask; for
// T5, text2text generation from onnx/encoder_model.onnx and onnx/decoder_model_merged.onnx) —
//   config.json, generation_config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx
// — the ONNX graph built from Anneal's own model definition (onnx/<family>.ts), opset 17,
// IR version 8 (what onnxruntime 1.14 and later read). Weights over ~1.9 GB (a protobuf cannot
// exceed 2 GB) go to external data files beside it, onnx/model.onnx_data[_k], each under 2 GB
// as browsers need, named in config.json's transformers.js_config.use_external_data_format as
// transformers.js reads them. The folder is written next to its destination and renamed into
// place, so a failed export leaves nothing half-written.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, stringifyJson, writeFileDurable } from '@anneal/core';
import {
  BertModelWithHead,
  DecoderForSequenceClassification,
  DistilBertModelWithHead,
  Gpt2LMHeadModel,
  LlamaForCausalLM,
  T5ForConditionalGeneration,
  TRANSFORMERS_FLOAT_KEYS,
  type PretrainedModel,
} from '@anneal/modeling';
import type { Tokenizer } from '@anneal/tokenizers';
import { OnnxGraph, type WeightFormat } from './onnx/graph.js';
import type { DecoderIo } from './onnx/layers.js';
import { t5DecoderGraph, t5EncoderGraph } from './onnx/t5.js';
import { bertGraph, distilBertGraph } from './onnx/bert.js';
import { gpt2Decoder } from './onnx/gpt2.js';
import { llamaDecoder } from './onnx/llama.js';

/** The opset written by default, and those that can be asked for (LayerNormalization needs 17). */
export const ONNX_OPSET = 17;
export const ONNX_OPSETS = [17, 18, 19, 20, 21];
/** The IR version each opset came with (onnxruntime reads a model whose IR it knows). */
const IR_OF_OPSET: Record<number, number> = { 17: 8, 18: 8, 19: 9, 20: 9, 21: 10 };
export const ONNX_IR_VERSION = IR_OF_OPSET[ONNX_OPSET];

/** The weight-stored variants next to onnx/model.onnx, by transformers.js' file names (dtype fp16 / q8). */
export const ONNX_VARIANTS = {
  fp16: { file: 'model_fp16.onnx', suffix: '_fp16', weights: 'float16' },
  int8: { file: 'model_quantized.onnx', suffix: '_quantized', weights: 'int8' },
} as const;
export type OnnxVariant = keyof typeof ONNX_VARIANTS;

/** Weights up to this many bytes stay inside the .onnx file (its protobuf must stay under 2 GiB). */
export const ONNX_INLINE_LIMIT = 1.9e9;
/** An external data chunk holds at most this many bytes (transformers.js in a browser reads each file into one buffer). */
export const ONNX_CHUNK_BYTES = 1.9e9;

export interface OnnxExportOptions {
  /** The folder to write (must not exist, or be empty, unless overwrite). */
  outDir: string;
  /** Written next to the model (tokenizer.json, tokenizer_config.json): transformers.js needs it. */
  tokenizer?: Tokenizer;
  overwrite?: boolean;
  /** producer_version in the ONNX file. */
  producerVersion?: string;
  /** Default ONNX_OPSET. */
  opset?: number;
  /** Also write these (fp16: float16 weights, int8: int8 weight-only), as transformers.js names them. */
  variants?: OnnxVariant[];
  /** Weights of more bytes than this go to external data files (default ONNX_INLINE_LIMIT; 0: always). */
  inlineLimit?: number;
  /** The most bytes in one external data file (default ONNX_CHUNK_BYTES). */
  chunkBytes?: number;
}

export interface OnnxExportResult {
  dir: string;
  files: string[];
  /** Size of onnx/model.onnx (a seq2seq model's encoder_model.onnx) in bytes, without external data files. */
  bytes: number;
}

/** Architectures with an ONNX graph here, by config.json architectures[0]. */
export const ONNX_ARCHITECTURES = [
  'GPT2LMHeadModel',
  'LlamaForCausalLM',
  'Qwen2ForCausalLM',
  'Qwen3ForCausalLM',
  'MistralForCausalLM',
  'SmolLM3ForCausalLM',
  'Phi3ForCausalLM',
  'Gemma3ForCausalLM',
  'BertForSequenceClassification',
  'BertForMaskedLM',
  'DistilBertForSequenceClassification',
  'DistilBertForMaskedLM',
  'T5ForConditionalGeneration',
  'GPT2ForSequenceClassification',
  'LlamaForSequenceClassification',
  'Qwen2ForSequenceClassification',
  'Qwen3ForSequenceClassification',
  'MistralForSequenceClassification',
];

type GraphOptions = { producerVersion?: string; opset?: number; weights?: WeightFormat };

/**
 * The model's ONNX graph (a decoder with past_key_values inputs and present outputs), encoded
 * in one buffer; weights over ONNX_INLINE_LIMIT are refused (exportOnnx writes them as external
 * data), and so is a seq2seq model's pair of graphs (onnxModelFiles).
 */
export function onnxModelBytes(model: PretrainedModel, o: GraphOptions & { inlineLimit?: number } = {}): Uint8Array {
  const graphs = onnxGraphs(model, o);
  if (graphs.length !== 1)
    throw new ConfigError(`${model.modelType} exports ${graphs.length} graphs (${graphs.map(([f]) => f).join(', ')})`, {
      field: '--model',
      hint: 'onnxModelFiles returns each of them',
    });
  return inlineBytes(graphs[0][1], o);
}

/** Each graph of the model, encoded, by its file name in onnx/ (model.onnx; encoder_model.onnx and decoder_model_merged.onnx for T5). */
export function onnxModelFiles(
  model: PretrainedModel,
  o: GraphOptions & { inlineLimit?: number } = {},
): Record<string, Uint8Array> {
  return Object.fromEntries(onnxGraphs(model, o).map(([file, graph]) => [`${file}.onnx`, inlineBytes(graph, o)]));
}

function inlineBytes(graph: OnnxGraph, o: GraphOptions & { inlineLimit?: number }): Uint8Array {
  if (graph.initializerBytes > (o.inlineLimit ?? ONNX_INLINE_LIMIT))
    throw new ConfigError(
      `the model's weights are ${(graph.initializerBytes / 1e9).toFixed(2)} GB (${graph.initializerBytes} bytes, over the ${o.inlineLimit ?? ONNX_INLINE_LIMIT} that fit in one buffer): an ONNX protobuf holds at most 2 GB`,
      {
        field: '--model',
        hint: 'exportOnnx (anneal export --onnx) writes them to external data files beside the model',
      },
    );
  return encodeGraph(graph, o);
}

const header = (o: GraphOptions) => {
  const opset = o.opset ?? ONNX_OPSET;
  return { opset, irVersion: IR_OF_OPSET[opset], producerVersion: o.producerVersion ?? '0.1.0' };
};
const encodeGraph = (graph: OnnxGraph, o: GraphOptions): Uint8Array => graph.encode(header(o));

/** One graph as the files of one .onnx: the model bytes and its external data chunks (none when it fits). */
function graphFiles(
  graph: OnnxGraph,
  file: string,
  o: GraphOptions & { inlineLimit?: number; chunkBytes?: number },
): { model: Uint8Array; chunks: Buffer[] } {
  if (graph.initializerBytes <= (o.inlineLimit ?? ONNX_INLINE_LIMIT))
    return { model: encodeGraph(graph, o), chunks: [] };
  return graph.encodeExternal(header(o), {
    location: (k) => `${file}_data${k ? `_${k}` : ''}`,
    chunkBytes: o.chunkBytes ?? ONNX_CHUNK_BYTES,
  });
}

/** The model's graphs by file base name: [model], or a seq2seq model's [encoder_model, decoder_model_merged]. */
function onnxGraphs(model: PretrainedModel, o: GraphOptions): Array<[string, OnnxGraph]> {
  const arch = String((model.hfConfig().architectures as string[] | undefined)?.[0] ?? model.modelType);
  const opset = o.opset ?? ONNX_OPSET;
  if (!ONNX_OPSETS.includes(opset))
    throw new ConfigError(`opset ${opset} is not one Anneal writes`, {
      field: '--opset',
      hint: `one of ${ONNX_OPSETS.join(', ')} (17, the default, is read by onnxruntime 1.14 and later; 21 needs 1.20)`,
    });
  requirePlainWeights(model);
  const weight = (name: string) => {
    const p = model.params.get(name);
    if (!p) throw new ConfigError(`the model has no parameter ${name}`, { field: name });
    return { data: p.dataSync() as Float32Array, shape: p.shape };
  };
  const build = (part: string, f: (io: DecoderIo) => void): [string, OnnxGraph] => {
    const graph = new OnnxGraph(`${arch} ${part} (Anneal)`, o.weights ?? 'float32', opset);
    f({ graph, weight, has: (name: string) => model.params.has(name) });
    return [part, graph];
  };
  if (model instanceof T5ForConditionalGeneration)
    return [
      build('encoder_model', (io) => t5EncoderGraph(model.config, io)),
      build('decoder_model_merged', (io) => t5DecoderGraph(model.config, io)),
    ];
  return [
    build('model', (io) => {
      if (model instanceof Gpt2LMHeadModel) gpt2Decoder(model.config, io);
      else if (model instanceof LlamaForCausalLM) llamaDecoder(model.config, io);
      else if (model instanceof DecoderForSequenceClassification) {
        const classifier = { numLabels: model.o.numLabels, padTokenId: model.o.padTokenId };
        if (model.decoder.arch === 'gpt2') gpt2Decoder(model.decoder.config, io, { classifier });
        else llamaDecoder(model.decoder.config, io, { classifier });
      } else if (model instanceof BertModelWithHead && (model.head === 'classifier' || model.head === 'mlm'))
        bertGraph(model.config, headOf(model), io);
      else if (model instanceof DistilBertModelWithHead) distilBertGraph(model.config, headOf(model), io);
      else
        throw new ConfigError(`ONNX export of ${arch} is not supported`, {
          field: '--model',
          hint: `supported: ${ONNX_ARCHITECTURES.join(', ')}`,
        });
    }),
  ];
}

/** Writes the transformers.js folder (see the file comment); returns what it wrote. */
export function exportOnnx(model: PretrainedModel, o: OnnxExportOptions): OnnxExportResult {
  const dir = o.outDir;
  if (existsSync(dir) && readdirSync(dir).length && !o.overwrite)
    throw new ConfigError(`${dir} exists and is not empty`, {
      field: '--out',
      hint: 'choose a new folder, or pass --overwrite',
    });
  const base = {
    producerVersion: o.producerVersion,
    opset: o.opset,
    inlineLimit: o.inlineLimit,
    chunkBytes: o.chunkBytes,
  };
  const graphs = onnxGraphs(model, base); // first: an unsupported model writes nothing
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  try {
    mkdirSync(join(partial, 'onnx'), { recursive: true });
    model.saveConfigs(partial);
    o.tokenizer?.save(partial);
    const external: Record<string, number> = {}; // file -> number of data chunks, for transformers.js
    const write = (file: string, f: { model: Uint8Array; chunks: Buffer[] }) => {
      writeFileDurable(join(partial, 'onnx', file), f.model);
      f.chunks.forEach((c, k) => writeFileDurable(join(partial, 'onnx', `${file}_data${k ? `_${k}` : ''}`), c));
      if (f.chunks.length) external[file] = f.chunks.length;
    };
    for (const [name, graph] of graphs) write(`${name}.onnx`, graphFiles(graph, `${name}.onnx`, base));
    for (const v of o.variants ?? [])
      for (const [name, graph] of onnxGraphs(model, { ...base, weights: ONNX_VARIANTS[v].weights })) {
        const file = `${name}${ONNX_VARIANTS[v].suffix}.onnx`;
        write(file, graphFiles(graph, file, base));
      }
    if (Object.keys(external).length) {
      // transformers.js loads external data only where config.json names the files and their chunks
      const config = { ...model.hfConfig(), 'transformers.js_config': { use_external_data_format: external } };
      writeFileDurable(join(partial, 'config.json'), stringifyJson(config, TRANSFORMERS_FLOAT_KEYS));
    }
    mkdirSync(dirname(dir), { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    renameSync(partial, dir);
  } catch (e) {
    rmSync(partial, { recursive: true, force: true });
    throw e;
  }
  const files = [
    ...readdirSync(dir).filter((f) => f !== 'onnx'),
    ...readdirSync(join(dir, 'onnx')).map((f) => `onnx/${f}`),
  ].sort();
  return { dir, files, bytes: statSync(join(dir, 'onnx', `${graphs[0][0]}.onnx`)).size };
}

const headOf = (m: { head: string; labels: string[] }) =>
  m.head === 'mlm' ? ({ kind: 'mlm' } as const) : ({ kind: 'classifier', numLabels: m.labels.length } as const);

/** Adapters must be merged and quantized weights are not float32: both refused by name. */
function requirePlainWeights(model: PretrainedModel): void {
  for (const layer of model.layers.values()) {
    if (layer.type.startsWith('lora.'))
      throw new ConfigError(`${layer.name} carries a LoRA adapter that is not merged`, {
        field: '--model',
        hint: 'merge it first (anneal export merges an adapter folder itself)',
      });
    if (!model.params.has(`${layer.name}.weight`))
      throw new ConfigError(`${layer.name} is ${layer.type}: a quantized model has no float32 weights to export`, {
        field: '--model',
        hint: 'export the float32 checkpoint (or merge a QLoRA adapter into it)',
      });
  }
}
