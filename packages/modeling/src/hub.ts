// Hub repos ("org/name") through the standard Hugging Face cache
// ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub):
// models--org--name/{blobs, snapshots/<commit>/<file>, refs/<revision>}, shared with the
// Python libraries. Downloads go through @huggingface/hub; HF_HUB_OFFLINE=1 uses the cache only.
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { downloadFileToCacheDir, pathsInfo } from '@huggingface/hub';
import {
  CheckpointError,
  cachedSnapshot as cachedRepoSnapshot,
  hubRequestError,
  checkpointNames,
  checkpointOfRun,
  checkRepoId,
  checkRevision,
  hubCacheDir,
  hubOffline,
  recordRef,
  repoCacheFolder,
} from '@anneal/core';

export interface HubOptions {
  revision?: string;
  /** Default: $HF_HUB_CACHE, $HF_HOME/hub, or ~/.cache/huggingface/hub. */
  cacheDir?: string;
  accessToken?: string;
  /** For tests and proxies: the fetch @huggingface/hub uses. */
  fetch?: typeof fetch;
}

/** The cached snapshot of a model repo that has a config.json. */
export function cachedSnapshot(repo: string, revision = 'main', cacheDir = hubCacheDir()): string | undefined {
  const snap = cachedRepoSnapshot('model', repo, revision, cacheDir);
  return snap && existsSync(join(snap, 'config.json')) ? snap : undefined;
}

/** A local folder for a repo: from the cache, downloading what is missing unless offline. */
export async function resolveRepo(repo: string, o: HubOptions = {}): Promise<string> {
  if (!/^[^/]+\/[^/]+$/.test(repo))
    throw new CheckpointError(`${JSON.stringify(repo)} is neither a folder nor a Hub repo id ("org/name")`, {
      file: repo,
      hint: 'check the path (relative to the current directory), or give a Hub repo id',
    });
  checkRepoId(repo);
  const revision = o.revision ?? 'main';
  checkRevision(revision);
  const cacheDir = o.cacheDir ?? hubCacheDir();
  const cached = cachedSnapshot(repo, revision, cacheDir);
  if (hubOffline()) {
    if (cached) return cached;
    throw new CheckpointError(`${repo}@${revision} is not in the Hugging Face cache and HF_HUB_OFFLINE is set`, {
      file: repoCacheFolder('model', repo, cacheDir),
      hint: 'download it once with network, or unset HF_HUB_OFFLINE',
    });
  }
  const common = { repo, revision, cacheDir, fetch: o.fetch, ...(o.accessToken && { accessToken: o.accessToken }) };
  // The files a model folder needs (weights as safetensors only, never pickle), plus
  // tokenizer files if present; those the repo lacks are skipped.
  const names = [
    'config.json',
    'generation_config.json',
    'model.safetensors',
    'model.safetensors.index.json',
    'tokenizer.json',
    'tokenizer_config.json',
    'special_tokens_map.json',
    'vocab.json',
    'merges.txt',
    'vocab.txt',
  ];
  const failed = (e: unknown, file?: string) =>
    hubRequestError(CheckpointError, e, { type: 'model', repo, revision, file, cacheDir });
  const infos = await pathsInfo({ ...common, paths: names, expand: true }).catch((e: unknown) => {
    throw failed(e);
  });
  const present = new Set(infos.filter((i) => i.type === 'file').map((i) => i.path));
  if (!present.has('config.json')) throw new CheckpointError(`${repo}@${revision} has no config.json`, { file: repo });
  if (!present.has('model.safetensors') && !present.has('model.safetensors.index.json')) {
    throw new CheckpointError(`${repo}@${revision} has no safetensors weights (Anneal never loads pickle)`, {
      file: repo,
      hint: 'pick a revision with model.safetensors, or convert the weights',
    });
  }
  let folder = '';
  const get = async (path: string) => {
    const p = await downloadFileToCacheDir({ ...common, path }).catch((e: unknown) => {
      throw failed(e, path);
    });
    folder = dirname(p);
    return p;
  };
  for (const name of names.filter((n) => present.has(n))) await get(name);
  if (present.has('model.safetensors.index.json') && !present.has('model.safetensors')) {
    const index = JSON.parse(readFileSync(join(folder, 'model.safetensors.index.json'), 'utf8'));
    for (const shard of new Set(Object.values(index.weight_map ?? {}) as string[])) await get(shard);
  }
  recordRef('model', repo, revision, folder.split(/[\\/]/).pop()!, cacheDir);
  return folder;
}

/**
 * A model folder: the folder itself, or a Hub repo id resolved (downloaded or, offline, found)
 * in the Hugging Face cache, so its config, weights and tokenizer files load alike.
 */
export async function localModelDir(dirOrRepoId: string, o: HubOptions & { field?: string } = {}): Promise<string> {
  if (existsSync(dirOrRepoId)) {
    // An Anneal run folder (checkpoints/ and no model files of its own) stands for its best checkpoint.
    const isRun =
      existsSync(join(dirOrRepoId, 'checkpoints')) &&
      !existsSync(join(dirOrRepoId, 'config.json')) &&
      !existsSync(join(dirOrRepoId, 'adapter_config.json'));
    if (!isRun) return dirOrRepoId;
    const ckpt = checkpointOfRun(dirOrRepoId);
    if (!ckpt)
      throw new CheckpointError('this run folder has no checkpoint yet', {
        file: dirOrRepoId,
        field: o.field,
        hint: 'train it first, or name a model folder',
      });
    return ckpt;
  }
  // A checkpoint of a run that is not there: say which ones are.
  const parent = dirname(dirOrRepoId);
  if (basename(parent) === 'checkpoints' && existsSync(parent)) {
    const names = checkpointNames(dirname(parent));
    throw new CheckpointError(`the run has no checkpoint ${basename(dirOrRepoId)}`, {
      file: dirOrRepoId,
      field: o.field,
      hint: names.length
        ? `it has ${names.join(', ')}; or name the run folder itself (its best checkpoint)`
        : 'the run has no checkpoints yet',
    });
  }
  return resolveRepo(dirOrRepoId, o);
}
