"""create_user, api_token and create_campaign: last-line contracts and one-line errors."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token

from annotations.models import Campaign, User
from generation.models import JobStatus
from tests.support.annotation_data import make_job

pytestmark = pytest.mark.django_db


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def test_create_user_with_a_password(db):
    lines = run("create_user", "carol", "--role", "annotator", "--password", "long-enough-pw")
    user = User.objects.get(username="carol")
    assert user.role == "annotator" and user.check_password("long-enough-pw") and not user.is_staff
    assert lines[-1] == "carol long-enough-pw"


def test_create_user_generates_and_prints_a_password(db):
    username, password = run("create_user", "dave", "--role", "researcher")[-1].split()
    assert username == "dave" and len(password) >= 12
    assert User.objects.get(username="dave").check_password(password)


def test_admins_can_use_the_django_admin(client):
    _, password = run("create_user", "erin", "--role", "admin")[-1].split()
    user = User.objects.get(username="erin")
    assert user.role == "admin" and user.is_staff and user.is_superuser
    assert client.login(username="erin", password=password)
    assert client.get("/admin/annotations/campaign/").status_code == 200
    assert client.get("/admin/annotations/user/").status_code == 200


@pytest.mark.parametrize(
    "args, message",
    [
        (["frank", "--role", "boss"], "--role: must be one of annotator, researcher, admin (got 'boss')"),
        (["alice", "--role", "annotator"], "user 'alice' already exists"),
        (
            ["gina", "--role", "annotator", "--password", "short"],
            "--password: This password is too short. It must contain at least 8 characters.",
        ),
        # a look-alike spelling of an existing name is that name (NFKC, as Django's forms read it)
        (["ａｌｉｃｅ", "--role", "annotator", "--password", "plum-kettle"], "user 'alice' already exists"),
    ],
)
def test_create_user_errors(annotator, args, message):
    with pytest.raises(CommandError) as error:
        run("create_user", *args)
    assert str(error.value) == message


def test_api_token_prints_the_same_token_each_time(annotator):
    first = run("api_token", "alice")[-1]
    assert first == Token.objects.get(user=annotator).key
    assert run("api_token", "alice")[-1] == first


def test_api_token_rotate_replaces_the_token(annotator):
    first = run("api_token", "alice")[-1]
    second = run("api_token", "alice", "--rotate")[-1]
    assert second != first and list(Token.objects.filter(user=annotator).values_list("key", flat=True)) == [
        second
    ]


def test_api_token_for_an_unknown_user(db):
    with pytest.raises(CommandError, match="no user named 'nobody'"):
        run("api_token", "nobody")


def test_create_campaign_prints_its_id(tmp_path):
    job = make_job(prompts=3)
    guidelines = tmp_path / "rules.md"
    guidelines.write_text("Be **fair**.", encoding="utf-8")
    lines = run(
        "create_campaign",
        "--job",
        str(job.pk),
        "--name",
        "Round 1",
        "--overlap",
        "2",
        "--guidelines",
        str(guidelines),
    )
    campaign = Campaign.objects.get(pk=int(lines[-1]))
    assert (campaign.name, campaign.overlap, campaign.guidelines) == ("Round 1", 2, "Be **fair**.")
    assert campaign.pairs.count() == 3


def test_create_campaign_errors(tmp_path):
    running = make_job(prompts=1, dataset_name="r", status=JobStatus.RUNNING)
    empty = make_job(prompts=1, dataset_name="e", with_answers=False)
    cases = [
        (["--job", "999999", "--name", "x"], "--job: no generation job with id 999999"),
        (
            ["--job", str(running.pk), "--name", "x"],
            f"job {running.pk} has not finished yet (status: running)",
        ),
        (
            ["--job", str(empty.pk), "--name", "x"],
            f"job {empty.pk} has no prompt with both a pre-trained and a fine-tuned answer",
        ),
        (["--job", str(empty.pk), "--name", "x", "--overlap", "0"], "overlap must be at least 1 (got 0)"),
    ]
    for args, message in cases:
        with pytest.raises(CommandError) as error:
            run("create_campaign", *args)
        assert str(error.value) == message
    with pytest.raises(CommandError, match="--guidelines: cannot read"):
        run(
            "create_campaign",
            "--job",
            str(empty.pk),
            "--name",
            "x",
            "--guidelines",
            str(tmp_path / "missing.md"),
        )
    assert not Campaign.objects.exists()


def test_commands_exit_non_zero_with_one_line(tmp_path):
    import subprocess
    import sys

    env = {"PATH": "/usr/bin:/bin", "DEBUG": "1", "EVALSITE_VAR_DIR": str(tmp_path)}
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], check=True, env=env, timeout=300)
    result = subprocess.run(
        [sys.executable, "manage.py", "api_token", "nobody-at-all"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode != 0
    assert result.stderr.strip().splitlines()[-1] == "CommandError: no user named 'nobody-at-all'"
