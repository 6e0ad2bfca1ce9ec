// The run folder every recipe opens (all seven call openRunFolder and openLogger): what a
// fresh run records for TensorBoard, and that nothing written holds a machine's absolute path.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readTensorBoardLogdir } from '@anneal/core/testing';
import { openLogger, openRunFolder } from './index.js';

describe('openLogger', () => {
  const cfg = { name: 'r', recipe: 'dpo', optim: { lr: 5e-7 }, dpo: { beta: 0.1, lossType: 'sigmoid' } };

  it('a fresh run writes the resolved config as a text summary and its hyperparameters as one HParams session', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-logger-'));
    const logger = openLogger(dir, cfg);
    logger.tb.flush();
    const values = readTensorBoardLogdir(dir)
      .get('')!
      .flatMap((e) => e.values);
    const config = values.find((v) => v.tag === 'config')!;
    expect(config.plugin).toBe('text');
    expect(config.strings[0]).toMatch(/^```yaml\n[\s\S]*recipe: dpo[\s\S]*beta: 0\.1[\s\S]*```$/);
    expect(values.filter((v) => v.plugin === 'hparams').map((v) => v.tag)).toEqual(['_hparams_/session_start_info']);
  });

  it('a resumed run adds neither (the first session already holds them)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-logger-'));
    openLogger(dir, cfg, 7).tb.flush();
    const tags = readTensorBoardLogdir(dir)
      .get('')!
      .flatMap((e) => e.values.map((v) => v.tag));
    expect(tags).toEqual([]);
  });
});

describe('openRunFolder', () => {
  it('run.json names the checkpoint a run resumed from relative to the run folder', () => {
    const out = mkdtempSync(join(tmpdir(), 'anneal-runs-'));
    openRunFolder(out, 'r', 'name: r\n', { name: 'cpu' }, { info: () => undefined });
    const run = JSON.parse(readFileSync(join(out, 'r', 'run.json'), 'utf8'));
    expect(run.resumedFrom).toBeNull();
    expect(JSON.stringify(run)).not.toContain(out);
  });
});
