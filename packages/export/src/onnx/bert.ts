// BERT and DistilBERT encoders as ONNX graphs in Optimum's layouts: inputs input_ids,
// attention_mask (and BERT's token_type_ids) [batch_size, sequence_length]; output logits,
// [batch_size, num_labels] for a sequence classifier (the shipped classifiers and reward
// models), [batch_size, sequence_length, vocab] for a masked LM (transformers.js' fill-mask).
// Op for op as packages/modeling/src/bert/model.ts and distilbert/index.ts: word + position
// (+ segment) embeddings and a LayerNorm, post-LayerNorm blocks of bidirectional attention
// (padded keys -1e9) and the activation MLP, then the head. DistilBERT is BERT's encoder under
// other parameter names (distilBertEncoderNames) without segments.
import { distilBertAsBert, distilBertEncoderNames, type BertConfig, type DistilBertConfig } from '@anneal/modeling';
import { activation, attention, mergeHeads, splitHeads, weightOf, type DecoderIo } from './layers.js';

type Head = { kind: 'classifier'; numLabels: number } | { kind: 'mlm' };

/** Builds a BERT model's graph (BertForSequenceClassification or BertForMaskedLM) into io.graph. */
export function bertGraph(c: BertConfig, head: Head, io: DecoderIo): void {
  const enc = encoder(c, io, (n) => n, true);
  if (head.kind === 'mlm') {
    const h = enc.layerNorm(
      enc.act(enc.linear(enc.x, 'cls.predictions.transform.dense')),
      'cls.predictions.transform.LayerNorm',
    );
    enc.tiedDecoder(h, 'bert.embeddings.word_embeddings.weight', 'cls.predictions.bias');
    return;
  }
  enc.output('logits', ['batch_size', head.numLabels]);
  const pooled = enc.graph.op('Tanh', [enc.linear(enc.cls(), 'bert.pooler.dense')]);
  enc.graph.op('Identity', [enc.linear(pooled, 'classifier')], {}, 'logits');
}

/** Builds a DistilBERT model's graph (DistilBertForSequenceClassification or DistilBertForMaskedLM) into io.graph. */
export function distilBertGraph(d: DistilBertConfig, head: Head, io: DecoderIo): void {
  const names = new Map(distilBertEncoderNames(d).map(([distil, bert]) => [bert, distil]));
  const enc = encoder(distilBertAsBert(d), io, (n) => names.get(n) ?? n, false);
  if (head.kind === 'mlm') {
    const h = enc.layerNorm(enc.act(enc.linear(enc.x, 'vocab_transform')), 'vocab_layer_norm');
    enc.tiedDecoder(h, 'distilbert.embeddings.word_embeddings.weight', 'vocab_projector.bias');
    return;
  }
  enc.output('logits', ['batch_size', head.numLabels]);
  const pre = enc.graph.op('Relu', [enc.linear(enc.cls(), 'pre_classifier')]);
  enc.graph.op('Identity', [enc.linear(pre, 'classifier')], {}, 'logits');
}

/** The encoder's graph (its last hidden states in `x`, [B, T, C]) and the pieces its heads use. */
function encoder(c: BertConfig, io: DecoderIo, name: (bertName: string) => string, segments: boolean) {
  const { graph: g } = io;
  const C = c.hiddenSize;
  const H = c.numAttentionHeads;
  const D = C / H;
  const weight = weightOf(io);
  const w = (n: string) => weight(name(n));
  const linear = (x: string, n: string) =>
    g.op('Add', [
      g.op('MatMul', [x, g.op('Transpose', [w(`${n}.weight`)], { perm: { ints: [1, 0] } })]),
      w(`${n}.bias`),
    ]);
  const layerNorm = (x: string, n: string) =>
    g.op('LayerNormalization', [x, w(`${n}.weight`), w(`${n}.bias`)], {
      axis: { i: -1 },
      epsilon: { f: c.layerNormEps },
    });
  const act = (x: string) => activation(g, x, c.hiddenAct === 'gelu_new' ? 'gelu_tanh' : c.hiddenAct);

  const ids = g.input('input_ids', 'INT64', ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', 'INT64', ['batch_size', 'sequence_length']);
  const types = segments ? g.input('token_type_ids', 'INT64', ['batch_size', 'sequence_length']) : undefined;

  const seq = g.op('Gather', [g.op('Shape', [ids]), g.ints([1], [])], { axis: { i: 0 } }); // T
  const positions = g.op('Unsqueeze', [g.op('Range', [g.ints([0], []), seq, g.ints([1], [])]), g.ints([0])]); // [1, T]
  let emb = g.op('Add', [
    g.op('Gather', [w('bert.embeddings.word_embeddings.weight'), ids]),
    g.op('Gather', [w('bert.embeddings.position_embeddings.weight'), positions]),
  ]); // [B, T, C]
  if (types) emb = g.op('Add', [emb, g.op('Gather', [w('bert.embeddings.token_type_embeddings.weight'), types])]);
  let x = layerNorm(emb, 'bert.embeddings.LayerNorm');
  const keep = g.op('Cast', [mask], { to: { i: 1 } });
  const bias = g.op('Unsqueeze', [g.op('Mul', [g.op('Sub', [g.float(1), keep]), g.float(-1e9)]), g.ints([1, 2])]); // [B, 1, 1, T]

  for (let i = 0; i < c.numHiddenLayers; i++) {
    const l = `bert.encoder.layer.${i}`;
    const [q, k, v] = ['query', 'key', 'value'].map((m) => splitHeads(g, linear(x, `${l}.attention.self.${m}`), H, D));
    const ctx = mergeHeads(g, attention(g, q, k, v, bias, 1 / Math.sqrt(D)), C); // [B, T, C]
    // post-LN: LayerNorm(x + sublayer(x))
    const a = layerNorm(
      g.op('Add', [linear(ctx, `${l}.attention.output.dense`), x]),
      `${l}.attention.output.LayerNorm`,
    );
    const inner = act(linear(a, `${l}.intermediate.dense`));
    x = layerNorm(g.op('Add', [linear(inner, `${l}.output.dense`), a]), `${l}.output.LayerNorm`);
  }
  return {
    graph: g,
    x,
    act,
    linear, // (a head's parameters are not renamed: name() returns them as they are)
    layerNorm,
    output: (n: string, dims: Array<number | string>) => g.output(n, 'FLOAT', dims),
    /** The hidden state of the first token ([CLS]): [B, C]. */
    cls: () => g.op('Gather', [x, g.ints([0], [])], { axis: { i: 1 } }),
    /** logits = h · Eᵀ + bias with E the word embeddings (tied): [B, T, V]. */
    tiedDecoder: (h: string, embeddings: string, biasName: string) => {
      g.output('logits', 'FLOAT', ['batch_size', 'sequence_length', c.vocabSize]);
      const table = w(embeddings);
      g.op(
        'Add',
        [g.op('MatMul', [h, g.op('Transpose', [table], { perm: { ints: [1, 0] } })]), w(biasName)],
        {},
        'logits',
      );
    },
  };
}
