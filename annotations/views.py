"""Server-rendered rating pages for annotators. Work without JavaScript (plain POST forms with CSRF);
static/annotate/annotate.js adds the keyboard and the time measurement on top.

Blinding: templates get the two answer texts as `left_text`/`right_text` and never a Pair, an Answer
or the assignment's side.
"""

from __future__ import annotations

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views import View

from evalsite.access import ANNOTATE, RoleRequiredMixin

from .assignment import (
    annotator_progress,
    assignment_next,
    assignment_previous,
    assignment_skip,
    blinded_texts,
)
from .display import gold_notice, guidelines_html, text_chunks
from .errors import AnnotationError, CampaignClosed
from .forms import RatingForm, verdict_choices
from .models import Assignment, Campaign, Rating
from .my_ratings import my_ratings, rated_rows, skipped_rows
from .rating import rating_submit

MY_RATINGS_PER_PAGE = 25

# The keyboard map lives here once: the template shows it and annotate.js reads the data-key attributes.
# Letter and digit keys only: arrows, Tab, Space and Enter inside controls keep their native meaning.
SCORE_KEYS = {"left": ["1", "2", "3", "4", "5"], "right": ["q", "w", "e", "r", "t"]}
CORRECT_KEYS = {"left": ["a", "s", "d"], "right": ["j", "k", "l"]}
REQUIRED_CHOICES = ("score_left", "score_right", "correct_left", "correct_right", "preference")
PREFERENCE_OPTIONS = [
    ("left", "Left is better", "z"),
    ("tie", "Tie", "x"),
    ("right", "Right is better", "c"),
    ("both_bad", "Both bad", "v"),
]


def key_help(*, allow_not_sure: bool, guidelines: bool) -> list[tuple[str, str]]:
    """The shortcut table shown on the page: only keys that do something on it."""
    verdicts = "correct / incorrect / not sure" if allow_not_sure else "correct / incorrect"
    keys = "{} / {}" + (" / {}" if allow_not_sure else "")
    rows = [
        ("1–5", "score the left answer"),
        ("q w e r t", "score the right answer (1–5)"),
        (keys.format(*CORRECT_KEYS["left"]), f"left answer {verdicts}"),
        (keys.format(*CORRECT_KEYS["right"]), f"right answer {verdicts}"),
        ("z / x / c / v", "left is better / tie / right is better / both bad"),
        ("i", "write a comment (Esc leaves the comment box)"),
        ("Enter", "submit (Ctrl+Enter inside the comment box)"),
        ("n", "skip this pair / back to the current pair"),
        ("b", "previous rating (edit it)"),
        ("m", "my ratings"),
    ]
    if guidelines:
        rows.append(("g", "show or hide the guidelines"))
    return rows


def _raw_value(form: RatingForm, name: str) -> str:
    value = form[name].value()
    return "" if value is None else str(value)


RadioOption = dict[str, str | bool]


def _radio_groups(form: RatingForm) -> dict[str, list[RadioOption]]:
    """The form's radio buttons with their keyboard keys, each marked checked as the form holds it.
    Verdicts start with none checked; "Not sure" is offered only where the campaign allows it."""
    groups: dict[str, list[RadioOption]] = {}
    for side in ("left", "right"):
        chosen = _raw_value(form, f"score_{side}")
        groups[f"score_{side}"] = [
            {"value": str(n), "label": str(n), "key": key, "checked": chosen == str(n)}
            for n, key in zip(range(1, 6), SCORE_KEYS[side], strict=False)
        ]
        chosen = _raw_value(form, f"correct_{side}")
        groups[f"correct_{side}"] = [
            {"value": value, "label": label, "key": key, "checked": chosen == value}
            for (value, label), key in zip(
                verdict_choices(form.allow_not_sure), CORRECT_KEYS[side], strict=False
            )
        ]
    chosen = _raw_value(form, "preference")
    groups["preference"] = [
        {"value": value, "label": label, "key": key, "checked": chosen == value}
        for value, label, key in PREFERENCE_OPTIONS
    ]
    return groups


