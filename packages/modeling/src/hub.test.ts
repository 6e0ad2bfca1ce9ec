// Hub repo ids through the Hugging Face cache, with no network: a fake Hub (a fetch
// serving the gpt2 fixture's files) stands in for huggingface.co, and @huggingface/hub's
// real code downloads from it into the standard cache layout.
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, fakeHubFetch, useBackend } from '@anneal/core';
import { cachedSnapshot, loadPretrained } from './index.js';

const FIXTURE = fileURLToPath(new URL('../../../../shared/fixtures/hf/gpt2/', import.meta.url));
const COMMIT = 'a'.repeat(40);

const fakeHub = (files: Record<string, Uint8Array>, log: string[], name = 'anneal-test/tiny-gpt2') => fakeHubFetch([{ type: 'model', name, revisions: { main: files }, commit: COMMIT }], log);

describe('loadPretrained with a Hub repo id', () => {
  const files = Object.fromEntries(['config.json', 'model.safetensors', 'generation_config.json'].map((f) => [f, readFileSync(join(FIXTURE, f))]));
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
    expect(Array.from(offline.params.get('transformer.wte.weight')!.dataSync().slice(0, 4))).toEqual(Array.from(model.params.get('transformer.wte.weight')!.dataSync().slice(0, 4)));
    model.dispose();
    offline.dispose();
  });

  it('says what is wrong: not cached while offline, or a repo with only pickle weights', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'anneal-hub-'));
    process.env.HF_HUB_OFFLINE = '1';
    await expect(loadPretrained('anneal-test/absent', { cacheDir })).rejects.toThrow(/not in the Hugging Face cache and HF_HUB_OFFLINE is set/);
    delete process.env.HF_HUB_OFFLINE;
    const pickled = { 'config.json': files['config.json'], 'pytorch_model.bin': Buffer.from('pickle') };
    await expect(loadPretrained('anneal-test/pickled', { cacheDir, fetch: fakeHub(pickled, [], 'anneal-test/pickled') })).rejects.toThrow(CheckpointError);
    await expect(loadPretrained('anneal-test/pickled', { cacheDir, fetch: fakeHub(pickled, [], 'anneal-test/pickled') })).rejects.toThrow(/no safetensors weights/);
  });
});
