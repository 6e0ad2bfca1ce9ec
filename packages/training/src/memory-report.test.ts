// The memory line of a run's first step: its arithmetic (float32 gradients, two AdamW moments)
// and the live-byte count it is measured with.
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { useBackend } from '@anneal/core';
import { liveTensorBytes, memoryReport } from './memory-report.js';

describe('memoryReport', () => {
  beforeAll(async () => {
    await useBackend('cpu');
  });

  it('states the bytes before the step, of gradients and moments, and kept for backward; hints at checkpointing', () => {
    const line = memoryReport({
      before: 2 ** 30,
      trainable: 8_798_208, // Qwen2.5-0.5B with LoRA r 16 on all linear layers
      kept: 3 * 2 ** 30,
      tokens: 2048,
      gradientCheckpointing: false,
    });
    expect(line).toBe(
      'memory: 1024 MB of tensors before the first step; 8.80M trainable parameters add 34 MB of gradients and ' +
        '67 MB of AdamW moments; the first micro-batch (2048 tokens) kept 3072 MB for its backward pass; ' +
        'train.gradientCheckpointing: true would keep only each block input',
    );
    const on = memoryReport({
      before: 2 ** 30,
      trainable: 1e6,
      kept: 3 * 2 ** 30,
      tokens: 1,
      gradientCheckpointing: true,
    });
    expect(on).not.toContain('gradientCheckpointing');
  });

  it('liveTensorBytes counts a new tensor and forgets a disposed one', () => {
    const before = liveTensorBytes();
    const t = tf.zeros([1000]);
    expect(liveTensorBytes() - before).toBe(4000);
    t.dispose();
    expect(liveTensorBytes()).toBe(before);
  });
});
