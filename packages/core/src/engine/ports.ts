// A free TCP port on loopback, for process-group rendezvous in tests and benchmarks (the OS
// picks one; it is free when this returns, though another process could take it after).
import { createServer } from 'node:net';

export function freeLocalPort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer()
      .once('error', rej)
      .listen(0, '127.0.0.1', () => {
        const port = (s.address() as { port: number }).port;
        s.close(() => res(port));
      });
  });
}
