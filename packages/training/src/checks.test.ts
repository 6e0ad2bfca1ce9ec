// The checks recipes make before training, on real models.
import { beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, useBackend } from '@anneal/core';
import { GPT2_DEFAULTS, Gpt2LMHeadModel } from '@anneal/modeling';
import { requireTokenizerFits } from './index.js';

describe('requireTokenizerFits', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it("refuses a tokenizer whose ids reach past the model's embedding rows (config.json vocab_size), naming the field", () => {
    const model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 50, nPositions: 8, nEmbd: 8, nHead: 2, nLayer: 1 },
      1,
    );
    const at = { file: 'sft.yaml', field: 'tokenizer.path' };
    expect(() => requireTokenizerFits({ vocabSize: 50 }, model, at)).not.toThrow();
    expect(() => requireTokenizerFits({ vocabSize: 40 }, model, at)).not.toThrow(); // padded vocabularies are fine
    let err: unknown;
    try {
      requireTokenizerFits({ vocabSize: 51 }, model, at);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).describe()).toMatch(
      /^sft\.yaml: tokenizer\.path: the tokenizer's ids go up to 50, and the model has 50 embeddings/,
    );
    model.dispose();
  });
});
