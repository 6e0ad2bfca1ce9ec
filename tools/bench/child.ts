// Runs a measurement in a child process (so each has its own memory high-water mark) and
// returns the JSON object its last output line holds, or undefined (saying why) on failure.
import { spawnSync } from 'node:child_process';

export function runJson<T>(cmd: string, args: string[]): T | undefined {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !last.startsWith('{')) {
    console.error(`skipped ${args.join(' ')}: ${(r.stderr || r.stdout).trim().split('\n').pop()}`);
    return undefined;
  }
  return JSON.parse(last) as T;
}

/** The same TypeScript benchmark file, run again with `args`. */
export function runSelf<T>(script: string, args: string[]): T | undefined {
  return runJson<T>(process.execPath, ['--import', 'tsx', script, ...args]);
}
