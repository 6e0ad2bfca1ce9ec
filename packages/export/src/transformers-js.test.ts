// The exported folder (GPT-2, Llama with grouped-query attention, Qwen3) as transformers.js (the JS inference library, from npm) loads it from
// disk with remote models off: pipeline('text-generation') decodes greedily the same tokens
// Anneal's generate() does, and its tokenizer gives Anneal's ids.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env, pipeline, type TextGenerationPipeline } from '@huggingface/transformers';
import { describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import {
  GPT2_DEFAULTS,
  Gpt2LMHeadModel,
  generate,
  initFromHfConfig,
  type CausalLm,
  type PretrainedModel,
} from '@anneal/modeling';
import { trainByteLevelBpe } from '@anneal/tokenizers';
import { exportOnnx } from './index.js';

const MOBY = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8');

const tiny = {
  gpt2: (V: number) =>
    Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: V, nPositions: 64, nLayer: 2, nHead: 2, nEmbd: 32, initializerRange: 0.4 },
      3,
    ),
  // grouped-query attention (4 query heads on 2 key/value heads), untied head
  llama: (V: number) =>
    initFromHfConfig(
      {
        model_type: 'llama',
        vocab_size: V,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        max_position_embeddings: 64,
        initializer_range: 0.3,
        tie_word_embeddings: false,
      },
      3,
    ),
  // q/k norms, tied head
  qwen3: (V: number) =>
    initFromHfConfig(
      {
        model_type: 'qwen3',
        vocab_size: V,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        num_key_value_heads: 2,
        head_dim: 16,
        max_position_embeddings: 64,
        initializer_range: 0.3,
        tie_word_embeddings: true,
      },
      3,
    ),
} satisfies Record<string, (V: number) => PretrainedModel>;

describe.each(Object.keys(tiny) as Array<keyof typeof tiny>)('an exported %s in transformers.js', (arch) => {
  it("generates Anneal's greedy continuation, token for token", async () => {
    await useBackend('cpu');
    const tok = await trainByteLevelBpe([MOBY.slice(0, 40_000)], {
      vocabSize: 400,
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
      bosToken: '<|endoftext|>',
    });
    const model = tiny[arch](400);
    const root = mkdtempSync(join(tmpdir(), 'anneal-tjs-'));
    const r = exportOnnx(model, { outDir: join(root, `anneal-${arch}`), tokenizer: tok });
    expect(r.files).toEqual([
      'config.json',
      'generation_config.json',
      'onnx/model.onnx',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    env.allowRemoteModels = false;
    env.localModelPath = root;
    const gen = (await pipeline('text-generation', `anneal-${arch}`, { dtype: 'fp32' })) as TextGenerationPipeline;
    for (const prompt of ['Call me Ishmael.', 'The whale']) {
      const ids = tok.encode(prompt);
      expect(Array.from(gen.tokenizer.encode(prompt))).toEqual(ids);
      const [want] = generate(model as unknown as CausalLm, [ids], { maxNewTokens: 20, eosTokenId: tok.eosTokenId });
      const out = (await gen(prompt, { max_new_tokens: 20, do_sample: false })) as Array<{ generated_text: string }>;
      expect(want.length).toBeGreaterThan(ids.length + 5); // a real continuation, not an immediate EOS
      expect(out[0].generated_text).toBe(prompt + tok.decode(want.slice(ids.length), { skipSpecialTokens: true }));
    }
    await gen.dispose();
    model.dispose();
  });
});
