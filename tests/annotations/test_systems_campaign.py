"""Campaigns of more than two systems (issue 17): the balanced design of system pairs per task, the
command and the open-campaign page, gold refused, two-system campaigns unchanged, and blinding."""

from __future__ import annotations

import json
from collections import Counter
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from rest_framework.test import APIClient

from annotations.campaigns import CampaignCreateError, campaign_create
from annotations.models import Assignment, Campaign, Pair
from generation.models import Answer, GenerationJob, JobSystem, job_system_names
from tests.annotations.test_blinding import ROLE_WORDS
from tests.support.annotation_data import SECRET_STRINGS, VALID_RATING, make_job
from tests.support.systems_campaign_data import SECRET_SYSTEMS, make_secret_systems_job
from tests.support.systems_data import make_systems_job

pytestmark = pytest.mark.django_db

FOUR = (("epoch-005", JobSystem.Kind.ADAPTER, 5, 1.4), ("outside", JobSystem.Kind.IMPORTED, None, None))
THREE = (("epoch-005", JobSystem.Kind.ADAPTER, 5, 1.4),)


def shown(campaign: Campaign) -> dict[str, list[tuple[str, str]]]:
    """{task: [(earlier system, later system) of each pair, by prompt id]} read from the Pair rows."""
    out: dict[str, list[tuple[str, str]]] = {}
    pairs = Pair.objects.filter(campaign=campaign).select_related(
        "prompt", "pretrained_answer", "finetuned_answer"
    )
    for pair in pairs.order_by("prompt_id"):
        out.setdefault(pair.prompt.task, []).append((pair.pretrained_answer.role, pair.finetuned_answer.role))
    return out


