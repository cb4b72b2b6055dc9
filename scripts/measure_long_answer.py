"""Time the annotator's rating page in Chromium with very long answers (a measurement; asserts nothing).

    .venv/bin/python scripts/measure_long_answer.py [--repeat 3] [--chars 200000] [--cases emoji,prompt_emoji]

A throwaway var folder and SQLite database, `manage.py runserver` (DEBUG=1) on a free port, and one
campaign per case made through the real commands (import_answers, create_campaign). In the answer
cases both answers of the pair are long (or both short): short; words ("word word …"); nospace (one
letter repeated); emoji (random emoji, no spaces); bidi (random Latin, Hebrew and Arabic letters, no
spaces). In the prompt and context cases the answers are short and the prompt's text (prompt_emoji,
prompt_bidi) or its context (context_emoji, context_bidi) is long. Each long text has --chars
characters; --cases picks some cases (all by default). Playwright opens the rating page in
/usr/bin/chromium (1280×900) and measures, as the median of --repeat runs:

- load_ms: page.goto until the load event plus two animation frames (the first frame is painted);
- key_ms: pressing "4" (score the left answer) until the next painted frame;
- relayout_ms: a forced layout of the whole page after the body's width changes and back (a resize);
- scroll_end_ms: scrolling the long text to its end until the next painted frame (the left answer box;
  in the prompt and context cases that text's box, and the page until the box's end is in view);
- page_overflow_px: the document's scrollWidth minus the viewport width (> 0: sideways scrolling).

Prints one line per case and one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct-horse-battery"
FRAME_JS = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(0))))"
RELAYOUT_JS = """() => {
  const t = performance.now();
  document.body.style.width = '1000px'; void document.body.offsetHeight;
  document.body.style.width = ''; void document.body.offsetHeight;
  return performance.now() - t;
}"""
SCROLL_END_JS = """(selector) => {
  const box = document.querySelector(selector); box.scrollTop = box.scrollHeight;
  if (selector !== '.answer-text') window.scrollBy(0, box.getBoundingClientRect().bottom - innerHeight);
}"""


def _random_text(n: int, alphabet: str, seed: int) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(alphabet) for _ in range(n))


def _cases(chars: int) -> dict[str, dict[str, str]]:
    """Per case: the prompt's text and context, the two answers, and the selector of the long text."""
    words = ("word " * (chars // 5 + 1))[: chars - 5] + "last."
    emoji = "\U0001f600\U0001f4a5\U0001f680\U0001f331"
    bidi = "abc\u05d0\u05d1\u05d2\u0627\u0628\u062a"
    answers = {
        "short": ("A short answer.", "Another short answer."),
        "words": (words, words),
        "nospace": ("x" * chars, "y" * chars),
        "emoji": (_random_text(chars, emoji, 1), _random_text(chars, emoji, 2)),
        "bidi": (_random_text(chars, bidi, 3), _random_text(chars, bidi, 4)),
    }
    cases = {
        name: {"text": f"Rate these ({name}).", "context": "", "pretrained": left, "finetuned": right,
               "target": ".answer-text"}
        for name, (left, right) in answers.items()
    }
    short = {"pretrained": "A short answer.", "finetuned": "Another short answer."}
    for name, alphabet, seed in (("emoji", emoji, 5), ("bidi", bidi, 6)):
        long_text = _random_text(chars, alphabet, seed)
        cases[f"prompt_{name}"] = {**short, "text": long_text, "context": "", "target": ".prompt-text"}
        cases[f"context_{name}"] = {
            **short, "text": f"Rate these (context_{name}).", "context": long_text, "target": ".context-text"
        }
    return cases


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _manage(env: dict, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, check=True, capture_output=True, text=True
    )
    lines = out.stdout.strip().splitlines()
    return lines[-1] if lines else ""


def main() -> None:
    args, cases = _parse_args()
    env, campaigns = _make_campaigns(cases)
    server, base = _start_server(env)
    try:
        _wait_until_up(base)
        results = _measure_cases(base, cases, campaigns, args.repeat)
    finally:
        server.terminate()
        server.wait(timeout=10)
    print(json.dumps({"chars": args.chars, "repeat": args.repeat, "viewport": "1280x900", **results}))


def _parse_args() -> tuple[argparse.Namespace, dict[str, dict[str, str]]]:
    """The arguments and the cases they pick."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--chars", type=int, default=200_000)
    parser.add_argument("--cases", default="", help="comma-separated case names (default: all)")
    args = parser.parse_args()
    cases = _cases(args.chars)
    if args.cases:
        unknown = set(args.cases.split(",")) - set(cases)
        if unknown:
            parser.error(f"unknown cases: {', '.join(sorted(unknown))} (known: {', '.join(cases)})")
        cases = {name: case for name, case in cases.items() if name in args.cases.split(",")}
    return args, cases


def _make_campaigns(cases: dict[str, dict[str, str]]) -> tuple[dict, dict[str, str]]:
    """A throwaway var folder and database, the annotator, and one campaign per case made through the
    real commands; returns (the environment for manage.py, campaign id per case)."""
    tmp = Path(tempfile.mkdtemp(prefix="evalsite-measure-"))
    env = {
        **os.environ,
        "EVALSITE_VAR_DIR": str(tmp),
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
    }
    _manage(env, "migrate", "-v", "0")
    _manage(env, "create_user", "rater", "--role", "annotator", "--password", PASSWORD)
    campaigns = {}
    for name, case in cases.items():
        path = tmp / f"{name}.jsonl"
        row = {"external_id": name, "task": "relevance", **{k: v for k, v in case.items() if k != "target"}}
        path.write_text(json.dumps(row, ensure_ascii=False) + "\n", encoding="utf-8")
        job = _manage(env, "import_answers", str(path), "--job", f"job-{name}")
        campaigns[name] = _manage(env, "create_campaign", "--job", job, "--name", name, "--overlap", "1")
    return env, campaigns


def _start_server(env: dict) -> tuple[subprocess.Popen, str]:
    """`manage.py runserver` on a free port; returns (the process, its base URL)."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return server, f"http://127.0.0.1:{port}"


def _wait_until_up(base: str) -> None:
    for _ in range(200):
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            break
        except OSError:
            time.sleep(0.1)


def _measure_cases(base: str, cases: dict, campaigns: dict[str, str], repeat: int) -> dict:
    """Log in with Chromium and measure each case's rating page; prints one line per case."""
    from playwright.sync_api import sync_playwright

    results: dict = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--no-first-run"]
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(600_000)
        _log_in(page, base)
        for name, campaign in campaigns.items():
            url = f"{base}/annotate/campaigns/{campaign}/"
            runs = _time_runs(page, url, cases[name]["target"], name, repeat)
            results[name] = {key: round(statistics.median(values), 1) for key, values in runs.items()}
            results[name]["page_overflow_px"] = page.evaluate(
                "() => document.documentElement.scrollWidth - window.innerWidth"
            )
            print(name, json.dumps(results[name]), flush=True)
        browser.close()
    return results


def _log_in(page, base: str) -> None:
    page.goto(f"{base}/login/")
    page.fill("#id_username", "rater")
    page.fill("#id_password", PASSWORD)
    with page.expect_navigation():
        page.press("#id_password", "Enter")


def _time_runs(page, url: str, target: str, name: str, repeat: int) -> dict[str, list[float]]:
    """repeat timings of loading the rating page at url, scoring with the key 4, a relayout and
    scrolling the target text to its end."""
    runs: dict[str, list[float]] = {
        "load_ms": [], "key_ms": [], "relayout_ms": [], "scroll_end_ms": []
    }
    for _ in range(repeat):
        t0 = time.perf_counter()
        page.goto(url, wait_until="load")
        page.evaluate(FRAME_JS)
        runs["load_ms"].append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        page.keyboard.press("4")
        page.evaluate(FRAME_JS)
        runs["key_ms"].append((time.perf_counter() - t0) * 1000)
        if not page.locator("#score_left_4").is_checked():
            raise SystemExit(f"{name}: the key 4 did not score the left answer")
        runs["relayout_ms"].append(page.evaluate(RELAYOUT_JS))
        t0 = time.perf_counter()
        page.evaluate(SCROLL_END_JS, target)
        page.evaluate(FRAME_JS)
        runs["scroll_end_ms"].append((time.perf_counter() - t0) * 1000)
    return runs


if __name__ == "__main__":
    main()
