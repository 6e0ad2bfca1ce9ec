// Text generation for causal LMs, as transformers' generate(): greedy, sampling (seeded;
// temperature, top-k, top-p, repetition penalty) or beam search, over a batch of prompts
// left-padded to one length, with a key/value cache so each new token costs one position.
import * as tf from '@tensorflow/tfjs-core';
import { Rng, hasAnnealKernel, replayableStep, runAnnealKernel, type ReplayableStep } from '@anneal/core';
import { StaticKvCache } from './kv-cache.js';
import { softcap, type LmHead } from './lm-head.js';
import type { ForwardArgs, KvCache, ModelOutput } from './types.js';

export interface CausalLm {
  forward(a: ForwardArgs): ModelOutput;
  /** The final hidden states [B, T, C], without the head: forward's logits are lmHead().logits of them. */
  hidden(a: ForwardArgs): tf.Tensor3D;
  /** The LM head (for losses computed a chunk of rows at a time). */
  lmHead(): LmHead;
  /** Longest sequence the model accepts (n_positions / max_position_embeddings). */
  readonly maxPositions: number;
  /** Takes ForwardArgs.staticCache; replayable: its decode step is one program at every token. */
  readonly staticCache?: { replayable: boolean };
}

/**
 * What generate() runs: a causal LM, or any decoder that takes the growing cache through forward
 * alone (an encoder–decoder model's decoder, with the encoder's output bound: t5/generate.ts).
 */
export type Decoder = Pick<CausalLm, 'forward' | 'maxPositions'> &
  Partial<Pick<CausalLm, 'hidden' | 'lmHead' | 'staticCache'>>;

export interface GenerateOptions {
  maxNewTokens: number;
  /** EOS is not allowed before this many new tokens. */
  minNewTokens?: number;
  /** Sample (else greedy, or beam search with numBeams > 1). */
  doSample?: boolean;
  temperature?: number;
  /** Sample among the k most likely tokens only (0 = all). */
  topK?: number;
  /** Sample among the most likely tokens whose probabilities sum to topP (1 = all). */
  topP?: number;
  /** > 1 discourages tokens already in the sequence (CTRL's penalty, as transformers). */
  repetitionPenalty?: number;
  /** Sample among tokens at least minP × the most likely one's probability (0 = all). */
  minP?: number;
  /** No n-gram of this size occurs twice in a sequence, prompt included (0 = off). */
  noRepeatNgramSize?: number;
  /** Token sequences never generated: a one-token entry is banned outright, a longer one's last token after the rest. */
  badWordsIds?: number[][];
  numBeams?: number;
  /** Beam scores are sum(log p) / newTokens^lengthPenalty. */
  lengthPenalty?: number;
  /** Stop a prompt's beam search once numBeams hypotheses are finished. */
  earlyStopping?: boolean;
  /** Sequences returned per prompt (sampling: independent draws; beams: the best ones). */
  numReturnSequences?: number;
  eosTokenId?: number | number[];
  /** Pads prompts on the left and finished sequences (default: the first EOS id, else 0). */
  padTokenId?: number;
  /** Stop a sequence once its decoded new text ends with one of these (needs decode). */
  stopStrings?: string[];
  decode?: (ids: number[]) => string;
  seed?: number;
  /** Called after each step with the new token of every sequence (-1 for finished ones). */
  onToken?: (tokens: number[], step: number) => void;
  /** Default true; false recomputes the whole sequence at every step (for checking). */
  useCache?: boolean;
  /**
   * 'static': keys and values preallocated for prompt + new tokens and written in place (the
   * default on the torch backend, for models that take one); 'dynamic': the cache grows by
   * concatenation (the default elsewhere).
   */
  cache?: 'static' | 'dynamic';
  /** Record the static-cache decode step once and replay it natively where the backend can (default true). */
  replay?: boolean;
  /** Filled in at the end: which cache ran, and how many decode steps were native replays. */
  stats?: GenerateStats;
  /**
   * Filled in (greedy and sampling, not beams): for each returned sequence, the log-prob of
   * each new token under the distribution it was chosen from (after the processors and the
   * temperature), from the decoding forward itself: what TRL's PPO takes as the policy's
   * log-probs of a rollout instead of scoring the responses again.
   */
  tokenLogprobs?: number[][];
}

