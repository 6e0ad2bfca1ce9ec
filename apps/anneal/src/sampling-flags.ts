// The sampling flags of `anneal generate` and `anneal chat`, checked with nothing heavy
// loaded, so a wrong flag answers at once.
import { ConfigError } from '@anneal/core/errors';
import type { GenerateOptions } from '@anneal/modeling';

export interface SamplingFlags {
  maxNewTokens: string;
  sample?: boolean;
  temperature?: string;
  topK?: string;
  topP?: string;
  minP?: string;
  repetitionPenalty?: string;
  /** --ban-repeat-ngram (a name that does not start with no-: commander reads those as negations). */
  banRepeatNgram?: string;
  numBeams?: string;
  seed?: string;
  /** float32 (default) or int8: weight-only int8 projections for decoding. */
  dtype?: string;
}

/** --dtype, checked before anything loads. */
export function decodeDtype(f: SamplingFlags): 'float32' | 'int8' {
  const d = f.dtype ?? 'float32';
  if (d === 'float32' || d === 'int8') return d;
  throw new ConfigError(`--dtype ${d} is not one generation decodes in`, {
    field: '--dtype',
    hint:
      d === 'bf16' || d === 'bfloat16'
        ? 'bf16 weights are slower than float32 on CPUs without bf16 arithmetic; int8 weight-only reads a quarter of the bytes'
        : 'float32 (default) or int8',
  });
}

/** A flag's number, checked against what transformers' GenerationConfig accepts for it. */
function flagNumber(
  v: string | undefined,
  flag: string,
  ok: (n: number) => boolean,
  expected: string,
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n))
    throw new ConfigError(`expects ${expected}, got ${JSON.stringify(v)}`, { field: flag });
  return n;
}

const int = (n: number) => Number.isInteger(n);

/**
 * generate()'s options from the flags. Sampling flags without --sample are an error (transformers
 * warns and decodes greedily, ignoring them, which surprises more than it helps).
 */
export function samplingOptions(f: SamplingFlags): Omit<GenerateOptions, 'eosTokenId' | 'onToken'> {
  const o = {
    maxNewTokens: flagNumber(f.maxNewTokens, '--max-new-tokens', (n) => int(n) && n >= 1, 'an integer >= 1')!,
    temperature: flagNumber(f.temperature, '--temperature', (n) => n > 0, 'a number > 0'),
    topK: flagNumber(f.topK, '--top-k', (n) => int(n) && n >= 1, 'an integer >= 1'),
    topP: flagNumber(f.topP, '--top-p', (n) => n > 0 && n <= 1, 'a number in (0, 1]'),
    minP: flagNumber(f.minP, '--min-p', (n) => n >= 0 && n <= 1, 'a number in [0, 1]'),
    noRepeatNgramSize: flagNumber(f.banRepeatNgram, '--ban-repeat-ngram', (n) => int(n) && n >= 0, 'an integer >= 0'),
    repetitionPenalty: flagNumber(f.repetitionPenalty, '--repetition-penalty', (n) => n > 0, 'a number > 0 (1 = off)'),
    numBeams: flagNumber(f.numBeams, '--num-beams', (n) => int(n) && n >= 1, 'an integer >= 1') ?? 1,
    seed: flagNumber(f.seed, '--seed', (n) => int(n) && n >= 0, 'an integer >= 0'),
    doSample: Boolean(f.sample),
  };
  const sampling = (['temperature', 'topK', 'topP', 'minP'] as const).filter((k) => o[k] !== undefined);
  if (sampling.length && !o.doSample) {
    const flag = { temperature: '--temperature', topK: '--top-k', topP: '--top-p', minP: '--min-p' }[sampling[0]];
    throw new ConfigError('only applies when sampling', {
      field: flag,
      hint: 'add --sample (greedy decoding, the default, ignores it)',
    });
  }
  if (o.doSample && o.numBeams > 1)
    throw new ConfigError('--num-beams with --sample (beam sampling) is not supported', {
      field: '--num-beams',
      hint: 'drop --sample for beam search, or --num-beams to sample',
    });
  return o;
}
