// LoRA's options, named as PEFT's LoraConfig (camelCase in Anneal's YAML, snake_case in
// adapter_config.json), and the conversion between the two.
import { z } from 'zod';
import { FormatError } from '@anneal/core';

export const LoraConfigSchema = z
  .object({
    type: z.literal('lora').default('lora'),
    /** Rank of the update B A. */
    r: z.number().int().positive().default(8),
    /** Scaling numerator: the update is (loraAlpha / r) B A, or loraAlpha / sqrt(r) with useRslora. */
    loraAlpha: z.number().positive().default(8),
    /** Dropout on the adapter's input (training only). */
    loraDropout: z.number().min(0).lt(1).default(0),
    /** Module names (a name matches itself or any "<prefix>.<name>"), one regex matched against the whole name, or "all-linear". */
    targetModules: z.union([z.array(z.string()).min(1), z.string()]),
    /** Modules left out even when targetModules matches them (same matching rules). */
    excludeModules: z.union([z.array(z.string()), z.string()]).optional(),
    /** Which biases train: none, all, or those of adapted layers (lora_only). */
    bias: z.enum(['none', 'all', 'lora_only']).default('none'),
    useRslora: z.boolean().default(false),
    /** true: A kaiming-uniform (PEFT's default), B zero; "gaussian": A ~ N(0, 1/r), B zero; false: both random (tests only). */
    initLoraWeights: z.union([z.boolean(), z.literal('gaussian')]).default(true),
    /** Modules trained in full next to the adapters (e.g. a classification head: "score", "classifier"). */
    modulesToSave: z.array(z.string()).default([]),
    /** Weight stored [in, out] (GPT-2's Conv1D). Anneal knows GPT-2's layout; this must agree with it when given. */
    fanInFanOut: z.boolean().optional(),
  })
  .strict();

export type LoraConfig = z.infer<typeof LoraConfigSchema>;

/**
 * The keys of adapter_config.json that every PEFT release from 0.10 on accepts: LoraConfig's
 * and PeftConfig's dataclass fields in peft 0.10.0 (src/peft/tuners/lora/config.py,
 * src/peft/config.py), as its save_pretrained writes them (fixtures/hf/llama_lora). PEFT builds
 * the config with `LoraConfig(**json)`, so a key an older release does not know is a TypeError
 * there: a newer key (exclude_modules, 0.14) is written only when it is set.
 */
export const PEFT_0_10_KEYS = [
  'alpha_pattern',
  'auto_mapping',
  'base_model_name_or_path',
  'bias',
  'fan_in_fan_out',
  'inference_mode',
  'init_lora_weights',
  'layer_replication',
  'layers_pattern',
  'layers_to_transform',
  'loftq_config',
  'lora_alpha',
  'lora_dropout',
  'megatron_config',
  'megatron_core',
  'modules_to_save',
  'peft_type',
  'r',
  'rank_pattern',
  'revision',
  'target_modules',
  'task_type',
  'use_dora',
  'use_rslora',
] as const;

/** PEFT's TaskType for a model, from its transformers class name (null: none of PEFT's tasks). */
export function peftTaskType(architecture: string | undefined): string | null {
  if (!architecture) return null;
  if (/(ForCausalLM|LMHeadModel)$/.test(architecture)) return 'CAUSAL_LM';
  if (/ForSequenceClassification$/.test(architecture)) return 'SEQ_CLS';
  if (/ForTokenClassification$/.test(architecture)) return 'TOKEN_CLS';
  if (/ForConditionalGeneration$/.test(architecture)) return 'SEQ_2_SEQ_LM';
  return null;
}

/** Fields PEFT types as float (LoraConfig.lora_dropout): written 0.0, as PEFT does, never 0. */
export const PEFT_FLOAT_KEYS = ['lora_dropout'];

/** adapter_config.json as PEFT writes it. */
export function toPeftConfig(
  c: LoraConfig,
  o: { baseModel: string; taskType: string | null; fanInFanOut: boolean },
): Record<string, unknown> {
  return {
    peft_type: 'LORA',
    task_type: o.taskType,
    base_model_name_or_path: o.baseModel,
    revision: null,
    r: c.r,
    lora_alpha: c.loraAlpha,
    lora_dropout: c.loraDropout,
    target_modules: c.targetModules,
    ...(c.excludeModules !== undefined && { exclude_modules: c.excludeModules }),
    bias: c.bias,
    use_rslora: c.useRslora,
    init_lora_weights: c.initLoraWeights,
    modules_to_save: c.modulesToSave.length ? c.modulesToSave : null,
    fan_in_fan_out: o.fanInFanOut,
    layers_to_transform: null,
    layers_pattern: null,
    use_dora: false,
    inference_mode: true,
    rank_pattern: {},
    alpha_pattern: {},
  };
}

/** Reads PEFT's adapter_config.json; options Anneal does not implement are errors naming the field. */
export function fromPeftConfig(j: Record<string, unknown>, file: string): LoraConfig {
  if (j.peft_type !== 'LORA')
    throw new FormatError(`peft_type ${JSON.stringify(j.peft_type)} is not supported (LORA only)`, {
      file,
      field: 'peft_type',
    });
  for (const [field, off] of [
    ['use_dora', false],
    ['layers_to_transform', null],
    ['layer_replication', null],
  ] as const) {
    if (j[field] !== undefined && j[field] !== off)
      throw new FormatError(`${field} ${JSON.stringify(j[field])} is not supported`, { file, field });
  }
  for (const field of ['rank_pattern', 'alpha_pattern']) {
    if (j[field] && Object.keys(j[field] as object).length)
      throw new FormatError(`per-module ${field} is not supported`, { file, field });
  }
  const parsed = LoraConfigSchema.safeParse({
    r: j.r,
    loraAlpha: j.lora_alpha,
    loraDropout: j.lora_dropout ?? 0,
    targetModules: j.target_modules,
    ...(j.exclude_modules != null && { excludeModules: j.exclude_modules }),
    bias: j.bias ?? 'none',
    useRslora: j.use_rslora ?? false,
    initLoraWeights: j.init_lora_weights ?? true,
    modulesToSave: (j.modules_to_save as string[] | null) ?? [],
    ...(j.fan_in_fan_out != null && { fanInFanOut: j.fan_in_fan_out }),
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new FormatError(`${issue.message}`, {
      file,
      field: issue.path.join('.') || undefined,
      hint: 'adapter_config.json as PEFT writes it',
    });
  }
  return parsed.data;
}

/** PEFT's update scale: alpha / r, or alpha / sqrt(r) for rank-stabilised LoRA. */
export function loraScaling(c: LoraConfig): number {
  return c.useRslora ? c.loraAlpha / Math.sqrt(c.r) : c.loraAlpha / c.r;
}
