// Checkpoint folders of a run: <run>/checkpoints/step-<N>/, each published atomically
// (see atomic.ts), each with an anneal_state.json that says where training stood.
//
// The file is not called trainer_state.json: that is transformers' TrainerState file, which
// its Trainer loads with TrainerState(**json) (a TypeError on any other key), and Anneal's
// state (sampler position, seed, backend) has another schema. Checkpoints written before the
// rename keep Anneal's state in trainer_state.json; they are read, never written.
import {
  existsSync,
  lstatSync,
  readFileSync,
  readdirSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { basename, join, relative, resolve, sep } from 'node:path';
import { TMP_PREFIX } from './atomic.js';
import { CheckpointError } from '../errors.js';

export const ANNEAL_STATE = 'anneal_state.json';
/** Where checkpoints written before the rename keep Anneal's state (read only, and only in Anneal's schema). */
export const LEGACY_STATE = 'trainer_state.json';

/** What a resumed run needs besides the weights and the optimizer moments. */
export interface TrainerState {
  /** Optimizer steps completed. */
  step: number;
  /** Fractional epochs of training data consumed. */
  epoch: number;
  /** Data sampler position (recipe-specific, e.g. { epoch, position }). */
  data: Record<string, unknown>;
  /** The run's seed; recipes derive every random draw from (seed, step), so this is the whole RNG state. */
  rng: { seed: number };
  /** Best value of the tracked metric and its checkpoint folder, relative to the run folder ("checkpoints/step-40"). */
  bestMetric: { name: string; value: number; checkpoint: string } | null;
  backend: string;
  versions: Record<string, string>;
  /** Time of writing (ISO 8601). */
  savedAt: string;
}

export function checkpointDirName(step: number): string {
  return `step-${step}`;
}

/** The state file of a checkpoint folder: anneal_state.json, or an older checkpoint's trainer_state.json in Anneal's schema. */
export function stateFileOf(checkpointDir: string): string | undefined {
  const file = join(checkpointDir, ANNEAL_STATE);
  if (existsSync(file)) return file;
  const legacy = join(checkpointDir, LEGACY_STATE);
  if (!existsSync(legacy)) return undefined;
  try {
    const j = JSON.parse(readFileSync(legacy, 'utf8')) as Record<string, unknown>;
    return 'rng' in j && 'data' in j && !('global_step' in j) ? legacy : undefined;
  } catch {
    return legacy; // unreadable: readTrainerState reports it
  }
}

function readJson(file: string): Record<string, unknown> {
  let j: unknown;
  try {
    j = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`cannot read the trainer state: ${(e as Error).message}`, {
      file,
      hint: 'the checkpoint was cut short or edited; resume from another checkpoint (runs/<name>/checkpoints/step-N)',
    });
  }
  if (!j || typeof j !== 'object' || Array.isArray(j))
    throw new CheckpointError('the trainer state is not a JSON object', { file });
  return j as Record<string, unknown>;
}

const isInside = (child: string, parent: string) =>
  child === parent || child.startsWith(parent.endsWith(sep) ? parent : parent + sep);

export interface CheckpointEntry {
  /** The step recorded in the checkpoint's state file (what orders checkpoints). */
  step: number;
  dir: string;
  /** The step the folder's name says (step-N), when it differs from the recorded one. */
  namedStep?: number;
}

/**
 * Completed checkpoints of a run folder, oldest first, ordered by the step each records
 * (never by the folder name alone). A step-N entry that is a symbolic link to a place
 * outside the run folder is refused: a run folder holds its own checkpoints.
 */
export function listCheckpoints(runDir: string): CheckpointEntry[] {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return [];
  const runReal = realpathSync(runDir);
  const out: CheckpointEntry[] = [];
  for (const name of readdirSync(root)) {
    const m = /^step-(\d+)$/.exec(name);
    if (!m) continue;
    const dir = join(root, name);
    if (lstatSync(dir).isSymbolicLink()) {
      let target: string;
      try {
        target = realpathSync(dir);
      } catch {
        throw new CheckpointError('this checkpoint is a symbolic link to nothing', {
          file: dir,
          hint: 'remove the link',
        });
      }
      if (!isInside(target, runReal))
        throw new CheckpointError(`this checkpoint is a symbolic link to ${target}, outside the run folder`, {
          file: dir,
          hint: 'a run folder holds its own checkpoints: copy the checkpoint into checkpoints/, or pass its folder to --resume directly',
        });
    }
    if (!statSync(dir).isDirectory()) continue;
    const file = stateFileOf(dir);
    if (!file) continue; // not a checkpoint (a write or a rotation cut short): cleanCheckpoints removes it
    const step = readJson(file).step;
    if (!Number.isInteger(step) || (step as number) < 0)
      throw new CheckpointError(`step ${JSON.stringify(step)} is not a non-negative integer`, { file, field: 'step' });
    const named = Number(m[1]);
    out.push({ step: step as number, dir, ...(named !== step && { namedStep: named }) });
  }
  return out.sort((a, b) => a.step - b.step);
}

