"""Users and their roles, campaigns, blinded pairs, assignments and ratings."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.db.models import Q
from django.utils import timezone
from rest_framework.authtoken.models import Token

from evalsite import access
from generation.models import Answer, GenerationJob, Prompt


class User(AbstractUser):
    class UserRole(models.TextChoices):
        ANNOTATOR = access.ANNOTATOR
        RESEARCHER = access.RESEARCHER
        ADMIN = access.ADMIN

    role = models.CharField(max_length=20, choices=UserRole.choices, default=UserRole.ANNOTATOR)

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        """Save, keeping what follows from the role in line whichever way the row is saved (admin form,
        `create_user`, a shell): `is_staff` / `is_superuser` are set to match the role (Django's admin
        and `createsuperuser` read them; evalsite's rules read only the role), and a change of password
        or role deletes the user's API token, so a token handed out before stops working (`api_token`
        issues a new one). A new row flagged superuser (Django's `createsuperuser`) is an admin."""
        adding = self._state.adding
        if adding and self.is_superuser:
            self.role = self.UserRole.ADMIN
        self.is_staff = self.is_superuser = self.role == self.UserRole.ADMIN
        update_fields = kwargs.get("update_fields")
        if update_fields is not None and "role" in update_fields:
            kwargs["update_fields"] = {*update_fields, "is_staff", "is_superuser"}
        credentials_changed = not adding and (
            self._password is not None or self._role_changed(kwargs.get("update_fields"))
        )
        super().save(*args, **kwargs)
        if credentials_changed:
            Token.objects.filter(user=self).delete()

    def _role_changed(self, update_fields: object) -> bool:
        if update_fields is not None and "role" not in update_fields:  # e.g. last_login on each log-in
            return False
        before = type(self)._default_manager.filter(pk=self.pk).values_list("role", flat=True).first()
        return before is not None and before != self.role

    @property
    def pseudonym(self) -> str:
        """Stable and not reversible without the secret key: exports name raters by this."""
        digest = hashlib.sha256(f"{settings.SECRET_KEY}:annotator:{self.pk}".encode()).hexdigest()
        return f"rater-{digest[:10]}"

    # For templates (`{% if user.can_read_reports %}`); the rules themselves live in evalsite.access.
    @property
    def can_read_reports(self) -> bool:
        return access.can_read_reports(self)

    @property
    def is_evalsite_admin(self) -> bool:
        return access.is_admin(self)


# The question shown above the scores, per prompt task; a campaign's `task_questions` overrides these.
DEFAULT_TASK_QUESTIONS = {
    "sentiment": "Is the sentiment stated correctly?",
    "features": "Are the product features extracted correctly and completely?",
    "recommendation": "Is the recommendation sound and useful for this customer?",
    "relevance": "Does the answer address the question relevantly?",
}
FALLBACK_QUESTION = "How good is each answer?"


class CampaignQuerySet(models.QuerySet["Campaign"]):
    def visible_to_annotator(self, annotator: AbstractUser) -> CampaignQuerySet:
        """The campaigns an annotator is part of: every open one (any annotator may rate any open
        campaign) and the closed ones they were given a pair in. Annotator pages and the annotator
        API answer 404 for any other campaign, exactly as for one that does not exist."""
        mine = Q(pk__in=Pair.objects.filter(assignments__annotator=annotator).values("campaign_id"))
        return self.filter(Q(status=Campaign.Status.OPEN) | mine)


class Campaign(models.Model):
    class Status(models.TextChoices):
        OPEN = "open"
        CLOSED = "closed"

    objects = CampaignQuerySet.as_manager()

    name = models.CharField(max_length=200)
    job = models.ForeignKey(GenerationJob, on_delete=models.PROTECT, related_name="campaigns")
    overlap = models.PositiveSmallIntegerField(default=3)
    guidelines = models.TextField(blank=True)
    task_questions = models.JSONField(
        default=dict,
        blank=True,
        help_text='question shown above the scores, per task, e.g. {"sentiment": "Is the sentiment stated '
        'correctly?"}; tasks left out use the built-in wording',
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.OPEN)
    # Correctness verdicts start empty and must be given; "not sure" (stored as null) is offered only
    # where the campaign allows it. Campaigns made before this field existed allowed it.
    allow_not_sure = models.BooleanField(
        default=False,
        help_text='offer "not sure" as a correctness verdict (else correct or incorrect is required)',
    )
    # Training rounds: after rating a gold pair the annotator is shown its known verdict.
    gold_feedback = models.BooleanField(
        default=False, help_text="after a gold pair is rated, show the annotator its known verdict"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    # when the guidelines last changed: the rating page opens them on a first visit and after a change
    guidelines_updated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(overlap__gte=1), name="campaign_overlap_positive")]
        ordering = ["-id"]

    def __str__(self) -> str:
        return self.name

    def save(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        """Save, stamping `guidelines_updated_at` whenever the guidelines text is new or changed."""
        if self.guidelines:
            before = None
            if not self._state.adding:
                stored = type(self)._default_manager.filter(pk=self.pk)
                before = stored.values_list("guidelines", flat=True).first()
            if before != self.guidelines:
                self.guidelines_updated_at = timezone.now()
                update_fields = kwargs.get("update_fields")
                if update_fields is not None and "guidelines" in update_fields:
                    kwargs["update_fields"] = {*update_fields, "guidelines_updated_at"}
        super().save(*args, **kwargs)

    def question_for(self, task: str) -> str:
        questions = self.task_questions if isinstance(self.task_questions, dict) else {}
        text = questions.get(task) or DEFAULT_TASK_QUESTIONS.get(task) or FALLBACK_QUESTION
        return str(text)


class GoldPreference(models.TextChoices):
    """A gold pair's known verdict, in role terms (never left/right: sides are drawn per assignment)."""

    FINETUNED = "finetuned"
    PRETRAINED = "pretrained"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Pair(models.Model):
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="pairs")
    prompt = models.ForeignKey(Prompt, on_delete=models.PROTECT, related_name="+")
    pretrained_answer = models.ForeignKey(Answer, on_delete=models.PROTECT, related_name="+")
    finetuned_answer = models.ForeignKey(Answer, on_delete=models.PROTECT, related_name="+")
    # Gold pairs: a known verdict to check annotators against. Served blind like any other pair; only
    # the report reads these. Empty preference = not a gold pair.
    gold_preference = models.CharField(max_length=10, choices=GoldPreference.choices, blank=True)
    gold_correct_pretrained = models.BooleanField(null=True, blank=True)
    gold_correct_finetuned = models.BooleanField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "prompt"], name="pair_unique_per_prompt")]
        ordering = ["id"]

    @property
    def is_gold(self) -> bool:
        return bool(self.gold_preference)


