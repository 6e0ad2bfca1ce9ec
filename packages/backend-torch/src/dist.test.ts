// c10d collectives across two real processes on loopback (Gloo): all-reduce (sum, mean,
// buckets over 25 MB) and broadcast give the same numbers on both ranks; a rank whose peer
// never comes fails with an error naming it instead of hanging.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import { freeLocalPort, useBackend } from '@anneal/core';
import { ProcessGroup, collectiveBackends, collectivesAvailable, registerTorchBackend } from './index.js';

const WORKER = fileURLToPath(new URL('./test-dist-worker.ts', import.meta.url));
// In CI (CI=true) the collectives are required: set-up installs libgloo-dev, so a skip would hide a broken build.
const d = collectivesAvailable() || process.env.CI === 'true' ? describe : describe.skip;

function worker(
  rank: number,
  world: number,
  port: number,
  extra: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((res) => {
    const p = spawn(process.execPath, ['--import', 'tsx', WORKER], {
      env: {
        ...process.env,
        RANK: String(rank),
        WORLD_SIZE: String(world),
        MASTER_ADDR: '127.0.0.1',
        MASTER_PORT: String(port),
        ANNEAL_NUM_THREADS: '1',
        ...extra,
      },
    });
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
      expect([g.b, g.bShape]).toEqual([
        [1, 1, 1, 1],
        [2, 2],
      ]); // 0 + 1
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

describe('c10d backends', () => {
  it('lists the backends the addon has; asking for one it lacks is an error that says so', async () => {
    const backends = collectiveBackends();
    expect(backends.includes('gloo')).toBe(collectivesAvailable());
    if (backends.includes('nccl')) return; // (a CUDA build: the GPU test below covers it)
    const port = await freeLocalPort();
    expect(() =>
      ProcessGroup.init({
        rank: 0,
        worldSize: 1,
        masterAddr: '127.0.0.1',
        masterPort: port,
        backend: 'nccl',
        timeoutMs: 5000,
      }),
    ).toThrow(/built without NCCL/);
  });

  // On a GPU machine (tools/gpu/check.sh, ANNEAL_DEVICE=cuda:0): what one GPU can show of
  // the NCCL path — a world of one over NCCL, then over Gloo, on CUDA tensors. Several GPUs
  // (real reductions across devices) are not available there.
  const gpu = (process.env.ANNEAL_DEVICE ?? 'cpu').startsWith('cuda');
  it.runIf(gpu)(
    'world size 1 on cuda: all-reduce and broadcast over NCCL and over Gloo',
    async () => {
      registerTorchBackend({ warn: () => undefined });
      await useBackend('torch', {});
      for (const backend of collectiveBackends()) {
        const pg = ProcessGroup.init({
          rank: 0,
          worldSize: 1,
          masterAddr: '127.0.0.1',
          masterPort: await freeLocalPort(),
          backend,
          timeoutMs: 30_000,
        });
        const x = tf.tensor1d([1, 2, 3]);
        const [sum] = pg.allReduce([x], 'sum');
        const [avg] = pg.allReduce([x], 'avg');
        const [bc] = pg.broadcast([x], 0);
        expect([Array.from(sum.dataSync()), Array.from(avg.dataSync()), Array.from(bc.dataSync())], backend).toEqual([
          [1, 2, 3],
          [1, 2, 3],
          [1, 2, 3],
        ]);
        pg.barrier();
        pg.destroy();
        tf.dispose([x, sum, avg, bc]);
      }
      expect(collectiveBackends()).toContain('nccl');
    },
    60_000,
  );
});
