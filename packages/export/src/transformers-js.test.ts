// The exported folder as transformers.js (the JS inference library, from npm) loads it from
// disk with remote models off: pipeline('text-generation') decodes greedily the same tokens
// Anneal's generate() does, and its tokenizer gives Anneal's ids.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { env, pipeline, type TextGenerationPipeline } from '@huggingface/transformers';
import { describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel, generate } from '@anneal/modeling';
import { trainByteLevelBpe } from '@anneal/tokenizers';
import { exportOnnx } from './index.js';

const MOBY = readFileSync(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8');

describe('an exported GPT-2 in transformers.js', () => {
  it("generates Anneal's greedy continuation, token for token", async () => {
    await useBackend('cpu');
    const tok = await trainByteLevelBpe([MOBY.slice(0, 40_000)], {
      vocabSize: 400,
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
      bosToken: '<|endoftext|>',
    });
    const model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 400, nPositions: 64, nLayer: 2, nHead: 2, nEmbd: 32, initializerRange: 0.4 },
      3,
    );
    const root = mkdtempSync(join(tmpdir(), 'anneal-tjs-'));
    const r = exportOnnx(model, { outDir: join(root, 'anneal-gpt2'), tokenizer: tok });
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
    const gen = (await pipeline('text-generation', 'anneal-gpt2', { dtype: 'fp32' })) as TextGenerationPipeline;
    for (const prompt of ['Call me Ishmael.', 'The whale']) {
      const ids = tok.encode(prompt);
      expect(Array.from(gen.tokenizer.encode(prompt))).toEqual(ids);
      const [want] = generate(model, [ids], { maxNewTokens: 20, eosTokenId: tok.eosTokenId });
      const out = (await gen(prompt, { max_new_tokens: 20, do_sample: false })) as Array<{ generated_text: string }>;
      expect(want.length).toBeGreaterThan(ids.length + 5); // a real continuation, not an immediate EOS
      expect(out[0].generated_text).toBe(prompt + tok.decode(want.slice(ids.length), { skipSpecialTokens: true }));
    }
    await gen.dispose();
  });
});
