from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Count

from .models import Assignment, Campaign, Pair, Rating, User


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    list_display = ("username", "role", "is_staff", "is_active", "last_login")
    list_filter = ("role", "is_staff", "is_active")
    fieldsets = ((None, {"fields": ("role",)}),) + DjangoUserAdmin.fieldsets
    add_fieldsets = DjangoUserAdmin.add_fieldsets + ((None, {"fields": ("role",)}),)


@admin.action(description="Close the selected campaigns (ratings become read-only)")
def close_campaigns(modeladmin, request, queryset):
    queryset.update(status=Campaign.Status.CLOSED)


@admin.action(description="Reopen the selected campaigns")
def open_campaigns(modeladmin, request, queryset):
    queryset.update(status=Campaign.Status.OPEN)


@admin.register(Campaign)
class CampaignAdmin(admin.ModelAdmin):
    list_display = ("id", "name", "job", "status", "overlap", "pair_count", "created_at")
    list_filter = ("status",)
    search_fields = ("name",)
    actions = [close_campaigns, open_campaigns]
    raw_id_fields = ("job",)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_pair_count=Count("pairs"))

    @admin.display(description="pairs", ordering="_pair_count")
    def pair_count(self, obj):
        return obj._pair_count


@admin.register(Pair)
class PairAdmin(admin.ModelAdmin):
    list_display = ("id", "campaign", "prompt", "pretrained_answer", "finetuned_answer")
    list_filter = ("campaign",)
    raw_id_fields = ("prompt", "pretrained_answer", "finetuned_answer")


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ("id", "pair", "annotator", "finetuned_side", "locked_until", "completed_at", "skipped_at")
    list_filter = ("pair__campaign", "finetuned_side")
    raw_id_fields = ("pair", "annotator")


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
        "duration_ms",
        "updated_at",
    )
    list_filter = ("assignment__pair__campaign", "preference")
    raw_id_fields = ("assignment",)
