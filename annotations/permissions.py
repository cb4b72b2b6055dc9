"""Who may annotate: people with the annotator role, and nobody else (researchers and admins know which
model is which, so their ratings would not be blind)."""

from __future__ import annotations

from django.contrib.auth.mixins import AccessMixin
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission


def is_annotator(user) -> bool:
    return bool(user and user.is_authenticated and getattr(user, "is_annotator", False))


class IsAnnotator(BasePermission):
    message = "Only annotators can rate pairs."

    def has_permission(self, request, view) -> bool:
        return is_annotator(request.user)


class AnnotatorRequiredMixin(AccessMixin):
    """Class-based HTML views: anonymous → login page; any role other than annotator → 403."""

    def dispatch(self, request, *args, **kwargs):
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        if not is_annotator(request.user):
            raise PermissionDenied("Only annotators can rate pairs.")
        return super().dispatch(request, *args, **kwargs)
