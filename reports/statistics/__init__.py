"""The statistics behind the campaign report: pure functions on numpy arrays, no Django.

Every function returns a plain dict ready for JSON. A figure that cannot be computed honestly is
``None`` with a ``<key>_reason`` string next to it, so a reader never mistakes "no data" for "zero".
Inputs are in role terms (pre-trained / fine-tuned); the left/right translation happens before this.

Correctness verdicts are coded as int8: 1 = correct, 0 = incorrect, -1 = no verdict (null).

One module per topic: relevance (prompt means, the score difference and relative improvement with
their intervals, the paired permutation test, Wilcoxon, win rate over ratings and prompts), intervals
(Wilson, Clopper-Pearson, the mean and ratio intervals, sign-flip test, Holm), accuracy (strict
majority verdicts, Wilson, McNemar on paired prompts, label matchers), agreement (Krippendorff's
alpha, each rater against the others), bias (position, side preference, answer length, one
observation per pair), campaign_coverage (rated prompts per task, evenness), latency (latency,
cost), identity (answers that name a model or vendor), claims (the headline sentences, made or
refused) and cautions (bias, leaks, reliability, training statements). How often the intervals miss
and the claims err is measured by bench/coverage.py through these same functions.
"""
