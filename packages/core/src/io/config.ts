// YAML configs that map one-to-one onto typed option objects.
//
//   extends: ./base.yaml      # deep-merged underneath this file (paths relative to it)
//   --set optim.lr=3e-4       # command-line override, value parsed as YAML
//
// Validation reports every problem at once, each with its dotted path.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseDocument, stringify } from 'yaml';
import type { z } from 'zod';
import { ConfigError } from '../errors.js';

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Objects merge key by key; everything else (scalars, arrays) replaces. */
export function deepMerge(base: Obj, over: Obj): Obj {
  const out: Obj = { ...base };
  for (const [k, v] of Object.entries(over)) {
    out[k] = isObj(v) && isObj(out[k]) ? deepMerge(out[k] as Obj, v) : v;
  }
  return out;
}

/** Keys that would reach an object's prototype when merged: no option has these names. */
const PROTO_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/** Refuses `__proto__`/`constructor`/`prototype` keys at any depth, as the unknown keys they are. */
function refuseProtoKeys(v: unknown, path: string, where: { file?: string; field?: string }): void {
  if (!v || typeof v !== 'object') return;
  for (const k of Object.keys(v)) {
    const at = path ? `${path}.${k}` : k;
    if (PROTO_KEYS.has(k))
      throw new ConfigError(`1 problem in the config:\n  ${at}: unknown key`, {
        ...where,
        hint: 'no option has this name (it would reach JavaScript object internals)',
      });
    refuseProtoKeys((v as Record<string, unknown>)[k], at, where);
  }
}

/**
 * A parsed YAML document as plain data. Aliases that expand too far (a "billion laughs" bomb;
 * the yaml library stops at 100 alias expansions) or name no anchor are ConfigErrors.
 */
function yamlToJs(doc: ReturnType<typeof parseDocument>, where: { file?: string; field?: string }): unknown {
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    const msg = (e as Error).message;
    if (/alias count/i.test(msg))
      throw new ConfigError('YAML aliases expand too far (more than 100 alias expansions: an alias bomb?)', {
        ...where,
        hint: 'write the values out, or use fewer nested aliases',
      });
    if (/unresolved alias/i.test(msg))
      throw new ConfigError(`YAML alias with no anchor: ${msg.replace(/^.*?:\s*/, '')}`, {
        ...where,
        hint: 'an alias *name needs an anchor &name before it; quote the value if * is meant literally',
      });
    throw new ConfigError(`not valid YAML: ${msg}`, where);
  }
}

