// Where online RL's rewards come from, as TRL's reward_funcs takes them: any mix of reward-model
// checkpoints (recipe: reward; BERT or decoder) and reward functions named by module path, each
// with a weight. A reward model becomes a reward function here (prompt and completion scored as
// the reward recipe saw its pairs), so the trainers see one kind of thing.
import { basename } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '@anneal/core';
import { loadPretrained, localModelDir, scoreTexts } from '@anneal/modeling';
import { loadTokenizerSync } from '@anneal/tokenizers';
import { loadRewardFunction, type NamedReward } from '../reward-functions.js';

/** One entry of a config's `rewards:` list. */
export const RewardSourceSchema = z.union([
  z
    .object({
      /** An ES module (.ts/.js) relative to the config file, exporting (prompts, completions, rows) => number[]. */
      module: z.string(),
      export: z.string().optional(),
      weight: z.number().optional(),
      name: z.string().optional(),
    })
    .strict(),
  z
    .object({
      /** A reward-model checkpoint (a run folder of recipe: reward, a model folder or a Hub repo id). */
      model: z.string(),
      weight: z.number().optional(),
      name: z.string().optional(),
    })
    .strict(),
]);
export type RewardSource = z.infer<typeof RewardSourceSchema>;

/** A reward-model checkpoint as a reward function; `field` names it in errors. */
export async function rewardModelFunction(
  name: string,
  field = 'reward.model',
): Promise<(prompts: string[], completions: string[]) => number[]> {
  const dir = await localModelDir(name, { field }); // a run folder: its best checkpoint
  const rm = await loadPretrained(dir);
  const tok = loadTokenizerSync(dir);
  return (prompts, completions) =>
    scoreTexts(
      rm,
      tok,
      prompts.map((prompt, i) => ({ prompt, completion: completions[i] })),
    );
}

/**
 * Loads a `rewards:` list, in order. `weights` is TRL's reward_weights (one per entry), an
 * alternative to each entry's own weight; giving both is an error.
 */
export async function loadRewardSources(
  sources: RewardSource[],
  configFile: string,
  o: { field?: string; weights?: number[] } = {},
): Promise<NamedReward[]> {
  const field = o.field ?? 'rewards';
  if (!sources.length)
    throw new ConfigError('no rewards: online RL needs at least one reward function or reward model', {
      file: configFile,
      field,
      hint: 'rewards: [{ module: ./rewards/format.ts }] or [{ model: runs/reward-sentiment-bert }]',
    });
  if (o.weights && o.weights.length !== sources.length)
    throw new ConfigError(`${o.weights.length} reward weights for ${sources.length} rewards`, {
      file: configFile,
      field: 'rewardWeights',
      hint: 'give one weight per entry of rewards, in order',
    });
  const out: NamedReward[] = [];
  for (const [i, s] of sources.entries()) {
    if (o.weights && s.weight !== undefined)
      throw new ConfigError(`rewards[${i}] has a weight and rewardWeights is set too`, {
        file: configFile,
        field: `${field}[${i}].weight`,
        hint: 'give the weights one way: in each entry, or as rewardWeights',
      });
    const weight = o.weights?.[i] ?? s.weight ?? 1;
    if ('model' in s) {
      const fn = await rewardModelFunction(s.model, `${field}[${i}].model`);
      out.push({ name: s.name ?? basename(s.model.replace(/[\\/]+$/, '')), weight, fn });
    } else {
      out.push(await loadRewardFunction({ ...s, weight }, configFile, `${field}[${i}]`));
    }
  }
  const names = out.map((r) => r.name);
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup)
    throw new ConfigError(`two rewards are named ${JSON.stringify(dup)}`, {
      file: configFile,
      field,
      hint: 'give one of them a name (rewards[i].name): metrics are logged as rewards/<name>/mean',
    });
  return out;
}
