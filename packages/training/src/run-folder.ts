// The run folder every recipe keeps: <outputDir>/<name>/ with config.yaml, run.json,
// metrics.jsonl, TensorBoard events and checkpoints/step-N/ (written atomically). Opening
// it resolves --resume and refuses to overwrite checkpoints unless told to.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import {
  ANNEAL_STATE,
  CheckpointError,
  cleanCheckpoints,
  linkCheckpointAlias,
  listCheckpoints,
  readTrainerState,
  resolveResume,
  rotateCheckpoints,
  runRelative,
  serializeSafetensors,
  stateFileOf,
  writeDirAtomic,
  writeFileAtomic,
  writeFileDurable,
  checkpointDirName,
  type TrainerState,
} from '@anneal/core';
import { AdamW, RunLogger, configToYaml, makeDir, parseConfigText, parseSafetensors } from '@anneal/core';
import type { Variable } from '@tensorflow/tfjs-core';
import { packageVersions } from './versions.js';

export interface OpenedRun {
  runDir: string;
  /** The checkpoint folder a resumed run continues from. */
  resumeDir?: string;
  state?: TrainerState;
}

/**
 * The files a checkpoint must hold to be continued, as paths relative to it: missing ones
 * are reported when the run opens, before any data is prepared. The model is a Hugging Face
 * folder or a PEFT adapter (PPO: one under policy/ and a model under value/).
 */
export function missingCheckpointFiles(dir: string, models?: string[]): string[] {
  const missing = ['optimizer.safetensors', 'tokenizer.json'].filter((f) => !existsSync(join(dir, f)));
  const weights = (sub: string, adapterOk: boolean) => {
    const at = (f: string) => existsSync(join(dir, sub, f));
    if (adapterOk && at('adapter_config.json'))
      return at('adapter_model.safetensors') ? [] : [join(sub, 'adapter_model.safetensors')];
    return [
      at('config.json') ? [] : [join(sub, 'config.json')],
      at('model.safetensors') || at('model.safetensors.index.json') ? [] : [join(sub, 'model.safetensors')],
    ].flat();
  };
  if (models) return [...missing, ...models.flatMap((m) => weights(m, m === 'policy'))];
  if (existsSync(join(dir, 'policy')) || existsSync(join(dir, 'value')))
    return [...missing, ...weights('policy', true), ...weights('value', false)];
  return [...missing, ...weights('', true)];
}

/**
 * Blocks of a config that a checkpoint fixes: the adapter (adapter_config.json holds its
 * rank and targets) and the quantization of the base. A resumed run that changes one (say,
 * `--set peft.r=16`) cannot continue exactly, and writing the new value into config.yaml
 * would make the run folder say what did not happen: it is refused, naming the field.
 */
const FIXED_BLOCKS = ['peft', 'quantization'] as const;

function refuseChangedFixedBlocks(savedFile: string, configYaml: string): void {
  if (!existsSync(savedFile)) return;
  const [saved, now] = [
    parseConfigText(readFileSync(savedFile, 'utf8'), savedFile),
    parseConfigText(configYaml, savedFile),
  ];
  for (const block of FIXED_BLOCKS) {
    const [a, b] = [JSON.stringify(saved[block] ?? null), JSON.stringify(now[block] ?? null)];
    if (a !== b)
      throw new CheckpointError(`${block} is ${b} for this run, but the checkpoint was trained with ${a}`, {
        file: savedFile,
        field: block,
        hint: `a checkpoint fixes its ${block} block: resume without changing it, or start a new run (--set name=...) from this one`,
      });
  }
}

/** `rank` > 0 (data parallel): resolve the folder and the resume state only; rank 0 writes. */
export function openRunFolder(
  outputDir: string,
  name: string,
  configYaml: string,
  backend: { name: string; detail?: string },
  o: {
    resume?: string;
    overwrite?: boolean;
    rank?: number;
    seed?: number;
    info: (m: string) => void;
    /** The model folders a checkpoint of this recipe holds (PPO: policy and value; GRPO: policy); default: as found. */
    models?: string[];
  },
): OpenedRun {
  let runDir = resolve(outputDir, name);
  let resumeDir: string | undefined;
  let state: TrainerState | undefined;
  if (o.resume) {
    const r = resolveResume(o.resume);
    resumeDir = r.checkpointDir;
    runDir = r.runDir;
    for (const c of r.mismatched)
      o.info(
        `warning: ${runRelative(runDir, c.dir)} records step ${c.step}, not ${c.namedStep} as its name says; checkpoints are ordered by the step they record`,
      );
    state = readTrainerState(resumeDir);
    const file = stateFileOf(resumeDir)!;
    if (o.seed !== undefined && state.rng.seed !== o.seed)
      throw new CheckpointError(
        `the checkpoint was trained with seed ${state.rng.seed} and this run's seed is ${o.seed}`,
        {
          file,
          field: 'rng.seed',
          hint: `the data order and dropout derive from the seed: resume with seed ${state.rng.seed} (drop --set seed), or start a new run`,
        },
      );
    const missing = missingCheckpointFiles(resumeDir, o.models);
    if (missing.length)
      throw new CheckpointError(
        `the checkpoint is incomplete: ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} missing`,
        {
          file: join(resumeDir, missing[0]),
          hint: 'resume from another checkpoint of the run (runs/<name>/checkpoints/step-N), or start a new run',
        },
      );
    o.info(`resuming from ${resumeDir} (step ${state.step})`);
  }
  if ((o.rank ?? 0) > 0) return { runDir, resumeDir, state };
  if (!o.resume && existsSync(runDir) && listCheckpoints(runDir).length > 0) {
    if (!o.overwrite) {
      throw new CheckpointError('run folder already has checkpoints', {
        file: runDir,
        hint: `continue it with --resume ${runDir}, start over with --overwrite, or pick another name with --set name=...`,
      });
    }
    rmSync(runDir, { recursive: true, force: true });
  } else if (!o.resume && existsSync(runDir)) {
    // A start that never reached a checkpoint: its logs would mix with this run's.
    o.info(`clearing ${runDir}: an earlier run there stopped before its first checkpoint`);
    rmSync(runDir, { recursive: true, force: true });
  }
  makeDir(join(runDir, 'checkpoints'));
  const cleaned = cleanCheckpoints(runDir).filter((n) => !n.startsWith('.tmp-'));
  if (cleaned.length)
    o.info(`removed ${cleaned.join(', ')} from checkpoints/: no ${ANNEAL_STATE} (a write or rotation cut short)`);
  if (o.resume) refuseChangedFixedBlocks(join(runDir, 'config.yaml'), configYaml);
  writeFileAtomic(join(runDir, 'config.yaml'), configYaml);
  writeFileAtomic(
    join(runDir, 'run.json'),
    JSON.stringify(
      {
        backend: backend.name,
        backendDetail: backend.detail,
        versions: packageVersions(),
        startedAt: new Date().toISOString(),
        resumedFrom: resumeDir ? runRelative(runDir, resumeDir) : null,
      },
      null,
      2,
    ) + '\n',
  );
  return { runDir, resumeDir, state };
}

