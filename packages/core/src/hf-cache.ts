// The Hugging Face cache layout, shared with the Python libraries:
// <cache>/<models|datasets>--org--name/{blobs, snapshots/<commit>/<file>, refs/<revision>},
// with <cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.js';

export type RepoType = 'model' | 'dataset';

export function hubCacheDir(): string {
  return process.env.HF_HUB_CACHE ?? join(process.env.HF_HOME ?? join(homedir(), '.cache', 'huggingface'), 'hub');
}

export function repoCacheFolder(type: RepoType, repo: string, cacheDir = hubCacheDir()): string {
  return join(cacheDir, `${type}s--${repo.replace(/\//g, '--')}`);
}

/** HF_HUB_OFFLINE=1 (or true/yes): use the cache only. */
export function hubOffline(): boolean {
  return ['1', 'true', 'yes'].includes((process.env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

export const isCommitHash = (r: string) => /^[0-9a-f]{40}$/.test(r);

/** The cached snapshot folder of a repo at a revision (a branch or tag through refs/, or a commit). */
export function cachedSnapshot(type: RepoType, repo: string, revision = 'main', cacheDir = hubCacheDir()): string | undefined {
  const root = repoCacheFolder(type, repo, cacheDir);
  let commit = revision;
  if (!isCommitHash(revision)) {
    const ref = join(root, 'refs', ...revision.split('/'));
    if (!existsSync(ref)) return undefined;
    commit = readFileSync(ref, 'utf8').trim();
  }
  const snap = join(root, 'snapshots', commit);
  return existsSync(snap) ? snap : undefined;
}

/** Records revision -> commit as the Python libraries do, so offline use finds it. */
export function recordRef(type: RepoType, repo: string, revision: string, commit: string, cacheDir = hubCacheDir()): void {
  if (isCommitHash(revision)) return;
  const ref = join(repoCacheFolder(type, repo, cacheDir), 'refs', ...revision.split('/'));
  mkdirSync(join(ref, '..'), { recursive: true });
  writeFileAtomic(ref, commit);
}
