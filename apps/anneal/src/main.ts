// The `anneal` command. Parses arguments, loads the config, runs the recipe, and turns
// Anneal's typed errors into one readable paragraph (the stack only with --debug).
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { AnnealError, ConfigError, configToYaml, readConfig, resolveResume, validateConfig } from '@anneal/core';
import { ClassificationConfigSchema, ClmConfigSchema, MlmConfigSchema, SftConfigSchema, runClassification, runClm, runMlm, runSft } from '@anneal/trainers';
import { RewardConfigSchema, runReward } from '@anneal/reward-model';
import { DpoConfigSchema, runDpo } from '@anneal/dpo';
import { PpoConfigSchema, runPpo } from '@anneal/ppo';
import { silentReporter, type RunOptions } from '@anneal/training';
import type { z } from 'zod';
import { loadAddon, loadedBlas, processGroupFromEnv, registerTorchBackend } from '@anneal/backend-torch';
import { launch, rankDevice, type LaunchFlags } from './launch-command.js';
import { plainReporter, ttyReporter } from './progress.js';
import { loraMerge, type LoraMergeFlags } from './lora-commands.js';
import { quantizeCommand, type QuantizeFlags } from './quantize-command.js';
import { tokenize, trainTokenizer, type TokenizeFlags } from './tokenizer-commands.js';
import { generateCommand, type GenerateFlags } from './generate-command.js';
import { chatCommand, type ChatFlags } from './chat-command.js';
import { inspectData } from './data-commands.js';
import { evalCommand } from './eval-command.js';

interface TrainFlags {
  set: string[];
  resume?: string;
  overwrite?: boolean;
  debug?: boolean;
}

/** What every recipe returns, as far as the summary line needs. */
interface RecipeResult {
  stopped: boolean;
  step: number;
  runDir: string;
  lastCheckpoint: string;
  evalLoss?: number;
  unigramEntropy?: number;
  eval?: Record<string, number>;
  metrics?: Record<string, number>;
}

/** A recipe: its config schema and its run function, typed together. */
interface Recipe {
  validate(raw: unknown, file: string): { cfg: { device: string; autocast: 'none' | 'bf16'; precision: 'float32' | 'bf16'; backend: string }; run: (o: RunOptions) => Promise<RecipeResult> };
}
function recipe<C extends { device: string; autocast: 'none' | 'bf16'; precision: 'float32' | 'bf16'; backend: string }>(schema: z.ZodType<C>, run: (cfg: C, file: string, o: RunOptions) => Promise<RecipeResult>): Recipe {
  return {
    validate: (raw, file) => {
      const cfg = validateConfig(schema, raw, file);
      return { cfg, run: (o) => run(cfg, file, o) };
    },
  };
}

/** The `recipe:` values of a training config. */
const RECIPES: Record<string, Recipe> = {
  clm: recipe(ClmConfigSchema, runClm),
  sft: recipe(SftConfigSchema, runSft),
  mlm: recipe(MlmConfigSchema, runMlm),
  classification: recipe(ClassificationConfigSchema, runClassification),
  reward: recipe(RewardConfigSchema, runReward),
  dpo: recipe(DpoConfigSchema, runDpo),
  ppo: recipe(PpoConfigSchema, runPpo),
};

/** The end-of-run numbers: eval metrics, or eval/loss (with the unigram entropy for CLM). */
function evalSummary(r: RecipeResult): string {
  if (r.unigramEntropy !== undefined && r.evalLoss !== undefined) return `; eval/loss ${r.evalLoss.toFixed(4)} vs unigram entropy ${r.unigramEntropy.toFixed(4)}`;
  if (r.eval) return '; ' + Object.entries(r.eval).map(([k, v]) => `${k} ${v.toFixed(4)}`).join(', ');
  if (r.metrics) return '; ' + ['objective/scores', 'objective/kl', 'objective/rlhf_reward'].map((k) => `${k} ${r.metrics![k].toFixed(4)}`).join(', ');
  return r.evalLoss !== undefined ? `; eval/loss ${r.evalLoss.toFixed(4)}` : '';
}

