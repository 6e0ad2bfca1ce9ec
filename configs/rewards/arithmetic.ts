// Verifiable rewards for datasets/arithmetic (configs/grpo-arithmetic.yaml), as TRL takes
// reward functions: (prompts, completions, rows) -> one number per completion; each row
// carries the dataset's other columns, here the `answer`.

/** 1 when the completion's first number is the row's answer, else 0. */
export default function exactAnswer(
  prompts: string[],
  completions: string[],
  rows: Array<{ answer: string }>,
): number[] {
  return completions.map((c, i) => (c.trim().match(/^-?\d+/)?.[0] === rows[i].answer ? 1 : 0));
}

/** 1 when the completion is a number and nothing else (the format the SFT step taught). */
export function numberOnly(prompts: string[], completions: string[]): number[] {
  return completions.map((c) => (/^\s*-?\d+\s*$/.test(c) ? 1 : 0));
}
