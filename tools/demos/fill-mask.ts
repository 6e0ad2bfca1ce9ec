// A masked LM's top-5 fillers of [MASK], from Anneal (the run's checkpoint, on the CPU
// backend) and from transformers.js (its fill-mask pipeline on the ONNX export of the same
// run, remote models off), side by side as a markdown table.
//
//   npx tsx tools/demos/fill-mask.ts --run runs/mlm-sentiment-bert --onnx runs/mlm-sentiment-bert-onnx \
//     --text "This movie was really [MASK]." [--text ...]
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { env, pipeline, type FillMaskPipeline } from '@huggingface/transformers';
import * as tf from '@tensorflow/tfjs-core';
import { useBackend } from '@anneal/core';
import { loadPretrained } from '@anneal/modeling';
import { loadTokenizerSync } from '@anneal/tokenizers';

const { values: a } = parseArgs({
  options: { run: { type: 'string' }, onnx: { type: 'string' }, text: { type: 'string', multiple: true } },
});
if (!a.run || !a.onnx || !a.text?.length)
  throw new Error('usage: --run <MLM run or checkpoint> --onnx <its export> --text "... [MASK] ..." [--text ...]');
await useBackend('cpu');
const model = await loadPretrained(a.run);
const tok = loadTokenizerSync(a.run);
env.allowRemoteModels = false;
env.localModelPath = dirname(resolve(a.onnx));
const fill = (await pipeline('fill-mask', basename(resolve(a.onnx)), { dtype: 'fp32' })) as FillMaskPipeline;
const fmt = (xs: Array<{ token: string; p: number }>) => xs.map((x) => `${x.token} ${x.p.toFixed(3)}`).join(', ');
console.log('| text | Anneal (top 5, p) | transformers.js (top 5, p) | same tokens |');
console.log('|---|---|---|---|');
for (const text of a.text) {
  const ids = tok.encode(text);
  const at = ids.indexOf(tok.tokenToId('[MASK]') ?? -1);
  if (at < 0) throw new Error(`no [MASK] in ${JSON.stringify(text)}`);
  const probs = tf.tidy(() =>
    Array.from(
      tf
        .softmax(
          (model.forward({ inputIds: tf.tensor2d([ids], undefined, 'int32') }).logits as tf.Tensor3D)
            .slice([0, at, 0], [1, 1, -1])
            .reshape([-1]),
        )
        .dataSync(),
    ),
  );
  const ours = probs
    .map((p, id) => ({ id, p }))
    .sort((x, y) => y.p - x.p)
    .slice(0, 5)
    .map((x) => ({ token: tok.idToToken(x.id) ?? String(x.id), p: x.p }));
  const theirs = ((await fill(text, { top_k: 5 })) as Array<{ token_str: string; score: number }>).map((x) => ({
    token: x.token_str,
    p: x.score,
  }));
  const same = ours.map((x) => x.token).join() === theirs.map((x) => x.token).join();
  console.log(`| ${text} | ${fmt(ours)} | ${fmt(theirs)} | ${same ? 'yes' : '**no**'} |`);
}
await fill.dispose();
model.dispose();
