"""`GET /api/campaigns/`: the campaigns a user may use, a page at a time (evalsite.pagination).

Researchers and admins get every campaign with its job, options and counts. Annotators get only the
campaigns `Campaign.objects.visible_to_annotator` gives them (the open ones and the closed ones they
rated in), each with its name, status and their own progress: no job, no model, no counts of others'
work, and they cannot filter by job. This lives apart from annotations.api, whose every answer is
blinded, because the readers' answer names the job.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet
from drf_spectacular.utils import PolymorphicProxySerializer, extend_schema
from rest_framework import generics, serializers
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request
from rest_framework.response import Response

from evalsite.access import IsAnnotator, IsReportReader, can_read_reports
from evalsite.pagination import PAGE_HEADERS, ListPagination, query_filters

from .assignment import annotator_progress
from .models import Campaign


class CampaignListFilters(serializers.Serializer):
    status = serializers.ChoiceField(choices=Campaign.Status.choices, required=False)
    job = serializers.IntegerField(
        min_value=1, required=False, help_text="the job's id (researchers, admins)"
    )


class ReaderCampaignOutput(serializers.ModelSerializer):
    """A campaign as researchers and admins see it."""

    job_name = serializers.CharField(source="job.name", read_only=True)
    pairs = serializers.IntegerField(source="n_pairs", read_only=True, help_text="pairs in the campaign")
    ratings = serializers.IntegerField(source="n_ratings", read_only=True, help_text="ratings so far")

    class Meta:
        model = Campaign
        fields = [
            "id",
            "name",
            "status",
            "job",
            "job_name",
            "overlap",
            "allow_not_sure",
            "gold_feedback",
            "pairs",
            "ratings",
            "created_at",
        ]
        read_only_fields = fields


class AnnotatorCampaignOutput(serializers.Serializer):
    """A campaign as an annotator sees it: nothing about the job or the models."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    status = serializers.CharField()
    done = serializers.SerializerMethodField(help_text="pairs this annotator has rated here")
    total = serializers.SerializerMethodField(help_text="pairs this annotator can rate here (done included)")

    def _progress(self, campaign: Campaign) -> Any:
        cache = self.context.setdefault("_progress", {})
        if campaign.pk not in cache:
            cache[campaign.pk] = annotator_progress(campaign=campaign, annotator=self.context["request"].user)
        return cache[campaign.pk]

    def get_done(self, campaign: Campaign) -> int:
        return self._progress(campaign).done

    def get_total(self, campaign: Campaign) -> int:
        return self._progress(campaign).total


CAMPAIGN_ITEM = PolymorphicProxySerializer(
    component_name="CampaignListItem",
    serializers=[ReaderCampaignOutput, AnnotatorCampaignOutput],
    resource_type_field_name=None,
    many=True,
)


class CampaignListApi(generics.ListAPIView):
    """Campaigns, newest first; `?status=open|closed`, `?job=ID` (researchers and admins)."""

    permission_classes = [IsAnnotator | IsReportReader]
    pagination_class = ListPagination

    def get_serializer_class(self) -> type[serializers.Serializer]:
        return ReaderCampaignOutput if can_read_reports(self.request.user) else AnnotatorCampaignOutput

    def get_queryset(self) -> QuerySet[Campaign]:
        filters = query_filters(CampaignListFilters, self.request)
        reader = can_read_reports(self.request.user)
        if "job" in filters and not reader:
            raise ValidationError({"job": ["Annotators cannot filter by job."]})
        if reader:
            campaigns = Campaign.objects.select_related("job").annotate(
                n_pairs=Count("pairs", distinct=True),
                n_ratings=Count("pairs__assignments__rating", distinct=True),
            )
        else:
            campaigns = Campaign.objects.visible_to_annotator(self.request.user)
        if "status" in filters:
            campaigns = campaigns.filter(status=filters["status"])
        if "job" in filters:
            campaigns = campaigns.filter(job_id=filters["job"])
        return campaigns.order_by("-id")

    @extend_schema(
        operation_id="campaigns_list",
        parameters=[CampaignListFilters, *PAGE_HEADERS],
        responses=CAMPAIGN_ITEM,
        description="Researchers and admins get every campaign with its job and counts; annotators get "
        "the campaigns they may rate in (and closed ones they rated in) with their own progress only.",
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)
