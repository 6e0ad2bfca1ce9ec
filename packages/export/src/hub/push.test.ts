// Pushing to the Hub through @huggingface/hub's real commit code, against a fake Hub (an
// injected fetch that records every request and keeps the repos' files): the repo is created,
// all files land in one commit (the large ones through LFS first), a second push adds a commit
// to the existing repo, and a push whose LFS upload fails commits nothing. The model card's
// YAML parses and carries the Hub's fields. Bad repo ids and missing tokens are named.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { fakeHubPush } from '@anneal/core/testing';
import { checkRepoId, hfToken, modelCard, pushFiles } from '../index.js';

const fakeHub = (o: { failUploads?: boolean } = {}) => fakeHubPush(o);

/** pushFiles to the fake Hub: repo anneal-test/tiny, all files, a write token, title "Upload", unless overridden. */
const push = (hub: ReturnType<typeof fakeHub>, o: Partial<Parameters<typeof pushFiles>[0]> = {}) =>
  pushFiles({
    repo: 'anneal-test/tiny',
    files: files(),
    token: 'hf_test',
    title: 'Upload',
    fetch: hub.fetch,
    hubUrl: 'https://hub',
    ...o,
  });

const files = () => [
  { path: 'config.json', content: new TextEncoder().encode('{"model_type": "gpt2"}') },
  { path: 'model.safetensors', content: new Uint8Array(3000).map((_, i) => i % 251) },
  { path: 'onnx/model.onnx', content: new Uint8Array(2000).fill(7) },
  { path: 'README.md', content: new TextEncoder().encode('# card') },
];

describe('pushFiles (@huggingface/hub against a fake Hub)', () => {
  it('creates the repo and commits every file at once, large files through LFS first', async () => {
    const hub = fakeHub();
    const r = await push(hub);
    expect(r.created).toBe(true);
    expect(r.commitUrl).toMatch(/anneal-test\/tiny\/commit\//);
    const repo = hub.repos.get('anneal-test/tiny')!;
    expect([...repo.files.keys()].sort()).toEqual(['README.md', 'config.json', 'model.safetensors', 'onnx/model.onnx']);
    expect(repo.files.get('model.safetensors')).toEqual(files()[1].content);
    expect(repo.commits).toEqual(['Upload']); // one commit
    const commits = hub.log.filter((l) => l.includes('/commit/'));
    expect(commits).toHaveLength(1);
    expect(hub.log.at(-1)).toMatch(/^POST \/api\/models\/anneal-test\/tiny\/commit\/main$/); // the commit comes last
    expect(hub.log.filter((l) => l.startsWith('PUT'))).toHaveLength(2); // the two LFS files

    // a second push to the existing repo adds a commit
    const again = await push(hub, { files: files().slice(0, 1), title: 'Again' });
    expect(again.created).toBe(false);
    expect(repo.commits).toEqual(['Upload', 'Again']);
  });

  it('commits nothing when an upload fails half-way, and says so', async () => {
    const hub = fakeHub({ failUploads: true });
    const err = await push(hub).catch((e) => e);
    expect(err.name).toBe('PushError');
    expect(err.message).toMatch(/push to anneal-test\/tiny failed/);
    expect(err.hint).toMatch(/nothing was committed/);
    expect(hub.repos.get('anneal-test/tiny')!.files.size).toBe(0);
    expect(hub.log.some((l) => l.includes('/commit/'))).toBe(false);
  });

  it('names a bad token, a bad repo id and a missing token before any request', async () => {
    const hub = fakeHub();
    const denied = await push(hub, { repo: 'anneal-test/x', token: 'hf_wrong', title: 't' }).catch((e) => e);
    expect([denied.name, denied.hint]).toEqual(['PushError', 'the token needs write access to this namespace']);
    for (const bad of ['tiny', 'a/b/c', '-org/x', 'org/x.', 'org/a..b', 'org/'])
      expect(() => checkRepoId(bad), bad).toThrow(/is not a Hub repo id/);
    expect(checkRepoId('my-org/gpt2_tiny.v2')).toBe('my-org/gpt2_tiny.v2');
    const home = mkdtempSync(join(tmpdir(), 'anneal-hf-'));
    expect(() => hfToken({ HF_HOME: home })).toThrow(/no Hugging Face token/);
    writeFileSync(join(home, 'token'), 'hf_fromfile\n');
    expect(hfToken({ HF_HOME: home })).toBe('hf_fromfile');
    expect(hfToken({ HF_HOME: home, HF_TOKEN: 'hf_env' })).toBe('hf_env');
  });
});

describe('modelCard', () => {
  it('writes YAML metadata the Hub reads and a body with the method, config, metrics, versions and loading code', () => {
    const card = modelCard({
      repo: 'me/gpt2-sft',
      recipe: 'sft',
      baseModel: 'openai-community/gpt2',
      adapter: false,
      lora: { r: 8, alpha: 16, targets: ['c_attn'] },
      configYaml: 'recipe: sft\noptim:\n  lr: 0.0002\n',
      metrics: { 'train/loss': 1.23456789, 'eval/loss': 1.5 },
      versions: { anneal: '0.1.0', node: 'v20.20.2' },
      datasets: ['trl-lib/Capybara'],
      localData: [],
      license: 'apache-2.0',
      onnx: true,
    });
    const [, yamlText, body] = card.split(/^---$/m);
    expect(parse(yamlText)).toEqual({
      base_model: 'openai-community/gpt2',
      library_name: 'transformers',
      pipeline_tag: 'text-generation',
      tags: ['anneal', 'sft', 'trl', 'lora', 'onnx', 'transformers.js'],
      datasets: ['trl-lib/Capybara'],
      license: 'apache-2.0',
    });
    expect(body).toMatch(/fine-tuned version of \[openai-community\/gpt2\]/);
    expect(body).toMatch(/supervised fine-tuning \(SFT\)/);
    expect(body).toMatch(/\| train\/loss \| 1\.23457 \|/);
    expect(body).toMatch(/lr: 0\.0002/);
    expect(body).toMatch(/- anneal: 0\.1\.0/);
    expect(body).toMatch(/pipeline\("text-generation", model="me\/gpt2-sft"\)/);
    expect(body).toMatch(/pipeline\('text-generation', 'me\/gpt2-sft', \{ dtype: 'fp32' \}\)/);
    const adapter = modelCard({ ...baseInput(), adapter: true, lora: { r: 4, alpha: 8, targets: ['q_proj'] } });
    expect(parse(adapter.split(/^---$/m)[1]).library_name).toBe('peft');
    expect(adapter).toMatch(/AutoPeftModelForCausalLM\.from_pretrained\("me\/x"\)/);
  });
});

const baseInput = () => ({
  repo: 'me/x',
  recipe: 'dpo',
  adapter: false,
  configYaml: 'recipe: dpo\n',
  metrics: {},
  versions: {},
  datasets: [],
  localData: ['datasets/sentiment/preference.jsonl'],
  license: 'other',
  onnx: false,
});
