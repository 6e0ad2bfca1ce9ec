// How a recipe tells the outside world what it is doing. The CLI implements this with
// a progress bar on a TTY and plain lines otherwise; tests use silentReporter.

export interface StepReport {
  step: number;
  maxSteps: number;
  /**
   * What the console shows next to the step: the value the recipe logs for it (train/loss,
   * or PPO's objective/scores), the mean over the `meanOf` steps since the last logging
   * step, so the line at a logging step equals what metrics.jsonl and TensorBoard hold.
   */
  metric: { name: string; value: number; meanOf: number };
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
