#!/usr/bin/env bash
# `make reliability`: the fault-injection and security suites, then ONE line of figures per scenario.
#
#   1. pytest -m reliability        everything under tests/reliability/ (marked by folder): the
#                                   security suites and the worker faults (SIGKILL mid-chunk, duplicate
#                                   delivery, Redis restarts); tests write their own figure lines
#                                   (tests/support/figures.py)
#   2. fault tests kept beside the code they test: broker down when queueing, a model that cannot
#                                   load; one line each from pytest's JUnit report, as for every test
#                                   of run 1: scenario=<test> result=… seconds=…
#
# Runs on PostgreSQL (what production runs) unless DATABASE_URL says otherwise; needs PostgreSQL on
# 127.0.0.1:5432 and Redis on 127.0.0.1:6379 (tests start their own redis-server/gunicorn on free
# loopback ports for the faults). Exit status: non-zero when any test failed.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
export DATABASE_URL=${DATABASE_URL:-${PG_URL:-postgres://postgres@127.0.0.1:5432/test}}
export PYTHONUNBUFFERED=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export RELIABILITY_FIGURES="$work/figures.txt"
: >"$RELIABILITY_FIGURES"

"$PY" -m pytest -m reliability -q -p no:cacheprovider --junitxml="$work/new.xml" "$@"
rc_new=$?
"$PY" -m pytest -q -p no:cacheprovider --junitxml="$work/existing.xml" \
    "tests/worker/test_worker.py::test_an_unreachable_broker_fails_the_job_and_queue_generation_exits_non_zero" \
    "tests/generation/test_generation.py::test_an_unreachable_broker_fails_the_job_and_the_command_says_so" \
    "tests/generation/test_generation.py::test_the_api_answers_503_when_the_broker_is_unreachable" \
    "tests/generation/test_generation.py::test_a_base_model_that_cannot_load_fails_the_job_with_its_reason" \
    "$@"
rc_old=$?

echo
echo "== reliability figures (database: ${DATABASE_URL%%://*}) =="
"$PY" - "$work/new.xml" "$work/existing.xml" "$RELIABILITY_FIGURES" <<'PY'
import sys
import xml.etree.ElementTree as ET

new_xml, old_xml, figures = sys.argv[1:4]


def cases(path):
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    out = []
    for case in root.iter("testcase"):
        outcome = "passed"
        for tag in ("failure", "error", "skipped"):
            if case.find(tag) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
        out.append((case.get("classname", "").rsplit(".", 1)[-1], case.get("name"), outcome,
                    float(case.get("time") or 0)))
    return out


for line in open(figures, encoding="utf-8").read().splitlines():
    print(line)
for module, name, outcome, seconds in cases(new_xml) + cases(old_xml):
    print(f"scenario={module}::{name} result={outcome} seconds={seconds:.1f}")
totals = [c[2] for c in cases(new_xml) + cases(old_xml)]
print(f"scenario=total tests={len(totals)} passed={totals.count('passed')} failed="
      f"{totals.count('failed') + totals.count('error')} skipped={totals.count('skipped')}")
PY
[ "$rc_new" -eq 0 ] && [ "$rc_old" -eq 0 ]
