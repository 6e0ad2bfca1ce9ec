// The anneal command as a user runs it: a separate process, real signals.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { Rng, listCheckpoints, parseSafetensors, readTrainerState, useBackend } from '@anneal/core';
import { DataConfigSchema, prepareDataset } from '@anneal/data';
import { perplexity } from '@anneal/eval';
import {
  GPT2_DEFAULTS,
  Gpt2LMHeadModel,
  T5ForConditionalGeneration,
  T5_DEFAULTS,
  generate,
  loadPretrained,
  seq2seqGenerate,
} from '@anneal/modeling';
import { dequantize, loadQuantized, quantize } from '@anneal/quantization';
import * as tf from '@tensorflow/tfjs-core';
import { loadTokenizerSync, trainByteLevelBpe } from '@anneal/tokenizers';
import { BIN, anneal, expectCleanError, saveTinyAdapter } from './test-cli.js';

const CORPUS = fileURLToPath(new URL('../../../datasets/moby-dick/moby-dick.txt', import.meta.url));

function workdir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'anneal-cli-'));
  writeFileSync(join(dir, 'corpus.txt'), readFileSync(CORPUS, 'utf8').slice(0, 30_000));
  return dir;
}

function tinyYaml(dir: string, train: Record<string, unknown> = {}): string {
  const t = {
    batchSize: 4,
    maxSteps: 20,
    logEvery: 5,
    evalEvery: 10,
    evalBatches: 2,
    saveEvery: 5,
    saveTotalLimit: 3,
    sample: { every: 100, prompts: ['The'], maxNewTokens: 4 },
    ...train,
  };
  const file = join(dir, 'tiny.yaml');
  writeFileSync(
    file,
    `# tiny test run
name: tiny
recipe: clm
backend: wasm
outputDir: ${join(dir, 'runs')}
tokenizer: { train: { vocabSize: 300 } }
model: { arch: gpt2, config: { nLayer: 2, nHead: 2, nEmbd: 32 } }
data: { train: ${join(dir, 'corpus.txt')}, blockSize: 16, valFraction: 0.1 }
optim: { lr: 3.0e-3 }
train: ${JSON.stringify(t)}
`,
  );
  return file;
}