async function train(configArg: string | undefined, flags: TrainFlags): Promise<number> {
  let file = configArg;
  if (!file) {
    if (!flags.resume) throw new ConfigError('no config file given', { hint: 'anneal train <config.yaml>, or anneal train --resume <run-dir>' });
    file = join(resolveResume(flags.resume).runDir, 'config.yaml');
  }
  // The merged document (extends + --set) says which recipe, hence which schema, applies.
  const raw = readConfig(file, flags.set);
  const recipe = typeof raw.recipe === 'string' ? raw.recipe : 'clm';
  // Under `anneal launch`, rank 0 reports; the other ranks stay quiet (errors still print).
  const rank = Number(process.env.RANK ?? 0);
  const reporter = rank > 0 ? silentReporter : process.stdout.isTTY ? ttyReporter() : plainReporter();
  const chosen = RECIPES[recipe];
  if (!chosen) throw new ConfigError(`unknown recipe ${JSON.stringify(recipe)}`, { file, field: 'recipe', hint: `available: ${Object.keys(RECIPES).join(', ')}` });
  const config = chosen.validate(raw, file);
  const { device, autocast, precision, backend } = config.cfg;
  if (precision !== 'float32' && backend !== 'auto' && backend !== 'torch') {
    throw new ConfigError(`precision ${precision} needs the torch backend, and backend is ${backend}`, { file, field: 'precision', hint: 'set backend: torch (or auto), or precision: float32' });
  }
  // The libtorch backend is the fast path; without it `auto` falls back to wasm, and says
  // why. A GPU asked for but not usable is an error, not a silent fallback.
  try {
    registerTorchBackend({ device: rankDevice(device), autocast, precision, warn: (m) => reporter.info(m) });
    const info = loadAddon().info();
    reporter.info(`torch backend available: libtorch ${info.torchVersion}, device ${info.device}, ${info.threads} threads, BLAS ${loadedBlas()}${info.autocast !== 'none' ? `, autocast ${info.autocast}` : ''}${info.precision !== 'float32' ? `, precision ${info.precision}` : ''}`);
  } catch (e) {
    if (device !== 'cpu' || backend === 'torch' || precision !== 'float32') throw e;
    reporter.info(`torch backend unavailable: ${e instanceof AnnealError ? e.describe().replace(/\n/g, ' ') : (e as Error).message}`);
  }

  // Ctrl-C once: finish the step, save a checkpoint, exit 0. Twice: stop at once.
  let stopRequested = false;
  const onSigint = () => {
    if (stopRequested) process.exit(130);
    stopRequested = true;
    process.stderr.write('\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit now)\n');
  };
  process.on('SIGINT', onSigint);
  try {
    reporter.info(`config: ${file}${flags.set.length ? ` with ${flags.set.join(' ')}` : ''}\n${configToYaml(config.cfg).trimEnd()}`);
    // Data parallel under `anneal launch` (WORLD_SIZE > 1): join the c10d process group first.
    const collective = processGroupFromEnv();
    if (collective) reporter.info(`data parallel: rank ${collective.rank} of ${collective.worldSize} (c10d, Gloo)`);
    const options = { reporter, resume: flags.resume, overwrite: flags.overwrite, shouldStop: () => stopRequested, collective };
    const result = await config.run(options).finally(() => collective?.destroy());
    const evalPart = evalSummary(result);
    reporter.info(`${result.stopped ? 'stopped' : 'done'} at step ${result.step}${evalPart}; run folder ${result.runDir}; checkpoint ${result.lastCheckpoint}`);
    return 0;
  } finally {
    process.off('SIGINT', onSigint);
  }
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command('anneal')
    .description('Train and align language models (CLM, MLM, SFT, LoRA, reward models, DPO, PPO).')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  let code = 0;
  let debug = false;
  program
    .command('train')
    .description('run a training recipe from a YAML config')
    .argument('[config]', 'YAML config (optional with --resume: the run folder has one)')
    .option('--set <key=value>', 'override a config field, e.g. --set optim.lr=3e-4 (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--resume <dir>', 'continue from a run folder (its newest checkpoint) or a checkpoint folder')
    .option('--overwrite', 'delete an existing run folder of the same name first')
    .option('--debug', 'print stack traces')
    .action(async (config: string | undefined, flags: TrainFlags) => {
      debug = Boolean(flags.debug);
      code = await train(config, flags);
    });
  program
    .command('tokenize')
    .description('print the token ids (and tokens) of a text')
    .requiredOption('--tokenizer <path>', 'tokenizer folder or tokenizer.json')
    .option('--text <text>', 'the text')
    .option('--file <file>', 'or a UTF-8 file')
    .option('--json', 'print {"ids": [...], "tokens": [...]}')
    .option('--no-special-tokens', "leave out the post-processor's special tokens (BOS, [CLS], ...)")
    .option('--debug', 'print stack traces')
    .action((flags: TokenizeFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      tokenize(flags, (s) => process.stdout.write(s + '\n'));
    });
  program
    .command('generate')
    .description('continue a prompt with a causal LM (GPT-2, Llama, Qwen2, Mistral), streaming tokens')
    .requiredOption('--model <dir|org/name>', 'model folder, Hub repo id (cached; HF_HUB_OFFLINE=1 for the cache only), or a LoRA adapter folder / checkpoint')
    .option('--base <dir|org/name>', "a LoRA adapter's base model (default: adapter_config.json's base_model_name_or_path)")
    .option('--tokenizer <path>', 'tokenizer folder or file (default: the model folder)')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--chat', "send the prompt as a user turn through the tokenizer's chat template and print the reply")
    .option('--max-new-tokens <n>', 'tokens to generate', '50')
    .option('--sample', 'sample instead of greedy decoding (needed by --temperature, --top-k, --top-p)')
    .option('--temperature <t>', 'sampling temperature (> 0)')
    .option('--top-k <k>', 'sample among the k most likely tokens (>= 1)')
    .option('--top-p <p>', 'sample among the most likely tokens up to probability p (0 < p <= 1)')
    .option('--repetition-penalty <r>', 'discourage repeats (> 1)')
    .option('--num-beams <n>', 'beam search width')
    .option('--seed <n>', 'sampling seed')
    .option('--backend <name>', 'auto, torch, wasm or cpu', 'auto')
    .option('--device <device>', 'cpu or cuda:N (torch backend)')
    .option('--debug', 'print stack traces')
    .action(async (flags: GenerateFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await generateCommand(flags, (s) => process.stdout.write(s), (s) => process.stderr.write(s + '\n'));
    });
  program
    .command('chat')
    .description('talk to a chat model in the terminal: multi-turn, streaming; /reset starts over, /exit leaves')
    .requiredOption('--model <dir|org/name>', 'model folder, Hub repo id, or a LoRA adapter folder / checkpoint')
    .option('--base <dir|org/name>', "a LoRA adapter's base model (default: adapter_config.json's base_model_name_or_path)")
    .option('--tokenizer <path>', 'tokenizer folder with a chat template (default: the model folder)')
    .option('--system <text>', 'a system message to start the conversation with')
    .option('--max-new-tokens <n>', 'tokens per reply', '200')
    .option('--sample', 'sample instead of greedy decoding (needed by --temperature, --top-k, --top-p)')
    .option('--temperature <t>', 'sampling temperature (> 0)')
    .option('--top-k <k>', 'sample among the k most likely tokens (>= 1)')
    .option('--top-p <p>', 'sample among the most likely tokens up to probability p (0 < p <= 1)')
    .option('--repetition-penalty <r>', 'discourage repeats (> 1)')
    .option('--seed <n>', 'sampling seed')
    .option('--backend <name>', 'auto, torch, wasm or cpu', 'auto')
    .option('--device <device>', 'cpu or cuda:N (torch backend)')
    .option('--debug', 'print stack traces')
    .action(async (flags: ChatFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await chatCommand(flags, process.stdin, (s) => process.stdout.write(s), (s) => process.stderr.write(s + '\n'));
    });
  program
    .command('eval')
    .description('evaluate a model: perplexity, generation metrics, classification, reward-model scores')
    .argument('<config>', 'YAML eval config (see configs/eval-quickstart.yaml)')
    .option('--set <key=value>', 'override a config field (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--debug', 'print stack traces')
    .action(async (config: string, flags: { set: string[]; debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await evalCommand(config, flags, (s) => process.stdout.write(s + '\n'), (s) => process.stderr.write(s + '\n'));
    });
  program
    .command('data')
    .description('dataset tools')
    .command('inspect')
    .description("prepare a config's data and print rows, tokens, lengths, packing efficiency and bad rows")
    .argument('<config>', 'a YAML config with a data section (and tokenizer.path)')
    .option('--tokenizer <path>', 'tokenizer folder or file (default: tokenizer.path of the config)')
    .option('--set <key=value>', 'override a config field (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--debug', 'print stack traces')
    .action(async (config: string, flags: { set: string[]; tokenizer?: string; debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await inspectData(config, flags, (s) => process.stdout.write(s + '\n'));
    });
  program
    .command('lora')
    .description('LoRA adapter tools')
    .command('merge')
    .description('merge a PEFT adapter into its base model and write a plain Hugging Face checkpoint')
    .requiredOption('--base <dir|org/name>', 'the base model the adapter was trained on')
    .requiredOption('--adapter <dir>', 'adapter folder (adapter_config.json + adapter_model.safetensors)')
    .requiredOption('--out <dir>', 'where to write the merged model')
    .option('--debug', 'print stack traces')
    .action(async (flags: LoraMergeFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await loraMerge(flags, (s) => process.stdout.write(s + '\n'));
    });
  program
    .command('quantize')
    .description('quantize a model (nf4, fp4 or int8) and write it as a Hugging Face folder in bitsandbytes layout, for QLoRA')
    .requiredOption('--model <dir|org/name>', 'the float32 model to quantize')
    .requiredOption('--out <dir>', 'where to write the quantized model')
    .option('--method <nf4|fp4|int8>', 'nf4 / fp4: 4-bit blockwise (bitsandbytes code books); int8: absmax per row', 'nf4')
    .option('--block-size <n>', 'values per 4-bit block', '64')
    .option('--no-double-quant', 'keep the 4-bit block scales in float32 (default: 8-bit, as bnb_4bit_use_double_quant)')
    .option('--debug', 'print stack traces')
    .action(async (flags: QuantizeFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await quantizeCommand(flags, (s) => process.stdout.write(s + '\n'));
    });
  program
    .command('launch')
    .description('run N data-parallel worker processes of an anneal command (torchrun-style), e.g. anneal launch --nproc 2 -- train <config>')
    .argument('<command...>', 'the anneal command and its arguments, after --')
    .option('--nproc <n>', 'worker processes on this node', '1')
    .option('--nnodes <n>', 'nodes in the job', '1')
    .option('--node-rank <r>', "this node's index (0 serves the rendezvous)", '0')
    .option('--master-addr <addr>', 'address of node 0', '127.0.0.1')
    .option('--master-port <port>', 'rendezvous port on node 0', '29500')
    .option('--debug', 'print stack traces')
    .action(async (args: string[], flags: LaunchFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      code = await launch(args, flags, (s) => process.stderr.write(s + '\n'));
    });
  program
    .command('tokenizer')
    .description('tokenizer tools')
    .command('train')
    .description('train a byte-level BPE or WordPiece tokenizer from a YAML config')
    .argument('<config>', 'YAML config (see configs/tokenizer-bpe.yaml)')
    .option('--set <key=value>', 'override a config field (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--debug', 'print stack traces')
    .action(async (config: string, flags: { set: string[]; debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await trainTokenizer(config, flags.set, (s) => process.stdout.write(s + '\n'));
    });
  try {
    await program.parseAsync(argv, { from: 'user' });
    return code;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof AnnealError) {
      process.stderr.write(`error: ${e.describe()}\n`);
      if (debug) process.stderr.write(`${e.stack}\n`);
      return 2;
    }
    const err = e as Error;
    process.stderr.write(`error: ${err?.message ?? String(e)}\n${debug ? err?.stack + '\n' : '(run with --debug for the stack trace)\n'}`);
    return 1;
  }
}