/**
 * Removes what interrupted writes and rotations leave in checkpoints/: temp folders, and
 * step-N folders without a state file (empty, or half deleted by an older Anneal or by hand).
 * Returns the names removed.
 */
export function cleanCheckpoints(runDir: string): string[] {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(root)) {
    const dir = join(root, name);
    const stale =
      name.startsWith(TMP_PREFIX) ||
      (/^step-\d+$/.test(name) &&
        !lstatSync(dir).isSymbolicLink() &&
        lstatSync(dir).isDirectory() &&
        !stateFileOf(dir));
    if (stale) {
      rmSync(dir, { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}

/**
 * Deletes all but the newest `keep` checkpoints, never one listed in `protect` (folders,
 * relative to the run folder or absolute). Each goes out of sight in one rename before its
 * files are deleted, so a SIGKILL mid-deletion leaves a temp folder, never a half checkpoint.
 */
export function rotateCheckpoints(runDir: string, keep: number, protect: string[] = []): string[] {
  const all = listCheckpoints(runDir);
  const keepSet = new Set([...all.slice(-keep).map((c) => resolve(c.dir)), ...protect.map((p) => resolve(runDir, p))]);
  const removed: string[] = [];
  for (const c of all) {
    if (keepSet.has(resolve(c.dir))) continue;
    const trash = join(runDir, 'checkpoints', `${TMP_PREFIX}rotated-${basename(c.dir)}.${process.pid}`);
    renameSync(c.dir, trash);
    failpoint('rotate');
    rmSync(trash, { recursive: true, force: true });
    removed.push(c.dir);
  }
  return removed;
}

/**
 * Fault injection for the crash tests: with ANNEAL_FAILPOINT=<name> the process kills itself
 * with SIGKILL at that point, as a power cut would (nothing runs after it).
 */
export function failpoint(name: string): void {
  if (process.env.ANNEAL_FAILPOINT === name) process.kill(process.pid, 'SIGKILL');
}

type Kind = 'integer' | 'number' | 'string' | 'object';

const KIND_CHECK: Record<Kind, (v: unknown) => boolean> = {
  integer: (v) => Number.isInteger(v) && (v as number) >= 0,
  number: (v) => typeof v === 'number' && Number.isFinite(v),
  string: (v) => typeof v === 'string',
  object: (v) => !!v && typeof v === 'object' && !Array.isArray(v),
};

/**
 * Requires a field of a trainer state ("data.position") that exact resume needs; a missing or
 * mistyped one is an error naming it, never a silent default (a reset data order).
 */
export function requireStateField(state: unknown, path: string, kind: Kind, o: { file: string; why: string }): void {
  let v: unknown = state;
  for (const k of path.split('.')) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined;
  if (v === undefined)
    throw new CheckpointError(`${path} is missing: it holds ${o.why}, without which the run cannot continue exactly`, {
      file: o.file,
      field: path,
      hint: 'resume from a checkpoint Anneal wrote (runs/<name>/checkpoints/step-N), or start a new run',
    });
  if (!KIND_CHECK[kind](v))
    throw new CheckpointError(
      `${path} is ${JSON.stringify(v)}, expected ${kind === 'integer' ? 'a non-negative integer' : `a ${kind}`}`,
      { file: o.file, field: path, hint: 'the checkpoint was edited or written by another tool' },
    );
}

/** Reads a checkpoint's state and checks every field a resumed run relies on. */
export function readTrainerState(checkpointDir: string): TrainerState {
  const file = stateFileOf(checkpointDir) ?? join(checkpointDir, ANNEAL_STATE);
  if (!existsSync(file))
    throw new CheckpointError(`${ANNEAL_STATE} is missing: this folder is not a complete checkpoint`, {
      file: checkpointDir,
      hint: 'resume from a checkpoint Anneal wrote (runs/<name>/checkpoints/step-N)',
    });
  const s = readJson(file);
  const o = (why: string) => ({ file, why });
  requireStateField(s, 'step', 'integer', o('the number of optimizer steps done'));
  requireStateField(s, 'epoch', 'number', o('the fraction of the data consumed'));
  requireStateField(s, 'data', 'object', o("the data sampler's position"));
  requireStateField(s, 'rng', 'object', o('the random state'));
  requireStateField(s, 'rng.seed', 'integer', o('the seed every random draw derives from'));
  requireStateField(s, 'backend', 'string', o('the backend the run trained on'));
  if (s.bestMetric !== null && s.bestMetric !== undefined) {
    requireStateField(s, 'bestMetric.name', 'string', o('the metric best checkpoints are chosen by'));
    requireStateField(s, 'bestMetric.value', 'number', o('the best value so far'));
    requireStateField(s, 'bestMetric.checkpoint', 'string', o('the best checkpoint, which rotation keeps'));
  }
  return { bestMetric: null, versions: {}, savedAt: '', ...s } as unknown as TrainerState;
}

/** A path as written into a run folder's files: relative to the run folder, so the folder can move. */
export function runRelative(runDir: string, path: string): string {
  return relative(runDir, path).split(sep).join('/');
}

/**
 * Resolves `--resume PATH`: a checkpoint folder (has a state file) or a run folder (the
 * checkpoint that records the highest step). Returns the checkpoint and its run folder.
 */
export function resolveResume(path: string): { checkpointDir: string; runDir: string; mismatched: CheckpointEntry[] } {
  const p = resolve(path);
  if (!existsSync(p) || !statSync(p).isDirectory()) {
    throw new CheckpointError('resume folder not found', {
      file: path,
      hint: 'pass a run folder (runs/<name>) or one of its checkpoints (runs/<name>/checkpoints/step-N)',
    });
  }
  if (stateFileOf(p)) return { checkpointDir: p, runDir: resolve(p, '..', '..'), mismatched: [] };
  const ckpts = listCheckpoints(p);
  if (ckpts.length === 0) {
    throw new CheckpointError(`not a checkpoint: no ${ANNEAL_STATE} here and no checkpoints/step-N inside`, {
      file: path,
      hint: 'pass a run folder (runs/<name>) or one of its checkpoints (runs/<name>/checkpoints/step-N)',
    });
  }
  return {
    checkpointDir: ckpts[ckpts.length - 1].dir,
    runDir: p,
    mismatched: ckpts.filter((c) => c.namedStep !== undefined),
  };
}

/** The aliases every save refreshes in checkpoints/: the newest checkpoint and the best one. */
export const CHECKPOINT_ALIASES = ['best', 'last'] as const;

/**
 * Points checkpoints/<alias> at a checkpoint folder of the run (a relative symbolic link,
 * made under a temporary name and renamed over the old one, so it is never missing or half
 * written). Configs name `runs/<name>/checkpoints/best` instead of a step number.
 */
export function linkCheckpointAlias(
  runDir: string,
  alias: (typeof CHECKPOINT_ALIASES)[number],
  checkpointDir: string,
): void {
  const root = join(runDir, 'checkpoints');
  const tmp = join(root, `${TMP_PREFIX}${alias}.${process.pid}`);
  rmSync(tmp, { force: true });
  symlinkSync(relative(root, resolve(runDir, checkpointDir)), tmp);
  renameSync(tmp, join(root, alias));
}

/**
 * The checkpoint a run folder stands for when a config names the run (model.pretrained:
 * runs/<name>): the best one by the tracked eval metric, else the newest.
 */
export function checkpointOfRun(runDir: string): string | undefined {
  const all = listCheckpoints(runDir);
  if (!all.length) return undefined;
  const newest = all[all.length - 1].dir;
  const best = readTrainerState(newest).bestMetric?.checkpoint;
  return best && existsSync(resolve(runDir, best)) ? resolve(runDir, best) : newest;
}

/** What a run's checkpoints/ folder holds, for errors that name a missing one ("step-100, step-200, best, last"). */
export function checkpointNames(runDir: string): string[] {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return [];
  const steps = listCheckpoints(runDir).map((c) => basename(c.dir));
  return [...steps, ...CHECKPOINT_ALIASES.filter((a) => existsSync(join(root, a)))];
}
