// `anneal generate --model <dir|org/name|adapter dir> --prompt "..."`: streams the
// continuation (with --chat: the assistant's reply, through the tokenizer's chat template).
import { AnnealError, ConfigError, useBackend } from '@anneal/core';
import { generate, type GenerateOptions } from '@anneal/modeling';
import { registerTorchBackend } from '@anneal/backend-torch';
import type { Tokenizer } from '@anneal/tokenizers';
import { loadCausalLm, type LoadedLm } from './lm-loader.js';

export interface SamplingFlags {
  maxNewTokens: string;
  sample?: boolean;
  temperature?: string;
  topK?: string;
  topP?: string;
  repetitionPenalty?: string;
  numBeams?: string;
  seed?: string;
}

export interface GenerateFlags extends SamplingFlags {
  model: string;
  base?: string;
  tokenizer?: string;
  prompt: string;
  chat?: boolean;
  backend: string;
  device?: string;
}

/** A flag's number, checked against what transformers' GenerationConfig accepts for it. */
function flagNumber(v: string | undefined, flag: string, ok: (n: number) => boolean, expected: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || !ok(n)) throw new ConfigError(`${flag} expects ${expected}, got ${JSON.stringify(v)}`, { field: flag });
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
    repetitionPenalty: flagNumber(f.repetitionPenalty, '--repetition-penalty', (n) => n > 0, 'a number > 0 (1 = off)'),
    numBeams: flagNumber(f.numBeams, '--num-beams', (n) => int(n) && n >= 1, 'an integer >= 1') ?? 1,
    seed: flagNumber(f.seed, '--seed', (n) => int(n) && n >= 0, 'an integer >= 0'),
    doSample: Boolean(f.sample),
  };
  const sampling = (['temperature', 'topK', 'topP'] as const).filter((k) => o[k] !== undefined);
  if (sampling.length && !o.doSample) {
    const flag = { temperature: '--temperature', topK: '--top-k', topP: '--top-p' }[sampling[0]];
    throw new ConfigError(`${flag} only applies when sampling`, { field: flag, hint: 'add --sample (greedy decoding, the default, ignores it)' });
  }
  if (o.doSample && o.numBeams > 1) throw new ConfigError('--num-beams with --sample (beam sampling) is not supported', { field: '--num-beams', hint: 'drop --sample for beam search, or --num-beams to sample' });
  return o;
}

/**
 * Streams the reply to `promptIds`: after each token, prints what the decoded continuation
 * gained (held back while it ends inside a multi-byte character). Returns the new ids.
 */
export function streamReply(m: LoadedLm, promptIds: number[], options: ReturnType<typeof samplingOptions>, out: (s: string) => void): number[] {
  const fresh: number[] = [];
  let shown = '';
  const flush = (final: boolean) => {
    const text = m.tok.decode(fresh.filter((t) => !m.eos.includes(t)), { skipSpecialTokens: true });
    if (!final && text.endsWith('\ufffd')) return;
    out(text.slice(shown.length));
    shown = text;
  };
  const beams = options.numBeams ?? 1;
  const [ids] = generate(m.lm, [promptIds], {
    ...options,
    eosTokenId: m.eos.length ? m.eos : undefined,
    onToken:
      beams > 1
        ? undefined
        : ([t]) => {
            if (t < 0) return;
            fresh.push(t);
            flush(false);
          },
  });
  if (beams > 1) fresh.push(...ids.slice(promptIds.length));
  flush(true);
  return fresh;
}

/** The torch backend when it loads (else the fallback, said on `info`). */
export async function startBackend(f: { backend: string; device?: string }, info: (s: string) => void): Promise<string> {
  try {
    registerTorchBackend({ device: f.device, warn: info });
  } catch (e) {
    if (f.backend === 'torch' || (f.device && f.device !== 'cpu')) throw e;
    info(`torch backend unavailable: ${e instanceof AnnealError ? e.message : (e as Error).message}`);
  }
  return (await useBackend(f.backend as never)).name;
}

/** The prompt as the model reads it: a user turn through the chat template, or the raw text. */
export function promptIds(tok: Tokenizer, prompt: string, chat: boolean): number[] {
  return chat ? tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true, tokenize: true }) : tok.encode(prompt);
}

export async function generateCommand(f: GenerateFlags, out: (s: string) => void, info: (s: string) => void): Promise<void> {
  const options = samplingOptions(f); // flags are checked before anything loads
  const backend = await startBackend(f, info);
  const m = await loadCausalLm(f.model, { tokenizer: f.tokenizer, base: f.base, info });
  info(`backend: ${backend}; model: ${m.describe}`);
  const ids = promptIds(m.tok, f.prompt, Boolean(f.chat));
  if (!f.chat) out(f.prompt);
  streamReply(m, ids, options, out);
  out('\n');
}
