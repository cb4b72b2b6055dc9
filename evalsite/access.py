"""Who may do what: the one place evalsite's role rules are written.

Three roles (`User.role`): annotators rate blinded pairs and nothing else (they must never learn which
model wrote which answer); researchers read reports, runs and exports; admins do everything a
researcher does and queue jobs and runs. A Django superuser counts as an admin. Researchers and
admins never annotate: they know which model is which, so their ratings would not be blind.

Every view and API class takes its rule from here: the predicates, DRF permission classes for API
views, and `require` / `RoleRequiredMixin` for HTML views.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib.auth.mixins import AccessMixin
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from rest_framework.permissions import BasePermission

ANNOTATOR = "annotator"
RESEARCHER = "researcher"
ADMIN = "admin"
ROLES = (ANNOTATOR, RESEARCHER, ADMIN)


def is_annotator(user: Any) -> bool:
    return bool(user and user.is_authenticated and getattr(user, "role", None) == ANNOTATOR)


def can_read_reports(user: Any) -> bool:
    """Researchers and admins: reports, exports, fine-tuning runs."""
    return bool(
        user
        and user.is_authenticated
        and (getattr(user, "role", None) in (RESEARCHER, ADMIN) or getattr(user, "is_superuser", False))
    )


def is_admin(user: Any) -> bool:
    """evalsite admins: everything researchers may, plus queueing jobs and runs."""
    return bool(
        user
        and user.is_authenticated
        and (getattr(user, "role", None) == ADMIN or getattr(user, "is_superuser", False))
    )


ANNOTATOR_MESSAGE = "Only annotators can rate pairs."
READER_MESSAGE = "Only researchers and admins can read reports."
ADMIN_MESSAGE = "Only evalsite admins can do this."


class Rule:
    """A named rule: its predicate and the message a refused user sees."""

    def __init__(self, allows: Callable[[Any], bool], message: str) -> None:
        self.allows = allows
        self.message = message


ANNOTATE = Rule(is_annotator, ANNOTATOR_MESSAGE)
READ_REPORTS = Rule(can_read_reports, READER_MESSAGE)
ADMINISTER = Rule(is_admin, ADMIN_MESSAGE)


# ---- API views (DRF) ---------------------------------------------------------------------------


class IsAnnotator(BasePermission):
    message = ANNOTATOR_MESSAGE

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_annotator(request.user)


class IsReportReader(BasePermission):
    message = READER_MESSAGE

    def has_permission(self, request: Any, view: Any) -> bool:
        return can_read_reports(request.user)


class IsEvalsiteAdmin(BasePermission):
    message = ADMIN_MESSAGE

    def has_permission(self, request: Any, view: Any) -> bool:
        return is_admin(request.user)


class ReadersReadAdminsWrite(BasePermission):
    """GET for researchers and admins, anything else for admins only."""

    message = ADMIN_MESSAGE

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return can_read_reports(request.user)
        return is_admin(request.user)


# ---- HTML views ---------------------------------------------------------------------------------


def require(rule: Rule, request: HttpRequest) -> None:
    """Raise PermissionDenied (403) unless the request's user passes `rule`."""
    if not rule.allows(request.user):
        raise PermissionDenied(rule.message)


def role_required(rule: Rule) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Function views: anonymous users go to the login page, users of another role get 403."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            require(rule, request)
            return view(request, *args, **kwargs)

        wrapped.__name__ = view.__name__
        wrapped.__doc__ = view.__doc__
        return wrapped

    return decorate


class RoleRequiredMixin(AccessMixin):
    """Class-based views: set `rule`; anonymous users go to the login page, other roles get 403."""

    rule: Rule

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        if not request.user.is_authenticated:
            return self.handle_no_permission()
        require(self.rule, request)
        return super().dispatch(request, *args, **kwargs)
