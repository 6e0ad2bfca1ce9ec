import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { ConfigError } from '../errors.js';
import { applyOverrides, loadConfig } from './config.js';

const Schema = z
  .object({
    name: z.string(),
    optim: z.object({ lr: z.number(), betas: z.tuple([z.number(), z.number()]).default([0.9, 0.95]) }).strict(),
    train: z.object({ steps: z.number().int(), kind: z.enum(['a', 'b']).default('a') }).strict(),
  })
  .strict();

function tmp(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-cfg-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

function errorOf(f: () => unknown): ConfigError {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    return e as ConfigError;
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('follows extends, deep-merges, applies --set overrides and defaults', () => {
    const dir = tmp({
      'base.yaml': 'name: base\noptim: { lr: 0.1 }\ntrain: { steps: 10, kind: b }\n',
      'run.yaml': 'extends: ./base.yaml\nname: run\ntrain: { steps: 20 }\n',
    });
    const { config } = loadConfig(join(dir, 'run.yaml'), Schema, ['optim.lr=3e-4', 'optim.betas=[0.8, 0.99]']);
    expect(config).toEqual({ name: 'run', optim: { lr: 3e-4, betas: [0.8, 0.99] }, train: { steps: 20, kind: 'b' } });
  });

  it('reports every problem at once, each with its path and the bad value', () => {
    const dir = tmp({
      'c.yaml': 'name: x\noptim: { lr: "3e-4x", mom: 0.9 }\ntrain: { steps: 1.5, kind: c }\nextra: 1\n',
    });
    const e = errorOf(() => loadConfig(join(dir, 'c.yaml'), Schema));
    expect(e.file).toBe(join(dir, 'c.yaml'));
    expect(e.message).toContain('optim.lr: expected number, got "3e-4x"');
    expect(e.message).toContain('optim.mom: unknown key');
    expect(e.message).toContain('extra: unknown key');
    expect(e.message).toContain('train.kind: expected one of "a", "b", got "c"');
    expect(e.message).toMatch(/train\.steps: .*int/i);
    expect(e.message).toMatch(/^5 problems/);
  });

  it('names a missing file, a missing extends target and bad YAML', () => {
    expect(errorOf(() => loadConfig('/nope/x.yaml', Schema)).message).toContain('config file not found');
    const dir = tmp({
      'a.yaml': 'extends: ./missing.yaml\n',
      'b.yaml': 'name: [unclosed\n',
      'c.yaml': 'extends: ./c.yaml\n',
    });
    const e = errorOf(() => loadConfig(join(dir, 'a.yaml'), Schema));
    expect(e.file).toBe(join(dir, 'missing.yaml'));
    expect(e.hint).toContain('a.yaml');
    expect(errorOf(() => loadConfig(join(dir, 'b.yaml'), Schema)).message).toContain('not valid YAML');
    expect(errorOf(() => loadConfig(join(dir, 'c.yaml'), Schema)).message).toContain('extends cycle');
  });

  it('alias bombs and aliases without an anchor are ConfigErrors naming the file or --set, within the second', () => {
    const laughs = [
      'a: &a [x, x, x, x, x, x, x, x, x]',
      ...'bcdefgh'.split('').map(
        (c, i) =>
          `${c}: &${c} [${Array(9)
            .fill('*' + 'abcdefgh'[i])
            .join(', ')}]`,
      ),
    ].join('\n');
    const dir = tmp({ 'bomb.yaml': `name: x\n${laughs}\n`, 'dangling.yaml': 'name: *nowhere\n' });
    const t0 = Date.now();
    const bomb = errorOf(() => loadConfig(join(dir, 'bomb.yaml'), Schema));
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(bomb.file).toBe(join(dir, 'bomb.yaml'));
    expect(bomb.message).toMatch(/aliases expand too far/);
    const dangling = errorOf(() => loadConfig(join(dir, 'dangling.yaml'), Schema));
    expect([dangling.file, dangling.message]).toEqual([
      join(dir, 'dangling.yaml'),
      expect.stringMatching(/alias with no anchor/),
    ]);
    const set = errorOf(() => applyOverrides({ train: {} }, ['train.steps=*x']));
    expect([set.field, set.message]).toEqual(['--set', expect.stringMatching(/alias with no anchor/)]);
  });

  it('refuses __proto__, constructor and prototype keys as unknown keys (file or --set), leaving Object.prototype alone', () => {
    const dir = tmp({
      'proto.yaml': 'name: x\noptim:\n  __proto__: { polluted: 1 }\n',
      'ctor.yaml': 'name: x\nconstructor: 1\n',
    });
    expect(errorOf(() => loadConfig(join(dir, 'proto.yaml'), Schema)).describe()).toMatch(
      /proto\.yaml.*optim\.__proto__: unknown key/s,
    );
    expect(errorOf(() => loadConfig(join(dir, 'ctor.yaml'), Schema)).describe()).toMatch(/constructor: unknown key/);
    expect(errorOf(() => applyOverrides({}, ['__proto__.polluted=1'])).describe()).toMatch(
      /^--set: .*__proto__\.polluted: unknown key/,
    );
    expect(errorOf(() => applyOverrides({}, ['optim={"constructor": {"prototype": 1}}'])).describe()).toMatch(
      /optim\.constructor: unknown key/,
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('rejects an override without "="', () => {
    expect(errorOf(() => applyOverrides({}, ['optim.lr'])).message).toContain('not key.path=value');
  });
});
