// `anneal train`: loads the config (extends, --set), picks the recipe, starts the backend,
// and runs the recipe with Ctrl-C handling. Loaded only when the command runs: it pulls in
// tfjs, libtorch and every recipe, which `anneal --help` should not wait for.
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import {
  AnnealError,
  ConfigError,
  configToYaml,
  listCheckpoints,
  readConfig,
  resolveResume,
  validateConfig,
} from '@anneal/core';
import {
  ClassificationConfigSchema,
  ClmConfigSchema,
  MlmConfigSchema,
  SftConfigSchema,
  Seq2SeqConfigSchema,
  T5SpanConfigSchema,
  runClassification,
  runClm,
  runMlm,
  runSeq2Seq,
  runSft,
  runT5Span,
} from '@anneal/trainers';
import { RewardConfigSchema, runReward } from '@anneal/reward-model';
import { CpoConfigSchema, DpoConfigSchema, OrpoConfigSchema, runCpo, runDpo, runOrpo } from '@anneal/dpo';
import { KtoConfigSchema, runKto } from '@anneal/kto';
import { PpoConfigSchema, runPpo } from '@anneal/ppo';
import { GrpoConfigSchema, runGrpo } from '@anneal/grpo';
import { RlooConfigSchema, runRloo } from '@anneal/rloo';
import { silentReporter, type RunOptions } from '@anneal/training';
import type { z } from 'zod';
import { loadAddon, loadedBlas, processGroupFromEnv, registerTorchBackend } from '@anneal/backend-torch';
import { rankDevice } from './launch-command.js';
import { plainReporter, ttyReporter } from './progress.js';

export interface TrainFlags {
  set: string[];
  resume?: string;
  overwrite?: boolean;
  debug?: boolean;
  /** Print the resolved config and the backend's library paths. */
  verbose?: boolean;
}

/** "OpenBLAS 0.3.21" from the loaded libraries' paths (the full paths under --verbose). */
export function blasName(paths: string): string {
  const v = /libopenblas\w*-r(\d+\.\d+\.\d+)/.exec(paths);
  if (v) return `OpenBLAS ${v[1]}`;
  if (/openblas/i.test(paths)) return 'OpenBLAS';
  if (/mkl/i.test(paths)) return 'MKL';
  return paths.split(',')[0].split('/').pop() ?? paths;
}

/** What every recipe returns, as far as the summary line needs. */
interface RecipeResult {
  stopped: boolean;
  step: number;
  runDir: string;
  lastCheckpoint: string;
  evalLoss?: number;
  unigramEntropy?: number;
  eval?: Record<string, number>;
  metrics?: Record<string, number>;
}

/** A recipe: its config schema and its run function, typed together. */
interface Recipe {
  validate(
    raw: unknown,
    file: string,
  ): {
    cfg: { device: string; autocast: 'none' | 'bf16'; precision: 'float32' | 'bf16'; backend: string };
    run: (o: RunOptions) => Promise<RecipeResult>;
  };
}
function recipe<
  C extends { device: string; autocast: 'none' | 'bf16'; precision: 'float32' | 'bf16'; backend: string },
>(schema: z.ZodType<C>, run: (cfg: C, file: string, o: RunOptions) => Promise<RecipeResult>): Recipe {
  return {
    validate: (raw, file) => {
      const cfg = validateConfig(schema, raw, file);
      return { cfg, run: (o) => run(cfg, file, o) };
    },
  };
}

/** The `recipe:` values of a training config. */
const RECIPES: Record<string, Recipe> = {
  clm: recipe(ClmConfigSchema, runClm),
  sft: recipe(SftConfigSchema, runSft),
  mlm: recipe(MlmConfigSchema, runMlm),
  't5-span': recipe(T5SpanConfigSchema, runT5Span),
  seq2seq: recipe(Seq2SeqConfigSchema, runSeq2Seq),
  classification: recipe(ClassificationConfigSchema, runClassification),
  reward: recipe(RewardConfigSchema, runReward),
  dpo: recipe(DpoConfigSchema, runDpo),
  orpo: recipe(OrpoConfigSchema, runOrpo),
  cpo: recipe(CpoConfigSchema, runCpo),
  kto: recipe(KtoConfigSchema, runKto),
  ppo: recipe(PpoConfigSchema, runPpo),
  grpo: recipe(GrpoConfigSchema, runGrpo),
  rloo: recipe(RlooConfigSchema, runRloo),
};

/** The end-of-run numbers: eval metrics, or eval/loss (with the unigram entropy for CLM). */
function evalSummary(r: RecipeResult): string {
  if (r.unigramEntropy !== undefined && r.evalLoss !== undefined)
    return `; eval/loss ${r.evalLoss.toFixed(4)} vs unigram entropy ${r.unigramEntropy.toFixed(4)}`;
  if (r.eval)
    return (
      '; ' +
      Object.entries(r.eval)
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ')
    );
  if (r.metrics)
    return (
      '; ' +
      ['objective/scores', 'objective/kl', 'objective/rlhf_reward']
        .map((k) => `${k} ${r.metrics![k].toFixed(4)}`)
        .join(', ')
    );
  return r.evalLoss !== undefined ? `; eval/loss ${r.evalLoss.toFixed(4)}` : '';
}

