// The Hugging Face cache layout, shared with the Python libraries:
// <cache>/<models|datasets>--org--name/{blobs, snapshots/<commit>/<file>, refs/<revision>},
// with <cache> = $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomic } from './atomic.js';
import { AnnealError, CheckpointError, ConfigError, type ErrorDetails } from '../errors.js';

export type RepoType = 'model' | 'dataset';

export function hubCacheDir(): string {
  return process.env.HF_HUB_CACHE ?? join(process.env.HF_HOME ?? join(homedir(), '.cache', 'huggingface'), 'hub');
}

/**
 * Checks a Hub repo id as Hugging Face does (huggingface_hub utils/_validators.py,
 * validate_repo_id): "org/name", each part of letters, digits, "-", "_" and "." that starts and
 * ends with a letter, digit or "_", at most 96 characters, no "--" or "..". So an id can never
 * climb out of the cache folder it names.
 */
export function checkRepoId(repo: string, o: { field?: string; file?: string } = {}): void {
  const parts = repo.split('/');
  const ok =
    parts.length === 2 &&
    parts.every((p) => p.length <= 96 && /^\w(?:[\w.-]*\w)?$/.test(p)) &&
    !repo.includes('--') &&
    !repo.includes('..');
  if (!ok)
    throw new ConfigError(`${JSON.stringify(repo)} is not a Hub repo id`, {
      file: o.file ?? repo,
      field: o.field,
      hint: 'a repo id is "org/name" (letters, digits, "-", "_", "."; no "--" or ".."), or give a local folder that exists',
    });
}

/**
 * Checks a revision (branch, tag, "refs/pr/1", "refs/convert/parquet", or a commit) before it
 * becomes part of a path under refs/: no "..", "." or empty segments, no backslash or
 * control characters, so "../../etc" never leaves the repo's cache folder.
 */
export function checkRevision(revision: string, o: { field?: string; file?: string } = {}): void {
  const segments = revision.split('/');
  const ok =
    revision.length > 0 &&
    revision.length <= 255 &&
    /^[\w.@+=,~-]+(\/[\w.@+=,~-]+)*$/.test(revision) &&
    !segments.some((s) => s === '.' || s === '..');
  if (!ok)
    throw new ConfigError(`revision ${JSON.stringify(revision)} is not a branch, tag or commit name`, {
      file: o.file,
      field: o.field ?? 'revision',
      hint: 'use a branch or tag ("main", "v1.0", "refs/pr/1") or a 40-hex commit',
    });
}

export function repoCacheFolder(type: RepoType, repo: string, cacheDir = hubCacheDir()): string {
  checkRepoId(repo);
  return join(cacheDir, `${type}s--${repo.replace(/\//g, '--')}`);
}

/** HF_HUB_OFFLINE=1 (or true/yes): use the cache only. */
export function hubOffline(): boolean {
  return ['1', 'true', 'yes'].includes((process.env.HF_HUB_OFFLINE ?? '').toLowerCase());
}

export const isCommitHash = (r: string) => /^[0-9a-f]{40}$/.test(r);

/** The cached snapshot folder of a repo at a revision (a branch or tag through refs/, or a commit). */
export function cachedSnapshot(
  type: RepoType,
  repo: string,
  revision = 'main',
  cacheDir = hubCacheDir(),
): string | undefined {
  checkRevision(revision);
  const root = repoCacheFolder(type, repo, cacheDir);
  let commit = revision;
  if (!isCommitHash(revision)) {
    const ref = join(root, 'refs', ...revision.split('/'));
    if (!existsSync(ref)) return undefined;
    commit = readFileSync(ref, 'utf8').trim();
    // The ref's content becomes a path too: only a commit hash may.
    if (!isCommitHash(commit))
      throw new CheckpointError(
        `the cached ref ${revision} holds ${JSON.stringify(commit.slice(0, 60))}, not a commit hash`,
        { file: ref, hint: 'delete the file (it is rewritten on the next download)' },
      );
  }
  const snap = join(root, 'snapshots', commit);
  return existsSync(snap) ? snap : undefined;
}

/** Records revision -> commit as the Python libraries do, so offline use finds it. */
export function recordRef(
  type: RepoType,
  repo: string,
  revision: string,
  commit: string,
  cacheDir = hubCacheDir(),
): void {
  if (isCommitHash(revision)) return;
  checkRevision(revision);
  if (!isCommitHash(commit))
    throw new CheckpointError(
      `cannot record ${JSON.stringify(commit)} as the commit of ${repo}@${revision}: not a commit hash`,
      { file: repoCacheFolder(type, repo, cacheDir) },
    );
  const ref = join(repoCacheFolder(type, repo, cacheDir), 'refs', ...revision.split('/'));
  mkdirSync(join(ref, '..'), { recursive: true });
  writeFileAtomic(ref, commit);
}

/** The Hub's address: $HF_ENDPOINT, as the Python libraries read it, else huggingface.co. */
export function hubEndpoint(): string {
  return process.env.HF_ENDPOINT ?? 'https://huggingface.co';
}

/**
 * A failed Hub request as an error a person can act on: which host, repo, revision and file,
 * the cause ("fetch failed" says none of that), and what to do offline.
 */
export function hubRequestError<E extends AnnealError>(
  make: new (m: string, d: ErrorDetails) => E,
  e: unknown,
  o: { type: RepoType; repo: string; revision: string; file?: string; cacheDir: string },
): E | unknown {
  if (e instanceof AnnealError) return e;
  const err = e as Error & { cause?: { code?: string; message?: string } };
  const why = [err.message, err.cause?.code ?? err.cause?.message].filter(Boolean).join(': ');
  return new make(
    `cannot fetch ${o.file ?? 'the file list'} of ${o.type} ${o.repo}@${o.revision} from ${new URL(hubEndpoint()).host}: ${why}`,
    {
      file: o.repo,
      cause: e,
      hint: `without network, HF_HUB_OFFLINE=1 uses what is cached (${repoCacheFolder(o.type, o.repo, o.cacheDir)}); a private or gated repo needs HF_TOKEN; HF_ENDPOINT sets another host`,
    },
  );
}
