// `anneal generate --model <dir|org/name> --prompt "..."`: streams the continuation.
import { AnnealError, ConfigError, useBackend } from '@anneal/core';
import { generate, loadPretrained, type CausalLm } from '@anneal/modeling';
import { loadTokenizerSync } from '@anneal/tokenizers';
import { registerTorchBackend } from '@anneal/backend-torch';
import { requireTokenizerFits } from '@anneal/training';

export interface GenerateFlags {
  model: string;
  tokenizer?: string;
  prompt: string;
  maxNewTokens: string;
  sample?: boolean;
  temperature?: string;
  topK?: string;
  topP?: string;
  repetitionPenalty?: string;
  numBeams?: string;
  seed?: string;
  backend: string;
  device?: string;
}

const num = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n)) throw new ConfigError(`${flag} expects a number, got ${JSON.stringify(v)}`);
  return n;
};

export async function generateCommand(f: GenerateFlags, out: (s: string) => void, info: (s: string) => void): Promise<void> {
  try {
    registerTorchBackend({ device: f.device, warn: info });
  } catch (e) {
    if (f.backend === 'torch' || (f.device && f.device !== 'cpu')) throw e;
    info(`torch backend unavailable: ${e instanceof AnnealError ? e.message : (e as Error).message}`);
  }
  const backend = await useBackend(f.backend as never);
  const model = await loadPretrained(f.model);
  info(`backend: ${backend.name}; model: ${f.model} (${model.modelType}, ${(model.numParameters / 1e6).toFixed(1)}M parameters)`);
  if (!('maxPositions' in model) || model.modelType === 'bert' || model.modelType === 'distilbert' || /ForSequenceClassification/.test(String((model.hfConfig().architectures as string[])[0]))) {
    throw new ConfigError(`${f.model} is not a causal language model (${String((model.hfConfig().architectures as string[])[0])})`, { hint: 'use a GPT-2, Llama, Qwen2 or Mistral checkpoint' });
  }
  const tok = loadTokenizerSync(f.tokenizer ?? f.model);
  requireTokenizerFits(tok, model, { file: f.tokenizer ?? f.model, field: '--tokenizer' });
  const prompt = tok.encode(f.prompt);
  const beams = num(f.numBeams, '--num-beams') ?? 1;
  // Stream: after each token, print what the decoded continuation gained (held back while
  // it ends inside a multi-byte character).
  let shown = '';
  const fresh: number[] = [];
  const flush = (final: boolean) => {
    const text = tok.decode(fresh, { skipSpecialTokens: true });
    if (!final && text.endsWith('\ufffd')) return;
    out(text.slice(shown.length));
    shown = text;
  };
  out(f.prompt);
  const [ids] = generate(model as unknown as CausalLm, [prompt], {
    maxNewTokens: num(f.maxNewTokens, '--max-new-tokens')!,
    doSample: Boolean(f.sample),
    temperature: num(f.temperature, '--temperature'),
    topK: num(f.topK, '--top-k'),
    topP: num(f.topP, '--top-p'),
    repetitionPenalty: num(f.repetitionPenalty, '--repetition-penalty'),
    numBeams: beams,
    seed: num(f.seed, '--seed'),
    eosTokenId: tok.eosTokenId,
    // Stream: print what the decoded continuation gained (whole characters only).
    onToken:
      beams > 1
        ? undefined
        : ([t]) => {
            if (t < 0) return;
            fresh.push(t);
            flush(false);
          },
  });
  if (beams > 1) fresh.push(...ids.slice(prompt.length));
  flush(true);
  out('\n');
}