export interface GenerateStats {
  cache?: 'static' | 'dynamic' | 'none';
  replayed?: number;
}

/** tf.tidy for functions that return tensors inside plain objects (typed as they are). */
export function tidy<T>(f: () => T): T {
  return tf.tidy(f as unknown as () => tf.TensorContainer) as unknown as T;
}

const eosSet = (o: GenerateOptions) =>
  new Set(o.eosTokenId === undefined ? [] : Array.isArray(o.eosTokenId) ? o.eosTokenId : [o.eosTokenId]);

/** Each sequence's prompt followed by its new tokens (up to and including EOS; no padding). */
export function generate(model: Decoder, prompts: number[][], o: GenerateOptions): number[][] {
  if (!prompts.length || prompts.some((p) => p.length === 0))
    throw new Error('generate: every prompt needs at least one token');
  if ((o.numBeams ?? 1) > 1) {
    if (o.tokenLogprobs)
      throw new Error('generate: tokenLogprobs is for greedy decoding and sampling, not beam search');
    return beamSearch(model, prompts, o);
  }
  const copies = o.numReturnSequences ?? 1;
  const rows = prompts.flatMap((p) => new Array<number[]>(copies).fill(p));
  return sampleOrGreedy(model, rows, o);
}

/** Left-pads prompts into ids, attention mask and position ids (cumsum(mask) - 1, as transformers). */
function leftPad(prompts: number[][], pad: number) {
  const T = Math.max(...prompts.map((p) => p.length));
  const ids = prompts.map((p) => [...new Array<number>(T - p.length).fill(pad), ...p]);
  const mask = prompts.map((p) => [...new Array<number>(T - p.length).fill(0), ...new Array<number>(p.length).fill(1)]);
  const pos = prompts.map((p) => [...new Array<number>(T - p.length).fill(1), ...p.map((_, i) => i)]);
  return { ids, mask, pos, T };
}

type StepOutput = 'logits' | 'argmax' | 'sample';

/**
 * Runs the model on the next tokens and returns the last position's logits [B][V] (or, for
 * greedy decoding without processors, the argmax ids). Three ways: a static cache (the
 * default where the model takes one: preallocated for prompt + new tokens, written in place,
 * and the decode step recorded once and replayed natively where the backend can), a growing
 * cache (concatenated at each token), or none (the whole sequence again at every step).
 */
class Stepper {
  cache: KvCache | undefined;
  private readonly fixed: StaticKvCache | undefined;
  private readonly steps = new Map<StepOutput, ReplayableStep>();

  constructor(
    private model: Decoder,
    private useCache: boolean,
    batch: number,
    maxLength: number,
    private o: GenerateOptions,
  ) {
    // static by default where the backend writes the cache in place (torch); elsewhere its tfjs
    // fallback copies the cache at every write, as the growing cache does, so that stays the default
    const kind = o.cache ?? (hasAnnealKernel('AnnealCacheWrite') ? 'static' : 'dynamic');
    if (useCache && model.staticCache && model.hidden && model.lmHead && kind === 'static')
      this.fixed = new StaticKvCache(batch, maxLength);
    this.replay = (o.replay ?? true) && Boolean(model.staticCache?.replayable);
  }
  private readonly replay: boolean;

  /** Steps replayed natively so far (0 where the backend cannot record, or replay is off). */
  get replayed(): number {
    return [...this.steps.values()].reduce((n, s) => n + s.stats.replayed, 0);
  }

