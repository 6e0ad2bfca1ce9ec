// Operating-system errors while writing runs and checkpoints, as errors a person can act on:
// which file, how far the write got, and what to do. A raw `ENOSPC: no space left on device,
// write` names neither the file nor the fix, and a read-only folder can surface as a
// misleading ENOENT from a recursive mkdir; here the nearest existing folder is checked.
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { StorageError } from '../errors.js';

const kb = (n: number) =>
  n < 10_240 ? `${n} bytes` : n < 10 * 2 ** 20 ? `${Math.round(n / 1024)} KB` : `${(n / 2 ** 20).toFixed(1)} MB`;

/** The nearest folder at or above `path` that exists. */
function existingAncestor(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

const isWritable = (dir: string) => {
  try {
    accessSync(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
};

/**
 * Maps an error thrown while writing `file` to a StorageError (ENOSPC, EDQUOT, EROFS, EACCES,
 * EPERM, and ENOENT under a folder that cannot be written); anything else is returned as is.
 */
export function storageError(e: unknown, file: string, progress?: { wrote: number; total: number }): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const how = progress && progress.total > 0 ? ` (wrote ${kb(progress.wrote)} of ${kb(progress.total)})` : '';
  const where = { file, cause: e };
  switch (code) {
    case 'ENOSPC':
      return new StorageError(`disk full while writing${how}`, {
        ...where,
        hint: 'free space on that disk, or set outputDir to a folder on another one; the previous checkpoint is intact',
      });
    case 'EDQUOT':
      return new StorageError(`disk quota exceeded while writing${how}`, {
        ...where,
        hint: 'free space within your quota, or set outputDir elsewhere; the previous checkpoint is intact',
      });
    case 'EROFS':
      return new StorageError('the file system is read-only', { ...where, hint: 'set outputDir to a writable folder' });
    case 'EACCES':
    case 'EPERM':
      return new StorageError(`no permission to write here (${existingAncestor(dirname(file))} is not writable)`, {
        ...where,
        hint: 'set outputDir to a folder you can write, or change its permissions',
      });
    case 'ENOENT': {
      const ancestor = existingAncestor(dirname(file));
      if (!isWritable(ancestor))
        return new StorageError(`cannot create the folder: ${ancestor} is not writable`, {
          ...where,
          hint: 'set outputDir to a folder you can write',
        });
      return e;
    }
    default:
      return e;
  }
}

/** Runs a write of `file`, turning operating-system refusals into StorageErrors. */
export function writing<T>(file: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw storageError(e, file);
  }
}

/** mkdir -p, with a folder that cannot be created reported as a StorageError naming it. */
export function makeDir(dir: string): void {
  writing(dir, () => mkdirSync(dir, { recursive: true }));
}
