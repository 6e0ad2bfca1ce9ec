// @anneal/kto: Kahneman–Tversky Optimization with TRL's names — so far its loss (kto and
// apo_zero_unpaired, the KL reference point, desirable/undesirable weights); the recipe
// (recipe: kto on unpaired prompt/completion/label data) is not built yet.
export { ktoLoss, type KtoLogps, type KtoLossOptions, type KtoLossResult, type KtoLossType } from './loss.js';