class AnnotatorView(RoleRequiredMixin, View):
    """Every page here is for annotators only (evalsite.access.ANNOTATE)."""

    rule = ANNOTATE


def _campaign_for(request: HttpRequest, campaign_id: int) -> Campaign:
    # A closed campaign this annotator had no pair in is a 404, exactly like one that does not exist.
    return get_object_or_404(Campaign.objects.visible_to_annotator(request.user), pk=campaign_id)


def _assignment_for(request: HttpRequest, assignment_id: int) -> Assignment:
    # Another annotator's assignment is a 404, exactly like one that does not exist.
    return get_object_or_404(
        Assignment.objects.select_related("pair__campaign", "pair__prompt"),
        pk=assignment_id,
        annotator=request.user,
    )


def _render_closed(request: HttpRequest, campaign: Campaign) -> HttpResponse:
    return render(request, "annotations/closed.html", {"campaign": campaign})


def _render_rate(
    request: HttpRequest, assignment: Assignment, form: RatingForm, *, status: int = 200
) -> HttpResponse:
    campaign = assignment.pair.campaign
    left_text, right_text = blinded_texts(assignment)
    editing = Rating.objects.filter(assignment=assignment).exists()
    previous = assignment_previous(
        campaign=campaign, annotator=request.user, before=assignment if editing else None
    )
    progress = annotator_progress(campaign=campaign, annotator=request.user)
    guidelines = guidelines_html(campaign.guidelines) if campaign.guidelines.strip() else ""
    context = {
        "campaign": campaign,
        "assignment": assignment,
        "prompt": assignment.pair.prompt,
        "question": campaign.question_for(assignment.pair.prompt.task),
        "left_text": left_text,
        "right_text": right_text,
        "left_chunks": text_chunks(left_text),
        "right_chunks": text_chunks(right_text),
        "prompt_chunks": text_chunks(assignment.pair.prompt.text),
        "context_chunks": text_chunks(assignment.pair.prompt.context),
        "form": form,
        "groups": _radio_groups(form),
        "editing": editing,
        "previous": previous,
        "progress": progress,
        "progress_max": max(progress.total, 1),
        "guidelines": guidelines,
        # annotate.js opens the guidelines when this browser has not seen this version of them yet
        "guidelines_version": (
            campaign.guidelines_updated_at.isoformat() if campaign.guidelines_updated_at else "unversioned"
        ),
        "key_help": key_help(allow_not_sure=campaign.allow_not_sure, guidelines=bool(guidelines)),
        # annotate.js shows these next to a group left empty, before the form is sent
        "missing_messages": [
            (name, form.fields[name].error_messages["required"]) for name in REQUIRED_CHOICES
        ],
    }
    return render(request, "annotations/rate.html", context, status=status)


class AnnotateHomeView(AnnotatorView):
    """Open campaigns with this annotator's progress; closed ones they rated in, read-only."""

    def get(self, request: HttpRequest) -> HttpResponse:
        rows = []
        for campaign in Campaign.objects.filter(status=Campaign.Status.OPEN).order_by("-id"):
            progress = annotator_progress(campaign=campaign, annotator=request.user)
            rows.append({"campaign": campaign, "progress": progress, "progress_max": max(progress.total, 1)})
        closed = Campaign.objects.filter(
            status=Campaign.Status.CLOSED,
            pairs__assignments__annotator=request.user,
            pairs__assignments__completed_at__isnull=False,
        ).distinct()
        return render(request, "annotations/home.html", {"rows": rows, "closed": closed})


