// The README.md model card of a pushed run, as TRL writes one for its trainers: YAML metadata
// the Hub reads (base_model, library_name, pipeline_tag, tags, datasets, license), then what
// was trained how (the method, the resolved config), the final metrics, the framework
// versions, and how to load the result in transformers, PEFT and transformers.js.
import { stringify } from 'yaml';

export interface CardInput {
  /** org/name the card is for. */
  repo: string;
  /** The recipe (clm, sft, dpo, grpo, ...). */
  recipe: string;
  /** model.pretrained when it is a Hub repo id (a local path is named in the text only). */
  baseModel?: string;
  /** The local base, when it is not on the Hub. */
  localBase?: string;
  /** The repo holds a PEFT adapter (else a full model). */
  adapter: boolean;
  /** The run had a LoRA adapter (merged into the pushed model unless `adapter`). */
  lora?: { r: number; alpha: number; targets: string[] };
  /** The resolved config, as config.yaml holds it. */
  configYaml: string;
  /** Final value of each logged metric (train/..., eval/...). */
  metrics: Record<string, number>;
  /** Framework versions (anneal, @tensorflow/tfjs-core, node, ...). */
  versions: Record<string, string>;
  /** Hub dataset ids trained on. */
  datasets: string[];
  /** Local data files trained on (named in the text). */
  localData: string[];
  license: string;
  /** onnx/model.onnx is in the repo (transformers.js can load it). */
  onnx: boolean;
}

const METHODS: Record<string, string> = {
  clm: 'causal language modelling (next-token prediction)',
  mlm: 'masked language modelling',
  sft: 'supervised fine-tuning (SFT)',
  classification: 'sequence classification',
  reward: 'reward modelling (pairwise, Bradley-Terry)',
  ppo: 'PPO (proximal policy optimisation) from a reward model',
  dpo: 'DPO (direct preference optimisation)',
  orpo: 'ORPO (odds-ratio preference optimisation)',
  cpo: 'CPO / SimPO (reference-free preference optimisation)',
  kto: 'KTO (Kahneman-Tversky optimisation) on unpaired feedback',
  grpo: 'GRPO (group relative policy optimisation)',
  rloo: 'RLOO (REINFORCE leave-one-out)',
  't5-span': 'T5 span-corruption pretraining',
  seq2seq: 'sequence-to-sequence fine-tuning',
};

/** The Hub task a recipe's model performs. */
export function pipelineTagOf(recipe: string): string {
  if (recipe === 'classification' || recipe === 'reward') return 'text-classification';
  if (recipe === 'mlm') return 'fill-mask';
  if (recipe === 't5-span' || recipe === 'seq2seq') return 'text2text-generation';
  return 'text-generation';
}

export function modelCard(i: CardInput): string {
  const pipelineTag = pipelineTagOf(i.recipe);
  const meta: Record<string, unknown> = {
    ...(i.baseModel && { base_model: i.baseModel }),
    library_name: i.adapter ? 'peft' : 'transformers',
    pipeline_tag: pipelineTag,
    tags: [
      'anneal',
      i.recipe,
      ...(['sft', 'dpo', 'orpo', 'cpo', 'kto', 'grpo', 'rloo', 'ppo', 'reward'].includes(i.recipe) ? ['trl'] : []),
      ...(i.lora ? ['lora'] : []),
      ...(i.onnx ? ['onnx', 'transformers.js'] : []),
    ],
    ...(i.datasets.length && { datasets: i.datasets }),
    license: i.license,
  };
  const method = METHODS[i.recipe] ?? i.recipe;
  const base = i.baseModel
    ? `a fine-tuned version of [${i.baseModel}](https://huggingface.co/${i.baseModel})`
    : i.localBase
      ? `a fine-tuned version of a local model (\`${i.localBase}\`)`
      : 'trained from scratch';
  const data = [
    ...i.datasets.map((d) => `[${d}](https://huggingface.co/datasets/${d})`),
    ...i.localData.map((d) => `\`${d}\``),
  ];
  const lines: string[] = [
    '---',
    stringify(meta).trimEnd(),
    '---',
    '',
    `# ${i.repo.split('/')[1]}`,
    '',
    `This model is ${base}, trained with Anneal by ${method}${data.length ? ` on ${data.join(', ')}` : ''}.`,
  ];
  if (i.lora)
    lines.push(
      '',
      i.adapter
        ? `This repo holds the LoRA adapter (r ${i.lora.r}, alpha ${i.lora.alpha}, on ${i.lora.targets.join(', ')}), in PEFT's format.`
        : `The LoRA adapter it was trained with (r ${i.lora.r}, alpha ${i.lora.alpha}, on ${i.lora.targets.join(', ')}) is merged into the weights.`,
    );
  lines.push('', '## How to use', '');
  const tag = pipelineTag;
  if (i.adapter)
    lines.push(
      '```python',
      'from peft import AutoPeftModelForCausalLM',
      'from transformers import AutoTokenizer',
      '',
      `model = AutoPeftModelForCausalLM.from_pretrained("${i.repo}")`,
      `tokenizer = AutoTokenizer.from_pretrained("${i.repo}")`,
      '```',
    );
  else
    lines.push(
      '```python',
      'from transformers import pipeline',
      '',
      `pipe = pipeline("${tag}", model="${i.repo}")`,
      '```',
    );
  if (i.onnx)
    lines.push(
      '',
      'In JavaScript, with [transformers.js](https://huggingface.co/docs/transformers.js) (the ONNX weights in `onnx/`):',
      '',
      '```js',
      "import { pipeline } from '@huggingface/transformers';",
      '',
      `const pipe = await pipeline('${tag}', '${i.repo}', { dtype: 'fp32' });`,
      '```',
    );
  const metrics = Object.entries(i.metrics).filter(([, v]) => Number.isFinite(v));
  if (metrics.length)
    lines.push(
      '',
      '## Results',
      '',
      'The last value of each metric the run logged:',
      '',
      '| metric | value |',
      '|---|---:|',
      ...metrics.map(([k, v]) => `| ${k} | ${Number(v.toPrecision(6))} |`),
    );
  lines.push(
    '',
    '## Training procedure',
    '',
    `Method: ${method} (\`recipe: ${i.recipe}\`). The resolved configuration of the run:`,
    '',
    '```yaml',
    i.configYaml.trimEnd(),
    '```',
    '',
    '### Framework versions',
    '',
    ...Object.entries(i.versions).map(([k, v]) => `- ${k}: ${v}`),
    '',
  );
  return lines.join('\n');
}
