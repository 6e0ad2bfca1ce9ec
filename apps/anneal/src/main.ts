// The `anneal` command. Parses arguments, runs the command, and turns Anneal's typed errors
// into one readable paragraph (the stack only with --debug). Each command's code (tfjs,
// libtorch, the recipes) is imported when that command runs, so `anneal --help` and argument
// errors answer at once.
import { Command, CommanderError } from 'commander';
import { AnnealError } from '@anneal/core/errors';
import type { TrainFlags } from './train-command.js';
import type { LaunchFlags } from './launch-command.js';
import type { LoraMergeFlags } from './lora-commands.js';
import type { QuantizeFlags } from './quantize-command.js';
import type { ExportFlags } from './export-command.js';
import type { PushFlags } from './push-command.js';
import type { TokenizeFlags } from './tokenizer-commands.js';
import type { GenerateFlags } from './generate-command.js';
import type { ChatFlags } from './chat-command.js';

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
    .option(
      '--set <key=value>',
      'override a config field, e.g. --set optim.lr=3e-4 (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--resume <dir>', 'continue from a run folder (its newest checkpoint) or a checkpoint folder')
    .option('--overwrite', 'delete an existing run folder of the same name first')
    .option('--verbose', "print the resolved config and the backend's library paths")
    .option('--debug', 'print stack traces')
    .action(async (config: string | undefined, flags: TrainFlags) => {
      debug = Boolean(flags.debug);
      code = await (await import('./train-command.js')).train(config, flags);
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
    .action(async (flags: TokenizeFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      (await import('./tokenizer-commands.js')).tokenize(flags, (s) => process.stdout.write(s + '\n'));
    });
  program
    .command('generate')
    .description(
      'continue a prompt with a causal LM (GPT-2, Llama, Qwen2/3, Mistral, SmolLM3, Phi-3, Gemma 3), streaming tokens',
    )
    .requiredOption(
      '--model <dir|org/name>',
      'model folder, Hub repo id (cached; HF_HUB_OFFLINE=1 for the cache only), or a LoRA adapter folder / checkpoint',
    )
    .option(
      '--base <dir|org/name>',
      "a LoRA adapter's base model (default: adapter_config.json's base_model_name_or_path)",
    )
    .option('--tokenizer <path>', 'tokenizer folder or file (default: the model folder)')
    .requiredOption('--prompt <text>', 'the prompt')
    .option('--chat', "send the prompt as a user turn through the tokenizer's chat template and print the reply")
    .option('--max-new-tokens <n>', 'tokens to generate', '50')
    .option('--sample', 'sample instead of greedy decoding (needed by --temperature, --top-k, --top-p, --min-p)')
    .option('--temperature <t>', 'sampling temperature (> 0)')
    .option('--top-k <k>', 'sample among the k most likely tokens (>= 1)')
    .option('--top-p <p>', 'sample among the most likely tokens up to probability p (0 < p <= 1)')
    .option('--min-p <p>', 'sample among tokens at least p x the most likely one (0 <= p <= 1)')
    .option('--repetition-penalty <r>', 'discourage repeats (> 1)')
    .option(
      '--ban-repeat-ngram <n>',
      "never repeat an n-gram of n tokens (transformers' no_repeat_ngram_size; 0 = off)",
    )
    .option('--num-beams <n>', 'beam search width')
    .option('--seed <n>', 'sampling seed')
    .option(
      '--dtype <float32|int8>',
      'int8: projections quantized to int8 weight-only for decoding (about 1/4 the bytes)',
    )
    .option('--backend <name>', 'auto, torch, wasm or cpu', 'auto')
    .option('--device <device>', 'cpu or cuda:N (torch backend)')
    .option('--debug', 'print stack traces')
    .action(async (flags: GenerateFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      (await import('./sampling-flags.js')).samplingOptions(flags); // before the model code loads
      await (
        await import('./generate-command.js')
      ).generateCommand(
        flags,
        (s) => process.stdout.write(s),
        (s) => process.stderr.write(s + '\n'),
      );
    });
  program
    .command('chat')
    .description('talk to a chat model in the terminal: multi-turn, streaming; /reset starts over, /exit leaves')
    .requiredOption('--model <dir|org/name>', 'model folder, Hub repo id, or a LoRA adapter folder / checkpoint')
    .option(
      '--base <dir|org/name>',
      "a LoRA adapter's base model (default: adapter_config.json's base_model_name_or_path)",
    )
    .option('--tokenizer <path>', 'tokenizer folder with a chat template (default: the model folder)')
    .option('--system <text>', 'a system message to start the conversation with')
    .option('--max-new-tokens <n>', 'tokens per reply', '200')
    .option('--sample', 'sample instead of greedy decoding (needed by --temperature, --top-k, --top-p, --min-p)')
    .option('--temperature <t>', 'sampling temperature (> 0)')
    .option('--top-k <k>', 'sample among the k most likely tokens (>= 1)')
    .option('--top-p <p>', 'sample among the most likely tokens up to probability p (0 < p <= 1)')
    .option('--min-p <p>', 'sample among tokens at least p x the most likely one (0 <= p <= 1)')
    .option('--repetition-penalty <r>', 'discourage repeats (> 1)')
    .option(
      '--ban-repeat-ngram <n>',
      "never repeat an n-gram of n tokens (transformers' no_repeat_ngram_size; 0 = off)",
    )
    .option('--seed <n>', 'sampling seed')
    .option(
      '--dtype <float32|int8>',
      'int8: projections quantized to int8 weight-only for decoding (about 1/4 the bytes)',
    )
    .option('--backend <name>', 'auto, torch, wasm or cpu', 'auto')
    .option('--device <device>', 'cpu or cuda:N (torch backend)')
    .option('--debug', 'print stack traces')
    .action(async (flags: ChatFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      (await import('./sampling-flags.js')).samplingOptions(flags);
      await (
        await import('./chat-command.js')
      ).chatCommand(
        flags,
        process.stdin,
        (s) => process.stdout.write(s),
        (s) => process.stderr.write(s + '\n'),
      );
    });
  program
    .command('eval')
    .description('evaluate a model: perplexity, generation metrics, classification, reward-model scores')
    .argument('<config>', 'YAML eval config (see configs/eval-quickstart.yaml)')
    .option(
      '--set <key=value>',
      'override a config field (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--debug', 'print stack traces')
    .action(async (config: string, flags: { set: string[]; debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await (
        await import('./eval-command.js')
      ).evalCommand(
        config,
        flags,
        (s) => process.stdout.write(s + '\n'),
        (s) => process.stderr.write(s + '\n'),
      );
    });
  program
    .command('data')
    .description('dataset tools')
    .command('inspect')
    .description("prepare a config's data and print rows, tokens, lengths, packing efficiency and bad rows")
    .argument('<config>', 'a YAML config with a data section (and tokenizer.path)')
    .option('--tokenizer <path>', 'tokenizer folder or file (default: tokenizer.path of the config)')
    .option(
      '--set <key=value>',
      'override a config field (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--debug', 'print stack traces')
    .action(async (config: string, flags: { set: string[]; tokenizer?: string; debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await (await import('./data-commands.js')).inspectData(config, flags, (s) => process.stdout.write(s + '\n'));
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
      await (await import('./lora-commands.js')).loraMerge(flags, (s) => process.stdout.write(s + '\n'));
    });
  program
    .command('export')
    .description(
      'export a model (a run, checkpoint, LoRA adapter or Hub repo) to ONNX for transformers.js and onnxruntime',
    )
    .requiredOption('--model <dir|org/name>', 'run folder, checkpoint, adapter folder or Hub repo id')
    .requiredOption('--out <dir>', 'the folder to write (config, tokenizer, onnx/model.onnx)')
    .option('--format <onnx>', 'what to write', 'onnx')
    .option('--base <dir|org/name>', "an adapter's base model (default: its adapter_config.json's)")
    .option('--tokenizer <dir>', "tokenizer folder (default: the model's)")
    .option('--overwrite', 'replace --out if it exists')
    .option('--opset <n>', 'ONNX opset, 17 to 21', '17')
    .option('--variants <list>', 'also fp16 (model_fp16.onnx) and/or int8 weight-only (model_quantized.onnx)')
    .option('--debug', 'print stack traces')
    .action(async (flags: ExportFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await (await import('./export-command.js')).exportCommand(flags, (s) => process.stdout.write(s + '\n'));
    });
  const pushOptions = (c: Command) =>
    c
      .requiredOption('--run <dir>', 'run folder (its best checkpoint) or a checkpoint folder')
      .option('--adapter-only', 'a LoRA run: the PEFT adapter alone (default: merged into its base)')
      .option('--onnx', 'also onnx/model.onnx (anneal export), so that transformers.js loads the repo')
      .option('--license <id>', 'license in the card metadata', 'other')
      .option('--debug', 'print stack traces');
  pushOptions(
    program
      .command('push')
      .description(
        "upload a run's model (or LoRA adapter) and a generated model card to the Hugging Face Hub, in one commit",
      )
      .requiredOption('--repo <org/name>', 'the model repo (created if it does not exist)')
      .option('--private', 'create the repo private')
      .option('--with-state', 'also upload optimizer and trainer state'),
  ).action(async (flags: PushFlags & { debug?: boolean }) => {
    debug = Boolean(flags.debug);
    await (await import('./push-command.js')).pushCommand(flags, (s) => process.stdout.write(s + '\n'));
  });
  pushOptions(
    program
      .command('card')
      .description('write the model card anneal push would upload, without pushing')
      .option('--repo <org/name>', 'the repo the card names (default: your-name/<run>)')
      .option('--out <file>', 'where to write it (default: print it)'),
  ).action(async (flags: PushFlags & { debug?: boolean }) => {
    debug = Boolean(flags.debug);
    await (await import('./push-command.js')).cardCommand(flags, (s) => process.stdout.write(s + '\n'));
  });
  program
    .command('quantize')
    .description(
      'quantize a model (nf4, fp4 or int8) and write it as a Hugging Face folder in bitsandbytes layout, for QLoRA',
    )
    .requiredOption('--model <dir|org/name>', 'the float32 model to quantize')
    .requiredOption('--out <dir>', 'where to write the quantized model')
    .option(
      '--method <nf4|fp4|int8>',
      'nf4 / fp4: 4-bit blockwise (bitsandbytes code books); int8: absmax per row',
      'nf4',
    )
    .option('--block-size <n>', 'values per 4-bit block', '64')
    .option(
      '--no-double-quant',
      'keep the 4-bit block scales in float32 (default: 8-bit, as bnb_4bit_use_double_quant)',
    )
    .option('--debug', 'print stack traces')
    .action(async (flags: QuantizeFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await (await import('./quantize-command.js')).quantizeCommand(flags, (s) => process.stdout.write(s + '\n'));
    });
  program
    .command('launch')
    .description(
      'run N data-parallel worker processes of an anneal command (torchrun-style), e.g. anneal launch --nproc 2 -- train <config>',
    )
    .argument('<command...>', 'the anneal command and its arguments, after --')
    .option('--nproc <n>', 'worker processes on this node', '1')
    .option('--nnodes <n>', 'nodes in the job', '1')
    .option('--node-rank <r>', "this node's index (0 serves the rendezvous)", '0')
    .option('--master-addr <addr>', 'address of node 0', '127.0.0.1')
    .option('--master-port <port>', 'rendezvous port on node 0', '29500')
    .option('--debug', 'print stack traces')
    .action(async (args: string[], flags: LaunchFlags & { debug?: boolean }) => {
      debug = Boolean(flags.debug);
      code = await (await import('./launch-command.js')).launch(args, flags, (s) => process.stderr.write(s + '\n'));
    });
  program
    .command('tokenizer')
    .description('tokenizer tools')
    .command('train')
    .description('train a byte-level BPE or WordPiece tokenizer from a YAML config')
    .argument('<config>', 'YAML config (see configs/tokenizer-bpe.yaml)')
    .option(
      '--set <key=value>',
      'override a config field (repeatable)',
      (v: string, acc: string[]) => [...acc, v],
      [] as string[],
    )
    .option('--debug', 'print stack traces')
    .action(async (config: string, flags: { set: string[]; debug?: boolean }) => {
      debug = Boolean(flags.debug);
      await (
        await import('./tokenizer-commands.js')
      ).trainTokenizer(config, flags.set, (s) => process.stdout.write(s + '\n'));
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
    process.stderr.write(
      `error: ${err?.message ?? String(e)}\n${debug ? err?.stack + '\n' : '(run with --debug for the stack trace)\n'}`,
    );
    return 1;
  }
}
