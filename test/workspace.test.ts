// Workspace-level checks: configs, package entry points, and the dependency direction.
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { loadConfig } from '@anneal/core';
import {
  ClassificationConfigSchema,
  ClmConfigSchema,
  MlmConfigSchema,
  Seq2SeqConfigSchema,
  SftConfigSchema,
  T5SpanConfigSchema,
} from '@anneal/trainers';
import { TrainTokenizerConfigSchema } from '@anneal/tokenizers';
import { DataConfigSchema } from '@anneal/data';
import { EvalConfigSchema } from '@anneal/eval';
import { RewardConfigSchema } from '@anneal/reward-model';
import { CpoConfigSchema, DpoConfigSchema, OrpoConfigSchema } from '@anneal/dpo';
import { PpoConfigSchema } from '@anneal/ppo';
import { GrpoConfigSchema } from '@anneal/grpo';
import { RlooConfigSchema } from '@anneal/rloo';
import { KtoConfigSchema } from '@anneal/kto';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGES = readdirSync(join(ROOT, 'packages'));

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? yamlFiles(join(dir, e.name)) : /\.ya?ml$/.test(e.name) ? [join(dir, e.name)] : [],
  );
}

describe('configs/', () => {
  const files = yamlFiles(join(ROOT, 'configs'));
  it('has configs', () => expect(files.length).toBeGreaterThan(0));
  it.each(files.map((f) => [f.slice(ROOT.length)]))(
    '%s validates and starts with a comment saying how to launch it',
    (rel) => {
      const file = join(ROOT, rel);
      const text = readFileSync(file, 'utf8');
      expect(text.startsWith('#')).toBe(true);
      if (/^kind:/m.test(text)) {
        // a tokenizer training config (anneal tokenizer train)
        expect(text).toMatch(/anneal tokenizer train/);
        expect(loadConfig(file, TrainTokenizerConfigSchema).config.files.length).toBeGreaterThan(0);
        return;
      }
      if (/^tasks:/m.test(text)) {
        // an eval config (anneal eval)
        expect(text).toMatch(/anneal eval/);
        expect(loadConfig(file, EvalConfigSchema).config.model.length).toBeGreaterThan(0);
        return;
      }
      if (!/^recipe:/m.test(text)) {
        // a data config (anneal data inspect)
        expect(text).toMatch(/anneal data inspect/);
        expect(
          DataConfigSchema.safeParse(
            (loadConfig(file, z.looseObject({ data: z.unknown() })).config as { data: unknown }).data,
          ).success,
        ).toBe(true);
        return;
      }
      expect(text).toMatch(/anneal train/);
      expect(text).toMatch(/--set /);
      const recipe = /^recipe:\s*(\S+)/m.exec(text)?.[1];
      const schemas = {
        clm: ClmConfigSchema,
        sft: SftConfigSchema,
        mlm: MlmConfigSchema,
        't5-span': T5SpanConfigSchema,
        seq2seq: Seq2SeqConfigSchema,
        classification: ClassificationConfigSchema,
        reward: RewardConfigSchema,
        dpo: DpoConfigSchema,
        ppo: PpoConfigSchema,
        grpo: GrpoConfigSchema,
        rloo: RlooConfigSchema,
        kto: KtoConfigSchema,
        orpo: OrpoConfigSchema,
        cpo: CpoConfigSchema,
      };
      expect(Object.keys(schemas)).toContain(recipe); // the CLI dispatches on this field
      const { config } = loadConfig(file, schemas[recipe as keyof typeof schemas]);
      expect(config.recipe).toBe(recipe);
    },
  );
});

describe('packages', () => {
  it.each(PACKAGES)('@anneal/%s is importable by name from Node (tsx)', (name) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '-e', `await import('@anneal/${name}')`], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(r.status, r.stderr).toBe(0);
  });

  it.each(PACKAGES)('@anneal/%s has a README and a src/index.ts', (name) => {
    expect(readdirSync(join(ROOT, 'packages', name))).toEqual(
      expect.arrayContaining(['README.md', 'src', 'package.json', 'vitest.config.ts']),
    );
    expect(readdirSync(join(ROOT, 'packages', name, 'src'))).toContain('index.ts');
  });
});

describe('module boundaries (Nx lint)', () => {
  // The lint rule reads Nx's project graph; make sure it is computed.
  execFileSync(join(ROOT, 'node_modules/.bin/nx'), ['show', 'projects'], {
    cwd: ROOT,
    env: { ...process.env, NX_DAEMON: 'false' },
    stdio: 'ignore',
  });
  const eslint = new ESLint({ cwd: ROOT });
  const lint = async (file: string, code: string) => {
    const [res] = await eslint.lintText(code, { filePath: join(ROOT, file) });
    return res.messages.filter((m) => m.ruleId === '@nx/enforce-module-boundaries').map((m) => m.message);
  };

  it.each([
    ['packages/modeling/src/probe.ts', '@anneal/trainers', 'foundation importing a method (upward)'],
    ['packages/core/src/probe.ts', '@anneal/modeling', 'core importing a foundation package (upward)'],
    ['packages/dpo/src/probe.ts', '@anneal/trainers', 'a method importing another method'],
    ['packages/tokenizers/src/probe.ts', '@anneal/data', 'foundation packages importing each other'],
    ['packages/training/src/probe.ts', '@anneal/dpo', 'the shared training layer importing a method (upward)'],
    ['packages/peft-lora/src/probe.ts', '@anneal/training', 'an extension importing the training layer (upward)'],
  ])('rejects %s importing %s (%s)', async (file, target) => {
    const messages = await lint(file, `import * as x from '${target}';\nexport const y = x;\n`);
    expect(messages.length).toBe(1);
    // An upward import also closes a cycle, which the rule reports first; the others break a tag constraint.
    expect(messages[0]).toMatch(/tagged with|Circular dependency/);
  });

  it('names the tag constraint for a method importing a method', async () => {
    const [msg] = await lint(
      'packages/dpo/src/probe.ts',
      `import * as x from '@anneal/trainers';\nexport const y = x;\n`,
    );
    expect(msg).toMatch(/tagged with "layer:method" can only depend on libs tagged with .*"layer:extension"/s);
  });

  it('allows the documented direction', async () => {
    expect(
      await lint('packages/trainers/src/probe.ts', `import * as x from '@anneal/modeling';\nexport const y = x;\n`),
    ).toEqual([]);
    expect(
      await lint('apps/anneal/src/probe.ts', `import * as x from '@anneal/trainers';\nexport const y = x;\n`),
    ).toEqual([]);
    expect(
      await lint('packages/dpo/src/probe.ts', `import * as x from '@anneal/training';\nexport const y = x;\n`),
    ).toEqual([]);
    expect(
      await lint('packages/training/src/probe.ts', `import * as x from '@anneal/peft-lora';\nexport const y = x;\n`),
    ).toEqual([]);
  });
});
