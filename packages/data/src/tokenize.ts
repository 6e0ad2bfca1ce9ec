// Examples to token ids, as TRL's trainers prepare them: prompt and completion tokenized
// separately and concatenated (so a completion-only loss masks exactly the prompt),
// conversations through the tokenizer's chat template (assistant-only masks from it),
// preference pairs as a shared prompt plus two responses, EOS learned at the end; an unpaired
// (KTO) example as a pair whose two responses are its one completion.
import type { ChatMessage, Example } from './formats.js';

/** What data preparation needs from a tokenizer (@anneal/tokenizers' Tokenizer has it). */
export interface DataTokenizer {
  encode(text: string, o?: { addSpecialTokens?: boolean }): number[];
  encodeChat(
    messages: ChatMessage[],
    o?: { addGenerationPrompt?: boolean },
  ): { ids: number[]; assistantMask: number[] };
  applyChatTemplate(messages: ChatMessage[], o: { addGenerationPrompt?: boolean; tokenize: true }): number[];
  readonly eosTokenId: number | undefined;
}

export interface TokenizeOptions {
  /** Longest sequence kept (prompt + response for pairs). */
  maxLength?: number;
  /** Which end survives truncation. */
  truncation?: 'keep_start' | 'keep_end';
  /** preference: how much of maxLength the prompt keeps when a pair is too long (TRL's max_prompt_length). */
  maxPromptLength?: number;
  /** Append EOS to texts and completions that do not end with it (so the model learns to stop). */
  addEos?: boolean;
  /** prompt-completion: loss on the completion only (TRL's completion_only_loss, default true). */
  completionOnlyLoss?: boolean;
  /** conversational: loss on assistant turns only (TRL's assistant_only_loss, default false). */
  assistantOnlyLoss?: boolean;
}

/** A tokenized sequence: ids, and 1 where a token is a loss target. */
export interface TokenizedSequence {
  inputIds: Int32Array;
  lossMask: Uint8Array;
}

export type Tokenized =
  | ({ kind: 'sequence' } & TokenizedSequence)
  | { kind: 'classification'; inputIds: Int32Array; label: number }
  | { kind: 'preference'; prompt: Int32Array; chosen: Int32Array; rejected: Int32Array; margin?: number }
  | { kind: 'unpaired'; prompt: Int32Array; completion: Int32Array; label: boolean };

/** Thrown when a sequence is longer than maxLength (the caller applies on_bad_row). */
export class TooLong extends Error {
  constructor(
    readonly length: number,
    readonly maxLength: number,
  ) {
    super(`sequence of ${length} tokens is longer than maxLength ${maxLength}`);
  }
}

function withEos(ids: number[], tok: DataTokenizer, add: boolean): number[] {
  const eos = tok.eosTokenId;
  return add && eos !== undefined && ids[ids.length - 1] !== eos ? [...ids, eos] : ids;
}

/** Keeps maxLength tokens of ids (and of the parallel mask) from the start or the end. */
export function truncate<T extends { length: number; slice(a: number, b?: number): T }>(
  x: T,
  maxLength: number,
  side: 'keep_start' | 'keep_end',
): T {
  if (x.length <= maxLength) return x;
  return side === 'keep_start' ? x.slice(0, maxLength) : x.slice(x.length - maxLength);
}

