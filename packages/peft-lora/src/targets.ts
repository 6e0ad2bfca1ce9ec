// Which layers get adapters: PEFT's target_modules rules applied to the model's layers
// (model.layers, as the architecture declares them: projections, heads, embedding tables).
import { ConfigError } from '@anneal/core';
import type { Layer, PretrainedModel } from '@anneal/modeling';
import type { LoraConfig } from './config.js';

export interface LoraTarget {
  /** Module name as in the Hugging Face state dict, e.g. model.layers.0.self_attn.q_proj. */
  module: string;
  /** 'conv1d': weight stored [in, out] (GPT-2); 'linear': [out, in]; 'embedding': a table [rows, dim] (in = rows, out = dim). */
  layout: 'linear' | 'conv1d' | 'embedding';
  inDim: number;
  outDim: number;
  /** The model's layer the adapter wraps. */
  layer: Layer;
}

/** PEFT's rule: a list entry matches the module or any "<prefix>.<entry>"; a string is a regex matched against the whole name. */
export function moduleMatches(module: string, spec: string[] | string): boolean {
  if (typeof spec === 'string') return new RegExp(`^(?:${spec})$`).test(module);
  return spec.some((k) => module === k || module.endsWith(`.${k}`));
}

export function findTargets(model: PretrainedModel, c: LoraConfig, file?: string): LoraTarget[] {
  const targets: LoraTarget[] = [];
  const linears: string[] = [];
  const excluded = (module: string) => c.excludeModules !== undefined && moduleMatches(module, c.excludeModules);
  for (const layer of model.layers.values()) {
    const module = layer.name;
    if (layer.kind === 'embedding') {
      // Embedding tables get embedding adapters only when named (PEFT's all-linear leaves them out too).
      if (c.targetModules !== 'all-linear' && moduleMatches(module, c.targetModules) && !excluded(module))
        targets.push({ module, layout: 'embedding', inDim: layer.rows, outDim: layer.dim, layer });
      continue;
    }
    linears.push(module);
    // Output heads are left out of "all-linear" as PEFT does (train them with modulesToSave).
    const wanted = c.targetModules === 'all-linear' ? layer.role !== 'head' : moduleMatches(module, c.targetModules);
    if (!wanted || excluded(module)) continue;
    if (c.fanInFanOut !== undefined && c.fanInFanOut !== (layer.layout === 'conv1d')) {
      throw new ConfigError(
        `fanInFanOut ${c.fanInFanOut} does not match ${module}, whose weight is stored ${layer.layout === 'conv1d' ? '[in, out]' : '[out, in]'}`,
        { file, field: 'peft.fanInFanOut', hint: "leave fanInFanOut out: Anneal knows each layer's layout" },
      );
    }
    targets.push({ module, layout: layer.layout, inDim: layer.inDim, outDim: layer.outDim, layer });
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
