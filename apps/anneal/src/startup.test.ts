// `anneal --help` and argument errors must not wait for tfjs, libtorch or the recipes: a
// resolve hook (module.register) makes any import of them fail, and the commands that have
// nothing heavy to do must still answer. (Their time is measured in tools/bench/startup.ts.)
import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const BIN = fileURLToPath(new URL('../bin/anneal.js', import.meta.url));
const HEAVY = /@tensorflow\/|@anneal\/(backend-torch|trainers|ppo|dpo|reward-model|modeling|training)(\/|$)/;

describe('anneal start-up', () => {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-startup-'));
  const hooks = join(dir, 'hooks.mjs');
  writeFileSync(
    hooks,
    `export async function resolve(specifier, context, next) {\n  if (${HEAVY}.test(specifier)) throw new Error('heavy import at start-up: ' + specifier);\n  return next(specifier, context);\n}\n`,
  );
  const register = join(dir, 'register.mjs');
  writeFileSync(
    register,
    `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hooks).href)});\n`,
  );
  const anneal = (...args: string[]) =>
    spawnSync(process.execPath, ['--import', pathToFileURL(register).href, BIN, ...args], { encoding: 'utf8' });

  it("--help, a command's --help and a flag error load none of tfjs, libtorch, the models or the recipes", () => {
    const help = anneal('--help');
    expect(help.status, help.stderr).toBe(0);
    expect(help.stdout).toMatch(/Usage: anneal/);
    const trainHelp = anneal('train', '--help');
    expect(trainHelp.status, trainHelp.stderr).toBe(0);
    expect(trainHelp.stdout).toMatch(/--verbose/);
    const flag = anneal('generate', '--model', 'x', '--prompt', 'y', '--temperature', '0.5');
    expect(flag.stderr).toMatch(/^error: --temperature: only applies when sampling/);
    // and the hook does catch a heavy import: a command that needs the models is refused by it
    const heavy = anneal('generate', '--model', 'x', '--prompt', 'y');
    expect(heavy.stderr).toMatch(/heavy import at start-up/);
  });
});
