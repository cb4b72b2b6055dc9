"""Style identifiability: can a model's answers be told apart by their text alone?

Blinding hides which model wrote which answer, not how each writes. If the fine-tuned model has a house
style ("Positive. The reviewer praises ..."), a rater who has seen a few pairs recognises it, and the
ratings are no longer blind. This module measures that with a classifier that sees only the answers'
text: logistic regression (scikit-learn) on tf-idf word 1-2-grams, character 2-4-grams (within words:
this catches punctuation and casing habits) and the answer's length.

It is fitted on a random half of the prompts (both answers of each) and scored on the other half. One
split, not k-fold cross-validation: in cross-validation every pair is in the training set of the models
that score the other pairs, which correlates their scores; in simulation (issue 14) that made a 95%
interval cover an AUC of 0.5 only 83-85% of the time when the two models wrote alike. With one split the
held-out pairs are independent given the fitted model (tests/reports/test_style_coverage.py).

Figures, over the held-out prompts:
- `auc`: the probability that a fine-tuned answer scores higher than a pre-trained one (ties count
  half), over all held-out answers; 0.5 = indistinguishable, 1.0 = always told apart. `ci95`: a
  clustered DeLong interval (a prompt's two answers are one cluster), on the logit scale with Student's
  t; none when every comparison went one way (a zero variance gives no interval). In simulation (40-300
  prompts, 300 campaigns per cell) it covered 93-96%; a percentile bootstrap over prompts 92-94%.
- `pair_accuracy`: the share of held-out prompts whose fine-tuned answer scored higher than its
  pre-trained answer (ties half): how often a rater who guessed "the one that reads like the fine-tuned
  model" would be right on a pair. `pair_accuracy_ci95`: exact (Clopper-Pearson).
- `level`: "high" (AUC >= HIGH_AUC and told apart better than chance: the warning), "detectable" (better
  than chance), "not_detected".

The work is capped (at most MAX_PROMPTS prompts, sampled at random with a fixed seed) so the report stays
fast on large campaigns; the result depends only on the answers' text and is the same on every run.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from scipy import sparse, stats
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

MIN_PROMPTS = 40
MAX_PROMPTS = 300
HIGH_AUC = 0.8
SEED = 0

METHOD = (
    "logistic regression (scikit-learn, C=10) on tf-idf word 1-2-grams, character 2-4-grams and answer "
    "length, fitted on a random half of the prompts and scored on the other half (the vocabulary is built "
    "from all sampled answers without their labels); auc = Mann-Whitney AUC of the held-out answers' "
    "scores (fine-tuned vs pre-trained), ci95 = clustered DeLong interval (prompts as clusters, logit "
    "scale, t on n-1 df); pair_accuracy = share of held-out prompts whose fine-tuned answer scored higher "
    "(ties half), ci95 exact (Clopper-Pearson, ties against for the lower bound); "
    f"at most {MAX_PROMPTS} prompts, sampled with a fixed seed; warns at AUC >= {HIGH_AUC} with the "
    "interval above 0.5"
)


def _log_length(texts: Sequence[str]) -> np.ndarray:
    return np.array([[np.log1p(len(t)), np.log1p(len(t.split()))] for t in texts], dtype=np.float64)


def style_feature_union() -> FeatureUnion:
    """Word and character n-gram tf-idf plus length (unfitted)."""
    return FeatureUnion(
        [
            ("words", TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True)),
            (
                "chars",
                TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True, lowercase=False),
            ),
            ("length", make_pipeline(FunctionTransformer(_log_length), StandardScaler())),
        ]
    )


def style_features(texts: Sequence[str]) -> sparse.csr_matrix:
    """One row of features per text, the vocabulary and idf weights built from these texts alone (no
    labels), so both halves share one feature space and each text is analysed once."""
    return sparse.csr_matrix(style_feature_union().fit_transform(list(texts)))


def fit_on_half(
    pretrained: Sequence[str], finetuned: Sequence[str], rng: np.random.Generator
) -> tuple[LogisticRegression, sparse.csr_matrix, np.ndarray, np.ndarray]:
    """A logistic regression fitted on a random half of the prompts (both answers of each). Returns
    (model, features of every answer: pre-trained rows 0..n-1 then fine-tuned rows n..2n-1, training
    prompt indices, held-out prompt indices)."""
    n = len(pretrained)
    features = style_features([*pretrained, *finetuned])
    order = rng.permutation(n)
    train, held_out = np.sort(order[: n // 2]), np.sort(order[n // 2 :])
    labels = np.r_[np.zeros(len(train)), np.ones(len(train))]
    model = LogisticRegression(C=10.0, solver="liblinear", random_state=SEED)
    model.fit(features[np.r_[train, train + n]], labels)
    return model, features, train, held_out


def held_out_scores(
    pretrained: Sequence[str], finetuned: Sequence[str], rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """The held-out prompts' scores (log-odds of "fine-tuned"): (pre-trained answers, fine-tuned
    answers), one per held-out prompt, all from the one model fitted on the other half."""
    model, features, _, held_out = fit_on_half(pretrained, finetuned, rng)
    n = len(pretrained)
    scores = model.decision_function(features[np.r_[held_out, held_out + n]])
    return scores[: len(held_out)], scores[len(held_out) :]


def weighted_auc(pt_scores: np.ndarray, ft_scores: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The Mann-Whitney AUC of fine-tuned over pre-trained scores with prompt weights, one per row of
    `weights` (shape [resamples, prompts]: how often each prompt was drawn). Ties count half.

    Every (fine-tuned answer i, pre-trained answer j) comparison is made once; a resample weighs it by
    w_i * w_j, so each resample's AUC is w H w / (sum w)^2: a matrix product, not a sort per resample."""
    wins = (ft_scores[:, None] > pt_scores[None, :]) + 0.5 * (ft_scores[:, None] == pt_scores[None, :])
    weights = np.asarray(weights, dtype=np.float64)
    return ((weights @ wins) * weights).sum(axis=1) / weights.sum(axis=1) ** 2


