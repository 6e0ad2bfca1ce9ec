// A format reward for the sentiment demos (configs/grpo-sentiment.yaml, rloo-sentiment.yaml),
// next to the reward model: a review is one finished sentence.

/** 1 when the completion ends a sentence (., ! or ?) and is at most 30 words, else 0. */
export default function finishedSentence(prompts: string[], completions: string[]): number[] {
  return completions.map((c) => {
    const t = c.trim();
    return /[.!?]$/.test(t) && t.split(/\s+/).length <= 30 ? 1 : 0;
  });
}
