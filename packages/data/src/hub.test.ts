// Hub datasets through the Hugging Face cache, with a fake Hub standing in for
// huggingface.co (no network): the split's Parquet files are found, downloaded, read.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { afterEach, describe, expect, it } from 'vitest';
import { fakeHubFetch } from '@anneal/core/testing';
import { hubDatasetFiles, isSplitFile, readRows } from './index.js';

const COMMIT = 'b'.repeat(40);
const parquet = (texts: string[]) =>
  new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'text', data: texts, type: 'STRING' }] }));

async function texts(files: string[]): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const f of files) for await (const r of readRows({ path: f })) out.push(r.row.text);
  return out;
}

describe('Hub dataset splits', () => {
  afterEach(() => {
    delete process.env.HF_HUB_OFFLINE;
  });

  it('recognizes split files by the Hub conventions', () => {
    expect(isSplitFile('data/train-00000-of-00002.parquet', 'train')).toBe(true);
    expect(isSplitFile('data/test-00000-of-00001.parquet', 'train')).toBe(false);
    expect(isSplitFile('default/train/0000.parquet', 'train')).toBe(true);
    expect(isSplitFile('en/validation/0000.parquet', 'validation', 'en')).toBe(true);
    expect(isSplitFile('fr/validation/0000.parquet', 'validation', 'en')).toBe(false);
    expect(isSplitFile('train.parquet', 'train')).toBe(true);
    expect(isSplitFile('data/train.jsonl', 'train')).toBe(false);
  });

  it('downloads the split into the cache, then finds it offline', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'anneal-hubds-'));
    const main = {
      'README.md': new TextEncoder().encode('# reviews'),
      'data/train-00000-of-00001.parquet': parquet(['good', 'bad']),
      'data/test-00000-of-00001.parquet': parquet(['meh']),
    };
    const log: string[] = [];
    const fetch = fakeHubFetch(
      [{ type: 'dataset', name: 'anneal-test/reviews', revisions: { main }, commit: COMMIT }],
      log,
    );
    const files = await hubDatasetFiles('anneal-test/reviews', { split: 'train', cacheDir, fetch });
    expect(files).toEqual([
      join(cacheDir, 'datasets--anneal-test--reviews', 'snapshots', COMMIT, 'data', 'train-00000-of-00001.parquet'),
    ]);
    expect(await texts(files)).toEqual(['good', 'bad']);
    expect(log.some((l) => l.includes('test-00000'))).toBe(false); // only the split asked for
    process.env.HF_HUB_OFFLINE = '1';
    expect(await hubDatasetFiles('anneal-test/reviews', { split: 'train', cacheDir })).toEqual(files);
    await expect(hubDatasetFiles('anneal-test/reviews', { split: 'validation', cacheDir })).rejects.toThrow(
      /not in the Hugging Face cache and HF_HUB_OFFLINE is set/,
    );
  });

  it("falls back to the Hub's Parquet conversion when the repo holds other formats", async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'anneal-hubds-'));
    const fetch = fakeHubFetch([
      {
        type: 'dataset',
        name: 'anneal-test/csv',
        commit: COMMIT,
        revisions: {
          main: { 'train.csv': new TextEncoder().encode('text\nx\n') },
          'refs/convert/parquet': { 'default/train/0000.parquet': parquet(['x']) },
        },
      },
    ]);
    const files = await hubDatasetFiles('anneal-test/csv', { cacheDir, fetch });
    expect(await texts(files)).toEqual(['x']);
    await expect(hubDatasetFiles('anneal-test/csv', { split: 'test', cacheDir, fetch })).rejects.toThrow(
      /no Parquet files for split "test"/,
    );
  });
});
