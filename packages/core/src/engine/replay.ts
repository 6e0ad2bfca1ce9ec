// A step a backend may record once and replay natively (the torch backend's RecordedStep),
// asked for by libraries that may not import a backend (generation's decode step): core
// declares the hook, the backend registers its recorder when it is registered. Without one,
// or on another backend, the step simply runs, in tf.tidy. The step must be a function of its
// inputs (see RecordedStep): what changes from call to call goes in as an input tensor.
import * as tf from '@tensorflow/tfjs-core';

export interface ReplayableStep {
  /** Runs the step; the caller owns (and disposes) the returned tensors. */
  run(inputs: tf.Tensor[]): tf.Tensor[];
  /** Frees what the recorder holds (a recording of the step). */
  dispose(): void;
  /** Calls replayed natively so far, and why the step is not replayed ('' while it is or may be). */
  readonly stats: { replayed: number; fallback: string };
}

export type StepRecorder = (fn: (inputs: tf.Tensor[]) => tf.Tensor[], o: { warmup?: number }) => ReplayableStep;

let recorder: StepRecorder | undefined;

/** Called by a backend that can record steps (the torch backend's registerTorchBackend). */
export function registerStepRecorder(r: StepRecorder): void {
  recorder = r;
}

/** `fn` as a step the active backend may record and replay; a plain tidy call where it cannot. */
export function replayableStep(
  fn: (inputs: tf.Tensor[]) => tf.Tensor[],
  o: { warmup?: number; replay?: boolean } = {},
): ReplayableStep {
  if (recorder && o.replay !== false) return recorder(fn, o);
  const stats = { replayed: 0, fallback: o.replay === false ? 'replay turned off' : 'no step recorder registered' };
  return { run: (inputs) => tf.tidy(() => fn(inputs)), dispose: () => undefined, stats };
}