describe('anneal train: bad input', () => {
  const dir = workdir();
  const good = readFileSync(tinyYaml(dir), 'utf8');
  const write = (name: string, text: string) => (writeFileSync(join(dir, name), text), join(dir, name));

  it('a missing config file', () => {
    expectCleanError(anneal(['train', 'nope.yaml'], dir), /nope\.yaml: config file not found/);
  });
  it('malformed YAML', () => {
    expectCleanError(anneal(['train', write('bad.yaml', 'name: [oops\n')], dir), /bad\.yaml: not valid YAML/);
  });
  it('an unknown key and a wrong type, reported together', () => {
    const f = write('keys.yaml', good.replace('optim: { lr: 3.0e-3 }', 'optim: { lr: "3e-4x", momentum: 0.9 }'));
    expectCleanError(
      anneal(['train', f], dir),
      /keys\.yaml/,
      /optim\.lr: expected number, got "3e-4x"/,
      /optim\.momentum: unknown key/,
    );
  });
  it('a wrong type given with --set', () => {
    expectCleanError(
      anneal(['train', join(dir, 'tiny.yaml'), '--set', 'train.maxSteps=many'], dir),
      /train\.maxSteps: expected number, got "many"/,
    );
  });
  it('a missing dataset file', () => {
    const f = write('data.yaml', good.replace(join(dir, 'corpus.txt'), join(dir, 'missing.txt')));
    expectCleanError(anneal(['train', f], dir), /missing\.txt: data\.train: dataset file not found/);
  });
  it('a resume folder that is not a checkpoint', () => {
    mkdirSync(join(dir, 'empty'), { recursive: true });
    expectCleanError(
      anneal(['train', '--resume', join(dir, 'empty')], dir),
      /not a checkpoint/,
      /hint: pass a run folder/,
    );
  });
  it('a block size the model cannot hold', () => {
    const f = write('block.yaml', good.replace('nEmbd: 32 }', 'nEmbd: 32, nPositions: 8 }'));
    expectCleanError(
      anneal(['train', f], dir),
      /data\.blockSize 16 > model nPositions 8/,
      /hint: raise model\.config\.nPositions/,
    );
    expect(existsSync(join(dir, 'runs', 'tiny'))).toBe(false); // the run folder opened before the check is gone: a failed start leaves nothing
  });
  it('a GPU asked for where there is none (wasm backend, torch without a CUDA build, or past the visible GPUs)', () => {
    expectCleanError(
      anneal(['train', join(dir, 'tiny.yaml'), '--set', 'device=cuda:99'], dir),
      /device cuda:99 (needs a CUDA build|does not exist: \d+ CUDA device)/,
    );
    expectCleanError(anneal(['train', join(dir, 'tiny.yaml'), '--set', 'device=gpu'], dir), /device: cpu or cuda:N/);
  });
  it('dispatches on the recipe of the merged config (extends and --set included)', () => {
    write('base.yaml', 'recipe: rlhf\n');
    const f = write('child.yaml', 'extends: ./base.yaml\nname: x\n');
    expectCleanError(
      anneal(['train', f], dir),
      /child\.yaml: recipe: unknown recipe "rlhf"/,
      /hint: available: clm, sft, mlm, t5-span, seq2seq, classification/,
    );
    // the recipe picks the schema: an sft recipe is checked against SFT's fields
    write('sft-base.yaml', 'recipe: sft\n');
    expectCleanError(
      anneal(['train', write('sft-child.yaml', 'extends: ./sft-base.yaml\nname: x\n')], dir),
      /sft-child\.yaml/,
      /model: missing/,
    );
    expectCleanError(
      anneal(['train', join(dir, 'tiny.yaml'), '--set', 'recipe=sppo'], dir),
      /unknown recipe "sppo"/,
      /available: clm, sft, mlm, t5-span, seq2seq, classification, reward, dpo, orpo, cpo, kto, ppo, grpo, rloo/,
    );
    // the preference and RL methods are recipes too: their schemas check the config
    expectCleanError(anneal(['train', join(dir, 'tiny.yaml'), '--set', 'recipe=ppo'], dir), /tiny\.yaml/, /prompts: /);
    expectCleanError(anneal(['train', join(dir, 'tiny.yaml'), '--set', 'recipe=grpo'], dir), /tiny\.yaml/, /rewards: /);
  });
  it('shows the stack with --debug', () => {
    const r = anneal(['train', 'nope.yaml', '--debug'], dir);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/\n\s+at /);
  });
});

