// Reward functions for online RL (PPO, GRPO, RLOO), as TRL takes them: plain functions of
// the prompts, the completions and the dataset rows they came from (other columns pass
// through, e.g. the answer a verifiable reward checks against), each with a weight. Configs
// name them by module path (`rewards: [{ module: ./rewards/format.ts, weight: 1 }]`); the
// CLI runs under tsx, so TypeScript modules load as they are. Anything wrong with a function
// or what it returns is a named error: the module, the function, the row.
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ConfigError, DataError } from '@anneal/core';

/** (prompts, completions, rows) -> one reward per completion. */
export type RewardFunction = (
  prompts: string[],
  completions: string[],
  rows: Array<Record<string, unknown>>,
) => number[] | Promise<number[]>;

export interface RewardFunctionSpec {
  /** Path of an ES module (.ts, .mts, .js, .mjs), relative to the config file. */
  module: string;
  /** The export to use (default: the default export). */
  export?: string;
  /** Weight in the total reward (TRL's reward_weights; default 1). */
  weight?: number;
  /** Name in metrics (rewards/<name>/mean; default: the export, else the file name). */
  name?: string;
}

export interface NamedReward {
  name: string;
  weight: number;
  fn: RewardFunction;
}

/** Imports the reward functions a config names; `field` is the config path of the list (e.g. `rewards`). */
export async function loadRewardFunctions(
  specs: RewardFunctionSpec[],
  configFile: string,
  field = 'rewards',
): Promise<NamedReward[]> {
  const out: NamedReward[] = [];
  for (const [i, spec] of specs.entries()) out.push(await loadRewardFunction(spec, configFile, `${field}[${i}]`));
  return out;
}

/** Imports one reward function; `field` is its entry's config path (e.g. `rewards[2]`). */
export async function loadRewardFunction(
  spec: RewardFunctionSpec,
  configFile: string,
  field: string,
): Promise<NamedReward> {
  const path = resolve(dirname(configFile), spec.module);
  const where = { file: configFile, field: `${field}.module` };
  if (!existsSync(path))
    throw new ConfigError(`reward function module ${path} does not exist`, {
      ...where,
      hint: 'give a path relative to the config file, to a .ts or .js module',
    });
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(path).href)) as Record<string, unknown>;
  } catch (e) {
    throw new ConfigError(`reward function module ${path} failed to load: ${(e as Error).message}`, {
      ...where,
      cause: e,
      hint: 'run it alone (npx tsx <module>) to see the error in full',
    });
  }
  const key = spec.export ?? 'default';
  const fn = mod[key];
  if (typeof fn !== 'function')
    throw new ConfigError(`${path} has no function export ${JSON.stringify(key)}`, {
      ...where,
      hint: `export it (exports: ${Object.keys(mod).join(', ') || 'none'}), or name another with ${field}.export`,
    });
  const fileName = path.replace(/^.*[\\/]/, '').replace(/\.[cm]?[jt]s$/, '');
  return { name: spec.name ?? spec.export ?? fileName, weight: spec.weight ?? 1, fn: fn as RewardFunction };
}

/**
 * Runs every reward function on a batch: each function's rewards, and their weighted sum
 * per completion (TRL's reward). A function that throws, or returns anything but one finite
 * number per completion, is a DataError naming the function and the row.
 */
export async function computeRewards(
  rewards: NamedReward[],
  prompts: string[],
  completions: string[],
  rows: Array<Record<string, unknown>>,
): Promise<{ total: Float32Array; perFunction: Map<string, Float32Array> }> {
  const n = completions.length;
  const total = new Float32Array(n);
  const perFunction = new Map<string, Float32Array>();
  for (const r of rewards) {
    let got: unknown;
    try {
      got = await r.fn(prompts, completions, rows);
    } catch (e) {
      throw new DataError(`reward function ${r.name} threw: ${(e as Error).message}`, {
        field: r.name,
        cause: e,
        hint: `it was scoring ${n} completions; rows carry the dataset's other columns`,
      });
    }
    if (!Array.isArray(got) && !ArrayBuffer.isView(got))
      throw new DataError(`reward function ${r.name} returned ${typeof got}, expected an array of ${n} numbers`, {
        field: r.name,
      });
    const values = Array.from(got as ArrayLike<unknown>);
    if (values.length !== n)
      throw new DataError(`reward function ${r.name} returned ${values.length} rewards for ${n} completions`, {
        field: r.name,
        hint: 'return one number per completion, in order',
      });
    const bad = values.findIndex((v) => typeof v !== 'number' || !Number.isFinite(v));
    if (bad >= 0)
      throw new DataError(`reward function ${r.name} returned ${String(values[bad])} at row ${bad}`, {
        field: `${r.name}[${bad}]`,
        hint: `the completion was ${JSON.stringify(completions[bad].slice(0, 80))}; return a finite number for every row`,
      });
    const arr = Float32Array.from(values as number[]);
    perFunction.set(r.name, arr);
    arr.forEach((v, i) => (total[i] += r.weight * v));
  }
  return { total, perFunction };
}
