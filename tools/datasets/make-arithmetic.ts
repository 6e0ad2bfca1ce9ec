// Builds datasets/arithmetic/: two small tasks with verifiable answers, each in three files —
// SFT examples that teach the answer format, GRPO prompts with their answers (the verifiable
// reward checks the `answer` column), and held-out test prompts no other file has:
//   addition  a + b with a, b in 0..49 (all 2,500 problems, shuffled)
//   counting  how many "a"s among 4-12 letters from a-d (5,000 random strings)
// Deterministic (xorshift32 with fixed seeds).
//
//   npx tsx tools/datasets/make-arithmetic.ts
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const out = fileURLToPath(new URL('../../datasets/arithmetic', import.meta.url));
mkdirSync(out, { recursive: true });
const jsonl = (name: string, rows: object[]) =>
  writeFileSync(`${out}/${name}`, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

let s = 2026;
const next = () => {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>> 0) / 2 ** 32;
};

// addition: every problem once, in a fixed pseudo-random order
const problems: Array<[number, number]> = [];
for (let a = 0; a < 50; a++) for (let b = 0; b < 50; b++) problems.push([a, b]);
for (let i = problems.length - 1; i > 0; i--) {
  const j = Math.floor(next() * (i + 1));
  [problems[i], problems[j]] = [problems[j], problems[i]];
}

const prompt = ([a, b]: [number, number]) => `${a} + ${b} =`;
const test = problems.slice(0, 200);
const train = problems.slice(200);
jsonl('addition-test.jsonl', test.map((p) => ({ prompt: prompt(p), answer: String(p[0] + p[1]) })));
jsonl('addition-prompts.jsonl', train.map((p) => ({ prompt: prompt(p), answer: String(p[0] + p[1]) })));
jsonl('addition-sft.jsonl', train.slice(0, 1000).map((p) => ({ prompt: prompt(p), completion: ` ${p[0] + p[1]}` })));

// counting: random strings of 4-12 letters from a-d; the answer is how many are "a"
s = 7;
const letters = ['a', 'b', 'c', 'd'];
const counting = Array.from({ length: 5000 }, () => {
  const n = 4 + Math.floor(next() * 9);
  const w = Array.from({ length: n }, () => letters[Math.floor(next() * 4)]);
  return { prompt: `count a: ${w.join(' ')} =`, answer: String(w.filter((x) => x === 'a').length) };
});
const countingTest = counting.slice(0, 200);
const held = new Set(countingTest.map((r) => r.prompt));
const countingTrain = counting.slice(200).filter((r) => !held.has(r.prompt)); // short strings repeat: keep the test unseen
jsonl('counting-test.jsonl', countingTest);
jsonl('counting-prompts.jsonl', countingTrain);
jsonl('counting-sft.jsonl', countingTrain.slice(0, 1000).map((r) => ({ prompt: r.prompt, completion: ` ${r.answer}` })));
console.log(
  `addition: ${test.length} test, ${train.length} prompts, 1000 SFT; counting: 200 test, ${countingTrain.length} prompts, 1000 SFT -> ${out}`,
);
