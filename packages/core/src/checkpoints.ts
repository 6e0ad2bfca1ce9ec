// Checkpoint folders of a run: <run>/checkpoints/step-<N>/, each published atomically
// (see atomic.ts), each with a trainer_state.json that says where training stood.
import { existsSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CheckpointError } from './errors.js';

export const TRAINER_STATE = 'trainer_state.json';

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
  /** Best value of the tracked metric and where it was saved. */
  bestMetric: { name: string; value: number; checkpoint: string } | null;
  backend: string;
  versions: Record<string, string>;
  /** Time of writing (ISO 8601). */
  savedAt: string;
}

export function checkpointDirName(step: number): string {
  return `step-${step}`;
}

/** Completed checkpoints of a run folder, oldest first. */
export function listCheckpoints(runDir: string): Array<{ step: number; dir: string }> {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .map((name) => ({ name, m: /^step-(\d+)$/.exec(name) }))
    .filter((e) => e.m && existsSync(join(root, e.name, TRAINER_STATE)))
    .map((e) => ({ step: Number(e.m![1]), dir: join(root, e.name) }))
    .sort((a, b) => a.step - b.step);
}

/** Deletes all but the newest `keep` checkpoints, never one listed in `protect`. */
export function rotateCheckpoints(runDir: string, keep: number, protect: string[] = []): string[] {
  const all = listCheckpoints(runDir);
  const keepSet = new Set([...all.slice(-keep).map((c) => c.dir), ...protect.map((p) => resolve(p))]);
  const removed: string[] = [];
  for (const c of all) {
    if (!keepSet.has(resolve(c.dir))) {
      rmSync(c.dir, { recursive: true, force: true });
      removed.push(c.dir);
    }
  }
  return removed;
}

export function readTrainerState(checkpointDir: string): TrainerState {
  const file = join(checkpointDir, TRAINER_STATE);
  let s: TrainerState;
  try {
    s = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new CheckpointError(`cannot read trainer state: ${(e as Error).message}`, { file });
  }
  if (!Number.isInteger(s.step) || s.step < 0) throw new CheckpointError(`step ${JSON.stringify(s.step)} is not a non-negative integer`, { file, field: 'step' });
  return s;
}

/**
 * Resolves `--resume PATH`: a checkpoint folder (has trainer_state.json) or a run
 * folder (its newest checkpoint). Returns the checkpoint and its run folder.
 */
export function resolveResume(path: string): { checkpointDir: string; runDir: string } {
  const p = resolve(path);
  if (!existsSync(p) || !statSync(p).isDirectory()) {
    throw new CheckpointError('resume folder not found', { file: path, hint: 'pass a run folder (runs/<name>) or one of its checkpoints (runs/<name>/checkpoints/step-N)' });
  }
  if (existsSync(join(p, TRAINER_STATE))) return { checkpointDir: p, runDir: resolve(p, '..', '..') };
  const ckpts = listCheckpoints(p);
  if (ckpts.length === 0) {
    throw new CheckpointError('not a checkpoint: no trainer_state.json here and no checkpoints/step-N inside', {
      file: path,
      hint: 'pass a run folder (runs/<name>) or one of its checkpoints (runs/<name>/checkpoints/step-N)',
    });
  }
  return { checkpointDir: ckpts[ckpts.length - 1].dir, runDir: p };
}
