// Chat templates: the Jinja `chat_template` of tokenizer_config.json rendered in
// @huggingface/jinja's sandbox (no file, network or Python access), as transformers'
// apply_chat_template does, plus the assistant-token mask SFT needs for
// assistant_only_loss: from `{% generation %}` blocks when the template has them, else
// from where each assistant message's content lands in the rendered text.
import { Template } from '@huggingface/jinja';
import { ConfigError, FormatError } from '@anneal/core';
import { renderBounded } from './template-render.js';
import type { Tokenizer } from './tokenizer.js';

export interface ChatMessage {
  role: string;
  content: string;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** End with the prompt for the assistant's next turn. */
  addGenerationPrompt?: boolean;
  /** Tool (function) schemas, for templates that render them. */
  tools?: object[];
  documents?: object[];
  /** Which of several named templates (default: "tool_use" with tools, else "default"). */
  templateName?: string;
  /** More variables for the template (e.g. enable_thinking). */
  variables?: Record<string, unknown>;
}

const GEN_START = '\uE000';
const GEN_END = '\uE001';

function pickTemplate(tok: Tokenizer, o: ChatTemplateOptions): string {
  const t = tok.config.chatTemplate;
  if (t === undefined)
    throw new ConfigError('this tokenizer has no chat_template', {
      hint: 'use a tokenizer_config.json with a chat_template, or give data.chatTemplate',
    });
  if (typeof t === 'string') return t;
  const name = o.templateName ?? (o.tools && t.tool_use ? 'tool_use' : 'default');
  if (!t[name])
    throw new ConfigError(`no chat template named ${JSON.stringify(name)}`, {
      hint: `available: ${Object.keys(t).join(', ')}`,
    });
  return t[name];
}

/** Renders the conversation; generation-block markers are kept when `markers` is true. */
function render(tok: Tokenizer, messages: ChatMessage[], o: ChatTemplateOptions, markers: boolean): string {
  let source = pickTemplate(tok, o);
  // {% generation %} is a transformers extension Jinja does not know: emit markers instead.
  source = source
    .replace(/\{%(-?)\s*generation\s*(-?)%\}/g, (_, a, b) => `{{${a} '${markers ? GEN_START : ''}' ${b}}}`)
    .replace(/\{%(-?)\s*endgeneration\s*(-?)%\}/g, (_, a, b) => `{{${a} '${markers ? GEN_END : ''}' ${b}}}`);
  const c = tok.config;
  const where = c.chatTemplateSource ?? { field: 'chat_template' };
  let template: Template;
  try {
    template = new Template(source);
  } catch (e) {
    throw new FormatError(`the chat template does not parse: ${(e as Error).message}`, where);
  }
  return renderBounded(
    template,
    {
      messages,
      add_generation_prompt: o.addGenerationPrompt ?? false,
      tools: o.tools,
      documents: o.documents,
      bos_token: c.bosToken ?? '',
      eos_token: c.eosToken ?? '',
      unk_token: c.unkToken ?? '',
      pad_token: c.padToken ?? '',
      ...o.variables,
    },
    where,
  );
}

export function renderChatTemplate(tok: Tokenizer, messages: ChatMessage[], o: ChatTemplateOptions = {}): string {
  return render(tok, messages, o, false);
}

/**
 * Token ids of the rendered conversation (special tokens come from the template only, so
 * a template that writes BOS itself gets exactly one), with 1 where a token belongs to an
 * assistant turn.
 */
export function encodeChat(
  tok: Tokenizer,
  messages: ChatMessage[],
  o: ChatTemplateOptions = {},
): { ids: number[]; assistantMask: number[]; text: string } {
  const marked = render(tok, messages, o, true);
  const spans: Array<[number, number]> = [];
  let text = '';
  let open = -1;
  for (const ch of marked) {
    if (ch === GEN_START) open = text.length;
    else if (ch === GEN_END) {
      if (open >= 0) spans.push([open, text.length]);
      open = -1;
    } else text += ch;
  }
  if (!marked.includes(GEN_START)) spans.push(...assistantSpans(tok, text, messages));
  const e = tok.encodeFull(text, undefined, { addSpecialTokens: false });
  const assistantMask = e.offsets.map(([s, t]) => (spans.some(([a, b]) => s < b && t > a) ? 1 : 0));
  return { ids: e.ids, assistantMask, text };
}

/** Where each assistant message's content, and the special token closing it, lie in the text. */
function assistantSpans(tok: Tokenizer, text: string, messages: ChatMessage[]): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  let cursor = 0;
  for (const m of messages) {
    const content = typeof m.content === 'string' ? m.content.trim() : '';
    if (!content) continue;
    const at = text.indexOf(content, cursor);
    if (at < 0) continue;
    cursor = at + content.length;
    if (m.role !== 'assistant') continue;
    let end = cursor;
    // The end-of-turn token right after (e.g. <|eot_id|>, <|im_end|>, </s>) is learned too.
    const closing = tok.addedTokens.find((t) => t.special && text.startsWith(t.content, end));
    if (closing) end += closing.content.length;
    spans.push([at, end]);
  }
  return spans;
}
