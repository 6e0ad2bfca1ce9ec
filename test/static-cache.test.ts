// Generation through the static KV cache (preallocated, written in place; on the torch backend
// the decode step recorded once and replayed natively) against the growing cache it replaces,
// token for token, on every transformers fixture family: greedy, seeded sampling with the
// processors, beam search, left-padded batches; and no tensor growth over a long generation.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADDON_PATH, registerTorchBackend, type TorchBackend } from '@anneal/backend-torch';
import { Rng, runAnnealKernel, useBackend } from '@anneal/core';
import { loadAdapter } from '@anneal/peft-lora';
import {
  generate,
  loadPretrainedSync,
  processLogits,
  softmax,
  StaticKvCache,
  type CausalLm,
  type GenerateOptions,
  type GenerateStats,
} from '@anneal/modeling';

const FIXTURES = fileURLToPath(new URL('../../shared/fixtures/hf/', import.meta.url));
const FAMILIES = ['gpt2', 'llama', 'qwen3', 'mistral', 'smollm3', 'phi3', 'gemma3'];
const IDS = Array.from({ length: 16 }, (_, i) => (i * 37 + 11) % 1000);
// two prompts of different lengths (the first left-padded); 9 + 10 positions pass the
// 8-token sliding windows of the mistral and gemma3 fixtures
const PROMPTS = [IDS.slice(0, 5), IDS.slice(3, 12)];
const load = (name: string) => loadPretrainedSync(join(FIXTURES, name)) as unknown as CausalLm & { dispose(): void };

const MODES: Array<[string, GenerateOptions]> = [
  ['greedy', { maxNewTokens: 10, padTokenId: 0 }],
  [
    'sampling (temperature, top-k, top-p, repetition penalty)',
    {
      maxNewTokens: 10,
      padTokenId: 0,
      doSample: true,
      temperature: 0.8,
      topK: 50,
      topP: 0.9,
      repetitionPenalty: 1.2,
      seed: 3,
    },
  ],
  // without a repetition penalty the torch backend draws on the device (AnnealSampleTokens)
  [
    'sampling (temperature, top-k, top-p, min-p)',
    { maxNewTokens: 10, padTokenId: 0, doSample: true, temperature: 0.7, topK: 40, topP: 0.8, minP: 0.05, seed: 9 },
  ],
  ['sampling (temperature)', { maxNewTokens: 10, padTokenId: 0, doSample: true, temperature: 1.3, seed: 4 }],
  [
    'greedy, no repeated 2-grams, bad words',
    { maxNewTokens: 10, padTokenId: 0, noRepeatNgramSize: 2, badWordsIds: [[7], [11, 12]] },
  ],
  ['beam search', { maxNewTokens: 6, padTokenId: 0, numBeams: 3, numReturnSequences: 2 }],
];

