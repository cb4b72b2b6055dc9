"""The HTML rating form (the API validates the same fields with its InputSerializer)."""

from __future__ import annotations

from django import forms

from .models import Preference, Rating
from .rating import MAX_VISIT_MS

SCORE_CHOICES = [(str(i), str(i)) for i in range(1, 6)]
CORRECT_CHOICES = [("true", "Correct"), ("false", "Incorrect"), ("", "Not sure")]


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
    # NullBooleanField: "true"/"false" → True/False, anything else (e.g. "") → None = not judged
    correct_left = forms.NullBooleanField(required=False)
    correct_right = forms.NullBooleanField(required=False)
    preference = forms.ChoiceField(
        choices=Preference.choices,
        error_messages={"required": "Choose which answer you prefer (or tie / both bad)."},
    )
    comment = forms.CharField(required=False, max_length=5000, widget=forms.Textarea)
    # this visit's time on the page (annotate.js); see annotations.rating for the cap on the total
    duration_ms = forms.IntegerField(required=False, min_value=0, max_value=MAX_VISIT_MS)

    @classmethod
    def initial_from_rating(cls, rating: Rating) -> dict[str, str]:
        def as_choice(value: bool | None) -> str:
            return "" if value is None else ("true" if value else "false")

        return {
            "score_left": str(rating.score_left),
            "score_right": str(rating.score_right),
            "correct_left": as_choice(rating.correct_left),
            "correct_right": as_choice(rating.correct_right),
            "preference": rating.preference,
            "comment": rating.comment,
        }
