// `anneal export` as a user runs it: a LoRA adapter folder is merged into its base and written
// as an ONNX folder whose logits (onnxruntime-node) equal the adapted model's; what cannot be
// exported is refused by name, and nothing is left half-written.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { anneal, expectCleanError, tinyGpt2WithAdapter } from './test-cli.js';

const T5 = fileURLToPath(new URL('../../../../shared/fixtures/hf/t5', import.meta.url));

describe('anneal export --format onnx', () => {
  it("merges a LoRA adapter into its base and writes ONNX whose logits are the adapted model's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-export-'));
    const { modelDir, adapterDir, tok, model, lora } = await tinyGpt2WithAdapter(dir);

    const out = join(dir, 'onnx-out');
    const r = anneal(['export', '--model', adapterDir, '--out', out], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /LoRA r 2 merged into .*base\) -> .*onnx-out: config.json, generation_config.json, onnx\/model.onnx/,
    );
    expect(readdirSync(out).sort()).toEqual([
      'config.json',
      'generation_config.json',
      'onnx',
      'special_tokens_map.json',
      'tokenizer.json',
      'tokenizer_config.json',
    ]);
    const session = await ort.InferenceSession.create(join(out, 'onnx', 'model.onnx'));
    const ids = [tok.encode('Call me Ishmael. Some years ago')];
    const T = ids[0].length;
    const feed: Record<string, ort.Tensor> = {
      input_ids: new ort.Tensor('int64', BigInt64Array.from(ids[0].map(BigInt)), [1, T]),
      attention_mask: new ort.Tensor('int64', new BigInt64Array(T).fill(1n), [1, T]),
      position_ids: new ort.Tensor('int64', BigInt64Array.from(ids[0].map((_, t) => BigInt(t))), [1, T]),
    };
    for (const kv of ['key', 'value'])
      feed[`past_key_values.0.${kv}`] = new ort.Tensor('float32', new Float32Array(0), [1, 2, 0, 8]);
    const got = (await session.run(feed)).logits.data as Float32Array;
    const want = tf.tidy(() => lora.forward({ inputIds: tf.tensor2d(ids, undefined, 'int32') }).logits.dataSync());
    const plain = tf.tidy(() =>
      lora.withAdapterDisabled(() =>
        model.forward({ inputIds: tf.tensor2d(ids, undefined, 'int32') }).logits.dataSync(),
      ),
    );
    let [max, moved] = [0, 0];
    for (let i = 0; i < want.length; i++) {
      max = Math.max(max, Math.abs(got[i] - want[i]));
      moved = Math.max(moved, Math.abs(want[i] - plain[i]));
    }
    expect(max).toBeLessThan(1e-4);
    expect(moved).toBeGreaterThan(0.01); // the adapter is in the exported weights

    // refused by name, nothing written
    expectCleanError(
      anneal(['export', '--model', adapterDir, '--out', out], dir),
      /onnx-out exists and is not empty/,
      /--overwrite/,
    );
    expectCleanError(
      anneal(['export', '--model', modelDir, '--format', 'gguf', '--out', join(dir, 'g')], dir),
      /--format gguf/,
    );
    expectCleanError(
      anneal(['export', '--model', T5, '--out', join(dir, 't5')], dir),
      /no tokenizer files|not supported/,
    );
    // T5 exports as two graphs (encoder_model, decoder_model_merged); its encoder alone does not
    const t5 = anneal(['export', '--model', T5, '--tokenizer', modelDir, '--out', join(dir, 't5')], dir);
    expect(t5.code, t5.stderr).toBe(0);
    expect(readdirSync(join(dir, 't5', 'onnx')).sort()).toEqual(['decoder_model_merged.onnx', 'encoder_model.onnx']);
    const encoderOnly = join(dir, 't5-encoder');
    mkdirSync(encoderOnly);
    for (const f of readdirSync(T5)) writeFileSync(join(encoderOnly, f), readFileSync(join(T5, f)));
    const cfg = JSON.parse(readFileSync(join(T5, 'config.json'), 'utf8'));
    writeFileSync(join(encoderOnly, 'config.json'), JSON.stringify({ ...cfg, architectures: ['T5EncoderModel'] }));
    expectCleanError(
      anneal(['export', '--model', encoderOnly, '--tokenizer', modelDir, '--out', join(dir, 't5e')], dir),
      /ONNX export of T5EncoderModel is not supported/,
      /supported: GPT2LMHeadModel/,
    );
    expect(existsSync(join(dir, 't5e'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('partial'))).toEqual([]);
  });
});
