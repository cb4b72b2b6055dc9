"""The holes an attack run on production settings found (issue 15), each attack replayed and now refused.

1. a demoted admin kept admin powers        -> role-demotion
2. /api/docs/ from a CDN, open, without CSP  -> api-docs-self-hosted (and tests/browser/test_browser_api_docs)
3. look-alike usernames got fresh counts     -> username-lookalike
4. duration_ms summed until it overflowed    -> duration-overflow
5. worker paths unconfined                   -> tests/reliability/test_path_confinement.py
6. weak passwords and odd usernames          -> weak-credentials
7. API tokens never changed                  -> token-rotation
8. researchers could unmask the export       -> export-pseudonyms
9. closed campaigns' names shown to anyone   -> closed-campaign-hidden
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from io import StringIO
from itertools import permutations

import pytest
from django.core.cache import cache
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import timezone
from rest_framework.authtoken.models import Token

from annotations.assignment import assignment_next
from annotations.models import Campaign, Rating, User
from annotations.rating import MAX_TOTAL_MS, MAX_VISIT_MS, rating_submit
from evalsite import access
from evalsite.middleware import CONTENT_SECURITY_POLICY
from generation.models import FinetuneRun
from tests.support.annotation_data import VALID_RATING, make_campaign
from tests.support.figures import figure
from tests.support.routes import route_kind, url_formats

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
FAST_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username: str, role: str) -> User:
    return User.objects.create_user(username=username, password=PASSWORD, role=role)


def _client(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


# --- 1. role demotion -----------------------------------------------------------------------------


def _admin_form_sets_role(admin: Client, user: User, role: str) -> None:
    """What an admin does on /admin/: open the user, pick another role, save."""
    data = {
        "username": user.username, "role": role, "first_name": "", "last_name": "", "email": "",
        "is_active": "on", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00", "_save": "Save",
    }  # fmt: skip
    response = admin.post(f"/admin/annotations/user/{user.pk}/change/", data)
    assert response.status_code == 302, response.content.decode()[:3000]


def _route_answers(client: Client, fills: dict[str, list[str]]) -> dict[str, tuple[int, str]]:
    """GET every route the resolver knows; (status, redirect target) per URL."""
    answers = {}
    for fmt, params in url_formats():
        kind = route_kind(fmt, params) or "other"
        values = {p: fills.get(p, fills[kind])[0] for p in params}
        url = "/" + fmt % values
        response = client.get(url)
        answers[url] = (response.status_code, response.get("Location", ""))
    return answers


def test_a_role_change_in_the_admin_gives_exactly_the_new_roles_access(admin_user, annotator):
    campaign = make_campaign(prompts=2, overlap=3)
    foreign = assignment_next(campaign=campaign, annotator=annotator)  # nobody else's assignment
    run = FinetuneRun.objects.create(base_model="hub/tiny", output_dir="/tmp/run-role", status="succeeded")
    fills = {
        "campaign": [str(campaign.pk)], "job": [str(campaign.job_id)], "run": [str(run.pk)],
        "assignment": [str(foreign.pk)], "other": [str(campaign.pk)], "app_label": ["annotations"],
        "model_name": ["rating"], "url": ["x"], "path": ["x"],
    }  # fmt: skip
    controls = {role: _route_answers(_client(_user(f"control-{role}", role)), fills) for role in access.ROLES}
    admin = _client(admin_user)
    subject = _user("sam", access.ANNOTATOR)
    flips = mismatches = flags_wrong = tokens_left = 0
    problems: list[str] = []
    for before, after in permutations(access.ROLES, 2):
        _admin_form_sets_role(admin, subject, before)
        token = Token.objects.create(user=subject)
        _admin_form_sets_role(admin, subject, after)
        flips += 1
        subject.refresh_from_db()
        is_admin = after == access.ADMIN
        if (subject.role, subject.is_staff, subject.is_superuser) != (after, is_admin, is_admin):
            flags_wrong += 1
            problems.append(f"{before}->{after}: staff={subject.is_staff} superuser={subject.is_superuser}")
        if Token.objects.filter(key=token.key).exists():
            tokens_left += 1
            problems.append(f"{before}->{after}: the old API token still works")
        got = _route_answers(_client(subject), fills)
        for url, answer in got.items():
            if answer != controls[after][url]:
                mismatches += 1
                expected = controls[after][url]
                problems.append(f"{before}->{after} GET {url}: {answer} (a new {after}: {expected})")
    # a superuser flag set behind the role's back (raw UPDATE, an old row) opens nothing
    flagged = _user("flagged", access.ANNOTATOR)
    User.objects.filter(pk=flagged.pk).update(is_staff=True, is_superuser=True)
    flag_only = _client(flagged)
    flag_reached = [u for u in ("/admin/", "/admin/annotations/assignment/", "/campaigns/", "/api/jobs/")
                    if flag_only.get(u).status_code == 200]  # fmt: skip
    figure("role-demotion", flips=flips, routes=len(controls["admin"]), mismatches=mismatches,
           flags_wrong=flags_wrong, tokens_left=tokens_left, flag_only_reached=len(flag_reached))  # fmt: skip
    assert not problems, "\n".join(problems[:40])
    assert flag_reached == []


# --- 2. the API docs --------------------------------------------------------------------------------


def _fetch(client: Client, url: str) -> tuple[int, str, bytes]:
    response = client.get(url)
    # reading a streamed static file to its end closes it (the test client wraps the stream); an explicit
    # response.close() would send request_finished, which closes PostgreSQL's connection mid-test
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return response.status_code, response.get("Content-Type", ""), body


def test_the_api_docs_are_self_hosted_behind_login_under_the_sites_csp(annotator):
    anonymous = [Client().get(url) for url in ("/api/docs/", "/api/docs/?script=")]
    assert [r.status_code for r in anonymous] == [302, 302]
    assert all(r["Location"].startswith("/login/?next=/api/docs/") for r in anonymous)
    client = _client(annotator)
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200 and page["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assets = re.findall(r'<(?:script|link)\b[^>]*\b(?:src|href)="([^"]+)"', html)
    inline = re.findall(r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\son\w+=", html)
    external = [url for url in assets if "//" in url] + re.findall(r"https?://[^\s\"'<>]+", html)
    fetched = {url.replace("&amp;", "&"): _fetch(client, url.replace("&amp;", "&")) for url in assets}
    served = [url for url, (status, _type, _body) in fetched.items() if status == 200]
    script = fetched.get("/api/docs/?script=")
    assert script is not None and script[1].startswith("application/javascript")
    script_text = script[2].decode()
    assert "/api/schema/" in script_text and "://" not in script_text
    figure("api-docs-self-hosted", anonymous=anonymous[0].status_code, status=page.status_code,
           csp="site", assets=len(assets), served=len(served), external=len(external),
           inline=len(inline))  # fmt: skip
    assert len(assets) >= 4 and len(served) == len(assets), fetched
    assert external == [] and inline == []


# --- 3. look-alike usernames ------------------------------------------------------------------------


def test_a_look_alike_spelling_of_a_locked_username_is_locked_too(settings):
    settings.PASSWORD_HASHERS = FAST_HASHERS
    settings.LOGIN_RATE_LIMIT_ATTEMPTS = 5
    cache.clear()
    _user("annC", access.ANNOTATOR)
    attacker = Client()
    failures = [attacker.post("/login/", {"username": "annC", "password": f"guess-{i}"}).status_code
                for i in range(5)]  # fmt: skip
    assert failures == [200] * 5
    spellings = ["ａｎｎC", "ａｎｎＣ", "ANNC", "annc", " annC ", "ａｎｎc"]
    answers = [attacker.post("/login/", {"username": s, "password": PASSWORD}).status_code for s in spellings]
    logged_in = "_auth_user_id" in attacker.session
    # the spelling really is the same account: with no failures counted it logs in
    cache.clear()
    fresh = Client()
    assert fresh.post("/login/", {"username": "ａｎｎC", "password": PASSWORD}).status_code == 302
    assert fresh.session["_auth_user_id"] == str(User.objects.get(username="annC").pk)
    figure("username-lookalike", failures=5, spellings=len(spellings), refused=answers.count(429),
           logged_in=int(logged_in))  # fmt: skip
    assert answers == [429] * len(spellings) and not logged_in
    cache.clear()


# --- 4. duration_ms ------------------------------------------------------------------------------------


def test_duration_ms_is_capped_per_visit_and_in_total_and_never_overflows(annotator):
    campaign = make_campaign(prompts=2, overlap=1)
    assignment = assignment_next(campaign=campaign, annotator=annotator)
    client = _client(annotator)
    url = f"/api/assignments/{assignment.pk}/rating/"

    def post(duration: object) -> int:
        body = json.dumps({**VALID_RATING, "duration_ms": duration})
        return client.post(url, body, content_type="application/json").status_code

    # the attack: ~25 re-posts of a day each overflowed a 32-bit integer (500 on PostgreSQL)
    attack = [post(86_400_000) for _ in range(30)]
    reposts = [post(MAX_VISIT_MS) for _ in range(30)]
    stored = Rating.objects.get().duration_ms
    bad = [post(value) for value in (-1, 2**31, 2**63, "1e9", "ten", 1.5)]
    html = client.post(f"/annotate/assignments/{assignment.pk}/", {
        "score_left": "5", "score_right": "2", "preference": "left", "duration_ms": "86400000",
    })  # fmt: skip
    codes = attack + reposts + bad + [html.status_code]
    figure("duration-overflow", reposts=len(reposts), stored_ms=stored, cap_ms=MAX_TOTAL_MS,
           visit_cap_ms=MAX_VISIT_MS, attack_status=attack[0], bad_status=sorted(set(bad)),
           html_status=html.status_code, server_errors=sum(c >= 500 for c in codes))  # fmt: skip
    assert attack == [400] * 30
    assert reposts == [201] + [200] * 29 and stored == MAX_TOTAL_MS < 2**31 - 1
    assert bad == [400] * len(bad)
    assert html.status_code == 400 and "duration_ms" in html.context["form"].errors
    assert Rating.objects.get().duration_ms == MAX_TOTAL_MS and Rating.objects.get().score_left == 4


# --- 6. credentials -------------------------------------------------------------------------------------


def _create_user(*args: str) -> str:
    try:
        call_command("create_user", *args, stdout=StringIO(), stderr=StringIO())
    except CommandError as error:
        return str(error)
    return "accepted"


def test_weak_passwords_and_invalid_usernames_are_refused_everywhere(admin_user):
    attempts = {  # what was tried: what the one-line error must say
        ("gina", "--role", "annotator", "--password", "12345678"): "This password is too common.",
        ("gina", "--role", "annotator", "--password", "83619274"): "This password is entirely numeric.",
        ("gina", "--role", "annotator", "--password", "gina-2"): "This password is too short.",
        ("margaretta", "--role", "admin", "--password", "margaretta1"): "too similar to the username",
        ('sp ace<>"', "--role", "annotator", "--password", PASSWORD): "username: Enter a valid username. "
        "This value may contain only letters, numbers, and @/./+/-/_ characters.",
        ("ａｄａｍ", "--role", "annotator", "--password", PASSWORD): "user 'adam' already exists",
    }
    answers = {args: _create_user(*args) for args in attempts}
    admin_form = _client(admin_user).post("/admin/annotations/user/add/", {
        "username": "hank", "password1": "12345678", "password2": "12345678", "role": "annotator",
        "usable_password": "true", "_save": "Save",
    })  # fmt: skip
    accepted = sum(a == "accepted" for a in answers.values()) + (admin_form.status_code == 302)
    figure("weak-credentials", tried=len(attempts) + 1, accepted=accepted)
    for args, message in attempts.items():
        assert message in answers[args], (args, answers[args])
        assert "\n" not in answers[args]  # one line
    assert admin_form.status_code == 200 and "This password is too common" in admin_form.content.decode()
    assert not User.objects.filter(username__in=["gina", "margaretta", "hank", 'sp ace<>"']).exists()
    assert _create_user("gina", "--role", "annotator", "--password", "plum-kettle-93") == "accepted"


# --- 7. API tokens ---------------------------------------------------------------------------------------


def _api_status(key: str) -> int:
    return Client().get("/api/campaigns/999999/next/", headers={"Authorization": f"Token {key}"}).status_code


def _api_token(*args: str) -> str:
    out = StringIO()
    call_command("api_token", *args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()[-1]


def test_api_tokens_stop_working_on_password_or_role_change_rotation_and_expiry(admin_user, settings):
    settings.PASSWORD_HASHERS = FAST_HASHERS
    ann = _user("ann", access.ANNOTATOR)
    admin = _client(admin_user)
    token = _api_token("ann")
    steps = {"issued": _api_status(token)}  # 404: a valid token, an unknown campaign
    response = admin.post(f"/admin/annotations/user/{ann.pk}/password/", {
        "password1": "new-plum-kettle-71", "password2": "new-plum-kettle-71", "usable_password": "true",
    })  # fmt: skip
    assert response.status_code == 302, response.content.decode()[:2000]
    steps["after_password_change"] = _api_status(token)
    token = _api_token("ann")
    _admin_form_sets_role(admin, ann, access.RESEARCHER)
    steps["after_role_change"] = _api_status(token)
    token = _api_token("ann")
    rotated = _api_token("ann", "--rotate")
    steps["after_rotate_old"], steps["after_rotate_new"] = _api_status(token), _api_status(rotated)
    settings.API_TOKEN_LIFETIME_SECONDS = 3600
    Token.objects.filter(key=rotated).update(created=timezone.now() - timedelta(seconds=3601))
    steps["expired"] = _api_status(rotated)
    renewed = _api_token("ann")
    steps["renewed"] = _api_status(renewed)
    figure("token-rotation", **steps)
    assert steps == {
        "issued": 404, "after_password_change": 401, "after_role_change": 401, "after_rotate_old": 401,
        "after_rotate_new": 403, "expired": 401, "renewed": 403,  # 403: a researcher now, not an annotator
    }  # fmt: skip
    assert renewed != rotated


# --- 8. export pseudonyms -----------------------------------------------------------------------------


def test_only_admins_export_real_usernames(annotator, researcher, admin_user):
    campaign = make_campaign(prompts=2, overlap=1)
    rating_submit(assignment=assignment_next(campaign=campaign, annotator=annotator), annotator=annotator,
                  **VALID_RATING)  # fmt: skip
    url = f"/api/campaigns/{campaign.pk}/export.csv"

    def body(response) -> str:
        return b"".join(response).decode() if response.streaming else response.content.decode()

    unmask = _client(researcher).get(url, {"with_usernames": "1"})
    plain = _client(researcher).get(url)
    admin = _client(admin_user).get(url, {"with_usernames": "1"})
    texts = {name: body(r) for name, r in {"unmask": unmask, "plain": plain, "admin": admin}.items()}
    leaked = "alice" in texts["unmask"] + texts["plain"]
    figure("export-pseudonyms", researcher_unmask=unmask.status_code, researcher_plain=plain.status_code,
           admin_unmask=admin.status_code, names_leaked=int(leaked))  # fmt: skip
    assert unmask.status_code == 403 and unmask.json()["detail"] == access.USERNAMES_MESSAGE
    assert plain.status_code == 200 and annotator.pseudonym in texts["plain"] and not leaked
    assert admin.status_code == 200 and "alice" in texts["admin"]


# --- 9. closed campaigns ------------------------------------------------------------------------------


def test_a_closed_campaign_reveals_nothing_to_annotators_who_were_not_part_of_it(annotator, other_annotator):
    campaign = make_campaign(prompts=2, overlap=1)
    rating_submit(assignment=assignment_next(campaign=campaign, annotator=annotator), annotator=annotator,
                  **VALID_RATING)  # fmt: skip
    Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.CLOSED)
    outsider, member = _client(other_annotator), _client(annotator)
    unknown = campaign.pk + 1000
    probes = {
        "page": "/annotate/campaigns/{}/", "ratings": "/annotate/campaigns/{}/ratings/",
        "api": "/api/campaigns/{}/next/",
    }  # fmt: skip
    answers = {name: outsider.get(url.format(campaign.pk)) for name, url in probes.items()}
    as_unknown = {name: outsider.get(url.format(unknown)) for name, url in probes.items()}
    leaks = [name for name, r in answers.items() if campaign.name.encode() in r.content]
    leaks += ["home"] if campaign.name.encode() in outsider.get("/annotate/").content else []

    def seen(response, url: str) -> tuple[int, bytes]:
        # the styled 404 carries the log-out form, whose CSRF token is masked afresh in every response
        body = re.sub(rb'name="csrfmiddlewaretoken" value="[^"]*"', b"TOKEN", response.content)
        return response.status_code, body.replace(url.encode(), b"URL")

    same = [
        n for n, url in probes.items()
        if seen(answers[n], url.format(campaign.pk)) == seen(as_unknown[n], url.format(unknown))
    ]  # fmt: skip
    member_page = member.get(probes["page"].format(campaign.pk))
    statuses = sorted({r.status_code for r in answers.values()})
    figure("closed-campaign-hidden", probes=len(probes), statuses=statuses, same_as_unknown=len(same),
           leaks=len(leaks), member_status=member_page.status_code)  # fmt: skip
    assert statuses == [404] and not leaks
    assert len(same) == len(probes)
    assert member_page.status_code == 200 and campaign.name.encode() in member_page.content
    assert member.get(probes["api"].format(campaign.pk)).status_code == 403  # a member is told it closed
