// Resume refuses what it cannot continue exactly: each damaged checkpoint below is a named
// error (file, tensor or field, expected and found), never a resumed run on garbage weights
// or a silently reset data order; checkpoints are ordered by the step they record, and what
// interrupted writes and rotations leave behind is cleaned, not counted.
import {
  cpSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  realpathSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AnnealError,
  CheckpointError,
  listCheckpoints,
  parseSafetensors,
  readTrainerState,
  serializeSafetensors,
  type TensorToWrite,
} from '@anneal/core';
import { localModelDir } from '@anneal/modeling';
import { LoraConfigSchema } from '@anneal/peft-lora';
import { silentReporter } from '@anneal/training';
import { runClm } from './recipe.js';
import { tinyClmConfig } from './test-config.js';

/** Rewrites one tensor of a safetensors file (every other tensor kept as it was). */
function editTensor(file: string, name: string, edit: (t: TensorToWrite) => TensorToWrite): void {
  const { tensors, metadata } = parseSafetensors(readFileSync(file), file);
  const out = new Map<string, TensorToWrite>();
  for (const [k, t] of tensors) out.set(k, k === name ? edit(t as TensorToWrite) : (t as TensorToWrite));
  writeFileSync(file, serializeSafetensors(out, metadata));
}

/** The error a run fails with, as the CLI prints it (file: field: message, hint). */
const failure = (run: Promise<unknown>) =>
  run.then(
    () => 'resumed',
    (e: unknown) => (e instanceof AnnealError ? e.describe() : `not a named error: ${String(e)}`),
  );