  /** Whether sample() draws on the device (the static cache, on a backend with AnnealSampleTokens). */
  get samplesNatively(): boolean {
    return this.fixed !== undefined && hasAnnealKernel('AnnealSampleTokens');
  }

  /**
   * Each row's next token drawn on the device after temperature, top-k, top-p and min-p, with the
   * uniform numbers `words` (the generator's 32-bit words, as draw() would use them), and its
   * log-prob: the JS path's tokens, without the logits coming back.
   */
  sample(
    ids: number[][],
    mask: number[][],
    pos: number[][],
    words: number[],
  ): { tokens: number[]; logprobs: number[] } {
    const [tokens, logprobs] = this.staticStep(ids, mask, pos, 'sample', [
      tf.tensor1d(
        words.map((w) => w | 0),
        'int32',
      ),
    ]);
    const out = { tokens: Array.from(tokens.dataSync()), logprobs: Array.from(logprobs.dataSync()) };
    tf.dispose([tokens, logprobs]);
    return out;
  }

  /** The last logits of each row. */
  step(ids: number[][], mask: number[][], pos: number[][], fresh: number): Float32Array[] {
    const last = this.fixed ? this.staticStep(ids, mask, pos, 'logits')[0] : this.growingStep(ids, mask, pos, fresh);
    const flat = last.dataSync() as Float32Array;
    const [B, V] = last.shape as [number, number];
    last.dispose();
    return Array.from({ length: B }, (_, b) => flat.subarray(b * V, (b + 1) * V));
  }

  /** Each row's most likely next token, chosen on the device where the static cache is used (only ids come back). */
  argmax(ids: number[][], mask: number[][], pos: number[][]): number[] {
    if (!this.fixed) return this.step(ids, mask, pos, 1).map(argmax);
    const [best] = this.staticStep(ids, mask, pos, 'argmax');
    const out = Array.from(best.dataSync());
    best.dispose();
    return out;
  }

  private growingStep(ids: number[][], mask: number[][], pos: number[][], fresh: number): tf.Tensor2D {
    const B = ids.length;
    const width = this.useCache && this.cache ? fresh : ids[0].length;
    const start = ids[0].length - width;
    const out = tidy(() => {
      const r = this.model.forward({
        inputIds: tf.tensor2d(
          ids.map((row) => row.slice(start)),
          [B, width],
          'int32',
        ),
        attentionMask: tf.tensor2d(mask, [B, mask[0].length], 'int32'),
        positionIds: tf.tensor2d(
          pos.map((row) => row.slice(start)),
          [B, width],
          'int32',
        ),
        pastKeyValues: this.useCache ? this.cache : undefined,
        useCache: this.useCache,
        training: false,
      });
      const V = r.logits.shape[2]!;
      return { last: tf.reshape(tf.slice(r.logits, [0, width - 1, 0], [B, 1, V]), [B, V]), cache: r.pastKeyValues };
    });
    this.setCache(out.cache);
    return out.last as tf.Tensor2D;
  }

  /**
   * With the static cache: the first call runs the whole prompt (prefill); each later one the
   * newest token, through a step that takes everything that changes as input tensors (ids,
   * positions, the mask over all L slots, the cache index), so it can be replayed.
   */
  private staticStep(
    ids: number[][],
    mask: number[][],
    pos: number[][],
    out: StepOutput,
    extra: tf.Tensor[] = [],
  ): tf.Tensor[] {
    const cache = this.fixed!;
    const B = ids.length;
    const L = cache.maxLength;
    const width = cache.length === 0 ? ids[0].length : 1;
    const start = ids[0].length - width;
    const inputs = [
      tf.tensor2d(
        ids.map((row) => row.slice(start)),
        [B, width],
        'int32',
      ),
      tf.tensor2d(
        pos.map((row) => row.slice(start)),
        [B, width],
        'int32',
      ),
      tf.tensor2d(
        mask.map((row) => [...row, ...new Array<number>(L - row.length).fill(0)]),
        [B, L],
        'int32',
      ),
      tf.tensor1d([cache.length], 'int32'),
      ...extra,
    ];
    try {
      if (width > 1) return tf.tidy(() => this.decode(out)(inputs)); // the prefill: its own shapes, run once
      let step = this.steps.get(out);
      if (!step) {
        step = replayableStep(this.decode(out), { replay: this.replay });
        this.steps.set(out, step);
      }
      return step.run(inputs);
    } finally {
      cache.length += width;
      tf.dispose(inputs);
    }
  }

