// Reverse-mode gradients over tfjs's tape that free memory as they go, as PyTorch does.
//
// Why: tfjs's own `engine.gradients` keeps every tensor saved for backward and every
// intermediate gradient alive until the whole backward pass ends; on GPT-2 small that
// held ~1 GB more than PyTorch at the peak. This walk is the same algorithm (same
// tape, same gradient functions, same accumulation order), but after each tape node it
// disposes that node's saved tensors and the gradients of its outputs, which no later
// node can use. Already while the forward pass records, it frees what tfjs saves for
// gradients that read only shapes (SHAPE_ONLY_GRADIENTS). It drives the engine through members that are not in tfjs's public
// types (`state.activeTape`, `startTape`, `endTape`, `scopedRun`), so tfjs-core is pinned;
// nested (higher-order) gradients go through tfjs's own implementation.
import * as tf from '@tensorflow/tfjs-core';
import { BackendError } from '../errors.js';

interface TapeNode {
  id: number;
  kernelName: string;
  inputs: Record<string, tf.Tensor>;
  outputs: tf.Tensor[];
  saved?: tf.Tensor[];
  gradient?: (dys: Array<tf.Tensor | null>) => Record<string, () => tf.Tensor>;
}

interface EngineInternals {
  state: { activeTape: TapeNode[] | null; gradientDepth: number };
  startTape(): void;
  endTape(): void;
  scopedRun<T>(start: () => void, end: () => void, f: () => T): T;
  tidy<T>(name: string, f: () => T): T;
  gradients(
    f: () => tf.Tensor,
    xs: tf.Tensor[],
    dy?: tf.Tensor,
    allowNoGradients?: boolean,
  ): { value: tf.Tensor; grads: Array<tf.Tensor | null> };
}

/** The tfjs-core release the engine internals above were read from (package.json pins it exactly). */
export const TFJS_CORE_VERSION = '4.22.0';

/**
 * Checks, once at start, that the engine has the internals `gradients` drives; another
 * tfjs-core (a dependency override, a second copy) would otherwise fail deep in a backward pass.
 */
export function checkEngineInternals(engine: unknown = tf.engine(), version: string = tf.version_core): void {
  const e = engine as Partial<EngineInternals> & { state?: Record<string, unknown> };
  const missing = [
    ...(['startTape', 'endTape', 'scopedRun', 'tidy', 'gradients'] as const)
      .filter((m) => typeof e[m] !== 'function')
      .map((m) => `engine.${m}()`),
    ...(e.state && typeof e.state.gradientDepth === 'number' && typeof e.state.nextTapeNodeId === 'number'
      ? []
      : ['engine.state (gradientDepth, nextTapeNodeId)']),
  ];
  if (missing.length || version !== TFJS_CORE_VERSION) {
    throw new BackendError(
      `@tensorflow/tfjs-core ${version} is not the ${TFJS_CORE_VERSION} Anneal's backprop was written for${missing.length ? `: it lacks ${missing.join(', ')}` : ''}`,
      {
        hint: `install @tensorflow/tfjs-core ${TFJS_CORE_VERSION} exactly (npm ci uses the lock file's), and remove overrides that change it`,
      },
    );
  }
}

