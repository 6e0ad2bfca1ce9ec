// Progress for humans: a bar with step, loss, tokens/s and ETA on a terminal; plain
// log lines (one per logging step) when output goes to a file or CI.
import { SingleBar } from 'cli-progress';
import type { Reporter, StepReport } from '@anneal/training';

/** "loss 7.4400 (mean of 10 steps)": the value logged for this step, and what it averages. */
export function metricText(r: StepReport): string {
  const m = r.metric;
  return `${m.name} ${m.value.toFixed(4)}${m.meanOf > 1 ? ` (mean of ${m.meanOf} steps)` : ''}`;
}

function fmt(r: StepReport): string {
  return `step ${r.step}/${r.maxSteps} ${metricText(r)} lr ${r.lr.toExponential(2)} ${Math.round(r.tokensPerSecond)} tok/s`;
}

export function plainReporter(out: (line: string) => void = (l) => process.stdout.write(l + '\n')): Reporter {
  let every = 1;
  let t0 = 0;
  let first = 0;
  return {
    info: (m) => out(m),
    start(maxSteps, startStep, logEvery) {
      every = logEvery;
      t0 = performance.now();
      first = startStep;
      out(`training steps ${startStep + 1}..${maxSteps}`);
    },
    step(r) {
      if (r.step % every !== 0 && r.step !== r.maxSteps) return;
      const perStep = (performance.now() - t0) / 1000 / (r.step - first);
      out(`${fmt(r)} eta ${Math.round(perStep * (r.maxSteps - r.step))}s`);
    },
    stop: () => undefined,
  };
}

export function ttyReporter(): Reporter {
  const bar = new SingleBar({
    format: 'step {value}/{total} |{bar}| {metric} | {tps} tok/s | lr {lr} | eta {eta_formatted}',
    hideCursor: true,
    etaBuffer: 50,
  });
  let running = false;
  return {
    info(m) {
      process.stdout.write((running ? '\r\x1b[K' : '') + m + '\n');
      if (running) bar.render();
    },
    start(maxSteps, startStep) {
      bar.start(maxSteps, startStep, { metric: '-', tps: '-', lr: '-' });
      running = true;
    },
    step(r) {
      bar.update(r.step, { metric: metricText(r), tps: Math.round(r.tokensPerSecond), lr: r.lr.toExponential(2) });
    },
    stop() {
      if (running) bar.stop();
      running = false;
    },
  };
}