  /**
   * The step itself: [ids, positions, mask, cache index (, the generator's words)] -> [last
   * logits [B, V]], [argmax ids [B]] or [drawn ids [B], their log-probs [B]].
   */
  private decode(out: StepOutput) {
    return ([inputIds, positionIds, attentionMask, cachePosition, words]: tf.Tensor[]): tf.Tensor[] => {
      const [B, T] = inputIds.shape as [number, number];
      const hidden = this.model.hidden!({
        inputIds: inputIds as tf.Tensor2D,
        positionIds: positionIds as tf.Tensor2D,
        attentionMask: attentionMask as tf.Tensor2D,
        staticCache: this.fixed,
        cachePosition: cachePosition as tf.Tensor1D,
        training: false,
      }); // [B, T, C]
      const C = hidden.shape[2];
      const lastRows = tf.reshape(tf.slice(hidden, [0, T - 1, 0], [B, 1, C]), [B, C]) as tf.Tensor2D;
      const logits = this.headLogits(lastRows); // [B, V]
      if (out === 'sample') {
        const o = this.o;
        const attrs = { temperature: o.temperature ?? 1, topK: o.topK ?? 0, topP: o.topP ?? 1, minP: o.minP ?? 0 };
        return runAnnealKernel('AnnealSampleTokens', { logits, words }, attrs);
      }
      return [out === 'argmax' ? tf.argMax(logits, -1) : logits];
    };
  }

  /**
   * The head on the last rows. With more than 16 rows and a plain head (hidden · Wᵀ), W is kept
   * transposed, [C, V], for the whole generation: OpenBLAS multiplies many rows by W read
   * transposed at about half the speed (GPT-2's tied head at 8 rows: 32.8 against 18.0 ms), and
   * the weight does not change while generating. One copy of W, made at the first step. Up to
   * 16 rows the torch backend's few-row kernels read W as stored, faster than either (9.0 ms).
   */
  private headLogits(rows: tf.Tensor2D): tf.Tensor2D {
    const head = this.model.lmHead!();
    if (!head.plain || rows.shape[0] <= 16) return head.logits(rows);
    if (!this.headT || this.headT.source !== head.plain.weight) {
      this.headT?.t.dispose();
      this.headT = { source: head.plain.weight, t: tf.keep(tf.transpose(head.plain.weight)) as tf.Tensor2D };
    }
    return softcap(tf.matMul(rows, this.headT.t), head.plain.softcap) as tf.Tensor2D; // [B, V]
  }
  private headT: { source: tf.Tensor2D; t: tf.Tensor2D } | undefined;

  /** Keeps only the cache rows of `rows` (beam search reorders its beams). */
  select(rows: number[]): void {
    if (this.fixed) return this.fixed.select(rows);
    if (!this.cache) return;
    const idx = tf.tensor1d(rows, 'int32');
    this.setCache(this.cache.map((l) => ({ key: tf.gather(l.key, idx), value: tf.gather(l.value, idx) })));
    idx.dispose();
  }

  private setCache(next: KvCache | undefined): void {
    const old = this.cache;
    this.cache = next;
    if (old) for (const l of old) tf.dispose([l.key, l.value]);
  }

  report(stats: GenerateStats | undefined): void {
    if (!stats) return;
    stats.cache = this.fixed ? 'static' : this.useCache ? 'dynamic' : 'none';
    stats.replayed = this.replayed;
  }

