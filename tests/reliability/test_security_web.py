"""Web security settings and doors: `check --deploy` with production settings, CSRF on session-auth
writes, log-in rate limit, crafted query parameters, no secret committed."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.cache import cache
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token

from annotations.models import Rating
from annotations.assignment import assignment_next
from annotations.rating import rating_submit
from generation.models import FinetuneRun
from tests.support.annotation_data import VALID_RATING, make_campaign
from tests.support.figures import figure

pytestmark = pytest.mark.reliability
ROOT = Path(__file__).resolve().parents[2]

# what the README tells an operator to set in production (besides DATABASE_URL and CELERY_BROKER_URL)
PRODUCTION_ENV = {
    "DEBUG": "0",
    "ALLOWED_HOSTS": "evalsite.example.org",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "1",
    "SECURE_HSTS_PRELOAD": "1",
}


def _process_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "DJANGO_SETTINGS", "SECURE_"))}
    for name in ("DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_SECURE"):
        env.pop(name, None)
    env.update(EVALSITE_VAR_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="evalsite.settings", **extra)
    return env


def test_check_deploy_reports_nothing_with_production_settings(tmp_path):
    env = _process_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50), **PRODUCTION_ENV)
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "DEBUG"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    issues = re.findall(r"\((\w+\.\w\d+)\)", output)
    figure("check-deploy", issues=len(issues), exit=result.returncode)
    assert result.returncode == 0 and not issues, output
    assert "no issues" in output, output


def test_production_settings_default_to_https_and_refuse_a_missing_secret_key(tmp_path):
    code = (
        "from django.conf import settings as s; import json; print(json.dumps([s.SECURE_SSL_REDIRECT,"
        " s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.DEBUG]))"
    )
    prod = _process_env(tmp_path, SECRET_KEY=secrets.token_urlsafe(50), DEBUG="0")
    demo = _process_env(tmp_path, DEBUG="1")
    run = [sys.executable, "-c", "import django; django.setup(); " + code]
    out = subprocess.run(run, cwd=ROOT, env=prod, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, True, True, False]
    out = subprocess.run(run, cwd=ROOT, env=demo, capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [False, False, False, True]  # make demo: http
    missing = _process_env(tmp_path, DEBUG="0")
    out = subprocess.run(run, cwd=ROOT, env=missing, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0 and "SECRET_KEY must be set" in out.stderr


@pytest.mark.django_db
def test_csrf_is_enforced_for_session_auth_on_the_rating_api(annotator):
    campaign = make_campaign(prompts=2, overlap=1)
    assignment = assignment_next(campaign=campaign, annotator=annotator)
    url = f"/api/assignments/{assignment.pk}/rating/"
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)

    refused = client.post(url, json.dumps(VALID_RATING), content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.content.decode()
    assert not Rating.objects.exists()
    # a foreign Origin with a valid token is refused as well
    client.get("/login/")  # any page with a form sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    foreign = client.post(
        url, json.dumps(VALID_RATING), content_type="application/json",
        headers={"X-CSRFToken": token, "Origin": "https://evil.example"},
    )
    assert foreign.status_code == 403 and not Rating.objects.exists()

    ok = client.post(url, json.dumps(VALID_RATING), content_type="application/json", headers={"X-CSRFToken": token})
    assert ok.status_code == 201, ok.content
    # token auth carries no ambient credential, so it needs no CSRF token
    api_token = Token.objects.create(user=annotator)
    plain = Client(enforce_csrf_checks=True)
    again = plain.post(
        url, json.dumps({**VALID_RATING, "score_left": 5}), content_type="application/json",
        headers={"Authorization": f"Token {api_token.key}"},
    )
    assert again.status_code == 200 and Rating.objects.get().score_left == 5
    figure("csrf-session-auth", without_token=refused.status_code, foreign_origin=foreign.status_code,
           with_token=ok.status_code, ratings=Rating.objects.count())


@pytest.fixture
def clean_login_counts():
    cache.clear()
    yield
    cache.clear()


@pytest.mark.django_db
def test_failed_logins_are_rate_limited_per_username_and_per_address(
    annotator, other_annotator, settings, clean_login_counts
):
    # unknown usernames still cost one hash of the default hasher: a fast one keeps this test short
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    ]
    settings.LOGIN_RATE_LIMIT_ATTEMPTS = 5
    settings.LOGIN_RATE_LIMIT_WINDOW_SECONDS = 60
    client = Client()
    codes = [client.post("/login/", {"username": "alice", "password": f"wrong-{i}"}).status_code for i in range(5)]
    assert codes == [200] * 5
    blocked = client.post("/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert blocked.status_code == 429
    assert "Too many failed log-in attempts" in blocked.content.decode()
    assert "_auth_user_id" not in client.session  # the right password is not even checked
    # the username is the key (case does not matter); another user from the same address still logs in
    assert client.post("/login/", {"username": "ALICE", "password": "x"}).status_code == 429
    assert Client().post("/login/", {"username": "bob", "password": "correct-horse-battery"}).status_code == 302
    # per address: four times the limit, over many usernames (5 failures for alice counted already)
    spray = Client()
    spray_codes = [spray.post("/login/", {"username": f"user{i}", "password": "x"}).status_code for i in range(16)]
    assert spray_codes == [200] * 15 + [429], spray_codes
    figure("login-rate-limit", attempts_allowed=5, refused_status=blocked.status_code,
           address_allowed=20, spray_refused=spray_codes.count(429))


@pytest.mark.django_db
def test_the_login_limit_ends_with_its_window(annotator, settings, clean_login_counts):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_RATE_LIMIT_ATTEMPTS = 3
    settings.LOGIN_RATE_LIMIT_WINDOW_SECONDS = 1
    client = Client()
    codes = [client.post("/login/", {"username": "ghost", "password": "x"}).status_code for _ in range(4)]
    assert codes[-1] == 429, codes
    time.sleep(1.3)
    assert client.post("/login/", {"username": "ghost", "password": "x"}).status_code == 200


@pytest.mark.django_db
def test_the_admin_login_shares_the_rate_limit(admin_user, settings, clean_login_counts):
    settings.PASSWORD_HASHERS = [
        "django.contrib.auth.hashers.MD5PasswordHasher",
        "django.contrib.auth.hashers.PBKDF2PasswordHasher",  # the fixture user's hash
    ]
    settings.LOGIN_RATE_LIMIT_ATTEMPTS = 3
    client = Client()
    codes = [client.post("/admin/login/", {"username": "adam", "password": "x"}).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429], codes
    assert client.post("/login/", {"username": "adam", "password": "correct-horse-battery"}).status_code == 429
    assert "_auth_user_id" not in client.session
    settings.LOGIN_RATE_LIMIT_ATTEMPTS = 5  # the window still holds 4 failures; one more try is allowed
    response = client.post(
        "/admin/login/?next=/admin/", {"username": "adam", "password": "correct-horse-battery", "next": "/admin/"}
    )
    assert response.status_code == 302 and response["Location"] == "/admin/"
    assert client.session["_auth_user_id"] == str(admin_user.pk)


CRAFTED = [
    ("status__regex", "zqcrafted.*"),
    ("ordering", "password"),
    ("ordering", "-created_by__password"),
    ("order_by", "zqcrafted"),
    ("username__startswith", "zqcrafted"),
    ("password__startswith", "pbkdf2"),
    ("annotator__password__startswith", "zqcrafted"),
    ("pk__in", "1,2,3"),
    ("search", "zqcrafted%' OR 1=1 --"),
    ("filter", '{"status__regex": "zqcrafted"}'),
    ("page_size", "100000"),
    ("limit", "-1"),
    ("fields", "password"),
    ("expand", "created_by"),
]


def _normalise(body: bytes) -> bytes:
    # a CSRF token in HTML changes per request, the report page shows its clock
    body = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]+"', b"", body)
    return re.sub(rb"<time datetime=[^<]+</time>", b"<time/>", body)  # "figures as of" clock


@pytest.mark.django_db
def test_crafted_filter_parameters_never_reach_the_orm(annotator, researcher, admin_user):
    campaign = make_campaign(prompts=3, overlap=2)
    for user in (annotator,):
        rating_submit(assignment=assignment_next(campaign=campaign, annotator=user), annotator=user, **VALID_RATING)
    FinetuneRun.objects.create(base_model="hub/tiny", output_dir="/tmp/run-y", status="succeeded")
    admin_user.is_staff = admin_user.is_superuser = True
    admin_user.save()
    endpoints = {
        admin_user: ["/api/jobs/", "/jobs/", "/api/finetune-runs/", "/runs/", "/campaigns/"],
        researcher: [
            f"/api/campaigns/{campaign.pk}/report/",
            f"/api/campaigns/{campaign.pk}/export.csv",
            f"/api/campaigns/{campaign.pk}/export.jsonl",
            f"/campaigns/{campaign.pk}/report/",
        ],
        annotator: ["/annotate/", f"/annotate/campaigns/{campaign.pk}/ratings/"],
    }
    checked = changed = 0
    problems = []
    for user, urls in endpoints.items():
        client = Client()
        client.force_login(user)
        for url in urls:
            base = client.get(url)
            base_body = _normalise(b"".join(base) if base.streaming else base.content)
            for name, value in CRAFTED:
                with CaptureQueriesContext(connection) as queries:
                    response = client.get(url, {name: value})
                body = _normalise(b"".join(response) if response.streaming else response.content)
                checked += 1
                sql = "\n".join(q["sql"] for q in queries.captured_queries)
                if response.status_code >= 500 or response.status_code != base.status_code:
                    problems.append(f"{url}?{name}={value}: {response.status_code} (base {base.status_code})")
                if "zqcrafted" in sql or "pbkdf2" in sql or re.search(r'ORDER BY[^\n]*"password"', sql):
                    problems.append(f"{url}?{name}={value}: reached SQL")
                if body != base_body:
                    changed += 1
                    problems.append(f"{url}?{name}={value}: response changed")
    figure("crafted-query-params", checked=checked, changed=changed, violations=len(problems))
    assert not problems, "\n".join(problems)


def test_no_secret_is_committed():
    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    patterns = [
        re.compile(rb"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
        re.compile(rb"AKIA[0-9A-Z]{16}"),
        re.compile(rb"ghp_[A-Za-z0-9]{36}"),
        re.compile(rb"hf_[A-Za-z0-9]{34}"),
        re.compile(rb"sk-[A-Za-z0-9]{40,}"),
        # a long literal key; the documented DEBUG-only and test-only keys say so in their text
        re.compile(rb"""SECRET_KEY\s*=\s*["'](?![^"']*(?:insecure|test|example))[^"'\s]{40,}["']"""),
    ]
    hits = []
    for name in files:
        path = ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        data = path.read_bytes()
        hits += [f"{name}: {p.pattern!r}" for p in patterns if p.search(data)]
    figure("no-committed-secret", files=len(files), hits=len(hits))
    assert not hits, hits


