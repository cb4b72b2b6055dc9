"""The report reads as words, not as the JSON (issue 16): a table of contents, human labels with the
field names only in the JSON, one spelling of the roles, units and plurals, and a Downloads section."""

from __future__ import annotations

import html
import io
import re

import pytest
from django.core.management import call_command

from reports.labels import bytes_label, humanize, plural
from tests.support.report_data import RATINGS, build_hand_campaign

pytestmark = pytest.mark.django_db

# key names a researcher saw in the method notes before (issue 16: "`ci95 =`, `wilcoxon_p`")
RAW_KEYS = (
    "ci95 =",
    "ci95",
    "wilcoxon_p",
    "permutation_p",
    "mcnemar_p",
    "difference_ci95",
    "task_mix_gap",
    "latency.ROLE",
    "latency.serving",
    "win_rate.by_prompt",
    "finetuned_share_of_discordant",
    "p50_ms",
    "agreement_with_others",
    "score_spread",
)


@pytest.fixture
def hand():
    return build_hand_campaign()


def _page(client, user, campaign) -> str:
    client.force_login(user)
    response = client.get(f"/campaigns/{campaign.pk}/report/")
    assert response.status_code == 200
    return response.content.decode()


def _visible_text(page: str) -> str:
    """What a reader sees: the page's text without its tags, the embedded JSON report left out."""
    before_json = page.split('id="report-json"')[0]
    return html.unescape(re.sub(r"<[^>]+>", " ", before_json))


def test_the_table_of_contents_links_to_every_section(client, researcher, hand):
    page = _page(client, researcher, hand.campaign)
    toc = page.split('id="contents"')[1].split("</nav>")[0]
    targets = re.findall(r'href="#([\w-]+)"', toc)
    assert len(targets) >= 15
    for target in targets:
        assert f'id="{target}"' in page, target
    sections = set(re.findall(r'<(?:section|details) class="card[^"]*" id="([\w-]+)"', page))
    assert sections <= set(targets), sections - set(targets)
    # the contents come before the first section
    assert page.index('id="contents"') < page.index('id="claims"')


def test_no_json_field_names_outside_the_json(client, researcher, hand):
    page = _page(client, researcher, hand.campaign)
    text = _visible_text(page)
    for key in RAW_KEYS:
        assert key not in text, key
    assert re.search(r"\b(pretrained|finetuned)\b", text) is None
    # the JSON itself keeps its keys
    assert "wilcoxon_p" in page.split('id="report-json"')[1]
    assert "Wilcoxon p" in text and "95% CI" in text


def test_one_spelling_of_the_roles_and_units(client, researcher, hand):
    text = _visible_text(_page(client, researcher, hand.campaign))
    assert "pre-trained" in text and "fine-tuned" in text and "pretrained" not in text
    assert "2.79 GiB" in text and "3000000000" not in text and "3,000,000,000" not in text
    assert "4,505,600 of 1,104,553,984" in text  # thousands separators
    assert f"{len(RATINGS)} ratings by 3 annotators" in re.sub(r"\s+", " ", text)


def test_one_annotator_is_singular(client, researcher):
    rows = [r for r in RATINGS if r[1] == 0]
    hc = build_hand_campaign(ratings=rows, n_annotators=1, name="solo")
    text = re.sub(r"\s+", " ", _visible_text(_page(client, researcher, hc.campaign)))
    assert f"{len(rows)} ratings by 1 annotator (" in text and "1 annotators" not in text
    out = io.StringIO()
    call_command("report", "--campaign", str(hc.campaign.pk), "--format", "text", stdout=out)
    assert "1 annotator," in out.getvalue() and "1 annotators" not in out.getvalue()


def test_the_text_report_names_roles_and_units_the_same_way(hand):
    out = io.StringIO()
    call_command("report", "--campaign", str(hand.campaign.pk), "--format", "text", stdout=out)
    text = out.getvalue()
    assert "peak memory 2.79 GiB" in text and "3000000000" not in text
    assert "trainable 4,505,600 of 1,104,553,984 parameters" in text
    assert re.search(r"\b(pretrained|finetuned)\b", text) is None
    assert "wilcoxon_p" not in text and "latency.ROLE" not in text


def test_the_downloads_section_links_every_export_with_and_without_texts(client, researcher, hand):
    page = _page(client, researcher, hand.campaign)
    section = page.split('id="downloads"')[1].split("</section>")[0]
    pk = hand.campaign.pk
    for path in (
        f"/api/campaigns/{pk}/report.json",
        f"/api/campaigns/{pk}/export.csv",
        f"/api/campaigns/{pk}/export.jsonl",
        f"/api/campaigns/{pk}/export.parquet",
        f"/api/campaigns/{pk}/export.csv?texts=1",
        f"/api/campaigns/{pk}/export.jsonl?texts=1",
        f"/api/campaigns/{pk}/export.parquet?texts=1",
    ):
        assert f'href="{path}"' in section, path
        assert client.get(path).status_code == 200, path


def test_every_multi_column_table_labels_its_cells_for_phones(client, researcher, hand):
    page = _page(client, researcher, hand.campaign)
    for table in re.findall(r"<table [^>]*>.*?</table>", page, re.DOTALL):
        if "<thead>" not in table:
            continue
        assert 'class="report-table stack' in table, table[:200]
        body = table.split("</thead>")[1]
        cells = re.findall(r"<td\b([^>]*)>(.*?)</td>", body, re.DOTALL)
        unlabelled = [c for c in cells if "data-label" not in c[0] and c[1].strip()]
        # a reason cell beside a figure may go unlabelled; a figure may not
        assert all('class="reason"' in attrs for attrs, _ in unlabelled), unlabelled[:3]


@pytest.mark.parametrize(
    "note, words",
    [
        ("accuracy = share, ci95 = Wilson interval", "accuracy = share, 95% CI: Wilson interval"),
        ("permutation_p = two-sided; bench/coverage.py", "permutation p: two-sided; bench/coverage.py"),
        ("latency.ROLE (p50_ms, p95_ms)", "each role's batch-share latency (p50, p95)"),
        ("favours pretrained over finetuned", "favours pre-trained over fine-tuned"),
        ("scipy.stats.spearmanr, e.g. a new_key", "scipy.stats.spearmanr, e.g. a new key"),
    ],
)
def test_humanize_turns_keys_into_words_and_leaves_names_alone(note, words):
    assert humanize(note) == words


def test_units_and_plurals():
    assert bytes_label(3_000_000_000) == "2.79 GiB" and bytes_label(5 * 1024**2) == "5.00 MiB"
    assert bytes_label(512) == "512 bytes" and bytes_label(None) == "—"
    assert plural(1, "annotator") == "1 annotator" and plural(1200, "rating") == "1,200 ratings"
    assert plural(0, "comment") == "0 comments"
