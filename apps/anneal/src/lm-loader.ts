// What `anneal generate` and `anneal chat` talk to: a causal LM (or, for generate, a T5
// encoder–decoder) from a model folder, a Hub repo id, or a PEFT adapter folder (a LoRA run's
// checkpoint), whose base comes from adapter_config.json's base_model_name_or_path as
// AutoPeftModelForCausalLM finds it.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '@anneal/core';
import {
  T5ForConditionalGeneration,
  loadPretrained,
  localModelDir,
  type CausalLm,
  type PretrainedModel,
} from '@anneal/modeling';
import { isAdapterDir, loadAdapter } from '@anneal/peft-lora';
import { loadTokenizerSync, type Tokenizer } from '@anneal/tokenizers';
import { requireTokenizerFits } from '@anneal/training';

export interface LoadedLm {
  /** A causal LM, or a T5 model (its input goes to the encoder; only with seq2seq allowed). */
  lm: CausalLm | T5ForConditionalGeneration;
  tok: Tokenizer;
  /** Token ids that end a reply: the tokenizer's EOS and generation_config.json's eos_token_id. */
  eos: number[];
  /** One line for the console. */
  describe: string;
}

export const hasTokenizer = (dir: string) =>
  ['tokenizer.json', 'vocab.json', 'vocab.txt'].some((f) => existsSync(join(dir, f)));

function eosIds(dir: string, tok: Tokenizer): number[] {
  const ids = new Set<number>(tok.eosTokenId !== undefined ? [tok.eosTokenId] : []);
  const file = join(dir, 'generation_config.json');
  if (existsSync(file)) {
    const e = (JSON.parse(readFileSync(file, 'utf8')) as { eos_token_id?: number | number[] }).eos_token_id;
    for (const id of [e ?? []].flat()) if (Number.isInteger(id)) ids.add(id);
  }
  return [...ids];
}

/**
 * The base model of a PEFT adapter folder: `base` when given, else adapter_config.json's
 * base_model_name_or_path (a folder relative to here, or a Hub repo id).
 */
export function adapterBase(adapterDir: string, base?: string): string {
  const cfgFile = join(adapterDir, 'adapter_config.json');
  const named = (JSON.parse(readFileSync(cfgFile, 'utf8')) as { base_model_name_or_path?: string })
    .base_model_name_or_path;
  const chosen = base ?? named;
  if (!chosen)
    throw new ConfigError('the adapter does not name its base model', {
      file: cfgFile,
      field: 'base_model_name_or_path',
      hint: 'give it with --base <model dir|org/name>',
    });
  if (!base && !existsSync(chosen) && !/^[^/]+\/[^/]+$/.test(chosen))
    throw new ConfigError(`the base model ${JSON.stringify(chosen)} is neither a folder here nor a Hub repo id`, {
      file: cfgFile,
      field: 'base_model_name_or_path',
      hint: 'run from the folder the training ran in, or give the base with --base',
    });
  return chosen;
}

export async function loadCausalLm(
  model: string,
  o: { tokenizer?: string; base?: string; info: (m: string) => void; seq2seq?: boolean },
): Promise<LoadedLm> {
  let net: PretrainedModel;
  let lm: LoadedLm['lm'];
  let modelDir: string;
  let describe: string;
  // A run folder stands for its best checkpoint (a LoRA run's is an adapter folder).
  if (existsSync(model)) model = await localModelDir(model, { field: '--model' });
  if (existsSync(model) && isAdapterDir(model)) {
    const base = adapterBase(model, o.base);
    modelDir = await localModelDir(base);
    net = await loadPretrained(modelDir);
    const lora = loadAdapter(net, model);
    try {
      lora.merge(); // exact, and as fast as the base model
      lm = net as unknown as CausalLm;
    } catch {
      lm = lora as unknown as CausalLm; // an adapter on a tied table stays unmerged
    }
    describe = `${model} (LoRA r ${lora.config.r} on ${adapterBase(model, o.base)}, ${net.modelType})`;
    if (hasTokenizer(model)) modelDir = model;
  } else {
    modelDir = await localModelDir(model);
    net = await loadPretrained(modelDir);
    lm = net as unknown as CausalLm;
    describe = `${model} (${net.modelType}, ${(net.numParameters / 1e6).toFixed(1)}M parameters)`;
  }
  const arch = String((net.hfConfig().architectures as string[] | undefined)?.[0]);
  if (net instanceof T5ForConditionalGeneration) {
    if (!o.seq2seq)
      throw new ConfigError(`${model} is an encoder–decoder model (T5): it answers an input, it does not chat`, {
        field: '--model',
        hint: 'use anneal generate --model … --prompt "<input>" (or a causal LM here)',
      });
    lm = net; // a LoRA run's adapters, merged or not, sit in its layers
  } else if (!/ForCausalLM$|LMHeadModel$/.test(arch))
    throw new ConfigError(`${model} is not a causal language model (${arch})`, {
      field: '--model',
      hint: 'use a GPT-2 or Llama-family (Qwen2/Qwen3, Mistral, SmolLM3, Phi-3, Gemma 3) or T5 checkpoint, or a LoRA adapter of one',
    });
  const tokDir = o.tokenizer ?? modelDir;
  const tok = loadTokenizerSync(tokDir);
  requireTokenizerFits(tok, net, { file: tokDir, field: '--tokenizer' });
  return { lm, tok, eos: eosIds(modelDir, tok), describe };
}
