// c10d collectives across two real processes on loopback (Gloo): all-reduce (sum, mean,
// buckets over 25 MB) and broadcast give the same numbers on both ranks; a rank whose peer
// never comes fails with an error naming it instead of hanging.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { freeLocalPort } from '@anneal/core';
import { collectivesAvailable } from './index.js';

const WORKER = fileURLToPath(new URL('./test-dist-worker.ts', import.meta.url));
// In CI (CI=true) the collectives are required: set-up installs libgloo-dev, so a skip would hide a broken build.
const d = collectivesAvailable() || process.env.CI === 'true' ? describe : describe.skip;

function worker(rank: number, world: number, port: number, extra: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--import', 'tsx', WORKER], { env: { ...process.env, RANK: String(rank), WORLD_SIZE: String(world), MASTER_ADDR: '127.0.0.1', MASTER_PORT: String(port), ANNEAL_NUM_THREADS: '1', ...extra } });
    let [out, err] = ['', ''];
    p.stdout.on('data', (b) => (out += b));
    p.stderr.on('data', (b) => (err += b));
    p.on('close', (code) => res({ code, out, err }));
  });
}

d('c10d collectives (Gloo, 2 processes)', () => {
  it('all-reduce and broadcast agree on both ranks', async () => {
    const port = await freeLocalPort();
    const rs = await Promise.all([worker(0, 2, port), worker(1, 2, port)]);
    for (const r of rs) expect(r.code, r.err).toBe(0);
    const got = rs.map((r) => JSON.parse(r.out.trim().split('\n').at(-1)!));
    for (const g of got) {
      expect(g.a).toEqual([3, 30]); // (1 + 2), (10 + 20)
      expect([g.b, g.bShape]).toEqual([[1, 1, 1, 1], [2, 2]]); // 0 + 1
      expect(g.cSum).toBe(3 * 3_000_000);
      expect(g.avg).toEqual([0.5]);
      expect(g.bc).toEqual([101, 201]); // rank 1's
    }
  }, 60_000);

  it('a rank whose peer never joins fails with an error naming it', async () => {
    const port = await freeLocalPort();
    const r = await worker(0, 2, port, { ANNEAL_DIST_TIMEOUT_MS: '1500' });
    expect(r.code).not.toBe(0);
    expect(r.err).toMatch(/rank 0 distInit/);
  }, 60_000);
});
