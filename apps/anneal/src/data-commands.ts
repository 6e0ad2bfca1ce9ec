// `anneal data inspect <config>`: prepares the config's data with its tokenizer and prints
// rows, tokens, the length histogram, packing efficiency and bad rows.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { ConfigError, loadConfig } from '@anneal/core';
import { DataConfigSchema, formatReport, inspectDataset, prepareDataset } from '@anneal/data';
import { localModelDir } from '@anneal/modeling';
import { loadTokenizerSync, tokenizerFingerprint } from '@anneal/tokenizers';

// Any config with a data section and a tokenizer path (trainer configs have more).
const InspectConfigSchema = z.looseObject({
  seed: z.number().int().optional(),
  tokenizer: z.looseObject({ path: z.string().optional() }).optional(),
  data: DataConfigSchema,
});

/**
 * Which command makes a missing folder: a config under ./configs whose `output:` (tokenizer
 * training) or run folder (`outputDir`/`name`) is that path, else the general rule.
 */
export function whoMakes(path: string): string {
  const want = resolve(path);
  if (existsSync('configs')) {
    for (const f of readdirSync('configs')
      .filter((n) => n.endsWith('.yaml'))
      .sort()) {
      const text = readFileSync(join('configs', f), 'utf8');
      const output = /^output:\s*(\S+)/m.exec(text)?.[1];
      if (output && resolve(output) === want) return `it is made by: npx anneal tokenizer train configs/${f}`;
      const name = /^name:\s*(\S+)/m.exec(text)?.[1];
      const outDir = /^outputDir:\s*(\S+)/m.exec(text)?.[1] ?? 'runs';
      if (name && resolve(outDir, name) === want) return `it is made by: npx anneal train configs/${f}`;
    }
  }
  return 'if another command makes it, run that first (anneal tokenizer train writes its output folder, anneal train writes runs/<name>)';
}

export async function inspectData(
  file: string,
  flags: { set: string[]; tokenizer?: string },
  out: (s: string) => void,
): Promise<void> {
  const { config } = loadConfig(file, InspectConfigSchema, flags.set);
  const path = flags.tokenizer ?? config.tokenizer?.path;
  if (!path)
    throw new ConfigError('no tokenizer: set tokenizer.path in the config or pass --tokenizer', {
      file,
      field: 'tokenizer.path',
    });
  if (!existsSync(path))
    throw new ConfigError('the tokenizer is not there', {
      file: path,
      field: flags.tokenizer ? '--tokenizer' : 'tokenizer.path',
      hint: whoMakes(path),
    });
  const tok = loadTokenizerSync(await localModelDir(path)); // a run folder: its best checkpoint's tokenizer
  const prepared = await prepareDataset(config.data, tok, {
    tokenizerFingerprint: tokenizerFingerprint(tok),
    configFile: file,
    seed: config.seed,
  });
  out(`data: ${file} (format ${config.data.format}, maxLength ${config.data.maxLength}); tokenizer: ${path}`);
  out(formatReport(inspectDataset(prepared, config.data.maxLength)));
}
