// Crash-safe writes. A folder is built under a temporary name next to its final place,
// every file and the folder itself are fsynced, then one rename(2) publishes it. A
// SIGKILL at any moment therefore leaves either the old state or the complete new one.
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { StorageError } from '../errors.js';
import { makeDir, storageError, writing } from './storage.js';

export const TMP_PREFIX = '.tmp-';

function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Writes a file and fsyncs it. An operating-system refusal (disk full, read-only, no
 * permission) is a StorageError naming the file and how much of it was written.
 */
export function writeFileDurable(path: string, data: string | Uint8Array): void {
  const bytes = typeof data === 'string' ? Buffer.from(data) : data;
  let wrote = 0;
  let fd: number | undefined;
  try {
    fd = openSync(path, 'w');
    while (wrote < bytes.byteLength) wrote += writeSync(fd, bytes, wrote, Math.min(bytes.byteLength - wrote, 1 << 30));
    fsyncSync(fd);
  } catch (e) {
    throw storageError(e, path, { wrote, total: bytes.byteLength });
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** A StorageError about a file under a temporary name, told with the name it was being written for. */
function renamed(e: unknown, tmp: string, final: string): unknown {
  if (!(e instanceof StorageError) || !e.file?.startsWith(tmp)) return e;
  return new StorageError(e.message, { file: final + e.file.slice(tmp.length), hint: e.hint, cause: e });
}

/** Writes a single file atomically (temp file + rename). */
export function writeFileAtomic(path: string, data: string | Uint8Array): void {
  const tmp = join(dirname(path), `${TMP_PREFIX}${basename(path)}.${process.pid}`);
  try {
    writeFileDurable(tmp, data);
  } catch (e) {
    throw renamed(e, tmp, path);
  }
  writing(path, () => {
    renameSync(tmp, path);
    fsyncPath(dirname(path));
  });
}

/**
 * Creates `finalDir` atomically: `fill(tmpDir)` writes the contents (use
 * writeFileDurable), then the folder is renamed into place. An existing `finalDir`
 * is replaced only after the new one is complete.
 */
export async function writeDirAtomic(finalDir: string, fill: (tmpDir: string) => void | Promise<void>): Promise<void> {
  const parent = dirname(finalDir);
  makeDir(parent);
  const tmp = join(parent, `${TMP_PREFIX}${basename(finalDir)}.${process.pid}`);
  writing(tmp, () => {
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp);
  });
  try {
    await fill(tmp);
  } catch (e) {
    throw renamed(e, tmp, finalDir);
  }
  writing(finalDir, () => {
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
  });
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
