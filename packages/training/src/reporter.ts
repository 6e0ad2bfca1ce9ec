// How a recipe tells the outside world what it is doing. The CLI implements this with
// a progress bar on a TTY and plain lines otherwise; tests use silentReporter.

export interface StepReport {
  step: number;
  maxSteps: number;
  loss: number;
  lr: number;
  tokensPerSecond: number;
}

export interface Reporter {
  /** A line of information (backend, sizes, eval results, samples). */
  info(message: string): void;
  /** `logEvery`: how often the recipe logs metrics (plain-text reporters print at that rate). */
  start(maxSteps: number, startStep: number, logEvery: number): void;
  step(report: StepReport): void;
  stop(): void;
}

const nothing = (): void => undefined;
export const silentReporter: Reporter = { info: nothing, start: nothing, step: nothing, stop: nothing };
