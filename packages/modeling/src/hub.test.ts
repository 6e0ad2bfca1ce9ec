// Hub repo ids through the Hugging Face cache, with no network: a fake Hub (a fetch
// serving the gpt2 fixture's files) stands in for huggingface.co, and @huggingface/hub's
// real code downloads from it into the standard cache layout.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AnnealError, CheckpointError, ConfigError, useBackend } from '@anneal/core';
import { fakeHubFetch } from '@anneal/core/testing';
import { cachedSnapshot, loadPretrained } from './index.js';

const FIXTURE = fileURLToPath(new URL('../../../../shared/fixtures/hf/gpt2/', import.meta.url));
const COMMIT = 'a'.repeat(40);

const fakeHub = (files: Record<string, Uint8Array>, log: string[], name = 'anneal-test/tiny-gpt2') =>
  fakeHubFetch([{ type: 'model', name, revisions: { main: files }, commit: COMMIT }], log);

describe('loadPretrained with a Hub repo id', () => {
  const files = Object.fromEntries(
    ['config.json', 'model.safetensors', 'generation_config.json'].map((f) => [f, readFileSync(join(FIXTURE, f))]),
  );
  beforeAll(async () => {
    await useBackend('cpu');
  });
  afterEach(() => {
    delete process.env.HF_HUB_OFFLINE;
  });

  it('downloads into the Hugging Face cache layout, then loads offline from it', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'anneal-hub-'));
    const log: string[] = [];
    const model = await loadPretrained('anneal-test/tiny-gpt2', { cacheDir, fetch: fakeHub(files, log) });
    expect(model.modelType).toBe('gpt2');
    const snap = join(cacheDir, 'models--anneal-test--tiny-gpt2', 'snapshots', COMMIT);
    expect(readdirSync(snap).sort()).toEqual(['config.json', 'generation_config.json', 'model.safetensors']);
    expect(readFileSync(join(cacheDir, 'models--anneal-test--tiny-gpt2', 'refs', 'main'), 'utf8')).toBe(COMMIT);
    expect(existsSync(join(cacheDir, 'models--anneal-test--tiny-gpt2', 'blobs'))).toBe(true);
    expect(log.some((l) => l.includes('/resolve/main/model.safetensors'))).toBe(true);
    expect(cachedSnapshot('anneal-test/tiny-gpt2', 'main', cacheDir)).toBe(snap);

    process.env.HF_HUB_OFFLINE = '1';
    const offline = await loadPretrained('anneal-test/tiny-gpt2', {
      cacheDir,
      fetch: (() => {
        throw new Error('network used while offline');
      }) as unknown as typeof fetch,
    });
    expect(Array.from(offline.params.get('transformer.wte.weight')!.dataSync().slice(0, 4))).toEqual(
      Array.from(model.params.get('transformer.wte.weight')!.dataSync().slice(0, 4)),
    );
    model.dispose();
    offline.dispose();
  });

  it('says what is wrong: not cached while offline, or a repo with only pickle weights', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'anneal-hub-'));
    process.env.HF_HUB_OFFLINE = '1';
    await expect(loadPretrained('anneal-test/absent', { cacheDir })).rejects.toThrow(
      /not in the Hugging Face cache and HF_HUB_OFFLINE is set/,
    );
    delete process.env.HF_HUB_OFFLINE;
    const pickled = { 'config.json': files['config.json'], 'pytorch_model.bin': Buffer.from('pickle') };
    await expect(
      loadPretrained('anneal-test/pickled', { cacheDir, fetch: fakeHub(pickled, [], 'anneal-test/pickled') }),
    ).rejects.toThrow(CheckpointError);
    await expect(
      loadPretrained('anneal-test/pickled', { cacheDir, fetch: fakeHub(pickled, [], 'anneal-test/pickled') }),
    ).rejects.toThrow(/no safetensors weights/);
  });

  it('refuses repo ids and revisions that would leave the cache, before any file is opened or fetched', async () => {
    const root = mkdtempSync(join(tmpdir(), 'anneal-hub-'));
    const cacheDir = join(root, 'hub');
    // What "../../secret" would reach from models--anneal-test--tiny-gpt2/refs/: a ref-shaped file outside the cache.
    mkdirSync(join(cacheDir, 'models--anneal-test--tiny-gpt2', 'refs'), { recursive: true });
    writeFileSync(join(root, 'secret'), COMMIT);
    const log: string[] = [];
    const fetch = fakeHub(files, log);
    const named = (p: Promise<unknown>) =>
      p.then(
        () => 'loaded',
        (e: unknown) => (e instanceof AnnealError ? `${e.name}: ${e.describe()}` : `not a named error: ${String(e)}`),
      );
    for (const revision of ['../../../secret', 'main/../../x', 'a//b', '/etc', 'x\\..\\y', '']) {
      expect(await named(loadPretrained('anneal-test/tiny-gpt2', { cacheDir, revision, fetch })), revision).toMatch(
        /^ConfigError: .*revision .* is not a branch, tag or commit name/s,
      );
      expect(() => cachedSnapshot('anneal-test/tiny-gpt2', revision, cacheDir)).toThrow(ConfigError);
    }
    for (const repo of [
      'anneal-test/..',
      'anneal-test/na..me',
      '-org/name',
      'org--x/name',
      'org/name.',
      'org/' + 'n'.repeat(97),
    ]) {
      expect(await named(loadPretrained(repo, { cacheDir, fetch })), repo).toMatch(
        /^ConfigError: .*is not a Hub repo id/s,
      );
    }
    expect(await named(loadPretrained('org/name/extra', { cacheDir, fetch }))).toMatch(
      /^CheckpointError: .*neither a folder nor a Hub repo id/s,
    );
    expect(log).toEqual([]); // nothing was fetched
    // A cached ref must hold a commit hash: its content becomes a path too.
    writeFileSync(join(cacheDir, 'models--anneal-test--tiny-gpt2', 'refs', 'main'), '../../../..');
    expect(() => cachedSnapshot('anneal-test/tiny-gpt2', 'main', cacheDir)).toThrow(
      /holds "..\/..\/..\/..", not a commit hash/,
    );
    // Hugging Face's own ref names still work.
    expect(cachedSnapshot('anneal-test/tiny-gpt2', 'refs/pr/1', cacheDir)).toBeUndefined();
  });

  it('a Hub id that cannot be fetched names the host, repo and file, and points at HF_HUB_OFFLINE and the cache', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'anneal-hub-'));
    const down = (async () => {
      throw new TypeError('fetch failed', {
        cause: Object.assign(new Error('getaddrinfo ENOTFOUND huggingface.co'), { code: 'ENOTFOUND' }),
      });
    }) as unknown as typeof fetch;
    const e = await loadPretrained('anneal-test/tiny-gpt2', { cacheDir, fetch: down }).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(CheckpointError);
    expect((e as CheckpointError).describe()).toMatch(
      /^anneal-test\/tiny-gpt2: cannot fetch the file list of model anneal-test\/tiny-gpt2@main from huggingface\.co: fetch failed: ENOTFOUND\nhint: without network, HF_HUB_OFFLINE=1 uses what is cached \(.*models--anneal-test--tiny-gpt2\)/,
    );
    // a file that fails after the listing is named
    const log: string[] = [];
    const listing = fakeHub(files, log);
    const noBlob = (async (url: string | URL | Request, init?: RequestInit) => {
      if (String(url).includes('/resolve/main/model.safetensors')) throw new TypeError('fetch failed');
      return listing(url, init);
    }) as typeof fetch;
    expect(
      await loadPretrained('anneal-test/tiny-gpt2', { cacheDir, fetch: noBlob }).then(
        () => 'loaded',
        (x: unknown) => (x as Error).message,
      ),
    ).toMatch(/cannot fetch model\.safetensors of model anneal-test\/tiny-gpt2@main/);
  });
});