function compareCaches(name: string, expectReplay: boolean): void {
  const model = load(name);
  try {
    expect(model.staticCache).toBeDefined();
    for (const [mode, o] of MODES) {
      const stats: GenerateStats = {};
      const [lpFixed, lpGrowing]: number[][][] = [[], []];
      const logprobs = !o.numBeams;
      const fixed = generate(model, PROMPTS, {
        ...o,
        cache: 'static',
        stats,
        tokenLogprobs: logprobs ? lpFixed : undefined,
      });
      const growing = generate(model, PROMPTS, {
        ...o,
        cache: 'dynamic',
        tokenLogprobs: logprobs ? lpGrowing : undefined,
      });
      expect(stats.cache, mode).toBe('static');
      expect(fixed, `${name} ${mode}`).toEqual(growing);
      // log-probs of the chosen tokens: from the device's draw or JS's, the same within float32
      lpFixed.forEach((row, b) => row.forEach((v, i) => expect(Math.abs(v - lpGrowing[b][i])).toBeLessThan(1e-4)));
      if (logprobs) expect(lpFixed.map((r) => r.length)).toEqual(fixed.map((r, b) => r.length - PROMPTS[b].length));
      if (expectReplay && model.staticCache!.replayable) expect(stats.replayed, `${name} ${mode}`).toBeGreaterThan(0);
      if (!expectReplay) expect(stats.replayed).toBe(0);
    }
    // 4 rows (the torch backend's few-row products) and 17 (the head's weight kept transposed)
    const four = [...PROMPTS, IDS.slice(1, 4), IDS.slice(6, 16)];
    const seventeen = Array.from({ length: 17 }, (_, i) => IDS.slice(i % 8, 8 + (i % 7)));
    for (const rows of [four, seventeen])
      for (const o of [MODES[0][1], MODES[3][1]])
        expect(generate(model, rows, { ...o, cache: 'static' }), `${name} ${rows.length} rows`).toEqual(
          generate(model, rows, { ...o, cache: 'dynamic' }),
        );
    // each prompt alone gives what it gets in the left-padded batch
    const greedy: GenerateOptions = { ...MODES[0][1], cache: 'static' };
    const together = generate(model, PROMPTS, greedy);
    PROMPTS.forEach((p, i) => expect(generate(model, [p], greedy)[0]).toEqual(together[i]));
  } finally {
    model.dispose();
  }
}

function cacheWrites(): void {
  tf.tidy(() => {
    const cache = new StaticKvCache(2, 5);
    // batch row b holds v + 10 b
    const rows = (v: number) => tf.add(tf.fill([2, 1, 2, 3], v), tf.reshape(tf.tensor1d([0, 10]), [2, 1, 1, 1]));
    cache.write(0, rows(1), rows(-1), tf.tensor1d([0], 'int32'));
    cache.length = 2;
    const { key, value } = cache.write(0, rows(2), rows(-2), tf.tensor1d([2], 'int32'));
    expect(key.arraySync()[1][0].map((r) => r[0])).toEqual([11, 11, 12, 12, 0]);
    expect(value.arraySync()[0][0].map((r) => r[0])).toEqual([-1, -1, -2, -2, 0]);
    cache.length = 4;
    expect(() => cache.write(0, rows(3), rows(3), tf.tensor1d([4], 'int32'))).toThrow(/writing \[2,1,2,3\] at 4/);
    cache.select([1, 1]); // both rows become row 1
    const kept = cache.layers[0]!.key.arraySync();
    expect(kept[0][0].map((r) => r[0])).toEqual([11, 11, 12, 12, 0]);
    expect(kept[1][0].map((r) => r[0])).toEqual([11, 11, 12, 12, 0]);
    cache.dispose();
  });
}

describe('static KV cache (cpu backend: tfjs ops)', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });
  for (const name of FAMILIES)
    it(`${name}: static cache = growing cache, token for token`, () => compareCaches(name, false));

  it(
    'writes rows at the cache index and keeps the rest; reorders rows by index (beams); refuses to overflow',
    cacheWrites,
  );
});

const required = process.env.CI === 'true' || Boolean(process.env.ANNEAL_REQUIRE_TORCH);
const d = existsSync(ADDON_PATH) || required ? describe : describe.skip;

