// BertForSequenceClassification (the shipped classifiers and reward models) as an ONNX
// encoder in Optimum's text-classification layout: inputs input_ids, attention_mask,
// token_type_ids [batch_size, sequence_length]; output logits [batch_size, num_labels]. Op for
// op as packages/modeling/src/bert/model.ts: word + position + segment embeddings and a
// LayerNorm, post-LayerNorm blocks of bidirectional attention (padded keys -1e9) and the
// activation MLP, then the tanh pooler over [CLS] and the classifier.
import type { BertConfig } from '@anneal/modeling';
import { activation, attention, mergeHeads, splitHeads, weightOf, type DecoderIo } from './layers.js';

/** Builds the graph of a BERT sequence classifier into io.graph. */
export function bertClassifier(c: BertConfig, numLabels: number, io: DecoderIo): void {
  const { graph: g } = io;
  const C = c.hiddenSize;
  const H = c.numAttentionHeads;
  const D = C / H;
  const w = weightOf(io);
  const linear = (x: string, name: string) =>
    g.op('Add', [
      g.op('MatMul', [x, g.op('Transpose', [w(`${name}.weight`)], { perm: { ints: [1, 0] } })]),
      w(`${name}.bias`),
    ]);
  const layerNorm = (x: string, name: string) =>
    g.op('LayerNormalization', [x, w(`${name}.weight`), w(`${name}.bias`)], {
      axis: { i: -1 },
      epsilon: { f: c.layerNormEps },
    });
  const act = (x: string) => activation(g, x, c.hiddenAct === 'gelu_new' ? 'gelu_tanh' : c.hiddenAct);

  const ids = g.input('input_ids', 'INT64', ['batch_size', 'sequence_length']);
  const mask = g.input('attention_mask', 'INT64', ['batch_size', 'sequence_length']);
  const types = g.input('token_type_ids', 'INT64', ['batch_size', 'sequence_length']);
  g.output('logits', 'FLOAT', ['batch_size', numLabels]);

  const seq = g.op('Gather', [g.op('Shape', [ids]), g.ints([1], [])], { axis: { i: 0 } }); // T
  const positions = g.op('Unsqueeze', [g.op('Range', [g.ints([0], []), seq, g.ints([1], [])]), g.ints([0])]); // [1, T]
  const emb = g.op('Add', [
    g.op('Add', [
      g.op('Gather', [w('bert.embeddings.word_embeddings.weight'), ids]),
      g.op('Gather', [w('bert.embeddings.position_embeddings.weight'), positions]),
    ]),
    g.op('Gather', [w('bert.embeddings.token_type_embeddings.weight'), types]),
  ]); // [B, T, C]
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
  const cls = g.op('Gather', [x, g.ints([0], [])], { axis: { i: 1 } }); // [B, C]
  const pooled = g.op('Tanh', [linear(cls, 'bert.pooler.dense')]);
  g.op('Identity', [linear(pooled, 'classifier')], {}, 'logits');
}