def _redis_cache(url: str) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": url,
            "KEY_PREFIX": "evalsite",
            "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
        }
    }


@pytest.mark.django_db
def test_with_cache_url_the_failed_login_counts_live_in_redis(annotator, settings, redis_url):
    import redis

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LOGIN_RATE_LIMIT_ATTEMPTS = 3
    settings.CACHES = _redis_cache(redis_url)
    codes = [Client().post("/login/", {"username": "ghost", "password": "x"}).status_code for _ in range(3)]
    assert codes == [200] * 3
    server = redis.Redis.from_url(redis_url)
    counts = sorted(int(server.get(key)) for key in server.scan_iter("evalsite:*login-fail:*"))
    assert counts == [3, 3]  # one per username, one per address: what any other web process reads
    assert Client().post("/login/", {"username": "ghost", "password": "x"}).status_code == 429


@pytest.mark.django_db
def test_an_unreachable_login_counter_refuses_log_in_instead_of_dropping_the_limit(annotator, settings):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = _redis_cache(f"redis://127.0.0.1:{port}/0")
    client = Client()
    assert client.get("/login/").status_code == 200
    response = client.post("/login/", {"username": "alice", "password": "correct-horse-battery"})
    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert "Log-in is unavailable for a moment" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_a_cache_url_that_is_not_redis_stops_the_settings(tmp_path):
    env = _process_env(tmp_path, DEBUG="1", CACHE_URL="memcached://127.0.0.1:11211")
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0
    assert "CACHE_URL must be a redis:// or rediss:// URL" in result.stderr
