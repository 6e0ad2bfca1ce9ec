// Hub repo ids through the Hugging Face cache, with no network: a fake Hub (a fetch
// serving the gpt2 fixture's files) stands in for huggingface.co, and @huggingface/hub's
// real code downloads from it into the standard cache layout.
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CheckpointError, useBackend } from '@anneal/core';
import { cachedSnapshot, loadPretrained } from './index.js';

const FIXTURE = fileURLToPath(new URL('../../../../shared/fixtures/hf/gpt2/', import.meta.url));
const COMMIT = 'a'.repeat(40);

function fakeHub(files: Record<string, Buffer>, log: string[]): typeof fetch {
  const oid = (b: Buffer) => createHash('sha1').update(b).digest('hex');
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    log.push(`${init?.method ?? 'GET'} ${url.pathname}`);
    const info = /^\/api\/models\/([^/]+\/[^/]+)\/paths-info\/([^/]+)$/.exec(url.pathname);
    if (info) {
      const { paths } = JSON.parse(String(init!.body));
      const out = (paths as string[]).filter((p) => files[p]).map((p) => ({ path: p, type: 'file', oid: oid(files[p]), size: files[p].length, lastCommit: { id: COMMIT, date: '2024-04-18T00:00:00Z', title: 'fixture' } }));
      return new Response(JSON.stringify(out), { status: 200, headers: { 'Content-Type': 'application/json' } });
    }
    const file = /^\/[^/]+\/[^/]+\/resolve\/[^/]+\/(.+)$/.exec(url.pathname)?.[1];
    const body = file ? files[decodeURIComponent(file)] : undefined;
    if (!body) return new Response('not found', { status: 404, headers: { 'X-Error-Code': 'EntryNotFound' } });
    const range = /bytes=(\d+)-(\d+)?/.exec(new Headers(init?.headers).get('Range') ?? '');
    const [a, b] = range ? [Number(range[1]), range[2] ? Number(range[2]) : body.length - 1] : [0, body.length - 1];
    return new Response(body.subarray(a, b + 1), {
      status: range ? 206 : 200,
      headers: { 'Content-Range': `bytes ${a}-${b}/${body.length}`, ETag: `"${oid(body)}"`, 'Content-Type': 'application/octet-stream', 'Content-Length': String(b - a + 1) },
    });
  }) as typeof fetch;
}

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
    await expect(loadPretrained('anneal-test/pickled', { cacheDir, fetch: fakeHub(pickled, []) })).rejects.toThrow(CheckpointError);
    await expect(loadPretrained('anneal-test/pickled', { cacheDir, fetch: fakeHub(pickled, []) })).rejects.toThrow(/no safetensors weights/);
  });
});
