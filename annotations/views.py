"""Server-rendered rating pages for annotators. Work without JavaScript (plain POST forms with CSRF);
static/annotate/annotate.js adds the keyboard and the time measurement on top.

Blinding: templates get the two answer texts as `left_text`/`right_text` and never a Pair, an Answer
or the assignment's side.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views import View

from evalsite.access import ANNOTATE, RoleRequiredMixin

from .assignment import (
    annotator_progress,
    assignment_next,
    assignment_previous,
    assignment_skip,
    blinded_texts,
)
from .display import guidelines_html, text_chunks
from .errors import AnnotationError, CampaignClosed
from .forms import RatingForm
from .models import Assignment, Campaign, Rating
from .rating import rating_submit

# The keyboard map lives here once: the template shows it and annotate.js reads the data-key attributes.
SCORE_KEYS = {"left": ["1", "2", "3", "4", "5"], "right": ["q", "w", "e", "r", "t"]}
CORRECT_KEYS = {"left": ["a", "s", "d"], "right": ["j", "k", "l"]}
PREFERENCE_OPTIONS = [
    ("left", "Left is better", "z", "←"),
    ("tie", "Tie", "x", "↓"),
    ("right", "Right is better", "c", "→"),
    ("both_bad", "Both bad", "v", "↑"),
]
KEY_HELP = [
    ("1–5", "score the left answer"),
    ("q w e r t", "score the right answer (1–5)"),
    ("a / s / d", "left answer correct / incorrect / not sure"),
    ("j / k / l", "right answer correct / incorrect / not sure"),
    ("z or ←", "left is better"),
    ("x or ↓", "tie"),
    ("c or →", "right is better"),
    ("v or ↑", "both bad"),
    ("i", "write a comment (Esc leaves the comment box)"),
    ("Enter", "submit (Ctrl+Enter inside the comment box)"),
    ("n", "skip this pair / back to the current pair"),
    ("b", "previous rating (edit it)"),
    ("m", "my ratings"),
    ("g", "show or hide the guidelines"),
]


def _raw_value(form: RatingForm, name: str) -> str:
    value = form[name].value()
    return "" if value is None else str(value)


RadioOption = dict[str, str | bool]


def _radio_groups(form: RatingForm) -> dict[str, list[RadioOption]]:
    """The form's radio buttons with their keyboard keys, each marked checked as the form holds it."""
    groups: dict[str, list[RadioOption]] = {}
    for side in ("left", "right"):
        chosen = _raw_value(form, f"score_{side}")
        groups[f"score_{side}"] = [
            {"value": str(n), "label": str(n), "key": key, "checked": chosen == str(n)}
            for n, key in zip(range(1, 6), SCORE_KEYS[side], strict=True)
        ]
        chosen = _raw_value(form, f"correct_{side}")
        if chosen not in ("true", "false"):
            chosen = ""
        groups[f"correct_{side}"] = [
            {"value": value, "label": label, "key": key, "checked": chosen == value}
            for (value, label), key in zip(
                [("true", "Correct"), ("false", "Incorrect"), ("", "Not sure")],
                CORRECT_KEYS[side],
                strict=True,
            )
        ]
    chosen = _raw_value(form, "preference")
    groups["preference"] = [
        {"value": value, "label": label, "key": key, "arrow": arrow, "checked": chosen == value}
        for value, label, key, arrow in PREFERENCE_OPTIONS
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
        "guidelines": guidelines_html(campaign.guidelines) if campaign.guidelines.strip() else "",
        "key_help": KEY_HELP,
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
        return _render_rate(request, assignment, RatingForm())


class AssignmentRateView(AnnotatorView):
    """GET: the form for one of the annotator's assignments (filled in when it is rated). POST: save."""

    def get(self, request: HttpRequest, assignment_id: int) -> HttpResponse:
        assignment = _assignment_for(request, assignment_id)
        campaign = assignment.pair.campaign
        if campaign.status != Campaign.Status.OPEN:
            return _render_closed(request, campaign)
        rating = Rating.objects.filter(assignment=assignment).first()
        if rating is None:
            # an unrated assignment is only shown through the campaign page, which renews its lock
            return redirect("annotate-campaign", campaign_id=campaign.pk)
        return _render_rate(request, assignment, RatingForm(initial=RatingForm.initial_from_rating(rating)))

    def post(self, request: HttpRequest, assignment_id: int) -> HttpResponse:
        assignment = _assignment_for(request, assignment_id)
        campaign = assignment.pair.campaign
        form = RatingForm(request.POST)
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
        _, created = result
        messages.success(request, "Rating saved." if created else "Rating updated.")
        return redirect("annotate-campaign", campaign_id=campaign.pk)


class AssignmentSkipView(AnnotatorView):
    """Leave the pair unrated and move on; it comes back only after every other pair."""

    def post(self, request: HttpRequest, assignment_id: int) -> HttpResponse:
        assignment = _assignment_for(request, assignment_id)
        assignment_skip(assignment=assignment, annotator=request.user)
        return redirect("annotate-campaign", campaign_id=assignment.pair.campaign_id)


class MyRatingsView(AnnotatorView):
    """This annotator's ratings in a campaign, newest first, with edit links while it is open."""

    def get(self, request: HttpRequest, campaign_id: int) -> HttpResponse:
        campaign = _campaign_for(request, campaign_id)
        ratings = (
            Rating.objects.filter(assignment__pair__campaign=campaign, assignment__annotator=request.user)
            .select_related("assignment__pair__prompt")
            .order_by("-assignment__completed_at", "-assignment_id")
        )
        rows = [
            {
                "rating": rating,
                "prompt": rating.assignment.pair.prompt,
                "edit_url": reverse("annotate-assignment", args=[rating.assignment_id]),
            }
            for rating in ratings
        ]
        progress = (
            annotator_progress(campaign=campaign, annotator=request.user)
            if (campaign.status == Campaign.Status.OPEN)
            else None
        )
        return render(
            request,
            "annotations/my_ratings.html",
            {
                "campaign": campaign,
                "rows": rows,
                "is_open": campaign.status == Campaign.Status.OPEN,
                "progress": progress,
            },
        )
