// Pushing a folder's files to a Hugging Face model repo with @huggingface/hub: the repo is
// created when it does not exist, then every file goes up in ONE commit (large files to LFS
// storage first; the commit that makes them visible is the last request), so a push that fails
// half-way leaves the remote repo as it was. The token comes from HF_TOKEN or the token file
// `huggingface-cli login` writes; the endpoint from HF_ENDPOINT (default huggingface.co).
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { HubApiError, commit, createRepo } from '@huggingface/hub';
import { AnnealError, ConfigError } from '@anneal/core';

/** A push that did not complete: what failed, with the Hub's status when it answered. */
export class PushError extends AnnealError {}

/** org/name as the Hub accepts it: letters, digits, '-', '_', '.', not starting or ending with '-' or '.'. */
const NAME = /^(?![-.])[A-Za-z0-9_.-]{1,96}(?<![-.])$/;

export function checkRepoId(repo: string): string {
  const parts = repo.split('/');
  if (parts.length !== 2 || !parts.every((p) => NAME.test(p)) || repo.includes('..') || repo.includes('--'))
    throw new ConfigError(`${JSON.stringify(repo)} is not a Hub repo id`, {
      field: '--repo',
      hint: 'give it as org/name (your user name or an organisation, then the model name)',
    });
  return repo;
}

/** The Hugging Face token: HF_TOKEN, else the file `huggingface-cli login` writes (HF_TOKEN_PATH, HF_HOME/token). */
export function hfToken(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.HF_TOKEN ?? env.HUGGING_FACE_HUB_TOKEN;
  if (fromEnv?.trim()) return fromEnv.trim();
  const file = env.HF_TOKEN_PATH ?? join(env.HF_HOME ?? join(homedir(), '.cache', 'huggingface'), 'token');
  if (existsSync(file)) {
    const token = readFileSync(file, 'utf8').trim();
    if (token) return token;
  }
  throw new ConfigError('no Hugging Face token: HF_TOKEN is not set and there is no token file', {
    file,
    hint: 'create a write token at https://huggingface.co/settings/tokens, then set HF_TOKEN or run huggingface-cli login',
  });
}

export interface PushFile {
  /** Path in the repo (e.g. onnx/model.onnx). */
  path: string;
  content: Uint8Array | Blob;
}

export interface PushOptions {
  repo: string;
  files: PushFile[];
  token: string;
  title: string;
  description?: string;
  private?: boolean;
  /** Stand-in for the network (tests); default the global fetch. */
  fetch?: typeof fetch;
  /** Default HF_ENDPOINT, else https://huggingface.co. */
  hubUrl?: string;
}

export interface PushResult {
  repoUrl: string;
  created: boolean;
  commitOid: string;
  commitUrl: string;
}

export async function pushFiles(o: PushOptions): Promise<PushResult> {
  const name = checkRepoId(o.repo);
  if (!o.token.startsWith('hf_'))
    throw new ConfigError('the Hugging Face token does not start with hf_', {
      field: 'HF_TOKEN',
      hint: 'use a user access token from https://huggingface.co/settings/tokens',
    });
  const hubUrl = (o.hubUrl ?? process.env.HF_ENDPOINT ?? 'https://huggingface.co').replace(/\/+$/, '');
  const repo = { type: 'model' as const, name };
  const common = { accessToken: o.token, hubUrl, ...(o.fetch && { fetch: o.fetch }) };
  const failed = (what: string, e: unknown) =>
    new PushError(`${what}: ${e instanceof HubApiError ? `HTTP ${e.statusCode} ${e.message}` : (e as Error).message}`, {
      field: '--repo',
      hint:
        e instanceof HubApiError && (e.statusCode === 401 || e.statusCode === 403)
          ? 'the token needs write access to this namespace'
          : 'nothing was committed: the repo is as it was; run the push again',
      cause: e,
    });
  let created = true;
  let repoUrl = `${hubUrl}/${name}`;
  try {
    repoUrl = (await createRepo({ ...common, repo, ...(o.private && { visibility: 'private' as const }) })).repoUrl;
  } catch (e) {
    if (!(e instanceof HubApiError && e.statusCode === 409)) throw failed(`could not create ${name}`, e);
    created = false; // it exists: the commit adds to it
  }
  try {
    const r = await commit({
      ...common,
      repo,
      title: o.title,
      description: o.description,
      useXet: false,
      operations: o.files.map((f) => ({
        operation: 'addOrUpdate' as const,
        path: f.path,
        content: f.content instanceof Blob ? f.content : new Blob([f.content]),
      })),
    });
    return { repoUrl, created, commitOid: r?.commit.oid ?? '', commitUrl: r?.commit.url ?? '' };
  } catch (e) {
    throw failed(`push to ${name} failed`, e);
  }
}
