// Which layers get adapters: PEFT's target_modules rules applied to the model's parameter
// names (a module is a parameter name without ".weight").
import { ConfigError } from '@anneal/core';
import type { PretrainedModel } from '@anneal/modeling';
import type { LoraConfig } from './config.js';

export interface LoraTarget {
  /** Module name as in the Hugging Face state dict, e.g. model.layers.0.self_attn.q_proj. */
  module: string;
  /** 'conv1d': weight stored [in, out] (GPT-2); 'linear': [out, in]; 'embedding': a table [rows, dim] (in = rows, out = dim). */
  layout: 'linear' | 'conv1d' | 'embedding';
  inDim: number;
  outDim: number;
}

// Embedding tables get embedding adapters when named; output heads are left out of
// "all-linear" as PEFT does (train them with modulesToSave).
const EMBEDDING = /(^|\.)(embed_tokens|wte|wpe|word_embeddings|position_embeddings|token_type_embeddings)$/;
const HEAD = /(^|\.)(lm_head|score|classifier|vocab_projector)$/;
const GPT2_CONV1D = /\.(c_attn|c_proj|c_fc)$/;

/** PEFT's rule: a list entry matches the module or any "<prefix>.<entry>"; a string is a regex matched against the whole name. */
export function moduleMatches(module: string, spec: string[] | string): boolean {
  if (typeof spec === 'string') return new RegExp(`^(?:${spec})$`).test(module);
  return spec.some((k) => module === k || module.endsWith(`.${k}`));
}

export function findTargets(model: PretrainedModel, c: LoraConfig, file?: string): LoraTarget[] {
  const targets: LoraTarget[] = [];
  const linears: string[] = [];
  for (const [name, p] of model.params) {
    if (!name.endsWith('.weight') || p.rank !== 2) continue;
    const module = name.slice(0, -'.weight'.length);
    if (EMBEDDING.test(module)) {
      // Embedding tables only when named (PEFT's all-linear leaves them out too).
      if (
        c.targetModules !== 'all-linear' &&
        moduleMatches(module, c.targetModules) &&
        !(c.excludeModules !== undefined && moduleMatches(module, c.excludeModules))
      ) {
        targets.push({ module, layout: 'embedding', inDim: p.shape[0]!, outDim: p.shape[1]! });
      }
      continue;
    }
    linears.push(module);
    const wanted = c.targetModules === 'all-linear' ? !HEAD.test(module) : moduleMatches(module, c.targetModules);
    if (!wanted || (c.excludeModules !== undefined && moduleMatches(module, c.excludeModules))) continue;
    const layout = model.modelType === 'gpt2' && GPT2_CONV1D.test(module) ? 'conv1d' : 'linear';
    if (c.fanInFanOut !== undefined && c.fanInFanOut !== (layout === 'conv1d')) {
      throw new ConfigError(
        `fanInFanOut ${c.fanInFanOut} does not match ${module}, whose weight is stored ${layout === 'conv1d' ? '[in, out]' : '[out, in]'}`,
        { file, field: 'peft.fanInFanOut', hint: "leave fanInFanOut out: Anneal knows each layer's layout" },
      );
    }
    const [a, b] = p.shape;
    targets.push({ module, layout, inDim: layout === 'conv1d' ? a : b, outDim: layout === 'conv1d' ? b : a });
  }
  if (!targets.length) {
    throw new ConfigError(
      `targetModules ${JSON.stringify(c.targetModules)} matches none of the model's linear layers`,
      {
        file,
        field: 'peft.targetModules',
        hint: `e.g. ${[...new Set(linears.map((m) => m.split('.').pop()))].join(', ')}, or "all-linear"`,
      },
    );
  }
  return targets;
}
