"""Reference values from NLTK (Debian's python3-nltk 3.8, WordNet 3.0 from wordnet-base) for
@anneal/eval's tests: BLEU (corpus and sentence, smoothing methods 0-4), METEOR, and Porter
stems. Run with Debian's python:  /usr/bin/python3 tools/eval/make_nltk_fixtures.py
Writes packages/eval/fixtures/nltk.json."""
import json
import os
import tempfile
import nltk
from nltk.translate.bleu_score import corpus_bleu, sentence_bleu, SmoothingFunction
from nltk.translate.meteor_score import meteor_score
from nltk.corpus.reader.wordnet import WordNetCorpusReader
from nltk.stem.porter import PorterStemmer

PAIRS = [
    (["the cat is on the mat", "there is a cat on the mat"], "the cat the cat on the mat"),
    (["It is a guide to action that ensures that the military will forever heed Party commands",
      "It is the guiding principle which guarantees the military forces always being under the command of the Party",
      "It is the practical guide for the army always to heed the directions of the party"],
     "It is a guide to action which ensures that the military always obeys the commands of the party"),
    (["he read the book because he was interested in world history"], "he was interested in world history because he read the book"),
    (["the quick brown fox jumps over the lazy dog"], "the fast brown fox leaps over the lazy dog"),
    (["a man is playing a guitar on the stage"], "a man plays the guitar on stage"),
    (["I would like a cup of coffee please"], "coffee please"),
    (["this sentence has nothing in common"], "completely different words here"),
    (["the children were running in the park"], "the child runs in the parks"),
    (["she sells sea shells by the sea shore"], "she sells shells by the shore of the sea"),
    (["the weather is nice today", "today the weather is good"], "the weather today is nice"),
    (["we have a long way to go before we sleep"], "we have miles to go before we sleep"),
    (["he is a good student"], "he is a good student"),
]

def toks(s):
    return s.split()

def main():
    sm = SmoothingFunction()
    methods = [sm.method0, sm.method1, sm.method2, sm.method3, sm.method4]
    refs = [[toks(r) for r in rs] for rs, _ in PAIRS]
    hyps = [toks(h) for _, h in PAIRS]
    out = {"nltk": nltk.__version__, "pairs": [{"references": rs, "hypothesis": h} for rs, h in PAIRS]}
    out["corpus_bleu"] = {str(k): corpus_bleu(refs, hyps, smoothing_function=m) for k, m in enumerate(methods)}
    out["corpus_bleu_bigram"] = corpus_bleu(refs, hyps, weights=(0.5, 0.5))
    out["sentence_bleu"] = {str(k): [sentence_bleu(r, h, smoothing_function=m) for r, h in zip(refs, hyps)] for k, m in enumerate(methods)}
    # Debian's wordnet-base has the WordNet 3.0 dict files but not "lexnames", which NLTK's
    # reader opens at start (and METEOR never uses): serve the files plus the standard list.
    lexnames = ("adj.all adj.pert adv.all noun.Tops noun.act noun.animal noun.artifact noun.attribute noun.body noun.cognition "
                "noun.communication noun.event noun.feeling noun.food noun.group noun.location noun.motive noun.object noun.person "
                "noun.phenomenon noun.plant noun.possession noun.process noun.quantity noun.relation noun.shape noun.state "
                "noun.substance noun.time verb.body verb.change verb.cognition verb.communication verb.competition verb.consumption "
                "verb.contact verb.creation verb.emotion verb.motion verb.perception verb.possession verb.social verb.stative "
                "verb.weather adj.ppl").split()
    root = tempfile.mkdtemp()
    for name in os.listdir("/usr/share/wordnet"):
        os.symlink(os.path.join("/usr/share/wordnet", name), os.path.join(root, name))
    with open(os.path.join(root, "lexnames"), "w") as f:
        for i, n in enumerate(lexnames):
            f.write("%02d\t%s\t%d\n" % (i, n, {"adj": 3, "adv": 4, "noun": 1, "verb": 2}[n.split(".")[0]]))
    wn = WordNetCorpusReader(root, None)
    out["meteor"] = [meteor_score(r, h, wordnet=wn) for r, h in zip(refs, hyps)]
    words = sorted({w.lower() for rs, h in PAIRS for s in rs + [h] for w in s.split()} | {
        "caresses", "ponies", "ties", "caress", "cats", "feed", "agreed", "plastered", "motoring", "sing",
        "conflated", "troubled", "sized", "hopping", "tanned", "falling", "hissing", "fizzed", "failing",
        "filing", "happy", "sky", "relational", "conditional", "rational", "valenci", "hesitanci", "digitizer",
        "conformabli", "radicalli", "differentli", "vileli", "analogousli", "vietnamization", "predication",
        "operator", "feudalism", "decisiveness", "hopefulness", "callousness", "formaliti", "sensitiviti",
        "sensibiliti", "triplicate", "formative", "formalize", "electriciti", "electrical", "hopeful",
        "goodness", "revival", "allowance", "inference", "airliner", "gyroscopic", "adjustable", "defensible",
        "irritant", "replacement", "adjustment", "dependent", "adoption", "homologou", "communism",
        "activate", "angulariti", "homologous", "effective", "bowdlerize", "probate", "rate", "cease",
        "controll", "roll", "generously", "summarization", "running", "dying", "lying", "news", "sensational"})
    stem = PorterStemmer()
    out["porter"] = {w: stem.stem(w) for w in words}
    path = os.path.join(os.path.dirname(__file__), "..", "..", "packages", "eval", "fixtures", "nltk.json")
    with open(path, "w") as f:
        json.dump(out, f, indent=1)
    print("wrote", os.path.normpath(path))

main()
