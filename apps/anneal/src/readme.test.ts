// The README's command blocks against the CLI: every `npx anneal …` line names a command
// the CLI has (its --help says "Usage: anneal <command>") and only flags that command's
// --help lists; the config files and scripts those blocks name exist. Run in-process
// (main(['…', '--help'])), so a renamed command or flag fails here, not in a reader's shell.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from './main.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const README = readFileSync(join(ROOT, 'README.md'), 'utf8');

/** The lines of the README's fenced blocks, continuation lines joined, comments dropped. */
function blockLines(md: string): string[] {
  const lines: string[] = [];
  for (const [, body] of md.matchAll(/```[a-z]*\n([\s\S]*?)```/g)) {
    for (const line of body.replace(/\\\n\s*/g, ' ').split('\n')) {
      const code = line.replace(/(^|\s)#.*$/, '').trim();
      if (code) lines.push(code);
    }
  }
  return lines;
}

/** Shell-like words: quotes kept together, `<placeholder>` spans as one word, `[…]` brackets dropped. */
function words(line: string): string[] {
  const flat = line.replace(/<[^>]*>/g, 'X').replace(/[[\]]/g, ' ');
  return [...flat.matchAll(/"[^"]*"|'[^']*'|\S+/g)].map((m) => m[0]);
}

async function help(path: string[]): Promise<string> {
  let out = '';
  const spy = vi
    .spyOn(process.stdout, 'write')
    .mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  try {
    await main([...path, '--help']);
  } finally {
    spy.mockRestore();
  }
  return out;
}

/** The command path of an anneal argv (`train`, `lora merge`, …): a group's subcommand joins it. */
async function commandOf(args: string[]): Promise<{ path: string[]; text: string }> {
  const path = [args[0]];
  let text = await help(path);
  if (/^Commands:/m.test(text) && args[1] && !args[1].startsWith('-')) {
    path.push(args[1]);
    text = await help(path);
  }
  return { path, text };
}

const lines = blockLines(README);
const annealLines = lines.filter((l) => l.startsWith('npx anneal '));

describe('README command blocks', () => {
  afterEach(() => vi.restoreAllMocks());

  it('has anneal commands to check', () => {
    expect(annealLines.length).toBeGreaterThan(10);
  });

  it.each(annealLines)('%s', async (line) => {
    const argv = words(line).slice(2);
    // `anneal launch [flags] -- <command>`: both halves are anneal commands
    const split = argv.indexOf('--');
    for (const args of split >= 0 ? [argv.slice(0, split), argv.slice(split + 1)] : [argv]) {
      const { path, text } = await commandOf(args);
      expect(text, `anneal ${path.join(' ')} --help`).toMatch(new RegExp(`^Usage: anneal ${path.join(' ')}\\b`, 'm'));
      for (const flag of args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0])) {
        expect(text, `anneal ${path.join(' ')} has no ${flag}`).toMatch(new RegExp(`(^|[\\s,])${flag}\\b`, 'm'));
      }
      for (const config of args.filter((a) => /^configs\/.*\.ya?ml$/.test(a)))
        expect(existsSync(join(ROOT, config)), config).toBe(true);
    }
  });

  it('names npm scripts and files that exist', () => {
    const scripts = (
      JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }
    ).scripts;
    for (const line of lines) {
      for (const [, script] of line.matchAll(/npm run ([\w:-]+)/g)) expect(scripts, line).toHaveProperty(script);
      for (const [, file] of line.matchAll(/(?:bash|npx tsx) ((?:tools|apps|packages)\/[\w./-]+)/g))
        expect(existsSync(join(ROOT, file)), line).toBe(true);
    }
  });
});