export interface CheckpointParts {
  /** Writes the model's files (config.json, safetensors, ...) into a folder. */
  saveModel: (dir: string) => Promise<void>;
  /** Writes the tokenizer's files into a folder. */
  saveTokenizer: (dir: string) => void;
  optimizer: AdamW;
  state: Omit<TrainerState, 'versions' | 'savedAt'>;
}

/**
 * One atomic checkpoint folder: weights, tokenizer, optimizer moments, and
 * anneal_state.json last; then only the newest `keep` (plus the best) remain.
 */
export async function saveCheckpoint(runDir: string, p: CheckpointParts, keep: number): Promise<string> {
  const dir = join(runDir, 'checkpoints', checkpointDirName(p.state.step));
  const optState = await p.optimizer.stateDict();
  const state: TrainerState = { ...p.state, versions: packageVersions(), savedAt: new Date().toISOString() };
  await writeDirAtomic(dir, async (tmp) => {
    await p.saveModel(tmp);
    p.saveTokenizer(tmp);
    writeFileDurable(
      join(tmp, 'optimizer.safetensors'),
      serializeSafetensors(optState.tensors, { format: 'pt', step: String(optState.step) }),
    );
    writeFileDurable(join(tmp, ANNEAL_STATE), JSON.stringify(state, null, 2) + '\n');
  });
  rotateCheckpoints(runDir, keep, state.bestMetric ? [state.bestMetric.checkpoint] : []);
  linkCheckpointAlias(runDir, 'last', dir);
  linkCheckpointAlias(runDir, 'best', state.bestMetric?.checkpoint ?? dir); // no eval metric: the newest is the best there is
  return dir;
}

/** Scalar hyperparameters for TensorBoard's HParams tab ("optim.lr", "model.config.nLayer", ...). */
export function flattenHparams(
  cfg: unknown,
  prefix = '',
  out: Record<string, string | number | boolean> = {},
): Record<string, string | number | boolean> {
  for (const [k, v] of Object.entries(cfg as Record<string, unknown>)) {
    const key = prefix ? `${prefix}.${k}` : k;
    if (typeof v === 'number' || typeof v === 'string' || typeof v === 'boolean') out[key] = v;
    else if (Array.isArray(v)) out[key] = JSON.stringify(v);
    else if (v && typeof v === 'object') flattenHparams(v, key, out);
  }
  return out;
}

/** AdamW over the parameters, with its moments and step restored from a checkpoint when resuming. */
export function makeOptimizer(
  params: Map<string, Variable>,
  o: { betas: [number, number]; eps: number; weightDecay: number },
  resumeDir?: string,
): AdamW {
  const opt = new AdamW(params, { betas: o.betas, eps: o.eps, weightDecay: o.weightDecay });
  if (resumeDir) {
    const file = join(resumeDir, 'optimizer.safetensors');
    const { tensors, metadata } = parseSafetensors(readFileSync(file), file);
    opt.loadStateDict(tensors, metadata.step === undefined ? NaN : Number(metadata.step), file);
  }
  return opt;
}

/**
 * The run's logger. A fresh run also records its resolved config as a text summary and its
 * hyperparameters for TensorBoard's HParams tab (one session per run; TensorBoard builds the
 * comparison of all runs in a --logdir from them). Ranks other than 0 (data parallel) log
 * nowhere that lasts: a scratch folder.
 */
export function openLogger(runDir: string, cfg: unknown, resumedStep?: number, rank = 0): RunLogger {
  if (rank > 0) return new RunLogger(mkdtempSync(join(tmpdir(), `anneal-rank${rank}-`)));
  const logger = new RunLogger(runDir, resumedStep);
  if (resumedStep === undefined) {
    logger.text('config', '```yaml\n' + configToYaml(cfg) + '```', 0);
    logger.tb.hparams(flattenHparams(cfg));
  }
  return logger;
}
