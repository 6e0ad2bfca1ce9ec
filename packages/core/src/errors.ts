// One small error module for all of Anneal. Every error says what was wrong, with the
// values involved, and where possible names the file and field and gives a hint.
// Libraries throw these; only the CLI decides how to print them and what exit code to use.

export interface ErrorDetails {
  /** File the problem was found in, if any. */
  file?: string;
  /** Dotted config path, safetensors key, row number, ... */
  field?: string;
  /** What the user can do about it. */
  hint?: string;
  cause?: unknown;
}

export class AnnealError extends Error {
  readonly file?: string;
  readonly field?: string;
  readonly hint?: string;

  constructor(message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.name = new.target.name;
    this.file = details.file;
    this.field = details.field;
    this.hint = details.hint;
  }

  /** One paragraph for humans: where, what, and what to do. */
  describe(): string {
    const where = [this.file, this.field].filter(Boolean).join(': ');
    const head = where ? `${where}: ${this.message}` : this.message;
    return this.hint ? `${head}\nhint: ${this.hint}` : head;
  }
}

/** A config file that is missing, unparsable, or does not match its schema. */
export class ConfigError extends AnnealError {}
/** Data files that are missing or malformed. */
export class DataError extends AnnealError {}
/** A binary format (safetensors, tfevents, tokenizer.json) that is malformed. */
export class FormatError extends AnnealError {}
/** A checkpoint or run folder that cannot be saved or resumed. */
export class CheckpointError extends AnnealError {}
/** A tensor backend that cannot be used. */
export class BackendError extends AnnealError {}
/** A shape or size mismatch between model, data and config. */
export class ShapeError extends AnnealError {}
/** A NaN or Inf in loss or gradients. */
export class NumericError extends AnnealError {}
/** The operating system refused a write (disk full, read-only, no permission, over quota). */
export class StorageError extends AnnealError {}
