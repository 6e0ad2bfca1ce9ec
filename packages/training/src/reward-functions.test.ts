// Reward functions named by module path in a config: loaded (TypeScript and JavaScript), run,
// weighted; and every way they can go wrong is an error naming the module, function or row.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DataError } from '@anneal/core';
import { computeRewards, loadRewardFunctions } from './index.js';

const dir = mkdtempSync(join(tmpdir(), 'anneal-rewards-'));
const config = join(dir, 'grpo.yaml');
writeFileSync(
  join(dir, 'format.ts'),
  `export default (prompts: string[], completions: string[]) => completions.map((c) => (c.endsWith('.') ? 1 : 0));\n` +
    `export const exact = (p: string[], c: string[], rows: Array<{ answer: string }>) => c.map((x, i) => (x.trim() === rows[i].answer ? 2 : 0));\n` +
    `export const short = (p: string[], c: string[]) => c.slice(1).map(() => 1);\n` +
    `export const nan = (p: string[], c: string[]) => c.map((_, i) => (i === 1 ? Number.NaN : 0));\n` +
    `export const boom = () => { throw new Error('no answer column'); };\n` +
    `export const notAFunction = 3;\n`,
);
writeFileSync(join(dir, 'length.mjs'), `export default async (p, c) => c.map((x) => x.length);\n`);

describe('reward functions from modules', () => {
  it('loads default and named exports (TS and JS), and sums them with their weights', async () => {
    const fns = await loadRewardFunctions(
      [
        { module: './format.ts' },
        { module: 'format.ts', export: 'exact', weight: 0.5 },
        { module: './length.mjs', weight: 0.1, name: 'len' },
      ],
      config,
    );
    expect(fns.map((f) => [f.name, f.weight])).toEqual([
      ['format', 1],
      ['exact', 0.5],
      ['len', 0.1],
    ]);
    const r = await computeRewards(fns, ['q1', 'q2'], ['7.', ' 12 '], [{ answer: '7' }, { answer: '12' }]);
    expect(Array.from(r.perFunction.get('format')!)).toEqual([1, 0]);
    expect(Array.from(r.perFunction.get('exact')!)).toEqual([0, 2]);
    expect(Array.from(r.perFunction.get('len')!)).toEqual([2, 4]);
    expect(r.total[0]).toBeCloseTo(1 + 0 + 0.2, 6);
    expect(r.total[1]).toBeCloseTo(0 + 1 + 0.4, 6);
  });

  it('names the module, the export, the function and the row when something is wrong', async () => {
    const load = (spec: object) => loadRewardFunctions([spec as never], config);
    await expect(load({ module: './missing.ts' })).rejects.toThrow(ConfigError);
    await expect(load({ module: './missing.ts' })).rejects.toMatchObject({ field: 'rewards[0].module' });
    await expect(load({ module: './format.ts', export: 'notAFunction' })).rejects.toThrow(
      /has no function export "notAFunction"/,
    );
    const run = async (name: string) =>
      computeRewards(
        await loadRewardFunctions([{ module: './format.ts', export: name }], config),
        ['a', 'b'],
        ['x', 'y'],
        [{}, {}],
      );
    await expect(run('short')).rejects.toThrow(/reward function short returned 1 rewards for 2 completions/);
    await expect(run('nan')).rejects.toThrow(/reward function nan returned NaN at row 1/);
    await expect(run('nan')).rejects.toBeInstanceOf(DataError);
    await expect(run('boom')).rejects.toThrow(/reward function boom threw: no answer column/);
  });
});