describe('anneal train: what the console says', () => {
  it('the loss on the progress line at a logging step is the train/loss metrics.jsonl holds for that step, and says it is a mean', () => {
    const dir = workdir();
    const r = anneal(['train', tinyYaml(dir, { maxSteps: 10, logEvery: 5, evalEvery: 100, saveEvery: 100 })], dir);
    expect(r.code, r.stderr).toBe(0);
    const logged = readFileSync(join(dir, 'runs', 'tiny', 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
      .filter((m) => m['train/loss'] !== undefined);
    expect(logged.map((m) => m.step)).toEqual([5, 10]);
    for (const m of logged) {
      const line = r.stdout.split('\n').find((l) => l.startsWith(`step ${m.step}/10 `))!;
      expect(line, r.stdout).toMatch(/ loss \d+\.\d{4} \(mean of 5 steps\) /);
      expect(Number(/ loss (\d+\.\d+)/.exec(line)![1])).toBeCloseTo(m['train/loss'], 4);
    }
  });
});

describe('anneal train: signals', () => {
  it('Ctrl-C saves a checkpoint and exits 0; --resume finishes the run', async () => {
    const dir = workdir();
    const cfg = tinyYaml(dir, { maxSteps: 100000, saveEvery: 100000, logEvery: 1 });
    const child = spawn(process.execPath, [BIN, 'train', cfg], { cwd: dir });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise<void>((resolve) => {
      const poll = setInterval(() => {
        if (/step 3\//.test(out)) {
          clearInterval(poll);
          child.kill('SIGINT');
          resolve();
        }
      }, 20);
    });
    const code = await new Promise<number | null>((r) => child.on('exit', r));
    expect(code, out).toBe(0);
    const run = join(dir, 'runs', 'tiny');
    const ckpts = listCheckpoints(run);
    expect(ckpts.length).toBe(1);
    expect(readTrainerState(ckpts[0].dir).step).toBeGreaterThanOrEqual(3);
    const r = anneal(['train', '--resume', run, '--set', 'train.maxSteps=' + (ckpts[0].step + 3)], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`resuming from ${ckpts[0].dir} (step ${ckpts[0].step})`);
    expect(r.stdout).toMatch(new RegExp(`done at step ${ckpts[0].step + 3}`));
  });

  it('SIGKILL at random moments, even mid-checkpoint, leaves the newest checkpoint loadable', async () => {
    await useBackend('cpu');
    const rng = new Rng(2024);
    const dir = workdir();
    const cfg = tinyYaml(dir, { maxSteps: 100000, saveEvery: 1, saveTotalLimit: 2, evalEvery: 100000 });
    const run = join(dir, 'runs', 'tiny');
    for (let trial = 0; trial < 5; trial++) {
      const args = trial === 0 ? ['train', cfg] : ['train', '--resume', run];
      const child = spawn(process.execPath, [BIN, ...args], { cwd: dir, stdio: 'ignore' });
      const before = listCheckpoints(run).at(-1)?.step ?? 0;
      // Wait until this process has written a checkpoint, then kill at a random moment.
      await new Promise<void>((resolve) => {
        const poll = setInterval(() => {
          if ((listCheckpoints(run).at(-1)?.step ?? 0) > before) {
            clearInterval(poll);
            setTimeout(resolve, rng.int(400));
          }
        }, 10);
      });
      child.kill('SIGKILL');
      await new Promise((r) => child.on('exit', r));
      const newest = listCheckpoints(run).at(-1)!;
      const state = readTrainerState(newest.dir);
      expect(state.step).toBe(newest.step);
      const model = Gpt2LMHeadModel.fromPretrained(newest.dir);
      model.dispose();
      loadTokenizerSync(newest.dir);
      expect(parseSafetensors(readFileSync(join(newest.dir, 'optimizer.safetensors'))).metadata.step).toBe(
        String(state.step),
      );
    }
    // SIGKILL in the middle of a rotation (ANNEAL_FAILPOINT: the process kills itself after the
    // old checkpoint is renamed away, before its files are deleted): what is left is never counted.
    const kept = listCheckpoints(run).map((c) => c.step);
    const killed = spawnSync(
      process.execPath,
      [BIN, 'train', '--resume', run, '--set', `train.maxSteps=${kept.at(-1)! + 5}`],
      { cwd: dir, encoding: 'utf8', env: { ...process.env, ANNEAL_BACKEND: '', ANNEAL_FAILPOINT: 'rotate' } },
    );
    expect(killed.signal).toBe('SIGKILL');
    const after = listCheckpoints(run);
    expect(after.length).toBe(2); // the new checkpoint and the one kept; the rotated one is out of sight
    expect(readdirSync(join(run, 'checkpoints')).some((n) => n.startsWith('.tmp-rotated-'))).toBe(true);
    for (const c of after) expect(readTrainerState(c.dir).step).toBe(c.step);
    // Leftover temp folders from killed writes are cleaned up by the next start.
    const r = anneal(
      ['train', '--resume', run, '--set', `train.maxSteps=${listCheckpoints(run).at(-1)!.step + 1}`],
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(readdirSync(join(run, 'checkpoints')).filter((n) => n.startsWith('.tmp-'))).toEqual([]);
    expect(existsSync(join(run, 'metrics.jsonl'))).toBe(true);
  });
});

describe('anneal tokenizer train / anneal tokenize', () => {
  it('trains a tokenizer from a config, and tokenize prints the ids that tokenizer gives', () => {
    const dir = workdir();
    const cfg = join(dir, 'tok.yaml');
    writeFileSync(
      cfg,
      `kind: byte-level-bpe\nfiles: [${join(dir, 'corpus.txt')}]\nvocabSize: 400\nspecialTokens: ['<|endoftext|>']\noutput: ${join(dir, 'tok')}\n`,
    );
    const r = anneal(['tokenizer', 'train', cfg], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/wrote .*tok \(vocabulary 400\)/);
    const t = anneal(
      ['tokenize', '--tokenizer', join(dir, 'tok'), '--text', 'Call me Ishmael.<|endoftext|>', '--json'],
      dir,
    );
    expect(t.code, t.stderr).toBe(0);
    const out = JSON.parse(t.stdout);
    const tok = loadTokenizerSync(join(dir, 'tok'));
    expect(out.ids).toEqual(tok.encode('Call me Ishmael.<|endoftext|>'));
    expect(out.ids[out.ids.length - 1]).toBe(0);
    expect(out.tokens).toEqual(out.ids.map((i: number) => tok.idToToken(i)));
  });

  it('reports bad input clearly', () => {
    const dir = workdir();
    expectCleanError(
      anneal(['tokenize', '--tokenizer', join(dir, 'none'), '--text', 'x'], dir),
      /none: tokenizer file or folder not found/,
    );
    expectCleanError(
      anneal(['tokenize', '--tokenizer', dir, '--text', 'x', '--file', 'y'], dir),
      /exactly one of --text and --file/,
    );
    const cfg = join(dir, 'bad.yaml');
    writeFileSync(cfg, `kind: sentencepiece\nfiles: [a.txt]\nvocabSize: 10\noutput: x\n`);
    expectCleanError(anneal(['tokenizer', 'train', cfg], dir), /bad\.yaml/, /kind/);
  });
});

describe('anneal generate', () => {
  it('streams the same continuation generate() gives in process (greedy and beam)', async () => {
    const dir = workdir();
    const modelDir = join(dir, 'model');
    mkdirSync(modelDir, { recursive: true });
    const tok = await trainByteLevelBpe([readFileSync(join(dir, 'corpus.txt'), 'utf8')], {
      vocabSize: 300,
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
    });
    tok.save(modelDir);
    await useBackend('cpu', {});
    const model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 300, nPositions: 64, nLayer: 1, nHead: 2, nEmbd: 16, initializerRange: 0.5 },
      2,
    );
    await model.savePretrained(modelDir);
    const prompt = 'Call me Ishmael.';
    for (const extra of [[], ['--num-beams', '3']]) {
      const r = anneal(
        ['generate', '--model', modelDir, '--prompt', prompt, '--max-new-tokens', '12', '--backend', 'cpu', ...extra],
        dir,
      );
      expect(r.code, r.stderr).toBe(0);
      const ids = tok.encode(prompt);
      const [want] = generate(model, [ids], {
        maxNewTokens: 12,
        eosTokenId: tok.eosTokenId,
        numBeams: extra.length ? 3 : 1,
      });
      expect(r.stdout).toBe(`${prompt}${tok.decode(want.slice(ids.length), { skipSpecialTokens: true })}\n`);
    }
    expectCleanError(
      anneal(['generate', '--model', join(dir, 'nowhere'), '--prompt', 'x', '--backend', 'cpu'], dir),
      /neither a folder nor a Hub repo id|not found/,
    );
    // --dtype int8: the same continuation as the model quantized to int8 weight-only in process
    const q = (await loadPretrained(modelDir)) as Gpt2LMHeadModel;
    quantize(q, { method: 'int8', blockSize: 64, doubleQuant: false });
    const ids = tok.encode(prompt);
    const [want] = generate(q, [ids], { maxNewTokens: 12, eosTokenId: tok.eosTokenId });
    const r = anneal(
      [
        'generate',
        '--model',
        modelDir,
        '--prompt',
        prompt,
        '--max-new-tokens',
        '12',
        '--dtype',
        'int8',
        '--backend',
        'cpu',
      ],
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/int8 weight-only: 4 projections/);
    expect(r.stdout).toBe(`${prompt}${tok.decode(want.slice(ids.length), { skipSpecialTokens: true })}\n`);
    expectCleanError(
      anneal(['generate', '--model', modelDir, '--prompt', 'x', '--dtype', 'bf16', '--backend', 'cpu'], dir),
      /--dtype bf16 is not one generation decodes in/,
      /int8 weight-only reads a quarter of the bytes/,
    );
  });
});

describe('anneal generate with a T5 model', () => {
  it('prints the decoder output for the prompt as the encoder input (greedy and beam); chat refuses T5', async () => {
    const dir = workdir();
    const modelDir = join(dir, 't5');
    mkdirSync(modelDir, { recursive: true });
    const tok = await trainByteLevelBpe([readFileSync(join(dir, 'corpus.txt'), 'utf8')], {
      vocabSize: 300,
      specialTokens: ['<pad>', '</s>', '<unk>'],
      padToken: '<pad>',
      eosToken: '</s>',
      unkToken: '<unk>',
    });
    tok.save(modelDir);
    await useBackend('cpu', {});
    const small = { vocabSize: 300, dModel: 16, dKv: 4, dFf: 32, numLayers: 1, numDecoderLayers: 1, numHeads: 2 };
    const model = T5ForConditionalGeneration.init({ ...T5_DEFAULTS, ...small }, 2);
    await model.savePretrained(modelDir);
    const prompt = 'Call me Ishmael.';
    for (const extra of [[], ['--num-beams', '3']]) {
      const r = anneal(
        ['generate', '--model', modelDir, '--prompt', prompt, '--max-new-tokens', '8', '--backend', 'cpu', ...extra],
        dir,
      );
      expect(r.code, r.stderr).toBe(0);
      const [want] = seq2seqGenerate(model, [[...tok.encode(prompt), tok.eosTokenId!]], {
        maxNewTokens: 8,
        numBeams: extra.length ? 3 : 1,
      });
      expect(want.length).toBeGreaterThan(1);
      expect(r.stdout).toBe(`${tok.decode(want.slice(1), { skipSpecialTokens: true })}\n`);
    }
    expectCleanError(
      anneal(['chat', '--model', modelDir, '--backend', 'torch'], dir),
      /encoder–decoder model \(T5\)/,
      /anneal generate/,
    );
  });
});

describe('anneal generate --chat, LoRA adapters, flag checks; anneal chat', () => {
  const TEMPLATE =
    '{% for m in messages %}<|endoftext|>{{ m.role }}: {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}assistant:{% endif %}';
  async function setup() {
    const dir = workdir();
    const modelDir = join(dir, 'model');
    mkdirSync(modelDir, { recursive: true });
    const tok = await trainByteLevelBpe([readFileSync(join(dir, 'corpus.txt'), 'utf8')], {
      vocabSize: 300,
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
    });
    tok.config.chatTemplate = TEMPLATE;
    tok.save(modelDir);
    await useBackend('cpu', {});
    const model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 300, nPositions: 128, nLayer: 1, nHead: 2, nEmbd: 16, initializerRange: 0.5 },
      2,
    );
    await model.savePretrained(modelDir);
    return { dir, modelDir, tok, model };
  }
  const reply = (
    lm: Parameters<typeof generate>[0],
    tok: Awaited<ReturnType<typeof trainByteLevelBpe>>,
    ids: number[],
    n: number,
  ) => {
    const [out] = generate(lm, [ids], { maxNewTokens: n, eosTokenId: [tok.eosTokenId!] });
    return tok.decode(
      out.slice(ids.length).filter((t) => t !== tok.eosTokenId),
      { skipSpecialTokens: true },
    );
  };

  it('checks sampling flags before loading anything, naming the flag', () => {
    const dir = workdir();
    const gen = (...extra: string[]) =>
      anneal(['generate', '--model', join(dir, 'none'), '--prompt', 'x', '--backend', 'cpu', ...extra], dir);
    expectCleanError(gen('--sample', '--temperature', '0'), /--temperature: expects a number > 0, got "0"/);
    expectCleanError(gen('--sample', '--top-p', '1.5'), /--top-p: expects a number in \(0, 1\], got "1\.5"/);
    expectCleanError(gen('--sample', '--top-k', '0'), /--top-k: expects an integer >= 1/);
    expectCleanError(gen('--max-new-tokens', '2.5'), /--max-new-tokens: expects an integer >= 1/);
    expectCleanError(gen('--temperature', '0.7'), /--temperature: only applies when sampling\nhint: add --sample/);
  });

  it('--chat sends the prompt as a user turn through the chat template and prints only the reply', async () => {
    const { dir, modelDir, tok, model } = await setup();
    const r = anneal(
      [
        'generate',
        '--model',
        modelDir,
        '--prompt',
        'Who are you?',
        '--chat',
        '--max-new-tokens',
        '10',
        '--backend',
        'cpu',
      ],
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    const ids = tok.applyChatTemplate([{ role: 'user', content: 'Who are you?' }], {
      addGenerationPrompt: true,
      tokenize: true,
    });
    expect(r.stdout).toBe(reply(model, tok, ids, 10) + '\n');
  });

  it('loads a LoRA adapter folder with its base from adapter_config.json (as AutoPeftModelForCausalLM does), or from --base', async () => {
    const { dir, modelDir, tok, model } = await setup();
    const adapterDir = join(dir, 'adapter');
    const lora = await saveTinyAdapter(model, modelDir, adapterDir);
    tok.save(adapterDir);
    const prompt = 'Call me Ishmael.';
    const ids = tok.encode(prompt);
    const [want] = generate(lora as unknown as Parameters<typeof generate>[0], [ids], {
      maxNewTokens: 12,
      eosTokenId: [tok.eosTokenId!],
    });
    const wantText = tok.decode(
      want.slice(ids.length).filter((t) => t !== tok.eosTokenId),
      { skipSpecialTokens: true },
    );
    const r = anneal(
      ['generate', '--model', adapterDir, '--prompt', prompt, '--max-new-tokens', '12', '--backend', 'cpu'],
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/LoRA r 2 on .*model, gpt2/);
    expect(r.stdout).toBe(`${prompt}${wantText}\n`);
    expect(lora.withAdapterDisabled(() => reply(model, tok, ids, 12))).not.toBe(wantText); // the adapter changes the continuation
    const cfgFile = join(adapterDir, 'adapter_config.json');
    writeFileSync(
      cfgFile,
      JSON.stringify({ ...JSON.parse(readFileSync(cfgFile, 'utf8')), base_model_name_or_path: '' }),
    );
    expectCleanError(
      anneal(['generate', '--model', adapterDir, '--prompt', prompt, '--backend', 'cpu'], dir),
      /adapter_config\.json: base_model_name_or_path: the adapter does not name its base model\nhint: give it with --base/,
    );
    const withBase = anneal(
      [
        'generate',
        '--model',
        adapterDir,
        '--base',
        modelDir,
        '--prompt',
        prompt,
        '--max-new-tokens',
        '12',
        '--backend',
        'cpu',
      ],
      dir,
    );
    expect(withBase.stdout).toBe(`${prompt}${wantText}\n`);
    lora.dispose();
  });

  it('anneal chat: multi-turn over stdin, the whole conversation through the template each turn; /reset starts over, /exit leaves', async () => {
    const { dir, modelDir, tok, model } = await setup();
    const r = spawnSync(
      process.execPath,
      [BIN, 'chat', '--model', modelDir, '--max-new-tokens', '8', '--backend', 'cpu'],
      {
        cwd: dir,
        encoding: 'utf8',
        input: 'Hello\nAnd then?\n/reset\nAnd then?\n/exit\nnever read\n',
        env: { ...process.env, ANNEAL_BACKEND: '' },
      },
    );
    expect(r.status, r.stderr).toBe(0);
    const replies = r.stdout
      .split('assistant> ')
      .slice(1)
      .map((s) => s.split('\n')[0]);
    const one = reply(
      model,
      tok,
      tok.applyChatTemplate([{ role: 'user', content: 'Hello' }], { addGenerationPrompt: true, tokenize: true }),
      8,
    );
    const two = reply(
      model,
      tok,
      tok.applyChatTemplate(
        [
          { role: 'user', content: 'Hello' },
          { role: 'assistant', content: one },
          { role: 'user', content: 'And then?' },
        ],
        { addGenerationPrompt: true, tokenize: true },
      ),
      8,
    );
    const fresh = reply(
      model,
      tok,
      tok.applyChatTemplate([{ role: 'user', content: 'And then?' }], { addGenerationPrompt: true, tokenize: true }),
      8,
    );
    expect(replies).toEqual([one, two, fresh]);
    expect(r.stderr).toContain('(conversation cleared)');
  });
});

