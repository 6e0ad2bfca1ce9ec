// BERT (Devlin et al., 2019), as transformers' BertModel, BertForMaskedLM and
// BertForSequenceClassification: word + position + segment embeddings, post-LayerNorm
// blocks of bidirectional self-attention and a GELU MLP; an MLM head tied to the word
// embeddings, or a tanh pooler over [CLS] and a linear classifier.
import * as tf from '@tensorflow/tfjs-core';
import { checkpointed, deriveSeed } from '@anneal/core';
import { tidy } from '../generate.js';
import { applyLayer, trainableOf, type LayerSpec, type Modules } from '../layers.js';
import { attention, attentionProbs, gelu, layerNorm } from '../ops.js';
import { attentionBias, defaultPositions, type ForwardArgs } from '../types.js';
import type { BertConfig } from './config.js';

export type Params = Map<string, tf.Variable>;
export type BertHead = 'mlm' | 'classifier';

export function bertParamShapes(c: BertConfig, head: BertHead, numLabels = 2): Array<[string, number[]]> {
  const [C, I] = [c.hiddenSize, c.intermediateSize];
  const s: Array<[string, number[]]> = [
    ['bert.embeddings.word_embeddings.weight', [c.vocabSize, C]],
    ['bert.embeddings.position_embeddings.weight', [c.maxPositionEmbeddings, C]],
    ['bert.embeddings.token_type_embeddings.weight', [c.typeVocabSize, C]],
    ['bert.embeddings.LayerNorm.weight', [C]],
    ['bert.embeddings.LayerNorm.bias', [C]],
  ];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const l = `bert.encoder.layer.${i}`;
    for (const m of ['query', 'key', 'value'])
      s.push([`${l}.attention.self.${m}.weight`, [C, C]], [`${l}.attention.self.${m}.bias`, [C]]);
    s.push(
      [`${l}.attention.output.dense.weight`, [C, C]],
      [`${l}.attention.output.dense.bias`, [C]],
      [`${l}.attention.output.LayerNorm.weight`, [C]],
      [`${l}.attention.output.LayerNorm.bias`, [C]],
    );
    s.push(
      [`${l}.intermediate.dense.weight`, [I, C]],
      [`${l}.intermediate.dense.bias`, [I]],
      [`${l}.output.dense.weight`, [C, I]],
      [`${l}.output.dense.bias`, [C]],
      [`${l}.output.LayerNorm.weight`, [C]],
      [`${l}.output.LayerNorm.bias`, [C]],
    );
  }
  if (head === 'mlm') {
    s.push(
      ['cls.predictions.transform.dense.weight', [C, C]],
      ['cls.predictions.transform.dense.bias', [C]],
      ['cls.predictions.transform.LayerNorm.weight', [C]],
      ['cls.predictions.transform.LayerNorm.bias', [C]],
      ['cls.predictions.bias', [c.vocabSize]],
    );
  } else {
    s.push(
      ['bert.pooler.dense.weight', [C, C]],
      ['bert.pooler.dense.bias', [C]],
      ['classifier.weight', [numLabels, C]],
      ['classifier.bias', [numLabels]],
    );
  }
  return s;
}

/** BERT's layers: three embedding tables (word tied to the MLM decoder), six projections per block, the head's. */
export function bertLayers(c: BertConfig, head: BertHead): LayerSpec[] {
  const specs: LayerSpec[] = [
    { kind: 'embedding', name: 'bert.embeddings.word_embeddings', tiedToHead: head === 'mlm' },
    { kind: 'embedding', name: 'bert.embeddings.position_embeddings', tiedToHead: false },
    { kind: 'embedding', name: 'bert.embeddings.token_type_embeddings', tiedToHead: false },
  ];
  const projection = (name: string, role: 'hidden' | 'head' | 'pooler' = 'hidden'): LayerSpec => ({
    kind: 'projection',
    name,
    layout: 'linear',
    role,
  });
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const l = `bert.encoder.layer.${i}`;
    for (const m of ['attention.self.query', 'attention.self.key', 'attention.self.value', 'attention.output.dense'])
      specs.push(projection(`${l}.${m}`));
    specs.push(projection(`${l}.intermediate.dense`), projection(`${l}.output.dense`));
  }
  if (head === 'mlm') specs.push(projection('cls.predictions.transform.dense'));
  else specs.push(projection('bert.pooler.dense', 'pooler'), projection('classifier', 'head'));
  return specs;
}

