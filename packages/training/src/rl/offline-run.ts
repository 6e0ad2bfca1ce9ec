// The set-up an offline preference recipe (KTO, ORPO, CPO) starts with, written once: the
// backend, the run folder, the policy (and its reference when the method has one; on resume
// the checkpoint's weights or adapter), the tokenizer's chat template from the config, and the
// prepared data with its bad rows reported.
import { configToYaml, useBackend } from '@anneal/core';
import { prepareDataset, type DataConfig, type PreparedDataset } from '@anneal/data';
import { tokenizerFingerprint } from '@anneal/tokenizers';
import { requireFits } from '../checks.js';
import type { RunOptions } from '../options.js';
import { silentReporter } from '../reporter.js';
import { openRunFolder, type OpenedRun } from '../run-folder.js';
import { loadPolicy, type Policy, type PolicySettings } from './policy.js';

export interface OfflineRunSettings extends PolicySettings {
  name: string;
  outputDir: string;
  backend: Parameters<typeof useBackend>[0];
  tokenizer: { path?: string; chatTemplate?: string };
  data: DataConfig;
}

export async function openOfflineRun(
  cfg: OfflineRunSettings,
  configFile: string,
  o: RunOptions,
  method: { title: string; reference: boolean },
): Promise<OpenedRun & { backendName: string; policy: Policy; data: PreparedDataset }> {
  const report = o.reporter ?? silentReporter;
  const backend = await useBackend(cfg.backend);
  const run = openRunFolder(cfg.outputDir, cfg.name, configToYaml(cfg), backend, {
    resume: o.resume,
    seed: cfg.seed,
    overwrite: o.overwrite,
    rank: o.collective?.rank,
    info: (m) => report.info(m),
  });
  const policy = await loadPolicy(cfg, configFile, {
    method: method.title,
    reference: method.reference,
    resumeDir: run.resumeDir,
    policyDir: run.resumeDir, // the supervised loop saves the model at the checkpoint's top
    info: (m) => report.info(m),
  });
  requireFits(cfg.data.maxLength, policy.base, configFile);
  if (cfg.tokenizer.chatTemplate)
    Object.assign(policy.tok.config, {
      chatTemplate: cfg.tokenizer.chatTemplate,
      chatTemplateSource: { file: configFile, field: 'tokenizer.chatTemplate' },
    });
  const data = await prepareDataset(cfg.data, policy.tok, {
    tokenizerFingerprint: tokenizerFingerprint(policy.tok),
    configFile,
    seed: cfg.seed,
  });
  if (data.stats.badRows.count) report.info(data.stats.badRows.summary());
  return { ...run, backendName: backend.name, policy, data };
}
