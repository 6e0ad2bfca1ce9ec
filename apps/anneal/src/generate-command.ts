// `anneal generate --model <dir|org/name|adapter dir> --prompt "..."`: streams the
// continuation (with --chat: the assistant's reply, through the tokenizer's chat template; for a
// T5 model: the decoder's output for the prompt as the encoder's input).
import { AnnealError, ConfigError, useBackend } from '@anneal/core';
import { PretrainedModel, T5ForConditionalGeneration, generate, seq2seqGenerate } from '@anneal/modeling';
import { quantize } from '@anneal/quantization';
import { registerTorchBackend } from '@anneal/backend-torch';
import type { Tokenizer } from '@anneal/tokenizers';
import type { CausalLm } from '@anneal/modeling';
import { loadCausalLm, type LoadedLm } from './lm-loader.js';
import { decodeDtype, samplingOptions, type SamplingFlags } from './sampling-flags.js';

export { samplingOptions, type SamplingFlags };

/**
 * --dtype int8: the model's projections quantized to int8 weight-only (a float32 scale per row),
 * which the torch backend multiplies without widening the weight (AnnealInt8Linear).
 */
export function decodeIn(m: LoadedLm, dtype: 'float32' | 'int8', info: (s: string) => void): void {
  if (dtype === 'float32') return;
  if (!(m.lm instanceof PretrainedModel))
    throw new ConfigError('--dtype int8 needs a plain model; this adapter could not be merged into its base', {
      field: '--dtype',
      hint: 'merge it first (anneal lora merge), or decode in float32',
    });
  const r = quantize(m.lm, { method: 'int8', blockSize: 64, doubleQuant: false });
  info(
    `int8 weight-only: ${r.layers} projections, ${(r.float32Bytes / 2 ** 20).toFixed(1)} MB -> ${(r.storedBytes / 2 ** 20).toFixed(1)} MB`,
  );
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

/**
 * Streams the reply to `promptIds`: after each token, prints what the decoded continuation
 * gained (held back while it ends inside a multi-byte character). Returns the new ids.
 */
export function streamReply(
  m: LoadedLm,
  promptIds: number[],
  options: ReturnType<typeof samplingOptions>,
  out: (s: string) => void,
): number[] {
  const fresh: number[] = [];
  let shown = '';
  const flush = (final: boolean) => {
    const text = m.tok.decode(
      fresh.filter((t) => !m.eos.includes(t)),
      { skipSpecialTokens: true },
    );
    if (!final && text.endsWith('\ufffd')) return;
    out(text.slice(shown.length));
    shown = text;
  };
  const beams = options.numBeams ?? 1;
  const o = {
    ...options,
    eosTokenId: m.eos.length ? m.eos : undefined,
    onToken:
      beams > 1
        ? undefined
        : ([t]: number[]) => {
            if (t < 0) return;
            fresh.push(t);
            flush(false);
          },
  };
  // a T5 model reads the prompt with its encoder and writes from decoder_start (not part of the reply)
  const seq2seq = m.lm instanceof T5ForConditionalGeneration;
  const [ids] = seq2seq
    ? seq2seqGenerate(m.lm as T5ForConditionalGeneration, [promptIds], o)
    : generate(m.lm as CausalLm, [promptIds], o);
  if (beams > 1) fresh.push(...ids.slice(seq2seq ? 1 : promptIds.length));
  flush(true);
  return fresh;
}

/** The torch backend when it loads (else the fallback, said on `info`). */
export async function startBackend(
  f: { backend: string; device?: string },
  info: (s: string) => void,
): Promise<string> {
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
  return chat
    ? tok.applyChatTemplate([{ role: 'user', content: prompt }], { addGenerationPrompt: true, tokenize: true })
    : tok.encode(prompt);
}

export async function generateCommand(
  f: GenerateFlags,
  out: (s: string) => void,
  info: (s: string) => void,
): Promise<void> {
  const options = samplingOptions(f); // flags are checked before anything loads
  const dtype = decodeDtype(f);
  const backend = await startBackend(f, info);
  const m = await loadCausalLm(f.model, { tokenizer: f.tokenizer, base: f.base, info, seq2seq: true });
  decodeIn(m, dtype, info);
  info(`backend: ${backend}; model: ${m.describe}`);
  let ids = promptIds(m.tok, f.prompt, Boolean(f.chat));
  // T5 reads inputs ending in EOS (its tokenizer appends </s>; the seq2seq and t5-span recipes train so)
  const eos = m.tok.eosTokenId;
  if (m.lm instanceof T5ForConditionalGeneration && eos !== undefined && ids[ids.length - 1] !== eos)
    ids = [...ids, eos];
  // a decoder continues the prompt (shown first); an encoder–decoder's output stands alone
  if (!f.chat && !(m.lm instanceof T5ForConditionalGeneration)) out(f.prompt);
  streamReply(m, ids, options, out);
  out('\n');
}
