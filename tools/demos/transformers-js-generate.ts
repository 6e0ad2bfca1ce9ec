// Greedy text generation with transformers.js (the JS inference library, from npm) from an
// exported folder on disk, remote models off: what a JavaScript user serving an Anneal model
// runs. Prints the generated text (prompt included), as `anneal generate` prints it.
//
//   npx tsx tools/demos/transformers-js-generate.ts --dir runs/quickstart-onnx --prompt "Call me Ishmael." [--max-new-tokens 40]
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { env, pipeline, type TextGenerationPipeline } from '@huggingface/transformers';

const { values: a } = parseArgs({
  options: {
    dir: { type: 'string' },
    prompt: { type: 'string' },
    'max-new-tokens': { type: 'string', default: '40' },
  },
});
if (!a.dir || !a.prompt) throw new Error('usage: --dir <exported folder> --prompt <text> [--max-new-tokens n]');
env.allowRemoteModels = false;
env.localModelPath = dirname(resolve(a.dir));
const gen = (await pipeline('text-generation', basename(resolve(a.dir)), { dtype: 'fp32' })) as TextGenerationPipeline;
const out = (await gen(a.prompt, { max_new_tokens: Number(a['max-new-tokens']), do_sample: false })) as Array<{
  generated_text: string;
}>;
console.log(out[0].generated_text);
await gen.dispose();
