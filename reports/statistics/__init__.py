"""The statistics behind the campaign report: pure functions on numpy arrays, no Django.

Every function returns a plain dict ready for JSON. A figure that cannot be computed honestly is
``None`` with a ``<key>_reason`` string next to it, so a reader never mistakes "no data" for "zero".
Inputs are in role terms (pre-trained / fine-tuned); the left/right translation happens before this.

Correctness verdicts are coded as int8: 1 = correct, 0 = incorrect, -1 = no verdict (null).

One module per topic: relevance (prompt means, improvement, bootstrap CI, Wilcoxon, win rate),
accuracy (majority verdicts, Wilson, McNemar, label matchers), agreement (Krippendorff's alpha,
each rater against the others), bias (position, side preference, answer length), latency (latency,
cost), identity (answers that name a model or vendor), claims (the plain-language sentences).
"""
