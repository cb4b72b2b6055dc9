"""A researcher reads the report, the campaigns overview and a disagreeing pair, and downloads every
export, in Debian's Chromium at 1366x768 and on a phone (390x844, touch) (issue 16).

The data is made through the real rating flow: two annotators rate the same pairs and split on one,
and one of them leaves a comment the researcher must find on the page and in every download.
"""

from __future__ import annotations

import csv
import io
import json

import pandas as pd
import pytest
from playwright.sync_api import expect

from annotations.assignment import assignment_next
from annotations.models import User
from annotations.rating import rating_submit
from tests.support.annotation_data import make_campaign
from tests.support.browser import DESKTOP, horizontal_overflow, in_viewport, log_in, screenshot
from tests.support.report_data import build_hand_campaign

PASSWORD = "correct-horse-battery"
COMMENT = "The second answer misses the battery question entirely."
# cards whose content is wider than the card (a scrollbar inside the page): none may be
WIDE_CARDS = """() => Array.from(document.querySelectorAll('main .card'))
  .filter(c => c.scrollWidth > c.clientWidth + 1).map(c => c.id || c.className)"""


def _rate_all(campaign, user, scores, comment: str = "") -> None:
    """Rate every pair `user` is served; `scores(prompt external id)` gives (pre-trained, fine-tuned)
    scores, stored on the sides this assignment drew, so the figures do not depend on the draw."""
    while (assignment := assignment_next(campaign=campaign, annotator=user)) is not None:
        pt, ft = scores(assignment.pair.prompt.external_id)
        ft_left = assignment.finetuned_side == "left"
        left, right = (ft, pt) if ft_left else (pt, ft)
        rating_submit(
            assignment=assignment,
            annotator=user,
            score_left=left,
            score_right=right,
            correct_left=left >= 3,
            correct_right=right >= 3,
            preference="left" if left > right else "right",
            comment=comment,
            duration_ms=4_000,
        )
        comment = ""  # one comment, on the first pair


def _campaign_with_a_split():
    """Four pairs rated by two annotators: they agree on p0 and p1 (fine-tuned better) and split on
    p2 and p3 (scores 1 against 5, verdicts and preferences opposite)."""
    campaign = make_campaign(prompts=4, overlap=2)
    ann = User.objects.create_user(username="ann", password=PASSWORD, role="annotator")
    ben = User.objects.create_user(username="ben", password=PASSWORD, role="annotator")
    _rate_all(campaign, ann, lambda external_id: (1, 5), comment=COMMENT)
    _rate_all(campaign, ben, lambda external_id: (1, 5) if external_id in ("p0", "p1") else (5, 1))
    User.objects.create_user(username="rita", password=PASSWORD, role="researcher")
    return campaign, ann


def _no_overflow(page, what: str) -> None:
    assert horizontal_overflow(page) == 0, what
    assert page.evaluate(WIDE_CARDS) == [], what


def _fuller_report_fits(page, base_url: str, what: str) -> None:
    """The hand-made campaign's report has every block filled (training, gold column, three raters,
    per-task accuracy with discordance): it must fit too."""
    hand = build_hand_campaign(name="full")
    page.goto(f"{base_url}/campaigns/{hand.campaign.pk}/report/")
    expect(page.locator("#training")).to_contain_text("GiB")
    _no_overflow(page, what)


def _download(page, selector: str) -> bytes:
    with page.expect_download() as info:
        page.click(selector)
    download = info.value
    assert download.failure() is None, selector
    with open(download.path(), "rb") as handle:
        return handle.read()