describe('resume refuses what it cannot continue exactly', () => {
  let runDir = '';
  const copies: string[] = [];
  /** A fresh copy of the finished run (checkpoints step-4 and step-8), for one damage each. */
  const copy = () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'anneal-refuse-')), 'tiny');
    cpSync(runDir, dir, { recursive: true });
    copies.push(dir);
    return dir;
  };
  const resume = (dir: string, info: string[] = []) =>
    runClm(tinyClmConfig({ train: { maxSteps: 10 } }), 'tiny.yaml', {
      resume: dir,
      reporter: { ...silentReporter, info: (m: string) => void info.push(m) },
    });

  beforeAll(async () => {
    const r = await runClm(
      tinyClmConfig({ train: { maxSteps: 8, saveEvery: 4, evalEvery: 100, saveTotalLimit: 5 } }),
      'tiny.yaml',
    );
    runDir = r.runDir;
    expect(listCheckpoints(runDir).map((c) => c.step)).toEqual([4, 8]);
  });

  it('a weight whose dtype was edited (F32 bias -> I32) names the file, tensor, and both dtypes', async () => {
    const dir = copy();
    const file = join(dir, 'checkpoints', 'step-8', 'model.safetensors');
    editTensor(file, 'transformer.h.0.attn.c_attn.bias', (t) => ({
      dtype: 'I32',
      shape: t.shape,
      data: Int32Array.from(t.data as Float32Array, (v) => Math.round(v * 1000)),
    }));
    const e = await resume(dir).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect((e as CheckpointError).file).toBe(file);
    expect((e as CheckpointError).describe()).toMatch(
      /tensor transformer\.h\.0\.attn\.c_attn\.bias is I32 \[96\], expected F32 \[96\]/,
    );
  });

  it('an optimizer moment of another shape or dtype names optimizer.safetensors and the moment', async () => {
    const dir = copy();
    const file = join(dir, 'checkpoints', 'step-8', 'optimizer.safetensors');
    editTensor(file, 'transformer.ln_f.bias.exp_avg', (t) => ({
      dtype: 'F32',
      shape: [t.shape[0] + 1],
      data: new Float32Array(t.shape[0] + 1),
    }));
    expect(await failure(resume(dir))).toMatch(
      /optimizer\.safetensors.*tensor transformer\.ln_f\.bias\.exp_avg is F32 \[33\], expected F32 \[32\]/s,
    );
    editTensor(file, 'transformer.ln_f.bias.exp_avg', () => ({ dtype: 'I32', shape: [32], data: new Int32Array(32) }));
    expect(await failure(resume(dir))).toMatch(/exp_avg is I32 \[32\], expected F32 \[32\]/);
  });

  it('a trainer state missing a field that exact resume needs is an error naming the field', async () => {
    const dir = copy();
    const file = join(dir, 'checkpoints', 'step-8', 'anneal_state.json');
    const state = JSON.parse(readFileSync(file, 'utf8'));
    writeFileSync(file, JSON.stringify({ step: 8 }));
    expect(await failure(resume(dir))).toMatch(/anneal_state\.json.*epoch is missing/s);
    writeFileSync(file, JSON.stringify({ ...state, data: { epoch: 0 } })); // the sampler's position is gone
    expect(await failure(resume(dir))).toMatch(/data\.position is missing: it holds the data sampler's position/);
    writeFileSync(file, JSON.stringify({ ...state, rng: {} }));
    expect(await failure(resume(dir))).toMatch(/rng\.seed is missing/);
    writeFileSync(file, JSON.stringify({ ...state, step: 8.5 }));
    expect(await failure(resume(dir))).toMatch(/anneal_state\.json: step.*8\.5.*non-negative integer/);
    writeFileSync(file, JSON.stringify(state));
    expect(
      await failure(runClm({ ...tinyClmConfig({ train: { maxSteps: 10 } }), seed: 8 }, 'tiny.yaml', { resume: dir })),
    ).toMatch(/trained with seed 7 and this run's seed is 8/);
  });

  it('a missing optimizer.safetensors (or weights file) is reported when the run opens, naming the file', async () => {
    const dir = copy();
    rmSync(join(dir, 'checkpoints', 'step-8', 'optimizer.safetensors'));
    const info: string[] = [];
    expect(await failure(resume(dir, info))).toMatch(
      /step-8[\\/]optimizer\.safetensors.*the checkpoint is incomplete: optimizer\.safetensors is missing/s,
    );
    expect(info.filter((m) => /tokenizer|tokens|parameters/.test(m))).toEqual([]); // nothing prepared, no model built
    const dir2 = copy();
    rmSync(join(dir2, 'checkpoints', 'step-8', 'model.safetensors'));
    expect(await failure(resume(dir2))).toMatch(/model\.safetensors is missing/);
  });

  it('a resumed run that changes a block the checkpoint fixes (peft, quantization) is refused, and config.yaml keeps the old one', async () => {
    const dir = copy();
    const before = readFileSync(join(dir, 'config.yaml'), 'utf8');
    const withPeft = {
      ...tinyClmConfig({ train: { maxSteps: 10 } }),
      peft: LoraConfigSchema.parse({ r: 4, targetModules: ['c_attn'] }),
    };
    expect(await failure(runClm(withPeft, 'tiny.yaml', { resume: dir }))).toMatch(
      /config\.yaml: peft: peft is \{"type":"lora","r":4.*\} for this run, but the checkpoint was trained with null\nhint: a checkpoint fixes its peft block/s,
    );
    expect(readFileSync(join(dir, 'config.yaml'), 'utf8')).toBe(before);
  });

  it('the newest checkpoint is the one that records the highest step; a misnamed folder is reported', async () => {
    const dir = copy();
    renameSync(join(dir, 'checkpoints', 'step-4'), join(dir, 'checkpoints', 'step-90')); // records step 4
    expect(listCheckpoints(dir).map((c) => [c.step, c.namedStep])).toEqual([
      [4, 90],
      [8, undefined],
    ]);
    const info: string[] = [];
    const r = await resume(dir, info);
    expect(info).toContain(`resuming from ${join(dir, 'checkpoints', 'step-8')} (step 8)`);
    expect(info.some((m) => /checkpoints\/step-90 records step 4, not 90/.test(m))).toBe(true);
    expect(r.step).toBe(10);
  });

  it('no file of a run folder holds its absolute path (besides the config the user wrote), so the folder can move', async () => {
    const dir = copy();
    await resume(dir); // a resumed run records where it resumed from
    expect(JSON.parse(readFileSync(join(dir, 'run.json'), 'utf8')).resumedFrom).toBe('checkpoints/step-8');
    const files: string[] = [];
    const links: string[] = [];
    const walk = (d: string) =>
      readdirSync(d, { withFileTypes: true }).forEach((e) =>
        e.isSymbolicLink()
          ? links.push(readlinkSync(join(d, e.name)))
          : e.isDirectory()
            ? walk(join(d, e.name))
            : files.push(join(d, e.name)),
      );
    walk(dir);
    const userConfig = (f: string) => f.endsWith('config.yaml') || f.includes('events.out.tfevents'); // the config text, with the paths as the user gave them
    const holding = files.filter((f) => !userConfig(f) && readFileSync(f).includes(Buffer.from(tmpdir())));
    expect(holding).toEqual([]);
    expect(links.sort()).toEqual(['step-10', 'step-10']); // checkpoints/best and last, relative
    expect(files.filter((f) => f.endsWith('anneal_state.json')).length).toBeGreaterThan(0);
  });

  it('a checkpoint that is a symbolic link out of the run folder is refused', async () => {
    const dir = copy();
    const outside = mkdtempSync(join(tmpdir(), 'anneal-outside-'));
    cpSync(join(dir, 'checkpoints', 'step-8'), join(outside, 'ckpt'), { recursive: true });
    symlinkSync(join(outside, 'ckpt'), join(dir, 'checkpoints', 'step-20'));
    expect(await failure(resume(dir))).toMatch(
      /step-20: this checkpoint is a symbolic link to .*outside the run folder/,
    );
  });

  it('empty and half-deleted step-N folders and rotation leftovers are removed at start, never counted', async () => {
    const dir = copy();
    const ck = join(dir, 'checkpoints');
    mkdirSync(join(ck, 'step-30')); // empty
    cpSync(join(ck, 'step-8'), join(ck, 'step-40'), { recursive: true });
    rmSync(join(ck, 'step-40', 'anneal_state.json')); // half deleted (state gone, weights left)
    cpSync(join(ck, 'step-4'), join(ck, `.tmp-rotated-step-4.123`), { recursive: true }); // a rotation cut short
    expect(listCheckpoints(dir).map((c) => c.step)).toEqual([4, 8]);
    const info: string[] = [];
    await resume(dir, info);
    expect(info.some((m) => /removed step-30, step-40 from checkpoints\/: no anneal_state\.json/.test(m))).toBe(true);
    expect(readdirSync(ck).filter((n) => !/^(step-(4|8|10)|best|last)$/.test(n))).toEqual([]);
  });
});