describe('anneal data inspect', () => {
  it('prints what prepareDataset finds: rows, examples, tokens, bad rows', async () => {
    const dir = workdir();
    const tok = await trainByteLevelBpe([readFileSync(join(dir, 'corpus.txt'), 'utf8')], {
      vocabSize: 300,
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
    });
    mkdirSync(join(dir, 'tok'));
    tok.save(join(dir, 'tok'));
    const data = fileURLToPath(new URL('../../../datasets/sentiment/sft-prompt-completion.jsonl', import.meta.url));
    const cfg = join(dir, 'data.yaml');
    writeFileSync(
      cfg,
      `tokenizer: { path: ${join(dir, 'tok')} }\ndata: { train: ${data}, format: prompt-completion, maxLength: 96, onBadRow: skip, cacheDir: ${join(dir, 'cache')} }\n`,
    );
    const r = anneal(['data', 'inspect', cfg], dir);
    expect(r.code, r.stderr).toBe(0);
    const want = await prepareDataset(
      DataConfigSchema.parse({
        train: data,
        format: 'prompt-completion',
        maxLength: 96,
        onBadRow: 'skip',
        cacheDir: null,
      }),
      tok,
      { tokenizerFingerprint: 'x' },
    );
    expect(r.stdout).toContain('rows read: 3000\n');
    expect(r.stdout).toContain(
      `examples: ${want.train.length} train, ${want.eval.length} eval; tokens: ${want.stats.tokens}`,
    );
    expect(r.stdout).toContain(`bad rows skipped: ${want.stats.badRows.count}`);
    const again = anneal(['data', 'inspect', cfg], dir);
    expect(again.stdout).toContain('(tokenized data from the cache)');
    expectCleanError(anneal(['data', 'inspect', cfg, '--set', 'data.format=poetry'], dir), /data\.format/);
  });
});