@pytest.mark.django_db(transaction=True)
def test_researcher_reads_the_report_at_1366_and_downloads_every_export(live_server, browser_page, tmp_path):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    campaign, ann = _campaign_with_a_split()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    log_in(page, live_server.url, "rita", PASSWORD)

    # the overview: the campaign with its headline, sortable, no scrolling sideways
    page.goto(f"{live_server.url}/campaigns/")
    row = page.locator("#campaign-table tbody tr").first
    expect(row).to_contain_text("Spring review campaign")
    expect(row).to_contain_text("4 / 4 prompts rated")
    _no_overflow(page, "overview at 1366")
    screenshot(page, "report-overview")
    page.click("#campaign-table th a:has-text('Score difference')")
    expect(page.locator("#campaign-table th[aria-sort='descending']")).to_contain_text("Score difference")

    page.click(f"#campaign-table a[href='/campaigns/{campaign.pk}/report/']")
    expect(page.locator("h1")).to_contain_text("Spring review campaign")
    assert in_viewport(page, "#contents"), "the table of contents is on the first screen"
    _no_overflow(page, "report at 1366")
    screenshot(page, "report-desktop")

    # the table of contents takes the reader to the comments, where the annotator's comment is
    page.click("#contents a[href='#comments']")
    expect(page.locator("#comments")).to_be_in_viewport()
    expect(page.locator("#comment-table")).to_contain_text(COMMENT)
    expect(page.locator("#comment-table")).to_contain_text(ann.pseudonym)
    assert "ann" not in page.inner_text("#comment-table").split()

    # every download, as a file, with the comment in it
    downloads = {
        name: _download(page, f"#download-{name}")
        for name in ("report-json", "csv", "jsonl", "parquet", "csv-texts", "jsonl-texts", "parquet-texts")
    }
    report = json.loads(downloads["report-json"])
    assert report["comments"][0]["comment"] == COMMENT and report["disagreements"]
    for name in ("csv", "csv-texts"):
        rows = list(csv.DictReader(io.StringIO(downloads[name].decode("utf-8"))))
        assert len(rows) == 16 and COMMENT in {r["comment"] for r in rows}, name
        assert ("answer_text" in rows[0]) is name.endswith("texts"), name
    for name in ("jsonl", "jsonl-texts"):
        rows = [json.loads(line) for line in downloads[name].decode("utf-8").splitlines() if line]
        assert len(rows) == 16 and COMMENT in {r["comment"] for r in rows}, name
    for name in ("parquet", "parquet-texts"):
        path = tmp_path / f"{name}.parquet"
        path.write_bytes(downloads[name])
        frame = pd.read_parquet(path)
        assert len(frame) == 16 and COMMENT in set(frame["comment"]), name
        assert ("prompt_text" in frame.columns) is name.endswith("texts"), name

    # the disagreement queue opens the pair, unblinded, with every rating
    page.click("#contents a[href='#disagreements']")
    expect(page.locator("#disagreements")).to_be_in_viewport()
    expect(page.locator("#disagreement-table tbody tr")).to_have_count(2)  # p2 and p3, not p0 or p1
    first = page.locator("#disagreement-table tbody tr").first
    expect(first).to_contain_text("split")
    assert first.locator(".muted").first.inner_text() in ("p2", "p3")
    first.locator("a").first.click()
    expect(page.locator("#answer-finetuned h2")).to_have_text("Fine-tuned answer")
    expect(page.locator("#answer-pretrained h2")).to_have_text("Pre-trained answer")
    expect(page.locator("#ratings tbody tr")).to_have_count(2)
    _no_overflow(page, "pair page at 1366")
    screenshot(page, "report-pair")
    _fuller_report_fits(page, live_server.url, "the full report at 1366")
    assert errors == []


@pytest.mark.django_db(transaction=True)
def test_researcher_reads_the_report_on_a_phone(live_server, phone_page):
    page = phone_page
    campaign, _ann = _campaign_with_a_split()
    log_in(page, live_server.url, "rita", PASSWORD)

    page.goto(f"{live_server.url}/campaigns/")
    expect(page.locator("#campaign-table")).to_contain_text("Spring review campaign")
    _no_overflow(page, "overview on a phone")
    # the column headers are hidden on a phone: the sort menu sorts instead
    page.select_option("#id_sort", "-difference")
    with page.expect_navigation():
        page.tap("#campaign-filters button[type=submit]")
    assert "sort=-difference" in page.url
    expect(page.locator("#id_sort")).to_have_value("-difference")
    expect(page.locator("#campaign-table td[data-label='Score difference']").first).to_contain_text("+")
    screenshot(page, "report-overview-phone")

    page.goto(f"{live_server.url}/campaigns/{campaign.pk}/report/")
    expect(page.locator("#contents")).to_be_visible()
    _no_overflow(page, "report on a phone")
    screenshot(page, "report-phone")
    page.tap("#contents a[href='#comments']")
    expect(page.locator("#comments")).to_be_in_viewport()
    # a stacked row names its column: the comment reads as "Comment: ..."
    cell = page.locator("#comment-table td[data-label='Comment']").first
    expect(cell).to_have_text(COMMENT)
    assert page.evaluate(
        "el => getComputedStyle(el, '::before').content", cell.element_handle()
    ) == '"Comment: "'

    page.tap("#contents a[href='#disagreements']")
    link = page.locator("#disagreement-table tbody tr a").first
    expect(link).to_be_in_viewport()
    link.tap()
    expect(page.locator("#answer-finetuned h2")).to_have_text("Fine-tuned answer")
    _no_overflow(page, "pair page on a phone")
    screenshot(page, "report-pair-phone")
    _fuller_report_fits(page, live_server.url, "the full report on a phone")
