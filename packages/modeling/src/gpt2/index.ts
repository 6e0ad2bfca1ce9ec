// GPT2LMHeadModel: config + parameters + the forward pass, and the Hugging Face
// checkpoint format (config.json + model.safetensors, tied lm_head left out).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { CheckpointError, ShapeError, readSafetensors, serializeSafetensors, writeFileDurable, type TensorToWrite } from '@anneal/core';
import { checkGpt2Config, gpt2ConfigFromHf, gpt2ConfigToHf, type Gpt2Config } from './config.js';
import { gpt2Forward, gpt2ParamShapes, initGpt2Params, type Params } from './model.js';
import type { ForwardArgs, ModelOutput } from '../types.js';

export class Gpt2LMHeadModel {
  readonly modelType = 'gpt2';
  /** Dropout on (train()) or off (eval(), the default); ForwardArgs.training overrides it. */
  training = false;

  private constructor(
    readonly config: Gpt2Config,
    readonly params: Params,
  ) {}

  /** A randomly initialised model (seeded). */
  static init(config: Gpt2Config, seed: number): Gpt2LMHeadModel {
    checkGpt2Config(config);
    return new Gpt2LMHeadModel(config, initGpt2Params(config, seed));
  }

  /** Loads a Hugging Face GPT-2 folder (config.json + model.safetensors). */
  static fromPretrained(dir: string): Gpt2LMHeadModel {
    const configFile = join(dir, 'config.json');
    const weightsFile = join(dir, 'model.safetensors');
    for (const f of [configFile, weightsFile]) {
      if (!existsSync(f)) throw new CheckpointError('file not found', { file: f, hint: 'expected a Hugging Face model folder with config.json and model.safetensors (pickle .bin files are never loaded)' });
    }
    let hf: Record<string, unknown>;
    try {
      hf = JSON.parse(readFileSync(configFile, 'utf8'));
    } catch (e) {
      throw new CheckpointError(`not valid JSON: ${(e as Error).message}`, { file: configFile });
    }
    const config = gpt2ConfigFromHf(hf, configFile);
    checkGpt2Config(config, configFile);
    const { tensors } = readSafetensors(weightsFile);
    const params: Params = new Map();
    for (const [name, shape] of gpt2ParamShapes(config)) {
      // Checkpoints of the bare GPT2Model (like the original "gpt2" repo) have no "transformer." prefix.
      const t = tensors.get(name) ?? tensors.get(name.replace(/^transformer\./, ''));
      if (!t) throw new CheckpointError(`tensor ${name} is missing`, { file: weightsFile, field: name });
      if (t.shape.join(',') !== shape.join(',')) {
        throw new ShapeError(`shape [${t.shape}] does not match [${shape}] implied by config.json`, { file: weightsFile, field: name });
      }
      params.set(name, tf.tidy(() => tf.variable(tf.tensor(t.data as Float32Array, shape, 'float32'), true)));
    }
    return new Gpt2LMHeadModel(config, params);
  }

  /** ids [B, T] -> logits [B, T, V] (and the KV cache, hidden states, attentions on request). */
  forward(a: ForwardArgs): ModelOutput & { logits: tf.Tensor3D } {
    return gpt2Forward(this.config, this.params, { training: this.training, ...a }) as ModelOutput & { logits: tf.Tensor3D };
  }

  train(): this {
    this.training = true;
    return this;
  }

  eval(): this {
    this.training = false;
    return this;
  }

  /** Parameters keyed by their Hugging Face names. */
  parameters(): Record<string, tf.Variable> {
    return Object.fromEntries(this.params);
  }

  get maxPositions(): number {
    return this.config.nPositions;
  }

  get numParameters(): number {
    let n = 0;
    for (const p of this.params.values()) n += p.size;
    return n;
  }

  /** Weights as safetensors entries with Hugging Face names. */
  async stateDict(): Promise<Map<string, TensorToWrite>> {
    const out = new Map<string, TensorToWrite>();
    for (const [name, p] of this.params) out.set(name, { dtype: 'F32', shape: p.shape, data: (await p.data()) as Float32Array });
    return out;
  }

  /** Writes config.json, generation_config.json and model.safetensors (fsynced). */
  async savePretrained(dir: string): Promise<void> {
    writeFileDurable(join(dir, 'config.json'), JSON.stringify(gpt2ConfigToHf(this.config), null, 2) + '\n');
    const gen = { bos_token_id: this.config.bosTokenId, eos_token_id: this.config.eosTokenId, transformers_version: '4.40.0' };
    writeFileDurable(join(dir, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
    writeFileDurable(join(dir, 'model.safetensors'), serializeSafetensors(await this.stateDict(), { format: 'pt' }));
  }

  /** Overwrites the weights from a safetensors file of this model (e.g. a checkpoint). */
  loadWeights(file: string): void {
    const { tensors } = readSafetensors(file);
    for (const [name, p] of this.params) {
      const t = tensors.get(name);
      if (!t) throw new CheckpointError(`tensor ${name} is missing`, { file, field: name });
      if (t.shape.join(',') !== p.shape.join(',')) throw new ShapeError(`shape [${t.shape}] does not match the model's [${p.shape}]`, { file, field: name });
      tf.tidy(() => p.assign(tf.tensor(t.data as Float32Array, p.shape, 'float32')));
    }
  }

  dispose(): void {
    for (const p of this.params.values()) p.dispose();
  }
}