describe('anneal eval', () => {
  it('evaluates a checkpoint folder and writes eval.json (numbers equal to the library call)', async () => {
    const dir = workdir();
    const modelDir = join(dir, 'model');
    const tok = await trainByteLevelBpe([readFileSync(join(dir, 'corpus.txt'), 'utf8')], {
      vocabSize: 300,
      specialTokens: ['<|endoftext|>'],
      eosToken: '<|endoftext|>',
    });
    tok.save(modelDir);
    await useBackend('cpu', {});
    const model = Gpt2LMHeadModel.init(
      { ...GPT2_DEFAULTS, vocabSize: 300, nPositions: 64, nLayer: 1, nHead: 2, nEmbd: 16 },
      2,
    );
    await model.savePretrained(modelDir);
    writeFileSync(join(dir, 'texts.jsonl'), JSON.stringify({ text: 'Call me Ishmael. Some years ago' }) + '\n');
    const cfg = join(dir, 'eval.yaml');
    writeFileSync(
      cfg,
      `model: ${modelDir}\nbackend: cpu\noutput: ${join(dir, 'out')}\ntasks:\n  perplexity: { data: ${join(dir, 'texts.jsonl')} }\n`,
    );
    const r = anneal(['eval', cfg], dir);
    expect(r.code, r.stderr).toBe(0);
    const written = JSON.parse(readFileSync(join(dir, 'out', 'eval.json'), 'utf8'));
    expect(written.results['perplexity/perplexity']).toBeCloseTo(
      perplexity(model, tok, ['Call me Ishmael. Some years ago']).perplexity,
      3,
    );
    expect(r.stdout).toMatch(/perplexity\/perplexity\s+\d/);
    expectCleanError(anneal(['eval', cfg, '--set', 'tasks.translation=1'], dir), /tasks\.translation: unknown key/);
  });
});

