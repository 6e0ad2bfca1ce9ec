// `anneal push --run <run|checkpoint> --repo org/name` and `anneal card --run …`: the model of
// a run (its best checkpoint; a LoRA run's adapter merged into its base, or the adapter alone
// with --adapter-only; with --onnx also onnx/model.onnx for transformers.js) and a generated
// README.md model card, uploaded to the Hugging Face Hub in one commit. Optimizer and trainer
// state stay home unless --with-state.
import {
  existsSync,
  mkdtempSync,
  openAsBlob,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative } from 'node:path';
import { parse } from 'yaml';
import { ConfigError, RunLogger, useBackend } from '@anneal/core';
import { checkRepoId, exportOnnx, hfToken, modelCard, pushFiles, type CardInput, type PushFile } from '@anneal/export';
import { loadPretrained, localModelDir } from '@anneal/modeling';
import { isAdapterDir, loadAdapter } from '@anneal/peft-lora';
import { loadTokenizerSync } from '@anneal/tokenizers';
import { adapterBase, hasTokenizer } from './lm-loader.js';
import { copyTokenizerFiles } from './model-files.js';

export interface PushFlags {
  run: string;
  repo?: string;
  private?: boolean;
  adapterOnly?: boolean;
  onnx?: boolean;
  withState?: boolean;
  license: string;
  /** anneal card: where to write the card (default: print it). */
  out?: string;
}

/** Files of a checkpoint that are training state, not the model (kept out of a push unless asked). */
const STATE =
  /^(anneal_state\.json|optimizer\.safetensors|trainer_state\.json|rng_state.*|scheduler\.pt|optimizer\.pt)$/;

interface Gathered {
  files: PushFile[];
  card: string;
  what: string;
  cleanup: () => void;
}

/** The run folder and checkpoint --run names (a run folder stands for its best checkpoint). */
async function locate(run: string): Promise<{ runDir?: string; ckpt: string }> {
  if (!existsSync(run))
    throw new ConfigError(`${run} does not exist`, {
      field: '--run',
      hint: 'name a run folder or one of its checkpoints',
    });
  const ckpt = await localModelDir(run, { field: '--run' });
  const runDir = ckpt !== run ? run : basename(dirname(ckpt)) === 'checkpoints' ? dirname(dirname(ckpt)) : undefined;
  return { runDir: runDir && existsSync(join(runDir, 'config.yaml')) ? runDir : undefined, ckpt };
}

const listFiles = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) =>
    statSync(join(dir, f)).isDirectory() ? listFiles(join(dir, f)).map((g) => join(f, g)) : [f],
  );

const isHubId = (s: unknown): boolean => typeof s === 'string' && /^[\w.-]+\/[\w.-]+$/.test(s) && !existsSync(s);