  dispose(): void {
    this.setCache(undefined);
    this.fixed?.dispose();
    this.headT?.t.dispose();
    this.headT = undefined;
    for (const s of this.steps.values()) s.dispose();
    this.steps.clear();
  }
}

/** transformers' logits processors and warpers, in its order, on one row; returns a processed copy. */
export function processLogits(scores: Float32Array, seq: number[], newCount: number, o: GenerateOptions): Float32Array {
  const s = Float32Array.from(scores);
  const penalty = o.repetitionPenalty ?? 1;
  if (penalty !== 1) for (const t of new Set(seq)) s[t] = s[t] < 0 ? s[t] * penalty : s[t] / penalty;
  for (const t of repeatedNgramEnds(seq, o.noRepeatNgramSize ?? 0)) s[t] = -Infinity;
  for (const words of o.badWordsIds ?? []) {
    const prefix = words.slice(0, -1);
    const tail = seq.slice(seq.length - prefix.length);
    if (prefix.length <= seq.length && prefix.every((t, i) => t === tail[i])) s[words[words.length - 1]] = -Infinity;
  }
  if (newCount < (o.minNewTokens ?? 0)) for (const e of eosSet(o)) s[e] = -Infinity;
  if (!o.doSample) return s;
  const temperature = o.temperature ?? 1;
  if (temperature !== 1) for (let i = 0; i < s.length; i++) s[i] /= temperature;
  const k = o.topK ?? 0;
  if (k > 0 && k < s.length) {
    const kth = Float32Array.from(s).sort((a, b) => b - a)[k - 1];
    for (let i = 0; i < s.length; i++) if (s[i] < kth) s[i] = -Infinity;
  }
  const p = o.topP ?? 1;
  if (p < 1) {
    const order = Array.from(s.keys()).sort((a, b) => s[b] - s[a]);
    const probs = softmax(s);
    let cum = 0;
    // keep the most likely tokens until their probability reaches p (at least one)
    let keep = 0;
    while (keep < order.length && (keep === 0 || cum < p)) cum += probs[order[keep++]];
    for (let j = keep; j < order.length; j++) s[order[j]] = -Infinity;
  }
  const minP = o.minP ?? 0;
  if (minP > 0) {
    // tokens below minP × the top probability go (the top one always stays)
    const probs = softmax(s);
    let top = 0;
    for (const q of probs) if (q > top) top = q;
    for (let i = 0; i < s.length; i++) if (probs[i] < minP * top) s[i] = -Infinity;
  }
  return s;
}

/** Tokens that would repeat an n-gram of `seq` (transformers' no_repeat_ngram_size): the ends of n-grams starting with seq's last n - 1 tokens. */
function repeatedNgramEnds(seq: number[], n: number): number[] {
  if (n <= 0 || seq.length + 1 < n) return [];
  const prev = seq.slice(seq.length - n + 1);
  const ends: number[] = [];
  for (let i = 0; i + n <= seq.length; i++) if (prev.every((t, j) => seq[i + j] === t)) ends.push(seq[i + n - 1]);
  return ends;
}

export function softmax(s: Float32Array): Float64Array {
  let max = -Infinity;
  for (const v of s) if (v > max) max = v;
  const out = new Float64Array(s.length);
  let total = 0;
  for (let i = 0; i < s.length; i++) total += out[i] = Math.exp(s[i] - max);
  for (let i = 0; i < s.length; i++) out[i] /= total;
  return out;
}

function argmax(x: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[best]) best = i;
  return best;
}

function draw(s: Float32Array, rng: Rng): number {
  const probs = softmax(s);
  let r = rng.next();
  for (let i = 0; i < probs.length; i++) {
    r -= probs[i];
    if (r <= 0 && probs[i] > 0) return i;
  }
  return argmax(s);
}

