// The policy of an online RL run (PPO, GRPO, RLOO) and its frozen reference, set up once for
// all of them: the tokenizer (from the checkpoint on resume), the base model (quantized as
// asked), the trained model (in full, or a LoRA/QLoRA adapter), and the reference — a second
// copy only for full fine-tuning; with LoRA the policy with its adapter disabled, as in TRL.
import { join } from 'node:path';
import { ConfigError } from '@anneal/core';
import { loadPretrained, localModelDir, type CausalLm, type PretrainedModel } from '@anneal/modeling';
import type { LoraConfig, LoraModel } from '@anneal/peft-lora';
import type { QuantizationConfig } from '@anneal/quantization';
import { loadTokenizerSync, type Tokenizer } from '@anneal/tokenizers';
import { requireCausalLm, requireTokenizerFits } from '../checks.js';
import { baseWeightsFrom, loadBase, withAdapter } from '../peft.js';

export interface PolicySettings {
  seed: number;
  autocast: 'none' | 'bf16';
  model: { pretrained: string };
  tokenizer: { path?: string };
  peft?: LoraConfig;
  quantization?: QuantizationConfig;
  train: { gradientCheckpointing: boolean };
}

export interface Policy {
  tok: Tokenizer;
  eosTokenId: number;
  padTokenId: number;
  /** The trained model (saved into checkpoints' policy/ folder); `lm` is the same model as a causal LM. */
  model: PretrainedModel | LoraModel;
  lm: CausalLm;
  base: PretrainedModel;
  /** Runs fn on the frozen reference (undefined when the run needs none). */
  withReference?: <T>(fn: (lm: CausalLm) => T) => T;
  /** 'a frozen copy', 'the policy with its adapter disabled' or 'none', for the start-up line. */
  reference: string;
  /** Frees the reference copy (when the policy was freed elsewhere, e.g. by the training loop). */
  disposeReference(): void;
  /** Frees the policy and the reference copy. */
  dispose(): void;
}

/**
 * Loads the policy of `method` (for errors) and, with `reference`, its reference. On resume,
 * `policyDir` is the checkpoint's policy folder (full weights, or the adapter).
 */
export async function loadPolicy(
  cfg: PolicySettings,
  configFile: string,
  o: { method: string; reference: boolean; resumeDir?: string; policyDir?: string; info: (m: string) => void },
): Promise<Policy> {
  const policyDir = o.policyDir ?? (o.resumeDir && join(o.resumeDir, 'policy'));
  const tok = loadTokenizerSync(o.resumeDir ?? cfg.tokenizer.path ?? (await localModelDir(cfg.model.pretrained)));
  if (tok.eosTokenId === undefined)
    throw new ConfigError('the tokenizer has no EOS token', {
      file: configFile,
      field: 'tokenizer',
      hint: 'a completion ends at EOS: use a tokenizer with an eos_token',
    });
  const base = await loadBase(
    baseWeightsFrom(cfg.model.pretrained, policyDir, cfg.peft, configFile),
    cfg.quantization,
    {
      info: o.info,
    },
  );
  requireCausalLm(base, cfg.model.pretrained, o.method, { file: configFile, field: 'model.pretrained' });
  requireTokenizerFits(tok, base, { file: configFile, field: 'tokenizer.path' });
  const model = withAdapter(base, cfg, { resumeDir: policyDir, file: configFile, info: o.info });
  const lm = model as unknown as CausalLm;
  let copy: PretrainedModel | undefined;
  if (o.reference && !cfg.peft) copy = await loadPretrained(await localModelDir(cfg.model.pretrained));
  const withReference = !o.reference
    ? undefined
    : <T>(fn: (ref: CausalLm) => T): T =>
        copy ? fn(copy as unknown as CausalLm) : (model as LoraModel).withAdapterDisabled(() => fn(lm));
  return {
    tok,
    eosTokenId: tok.eosTokenId,
    padTokenId: tok.padTokenId ?? tok.eosTokenId,
    model,
    lm,
    base,
    withReference,
    reference: !o.reference ? 'none' : copy ? 'a frozen copy' : 'the policy with its adapter disabled',
    disposeReference: () => copy?.dispose(),
    dispose: () => {
      model.dispose();
      copy?.dispose();
    },
  };
}
