// DistilBERT has no fixture of its own, but its encoder is BERT's without segment
// embeddings: the bert_mlm fixture's weights, renamed to DistilBERT's names (segment 0's
// embedding folded into the position embeddings), must give transformers' BERT logits for
// the fixture row whose token_type_ids are all 0.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { readSafetensors, serializeSafetensors, useBackend, writeFileDurable, type TensorToWrite } from '@anneal/core';
import { loadPretrainedSync, type DistilBertModelWithHead } from '../index.js';

const BERT = fileURLToPath(new URL('../../../../../shared/fixtures/hf/bert_mlm/', import.meta.url));

function bertToDistilBert(out: string): void {
  const { tensors } = readSafetensors(join(BERT, 'model.safetensors'));
  const cfg = JSON.parse(readFileSync(join(BERT, 'config.json'), 'utf8'));
  const w = new Map<string, TensorToWrite>();
  const put = (name: string, from: string, data?: Float32Array) => {
    const t = tensors.get(from)!;
    w.set(name, { dtype: 'F32', shape: t.shape, data: data ?? (t.data as Float32Array) });
  };
  const pos = tensors.get('bert.embeddings.position_embeddings.weight')!;
  const seg0 = (tensors.get('bert.embeddings.token_type_embeddings.weight')!.data as Float32Array).subarray(
    0,
    cfg.hidden_size,
  );
  put(
    'distilbert.embeddings.position_embeddings.weight',
    'bert.embeddings.position_embeddings.weight',
    (pos.data as Float32Array).map((v, i) => v + seg0[i % cfg.hidden_size]),
  );
  put('distilbert.embeddings.word_embeddings.weight', 'bert.embeddings.word_embeddings.weight');
  for (const s of ['weight', 'bias']) put(`distilbert.embeddings.LayerNorm.${s}`, `bert.embeddings.LayerNorm.${s}`);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const [d, b] = [`distilbert.transformer.layer.${i}`, `bert.encoder.layer.${i}`];
    const pairs: Array<[string, string]> = [
      ['attention.q_lin', 'attention.self.query'],
      ['attention.k_lin', 'attention.self.key'],
      ['attention.v_lin', 'attention.self.value'],
      ['attention.out_lin', 'attention.output.dense'],
      ['sa_layer_norm', 'attention.output.LayerNorm'],
      ['ffn.lin1', 'intermediate.dense'],
      ['ffn.lin2', 'output.dense'],
      ['output_layer_norm', 'output.LayerNorm'],
    ];
    for (const [x, y] of pairs) for (const s of ['weight', 'bias']) put(`${d}.${x}.${s}`, `${b}.${y}.${s}`);
  }
  for (const s of ['weight', 'bias']) {
    put(`vocab_transform.${s}`, `cls.predictions.transform.dense.${s}`);
    put(`vocab_layer_norm.${s}`, `cls.predictions.transform.LayerNorm.${s}`);
  }
  put('vocab_projector.bias', 'cls.predictions.bias');
  writeFileDurable(join(out, 'model.safetensors'), serializeSafetensors(w, { format: 'pt' }));
  const config = {
    architectures: ['DistilBertForMaskedLM'],
    model_type: 'distilbert',
    vocab_size: cfg.vocab_size,
    max_position_embeddings: cfg.max_position_embeddings,
    n_layers: cfg.num_hidden_layers,
    n_heads: cfg.num_attention_heads,
    dim: cfg.hidden_size,
    hidden_dim: cfg.intermediate_size,
    activation: cfg.hidden_act,
    dropout: 0.1,
    attention_dropout: 0.1,
    pad_token_id: 0,
  };
  writeFileDurable(join(out, 'config.json'), JSON.stringify(config));
}

describe('DistilBertForMaskedLM', () => {
  const io = JSON.parse(readFileSync(join(BERT, 'io.json'), 'utf8'));
  let model: DistilBertModelWithHead;
  beforeAll(async () => {
    await useBackend('cpu');
    const dir = mkdtempSync(join(tmpdir(), 'anneal-distilbert-'));
    bertToDistilBert(dir);
    model = loadPretrainedSync(dir) as DistilBertModelWithHead;
  });

  it('equals BERT on a segment-0 row (transformers logits of the bert_mlm fixture, 1e-4)', () => {
    const row = 1; // token_type_ids all 0
    expect((io.inputs.token_type_ids as number[][])[row].every((t) => t === 0)).toBe(true);
    const ids = [io.inputs.input_ids[row]];
    const mask = [io.inputs.attention_mask[row]];
    const got = tf.tidy(() =>
      model
        .forward({ inputIds: tf.tensor2d(ids, [1, 16], 'int32'), attentionMask: tf.tensor2d(mask, [1, 16], 'int32') })
        .logits.dataSync(),
    );
    const buf = readFileSync(join(BERT, io.logits.file));
    const ref = new Float32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
    const V = io.logits.shape[2];
    let max = 0;
    for (let t = 0; t < 16; t++)
      if (mask[0][t])
        for (let v = 0; v < V; v++) max = Math.max(max, Math.abs(got[t * V + v] - ref[(row * 16 + t) * V + v]));
    expect(max).toBeLessThan(1e-4);
  });

  it('round-trips through savePretrained', async () => {
    const out = mkdtempSync(join(tmpdir(), 'anneal-distilbert-'));
    await model.savePretrained(out);
    const back = loadPretrainedSync(out) as DistilBertModelWithHead;
    expect(back.hfConfig()).toMatchObject({ architectures: ['DistilBertForMaskedLM'], n_layers: 2, dim: 64 });
    for (const [n, p] of model.params)
      expect(Array.from(back.params.get(n)!.dataSync())).toEqual(Array.from(p.dataSync()));
  });
});
