"""Style identifiability (issue 14, item 11): blinding hides the model's name, not its style. A classifier
that reads only the answers says how well they give their model away; the report warns when they do."""

from __future__ import annotations

import html
import random

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from annotations.campaigns import campaign_create
from generation.models import Answer, Dataset, GenerationJob, Prompt
from reports.building import campaign_report
from reports.statistics.style import HIGH_AUC, MIN_PROMPTS, style_identifiability, weighted_auc
from reports.text import report_as_text
from tests.reports.style_texts import house_style_answer, plain_answer

WARNING = "Blinding hides the model's name but not its style"


def texts(n: int, finetuned_style, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    return [plain_answer(rng) for _ in range(n)], [finetuned_style(rng) for _ in range(n)]


def test_auc_counts_ties_half_and_bootstrap_weights_are_repeated_prompts():
    rng = np.random.default_rng(3)
    pt = rng.integers(0, 5, 30).astype(float)  # integer scores: many ties
    ft = rng.integers(1, 6, 30).astype(float)
    labels = np.r_[np.zeros(30), np.ones(30)]
    assert weighted_auc(pt, ft, np.ones((1, 30)))[0] == pytest.approx(roc_auc_score(labels, np.r_[pt, ft]))
    # weight w on a prompt = that prompt's two answers drawn w times
    weights = rng.integers(0, 4, (3, 30)).astype(float)
    for row, w in zip(weighted_auc(pt, ft, weights), weights, strict=True):
        idx = np.repeat(np.arange(30), w.astype(int))
        expanded = roc_auc_score(np.r_[np.zeros(len(idx)), np.ones(len(idx))], np.r_[pt[idx], ft[idx]])
        assert row == pytest.approx(expanded)


def test_a_house_style_gives_its_model_away_and_is_warned_about():
    pretrained, finetuned = texts(60, house_style_answer)
    result = style_identifiability(pretrained, finetuned)
    assert result["auc"] >= 0.95 and result["pair_accuracy"] >= 0.95, result
    assert result["pair_accuracy_ci95"][0] >= HIGH_AUC and result["n_prompts_used"] == 60
    # every held-out comparison went one way: no interval from a zero variance, and the reason says so
    assert result["ci95"] is None and "went the same way" in result["ci95_reason"]
    assert result["n_prompts_scored"] == 30  # fitted on one half, scored on the other
    assert result["level"] == "high" and result["warning"].startswith(WARNING)
    assert "on 30 prompts it was not trained on" in result["warning"]


def test_answers_written_alike_are_not_flagged():
    pretrained, finetuned = texts(80, plain_answer, seed=1)
    result = style_identifiability(pretrained, finetuned)
    assert result["level"] == "not_detected" and "warning" not in result, result
    assert result["ci95"][0] <= 0.5 <= result["ci95"][1]
    # the same answers with the roles' labels swapped: the classifier has nothing to go by either way
    assert style_identifiability(finetuned, pretrained)["level"] == "not_detected"


def test_too_few_prompts_give_no_figure_but_a_reason():
    pretrained, finetuned = texts(MIN_PROMPTS - 1, house_style_answer)
    result = style_identifiability(pretrained, finetuned)
    assert result["auc"] is None and result["ci95"] is None and result["level"] is None
    assert result["reason"] == (
        f"{MIN_PROMPTS - 1} prompts with both answers; the classifier needs at least {MIN_PROMPTS}"
    )
    empty = style_identifiability([""] * 50, [""] * 50)
    assert empty["auc"] is None and "could not be trained" in empty["reason"]


def test_large_campaigns_are_capped_and_the_figure_repeats(settings):
    pretrained, finetuned = texts(700, house_style_answer, seed=2)
    first = style_identifiability(pretrained, finetuned)
    assert first["n_prompts"] == 700 and first["n_prompts_used"] == 300 and first["n_prompts_scored"] == 150
    assert style_identifiability(pretrained, finetuned) == first


@pytest.mark.django_db
def test_the_report_carries_the_figure_and_the_warning_in_json_and_text(client, researcher):
    pretrained, finetuned = texts(40, house_style_answer, seed=4)
    dataset = Dataset.objects.create(name="styled")
    job = GenerationJob.objects.create(name="styled", dataset=dataset, total=80, status="succeeded")
    for i, (pt, ft) in enumerate(zip(pretrained, finetuned, strict=True)):
        prompt = Prompt.objects.create(dataset=dataset, external_id=f"s{i}", task="sentiment", text="q")
        Answer.objects.create(job=job, prompt=prompt, role="pretrained", text=pt)
        Answer.objects.create(job=job, prompt=prompt, role="finetuned", text=ft)
    campaign = campaign_create(job=job, name="styled")
    report = campaign_report(campaign)
    block = report["style_identifiability"]
    assert block["level"] == "high" and block["n_prompts"] == 40 and block["auc"] >= HIGH_AUC
    text = report_as_text(report)
    assert WARNING in text and f"AUC {block['auc']:.2f}" in text
    client.force_login(researcher)
    page = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    assert html.escape(WARNING) in page and 'id="style-identifiability"' in page
