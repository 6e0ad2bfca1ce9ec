// Builds datasets/moby-dick/continuations.jsonl: sentence continuations from the quickstart's
// held-out tail (the last 5% of moby-dick.txt, which the quickstart model never trains on),
// for configs/eval-quickstart.yaml's generation metrics: each prompt is the first words of a
// sentence, the completion its next 6 words. Deterministic: every 3rd sentence of 12 to 30
// words, the first 40.
//
//   npx tsx tools/data/moby-dick-continuations.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const file = (p: string) => fileURLToPath(new URL(`../../datasets/moby-dick/${p}`, import.meta.url));
const text = readFileSync(file('moby-dick.txt'), 'utf8');
const tail = text.slice(Math.floor(text.length * 0.95)).replace(/\s+/g, ' ');
const sentences = tail.match(/[A-Z][^.!?]*[.!?]/g) ?? [];
const rows: string[] = [];
sentences
  .map((s) => s.split(' '))
  .filter((w) => w.length >= 12 && w.length <= 30)
  .filter((_, i) => i % 3 === 0)
  .slice(0, 40)
  .forEach((w) => {
    const cut = w.length - 6;
    rows.push(JSON.stringify({ prompt: w.slice(0, cut).join(' '), completion: ' ' + w.slice(cut).join(' ') }));
  });
writeFileSync(file('continuations.jsonl'), rows.join('\n') + '\n');
console.log(`${rows.length} continuations from ${sentences.length} held-out sentences`);
