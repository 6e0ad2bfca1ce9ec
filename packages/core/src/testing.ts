// Test support: a stand-in for huggingface.co as a fetch function, serving files from
// memory through the API endpoints @huggingface/hub calls (tree listing, paths-info,
// resolve with byte ranges), so Hub code is tested for real with no network.
import { createHash } from 'node:crypto';

export interface FakeHubRepo {
  type: 'model' | 'dataset';
  name: string;
  /** Files per revision (a branch name such as "main" or "refs/convert/parquet"). */
  revisions: Record<string, Record<string, Uint8Array>>;
  commit: string;
}

export function fakeHubFetch(repos: FakeHubRepo[], log: string[] = []): typeof fetch {
  const oid = (b: Uint8Array) => createHash('sha1').update(b).digest('hex');
  const find = (type: string, name: string, rev: string) => {
    const repo = repos.find((r) => `${r.type}s` === type && r.name === name);
    return repo && { repo, files: repo.revisions[decodeURIComponent(rev)] };
  };
  const entry = (repo: FakeHubRepo, path: string, data: Uint8Array) => ({
    type: 'file',
    path,
    oid: oid(data),
    size: data.length,
    lastCommit: { id: repo.commit, date: '2024-04-18T00:00:00Z', title: 'fake' },
  });
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(String(input));
    log.push(`${init?.method ?? 'GET'} ${url.pathname}`);
    const notFound = () => new Response('not found', { status: 404, headers: { 'X-Error-Code': 'EntryNotFound' } });
    // /api/{models|datasets}/{org}/{name}/(tree|paths-info)/{revision...}
    const api = /^\/api\/(models|datasets)\/([^/]+\/[^/]+)\/(tree|paths-info)\/(.+)$/.exec(url.pathname);
    if (api) {
      const [, type, name, op, rev] = api;
      const found = find(type, name, rev);
      if (!found?.files)
        return new Response('{"error":"Revision not found"}', {
          status: 404,
          headers: { 'X-Error-Code': 'RevisionNotFound' },
        });
      const paths =
        op === 'tree'
          ? Object.keys(found.files)
          : (JSON.parse(String(init!.body)).paths as string[]).filter((p) => found.files[p]);
      return new Response(JSON.stringify(paths.map((p) => entry(found.repo, p, found.files[p]))), {
        status: 200,
        headers: { 'Content-Type': 'application/json' },
      });
    }
    // /{org}/{name}/resolve/{revision}/{path} for models, /datasets/{org}/{name}/resolve/... for datasets
    const res = /^\/(datasets\/)?([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(url.pathname);
    const found = res && find(res[1] ? 'datasets' : 'models', res[2], res[3]);
    const body = found?.files?.[decodeURIComponent(res![4])];
    if (!body) return notFound();
    const range = /bytes=(\d+)-(\d+)?/.exec(new Headers(init?.headers).get('Range') ?? '');
    const [a, b] = range ? [Number(range[1]), range[2] ? Number(range[2]) : body.length - 1] : [0, body.length - 1];
    return new Response(body.subarray(a, b + 1), {
      status: range ? 206 : 200,
      headers: {
        'Content-Range': `bytes ${a}-${b}/${body.length}`,
        ETag: `"${oid(body)}"`,
        'Content-Type': 'application/octet-stream',
        'Content-Length': String(b - a + 1),
      },
    });
  }) as typeof fetch;
}
