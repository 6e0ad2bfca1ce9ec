// Crash-safe writes. A folder is built under a temporary name next to its final place,
// every file and the folder itself are fsynced, then one rename(2) publishes it. A
// SIGKILL at any moment therefore leaves either the old state or the complete new one.
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

export const TMP_PREFIX = '.tmp-';

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file and fsyncs it. */
export function writeFileDurable(path: string, data: string | Uint8Array): void {
  const fd = openSync(path, 'w');
  try {
    writeFileSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a single file atomically (temp file + rename). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `${TMP_PREFIX}${basename(path)}.${process.pid}`);
  writeFileDurable(tmp, data);
  renameSync(tmp, path);
  fsyncPath(dirname(path));
}

/**
 * Creates `finalDir` atomically: `fill(tmpDir)` writes the contents (use
 * writeFileDurable), then the folder is renamed into place. An existing `finalDir`
 * is replaced only after the new one is complete.
 */
export async function writeDirAtomic(finalDir: string, fill: (tmpDir: string) => void | Promise<void>): Promise<void> {
  const parent = dirname(finalDir);
  mkdirSync(parent, { recursive: true });
  const tmp = join(parent, `${TMP_PREFIX}${basename(finalDir)}.${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  await fill(tmp);
  fsyncPath(tmp);
  if (existsSync(finalDir)) {
    const old = join(parent, `${TMP_PREFIX}old-${basename(finalDir)}.${process.pid}`);
    renameSync(finalDir, old);
    renameSync(tmp, finalDir);
    rmSync(old, { recursive: true, force: true });
  } else {
    renameSync(tmp, finalDir);
  }
  fsyncPath(parent);
}

/** Removes leftovers of writes that a crash interrupted. */
export function removeStaleTemps(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const removed: string[] = [];
  for (const name of readdirSync(dir)) {
    if (name.startsWith(TMP_PREFIX)) {
      rmSync(join(dir, name), { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}