/** Module names of the encoder blocks. */
export const bertBlocks = (c: BertConfig) =>
  Array.from({ length: c.numHiddenLayers }, (_, i) => `bert.encoder.layer.${i}`);

/** BertPreTrainedModel._init_weights: N(0, 0.02) weights, zero biases, unit LayerNorm gains. */
export function initBertParams(c: BertConfig, head: BertHead, numLabels: number, seed: number): Params {
  const params: Params = new Map();
  bertParamShapes(c, head, numLabels).forEach(([name, shape], i) => {
    const init = /LayerNorm\.weight$/.test(name)
      ? tf.ones(shape)
      : /(bias)$/.test(name)
        ? tf.zeros(shape)
        : tf.randomNormal(shape, 0, c.initializerRange, 'float32', deriveSeed(seed, i));
    params.set(name, tf.variable(init, true));
    init.dispose();
  });
  return params;
}

export function activation(x: tf.Tensor, act: BertConfig['hiddenAct']): tf.Tensor {
  return act === 'relu' ? tf.relu(x) : gelu(x, act === 'gelu' ? 'none' : 'tanh');
}

/** The encoder: sequence output [B, T, C] (plus hidden states and attentions on request). */
export function bertEncoder(
  c: BertConfig,
  m: Modules,
  a: ForwardArgs,
): { hidden: tf.Tensor3D; hiddenStates: tf.Tensor3D[]; attentions: tf.Tensor4D[] } {
  const [B, T] = a.inputIds.shape;
  const C = c.hiddenSize;
  const H = c.numAttentionHeads;
  const D = C / H;
  const get = (n: string) => m.params.get(n)!;
  const linear = (name: string, x: tf.Tensor) => applyLayer(m, name, x); // nn.Linear: x @ W^T + b
  const training = a.training ?? false;
  const drop = (x: tf.Tensor, rate: number, ...site: number[]) =>
    training && rate > 0 ? tf.dropout(x, rate, undefined, deriveSeed(a.dropoutSeed ?? 0, ...site)) : x;

  const parts = [
    applyLayer(m, 'bert.embeddings.word_embeddings', a.inputIds),
    applyLayer(m, 'bert.embeddings.position_embeddings', a.positionIds ?? defaultPositions(B, T, 0)),
  ];
  // Segment embeddings (DistilBERT has none).
  if (m.layers.has('bert.embeddings.token_type_embeddings'))
    parts.push(applyLayer(m, 'bert.embeddings.token_type_embeddings', a.tokenTypeIds ?? tf.zerosLike(a.inputIds)));
  const emb = tf.addN(parts); // [B, T, C]
  let x = drop(
    layerNorm(emb, get('bert.embeddings.LayerNorm.weight'), get('bert.embeddings.LayerNorm.bias'), c.layerNormEps),
    c.hiddenDropoutProb,
    -1,
  ) as tf.Tensor3D;
  const attnBias = attentionBias(B, T, 0, a.attentionMask, false, a.documentIds); // padding only: [B|1, 1, T, T]
  const checkpointing = Boolean(a.gradientCheckpointing) && training && !a.outputAttentions;
  const hiddenStates: tf.Tensor3D[] = [];
  const attentions: tf.Tensor4D[] = [];
  for (let i = 0; i < c.numHiddenLayers; i++) {
    const l = `bert.encoder.layer.${i}`;
    if (a.outputHiddenStates) hiddenStates.push(x);
    // One block, a function of its input (what activation checkpointing recomputes).
    const layer = (x: tf.Tensor, [bias]: tf.Tensor[]) => {
      const heads = (t: tf.Tensor) => tf.transpose(tf.reshape(t, [B, T, H, D]), [0, 2, 1, 3]); // [B, H, T, D]
      const [q, k, v] = ['query', 'key', 'value'].map((name) => heads(linear(`${l}.attention.self.${name}`, x)));
      const scale = 1 / Math.sqrt(D);
      const dropProbs =
        training && c.attentionProbsDropoutProb > 0
          ? { rate: c.attentionProbsDropoutProb, seed: deriveSeed(a.dropoutSeed ?? 0, i, 0) }
          : undefined;
      const ctx = tf.reshape(tf.transpose(attention(q, k, v, bias, scale, dropProbs), [0, 2, 1, 3]), [B, T, C]); // [B, T, C]
      // Post-LN: LayerNorm(x + sublayer(x)).
      const attnOut = layerNorm(
        tf.add(drop(linear(`${l}.attention.output.dense`, ctx), c.hiddenDropoutProb, i, 1), x),
        get(`${l}.attention.output.LayerNorm.weight`),
        get(`${l}.attention.output.LayerNorm.bias`),
        c.layerNormEps,
      );
      const inner = activation(linear(`${l}.intermediate.dense`, attnOut), c.hiddenAct); // [B, T, I]
      const y = layerNorm(
        tf.add(drop(linear(`${l}.output.dense`, inner), c.hiddenDropoutProb, i, 2), attnOut),
        get(`${l}.output.LayerNorm.weight`),
        get(`${l}.output.LayerNorm.bias`),
        c.layerNormEps,
      );
      return [y, a.outputAttentions ? attentionProbs(q, k, bias, scale) : undefined] as const;
    };
    const [out, probs] = checkpointing
      ? [tidy(() => checkpointed((xi, ts) => layer(xi, ts)[0], x, [attnBias], trainableOf(m, l))), undefined]
      : tidy(() => layer(x, [attnBias]));
    x = out as tf.Tensor3D;
    if (probs) attentions.push(probs);
  }
  if (a.outputHiddenStates) hiddenStates.push(x);
  return { hidden: x, hiddenStates, attentions };
}

