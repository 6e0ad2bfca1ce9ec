// `anneal chat --model <dir|org/name|adapter dir>`: a multi-turn conversation in the
// terminal. Each turn renders the whole conversation through the tokenizer's chat template
// (as transformers' apply_chat_template with add_generation_prompt) and streams the reply.
// /reset starts over, /exit (or end of input) leaves.
import { createInterface } from 'node:readline';
import { ConfigError, type AnnealError } from '@anneal/core';
import type { ChatMessage } from '@anneal/tokenizers';
import { loadCausalLm } from './lm-loader.js';
import { decodeIn, startBackend, streamReply } from './generate-command.js';
import { decodeDtype } from './sampling-flags.js';
import { samplingOptions, type SamplingFlags } from './sampling-flags.js';

export interface ChatFlags extends SamplingFlags {
  model: string;
  base?: string;
  tokenizer?: string;
  system?: string;
  backend: string;
  device?: string;
}

export async function chatCommand(
  f: ChatFlags,
  input: NodeJS.ReadableStream,
  out: (s: string) => void,
  info: (s: string) => void,
): Promise<void> {
  const options = samplingOptions(f);
  const dtype = decodeDtype(f);
  const backend = await startBackend(f, info);
  const m = await loadCausalLm(f.model, { tokenizer: f.tokenizer, base: f.base, info });
  if (m.tok.config.chatTemplate === undefined)
    throw new ConfigError('this tokenizer has no chat template, so there is no conversation format to follow', {
      file: f.tokenizer ?? f.model,
      field: 'chat_template',
      hint: 'use a chat model (one fine-tuned with SFT on conversations), or anneal generate for plain continuation',
    });
  decodeIn(m, dtype, info);
  info(`backend: ${backend}; model: ${m.describe}`);
  info('type a message; /reset starts over, /exit leaves');
  const start: ChatMessage[] = f.system ? [{ role: 'system', content: f.system }] : [];
  let messages = [...start];
  const rl = createInterface({ input, terminal: false });
  const prompt = () => out('\nyou> ');
  prompt();
  for await (const raw of rl) {
    const line = raw.trim();
    if (line === '/exit') break;
    if (line === '/reset') {
      messages = [...start];
      info('(conversation cleared)');
      prompt();
      continue;
    }
    if (!line) {
      prompt();
      continue;
    }
    messages.push({ role: 'user', content: line });
    let ids: number[];
    try {
      ids = m.tok.applyChatTemplate(messages, { addGenerationPrompt: true, tokenize: true });
    } catch (e) {
      messages.pop();
      info(`error: ${(e as AnnealError).describe?.() ?? (e as Error).message}`);
      prompt();
      continue;
    }
    out('assistant> ');
    const reply = streamReply(m, ids, options, out);
    messages.push({
      role: 'assistant',
      content: m.tok.decode(
        reply.filter((t) => !m.eos.includes(t)),
        { skipSpecialTokens: true },
      ),
    });
    out('\n');
    prompt();
  }
  rl.close();
  out('\n');
}