def _pair_wins(pt_scores: np.ndarray, ft_scores: np.ndarray) -> np.ndarray:
    return np.where(ft_scores > pt_scores, 1.0, np.where(ft_scores == pt_scores, 0.5, 0.0))


def auc_interval(pt: np.ndarray, ft: np.ndarray) -> tuple[list[float] | None, str | None]:
    """A 95% interval for the AUC with prompts as clusters (one pre-trained and one fine-tuned answer
    each): DeLong's structural components per prompt, V10_i = share of pre-trained answers its
    fine-tuned answer beats and V01_i = share of fine-tuned answers that beat its pre-trained answer;
    SE = sd_i(V10_i + V01_i) / sqrt(n) (Obuchowski 1997); the interval is built on the logit scale with
    Student's t on n - 1 degrees of freedom. (None, reason) when every comparison went one way or the
    components do not vary: no interval comes from a zero variance."""
    n = len(pt)
    wins = (ft[:, None] > pt[None, :]) + 0.5 * (ft[:, None] == pt[None, :])
    auc = float(wins.mean())
    se = float(np.std(wins.mean(axis=1) + wins.mean(axis=0), ddof=1)) / np.sqrt(n)
    if not 0.0 < auc < 1.0 or se == 0.0:
        return None, (
            f"every one of the {n * n} held-out comparisons went the same way (AUC {auc:.2f}): no interval "
            "from a zero variance; see pair_accuracy_ci95"
        )
    half = stats.t.ppf(0.975, n - 1) * se / (auc * (1.0 - auc))
    logit = np.log(auc / (1.0 - auc))
    return [float(1.0 / (1.0 + np.exp(-(logit + x)))) for x in (-half, half)], None


