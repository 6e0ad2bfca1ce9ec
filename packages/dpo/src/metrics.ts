// TRL's DPO metrics of one batch, from per-pair implicit rewards, policy log-probs and the
// mean logits of the chosen and rejected completions.
export interface DpoBatchStats {
  chosenRewards: ArrayLike<number>;
  rejectedRewards: ArrayLike<number>;
  chosenLogps: ArrayLike<number>;
  rejectedLogps: ArrayLike<number>;
  /** Mean logit over each row's completion tokens and the vocabulary, with the row's token count. */
  chosenMeanLogits: ArrayLike<number>;
  rejectedMeanLogits: ArrayLike<number>;
  chosenCounts: ArrayLike<number>;
  rejectedCounts: ArrayLike<number>;
}

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, x) => s + x, 0) / Math.max(1, a.length);
const weighted = (v: ArrayLike<number>, w: ArrayLike<number>) => {
  let [s, n] = [0, 0];
  for (let i = 0; i < v.length; i++) [s, n] = [s + v[i] * w[i], n + w[i]];
  return s / Math.max(1, n);
};

export function dpoMetrics(s: DpoBatchStats): Record<string, number> {
  const n = s.chosenRewards.length;
  let wins = 0;
  for (let i = 0; i < n; i++) if (s.chosenRewards[i] > s.rejectedRewards[i]) wins++;
  return {
    'rewards/chosen': mean(s.chosenRewards),
    'rewards/rejected': mean(s.rejectedRewards),
    'rewards/accuracies': wins / Math.max(1, n),
    'rewards/margins': mean(s.chosenRewards) - mean(s.rejectedRewards),
    'logps/chosen': mean(s.chosenLogps),
    'logps/rejected': mean(s.rejectedLogps),
    // token-weighted, as TRL's logits[loss_mask].mean()
    'logits/chosen': weighted(s.chosenMeanLogits, s.chosenCounts),
    'logits/rejected': weighted(s.rejectedMeanLogits, s.rejectedCounts),
  };
}