class CampaignAnnotateView(AnnotatorView):
    """The next pair for this annotator (the same one on reload until it is rated or skipped)."""

    def get(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = _campaign_for(request, campaign_id)
        if campaign.status != Campaign.Status.OPEN:
            return _render_closed(request, campaign)
        assignment = assignment_next(campaign=campaign, annotator=request.user)
        if assignment is None:
            progress = annotator_progress(campaign=campaign, annotator=request.user)
            previous = assignment_previous(campaign=campaign, annotator=request.user)
            return render(
                request,
                "annotations/done.html",
                {"campaign": campaign, "progress": progress, "previous": previous},
            )
        return _render_rate(request, assignment, RatingForm(allow_not_sure=campaign.allow_not_sure))


class AssignmentRateView(AnnotatorView):
    """GET: the form for one of the annotator's assignments (filled in when it is rated). POST: save."""

    def get(self, request: HttpRequest, assignment_id: int) -> HttpResponse:
        assignment = _assignment_for(request, assignment_id)
        campaign = assignment.pair.campaign
        if campaign.status != Campaign.Status.OPEN:
            return _render_closed(request, campaign)
        rating = Rating.objects.filter(assignment=assignment).first()
        if rating is None and assignment.skipped_at is None:
            # an open assignment is only shown through the campaign page, which renews its lock
            return redirect("annotate-campaign", campaign_id=campaign.pk)
        if rating is None:
            # a pair they skipped, opened by "Rate now" on My ratings: shown blank (a GET takes no slot);
            # rating_submit refuses the post if others have filled the pair since
            return _render_rate(request, assignment, RatingForm(allow_not_sure=campaign.allow_not_sure))
        form = RatingForm(
            initial=RatingForm.initial_from_rating(rating), allow_not_sure=campaign.allow_not_sure
        )
        return _render_rate(request, assignment, form)

    def post(self, request: HttpRequest, assignment_id: int) -> HttpResponse:
        assignment = _assignment_for(request, assignment_id)
        campaign = assignment.pair.campaign
        form = RatingForm(request.POST, allow_not_sure=campaign.allow_not_sure)
        if not form.is_valid():
            return _render_rate(request, assignment, form, status=400)
        try:
            result = rating_submit(
                assignment=assignment, annotator=request.user, **form.cleaned_data
            )
        except CampaignClosed:
            return _render_closed(request, campaign)
        except AnnotationError as error:
            messages.warning(request, str(error))
            return redirect("annotate-campaign", campaign_id=campaign.pk)
        if result is None:  # pragma: no cover — _assignment_for already checked the owner
            return redirect("annotate-home")
        rating, created = result
        messages.success(request, "Rating saved." if created else "Rating updated.")
        if campaign.gold_feedback and assignment.pair.is_gold:
            # training rounds: the known verdict, in the sides this annotator saw, on the next page
            messages.info(request, gold_notice(assignment, rating), extra_tags="gold-feedback")
        return redirect("annotate-campaign", campaign_id=campaign.pk)


class AssignmentSkipView(AnnotatorView):
    """Leave the pair unrated and move on; it comes back only after every other pair."""

    def post(self, request: HttpRequest, assignment_id: int) -> HttpResponse:
        assignment = _assignment_for(request, assignment_id)
        assignment_skip(assignment=assignment, annotator=request.user)
        return redirect("annotate-campaign", campaign_id=assignment.pair.campaign_id)


class MyRatingsView(AnnotatorView):
    """This annotator's ratings in a campaign, latest first, a page at a time, each row one link to edit
    it while the campaign is open; above them the pairs they skipped, each with "Rate now"."""

    def get(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = _campaign_for(request, campaign_id)
        is_open = campaign.status == Campaign.Status.OPEN
        # a page number that is not one (or past the end) shows the nearest page, never an error
        page = Paginator(my_ratings(campaign=campaign, annotator=request.user), MY_RATINGS_PER_PAGE).get_page(
            request.GET.get("page")
        )
        context = {
            "campaign": campaign,
            "is_open": is_open,
            "page": page,
            "rows": rated_rows(list(page.object_list)),
            # skipped pairs on the first page only: they are what to do next, the rest is history
            "skipped": skipped_rows(campaign=campaign, annotator=request.user) if page.number == 1 else [],
            "progress": annotator_progress(campaign=campaign, annotator=request.user) if is_open else None,
        }
        return render(request, "annotations/my_ratings.html", context)
