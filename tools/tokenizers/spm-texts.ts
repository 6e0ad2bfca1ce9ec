// Writes packages/tokenizers/fixtures/spm-unigram/texts.json: the texts whose SentencePiece ids
// make_spm_fixtures.py records (the conformance corpus, Moby-Dick lines the model was not trained
// on, and characters SentencePiece's nmt_nfkc rule rewrites). Run: npx tsx tools/tokenizers/spm-texts.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { conformanceCorpus } from '../../packages/tokenizers/src/test-corpus.js';

const moby = readFileSync(new URL('../../datasets/moby-dick/moby-dick.txt', import.meta.url), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter(Boolean)
  .slice(12000, 12150); // the training lines are the first 6000
const nfkc = [
  'Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３',
  'ﬁnal ﬂow ﬀ ﬃ',
  '① ② ③ ⑴ ⒜',
  '½ ¾ ⅓ ² ³ ₂',
  '™ ℃ ℉ № ㎏ ㍻',
  'ｶﾀｶﾅ ﾊﾝｶｸ',
  'café vs cafe\u0301',
  'Å Å Å',
  'non\u00a0breaking\u2009thin\u3000ideographic',
  'soft\u00adhyphen zero\u200bwidth',
  'tab\there\nnewline\r\nboth',
  '“curly” ‘quotes’ – dash — emdash … ellipsis',
  'ǅ ǈ ǋ Ǳ',
  '𝐀𝐁𝐂 𝕏 𝔸',
  'control\u0001\u0002chars\u007f',
];
const texts = [...new Set([...conformanceCorpus(), ...moby, ...nfkc])];
const out = new URL('../../packages/tokenizers/fixtures/spm-unigram/texts.json', import.meta.url);
writeFileSync(out, JSON.stringify(texts, null, 0));
console.log(`${texts.length} texts`);
