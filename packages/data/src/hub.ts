// The Parquet files of a Hugging Face Hub dataset split, downloaded with @huggingface/hub
// into the standard cache (datasets--org--name/snapshots/<commit>/...) and reused;
// HF_HUB_OFFLINE=1 uses the cache only. Splits are found by the Hub's file conventions
// (data/train-00000-of-00001.parquet, <config>/train/0000.parquet, train.parquet, ...),
// first on the given revision, then on the Hub's Parquet conversion (refs/convert/parquet).
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { downloadFileToCacheDir, listFiles } from '@huggingface/hub';
import {
  DataError,
  cachedSnapshot,
  checkRepoId,
  hubRequestError,
  checkRevision,
  hubCacheDir,
  hubOffline,
  recordRef,
  repoCacheFolder,
} from '@anneal/core';

export interface HubDatasetOptions {
  split?: string;
  /** Subset (config) name, for repos with several. */
  config?: string;
  revision?: string;
  cacheDir?: string;
  accessToken?: string;
  fetch?: typeof fetch;
}

/** Whether a repo path is a Parquet file of the split (and config). */
export function isSplitFile(path: string, split: string, config?: string): boolean {
  if (!path.endsWith('.parquet')) return false;
  const parts = path.split('/');
  const name = parts[parts.length - 1];
  const dirs = parts.slice(0, -1);
  if (config && !dirs.includes(config)) return false;
  return (
    dirs.includes(split) ||
    dirs.includes(`partial-${split}`) ||
    name.startsWith(`${split}-`) ||
    name.startsWith(`${split}.`) ||
    name === `${split}.parquet`
  );
}

function cachedFiles(snap: string, split: string, config?: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (isSplitFile(relative(snap, p).split('\\').join('/'), split, config)) out.push(p);
    }
  };
  walk(snap);
  return out.sort();
}

/** Local paths of the split's Parquet files. */
export async function hubDatasetFiles(repo: string, o: HubDatasetOptions = {}): Promise<string[]> {
  const split = o.split ?? 'train';
  const cacheDir = o.cacheDir ?? hubCacheDir();
  const revisions = o.revision ? [o.revision] : ['main', 'refs/convert/parquet'];
  checkRepoId(repo, { field: 'data.hub' });
  for (const r of revisions) checkRevision(r, { field: 'data.revision' });
  if (hubOffline()) {
    for (const rev of revisions) {
      const snap = cachedSnapshot('dataset', repo, rev, cacheDir);
      const files = snap ? cachedFiles(snap, split, o.config) : [];
      if (files.length) return files;
    }
    throw new DataError(
      `split "${split}" of dataset ${repo} is not in the Hugging Face cache and HF_HUB_OFFLINE is set`,
      {
        file: repoCacheFolder('dataset', repo, cacheDir),
        hint: 'download it once with network, or unset HF_HUB_OFFLINE',
      },
    );
  }
  const common = {
    repo: { type: 'dataset' as const, name: repo },
    cacheDir,
    fetch: o.fetch,
    ...(o.accessToken && { accessToken: o.accessToken }),
  };
  for (const revision of revisions) {
    const paths: string[] = [];
    try {
      for await (const f of listFiles({ ...common, revision, recursive: true }))
        if (f.type === 'file' && isSplitFile(f.path, split, o.config)) paths.push(f.path);
    } catch (e) {
      if (revision === revisions[revisions.length - 1] && !paths.length)
        throw hubRequestError(DataError, e, { type: 'dataset', repo, revision, cacheDir });
      continue;
    }
    if (!paths.length) continue;
    const local: string[] = [];
    paths.sort();
    for (const path of paths) {
      local.push(
        await downloadFileToCacheDir({ ...common, revision, path }).catch((e: unknown) => {
          throw hubRequestError(DataError, e, { type: 'dataset', repo, revision, file: path, cacheDir });
        }),
      );
    }
    const snapshot = local[0].slice(0, local[0].length - paths[0].length - 1); // .../snapshots/<commit>
    recordRef('dataset', repo, revision, snapshot.split(/[\\/]/).pop()!, cacheDir);
    return local;
  }
  throw new DataError(
    `dataset ${repo} has no Parquet files for split "${split}"${o.config ? ` of config "${o.config}"` : ''}`,
    { file: repo, hint: 'check the split and config names on the dataset page' },
  );
}