describe('anneal lora merge', () => {
  it("merges PEFT's llama_lora adapter into the llama fixture: the written q/v weights are peft's merged ones (1e-6)", () => {
    const dir = workdir();
    const hf = fileURLToPath(new URL('../../../../shared/fixtures/hf/', import.meta.url));
    const out = join(dir, 'merged');
    const r = anneal(
      ['lora', 'merge', '--base', join(hf, 'llama'), '--adapter', join(hf, 'llama_lora'), '--out', out],
      dir,
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/merged \d+ adapter parameters/);
    const got = parseSafetensors(readFileSync(join(out, 'model.safetensors'))).tensors;
    const want = parseSafetensors(readFileSync(join(hf, 'llama_lora', 'merged_qv_proj.safetensors'))).tensors;
    for (const [name, t] of want) {
      const g = got.get(name)!.data as Float32Array;
      const w = t.data as Float32Array;
      expect(
        g.reduce((m, v, i) => Math.max(m, Math.abs(v - w[i])), 0),
        name,
      ).toBeLessThan(1e-6);
    }
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).architectures).toEqual(['LlamaForCausalLM']);
    expectCleanError(
      anneal(['lora', 'merge', '--base', join(hf, 'llama'), '--adapter', join(hf, 'llama'), '--out', out], dir),
      /not a PEFT adapter folder/,
    );
  });

  it('merges into a base saved quantized (QLoRA): dequantized base + s B A, the same delta peft adds (1e-6)', async () => {
    const dir = workdir();
    const hf = fileURLToPath(new URL('../../../../shared/fixtures/hf/', import.meta.url));
    const q = join(dir, 'llama-nf4');
    expect(anneal(['quantize', '--model', join(hf, 'llama'), '--out', q], dir).code).toBe(0);
    const out = join(dir, 'merged-q');
    const r = anneal(['lora', 'merge', '--base', q, '--adapter', join(hf, 'llama_lora'), '--out', out], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/dequantized \d+ nf4 projections/);
    await useBackend('cpu', {});
    const { model } = await loadQuantized(q);
    dequantize(model);
    const got = parseSafetensors(readFileSync(join(out, 'model.safetensors'))).tensors;
    const base = parseSafetensors(readFileSync(join(hf, 'llama', 'model.safetensors'))).tensors;
    const peft = parseSafetensors(readFileSync(join(hf, 'llama_lora', 'merged_qv_proj.safetensors'))).tensors;
    for (const [name, t] of peft) {
      const deq = model.params.get(name)!.dataSync();
      const delta = (t.data as Float32Array).map((v, i) => v - (base.get(name)!.data as Float32Array)[i]);
      const ours = (got.get(name)!.data as Float32Array).map((v, i) => v - deq[i]);
      expect(
        ours.reduce((m, v, i) => Math.max(m, Math.abs(v - delta[i])), 0),
        name,
      ).toBeLessThan(1e-6);
    }
    model.dispose();
  });
});

