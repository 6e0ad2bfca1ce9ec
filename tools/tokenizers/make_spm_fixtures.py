"""Reference ids from Google's SentencePiece (Debian's python3-sentencepiece 0.1.97) for the
T5-style Unigram tokenizer tests of @anneal/tokenizers: trains a small Unigram model the way
T5's spiece.model was made (pad 0, eos 1, unk 2, no bos; the nmt_nfkc normalization rule,
whose precompiled charsmap goes into the model) on Moby-Dick and a few lines of other scripts,
then encodes every test text with it.
Run with Debian's python:  /usr/bin/python3 tools/tokenizers/make_spm_fixtures.py
Writes packages/tokenizers/fixtures/spm-unigram/{spiece.model,expected.json}; reads texts.json
there (the test corpus, written by the test itself when missing: see spm-unigram.test.ts)."""
import io
import json
import os
import sentencepiece as spm

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
OUT = os.path.join(ROOT, "packages", "tokenizers", "fixtures", "spm-unigram")
MOBY = os.path.join(ROOT, "datasets", "moby-dick", "moby-dick.txt")

OTHER_SCRIPTS = [
    "Déjà vu: l'été à Paris, où naïve Zoë mangea une crème brûlée.",
    "Größe, Straße und Übermut — „Anführungszeichen“ auf Deutsch.",
    "Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "日本語のテキストと漢字、ひらがな、カタカナ。",
    "Ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３ and ﬁ ligatures, ① ② ③, ½ and ™.",
]


def main():
    moby = open(MOBY, encoding="utf-8").read()
    lines = [l.strip() for l in moby.splitlines() if l.strip()][:6000] + OTHER_SCRIPTS * 20
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines),
        model_writer=model,
        model_type="unigram",
        vocab_size=1200,
        character_coverage=1.0,
        normalization_rule_name="nmt_nfkc",
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
        pad_piece="<pad>",
        eos_piece="</s>",
        unk_piece="<unk>",
        num_threads=1,
        seed_sentencepiece_size=200000,
    )
    blob = model.getvalue()
    with open(os.path.join(OUT, "spiece.model"), "wb") as f:
        f.write(blob)
    sp = spm.SentencePieceProcessor(model_proto=blob)
    texts = json.load(open(os.path.join(OUT, "texts.json"), encoding="utf-8"))
    cases = [{"text": t, "ids": sp.encode(t), "pieces": sp.encode(t, out_type=str)} for t in texts]
    json.dump(
        {
            "made_by": f"sentencepiece {spm.__version__}",
            "vocab_size": sp.get_piece_size(),
            "cases": cases,
        },
        open(os.path.join(OUT, "expected.json"), "w", encoding="utf-8"),
        ensure_ascii=False,
        indent=0,
    )
    print(f"{len(blob)} bytes of model, {len(cases)} cases")


if __name__ == "__main__":
    main()
