// WordNet 3.0 synonyms for METEOR, read from the dictionary files of Debian's
// `wordnet-base` (/usr/share/wordnet, or $ANNEAL_WORDNET): the lemma names of every synset
// of a word in any part of speech, after NLTK's morphy (exception lists, then suffix rules),
// exactly as NLTK's wordnet.synsets(word) finds them.
import { closeSync, existsSync, openSync, readFileSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '@anneal/core';

const POS = { n: 'noun', v: 'verb', a: 'adj', r: 'adv' } as const;
type Pos = keyof typeof POS;

const SUBSTITUTIONS: Record<Pos, Array<[string, string]>> = {
  n: [
    ['s', ''],
    ['ses', 's'],
    ['ves', 'f'],
    ['xes', 'x'],
    ['zes', 'z'],
    ['ches', 'ch'],
    ['shes', 'sh'],
    ['men', 'man'],
    ['ies', 'y'],
  ],
  v: [
    ['s', ''],
    ['ies', 'y'],
    ['es', 'e'],
    ['es', ''],
    ['ed', 'e'],
    ['ed', ''],
    ['ing', 'e'],
    ['ing', ''],
  ],
  a: [
    ['er', ''],
    ['est', ''],
    ['er', 'e'],
    ['est', 'e'],
  ],
  r: [],
};

export function wordnetDir(): string | undefined {
  const dir = process.env.ANNEAL_WORDNET ?? '/usr/share/wordnet';
  return existsSync(join(dir, 'index.noun')) ? dir : undefined;
}

export class WordNet {
  /** lemma -> pos -> synset offsets */
  private index = new Map<string, Map<Pos, number[]>>();
  private exceptions: Record<Pos, Map<string, string[]>> = { n: new Map(), v: new Map(), a: new Map(), r: new Map() };
  private fds: Record<Pos, number>;
  private lemmaCache = new Map<string, string[]>();

  constructor(readonly dir: string) {
    for (const p of Object.keys(POS) as Pos[]) {
      for (const line of readFileSync(join(dir, `index.${POS[p]}`), 'latin1').split('\n')) {
        if (!line || line.startsWith(' ')) continue; // license header lines start with spaces
        const f = line.trim().split(' ');
        const [lemma, , synsetCnt, pCnt] = f;
        const ptrs = Number(pCnt);
        const offsets = f
          .slice(4 + ptrs + 2)
          .map(Number)
          .slice(0, Number(synsetCnt));
        if (!this.index.has(lemma)) this.index.set(lemma, new Map());
        this.index.get(lemma)!.set(p, offsets);
      }
      const exc = join(dir, `${POS[p]}.exc`);
      if (existsSync(exc))
        for (const line of readFileSync(exc, 'latin1').split('\n')) {
          const [inflected, ...bases] = line.trim().split(' ');
          if (inflected) this.exceptions[p].set(inflected, bases);
        }
    }
    this.fds = Object.fromEntries(
      (Object.keys(POS) as Pos[]).map((p) => [p, openSync(join(dir, `data.${POS[p]}`), 'r')]),
    ) as Record<Pos, number>;
  }

  /** NLTK's _morphy(form, pos): base forms of `form` that WordNet lists for the part of speech. */
  morphy(form: string, pos: Pos): string[] {
    const known = (forms: string[]) => [...new Set(forms.filter((f) => this.index.get(f)?.has(pos)))];
    const exc = this.exceptions[pos].get(form);
    if (exc) return known([form, ...exc]);
    return known([
      form,
      ...SUBSTITUTIONS[pos]
        .filter(([old]) => form.endsWith(old))
        .map(([old, rep]) => form.slice(0, form.length - old.length) + rep),
    ]);
  }

  /** Lemma names of one synset (syntactic markers like "(a)" removed, case kept). */
  private lemmas(pos: Pos, offset: number): string[] {
    const key = `${pos}${offset}`;
    const cached = this.lemmaCache.get(key);
    if (cached) return cached;
    const buf = Buffer.alloc(4096);
    const n = readSync(this.fds[pos], buf, 0, buf.length, offset);
    const line = buf.subarray(0, n).toString('latin1').split('\n')[0];
    const f = line.split(' ');
    const count = parseInt(f[3], 16);
    const names = Array.from({ length: count }, (_, i) => f[4 + 2 * i].replace(/\(.*\)$/, ''));
    this.lemmaCache.set(key, names);
    return names;
  }

  /** Every lemma name of every synset of `word` (lowercased first), as NLTK's synsets(word). */
  synonyms(word: string): Set<string> {
    const w = word.toLowerCase();
    const out = new Set<string>();
    for (const p of ['n', 'v', 'a', 'r'] as Pos[])
      for (const form of this.morphy(w, p))
        for (const off of this.index.get(form)!.get(p)!) for (const l of this.lemmas(p, off)) out.add(l);
    return out;
  }

  close(): void {
    for (const fd of Object.values(this.fds)) closeSync(fd);
  }
}

let shared: WordNet | undefined;

/** The WordNet of wordnet-base, or a clear error saying how to get it. */
export function loadWordNet(): WordNet {
  if (shared) return shared;
  const dir = wordnetDir();
  if (!dir)
    throw new ConfigError('WordNet is not installed: METEOR needs its synonyms', {
      hint: 'apt-get install wordnet-base (or set ANNEAL_WORDNET to a WordNet 3.0 dict folder), or pass synonyms: false (then scores differ from NLTK wherever synonyms would match)',
    });
  shared = new WordNet(dir);
  return shared;
}