def create(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("create_campaign", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


# ---- the design ----------------------------------------------------------------------------------


def test_four_systems_over_24_prompts_show_every_system_pair_once_in_every_task():
    job = make_systems_job(prompts=24, extra=FOUR)  # 4 tasks of 6 prompts; C(4,2) = 6 system pairs
    campaign = campaign_create(job=job, name="four systems", overlap=2)
    systems = job_system_names(job)
    all_pairs = {(a, b) for i, a in enumerate(systems) for b in systems[i + 1 :]}
    by_task = shown(campaign)
    assert len(by_task) == 4 and Pair.objects.filter(campaign=campaign).count() == 24
    for task, chosen in by_task.items():
        assert Counter(chosen) == dict.fromkeys(all_pairs, 1), task
    # the earlier system in job order is stored as the pair's `pretrained_answer`
    pairs = Pair.objects.filter(campaign=campaign).select_related("pretrained_answer", "finetuned_answer")
    for pair in pairs:
        assert systems.index(pair.pretrained_answer.role) < systems.index(pair.finetuned_answer.role)
        assert pair.pretrained_answer.prompt_id == pair.finetuned_answer.prompt_id == pair.prompt_id
    # the tasks do not all start the cycle with the same system pair (each task draws its offset; a
    # design may still start two tasks alike, so this looks at a few campaigns)
    firsts = [{chosen[0] for chosen in shown(campaign).values()}]
    for name in ("again", "once more", "last"):
        firsts.append({chosen[0] for chosen in shown(campaign_create(job=job, name=name)).values()})
    assert any(len(first) > 1 for first in firsts)


def test_three_systems_over_30_prompts_differ_by_at_most_one_within_a_task():
    job = make_systems_job(prompts=30, extra=THREE)  # tasks of 8, 8, 7, 7 prompts; 3 system pairs
    campaign = campaign_create(job=job, name="three systems", overlap=1)
    for task, chosen in shown(campaign).items():
        counts = Counter(chosen)
        assert len(counts) == 3 and max(counts.values()) - min(counts.values()) <= 1, (task, counts)
        assert sum(counts.values()) in (7, 8)


def test_the_same_job_and_name_give_the_same_design_and_other_names_another():
    job = make_systems_job(prompts=24, extra=FOUR)
    first = shown(campaign_create(job=job, name="round one"))
    assert shown(campaign_create(job=job, name="round one")) == first
    assert shown(campaign_create(job=job, name="  round one ")) == first  # the stored, stripped name
    others = [shown(campaign_create(job=job, name=f"round {n}")) for n in ("two", "three", "four")]
    assert any(other != first for other in others)


def test_a_prompt_missing_one_systems_answer_is_left_out():
    job = make_systems_job(prompts=8, extra=FOUR)
    Answer.objects.filter(job=job, prompt__external_id="q3", role="outside").delete()
    campaign = campaign_create(job=job, name="gaps")
    assert set(campaign.pairs.values_list("prompt__external_id", flat=True)) == {
        f"q{i}" for i in range(8) if i != 3
    }
    bare = make_systems_job(prompts=4, extra=FOUR, dataset_name="bare")
    Answer.objects.filter(job=bare, role="outside").delete()
    with pytest.raises(CampaignCreateError, match="no prompt with an answer from each of its 4 systems"):
        campaign_create(job=bare, name="none")
    assert Campaign.objects.count() == 1


def test_a_two_system_job_still_gets_pretrained_against_finetuned_on_every_prompt():
    job = make_job(prompts=5)
    out, err = create("--job", str(job.pk), "--name", "two", "--overlap", "2")
    campaign = Campaign.objects.get(pk=int(out.strip().splitlines()[-1]))
    assert out.strip() == str(campaign.pk)
    assert err.strip() == (
        "campaign 'two' opened with 5 pairs (0 gold), overlap 2; \"not sure\" not offered"
    )  # no design line: exactly as before
    assert sum(len(v) for v in shown(campaign).values()) == 5
    assert {pair for chosen in shown(campaign).values() for pair in chosen} == {("pretrained", "finetuned")}


# ---- the command and the page --------------------------------------------------------------------


def test_the_command_prints_the_design_before_the_id():
    job = make_systems_job(prompts=24, extra=FOUR)
    out, err = create("--job", str(job.pk), "--name", "k four")
    campaign = Campaign.objects.get()
    assert out.splitlines()[-1] == str(campaign.pk)
    design = err.strip().splitlines()[-1]
    assert design == (
        "4 systems (pre-trained, fine-tuned, epoch-005, outside), 6 system pairs, "
        "each shown on 1 prompt per task"
    )
    job3 = make_systems_job(prompts=30, extra=THREE, dataset_name="three")
    _, err = create("--job", str(job3.pk), "--name", "k three")
    assert err.strip().splitlines()[-1].endswith("3 system pairs, each shown on 2–3 prompts per task")


def test_gold_is_refused_on_a_campaign_of_more_than_two_systems(tmp_path):
    job = make_systems_job(prompts=8, extra=FOUR)
    gold = [(1, {"prompt_external_id": "q0", "preference": "finetuned"})]
    with pytest.raises(CampaignCreateError, match="gold pairs are for campaigns of two systems"):
        campaign_create(job=job, name="gold", gold=gold)
    with pytest.raises(CampaignCreateError, match="gold feedback: gold pairs are for campaigns of two"):
        campaign_create(job=job, name="gold", gold_feedback=True)
    path = tmp_path / "gold.jsonl"
    path.write_text(json.dumps(gold[0][1]) + "\n")
    with pytest.raises(CommandError, match="gold pairs are for campaigns of two systems"):
        create("--job", str(job.pk), "--name", "gold", "--gold", str(path))
    assert not Campaign.objects.exists() and not Pair.objects.exists()


def test_the_open_campaign_page_names_the_systems_and_offers_no_gold(client, admin_user):
    job = make_systems_job(prompts=8, extra=FOUR)
    client.force_login(admin_user)
    html = client.get(f"/jobs/{job.pk}/campaign/new/").content.decode()
    assert "compare the job's 4 systems: pre-trained, fine-tuned, epoch-005, outside" in html
    assert 'name="gold"' not in html and 'name="gold_feedback"' not in html
    assert 'name="allow_not_sure"' in html
    # a posted gold option is ignored (the field is not there), the campaign opens with its design
    response = client.post(
        f"/jobs/{job.pk}/campaign/new/", {"name": "From the page", "overlap": "2", "gold_feedback": "on"}
    )
    campaign = Campaign.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/campaigns/{campaign.pk}/report/"
    assert campaign.gold_feedback is False and campaign.pairs.count() == 8
    assert {p for chosen in shown(campaign).values() for p in chosen} - {("pretrained", "finetuned")}
    page = client.get(response["Location"]).content.decode()
    assert "4 systems (pre-trained, fine-tuned, epoch-005, outside), 6 system pairs" in page
    # a two-system job's page is as it was
    two = make_job(prompts=2, dataset_name="two")
    html = client.get(f"/jobs/{two.pk}/campaign/new/").content.decode()
    assert 'name="gold"' in html and "compare the job" not in html


# ---- blinding ------------------------------------------------------------------------------------


def assert_blind(label: str, response) -> None:
    """Neither the body nor the headers name a model, adapter, role, system or answer id."""
    body = response.content.decode("utf-8", "replace")
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    answer_ids = [str(pk) for pk in Answer.objects.values_list("pk", flat=True)]
    secrets = [*SECRET_STRINGS.values(), *SECRET_SYSTEMS, *(v[1] for v in SECRET_SYSTEMS.values() if v[1])]
    for where, text in (("body", body), ("headers", headers)):
        lowered = text.lower()
        for word in [*secrets, *ROLE_WORDS, "walrus", "ibis", "tapir", "epoch", "imported", "system"]:
            assert word.lower() not in lowered, f"{label}: {word!r} in {where}"
        for answer_id in answer_ids:
            assert answer_id not in text, f"{label}: answer id {answer_id} in {where}"


def _rate_form(client, assignment, **fields):
    data = {"score_left": "3", "score_right": "4", "correct_left": "false", "correct_right": "true"}
    data.update({"preference": "right", "comment": "", "duration_ms": "800", **fields})
    return client.post(f"/annotate/assignments/{assignment.pk}/", data)


def test_nothing_an_annotator_reaches_in_a_many_system_campaign_names_a_system(client, annotator):
    job = make_secret_systems_job(prompts=6)
    campaign = campaign_create(job=job, name="Autumn review", overlap=1, guidelines="Rate *both*.")
    assert {p for chosen in shown(campaign).values() for p in chosen} - {("pretrained", "finetuned")}
    client.force_login(annotator)
    api = APIClient()
    api.force_authenticate(annotator)

    def check(label, response, status=200):
        assert response.status_code == status, (label, response.status_code)
        assert_blind(label, response)

    check("annotate home", client.get("/annotate/"))
    check("rating page", client.get(f"/annotate/campaigns/{campaign.pk}/"))
    first = Assignment.objects.get(annotator=annotator)
    check("invalid post", client.post(f"/annotate/assignments/{first.pk}/", {"score_left": "9"}), 400)
    check("valid post", _rate_form(client, first), 302)
    check("next page", client.get(f"/annotate/campaigns/{campaign.pk}/"))
    second = Assignment.objects.get(annotator=annotator, completed_at__isnull=True)
    check("skip", client.post(f"/annotate/assignments/{second.pk}/skip/"), 302)
    check("edit page", client.get(f"/annotate/assignments/{first.pk}/"))
    check("edit post", _rate_form(client, first, preference="left", comment="changed"), 302)
    check("my ratings", client.get(f"/annotate/campaigns/{campaign.pk}/ratings/"))
    check("campaign list api", api.get("/api/campaigns/"))
    check("api root", api.get("/api/"))
    body = api.get(f"/api/campaigns/{campaign.pk}/next/").json()
    check("api next", api.get(f"/api/campaigns/{campaign.pk}/next/"))
    url = f"/api/assignments/{body['assignment']}/rating/"
    check("api rating 400", api.post(url, {**VALID_RATING, "correct_left": None}, format="json"), 400)
    check("api rating 201", api.post(url, VALID_RATING, format="json"), 201)
    check("api rating 200", api.post(url, VALID_RATING, format="json"), 200)
    check("report refused", client.get(f"/campaigns/{campaign.pk}/report/"), 403)
    pair = Pair.objects.filter(campaign=campaign).first()
    check("pair page refused", client.get(f"/campaigns/{campaign.pk}/pairs/{pair.pk}/"), 403)
    check("export refused", api.get(f"/api/campaigns/{campaign.pk}/export.csv"), 403)
    while api.get(f"/api/campaigns/{campaign.pk}/next/").status_code == 200:
        pending = Assignment.objects.get(
            annotator=annotator, completed_at__isnull=True, skipped_at__isnull=True
        )
        posted = api.post(f"/api/assignments/{pending.pk}/rating/", VALID_RATING, format="json")
        check("api rating loop", posted, 201)
    check("api 204", api.get(f"/api/campaigns/{campaign.pk}/next/"), 204)
    check("all done page", client.get(f"/annotate/campaigns/{campaign.pk}/"))
    check("my ratings, all rated", client.get(f"/annotate/campaigns/{campaign.pk}/ratings/"))
    assert GenerationJob.objects.get(pk=job.pk).extra_systems.count() == 2
