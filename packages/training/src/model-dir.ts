// A model folder for a config's `pretrained`: the folder itself, or a Hub repo id resolved
// (downloaded or, offline, found) in the Hugging Face cache, so its tokenizer files load too.
import { existsSync } from 'node:fs';
import { resolveRepo } from '@anneal/modeling';

export async function localModelDir(dirOrRepoId: string): Promise<string> {
  return existsSync(dirOrRepoId) ? dirOrRepoId : resolveRepo(dirOrRepoId);
}
