"""Hostile text through the real import path: stored verbatim, inert in a real browser, neutralised in CSV.

Each payload becomes one prompt (text, context and both answers; external_id too where the import
allows it) of a JSONL file read by `generation.importing.import_answers`; a campaign is opened on the
job with hostile guidelines and a hostile name. Then, in Debian's Chromium:

- the annotator rates every pair: each page shows the payload as text (textContent equals it, after
  the HTML parser's own CR/LF normalisation), no dialog fires, no element comes from a payload;
- the researcher opens the report page, the admin the job page: same checks.

The CSV export prefixes formula cells (= + - @ tab CR) with a quote; the JSONL export keeps them as is.

NUL: PostgreSQL text cannot hold U+0000, so the import refuses a NUL anywhere with a one-line
DataImportError naming file, line and field (on every backend), and stores nothing.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from django.test import Client

from annotations.campaigns import campaign_create
from annotations.models import Rating
from generation.importing import DataImportError, import_answers
from generation.models import Answer, Dataset, Prompt
from reports.exports import FORMULA_PREFIXES
from tests.support.figures import figure

PAYLOADS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(2)>",
    "[click](javascript:alert(3))",
    '=HYPERLINK("http://x")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1)",
    "\tTAB",
    "\rCR",
    "word " * 39_999 + "last.",  # 200,000 characters
    "\u202eevil\u202c right-to-left override",
    "emoji \U0001f600\U0001f4a5 family \U0001f468\u200d\U0001f469\u200d\U0001f467",
    "combining e\u0301 a\u0300\u0300\u0300 Z\u0335\u0321\u034e",
]
GUIDELINES = "# Rules\n\n[click](javascript:alert(3)) <img src=x onerror=alert(4)> <script>alert(5)</script>"
CAMPAIGN_NAME = "<script>alert(6)</script> campaign"
JOB_NAME = "<img src=x onerror=alert(7)> job"
PASSWORD = "correct-horse-battery"
# what the DOM holds after the HTML parser: CR and CRLF become LF (HTML "normalize newlines")
def _dom(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _external_id(index: int, payload: str) -> str:
    """The payload itself where the import keeps it verbatim (200 chars, stripped), else a plain id."""
    return payload if len(payload) <= 200 and payload == payload.strip() else f"plain-{index}"


def _write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


INJECTED_JS = """() => ({
  imgs: document.querySelectorAll('img[src="x"], img[onerror]').length,
  scripts: [...document.scripts].filter(s => (s.textContent || '').includes('alert(')).length,
  js_links: document.querySelectorAll('a[href^="javascript:" i]').length,
  handlers: [...document.querySelectorAll('*')].filter(
      e => [...e.attributes].some(a => a.name.startsWith('on') && a.value.includes('alert'))).length,
})"""


def _injected(page) -> int:
    found = page.evaluate(INJECTED_JS)
    return sum(found.values())


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.press("#id_password", "Enter")
    assert "/login/" not in page.url, page.inner_text("main")


@pytest.mark.reliability
@pytest.mark.slow
@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_hostile_text_is_stored_verbatim_rendered_inert_and_neutralised_in_csv(
    live_server, browser_page, tmp_path, annotator, researcher, admin_user  # noqa: F811
):
    page = browser_page
    rows = [
        {
            "external_id": _external_id(i, p),
            "task": "relevance",
            "text": p,
            "context": p,
            "pretrained": p,
            "finetuned": p,
        }
        for i, p in enumerate(PAYLOADS)
    ]

    # NUL: refused with a one-line message, nothing stored
    nul_file = _write_jsonl(tmp_path / "nul.jsonl", rows[:1] + [{**rows[1], "context": "a\u0000b"}])
    with pytest.raises(DataImportError, match=r'^nul\.jsonl line 2: field "context": contains a NUL'):
        import_answers(nul_file, job_name="nul-job")
    assert not Dataset.objects.filter(name="nul-job").exists() and Prompt.objects.count() == 0

    job = import_answers(_write_jsonl(tmp_path / "hostile.jsonl", rows), job_name=JOB_NAME)
    stored = 0
    for row in rows:
        prompt = Prompt.objects.get(dataset=job.dataset, external_id=row["external_id"])
        answers = {a.role: a.text for a in Answer.objects.filter(job=job, prompt=prompt)}
        assert (prompt.text, prompt.context) == (row["text"], row["context"])
        assert answers == {"pretrained": row["pretrained"], "finetuned": row["finetuned"]}
        stored += 1
    campaign = campaign_create(job=job, name=CAMPAIGN_NAME, overlap=1, guidelines=GUIDELINES)
    assert campaign.name == CAMPAIGN_NAME and job.name == JOB_NAME

    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    injected = 0
    base = live_server.url

    # annotator: rate every pair, checking each page
    _login(page, base, annotator.username)
    expected = {_dom(p) for p in PAYLOADS}
    seen: set[str] = set()
    page.goto(f"{base}/annotate/campaigns/{campaign.pk}/")
    for index, _ in enumerate(PAYLOADS):
        prompt_text = page.eval_on_selector(".prompt-text", "e => e.textContent")
        assert prompt_text in expected, prompt_text[:80]
        assert page.eval_on_selector(".context-text", "e => e.textContent") == prompt_text
        answers = page.eval_on_selector_all(".answer-text", "els => els.map(e => e.textContent)")
        assert answers == [prompt_text, prompt_text]
        assert page.query_selector("img[src=x]") is None
        assert page.locator("#guidelines").count() == 1
        assert "[click](javascript:alert(3))" in page.eval_on_selector(".guidelines-body", "e => e.textContent")
        injected += _injected(page)
        seen.add(prompt_text)
        for key in ("4", "w", "a", "k", "z"):  # scores 4 and 2, correct, incorrect, left better
            page.keyboard.press(key)
        page.wait_for_timeout(150)
        with page.expect_navigation(wait_until="domcontentloaded"):
            page.keyboard.press("Enter")
        assert "Rating saved." in page.inner_text("body"), (index, page.inner_text("body")[:500])
    assert seen == expected
    assert Rating.objects.filter(assignment__pair__campaign=campaign).count() == len(PAYLOADS)
    page.context.clear_cookies()

    # researcher: campaign list and report page
    _login(page, base, researcher.username)
    for url in (f"{base}/campaigns/", f"{base}/campaigns/{campaign.pk}/report/"):
        response = page.goto(url)
        assert response is not None and response.status == 200, url
        assert CAMPAIGN_NAME in page.inner_text("main")
        injected += _injected(page)
    page.context.clear_cookies()

    # admin: the job page lists the first answers (truncated to 200 characters) and their external ids
    _login(page, base, admin_user.username)
    response = page.goto(f"{base}/jobs/{job.pk}/")
    assert response is not None and response.status == 200
    main = page.inner_text("main")
    assert JOB_NAME in page.inner_text("body")
    assert "<script>alert(1)</script>" in main and "<img src=x onerror=alert(2)>" in main
    assert page.query_selector("img[src=x]") is None
    injected += _injected(page)
    assert dialogs == []
    assert injected == 0

    # exports, as the researcher would download them. The import strips external_id, so a leading tab
    # or CR can only come from an edit (admin, ORM): give two prompts such ids to cover those prefixes.
    for payload in ("\tTAB", "\rCR"):
        Prompt.objects.filter(dataset=job.dataset, text=payload).update(external_id=payload)
    ids = set(Prompt.objects.filter(dataset=job.dataset).values_list("external_id", flat=True))
    client = Client()
    client.force_login(researcher)
    csv_response = client.get(f"/api/campaigns/{campaign.pk}/export.csv")
    assert csv_response.status_code == 200
    csv_text = b"".join(csv_response.streaming_content).decode("utf-8")
    csv_rows = list(csv.DictReader(io.StringIO(csv_text, newline="")))
    assert len(csv_rows) == 2 * len(PAYLOADS)
    neutralised = set()
    for row in csv_rows:
        cell = row["prompt_external_id"]
        if cell.startswith("'") and cell[1:] in ids and cell[1:].startswith(FORMULA_PREFIXES):
            neutralised.add(cell[1:])
        else:
            assert cell in ids and not cell.startswith(FORMULA_PREFIXES), repr(cell)
        for column, value in row.items():
            assert not value.startswith(FORMULA_PREFIXES), (column, value)
    formula_ids = {i for i in ids if i.startswith(FORMULA_PREFIXES)}
    assert neutralised == formula_ids and len(formula_ids) == 6  # = + - @ tab CR

    jsonl_response = client.get(f"/api/campaigns/{campaign.pk}/export.jsonl")
    assert jsonl_response.status_code == 200
    jsonl_rows = [
        json.loads(line)
        for line in b"".join(jsonl_response.streaming_content).decode("utf-8").splitlines()
        if line
    ]
    assert {row["prompt_external_id"] for row in jsonl_rows} == ids

    figure(
        "hostile-text",
        payloads=len(PAYLOADS),
        stored_verbatim=stored,
        nul="refused",
        pages=len(PAYLOADS) + 3,
        dialogs=len(dialogs),
        injected_elements=injected,
        csv_neutralised=len(neutralised),
        jsonl_verbatim=len(ids),
    )