d('static KV cache (torch backend: written in place, decode step replayed)', () => {
  let backend: TorchBackend;
  beforeAll(async () => {
    registerTorchBackend({ warn: () => undefined });
    await useBackend('torch', {});
    backend = tf.backend() as TorchBackend;
  });
  afterAll(async () => {
    await useBackend('cpu');
  });

  it('writes rows in place at the cache index; reorders rows in place (beams); refuses to overflow', cacheWrites);

  for (const name of FAMILIES)
    it(`${name}: static cache with native replay = growing cache, token for token`, () => compareCaches(name, true));

  it('the device sampler draws what processLogits + the JS draw pick, from the same 32-bit words', () => {
    const [B, V] = [24, 64];
    const rng = new Rng(17);
    const rows = Array.from({ length: B }, (_, b) =>
      Float32Array.from({ length: V }, (_, i) =>
        b % 3 === 0 && i % 5 === 0 ? 4 : 3 * Math.sin(i * 1.7 + b) + (i === b ? 6 : 0),
      ),
    );
    const words = Array.from({ length: B }, (_, b) => (b === 0 ? 0 : b === 1 ? 0xffffffff : rng.nextUint32()));
    const settings: GenerateOptions[] = [
      { maxNewTokens: 1, doSample: true },
      { maxNewTokens: 1, doSample: true, temperature: 0.7 },
      { maxNewTokens: 1, doSample: true, temperature: 1.5, topK: 7 },
      { maxNewTokens: 1, doSample: true, topP: 0.6 },
      { maxNewTokens: 1, doSample: true, temperature: 0.9, topK: 20, topP: 0.9, minP: 0.05 },
    ];
    for (const o of settings) {
      // the JS path's definition: processLogits, then r = word / 2^32 walked down the float64 probabilities
      const want = rows.map((row, b) => {
        const s = processLogits(row, [], 0, o);
        const probs = softmax(s);
        let r = (words[b] >>> 0) / 4294967296;
        for (let i = 0; i < V; i++) if ((r -= probs[i]) <= 0 && probs[i] > 0) return [i, Math.log(probs[i])];
        return [-1, 0];
      });
      const [ids, logprobs] = tf.tidy(() =>
        runAnnealKernel(
          'AnnealSampleTokens',
          {
            logits: tf.tensor2d(
              rows.flatMap((r) => Array.from(r)),
              [B, V],
            ),
            words: tf.tensor1d(
              words.map((w) => w | 0),
              'int32',
            ),
          },
          { temperature: o.temperature ?? 1, topK: o.topK ?? 0, topP: o.topP ?? 1, minP: o.minP ?? 0 },
        ).map((t) => Array.from(t.dataSync())),
      );
      expect(ids, JSON.stringify(o)).toEqual(want.map((w) => w[0]));
      logprobs.forEach((lp, b) => expect(Math.abs(lp - want[b][1])).toBeLessThan(1e-5));
    }
  });

  it("a LoRA model (PEFT's qwen3 adapter): static cache with native replay = growing cache", () => {
    const lora = loadAdapter(load('qwen3') as never, join(FIXTURES, 'qwen3_lora')) as unknown as CausalLm & {
      dispose(): void;
    };
    try {
      for (const [mode, o] of MODES.slice(0, 4)) {
        const stats: GenerateStats = {};
        const fixed = generate(lora, PROMPTS, { ...o, stats });
        expect(stats.cache).toBe('static'); // the torch backend's default
        expect(fixed, mode).toEqual(generate(lora, PROMPTS, { ...o, cache: 'dynamic' }));
        expect(stats.replayed, mode).toBeGreaterThan(0);
      }
    } finally {
      lora.dispose();
    }
  });

  it('the replayed decode step gives the dispatched one, and nothing grows over 100 tokens', () => {
    const model = load('llama');
    try {
      const o: GenerateOptions = { maxNewTokens: 100, padTokenId: 0, doSample: true, temperature: 0.9, seed: 5 };
      const dispatched = generate(model, PROMPTS, { ...o, replay: false });
      const counts: number[] = [];
      const stats: GenerateStats = {};
      const before = tf.memory().numTensors;
      const replayed = generate(model, PROMPTS, { ...o, stats, onToken: () => counts.push(tf.memory().numTensors) });
      expect(replayed).toEqual(dispatched);
      expect(stats.replayed).toBeGreaterThan(90);
      expect(new Set(counts.slice(3)).size).toBe(1); // flat once the cache is allocated and the step recorded
      expect(tf.memory().numTensors).toBe(before);
      expect(backend.nativeCount()).toBe(backend.numDataIds());
    } finally {
      model.dispose();
    }
  });
});
