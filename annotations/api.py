"""Annotator API: the next blinded pair, ratings and skips. Thin views over annotations.assignment and
annotations.rating.

Blinding: responses carry only the assignment id, the prompt and the two texts as "left"/"right".
Nothing here may name a model, an adapter, a role or an answer id.
"""

from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_serializer
from rest_framework import serializers, status
from rest_framework.exceptions import APIException, NotFound, PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from evalsite.access import IsAnnotator

from .assignment import annotator_progress, assignment_next, assignment_skip, blinded_texts
from .errors import AnnotationError, CampaignClosed
from .models import Assignment, Campaign, Pair, Preference, User
from .rating import MAX_TOTAL_MS, MAX_VISIT_MS, rating_submit

# Correctness verdicts: null (or left out) is "not sure", which only some campaigns accept.
VERDICT_HELP = (
    "true = correct, false = incorrect, null = not sure; null (or leaving the field out) is accepted only "
    'where the campaign allows "not sure", else a 400 naming the field'
)
NOT_SURE_REFUSED = (
    "This campaign needs a verdict of correct (true) or incorrect (false); it does not allow "
    '"not sure" (null).'
)


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_code = "conflict"


def _refusal(error: AnnotationError) -> APIException:
    if isinstance(error, CampaignClosed):
        return PermissionDenied(str(error))
    return Conflict(str(error))


def _annotator_campaign(request: Request, campaign_id: int) -> Campaign:
    # A closed campaign this annotator had no pair in is a 404, exactly like one that does not exist.
    return get_object_or_404(Campaign.objects.visible_to_annotator(request.user), pk=campaign_id)


def _annotator_assignment(request: Request, assignment_id: int) -> Assignment:
    # Someone else's assignment and a missing one look the same: 404.
    assignment = (
        Assignment.objects.select_related("pair__campaign")
        .filter(pk=assignment_id, annotator=request.user)
        .first()
    )
    if assignment is None:
        raise NotFound("No such assignment.")
    return assignment


@extend_schema_serializer(component_name="AnnotationProgress")
class ProgressSerializer(serializers.Serializer):
    done = serializers.IntegerField(help_text="pairs this annotator has rated in the campaign")
    total = serializers.IntegerField(
        help_text="pairs this annotator can rate in the campaign (done included)"
    )


@extend_schema_serializer(component_name="AnnotationPrompt")
class PromptSerializer(serializers.Serializer):
    task = serializers.CharField()
    text = serializers.CharField()
    context = serializers.CharField(allow_blank=True)


@extend_schema_serializer(component_name="AnnotationAnswer")
class BlindedAnswerSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)


class CampaignNextApi(APIView):
    """The annotator's next blinded pair in a campaign."""

    permission_classes = [IsAnnotator]

    @extend_schema_serializer(component_name="AnnotationNext")
    class OutputSerializer(serializers.Serializer):
        assignment = serializers.IntegerField()
        prompt = PromptSerializer()
        question = serializers.CharField(
            help_text="what to judge for this prompt's task, shown above the scores"
        )
        left = BlindedAnswerSerializer()
        right = BlindedAnswerSerializer()
        progress = ProgressSerializer()

    @extend_schema(
        operation_id="campaign_next",
        responses={
            200: OutputSerializer,
            204: OpenApiResponse(description="Nothing is left for this annotator in this campaign."),
            403: OpenApiResponse(description="Not an annotator, or a campaign they rated in is closed."),
            404: OpenApiResponse(description="No such campaign (or a closed one they had no pair in)."),
        },
    )
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = _annotator_campaign(request, campaign_id)
        try:
            assignment = assignment_next(campaign=campaign, annotator=request.user)
        except AnnotationError as error:
            raise _refusal(error) from None
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        # one query for the prompt and both answers instead of three lazy ones (hot path under load)
        assignment.pair = Pair.objects.select_related("prompt", "pretrained_answer", "finetuned_answer").get(
            pk=assignment.pair_id
        )
        assignment.pair.campaign = campaign
        return Response(self.OutputSerializer(next_payload(assignment, annotator=request.user)).data)


