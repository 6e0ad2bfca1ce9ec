// `anneal launch --nproc N [--nnodes M --node-rank R --master-addr A --master-port P] -- train <config>`:
// torchrun for Anneal. Starts N worker processes of this CLI on this node with RANK,
// LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR and MASTER_PORT set, and supervises
// them: if one fails, the others are stopped and the exit status names the failed rank.
// Ctrl-C is passed on to every worker (each saves a checkpoint at the same step and exits).
import { spawn, type ChildProcess } from 'node:child_process';

export interface LaunchFlags {
  nproc: string;
  nnodes: string;
  nodeRank: string;
  masterAddr: string;
  masterPort: string;
}

export async function launch(args: string[], f: LaunchFlags, log: (s: string) => void): Promise<number> {
  const [nproc, nnodes, nodeRank, port] = [f.nproc, f.nnodes, f.nodeRank, f.masterPort].map(Number);
  if (!(nproc >= 1) || !(nnodes >= 1) || !(nodeRank >= 0 && nodeRank < nnodes) || !(port > 0 && port < 65536))
    throw new Error(
      `launch: need --nproc ≥ 1, --nnodes ≥ 1, 0 ≤ --node-rank < nnodes and a TCP port, got nproc ${f.nproc}, nnodes ${f.nnodes}, node-rank ${f.nodeRank}, master-port ${f.masterPort}`,
    );
  if (!args.length)
    throw new Error(
      'launch: nothing to run; give the command after "--", e.g. anneal launch --nproc 2 -- train configs/quickstart.yaml',
    );
  const world = nproc * nnodes;
  log(
    `launch: ${nproc} process(es) on node ${nodeRank} of ${nnodes} (world size ${world}), rendezvous at ${f.masterAddr}:${port}`,
  );
  const children: ChildProcess[] = [];
  let failed: { rank: number; code: number | null; signal: NodeJS.Signals | null } | undefined;
  const done = Array.from({ length: nproc }, (_, local) => {
    const rank = nodeRank * nproc + local;
    const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...args], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: {
        ...process.env,
        RANK: String(rank),
        LOCAL_RANK: String(local),
        WORLD_SIZE: String(world),
        LOCAL_WORLD_SIZE: String(nproc),
        MASTER_ADDR: f.masterAddr,
        MASTER_PORT: String(port),
      },
    });
    children.push(child);
    return new Promise<void>((res) =>
      child.on('exit', (code, signal) => {
        if ((code !== 0 || signal) && !failed) {
          failed = { rank, code, signal };
          for (const other of children) if (other !== child && other.exitCode === null) other.kill('SIGTERM');
        }
        res();
      }),
    );
  });
  const forward = () => children.forEach((c) => c.exitCode === null && c.kill('SIGINT'));
  process.on('SIGINT', forward);
  await Promise.all(done);
  process.off('SIGINT', forward);
  if (failed) {
    log(
      `launch: rank ${failed.rank} failed (${failed.signal ? `signal ${failed.signal}` : `exit code ${failed.code}`}); the other ranks were stopped`,
    );
    return 1;
  }
  return 0;
}

/**
 * One GPU per local rank under `anneal launch` (as torchrun + DDP): a config's cuda:N
 * becomes cuda:LOCAL_RANK when several processes run; cpu stays cpu.
 */
export function rankDevice(device: string, env: NodeJS.ProcessEnv = process.env): string {
  const world = Number(env.WORLD_SIZE ?? 1);
  return world > 1 && device.startsWith('cuda') && env.LOCAL_RANK !== undefined
    ? `cuda:${Number(env.LOCAL_RANK)}`
    : device;
}
