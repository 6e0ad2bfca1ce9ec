// A training step recorded once and replayed from C++ (src/native/recorder.h): after
// `warmup` dispatched steps, two consecutive steps are recorded and compared; when they are
// the same program, every later step with inputs of the same shapes is a replay (on CUDA,
// a CUDA graph launch) instead of ~2000 kernel dispatches from JS. Any other shape (the last
// partial batch, evaluation) runs the step normally. The replay runs the very same kernel
// calls, so its results equal the dispatched step's bit for bit.
//
// The step must be a function of its inputs: every tensor that changes from step to step
// (token ids, targets, the learning rate and step count, parameters and optimizer moments)
// is passed in `inputs`; tensors it makes from JS numbers must be the same every step (the
// comparison of the two recordings finds those that are not, and the step then stays
// dispatched, with the reason in `stats.fallback`). Tensors the step reads without taking
// them as inputs (frozen weights, a cached mask) are captured when it is recorded: they must
// not be replaced afterwards; dispose() the RecordedStep if they are (it records again).
import * as tf from '@tensorflow/tfjs-core';
import type { TorchBackend } from './backend.js';

export interface RecordedStepOptions {
  /** Steps dispatched normally before the two recorded ones (default 1). */
  warmup?: number;
  /** Replay through a CUDA graph on a GPU (default true; no effect on cpu). */
  cudaGraph?: boolean;
}

export interface RecordedStepStats {
  dispatched: number;
  recorded: number;
  replayed: number;
  /** Kernel calls in the recorded step. */
  calls: number;
  /** Why the step is not replayed ('' while it is, or before it was recorded). */
  fallback: string;
  /** 'none' | 'warm' | 'captured' | 'failed: …' | 'unavailable: …' */
  graph: string;
}

export class RecordedStep {
  readonly stats: RecordedStepStats = {
    dispatched: 0,
    recorded: 0,
    replayed: 0,
    calls: 0,
    fallback: '',
    graph: 'none',
  };
  private signature = '';
  private first: number | undefined;
  private recording: number | undefined;
  private readonly warmup: number;
  private readonly graph: boolean;

  constructor(
    private readonly fn: (inputs: tf.Tensor[]) => tf.Tensor[],
    o: RecordedStepOptions = {},
  ) {
    this.warmup = o.warmup ?? 1;
    this.graph = o.cudaGraph ?? true;
  }

  private backend(): TorchBackend | undefined {
    return tf.getBackend() === 'torch' ? (tf.backend() as TorchBackend) : undefined;
  }

  /** Runs one step; the caller owns (and disposes) the returned tensors. */
  run(inputs: tf.Tensor[]): tf.Tensor[] {
    const backend = this.backend();
    const signature = inputs.map((t) => `${t.dtype}[${t.shape}]`).join(' ');
    if (!backend || this.stats.fallback) return this.dispatch(inputs);
    if (this.recording !== undefined && signature === this.signature) return this.replay(backend, inputs);
    if (this.recording !== undefined || this.stats.dispatched < this.warmup) return this.dispatch(inputs);
    return this.record(backend, inputs, signature);
  }

  private dispatch(inputs: tf.Tensor[]): tf.Tensor[] {
    this.stats.dispatched++;
    return tf.tidy(() => this.fn(inputs));
  }

  private record(backend: TorchBackend, inputs: tf.Tensor[], signature: string): tf.Tensor[] {
    const addon = backend.addon;
    addon.recordBegin(inputs.map((t) => backend.handle(t.dataId)));
    let outs: tf.Tensor[];
    try {
      outs = tf.tidy(() => this.fn(inputs));
    } catch (e) {
      addon.recordAbort();
      throw e;
    }
    const rec = addon.recordEnd(outs.map((t) => backend.handle(t.dataId)));
    this.stats.recorded++;
    this.stats.calls = rec.calls;
    if (rec.invalid) return this.giveUp(rec.invalid, outs, rec.id);
    if (this.first === undefined || signature !== this.signature) {
      if (this.first !== undefined) addon.recordDispose(this.first);
      this.first = rec.id;
      this.signature = signature;
      return outs;
    }
    const why = addon.recordCompare(this.first, rec.id);
    if (why) return this.giveUp(why, outs, rec.id);
    addon.recordDispose(this.first);
    this.first = undefined;
    this.recording = rec.id;
    return outs;
  }

  /** No replay for this step from now on: drops the recordings, says why, returns the recorded step's outputs. */
  private giveUp(why: string, outs: tf.Tensor[], recording: number): tf.Tensor[] {
    this.backend()!.addon.recordDispose(recording);
    this.dispose();
    this.stats.fallback = why;
    return outs;
  }

  private replay(backend: TorchBackend, inputs: tf.Tensor[]): tf.Tensor[] {
    const addon = backend.addon;
    const outs = addon.replay(
      this.recording!,
      inputs.map((t) => backend.handle(t.dataId)),
      this.graph,
    );
    this.stats.replayed++;
    this.stats.graph = addon.recordInfo(this.recording!).graph;
    return outs.map((o) => tf.engine().makeTensorFromTensorInfo(backend.adopt(o), backend));
  }

  /** Frees the recordings (the step can still be run: it records again). */
  dispose(): void {
    const backend = this.backend();
    for (const id of [this.first, this.recording]) if (id !== undefined) backend?.addon.recordDispose(id);
    this.first = this.recording = undefined;
  }
}
