// Test support: a stand-in for the Hub's write side, as a fetch function — repo creation
// (409 when it exists, 401 for a wrong token), the preupload check (.safetensors and .onnx go
// to LFS), the LFS batch API (basic transfer; uploads to lfs.fake), the uploads themselves
// (failing with 500 when asked) and the ndjson commit, which applies all of a commit's files at
// once. serveFakeHub puts it behind a local HTTP server for a separate process (HF_ENDPOINT).
import { createServer, type Server } from 'node:http';

export interface FakeHubRepoState {
  files: Map<string, Uint8Array>;
  commits: string[];
  private: boolean;
}

export interface FakeHubPush {
  fetch: typeof fetch;
  repos: Map<string, FakeHubRepoState>;
  /** "METHOD /path" of every request, in order. */
  log: string[];
}

export function fakeHubPush(o: { token?: string; failUploads?: boolean; lfsBase?: string } = {}): FakeHubPush {
  const token = o.token ?? 'hf_test';
  const lfsBase = o.lfsBase ?? 'https://lfs.fake';
  const repos = new Map<string, FakeHubRepoState>();
  const log: string[] = [];
  const lfs = new Map<string, Uint8Array>();
  const json = (body: unknown, status = 200) =>
    new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const bytes = async (body: unknown): Promise<Uint8Array> =>
    body instanceof Blob
      ? new Uint8Array(await body.arrayBuffer())
      : body instanceof Uint8Array
        ? body
        : typeof body === 'string'
          ? new TextEncoder().encode(body)
          : new Uint8Array();
  const fetch: typeof globalThis.fetch = (async (input: string | URL | Request, init: RequestInit = {}) => {
    const url = new URL(String(input));
    const method = init.method ?? 'GET';
    log.push(`${method} ${url.pathname}`);
    const auth = new Headers(init.headers).get('Authorization');
    let m: RegExpMatchArray | null;
    if (method === 'POST' && url.pathname === '/api/repos/create') {
      if (auth !== `Bearer ${token}`) return json({ error: 'Invalid credentials in Authorization header' }, 401);
      const body = JSON.parse(String(init.body));
      const id = `${body.organization}/${body.name}`;
      if (repos.has(id)) return json({ error: 'You already created this model repo' }, 409);
      repos.set(id, { files: new Map(), commits: [], private: body.visibility === 'private' });
      return json({ url: `${url.origin}/${id}`, name: id });
    }
    if (method === 'POST' && (m = url.pathname.match(/^\/api\/models\/(.+)\/preupload\/main$/))) {
      const body = JSON.parse(String(init.body)) as { files: Array<{ path: string }> };
      const mode = (p: string) => (/\.(safetensors|onnx|bin)$/.test(p) ? 'lfs' : 'regular');
      return json({ files: body.files.map((f) => ({ path: f.path, uploadMode: mode(f.path) })) });
    }
    if (method === 'POST' && /\.git\/info\/lfs\/objects\/batch$/.test(url.pathname)) {
      const body = JSON.parse(String(init.body)) as { objects: Array<{ oid: string; size: number }> };
      return json({
        transfer: 'basic',
        objects: body.objects.map((obj) => ({ ...obj, actions: { upload: { href: `${lfsBase}/lfs/${obj.oid}` } } })),
      });
    }
    if (method === 'PUT' && url.pathname.startsWith('/lfs/')) {
      if (o.failUploads) return new Response('storage unavailable', { status: 500 });
      lfs.set(url.pathname.slice(5), await bytes(init.body));
      return new Response(null, { status: 200 });
    }
    if (method === 'POST' && (m = url.pathname.match(/^\/api\/models\/(.+)\/commit\/main$/))) {
      const repo = repos.get(m[1]);
      if (!repo) return json({ error: 'Repository not found' }, 404);
      const lines = String(init.body)
        .split('\n')
        .map((l) => JSON.parse(l) as { key: string; value: Record<string, unknown> });
      const next = new Map(repo.files);
      for (const { key, value } of lines) {
        if (key === 'file') next.set(String(value.path), Buffer.from(String(value.content), 'base64'));
        if (key === 'lfsFile') {
          const data = lfs.get(String(value.oid));
          if (!data) return json({ error: `LFS object ${value.oid} was never uploaded` }, 422);
          next.set(String(value.path), data);
        }
      }
      repo.files = next;
      const oid = String(repo.commits.length + 1).padStart(40, '0');
      repo.commits.push(String(lines[0].value.summary));
      return json({ commitOid: oid, commitUrl: `${url.origin}/${m[1]}/commit/${oid}` });
    }
    return json({ error: `unexpected ${method} ${url.pathname}` }, 400);
  }) as typeof globalThis.fetch;
  return { fetch, repos, log };
}

/** The fake Hub on 127.0.0.1 (uploads go to the same server): its URL, state, and a close(). */
export async function serveFakeHub(o: { token?: string; failUploads?: boolean } = {}) {
  const at: { hub?: FakeHubPush } = {}; // made once the port is known (uploads go to the same server)
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const body = Buffer.concat(chunks);
      const r = await at.hub!.fetch(`http://${req.headers.host}${req.url}`, {
        method: req.method,
        headers: req.headers as Record<string, string>,
        body: req.method === 'PUT' ? new Blob([body]) : body.toString('utf8'),
      });
      res.writeHead(r.status, Object.fromEntries(r.headers));
      res.end(Buffer.from(await r.arrayBuffer()));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const url = `http://127.0.0.1:${port}`;
  const hub = (at.hub = fakeHubPush({ ...o, lfsBase: url }));
  return { url, repos: hub.repos, log: hub.log, close: () => new Promise<void>((r) => server.close(() => r())) };
}
