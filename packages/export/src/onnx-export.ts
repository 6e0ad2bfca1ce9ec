// exportOnnx: a model folder as transformers.js loads it for text generation (or, for a
// sequence classifier or reward model, text classification) —
//   config.json, generation_config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx
// — the ONNX graph built from Anneal's own model definition (onnx/<family>.ts), opset 17,
// IR version 8 (what onnxruntime 1.14 and later read). The folder is written next to its
// destination and renamed into place, so a failed export leaves nothing half-written.
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ConfigError, writeFileDurable } from '@anneal/core';
import {
  BertModelWithHead,
  DecoderForSequenceClassification,
  Gpt2LMHeadModel,
  LlamaForCausalLM,
  type PretrainedModel,
} from '@anneal/modeling';
import type { Tokenizer } from '@anneal/tokenizers';
import { OnnxGraph, type WeightFormat } from './onnx/graph.js';
import { bertClassifier } from './onnx/bert.js';
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
  fp16: { file: 'model_fp16.onnx', weights: 'float16' },
  int8: { file: 'model_quantized.onnx', weights: 'int8' },
} as const;
export type OnnxVariant = keyof typeof ONNX_VARIANTS;

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
}

export interface OnnxExportResult {
  dir: string;
  files: string[];
  /** Size of onnx/model.onnx in bytes. */
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
  'GPT2ForSequenceClassification',
  'LlamaForSequenceClassification',
  'Qwen2ForSequenceClassification',
  'Qwen3ForSequenceClassification',
  'MistralForSequenceClassification',
];

/** The model's ONNX graph (a decoder with past_key_values inputs and present outputs), encoded. */
export function onnxModelBytes(
  model: PretrainedModel,
  o: { producerVersion?: string; opset?: number; weights?: WeightFormat } = {},
): Uint8Array {
  const arch = String((model.hfConfig().architectures as string[] | undefined)?.[0] ?? model.modelType);
  const opset = o.opset ?? ONNX_OPSET;
  if (!ONNX_OPSETS.includes(opset))
    throw new ConfigError(`opset ${opset} is not one Anneal writes`, {
      field: '--opset',
      hint: `one of ${ONNX_OPSETS.join(', ')} (17, the default, is read by onnxruntime 1.14 and later; 21 needs 1.20)`,
    });
  requirePlainWeights(model);
  const graph = new OnnxGraph(`${arch} (Anneal)`, o.weights ?? 'float32', opset);
  const weight = (name: string) => {
    const p = model.params.get(name);
    if (!p) throw new ConfigError(`the model has no parameter ${name}`, { field: name });
    return { data: p.dataSync() as Float32Array, shape: p.shape };
  };
  const io = { graph, weight, has: (name: string) => model.params.has(name) };
  if (model instanceof Gpt2LMHeadModel) gpt2Decoder(model.config, io);
  else if (model instanceof LlamaForCausalLM) llamaDecoder(model.config, io);
  else if (model instanceof DecoderForSequenceClassification) {
    const classifier = { numLabels: model.o.numLabels, padTokenId: model.o.padTokenId };
    if (model.decoder.arch === 'gpt2') gpt2Decoder(model.decoder.config, io, { classifier });
    else llamaDecoder(model.decoder.config, io, { classifier });
  } else if (model instanceof BertModelWithHead && model.head === 'classifier')
    bertClassifier(model.config, model.labels.length, io);
  else
    throw new ConfigError(`ONNX export of ${arch} is not supported`, {
      field: '--model',
      hint: `supported: ${ONNX_ARCHITECTURES.join(', ')}`,
    });
  return graph.encode({ opset, irVersion: IR_OF_OPSET[opset], producerVersion: o.producerVersion ?? '0.1.0' });
}

/** Writes the transformers.js folder (see the file comment); returns what it wrote. */
export function exportOnnx(model: PretrainedModel, o: OnnxExportOptions): OnnxExportResult {
  const dir = o.outDir;
  if (existsSync(dir) && readdirSync(dir).length && !o.overwrite)
    throw new ConfigError(`${dir} exists and is not empty`, {
      field: '--out',
      hint: 'choose a new folder, or pass --overwrite',
    });
  const base = { producerVersion: o.producerVersion, opset: o.opset };
  const bytes = onnxModelBytes(model, base); // first: an unsupported model writes nothing
  const partial = `${dir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  try {
    mkdirSync(join(partial, 'onnx'), { recursive: true });
    model.saveConfigs(partial);
    o.tokenizer?.save(partial);
    writeFileDurable(join(partial, 'onnx', 'model.onnx'), bytes);
    for (const v of o.variants ?? [])
      writeFileDurable(
        join(partial, 'onnx', ONNX_VARIANTS[v].file),
        onnxModelBytes(model, { ...base, weights: ONNX_VARIANTS[v].weights }),
      );
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
  return { dir, files, bytes: bytes.length };
}

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