def next_payload(assignment: Assignment, *, annotator: User) -> dict[str, object]:
    """The blinded view of an assignment: answers placed by the stored side, labelled only left/right."""
    pair = assignment.pair
    prompt = pair.prompt
    left, right = blinded_texts(assignment)
    progress = annotator_progress(campaign=pair.campaign, annotator=annotator)
    return {
        "assignment": assignment.pk,
        "prompt": {"task": prompt.task, "text": prompt.text, "context": prompt.context},
        "question": pair.campaign.question_for(prompt.task),
        "left": {"text": left},
        "right": {"text": right},
        "progress": {"done": progress.done, "total": progress.total},
    }


class AssignmentRatingApi(APIView):
    """Rate an assignment (201), or change one's rating of it (200)."""

    permission_classes = [IsAnnotator]

    @extend_schema_serializer(component_name="RatingInput")
    class InputSerializer(serializers.Serializer):
        score_left = serializers.IntegerField(min_value=1, max_value=5)
        score_right = serializers.IntegerField(min_value=1, max_value=5)
        correct_left = serializers.BooleanField(
            allow_null=True, required=False, default=None, help_text=VERDICT_HELP
        )
        correct_right = serializers.BooleanField(
            allow_null=True, required=False, default=None, help_text=VERDICT_HELP
        )
        preference = serializers.ChoiceField(choices=Preference.choices)
        comment = serializers.CharField(allow_blank=True, required=False, default="", max_length=5000)
        duration_ms = serializers.IntegerField(
            min_value=0,
            max_value=MAX_VISIT_MS,
            allow_null=True,
            required=False,
            default=None,
            help_text=f"milliseconds spent on the pair in this visit (at most {MAX_VISIT_MS}); added to "
            f"the rating's total, which stops at {MAX_TOTAL_MS}",
        )

        def _verdict(self, value: bool | None) -> bool | None:
            campaign = self.context["campaign"]
            if value is None and not campaign.allow_not_sure:
                raise serializers.ValidationError(NOT_SURE_REFUSED)
            return value

        def validate_correct_left(self, value: bool | None) -> bool | None:
            return self._verdict(value)

        def validate_correct_right(self, value: bool | None) -> bool | None:
            return self._verdict(value)

    @extend_schema_serializer(component_name="RatingOutput")
    class OutputSerializer(serializers.Serializer):
        assignment = serializers.IntegerField(source="assignment_id")
        score_left = serializers.IntegerField()
        score_right = serializers.IntegerField()
        correct_left = serializers.BooleanField(allow_null=True)
        correct_right = serializers.BooleanField(allow_null=True)
        preference = serializers.CharField()
        comment = serializers.CharField(allow_blank=True)
        duration_ms = serializers.IntegerField(
            allow_null=True, help_text="milliseconds spent on the pair over every visit"
        )

    @extend_schema(
        operation_id="assignment_rating",
        request=InputSerializer,
        responses={
            200: OutputSerializer,
            201: OutputSerializer,
            400: OpenApiResponse(description="Invalid values; the body names each field that is wrong."),
            403: OpenApiResponse(description="Not an annotator, or the campaign is closed."),
            404: OpenApiResponse(description="No such assignment for this annotator."),
            409: OpenApiResponse(description="The pair already has all its ratings (the lock had expired)."),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = _annotator_assignment(request, assignment_id)
        serializer = self.InputSerializer(data=request.data, context={"campaign": assignment.pair.campaign})
        serializer.is_valid(raise_exception=True)
        try:
            result = rating_submit(
                assignment=assignment, annotator=request.user, **serializer.validated_data
            )
        except AnnotationError as error:
            raise _refusal(error) from None
        if result is None:
            raise NotFound("No such assignment.")
        rating, created = result
        return Response(
            self.OutputSerializer(rating).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class AssignmentSkipApi(APIView):
    """Leave an unrated assignment without rating it; its slot goes back to the pool."""

    permission_classes = [IsAnnotator]

    @extend_schema(
        operation_id="assignment_skip",
        request=None,
        responses={
            204: OpenApiResponse(description="Skipped."),
            404: OpenApiResponse(description="No such assignment."),
        },
    )
    def post(self, request: Request, assignment_id: int) -> Response:
        assignment = _annotator_assignment(request, assignment_id)
        if assignment_skip(assignment=assignment, annotator=request.user) is None:
            raise NotFound("No such assignment.")
        return Response(status=status.HTTP_204_NO_CONTENT)
