// Operating-system refusals while writing are StorageErrors that name the file and the fix.
// ENOSPC is real here (/dev/full answers every write with it); the other codes are mapped
// from errors as Node raises them (a read-only mount or a quota cannot be made in a test).
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { writeDirAtomic, writeFileDurable } from './atomic.js';
import { StorageError } from '../errors.js';
import { storageError } from './storage.js';

const errno = (code: string) => Object.assign(new Error(`${code}: raw message`), { code });
const described = (f: () => unknown) => {
  try {
    f();
    return 'written';
  } catch (e) {
    return e instanceof StorageError ? e.describe() : `not a named error: ${String(e)}`;
  }
};

describe('writing runs and checkpoints', () => {
  it.runIf(existsSync('/dev/full'))('disk full: names the file, how much was written, and what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'anneal-full-'));
    const file = join(dir, 'model.safetensors');
    symlinkSync('/dev/full', file);
    expect(described(() => writeFileDurable(file, new Uint8Array(97_280)))).toMatch(
      /model\.safetensors: disk full while writing \(wrote 0 bytes of 95 KB\)\nhint: free space on that disk, or set outputDir/,
    );
  });

  it.runIf(existsSync('/dev/full'))(
    'a checkpoint cut short by a full disk leaves the previous one intact',
    async () => {
      const parent = mkdtempSync(join(tmpdir(), 'anneal-full-'));
      const ckpt = join(parent, 'step-4');
      await writeDirAtomic(ckpt, (tmp) => writeFileDurable(join(tmp, 'model.safetensors'), 'old weights'));
      const e = await writeDirAtomic(ckpt, (tmp) => {
        symlinkSync('/dev/full', join(tmp, 'model.safetensors'));
        writeFileDurable(join(tmp, 'model.safetensors'), 'new weights');
      }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(StorageError);
      expect((e as StorageError).file).toBe(join(ckpt, 'model.safetensors')); // the checkpoint's name, not the temp folder's
      expect(readFileSync(join(ckpt, 'model.safetensors'), 'utf8')).toBe('old weights');
    },
  );

  it('read-only file systems, permissions and quotas are named with the file and a hint; other errors pass through', () => {
    const file = '/runs/r/checkpoints/step-8/model.safetensors';
    const msg = (code: string) =>
      (storageError(errno(code), file, { wrote: 57_344, total: 97_280 }) as StorageError).describe();
    expect(msg('EROFS')).toMatch(
      /^\/runs\/r\/checkpoints\/step-8\/model\.safetensors: the file system is read-only\nhint: set outputDir to a writable folder/,
    );
    expect(msg('EACCES')).toMatch(/no permission to write here \(\/ is not writable\)/);
    expect(msg('EPERM')).toMatch(/no permission to write here/);
    expect(msg('EDQUOT')).toMatch(/disk quota exceeded while writing \(wrote 56 KB of 95 KB\)/);
    expect(msg('ENOSPC')).toMatch(/disk full while writing \(wrote 56 KB of 95 KB\)/);
    const other = errno('EISDIR');
    expect(storageError(other, file)).toBe(other);
    const writableEnoent = errno('ENOENT');
    expect(storageError(writableEnoent, join(tmpdir(), 'a', 'b'))).toBe(writableEnoent); // a real missing path, not a permission problem
  });

  it('a read-only output folder is reported as not writable, not as ENOENT (as root: in a child that drops to nobody)', () => {
    const root = mkdtempSync(join(tmpdir(), 'anneal-ro-'));
    chmodSync(root, 0o755);
    const ro = join(root, 'runs');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    // Root may write anywhere, so the check runs as uid/gid 65534 when the tests run as root.
    const script = join(root, 'check.mts');
    writeFileSync(
      script,
      [
        'if (process.getuid() === 0) { process.setgid(65534); process.setuid(65534); }',
        'const { makeDir } = await import(process.argv[2]);',
        'const { writeFileAtomic } = await import(process.argv[3]);',
        'for (const f of [() => makeDir(process.argv[4] + "/r/checkpoints"), () => writeFileAtomic(process.argv[4] + "/config.yaml", "x")]) {',
        '  try { f(); console.log("written"); } catch (e) { console.log(e.constructor.name + " " + (e.describe?.() ?? String(e)).replace(/\\n/g, " | ")); }',
        '}',
      ].join('\n'),
    );
    const here = (f: string) => fileURLToPath(new URL(f, import.meta.url));
    const r = spawnSync(process.execPath, ['--import', 'tsx', script, here('./storage.ts'), here('./atomic.ts'), ro], {
      encoding: 'utf8',
    });
    const [mkdir, write] = r.stdout.trim().split('\n');
    expect(mkdir, r.stderr).toMatch(
      /^StorageError .*runs[\\/]r[\\/]checkpoints: no permission to write here \(.*runs is not writable\)/,
    );
    expect(write, r.stderr).toMatch(/^StorageError .*config\.yaml: no permission to write here/);
  });

  it('an ordinary write still works', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'anneal-ok-')), 'x.json');
    writeFileDurable(file, '{"a": 1}');
    writeFileSync(file + '.check', readFileSync(file));
    expect(readFileSync(file + '.check', 'utf8')).toBe('{"a": 1}');
  });
});
