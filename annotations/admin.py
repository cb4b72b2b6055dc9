"""Django admin for users (with their role), campaigns (close / reopen), gold pairs, assignments and
ratings. Admin pages show which answer is which model: only evalsite admins reach them."""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count, QuerySet
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse

from .models import Assignment, Campaign, Pair, Rating, RatingRevision, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Users with their role. The role decides everything: staff and superuser status follow it (shown,
    not editable; see `User.save`), and changing it or the password replaces the user's API token."""

    list_display = ("username", "role", "is_staff", "is_active", "last_login")
    list_filter = ("role", "is_staff", "is_active")
    fieldsets = ((None, {"fields": ("role",)}),) + DjangoUserAdmin.fieldsets
    add_fieldsets = DjangoUserAdmin.add_fieldsets + ((None, {"fields": ("role",)}),)
    readonly_fields = ("is_staff", "is_superuser")


@admin.action(description="Close the selected campaigns (ratings become read-only)")
def close_campaigns(modeladmin: CampaignAdmin, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
    queryset.update(status=Campaign.Status.CLOSED)


@admin.action(description="Reopen the selected campaigns")
def open_campaigns(modeladmin: CampaignAdmin, request: HttpRequest, queryset: QuerySet[Campaign]) -> None:
    queryset.update(status=Campaign.Status.OPEN)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "job", "status", "overlap", "pair_count", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    actions = [close_campaigns, open_campaigns]
    raw_id_fields = ("job",)
    fields = (
        "name", "job", "overlap", "status", "guidelines", "task_questions", "allow_not_sure", "gold_feedback",
    )  # fmt: skip

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context: dict | None = None):  # type: ignore[no-untyped-def]
        """A campaign is opened from a finished job's page (name, overlap, guidelines with a preview,
        questions per task, gold), where its pairs are made; not from a raw job id and raw JSON here."""
        messages.info(request, "Open a campaign from a finished job's page: “Open a campaign on this job”.")
        return HttpResponseRedirect(reverse("job-list") + "?status=succeeded")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Campaign]:
        return super().get_queryset(request).annotate(_pair_count=Count("pairs"))

    @admin.display(description="pairs", ordering="_pair_count")
    def pair_count(self, obj: Campaign) -> int:
        return obj._pair_count  # type: ignore[attr-defined]  # annotated by get_queryset


class GoldFilter(admin.SimpleListFilter):
    title = "gold"
    parameter_name = "gold"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        return [("yes", "gold pairs"), ("no", "ordinary pairs")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Pair]) -> QuerySet[Pair]:
        if self.value() == "yes":
            return queryset.exclude(gold_preference="")
        if self.value() == "no":
            return queryset.filter(gold_preference="")
        return queryset


@admin.action(description="Stop treating the selected pairs as gold")
def clear_gold(modeladmin: PairAdmin, request: HttpRequest, queryset: QuerySet[Pair]) -> None:
    queryset.update(gold_preference="", gold_correct_pretrained=None, gold_correct_finetuned=None)


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    """Gold verdicts are set here (or with `create_campaign --gold`): the preference is in role terms."""

    list_display = (
        "id",
        "campaign",
        "prompt",
        "pretrained_answer",
        "finetuned_answer",
        "gold_preference",
        "gold_correct_pretrained",
        "gold_correct_finetuned",
    )
    list_filter = ("campaign", GoldFilter)
    list_editable = ("gold_preference", "gold_correct_pretrained", "gold_correct_finetuned")
    raw_id_fields = ("prompt", "pretrained_answer", "finetuned_answer")
    actions = [clear_gold]
    fieldsets = (
        (None, {"fields": ("campaign", "prompt", "pretrained_answer", "finetuned_answer")}),
        (
            "Gold verdict (leave the preference empty for an ordinary pair)",
            {"fields": ("gold_preference", "gold_correct_pretrained", "gold_correct_finetuned")},
        ),
    )


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "pair", "annotator", "finetuned_side", "locked_until", "completed_at", "skipped_at")
    list_filter = ("pair__campaign", "finetuned_side")
    raw_id_fields = ("pair", "annotator")


class RatingRevisionInline(admin.TabularInline):
    """Every version of the rating, the current one included (read-only: history is not edited)."""

    model = RatingRevision
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "number", "score_left", "score_right", "correct_left", "correct_right", "preference", "comment",
        "duration_ms", "rated_at",
    )  # fmt: skip

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "assignment",
        "score_left",
        "score_right",
        "correct_left",
        "correct_right",
        "preference",
        "comment",
        "revision",
        "duration_ms",
        "created_at",
        "updated_at",
    )
    list_filter = ("assignment__pair__campaign", "preference")
    search_fields = ("comment",)
    raw_id_fields = ("assignment",)
    inlines = [RatingRevisionInline]