function sampleOrGreedy(model: Decoder, prompts: number[][], o: GenerateOptions): number[][] {
  const eos = eosSet(o);
  const pad = o.padTokenId ?? [...eos][0] ?? 0;
  const { ids, mask, pos, T } = leftPad(prompts, pad);
  const maxNew = Math.min(o.maxNewTokens, model.maxPositions - T);
  const rng = new Rng(o.seed ?? 0);
  const stepper = new Stepper(model, o.useCache ?? true, prompts.length, T + maxNew, o);
  const done = prompts.map(() => false);
  const out = prompts.map((p) => [...p]);
  // the processors that only the JS path applies (they read each row's sequence or the step count)
  const jsProcessors = (n: number) =>
    (o.repetitionPenalty ?? 1) !== 1 || !!o.noRepeatNgramSize || !!o.badWordsIds?.length || n < (o.minNewTokens ?? 0);
  // greedy with none of them: the argmax is taken on the device, only ids come back
  const plainGreedy = (n: number) => !o.doSample && !jsProcessors(n) && !o.tokenLogprobs;
  // sampling with temperature, top-k, top-p and min-p only: drawn on the device with the same numbers
  const deviceSample = (n: number) => o.doSample && !jsProcessors(n) && stepper.samplesNatively;
  const logprobs = prompts.map(() => [] as number[]);
  const sampleOnDevice = () => {
    const words = done.map((d) => (d ? 0 : rng.nextUint32())); // one draw per live row, in row order, as draw()
    const r = stepper.sample(ids, mask, pos, words);
    if (o.tokenLogprobs) done.forEach((d, b) => d || logprobs[b].push(r.logprobs[b]));
    return r.tokens;
  };
  try {
    for (let n = 0; n < maxNew && done.some((d) => !d); n++) {
      const chosen = plainGreedy(n)
        ? stepper.argmax(ids, mask, pos)
        : deviceSample(n)
          ? sampleOnDevice()
          : stepper.step(ids, mask, pos, 1).map((row, b) => {
              if (done[b]) return -1;
              const s = processLogits(row, out[b], n, o);
              const t = o.doSample ? draw(s, rng) : argmax(s);
              if (o.tokenLogprobs) logprobs[b].push(logSoftmaxAt(s, t));
              return t;
            });
      const next = chosen.map((t, b) => (done[b] ? -1 : t));
      next.forEach((t, b) => {
        ids[b].push(t < 0 ? pad : t);
        mask[b].push(t < 0 ? 0 : 1);
        pos[b].push(pos[b][pos[b].length - 1] + 1);
        if (t < 0) return;
        out[b].push(t);
        if (eos.has(t)) done[b] = true;
        if (o.stopStrings?.length && o.decode) {
          const text = o.decode(out[b].slice(prompts[b].length));
          if (o.stopStrings.some((x) => text.endsWith(x))) done[b] = true;
        }
      });
      o.onToken?.(next, n);
    }
  } finally {
    stepper.report(o.stats);
    stepper.dispose();
  }
  if (o.tokenLogprobs) o.tokenLogprobs.splice(0, o.tokenLogprobs.length, ...logprobs);
  return out;
}

/** log softmax(s)[t], in float64. */
function logSoftmaxAt(s: Float32Array, t: number): number {
  let max = -Infinity;
  for (const v of s) if (v > max) max = v;
  let total = 0;
  for (let i = 0; i < s.length; i++) total += Math.exp(s[i] - max);
  return s[t] - max - Math.log(total);
}

interface Hypothesis {
  tokens: number[];
  score: number;
}

