// Test support: the anneal command run as a user runs it (a separate process, the bin script),
// and the shape every bad-input error must have.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

export const BIN = fileURLToPath(new URL('../bin/anneal.js', import.meta.url));

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs `anneal …` in `cwd` and waits for it (blocking this process). */
export function anneal(args: string[], cwd: string, env: Record<string, string> = {}): CliResult {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, ANNEAL_BACKEND: '', ...env },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `anneal …` without blocking (a fake server in this process can answer it). */
export function annealAsync(args: string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [BIN, ...args], { cwd, env: { ...process.env, ANNEAL_BACKEND: '', ...env } });
    let [stdout, stderr] = ['', ''];
    p.stdout.on('data', (b) => (stdout += b));
    p.stderr.on('data', (b) => (stderr += b));
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** One paragraph naming file/field, exit 2, no stack trace. */
export function expectCleanError(r: CliResult, ...parts: RegExp[]): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toMatch(/^error: /);
  expect(r.stderr).not.toMatch(/\n\s+at /);
  for (const p of parts) expect(r.stderr).toMatch(p);
}