def pair_interval(pt: np.ndarray, ft: np.ndarray) -> list[float]:
    """Exact (Clopper-Pearson) 95% interval for the share of pairs whose fine-tuned answer scores
    higher: held-out prompts are independent given the fitted model. Tied pairs count against it for
    the lower bound and for it for the upper bound (conservative)."""
    n = len(pt)
    won, tied = int((ft > pt).sum()), int((ft == pt).sum())
    low = float(stats.beta.ppf(0.025, won, n - won + 1)) if won > 0 else 0.0
    high = float(stats.beta.ppf(0.975, won + tied + 1, n - won - tied)) if won + tied < n else 1.0
    return [low, high]


def _verdict(auc: float, ci: list[float] | None, pair_ci: list[float], n: int) -> dict[str, Any]:
    """The level and, when the answers give their model away, the warning in plain words. Told apart
    better than chance = the AUC's interval lies above 0.5 (the pair share's exact interval when every
    comparison went one way)."""
    interval = f"95% CI {ci[0]:.2f}–{ci[1]:.2f}" if ci else "every comparison went one way"
    figures = f"AUC {auc:.2f}, {interval}, on {n} prompts it was not trained on"
    above_chance = (ci or pair_ci)[0] > 0.5
    if auc >= HIGH_AUC and above_chance:
        return {
            "level": "high",
            "warning": (
                "Blinding hides the model's name but not its style: a classifier that reads only the "
                f"answers told the fine-tuned model's answers from the pre-trained model's ({figures}). "
                "Raters may have recognised which model wrote which answer, so their scores may not be "
                "blind."
            ),
        }
    if above_chance:
        return {
            "level": "detectable",
            "note": (
                f"The two models' answers can be told apart better than chance ({figures}), though not "
                f"reliably (AUC below {HIGH_AUC})."
            ),
        }
    return {"level": "not_detected", "note": f"No style difference was detected ({figures})."}


def style_identifiability(pretrained: Sequence[str], finetuned: Sequence[str]) -> dict[str, Any]:
    """How well the answers' text alone identifies the model that wrote them (one text per role and
    prompt, in the same prompt order). Null figures with a reason below MIN_PROMPTS prompts."""
    n = len(pretrained)
    out: dict[str, Any] = {
        "auc": None, "ci95": None, "pair_accuracy": None, "pair_accuracy_ci95": None,
        "n_prompts": n, "n_prompts_used": 0, "n_prompts_scored": 0, "level": None, "high_auc": HIGH_AUC,
        "method": METHOD,
    }  # fmt: skip
    if n < MIN_PROMPTS:
        out["reason"] = f"{n} prompts with both answers; the classifier needs at least {MIN_PROMPTS}"
        return out
    rng = np.random.default_rng(SEED)
    used = np.sort(rng.choice(n, MAX_PROMPTS, replace=False)) if n > MAX_PROMPTS else np.arange(n)
    pt_texts = [pretrained[i] or "" for i in used]
    ft_texts = [finetuned[i] or "" for i in used]
    try:
        pt, ft = held_out_scores(pt_texts, ft_texts, rng)
    except ValueError as exc:  # e.g. "empty vocabulary": answers of one character or none
        out["reason"] = f"the classifier could not be trained on these answers: {exc}"
        return out
    auc = float(weighted_auc(pt, ft, np.ones((1, len(pt))))[0])
    ci, ci_reason = auc_interval(pt, ft)
    pair_ci = pair_interval(pt, ft)
    out.update(
        auc=auc,
        ci95=ci,
        pair_accuracy=float(_pair_wins(pt, ft).mean()),
        pair_accuracy_ci95=pair_ci,
        n_prompts_used=len(used),
        n_prompts_scored=len(pt),
    )
    if ci_reason:
        out["ci95_reason"] = ci_reason
    out.update(_verdict(auc, ci, pair_ci, len(pt)))
    return out