/** BertForMaskedLM's head: transform (dense, activation, LayerNorm), then the tied decoder: [B, T, V]. */
export function bertMlmLogits(c: BertConfig, m: Modules, hidden: tf.Tensor3D): tf.Tensor3D {
  const [B, T, C] = hidden.shape;
  const p = m.params;
  const h = layerNorm(
    activation(applyLayer(m, 'cls.predictions.transform.dense', hidden), c.hiddenAct),
    p.get('cls.predictions.transform.LayerNorm.weight')!,
    p.get('cls.predictions.transform.LayerNorm.bias')!,
    c.layerNormEps,
  );
  const logits = tf.add(
    tf.matMul(tf.reshape(h, [B * T, C]), p.get('bert.embeddings.word_embeddings.weight')!, false, true),
    p.get('cls.predictions.bias')!,
  );
  return tf.reshape(logits, [B, T, c.vocabSize]);
}

/** BertForSequenceClassification's head: tanh pooler over [CLS], dropout, classifier: [B, numLabels]. */
export function bertClassifierLogits(c: BertConfig, m: Modules, hidden: tf.Tensor3D, a: ForwardArgs): tf.Tensor2D {
  const [B, , C] = hidden.shape;
  const cls = tf.reshape(tf.slice(hidden, [0, 0, 0], [B, 1, C]), [B, C]); // [B, C]
  const pooled = tf.tanh(applyLayer(m, 'bert.pooler.dense', cls));
  const rate = c.classifierDropout ?? c.hiddenDropoutProb;
  const dropped =
    a.training && rate > 0 ? tf.dropout(pooled, rate, undefined, deriveSeed(a.dropoutSeed ?? 0, 1 << 16)) : pooled;
  return applyLayer(m, 'classifier', dropped) as tf.Tensor2D;
}