class Side(models.TextChoices):
    LEFT = "left"
    RIGHT = "right"


class Assignment(models.Model):
    """One annotator's go at one pair. `finetuned_side` is drawn at random when it is made and kept,
    so a reload shows the same order; nothing annotator-facing ever exposes it."""

    pair = models.ForeignKey(Pair, on_delete=models.CASCADE, related_name="assignments")
    annotator = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="assignments"
    )
    finetuned_side = models.CharField(max_length=5, choices=Side.choices)
    created_at = models.DateTimeField(auto_now_add=True)
    # an open (unrated) assignment holds a slot of its pair until then; after that the slot returns
    locked_until = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    # set when the annotator skipped the pair unrated: the slot is free again and the pair comes back
    # to this annotator only after every other pair they could rate
    skipped_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pair", "annotator"], name="assignment_unique_per_pair_annotator")
        ]

    def role_at(self, side: str) -> str:
        return "finetuned" if side == self.finetuned_side else "pretrained"


class Preference(models.TextChoices):
    LEFT = "left"
    RIGHT = "right"
    TIE = "tie"
    BOTH_BAD = "both_bad"


class Rating(models.Model):
    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="rating")
    score_left = models.PositiveSmallIntegerField()
    score_right = models.PositiveSmallIntegerField()
    correct_left = models.BooleanField(null=True, blank=True)
    correct_right = models.BooleanField(null=True, blank=True)
    preference = models.CharField(max_length=10, choices=Preference.choices)
    comment = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)  # when the pair was first rated
    updated_at = models.DateTimeField(auto_now=True)
    revision = models.PositiveIntegerField(default=1)  # the number of the RatingRevision this row equals

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(score_left__gte=1, score_left__lte=5), name="rating_score_left_1_5"
            ),
            models.CheckConstraint(
                condition=Q(score_right__gte=1, score_right__lte=5), name="rating_score_right_1_5"
            ),
        ]


class RatingRevision(models.Model):
    """Every version of a rating, the current one included: one row per post of the form or API.
    `duration_ms` is that visit's time alone; `rated_at` when it was posted."""

    rating = models.ForeignKey(Rating, on_delete=models.CASCADE, related_name="revisions")
    number = models.PositiveIntegerField()
    score_left = models.PositiveSmallIntegerField()
    score_right = models.PositiveSmallIntegerField()
    correct_left = models.BooleanField(null=True, blank=True)
    correct_right = models.BooleanField(null=True, blank=True)
    preference = models.CharField(max_length=10, choices=Preference.choices)
    comment = models.TextField(blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    rated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rating", "number"], name="rating_revision_unique_number")
        ]
        ordering = ["rating_id", "number"]
