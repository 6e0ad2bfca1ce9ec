// `anneal eval <config>`: loads the model and tokenizer, runs the configured tasks with a
// progress bar, prints the numbers and writes eval.json + TensorBoard scalars.
import { SingleBar } from 'cli-progress';
import { AnnealError, loadConfig, useBackend } from '@anneal/core';
import { EvalConfigSchema, evalOutputDir, runEval, writeEvalResults, type EvalProgress } from '@anneal/eval';
import { loadPretrained, localModelDir } from '@anneal/modeling';
import { loadTokenizerSync } from '@anneal/tokenizers';
import { registerTorchBackend } from '@anneal/backend-torch';
import { requireTokenizerFits } from '@anneal/training';

function progress(out: (s: string) => void): EvalProgress {
  if (!process.stderr.isTTY)
    return { task: (n, total) => out(`${n}: ${total} item(s)`), tick: () => undefined, info: out };
  let bar: SingleBar | undefined;
  return {
    task(name, total) {
      bar?.stop();
      bar = new SingleBar({ format: `${name} |{bar}| {value}/{total} | eta {eta_formatted}`, hideCursor: true });
      bar.start(total, 0);
    },
    tick: () => bar?.increment(),
    info: out,
  };
}

export async function evalCommand(
  file: string,
  flags: { set: string[] },
  out: (s: string) => void,
  info: (s: string) => void,
): Promise<void> {
  const { config } = loadConfig(file, EvalConfigSchema, flags.set);
  try {
    registerTorchBackend({ warn: info });
  } catch (e) {
    if (config.backend === 'torch') throw e;
    info(`torch backend unavailable: ${e instanceof AnnealError ? e.message : (e as Error).message}`);
  }
  const backend = await useBackend(config.backend);
  const modelDir = await localModelDir(config.model, { field: 'model' }); // a run folder: its best checkpoint
  const model = await loadPretrained(modelDir);
  const tokDir = config.tokenizer ?? modelDir;
  const tok = loadTokenizerSync(tokDir);
  requireTokenizerFits(tok, model, { file, field: 'tokenizer' });
  info(`backend ${backend.name}; model ${config.model} (${model.modelType}); tokenizer ${tokDir}`);
  const results = await runEval(config, model, tok, { configFile: file, progress: progress(info) });
  const dir = evalOutputDir(config);
  const step = Number(/step-(\d+)[\\/]?$/.exec(config.model)?.[1] ?? 0);
  const written = writeEvalResults(
    dir,
    results,
    { model: config.model, config: file, backend: backend.name, evaluatedAt: new Date().toISOString() },
    step,
  );
  for (const [k, v] of Object.entries(results)) out(`${k.padEnd(28)} ${Number.isInteger(v) ? v : v.toFixed(6)}`);
  info(`wrote ${written} and TensorBoard scalars eval/* at step ${step}`);
}
