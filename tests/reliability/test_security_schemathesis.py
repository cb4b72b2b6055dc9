"""schemathesis against the app's own OpenAPI schema (`/api/schema/`): no server errors, no auth bypass.

Every operation in the schema is fuzzed (valid and invalid inputs, a bounded number of examples each) as
three callers: anonymous, an annotator with a token, a researcher with a token. Each response must

- not be a 5xx (schemathesis' `not_a_server_error` check);
- not be a 2xx where the caller has no business: anonymous callers get a 2xx only from the public
  schema; annotators never from report / export / jobs / finetune-runs; researchers never from
  POST /api/jobs/ or POST /api/finetune-runs/ (queueing is for admins).

Runs against pytest-django's live_server so every request goes through the real WSGI stack.
"""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.annotation_data import make_campaign
from tests.support.figures import figure

schemathesis = pytest.importorskip("schemathesis")
from schemathesis import GenerationMode  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

MAX_EXAMPLES = 15
PUBLIC = {("GET", "/api/schema/")}
# paths an annotator must never get a 2xx from, whatever the method
RESEARCH_ONLY = re.compile(
    r"^/api/(campaigns/[^/]+/(report/|report\.json|export\.(csv|jsonl|parquet))|jobs/|finetune-runs/|datasets/)"
)
ADMIN_ONLY = {("POST", "/api/jobs/"), ("POST", "/api/finetune-runs/")}


def _forbidden_success(role: str, method: str, path: str) -> bool:
    """True when a 2xx for this caller on this (templated) operation would be an auth bypass."""
    if role == "anonymous":
        return (method, path) not in PUBLIC
    if role == "annotator":
        return bool(RESEARCH_ONLY.match(path))
    if role == "researcher":
        return (method, path) in ADMIN_ONLY
    raise AssertionError(role)


@pytest.mark.reliability
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_schemathesis_finds_no_server_error_and_no_auth_bypass(live_server, annotator, researcher):
    from rest_framework.authtoken.models import Token

    make_campaign(prompts=4, overlap=1)  # real ids exist, so some generated ids hit rows
    tokens = {
        "anonymous": None,
        "annotator": Token.objects.create(user=annotator).key,
        "researcher": Token.objects.create(user=researcher).key,
    }
    started = time.monotonic()
    schema = schemathesis.openapi.from_url(f"{live_server.url}/api/schema/")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the schema lists no operations"

    session = requests.Session()
    calls: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    server_errors: list[str] = []
    bypasses: list[str] = []

    def fuzz(operation, role, headers):
        method, path = operation.method.upper(), operation.path
        strategy = st.one_of(
            operation.as_strategy(GenerationMode.POSITIVE),
            operation.as_strategy(GenerationMode.NEGATIVE),
        )

        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def run(case):
            # the generated case may carry its own Authorization header; the caller's role wins
            case_headers = dict(case.headers or {})
            case_headers.pop("Authorization", None)
            case_headers.pop("authorization", None)
            case.headers = {**case_headers, **headers}
            response = case.call(base_url=live_server.url, session=session, timeout=30)
            calls[role] += 1
            statuses[response.status_code] += 1
            where = f"{role} {method} {case.formatted_path} -> {response.status_code}"
            try:
                case.validate_response(response, checks=[not_a_server_error])
            except Exception as exc:  # noqa: BLE001 - collect, report all at the end
                server_errors.append(f"{where}: {str(exc).splitlines()[0] if str(exc) else exc!r}")
            if 200 <= response.status_code < 300 and _forbidden_success(role, method, path):
                bypasses.append(where)

        run()

    for role, token in tokens.items():
        headers = {"Authorization": f"Token {token}"} if token else {}
        for operation in operations:
            fuzz(operation, role, headers)

    seconds = time.monotonic() - started
    figure(
        "schemathesis",
        operations=len(operations),
        roles=len(tokens),
        requests=sum(calls.values()),
        server_errors=len(server_errors),
        auth_bypasses=len(bypasses),
        seconds=f"{seconds:.1f}",
    )
    assert server_errors == [], "\n".join(sorted(set(server_errors))[:20])
    assert bypasses == [], "\n".join(sorted(set(bypasses))[:20])
    # the fuzzing really exercised the API: refusals for anonymous callers, answers for tokens
    assert statuses[401] + statuses[403] > 0
    assert any(200 <= code < 300 for code in statuses)