export async function train(configArg: string | undefined, flags: TrainFlags): Promise<number> {
  let file = configArg;
  if (!file) {
    if (!flags.resume)
      throw new ConfigError('no config file given', {
        hint: 'anneal train <config.yaml>, or anneal train --resume <run-dir>',
      });
    file = join(resolveResume(flags.resume).runDir, 'config.yaml');
  }
  // The merged document (extends + --set) says which recipe, hence which schema, applies.
  const raw = readConfig(file, flags.set);
  const recipe = typeof raw.recipe === 'string' ? raw.recipe : 'clm';
  // Under `anneal launch`, rank 0 reports; the other ranks stay quiet (errors still print).
  const rank = Number(process.env.RANK ?? 0);
  const reporter = rank > 0 ? silentReporter : process.stdout.isTTY ? ttyReporter() : plainReporter();
  const chosen = RECIPES[recipe];
  if (!chosen)
    throw new ConfigError(`unknown recipe ${JSON.stringify(recipe)}`, {
      file,
      field: 'recipe',
      hint: `available: ${Object.keys(RECIPES).join(', ')}`,
    });
  const config = chosen.validate(raw, file);
  const { device, autocast, precision, backend } = config.cfg;
  if (precision !== 'float32' && backend !== 'auto' && backend !== 'torch') {
    throw new ConfigError(`precision ${precision} needs the torch backend, and backend is ${backend}`, {
      file,
      field: 'precision',
      hint: 'set backend: torch (or auto), or precision: float32',
    });
  }
  // The libtorch backend is the fast path; without it `auto` falls back to wasm, and says
  // why. A GPU asked for but not usable is an error, not a silent fallback.
  try {
    registerTorchBackend({ device: rankDevice(device), autocast, precision, warn: (m) => reporter.info(m) });
    const info = loadAddon().info();
    const blas = loadedBlas();
    reporter.info(
      `torch backend: libtorch ${info.torchVersion}, ${info.device}, ${info.threads} threads, ${blasName(blas)}${info.autocast !== 'none' ? `, autocast ${info.autocast}` : ''}${info.precision !== 'float32' ? `, precision ${info.precision}` : ''}`,
    );
    if (flags.verbose) reporter.info(`BLAS libraries: ${blas}`);
  } catch (e) {
    if (device !== 'cpu' || backend === 'torch' || precision !== 'float32') throw e;
    reporter.info(
      `torch backend unavailable: ${e instanceof AnnealError ? e.describe().replace(/\n/g, ' ') : (e as Error).message}`,
    );
  }

  // Ctrl-C once: finish the step, save a checkpoint, exit 0. Twice: stop at once.
  let stopRequested = false;
  const onSigint = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    process.stderr.write('\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  try {
    // The resolved config goes to the run folder (config.yaml) and TensorBoard; the console gets one line.
    const c = config.cfg as { name?: string; recipe?: string; outputDir?: string };
    reporter.info(
      `config: ${file}${flags.set.length ? ` with ${flags.set.join(' ')}` : ''} (recipe ${c.recipe ?? recipe}, run ${c.outputDir ?? 'runs'}/${c.name ?? '?'}${flags.verbose ? '' : '; --verbose prints it whole'})`,
    );
    if (flags.verbose) reporter.info(configToYaml(config.cfg).trimEnd());
    // Data parallel under `anneal launch` (WORLD_SIZE > 1): join the c10d process group first.
    const collective = processGroupFromEnv();
    if (collective) reporter.info(`data parallel: rank ${collective.rank} of ${collective.worldSize} (c10d, Gloo)`);
    const options = {
      reporter,
      resume: flags.resume,
      overwrite: flags.overwrite,
      shouldStop: () => stopRequested,
      collective,
    };
    // A fresh start that fails before its first checkpoint leaves no run folder behind.
    const runDir = resolve(c.outputDir ?? 'runs', c.name ?? '');
    const fresh = !flags.resume && !existsSync(runDir) && (collective?.rank ?? 0) === 0;
    const result = await config
      .run(options)
      .catch((e: unknown) => {
        if (fresh && existsSync(runDir) && listCheckpoints(runDir).length === 0)
          rmSync(runDir, { recursive: true, force: true });
        throw e;
      })
      .finally(() => collective?.destroy());
    const evalPart = evalSummary(result);
    reporter.info(
      `${result.stopped ? 'stopped' : 'done'} at step ${result.step}${evalPart}; run folder ${result.runDir}; checkpoint ${result.lastCheckpoint}`,
    );
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}