describe('anneal quantize', () => {
  it('writes the GPT-2 fixture in NF4 (bitsandbytes layout), reports sizes, and the result computes what quantize() does', async () => {
    const dir = workdir();
    const fixture = fileURLToPath(new URL('../../../../shared/fixtures/hf/gpt2', import.meta.url));
    const out = join(dir, 'gpt2-nf4');
    const r = anneal(['quantize', '--model', fixture, '--out', out], dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /quantized \d+ projections \(\d+ parameters\) to nf4, block 64, double quantization: 0\.5\d\d bytes per quantized parameter/,
    );
    const bytes = readFileSync(join(out, 'model.safetensors')).length;
    expect(r.stdout).toContain(`${(bytes / 2 ** 20).toFixed(1)} MB (`);
    expect(JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).quantization_config.bnb_4bit_quant_type).toBe(
      'nf4',
    );
    await useBackend('cpu', {});
    const ids = tf.tensor2d([[1, 5, 9, 2]], [1, 4], 'int32');
    const { model } = await loadQuantized(out);
    const want = await loadPretrained(fixture);
    quantize(want, { method: 'nf4', blockSize: 64, doubleQuant: true });
    expect(Array.from(model.forward({ inputIds: ids }).logits!.dataSync())).toEqual(
      Array.from(want.forward({ inputIds: ids }).logits!.dataSync()),
    );
    expectCleanError(anneal(['quantize', '--model', fixture, '--out', out, '--method', 'nf3'], dir), /method/, /nf4/);
    expectCleanError(anneal(['quantize', '--model', join(dir, 'nowhere'), '--out', out], dir), /nowhere/);
  });
});
