"""The disagreement queue, the comments section and the unblinded pair page (issue 16).

A researcher reads first the pairs whose raters disagree most, opens each one unblinded, and reads
every rater's comment with its pair. Annotators never reach any of it: the pair page names the roles.
"""

from __future__ import annotations

import html

import pytest

from annotations.assignment import assignment_next
from annotations.models import Pair, User
from annotations.rating import rating_submit
from reports.building import campaign_report
from tests.support.annotation_data import HOSTILE, make_campaign
from tests.support.report_data import PROMPTS, build_hand_campaign

pytestmark = pytest.mark.django_db

# p1: two raters split on everything (spread 4 on both answers, verdicts and preference split);
# p2: two raters agree; p3: one point apart on the pre-trained answer; p4: rated once (never queued)
SPLIT_RATINGS = [
    ("p1", 0, "left", 1, 5, False, True, "finetuned"),
    ("p1", 1, "right", 5, 1, True, False, "pretrained"),
    ("p2", 0, "left", 3, 4, True, True, "finetuned"),
    ("p2", 1, "right", 3, 4, True, True, "finetuned"),
    ("p3", 0, "left", 2, 3, True, True, "finetuned"),
    ("p3", 1, "left", 3, 3, True, True, "tie"),
    ("p4", 2, "left", 1, 5, True, False, "finetuned"),
]


@pytest.fixture
def split():
    return build_hand_campaign(ratings=SPLIT_RATINGS, name="split")


def test_the_split_pair_ranks_first_and_agreeing_or_single_pairs_are_left_out(split):
    report = campaign_report(split.campaign)
    queue = report["disagreements"]
    assert [d["prompt_external_id"] for d in queue] == ["p1", "p3"]
    assert report["n_disagreeing_pairs"] == 2
    first = queue[0]
    assert first["pair"] == split.pairs["p1"].pk and first["task"] == "sentiment"
    assert first["score_spread"] == 4 and first["score_spread_by_role"] == {"pretrained": 4, "finetuned": 4}
    assert first["split_verdicts"] is True and first["split_verdict_roles"] == ["pretrained", "finetuned"]
    assert first["split_preference"] is True
    assert first["preferences"] == {"finetuned": 1, "pretrained": 1, "tie": 0, "both_bad": 0}
    assert first["difference_spread"] == 8 and first["disagreement"] == 4 + 2 + 1
    assert first["n_ratings"] == 2 and first["gold"] is False
    third = queue[1]
    assert (third["score_spread"], third["split_verdicts"], third["split_preference"]) == (1, False, False)
    assert "disagreement = score_spread" in report["disagreements_method"]


def test_a_gold_pair_is_queued_and_marked(split):
    Pair.objects.filter(pk=split.pairs["p1"].pk).update(gold_preference="finetuned")
    queue = campaign_report(split.campaign)["disagreements"]
    assert queue[0]["gold"] is True and queue[1]["gold"] is False


def test_the_queue_is_empty_without_ratings(db):
    hc = build_hand_campaign(ratings=[], name="empty")
    report = campaign_report(hc.campaign)
    assert report["disagreements"] == [] and report["n_disagreeing_pairs"] == 0 and report["comments"] == []


def test_the_api_carries_the_new_keys(client, researcher, split):
    client.force_login(researcher)
    api = client.get(f"/api/campaigns/{split.campaign.pk}/report/").json()
    keys = {"disagreements", "n_disagreeing_pairs", "disagreements_method", "comments", "comments_method"}
    assert keys <= set(api)
    assert api["disagreements"][0]["prompt_external_id"] == "p1"


def test_the_report_page_lists_the_queue_with_links_to_the_pairs(client, researcher, split):
    client.force_login(researcher)
    page = client.get(f"/campaigns/{split.campaign.pk}/report/").content.decode()
    section = page.split('id="disagreements"')[1].split("</section>")[0]
    p1, p3 = split.pairs["p1"].pk, split.pairs["p3"].pk
    link1 = f'href="/campaigns/{split.campaign.pk}/pairs/{p1}/"'
    link3 = f'href="/campaigns/{split.campaign.pk}/pairs/{p3}/"'
    assert link1 in section and link3 in section and section.index(link1) < section.index(link3)
    assert f"/pairs/{split.pairs['p2'].pk}/" not in section
    assert "pre-trained answer, fine-tuned answer" in section and "<strong>split</strong>" in section


# ------------------------------------------------------------------------------------------------
# The pair page
# ------------------------------------------------------------------------------------------------


def _pair_url(hc, external_id: str = "p1") -> str:
    return f"/campaigns/{hc.campaign.pk}/pairs/{hc.pairs[external_id].pk}/"


