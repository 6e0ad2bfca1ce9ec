// Greedy text generation with transformers.js (the JS inference library, from npm) from an
// exported folder on disk, remote models off: what a JavaScript user serving an Anneal model
// runs. Prints the generated text (prompt included), as `anneal generate` prints it; with
// --task text2text-generation (an exported T5) the decoder's answer alone, as it prints a T5's.
//
//   npx tsx tools/demos/transformers-js-generate.ts --dir runs/quickstart-onnx --prompt "Call me Ishmael." [--max-new-tokens 40]
import { basename, dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  env,
  pipeline,
  type Text2TextGenerationPipeline,
  type TextGenerationPipeline,
} from '@huggingface/transformers';

const { values: a } = parseArgs({
  options: {
    dir: { type: 'string' },
    prompt: { type: 'string' },
    'max-new-tokens': { type: 'string', default: '40' },
    task: { type: 'string', default: 'text-generation' },
  },
});
if (!a.dir || !a.prompt) throw new Error('usage: --dir <exported folder> --prompt <text> [--max-new-tokens n]');
env.allowRemoteModels = false;
env.localModelPath = dirname(resolve(a.dir));
const model = basename(resolve(a.dir));
const options = { max_new_tokens: Number(a['max-new-tokens']), do_sample: false };
if (a.task === 'text2text-generation') {
  const gen = (await pipeline('text2text-generation', model, { dtype: 'fp32' })) as Text2TextGenerationPipeline;
  // the T5 recipes end every input with </s>; their tokenizer does not add it
  const out = (await gen(`${a.prompt}</s>`, options)) as Array<{ generated_text: string }>;
  console.log(out[0].generated_text);
  await gen.dispose();
} else {
  const gen = (await pipeline('text-generation', model, { dtype: 'fp32' })) as TextGenerationPipeline;
  const out = (await gen(a.prompt, options)) as Array<{ generated_text: string }>;
  console.log(out[0].generated_text);
  await gen.dispose();
}