/** The gradient of the scalar `f()` with respect to each of `xs` (null where f does not depend on it). */
export function gradients(f: () => tf.Scalar, xs: tf.Tensor[]): { value: tf.Scalar; grads: Array<tf.Tensor | null> } {
  const engine = tf.engine() as unknown as EngineInternals;
  if (engine.state.gradientDepth > 0)
    return engine.gradients(f, xs, undefined, true) as { value: tf.Scalar; grads: Array<tf.Tensor | null> };

  const startTape = () => {
    engine.startTape();
    engine.state.activeTape = new ReleasingTape();
  };
  const y = engine.scopedRun(
    startTape,
    () => engine.endTape(),
    () => engine.tidy('forward', f),
  );
  const tape = engine.state.activeTape ?? [];
  try {
    if (y.rank !== 0) throw new Error(`gradients: f must return a scalar, got rank ${y.rank}`);
    const nodes = nodesFromXToY(tape, xs, y);
    releaseUnread(tape, nodes);
    const grads = engine.tidy('backward', () => {
      // Gradient per tensor id. One tensor may be the gradient of several ids (a gradient
      // function may hand dy through), so it is disposed when no id refers to it any more.
      const acc = new Map<number, tf.Tensor>();
      const refs = new Map<tf.Tensor, number>();
      const release = (t: tf.Tensor) => {
        const n = (refs.get(t) ?? 0) - 1;
        if (n > 0) return refs.set(t, n);
        refs.delete(t);
        t.dispose();
      };
      const set = (id: number, t: tf.Tensor) => {
        refs.set(t, (refs.get(t) ?? 0) + 1);
        const prev = acc.get(id);
        acc.set(id, t);
        if (prev) release(prev);
      };
      set(y.id, tf.onesLike(y));
      const wanted = new Set(xs.map((x) => x.id));
      for (let i = nodes.length - 1; i >= 0; i--) {
        const node = nodes[i];
        if (!node.gradient) throw new Error(`cannot compute a gradient: kernel ${node.kernelName} has none`);
        const dxFns = node.gradient(node.outputs.map((o) => acc.get(o.id) ?? null));
        for (const name in node.inputs) {
          const x = node.inputs[name];
          if (!(name in dxFns)) throw new Error(`cannot backprop through input ${name} of ${node.kernelName}`);
          const dx = engine.tidy(`grad ${node.kernelName}`, dxFns[name]);
          if (dx.dtype !== 'float32')
            throw new Error(`the gradient of ${node.kernelName} input ${name} is ${dx.dtype}, expected float32`);
          if (!tf.util.arraysEqual(dx.shape, x.shape))
            throw new Error(
              `the gradient of ${node.kernelName} input ${name} has shape [${dx.shape}], expected [${x.shape}]`,
            );
          const cur = acc.get(x.id);
          if (!cur) {
            set(x.id, dx);
          } else {
            set(x.id, tf.add(cur, dx));
            if (!refs.has(dx)) dx.dispose();
          }
        }
        // Nothing before this node reads its outputs' gradients or its saved tensors.
        for (const o of node.outputs) {
          const g = acc.get(o.id);
          if (g && !wanted.has(o.id)) {
            acc.delete(o.id);
            release(g);
          }
        }
        for (const s of node.saved ?? []) s.dispose();
      }
      // A backend may compute a gradient in a narrower float than the variable (torch under bf16
      // autocast or precision: a weight's gradient is a bfloat16 product); Cast widens it to the
      // variable's dtype, so gradients accumulate, clip and all-reduce in float32 (PyTorch's .grad).
      return xs.map((x) => {
        const g = acc.get(x.id);
        return g ? tf.cast(g, x.dtype) : null;
      });
    });
    return { value: y as tf.Scalar, grads };
  } finally {
    for (const node of tape) for (const s of node.saved ?? []) s.dispose();
    engine.state.activeTape = null;
  }
}

/**
 * Kernels whose tfjs 4.22 gradient reads its saved tensors only for their shapes (tfjs saves
 * them anyway: Add keeps both summands alive until backward). A disposed tensor keeps its
 * shape, so their saved copies can go before the backward pass; checked against
 * tfjs-core/dist/gradients/*_grad.js whenever tfjs-core is upgraded (it is pinned).
 */
const SHAPE_ONLY_GRADIENTS = new Set([
  'Add',
  'Sub',
  'Reshape',
  'Slice',
  'Sum',
  'Mean',
  'Concat',
  'ExpandDims',
  'PadV2',
  'Pack',
]);

/**
 * The tape the forward pass records into: a node whose gradient needs only shapes has its
 * saved tensors freed as it is recorded, so they never add to the forward pass's peak.
 * Saved tensors are the engine's own clones: this frees data only when nothing else holds it.
 */
class ReleasingTape extends Array<TapeNode> {
  override push(...nodes: TapeNode[]): number {
    for (const node of nodes)
      if (SHAPE_ONLY_GRADIENTS.has(node.kernelName)) for (const s of node.saved ?? []) s.dispose();
    return super.push(...nodes);
  }
}

/** Frees, before the backward pass, the saved tensors of nodes off every path from xs to y (their gradients are never computed). */
function releaseUnread(tape: TapeNode[], nodes: TapeNode[]): void {
  const onPath = new Set(nodes.map((n) => n.id));
  for (const node of tape) if (!onPath.has(node.id)) for (const s of node.saved ?? []) s.dispose();
}

/**
 * The tape nodes on a path from some x to y, in tape order, with inputs pruned to those
 * that depend on an x (the same filter as tfjs's getFilteredNodesXToY, which it does not export).
 */
function nodesFromXToY(tape: TapeNode[], xs: tf.Tensor[], y: tf.Tensor): TapeNode[] {
  const fromX = new Set(xs.map((x) => x.id));
  const nodeFromX = new Set<number>();
  for (const node of tape) {
    if (Object.values(node.inputs).some((t) => fromX.has(t.id))) {
      for (const o of node.outputs) fromX.add(o.id);
      nodeFromX.add(node.id);
    }
  }
  const toY = new Set([y.id]);
  const nodeToY = new Set<number>();
  for (let i = tape.length - 1; i >= 0; i--) {
    const node = tape[i];
    if (node.outputs.some((o) => toY.has(o.id))) {
      for (const t of Object.values(node.inputs)) toY.add(t.id);
      nodeToY.add(node.id);
    }
  }
  return tape
    .filter((n) => nodeFromX.has(n.id) && nodeToY.has(n.id))
    .map((n) => ({ ...n, inputs: Object.fromEntries(Object.entries(n.inputs).filter(([, t]) => fromX.has(t.id))) }));
}