@pytest.mark.parametrize("who", ["researcher", "admin_user"])
def test_researchers_and_admins_read_the_pair_unblinded(client, request, who, split):
    client.force_login(request.getfixturevalue(who))
    response = client.get(_pair_url(split))
    assert response.status_code == 200
    page = response.content.decode()
    pt_text, ft_text = PROMPTS[0][3], PROMPTS[0][4]
    pt_card = page.split('id="answer-pretrained"')[1].split("</section>")[0]
    ft_card = page.split('id="answer-finetuned"')[1].split("</section>")[0]
    assert "Pre-trained answer" in pt_card and html.escape(pt_text) in pt_card
    assert "Fine-tuned answer" in ft_card and html.escape(ft_text) in ft_card
    rows = response.context["ratings"]
    # stored left/right, shown in role terms: rater 0 gave the pre-trained answer 1 and the fine-tuned 5
    assert [(r.rater, r.pretrained_score, r.finetuned_score, r.preference) for r in rows] == [
        (split.annotators[0].pseudonym, 1, 5, "finetuned"),
        (split.annotators[1].pseudonym, 5, 1, "pretrained"),
    ]
    assert [(r.pretrained_verdict, r.finetuned_verdict) for r in rows] == [
        ("incorrect", "correct"),
        ("correct", "incorrect"),
    ]
    assert split.annotators[0].username not in page  # pseudonyms only


def test_annotators_get_403_and_nothing_of_the_pair(client, split):
    rater = split.annotators[0]
    client.force_login(rater)
    response = client.get(_pair_url(split))
    assert response.status_code == 403
    body = response.content.decode()
    assert PROMPTS[0][4] not in body and "fine-tuned" not in body.lower() and "finetuned" not in body


def test_anonymous_visitors_are_sent_to_log_in(client, split):
    response = client.get(_pair_url(split))
    assert response.status_code == 302 and "/login/" in response["Location"]


def test_a_pair_of_another_campaign_or_none_is_404(client, researcher, split):
    other = build_hand_campaign(name="other")
    client.force_login(researcher)
    assert client.get(f"/campaigns/{split.campaign.pk}/pairs/{other.pairs['p1'].pk}/").status_code == 404
    assert client.get(f"/campaigns/{split.campaign.pk}/pairs/999999/").status_code == 404
    assert client.get(f"/campaigns/999999/pairs/{split.pairs['p1'].pk}/").status_code == 404


# ------------------------------------------------------------------------------------------------
# Comments, through the real rating flow
# ------------------------------------------------------------------------------------------------


def _rate(campaign, user, **fields):
    assignment = assignment_next(campaign=campaign, annotator=user)
    values = {"score_left": 4, "score_right": 2, "correct_left": True, "correct_right": False}
    values.update({"preference": "left", "comment": "", **fields})
    rating, _ = rating_submit(assignment=assignment, annotator=user, **values)
    return assignment, rating


def test_comments_reach_the_json_the_page_and_the_pair_page_with_their_history(client, researcher):
    campaign = make_campaign(prompts=2, overlap=2)
    ann = User.objects.create(username="ann", role="annotator")
    ben = User.objects.create(username="ben", role="annotator")
    assignment, _ = _rate(campaign, ann, comment="first thought")
    # ann edits the same pair: the comment changes and the rating keeps two versions
    rating_submit(
        assignment=assignment,
        annotator=ann,
        score_left=3,
        score_right=2,
        correct_left=True,
        correct_right=False,
        preference="left",
        comment=HOSTILE,
    )
    _rate(campaign, ben)  # no comment: not listed
    report = campaign_report(campaign)
    (comment,) = report["comments"]
    pair = assignment.pair
    assert comment["pair"] == pair.pk and comment["task"] == pair.prompt.task
    assert comment["rater"] == ann.pseudonym and comment["comment"] == HOSTILE and comment["revision"] == 2
    assert comment["prompt_external_id"] == pair.prompt.external_id and comment["rated_at"]

    client.force_login(researcher)
    page = client.get(f"/campaigns/{campaign.pk}/report/").content.decode()
    section = page.split('id="comments"')[1].split("</section>")[0]
    assert html.escape(HOSTILE) in section and HOSTILE not in section  # shown as text, never run
    assert f'href="/campaigns/{campaign.pk}/pairs/{pair.pk}/"' in section and ann.pseudonym in section
    assert "1 comment<" in section

    response = client.get(f"/campaigns/{campaign.pk}/pairs/{pair.pk}/")
    (row,) = [r for r in response.context["ratings"] if r.rater == ann.pseudonym]
    assert row.comment == HOSTILE and row.revisions == 2
    assert html.escape(HOSTILE) in response.content.decode()
