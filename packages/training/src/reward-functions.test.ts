// Reward functions named by module path in a config: loaded (TypeScript and JavaScript), run,
// weighted; and every way they can go wrong is an error naming the module, function or row.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, DataError } from '@anneal/core';
import { classifierFrom, loadPretrained, scoreTexts } from '@anneal/modeling';
import { loadTokenizerSync } from '@anneal/tokenizers';
import { computeRewards, loadRewardFunctions, loadRewardSources, tinyGpt2Dir } from './index.js';

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

describe('reward sources: functions and reward models in one list', () => {
  it('scores with a reward-model checkpoint as scoreTexts does, mixed with a function, weighted by rewardWeights', async () => {
    const lm = await tinyGpt2Dir(['good food', 'bad food', 'the food was good'], { vocabSize: 270 });
    const rmDir = join(dir, 'rm-tiny');
    const rm = classifierFrom(await loadPretrained(lm), ['LABEL_0'], 0, 3);
    await rm.savePretrained(rmDir);
    loadTokenizerSync(lm).save(rmDir);
    const sources = await loadRewardSources([{ model: rmDir }, { module: './length.mjs', name: 'len' }], config, {
      weights: [2, 0.5],
    });
    expect(sources.map((s) => [s.name, s.weight])).toEqual([
      ['rm-tiny', 2],
      ['len', 0.5],
    ]);
    const prompts = ['Say:', 'Say:'];
    const completions = [' good food', ' bad'];
    const r = await computeRewards(sources, prompts, completions, [{}, {}]);
    const want = scoreTexts(
      rm,
      loadTokenizerSync(rmDir),
      prompts.map((prompt, i) => ({ prompt, completion: completions[i] })),
    );
    expect(Array.from(r.perFunction.get('rm-tiny')!)).toEqual(want.map((x) => expect.closeTo(x, 5)));
    expect(r.total[1]).toBeCloseTo(2 * want[1] + 0.5 * 4, 4);
    rm.dispose();
    // both ways of weighting at once, a weight count that does not match, and two rewards of one name are refused
    await expect(
      loadRewardSources([{ module: './format.ts', weight: 1 }], config, { weights: [1] }),
    ).rejects.toMatchObject({ field: 'rewards[0].weight' });
    await expect(loadRewardSources([{ module: './format.ts' }], config, { weights: [1, 2] })).rejects.toThrow(
      /2 reward weights for 1 rewards/,
    );
    await expect(loadRewardSources([{ module: './format.ts' }, { module: 'format.ts' }], config)).rejects.toThrow(
      /two rewards are named "format"/,
    );
    await expect(loadRewardSources([], config)).rejects.toThrow(/needs at least one reward/);
  });
});