function readYaml(file: string, chain: string[]): Obj {
  if (chain.includes(file))
    throw new ConfigError(`extends cycle: ${[...chain, file].join(' -> ')}`, { file, field: 'extends' });
  if (!existsSync(file)) {
    throw new ConfigError('config file not found', {
      file,
      hint: chain.length
        ? `it is named by "extends" in ${chain[chain.length - 1]}`
        : 'check the path (it is relative to the current directory)',
    });
  }
  const doc = parseDocument(readFileSync(file, 'utf8'), { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const msgs = doc.errors.map((e) => e.message.split('\n')[0]);
    throw new ConfigError(`not valid YAML: ${msgs.join('; ')}`, { file });
  }
  const data = yamlToJs(doc, { file }) ?? {};
  refuseProtoKeys(data, '', { file });
  if (!isObj(data))
    throw new ConfigError(
      `expected a mapping of options at the top level, got ${Array.isArray(data) ? 'a list' : typeof data}`,
      { file },
    );
  const { extends: parent, ...rest } = data;
  if (parent === undefined) return rest;
  if (typeof parent !== 'string')
    throw new ConfigError(`expected a file path, got ${JSON.stringify(parent)}`, { file, field: 'extends' });
  const base = readYaml(resolve(dirname(file), parent), [...chain, file]);
  return deepMerge(base, rest);
}

/** A YAML document's data (a config as a run folder stores it), with the same checks as a config file. */
export function parseConfigText(text: string, file: string): Obj {
  const doc = parseDocument(text, { uniqueKeys: true });
  if (doc.errors.length) throw new ConfigError(`not valid YAML: ${doc.errors[0].message.split('\n')[0]}`, { file });
  const data = yamlToJs(doc, { file }) ?? {};
  refuseProtoKeys(data, '', { file });
  return isObj(data) ? data : {};
}

/** Applies `a.b.c=value` overrides; the value is parsed as YAML (`3e-4` is a number, `[1,2]` a list). */
export function applyOverrides(config: Obj, overrides: string[]): Obj {
  let out = config;
  for (const o of overrides) {
    const eq = o.indexOf('=');
    if (eq <= 0)
      throw new ConfigError(`override ${JSON.stringify(o)} is not key.path=value`, {
        field: '--set',
        hint: 'example: --set optim.lr=3e-4',
      });
    const path = o.slice(0, eq).split('.');
    const where = { field: '--set', file: undefined };
    const bad = path.find((k) => PROTO_KEYS.has(k) || k === '');
    if (bad !== undefined)
      throw new ConfigError(`override ${JSON.stringify(o)}: ${path.join('.')}: ${bad ? 'unknown key' : 'empty key'}`, {
        ...where,
        hint: 'example: --set optim.lr=3e-4',
      });
    const doc = parseDocument(o.slice(eq + 1));
    const value = doc.errors.length ? o.slice(eq + 1) : yamlToJs(doc, where);
    refuseProtoKeys(value, path.join('.'), where);
    let patch: unknown = value;
    for (let i = path.length - 1; i >= 0; i--) patch = { [path[i]]: patch };
    out = deepMerge(out, patch as Obj);
  }
  return out;
}

function valueAt(obj: unknown, path: PropertyKey[]): unknown {
  let cur = obj;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[p];
  }
  return cur;
}

function describeValue(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (typeof v === 'string') return JSON.stringify(v);
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** Turns zod issues into `path: problem` lines, with the offending values. */
export function formatIssues(issues: z.core.$ZodIssue[], input: unknown): string[] {
  const lines: string[] = [];
  for (const issue of issues) {
    const path = issue.path.map(String).join('.');
    const at = path ? `${path}: ` : '';
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const k of issue.keys) lines.push(`${path ? path + '.' : ''}${k}: unknown key`);
        break;
      case 'invalid_type': {
        const v = valueAt(input, issue.path);
        lines.push(
          v === undefined
            ? `${at}missing (expected ${issue.expected === 'object' ? 'a mapping' : issue.expected})`
            : `${at}expected ${issue.expected}, got ${describeValue(v)}`,
        );
        break;
      }
      case 'invalid_value':
        lines.push(
          `${at}expected one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(valueAt(input, issue.path))}`,
        );
        break;
      default:
        lines.push(`${at}${issue.message}`);
    }
  }
  return lines;
}

/** Validates a plain object; throws one ConfigError listing every problem. */
export function validateConfig<S extends z.ZodType>(schema: S, data: unknown, file?: string): z.infer<S> {
  const result = schema.safeParse(data);
  if (result.success) return result.data;
  const lines = formatIssues(result.error.issues, data);
  throw new ConfigError(
    `${lines.length} problem${lines.length > 1 ? 's' : ''} in the config:\n  ${lines.join('\n  ')}`,
    {
      file,
      hint: 'fix the fields above (or override them with --set key.path=value)',
    },
  );
}

export interface LoadedConfig<T> {
  config: T;
  /** The merged YAML before defaults were applied (what the user wrote). */
  raw: Obj;
}

/** Reads a YAML config (following `extends`) and applies overrides, without validating. */
export function readConfig(file: string, overrides: string[] = []): Obj {
  return applyOverrides(readYaml(resolve(file), []), overrides);
}

/** Reads a YAML config (following `extends`), applies overrides and validates it. */
export function loadConfig<S extends z.ZodType>(
  file: string,
  schema: S,
  overrides: string[] = [],
): LoadedConfig<z.infer<S>> {
  const raw = readConfig(file, overrides);
  return { config: validateConfig(schema, raw, file), raw };
}

/** The resolved config as YAML, for printing and for the run folder. */
export function configToYaml(config: unknown): string {
  return stringify(config, { lineWidth: 0 });
}
