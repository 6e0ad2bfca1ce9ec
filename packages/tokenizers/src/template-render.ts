// Rendering a Jinja template with bounds. @huggingface/jinja is a sandbox (no file, network or
// Python access) but has no limits: `{% for i in range(10**9) %}` builds a billion-element
// array and aborts Node with a V8 fatal error after a minute. Here every render runs in an
// Interpreter that checks a deadline as it evaluates, `range` refuses huge ranges, and no
// string or list the template builds may pass a size bound; each stops with a FormatError
// naming the template's file, as do the template's own errors (raise_exception, an undefined
// call), which would otherwise surface as a bare `error: boom`.
import { Environment, Interpreter, type Template } from '@huggingface/jinja';
import { FormatError } from '@anneal/core';

export interface RenderLimits {
  /** Wall time for one render. */
  timeMs: number;
  /** Longest string (characters) or list (items) any expression may produce, the output included. */
  maxSize: number;
}

/** Far above any real conversation (a 128k-token chat renders to well under 1M characters). */
export const DEFAULT_RENDER_LIMITS: RenderLimits = { timeMs: 3_000, maxSize: 16_000_000 };

class LimitExceeded extends Error {}
class TemplateRaised extends Error {}

// The package's .d.ts re-exports Interpreter and Environment from "./runtime" without an
// extension, which NodeNext resolution cannot follow: their types are declared here.
interface JinjaEnvironment {
  set(name: string, value: unknown): unknown;
}
interface JinjaInterpreter {
  run(program: unknown): unknown;
  evaluate(statement: unknown, environment: unknown): unknown;
}
const InterpreterBase = Interpreter as unknown as new (env: JinjaEnvironment) => JinjaInterpreter;
const EnvironmentClass = Environment as unknown as new () => JinjaEnvironment;

/** An Interpreter that checks the clock every 256 evaluations and the size of every value. */
class BoundedInterpreter extends InterpreterBase {
  private steps = 0;

  constructor(
    env: JinjaEnvironment,
    private readonly deadline: number,
    private readonly limits: RenderLimits,
  ) {
    super(env);
  }

  override evaluate(statement: unknown, environment: unknown): unknown {
    if ((++this.steps & 255) === 0 && Date.now() > this.deadline)
      throw new LimitExceeded(`it ran longer than ${this.limits.timeMs} ms`);
    const v = super.evaluate(statement, environment);
    const value = (v as { value?: unknown } | undefined)?.value;
    const size = typeof value === 'string' || Array.isArray(value) ? value.length : 0;
    if (size > this.limits.maxSize)
      throw new LimitExceeded(
        `it built a ${typeof value === 'string' ? 'string' : 'list'} of ${size} ${typeof value === 'string' ? 'characters' : 'items'} (limit ${this.limits.maxSize})`,
      );
    return v;
  }
}

/** Python's strftime for the directives chat templates use (%Y %m %d %b %B %H %M %%); a date in a system prompt. */
function strftimeNow(format: string): string {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  const month = (style: 'short' | 'long') => new Intl.DateTimeFormat('en-US', { month: style }).format(d);
  const parts: Record<string, () => string> = {
    Y: () => String(d.getFullYear()),
    m: () => pad(d.getMonth() + 1),
    d: () => pad(d.getDate()),
    b: () => month('short'),
    B: () => month('long'),
    H: () => pad(d.getHours()),
    M: () => pad(d.getMinutes()),
    '%': () => '%',
  };
  return format.replace(/%([YmdbBHM%])/g, (_, c: string) => parts[c]());
}

/** Renders a parsed template with `variables` under `limits`; `where` names the template for errors. */
export function renderBounded(
  template: Template,
  variables: Record<string, unknown>,
  where: { file?: string; field: string },
  limits: RenderLimits = DEFAULT_RENDER_LIMITS,
): string {
  const env = new EnvironmentClass();
  // The globals @huggingface/jinja's Template.render sets, with a bounded range and a
  // raise_exception whose message is kept apart from the interpreter's own errors.
  const range = (start: number, stop?: number, step = 1): number[] => {
    const [lo, hi] = stop === undefined ? [0, start] : [start, stop];
    if (step === 0) throw new Error('range() step must not be zero');
    const n = Math.max(0, Math.ceil((hi - lo) / step));
    if (n > limits.maxSize) throw new LimitExceeded(`range() of ${n} items (limit ${limits.maxSize})`);
    return Array.from({ length: n }, (_, i) => lo + i * step);
  };
  const globals: Record<string, unknown> = {
    false: false,
    true: true,
    none: null,
    False: false,
    True: true,
    None: null,
    range,
    strftime_now: strftimeNow,
    raise_exception: (message: unknown) => {
      throw new TemplateRaised(String(message));
    },
  };
  for (const [k, v] of Object.entries({ ...globals, ...variables })) env.set(k, v);
  try {
    const out = new BoundedInterpreter(env, Date.now() + limits.timeMs, limits).run(template.parsed);
    return String((out as { value: unknown }).value);
  } catch (e) {
    const hint = 'the template is in the file named above; fix it, or give another with tokenizer.chatTemplate';
    if (e instanceof LimitExceeded)
      throw new FormatError(`the chat template was stopped: ${e.message}`, {
        ...where,
        hint: 'a chat template renders one conversation; this one loops or grows without bound. ' + hint,
      });
    if (e instanceof TemplateRaised)
      throw new FormatError(`the chat template raised an exception: ${e.message}`, {
        ...where,
        hint: 'raise_exception() in the template: the conversation breaks one of its rules (roles must alternate, a system message first, ...)',
      });
    if (e instanceof RangeError)
      throw new FormatError(`the chat template ran out of room: ${e.message}`, { ...where, hint });
    throw new FormatError(`the chat template failed: ${(e as Error).message}`, { ...where, hint });
  }
}
