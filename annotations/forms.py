"""The HTML rating form (the API validates the same fields with its InputSerializer).

Correctness verdicts start empty and must be given: "Correct" or "Incorrect", plus "Not sure" only where
the campaign allows it (Campaign.allow_not_sure), so a forgotten verdict is caught instead of being
stored as "not sure" and dropping out of human accuracy."""

from __future__ import annotations

from django import forms

from .models import Preference, Rating
from .rating import MAX_VISIT_MS

SCORE_CHOICES = [(str(i), str(i)) for i in range(1, 6)]
# The posted value of each verdict; "not sure" needs a value of its own, because an empty post means
# "nothing chosen" (a required field left out), never "not sure".
NOT_SURE = "unsure"
VERDICTS = {"true": True, "false": False, NOT_SURE: None}
VERDICT_LABELS = {"true": "Correct", "false": "Incorrect", NOT_SURE: "Not sure"}


def verdict_choices(allow_not_sure: bool) -> list[tuple[str, str]]:
    """The verdicts offered, in the order shown: "Not sure" only where the campaign allows it."""
    values = ["true", "false", NOT_SURE] if allow_not_sure else ["true", "false"]
    return [(value, VERDICT_LABELS[value]) for value in values]


def verdict_missing_message(side: str, allow_not_sure: bool) -> str:
    """What an annotator reads next to a verdict they left out (or a "not sure" the campaign refuses)."""
    if allow_not_sure:
        return f"Say whether the {side} answer is correct, incorrect, or that you are not sure."
    return f"Say whether the {side} answer is correct or incorrect."


class RatingForm(forms.Form):
    score_left = forms.TypedChoiceField(
        choices=SCORE_CHOICES,
        coerce=int,
        error_messages={"required": "Give the left answer a score from 1 to 5."},
    )
    score_right = forms.TypedChoiceField(
        choices=SCORE_CHOICES,
        coerce=int,
        error_messages={"required": "Give the right answer a score from 1 to 5."},
    )
    # "true" / "false" / NOT_SURE (where allowed) → True / False / None; choices are set per campaign
    correct_left = forms.TypedChoiceField(coerce=VERDICTS.get, empty_value=None)
    correct_right = forms.TypedChoiceField(coerce=VERDICTS.get, empty_value=None)
    preference = forms.ChoiceField(
        choices=Preference.choices,
        error_messages={"required": "Choose which answer you prefer (or tie / both bad)."},
    )
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)
    # this visit's time on the page (annotate.js); see annotations.rating for the cap on the total
    duration_ms = forms.IntegerField(required=False, min_value=0, max_value=MAX_VISIT_MS)

    def __init__(self, *args, allow_not_sure: bool = False, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.allow_not_sure = allow_not_sure
        for side in ("left", "right"):
            field = self.fields[f"correct_{side}"]
            field.choices = verdict_choices(allow_not_sure)
            message = verdict_missing_message(side, allow_not_sure)
            field.error_messages = {**field.error_messages, "required": message, "invalid_choice": message}

    @classmethod
    def initial_from_rating(cls, rating: Rating) -> dict[str, str]:
        def as_choice(value: bool | None) -> str:
            return NOT_SURE if value is None else ("true" if value else "false")

        return {
            "score_left": str(rating.score_left),
            "score_right": str(rating.score_right),
            "correct_left": as_choice(rating.correct_left),
            "correct_right": as_choice(rating.correct_right),
            "preference": rating.preference,
            "comment": rating.comment,
        }
