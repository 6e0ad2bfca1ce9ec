// The conformance corpus the tokenizer tests compare against other implementations:
// hand-picked hard cases, and each of them varied (leading/trailing spaces, newlines,
// upper case) so that every pre-tokenizer boundary rule is exercised. Test-only.

const BASE = [
  // plain English, punctuation, contractions
  'Hello world',
  'Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse,',
  "don't won't can't I'm you're we've they'll she'd it's",
  "DON'T WON'T I'M YOU'RE WE'VE THEY'LL SHE'D IT'S",
  "Don'T wOn't i'M",
  "rock 'n' roll, 'quoted', \"double\" and ''empty''",
  'Mr. and Mrs. Dursley, of number four, Privet Drive, were proud to say that they were perfectly normal.',
  'Wait... what?! No!!! Yes?? (maybe) [brackets] {braces} <angles>',
  'e.g. i.e. etc. U.S.A. a.m. p.m.',
  // whitespace
  'two  spaces',
  'three   spaces and    four',
  'tab\tseparated\tvalues',
  'line one\nline two\n\nline four',
  'windows\r\nline\r\nendings',
  ' leading space',
  'trailing space ',
  '   many leading',
  'many trailing   ',
  '\n\nnewlines first',
  'newlines last\n\n',
  ' \t \n mixed whitespace \n\t ',
  'nbsp\u00a0here and\u2003em space',
  '',
  ' ',
  '\n',
  // digits
  '12345 67890',
  '3.14159 and 2,718 and 1e10 and -42',
  'Call 555-0199 at 10:45pm on 2024-04-18',
  '0 00 000 0000 00000 123456789012',
  'v1.2.3-beta+build.7',
  '٣٤٥ and १२३ and ４５６',
  // unicode, accents, scripts
  'Ünïcödé àçcéntś façade naïve café résumé',
  'Crème brûlée, jalapeño, smörgåsbord, Ærøskøbing',
  'ΑΒΓΔ αβγδ Ελληνικά',
  'Привет, мир! Как дела?',
  'مرحبا بالعالم',
  'שלום עולם',
  'नमस्ते दुनिया',
  'สวัสดีชาวโลก',
  '日本語のテキストです。東京タワー',
  '中文文本测试，你好世界！',
  '한국어 텍스트 안녕하세요',
  'Ｆｕｌｌｗｉｄｔｈ　ｔｅｘｔ',
  'ﬁ ligature ﬂ and ½ fractions ² superscripts',
  'e\u0301 combining acute, a\u0308 combining diaeresis',
  'Zalgo: Z\u0351\u036b\u0343a\u0364\u0361l\u0300g\u0489o',
  // emoji and symbols
  'emoji 🐳🐋 whales',
  '👨‍👩‍👧‍👦 family and 🏳️‍🌈 flag',
  '👍🏽 thumbs 🇫🇷 flags ❤️',
  '∑∫√∞ ≠ ≤ ≥ ± × ÷',
  '→ ← ↑ ↓ ⇒ © ® ™ € £ ¥',
  '\u200b zero width \u200d joiner \ufeff bom',
  // code and URLs
  'function f(x) { return x * 2; }',
  'const a = [1, 2, 3].map((v) => v ** 2);',
  'def main():\n    print("hello")\n    return 0\n',
  '#include <stdio.h>\nint main(void) { return 0; }',
  'if (a && b || !c) { x += 1; } else { y -= 2; }',
  'https://huggingface.co/docs/tokenizers/index?lang=en#quicktour',
  'mailto:someone@example.com and user@domain.org',
  'C:\\Users\\me\\Documents\\file.txt',
  '<html><body class="x">Hi &amp; bye</body></html>',
  '{"key": "value", "n": 12, "list": [true, null]}',
  'snake_case camelCase PascalCase kebab-case SCREAMING_CASE',
  '    indented with four spaces',
  '\t\tindented with tabs',
  // special tokens written in text
  'before<|endoftext|>after',
  '<|endoftext|> at the start',
  'at the end <|endoftext|>',
  'two<|endoftext|><|endoftext|>adjacent',
  '<|begin_of_text|>Hello<|eot_id|>',
  '<s>sentencepiece</s> markers <unk>',
  '<|im_start|>user\nHi<|im_end|>',
  '[CLS] bert [SEP] tokens [MASK]',
  // odd cases
  'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
  '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!',
  '............................',
  '--------------------------------',
  '____________________',
  "'''''''''",
  'a b c d e f g h i j k l m n o p q r s t u v w x y z',
  'The quick brown fox jumps over the lazy dog 1234567890 times.',
];

/** At least 200 strings: the base cases and variations of each. */
export function conformanceCorpus(): string[] {
  const out = new Set<string>(BASE);
  for (const s of BASE) {
    out.add(` ${s}`);
    out.add(`${s}\n`);
    out.add(s.toUpperCase());
  }
  return [...out];
}
