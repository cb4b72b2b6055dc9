"""Requests the annotation side refuses an annotator. Every message is safe to show to an annotator:
none names a model, a role or a side."""

from __future__ import annotations


class AnnotationError(Exception):
    """A request the annotation side refuses; the message is safe to show to an annotator."""


class CampaignClosed(AnnotationError):
    def __init__(self) -> None:
        super().__init__("This campaign is closed; ratings can no longer be added or changed.")


class PairFull(AnnotationError):
    def __init__(self) -> None:
        super().__init__("This pair already has all the ratings it needs; please take the next one.")
