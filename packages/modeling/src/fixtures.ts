// Reading the Hugging Face reference fixtures (../shared/fixtures/hf, see its README) and
// comparing logits with them, and tiny seeded models: used by the packages' tests and the workspace's.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GPT2_DEFAULTS, type Gpt2Config } from './gpt2/config.js';
import { Gpt2LMHeadModel } from './gpt2/index.js';
import { LLAMA_DEFAULTS, type LlamaConfig } from './llama/config.js';
import { LlamaForCausalLM } from './llama/index.js';

export interface HfFixture {
  io: Record<string, any>;
  ids: number[][];
  mask: number[][];
  /** Reference logits, row-major. */
  logits: Float32Array;
  shape: number[];
}

export function readHfFixture(dir: string): HfFixture {
  const io = JSON.parse(readFileSync(join(dir, 'io.json'), 'utf8'));
  let logits: Float32Array;
  if (io.logits.values) logits = Float32Array.from((io.logits.values as number[][]).flat());
  else {
    const buf = readFileSync(join(dir, io.logits.file));
    logits = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
  }
  return { io, ids: io.inputs.input_ids, mask: io.inputs.attention_mask, logits, shape: io.logits.shape };
}

/**
 * Largest |got - reference| over the fixture's logits: every value of per-sequence logits
 * ([B, labels]); only real (unpadded) positions of per-token logits ([B, T, V]).
 * `rowOffset(b)` shifts row b of `got` (e.g. by its left padding).
 */
export function maxLogitDiff(f: HfFixture, got: ArrayLike<number>, rowOffset: (b: number) => number = () => 0): number {
  let max = 0;
  if (f.shape.length === 2) {
    for (let i = 0; i < f.logits.length; i++) max = Math.max(max, Math.abs(got[i] - f.logits[i]));
    return max;
  }
  const [B, T, V] = f.shape;
  for (let b = 0; b < B; b++)
    for (let t = 0; t < T; t++) {
      if (!f.mask[b][t]) continue;
      const g = (b * T + t + rowOffset(b)) * V;
      for (let v = 0; v < V; v++) max = Math.max(max, Math.abs(got[g + v] - f.logits[(b * T + t) * V + v]));
    }
  return max;
}

/** A small seeded GPT-2 for tests: vocabulary 61, 32 positions, 2 layers of width 64 (or `over`), no dropout. */
export function tinyGpt2(seed = 3, over: Partial<Gpt2Config> = {}): Gpt2LMHeadModel {
  return Gpt2LMHeadModel.init(
    {
      ...GPT2_DEFAULTS,
      vocabSize: 61,
      nPositions: 32,
      nEmbd: 64,
      nHead: 2,
      nLayer: 2,
      residPdrop: 0,
      embdPdrop: 0,
      attnPdrop: 0,
      ...over,
    },
    seed,
  );
}

/** A small seeded Llama for tests: vocabulary 61, 2 layers of width 64, grouped-query attention (4 heads, 2 KV). */
export function tinyLlama(seed = 3, over: Partial<LlamaConfig> = {}): LlamaForCausalLM {
  return LlamaForCausalLM.init(
    {
      ...LLAMA_DEFAULTS,
      vocabSize: 61,
      hiddenSize: 64,
      intermediateSize: 128,
      numHiddenLayers: 2,
      numAttentionHeads: 4,
      numKeyValueHeads: 2,
      maxPositionEmbeddings: 32,
      ...over,
    },
    seed,
  );
}