/** Beam search as transformers' BeamSearchScorer (log-probabilities, length penalty, early stopping). */
function beamSearch(model: Decoder, prompts: number[][], o: GenerateOptions): number[][] {
  const K = o.numBeams!;
  const eos = eosSet(o);
  const pad = o.padTokenId ?? [...eos][0] ?? 0;
  const lp = o.lengthPenalty ?? 1;
  const rows = prompts.flatMap((p) => new Array<number[]>(K).fill(p));
  const { ids, mask, pos, T } = leftPad(rows, pad);
  const maxNew = Math.min(o.maxNewTokens, model.maxPositions - T);
  // Only the first beam of each prompt is live at the start, so the K beams do not repeat.
  let beamScores: number[] = rows.map((_, r) => (r % K === 0 ? 0 : -1e9));
  let seqs = rows.map(() => [] as number[]);
  const finished = prompts.map(() => [] as Hypothesis[]);
  const closed = prompts.map(() => false);
  const stepper = new Stepper(model, o.useCache ?? true, rows.length, T + maxNew, o);
  const addFinished = (b: number, h: Hypothesis) => {
    finished[b].push(h);
    finished[b].sort((x, y) => y.score - x.score);
    if (finished[b].length > K) finished[b].pop();
  };
  try {
    for (let n = 0; n < maxNew && closed.some((c) => !c); n++) {
      const logits = stepper.step(ids, mask, pos, 1);
      const nextRows: number[] = [];
      const nextTokens: number[] = [];
      const nextScores: number[] = [];
      for (let b = 0; b < prompts.length; b++) {
        const cands: Array<[number, number, number]> = []; // score, row, token
        for (let j = 0; j < K; j++) {
          const r = b * K + j;
          const s = processLogits(logits[r], [...prompts[b], ...seqs[r]], n, o);
          const lsm = softmax(s);
          for (let t = 0; t < lsm.length; t++) if (lsm[t] > 0) cands.push([beamScores[r] + Math.log(lsm[t]), r, t]);
        }
        cands.sort((x, y) => y[0] - x[0]);
        const chosen: Array<[number, number, number]> = [];
        for (const c of cands.slice(0, 2 * K)) {
          if (chosen.length === K) break;
          if (eos.has(c[2])) {
            if (!closed[b]) addFinished(b, { tokens: [...seqs[c[1]], c[2]], score: c[0] / Math.pow(n + 1, lp) });
          } else chosen.push(c);
        }
        while (chosen.length < K) chosen.push([-1e9, b * K, pad]);
        for (const [sc, r, t] of chosen) {
          nextRows.push(r);
          nextTokens.push(t);
          nextScores.push(closed[b] ? -1e9 : sc);
        }
        // Done when K hypotheses are finished and (early stopping, or) no live beam can beat the worst.
        if (!closed[b] && finished[b].length === K) {
          const best = chosen[0][0] / Math.pow(n + 1, lp);
          if (o.earlyStopping || best <= finished[b][K - 1].score) closed[b] = true;
        }
      }
      stepper.select(nextRows);
      const [oi, om, op] = [ids.map((r) => [...r]), mask.map((r) => [...r]), pos.map((r) => [...r])];
      seqs = nextRows.map((r, k) => [...seqs[r], nextTokens[k]]);
      nextRows.forEach((r, k) => {
        ids[k] = [...oi[r], nextTokens[k]];
        mask[k] = [...om[r], 1];
        pos[k] = [...op[r], op[r][op[r].length - 1] + 1];
      });
      beamScores = nextScores;
      o.onToken?.(nextTokens, n);
    }
  } finally {
    stepper.report(o.stats);
    stepper.dispose();
  }
  const want = o.numReturnSequences ?? 1;
  return prompts.flatMap((p, b) => {
    // Unfinished beams compete with finished hypotheses at the end, as transformers finalizes.
    if (!closed[b])
      for (let j = 0; j < K; j++)
        addFinished(b, {
          tokens: seqs[b * K + j],
          score: beamScores[b * K + j] / Math.pow(Math.max(1, seqs[b * K + j].length), lp),
        });
    return finished[b].slice(0, want).map((h) => [...p, ...h.tokens]);
  });
}