/** Everything a push or a card needs, model files written to a temporary folder where they are made here. */
async function gather(f: PushFlags, repo: string, withFiles: boolean): Promise<Gathered> {
  const { runDir, ckpt } = await locate(f.run);
  const cfg = (runDir ? parse(readFileSync(join(runDir, 'config.yaml'), 'utf8')) : {}) as Record<string, any>;
  const adapterRun = isAdapterDir(ckpt);
  if (f.adapterOnly && !adapterRun)
    throw new ConfigError(`${ckpt} holds a full model, not a LoRA adapter`, {
      field: '--adapter-only',
      hint: 'push it without --adapter-only',
    });
  if (f.adapterOnly && f.onnx)
    throw new ConfigError('--onnx exports a whole model, and --adapter-only pushes the adapter alone', {
      field: '--onnx',
      hint: 'drop one of them (transformers.js needs the merged model: push without --adapter-only)',
    });
  const tmp = mkdtempSync(join(tmpdir(), 'anneal-push-'));
  const cleanup = () => rmSync(tmp, { recursive: true, force: true });
  try {
    // the folder whose files go up
    let folder = ckpt;
    let what = ckpt;
    const needModel = withFiles && ((adapterRun && !f.adapterOnly) || f.onnx);
    if (needModel) await useBackend('auto');
    let model = needModel && !adapterRun ? await loadPretrained(ckpt) : undefined;
    if (needModel && adapterRun) {
      const base = adapterBase(ckpt);
      const baseDir = await localModelDir(base);
      model = loadAdapter(await loadPretrained(baseDir), ckpt).mergeAndUnload();
      folder = join(tmp, 'merged');
      await model.savePretrained(folder);
      copyTokenizerFiles(hasTokenizer(ckpt) ? ckpt : baseDir, folder);
      what = `${ckpt} (LoRA merged into ${base})`;
    }
    const files: PushFile[] = [];
    if (withFiles) {
      for (const rel of listFiles(folder).sort()) {
        if (!f.withState && STATE.test(basename(rel))) continue;
        if (rel === 'README.md') continue; // the card below replaces it
        files.push({ path: rel.split('\\').join('/'), content: await openAsBlob(join(folder, rel)) });
      }
      if (f.onnx && model) {
        const out = join(tmp, 'onnx-export');
        exportOnnx(model, { outDir: out, tokenizer: loadTokenizerSync(folder) });
        files.push({ path: 'onnx/model.onnx', content: await openAsBlob(join(out, 'onnx', 'model.onnx')) });
      }
      model?.dispose();
    }
    const card = modelCard(cardInput(f, repo, cfg, runDir, adapterRun));
    files.push({ path: 'README.md', content: new TextEncoder().encode(card) });
    return { files, card, what, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

function cardInput(
  f: PushFlags,
  repo: string,
  cfg: Record<string, any>,
  runDir: string | undefined,
  adapterRun: boolean,
): CardInput {
  const pretrained = cfg.model?.pretrained;
  const train = cfg.data?.train;
  const sources = (Array.isArray(train) ? train : [train])
    .map((t) => (typeof t === 'string' ? t : t?.path))
    .filter((t): t is string => typeof t === 'string');
  const metrics: Record<string, number> = {};
  if (runDir)
    for (const row of RunLogger.read(runDir))
      for (const [k, v] of Object.entries(row)) if (k !== 'step') metrics[k] = v;
  const runJson =
    runDir && existsSync(join(runDir, 'run.json')) ? JSON.parse(readFileSync(join(runDir, 'run.json'), 'utf8')) : {};
  const peft = cfg.peft as { r?: number; loraAlpha?: number; targetModules?: string[] | string } | undefined;
  return {
    repo,
    recipe: String(cfg.recipe ?? 'clm'),
    ...(isHubId(pretrained)
      ? { baseModel: pretrained as string }
      : typeof pretrained === 'string' && { localBase: pretrained }),
    adapter: Boolean(f.adapterOnly),
    ...(adapterRun &&
      peft && {
        lora: {
          r: peft.r ?? 8,
          alpha: peft.loraAlpha ?? 8,
          targets: Array.isArray(peft.targetModules) ? peft.targetModules : [String(peft.targetModules ?? '')],
        },
      }),
    configYaml: runDir ? readFileSync(join(runDir, 'config.yaml'), 'utf8') : '# (no run folder: a bare checkpoint)\n',
    metrics: Object.fromEntries(Object.entries(metrics).filter(([k]) => /^(train|eval)\//.test(k))),
    versions: (runJson.versions ?? {}) as Record<string, string>,
    datasets: sources.filter(isHubId),
    localData: sources.filter((s) => !isHubId(s)).map((s) => (s.startsWith('/') ? basename(s) : relative('.', s))),
    license: f.license,
    onnx: Boolean(f.onnx),
  };
}

export async function pushCommand(f: PushFlags, print: (s: string) => void): Promise<void> {
  const repo = checkRepoId(f.repo ?? '');
  const token = hfToken(); // before any work: a push without a token stops here
  const g = await gather(f, repo, true);
  try {
    const mb =
      g.files.reduce((n, x) => n + (x.content instanceof Blob ? x.content.size : x.content.length), 0) / 2 ** 20;
    print(`pushing ${g.what} to ${repo}: ${g.files.map((x) => x.path).join(', ')} (${mb.toFixed(1)} MB)`);
    const r = await pushFiles({
      repo,
      files: g.files,
      token,
      title: `Upload model trained with Anneal`,
      private: f.private,
    });
    print(`${r.created ? 'created' : 'updated'} ${r.repoUrl}: one commit ${r.commitUrl || r.commitOid}`);
  } finally {
    g.cleanup();
  }
}

export async function cardCommand(f: PushFlags, print: (s: string) => void): Promise<void> {
  const repo = f.repo ?? `your-name/${basename(f.run.replace(/\/+$/, ''))}`;
  const g = await gather(f, repo, false);
  g.cleanup();
  if (f.out) {
    writeFileSync(f.out, g.card);
    print(`wrote the model card of ${g.what} to ${f.out}`);
  } else print(g.card);
}
