"""Issue 17 in Chromium: one annotator rates a campaign of four systems with the keyboard (nothing on the
page names a system), then the researcher's report shows the leaderboard and the checkpoint view."""

from __future__ import annotations

import pytest

from annotations.campaigns import campaign_create
from annotations.models import Assignment, Rating, User
from generation.models import FinetuneRun, JobSystem
from tests.support.browser import log_in, screenshot
from tests.support.systems_data import make_systems_job

SYSTEMS = ("pretrained", "finetuned", "epoch-005", "outside")
# the annotator's taste, a higher number better: the checkpoint view reads epochs 5 and 10 (finetuned)
TASTE = {"outside": 3, "finetuned": 2, "epoch-005": 1, "pretrained": 0}
PROMPTS = 12


def _system_at(assignment: Assignment, side: str) -> str:
    pair = assignment.pair
    shown_b = assignment.finetuned_side == side
    return (pair.finetuned_answer if shown_b else pair.pretrained_answer).role


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_one_annotator_rates_four_systems_and_the_report_ranks_them(live_server, browser_page):
    page = browser_page
    job = make_systems_job(prompts=PROMPTS)
    run = FinetuneRun.objects.create(
        base_model="hub/base-model", output_dir="/srv/adapters/best", status="succeeded",
        metrics={"best_epoch": 10, "epochs_run": 12, "val_loss": [2.0 - 0.05 * e for e in range(10)] + [1.6, 1.7]},
    )  # fmt: skip
    job.finetune_run = run
    job.save(update_fields=["finetune_run"])
    JobSystem.objects.filter(job=job, name="epoch-005").update(finetune_run=run, epoch=5, val_loss=1.80)
    campaign = campaign_create(job=job, name="Four systems", overlap=1)
    alice = User.objects.create_user(username="alice", password="correct-horse-battery", role="annotator")
    User.objects.create_user(username="rita", password="correct-horse-battery", role="researcher")

    log_in(page, live_server.url, "alice", "correct-horse-battery")
    page.goto(f"{live_server.url}/annotate/campaigns/{campaign.pk}/")
    if page.locator("#guidelines[open]").count():
        page.keyboard.press("g")
    for done in range(PROMPTS):
        assert page.inner_text("#progress-text") == f"{done} / {PROMPTS} rated"
        html = page.content()
        for secret in (*SYSTEMS, "/srv/adapters"):
            assert secret not in html, secret
        assignment = Assignment.objects.select_related("pair__pretrained_answer", "pair__finetuned_answer").get(
            annotator=alice, completed_at__isnull=True
        )
        left_wins = TASTE[_system_at(assignment, "left")] > TASTE[_system_at(assignment, "right")]
        # scores 1-5 left, q-t right; verdicts a/s left, j/k right (correct/incorrect); z left, x right
        keys = ("4", "w", "a", "k", "z") if left_wins else ("2", "r", "s", "j", "x")
        for key in keys:
            page.keyboard.press(key)
        with page.expect_navigation():
            page.keyboard.press("Enter")
    assert Rating.objects.filter(assignment__annotator=alice).count() == PROMPTS
    screenshot(page, "systems-annotator-done")

    page.context.clear_cookies()
    log_in(page, live_server.url, "rita", "correct-horse-battery")
    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/report/")
    main = page.inner_text("main")
    for name in ("outside", "epoch-005"):
        assert name in main
    page.locator("#leaderboard").scroll_into_view_if_needed()
    rows = page.locator("#leaderboard table").first.locator("tbody tr").all_inner_texts()
    names = [row.split("\t")[0] for row in rows]
    # every system ranked, with an interval; with 12 prompts (3 per task, 6 system pairs) no statement
    assert sorted(names) == sorted(["pre-trained", "fine-tuned", "epoch-005", "outside"]), rows
    assert all(" to " in row for row in rows), rows
    assert "No leaderboard statement" in page.inner_text("#leaderboard")
    assert "validation loss" in main.lower()
    checkpoints = page.locator("#checkpoint-table tbody tr").all_inner_texts()
    assert len(checkpoints) == 2 and "epoch-005" in checkpoints[0] and "finetuned" not in checkpoints[1].lower()
    assert page.locator("#checkpoints ~ svg, #checkpoints ~ figure svg").count() >= 1
    screenshot(page, "systems-report")
    page.locator("#checkpoint-table").scroll_into_view_if_needed()
    page.screenshot(path="test-artifacts/systems-checkpoints.png")