export function tokenizeExample(
  ex: Example,
  tok: DataTokenizer,
  o: TokenizeOptions = {},
  allowTruncate = false,
): Tokenized {
  const addEos = o.addEos ?? true;
  const side = o.truncation ?? 'keep_start';
  const fit = (ids: number[], mask: number[]): Tokenized => {
    if (o.maxLength !== undefined && ids.length > o.maxLength) {
      if (!allowTruncate) throw new TooLong(ids.length, o.maxLength);
      return {
        kind: 'sequence',
        inputIds: truncate(Int32Array.from(ids), o.maxLength, side),
        lossMask: truncate(Uint8Array.from(mask), o.maxLength, side),
      };
    }
    return { kind: 'sequence', inputIds: Int32Array.from(ids), lossMask: Uint8Array.from(mask) };
  };
  switch (ex.kind) {
    case 'text': {
      const ids = withEos(tok.encode(ex.text), tok, addEos);
      return fit(
        ids,
        ids.map(() => 1),
      );
    }
    case 'prompt-completion': {
      const p = tok.encode(ex.prompt);
      const c = withEos(tok.encode(ex.completion, { addSpecialTokens: false }), tok, addEos);
      const only = o.completionOnlyLoss ?? true;
      return fit([...p, ...c], [...p.map(() => (only ? 0 : 1)), ...c.map(() => 1)]);
    }
    case 'conversational': {
      const { ids, assistantMask } = tok.encodeChat(ex.messages);
      return fit(ids, o.assistantOnlyLoss ? assistantMask : ids.map(() => 1));
    }
    case 'classification': {
      let ids = tok.encode(ex.text);
      if (o.maxLength !== undefined && ids.length > o.maxLength) {
        if (!allowTruncate) throw new TooLong(ids.length, o.maxLength);
        ids = Array.from(truncate(Int32Array.from(ids), o.maxLength, side));
      }
      return { kind: 'classification', inputIds: Int32Array.from(ids), label: ex.label };
    }
    case 'unpaired-preference': {
      const t = tokenizeExample(
        { kind: 'preference', prompt: ex.prompt, chosen: ex.completion, rejected: ex.completion },
        tok,
        o,
        allowTruncate,
      ) as Extract<Tokenized, { kind: 'preference' }>;
      return { kind: 'unpaired', prompt: t.prompt, completion: t.chosen, label: ex.label };
    }
    case 'preference': {
      // The prompt as the model sees it before a reply; each response is what follows.
      const conv = Array.isArray(ex.chosen);
      const prompt = conv
        ? tok.applyChatTemplate(ex.prompt as ChatMessage[], { addGenerationPrompt: true, tokenize: true })
        : tok.encode(ex.prompt as string);
      const response = (r: string | ChatMessage[]) => {
        if (!conv) return withEos(tok.encode(r as string, { addSpecialTokens: false }), tok, addEos);
        const full = tok.applyChatTemplate([...(ex.prompt as ChatMessage[]), ...(r as ChatMessage[])], {
          tokenize: true,
        });
        return full.slice(prompt.length);
      };
      let [chosen, rejected] = [response(ex.chosen), response(ex.rejected)];
      let p = prompt;
      const longest = p.length + Math.max(chosen.length, rejected.length);
      if (o.maxLength !== undefined && longest > o.maxLength) {
        if (!allowTruncate) throw new TooLong(longest, o.maxLength);
        const longer = Math.max(chosen.length, rejected.length);
        if (o.maxPromptLength !== undefined) {
          // TRL's DPO: the prompt keeps maxPromptLength tokens (its start or end by
          // truncation), then the responses keep maxLength - maxPromptLength.
          p = Array.from(truncate(Int32Array.from(p), o.maxPromptLength, side));
          if (p.length + longer > o.maxLength)
            [chosen, rejected] = [
              chosen.slice(0, o.maxLength - o.maxPromptLength),
              rejected.slice(0, o.maxLength - o.maxPromptLength),
            ];
        } else {
          // No prompt budget: shorten the prompt from the left first, then the responses from the right.
          p = p.slice(Math.max(0, p.length - Math.max(0, o.maxLength - longer)));
          const room = Math.max(0, o.maxLength - p.length);
          [chosen, rejected] = [chosen.slice(0, room), rejected.slice(0, room)];
        }
      }
      return {
        kind: 'preference',
        prompt: Int32Array.from(p),
        chosen: Int32Array.from(chosen),
        rejected: Int32Array.from(rejected),
        ...(ex.margin === undefined ? {} : { margin: ex.margin }),
      };
    }
  }
}