describe('a run folder names its best checkpoint (no step numbers in configs)', () => {
  it('checkpoints/best and checkpoints/last follow each save; model.pretrained: <run folder> loads the best; a missing checkpoint lists what exists', async () => {
    const cfg = tinyClmConfig({ train: { maxSteps: 8, saveEvery: 4, evalEvery: 4, saveTotalLimit: 1 } });
    const first = await runClm(cfg, 'tiny.yaml');
    const ck = join(first.runDir, 'checkpoints');
    const state = readTrainerState(join(ck, 'last'));
    expect(state.step).toBe(8);
    expect(realpathSync(join(ck, 'best'))).toBe(realpathSync(join(first.runDir, state.bestMetric!.checkpoint)));
    expect(readlinkSync(join(ck, 'last'))).toBe('step-8'); // relative: the run folder can move
    expect(await localModelDir(first.runDir)).toBe(resolve(first.runDir, state.bestMetric!.checkpoint));
    // The next step of a pipeline names the run, so shortening this one (maxSteps 8) cannot break it.
    const next = tinyClmConfig({ train: { maxSteps: 2, evalEvery: 100, saveEvery: 100 } });
    const r = await runClm(
      {
        ...next,
        name: 'next',
        tokenizer: { path: first.runDir },
        model: { ...next.model, pretrained: first.runDir },
      } as typeof next,
      'next.yaml',
    );
    expect(r.step).toBe(2);
    const missing = await localModelDir(join(ck, 'step-500'), { field: 'model.pretrained' }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(CheckpointError);
    expect((missing as CheckpointError).describe()).toMatch(
      /step-500: model\.pretrained: the run has no checkpoint step-500\nhint: it has step-\d+(, step-\d+)*, best, last; or name the run folder itself/,
    );
  });
});
