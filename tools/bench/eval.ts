// BLEU and ROUGE over 10,000 sentence pairs (target: each under 2 s on one core), with
// METEOR's rate shown too.
//
//   npx tsx tools/bench/eval.ts
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { bleu, meteor, rouge, sacreBleu, wordnetDir } from '@anneal/eval';

const rows = readFileSync(
  fileURLToPath(new URL('../../datasets/sentiment/classification.jsonl', import.meta.url)),
  'utf8',
)
  .trim()
  .split('\n')
  .map((l) => JSON.parse(l).text as string);
// 10,000 (prediction, reference) pairs: each sentence against its neighbour, cycling
const N = 10_000;
const preds = Array.from({ length: N }, (_, i) => rows[i % rows.length]);
const refs = Array.from({ length: N }, (_, i) => rows[(i * 7 + 1) % rows.length]);
const time = (f: () => unknown) => {
  const t0 = performance.now();
  f();
  return (performance.now() - t0) / 1000;
};
const table: Array<[string, number, number]> = [];
table.push([
  'BLEU (NLTK corpus_bleu, whitespace tokens)',
  N,
  time(() =>
    bleu(
      refs.map((r) => [r.split(' ')]),
      preds.map((p) => p.split(' ')),
    ),
  ),
]);
table.push(['BLEU (sacreBLEU 13a)', N, time(() => sacreBleu(preds, [refs]))]);
table.push(['ROUGE 1/2/L/Lsum (rouge-score)', N, time(() => rouge(preds, refs))]);
table.push(['ROUGE 1/2/L/Lsum with the Porter stemmer', N, time(() => rouge(preds, refs, { useStemmer: true }))]);
if (wordnetDir())
  table.push([
    'METEOR (NLTK, WordNet), 1,000 pairs',
    1000,
    time(() => meteor(preds.slice(0, 1000), refs.slice(0, 1000))),
  ]);
console.log(`\nsentence-pair metrics, Node ${process.version}, one thread\n`);
console.log('| metric | pairs | seconds | pairs/s |');
console.log('|---|---:|---:|---:|');
for (const [name, n, s] of table) console.log(`| ${name} | ${n} | ${s.toFixed(3)} | ${Math.round(n / s)} |`);
