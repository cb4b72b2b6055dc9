"""Who may do what: the one place evalsite's role rules are written.

Three roles (`User.role`): annotators rate blinded pairs and nothing else (they must never learn which
model wrote which answer); researchers read reports, runs and exports; admins do everything a
researcher does and queue jobs and runs, use the Django admin and export real usernames. Researchers
and admins never annotate: they know which model is which, so their ratings would not be blind.

Every rule reads the role and nothing else: Django's `is_staff` / `is_superuser` flags follow the role
(`User.save`), but a flag left set by other means opens nothing the role does not, the Django admin's
own door included (`may_use_django_admin`, installed in evalsite/urls.py).

Every view and API class takes its rule from here: the predicates, DRF permission classes for API
views, and `require` / `role_required` / `RoleRequiredMixin` for HTML views. `User`'s role properties
(used by templates) delegate to the predicates.

This module is imported by `annotations.models` before the user model is registered, so it must not
import `django.contrib.auth.views`, `.mixins` or `.forms` (their forms call `get_user_model()` when
imported); the login redirect is written out below instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, QueryDict
from django.shortcuts import resolve_url
from rest_framework.permissions import BasePermission

if TYPE_CHECKING:
    from django.contrib.auth.base_user import AbstractBaseUser
    from django.contrib.auth.models import AnonymousUser
    from rest_framework.request import Request
    from rest_framework.views import APIView

    SiteUser = AbstractBaseUser | AnonymousUser | None

ANNOTATOR = "annotator"
RESEARCHER = "researcher"
ADMIN = "admin"
ROLES = (ANNOTATOR, RESEARCHER, ADMIN)


def _role(user: SiteUser) -> str | None:
    # evalsite's user model has `role`; reading it by name keeps this module free of annotations.models
    return getattr(user, "role", None)


def is_annotator(user: SiteUser) -> bool:
    return bool(user and user.is_authenticated and _role(user) == ANNOTATOR)


def can_read_reports(user: SiteUser) -> bool:
    """Researchers and admins: reports, exports (with pseudonyms), fine-tuning runs."""
    return bool(user and user.is_authenticated and _role(user) in (RESEARCHER, ADMIN))


def is_admin(user: SiteUser) -> bool:
    """evalsite admins: everything researchers may, plus queueing jobs and runs."""
    return bool(user and user.is_authenticated and _role(user) == ADMIN)


def may_use_django_admin(request: HttpRequest) -> bool:
    """The Django admin's door (`AdminSite.has_permission`): active evalsite admins, by role, not by
    `is_staff`. Admin pages show which answer is which model."""
    return is_admin(request.user) and bool(getattr(request.user, "is_active", False))


def may_export_usernames(user: SiteUser) -> bool:
    """Real usernames in score exports: admins only; researchers always get the pseudonyms."""
    return is_admin(user)


ANNOTATOR_MESSAGE = "Only annotators can rate pairs."
READER_MESSAGE = "Only researchers and admins can read reports."
ADMIN_MESSAGE = "Only evalsite admins can do this."
USERNAMES_MESSAGE = "Only evalsite admins can export real usernames; researchers get pseudonyms."


@dataclass(frozen=True)
class Rule:
    """A named rule: its predicate and the message a refused user sees."""

    allows: Callable[[SiteUser], bool]
    message: str


ANNOTATE = Rule(is_annotator, ANNOTATOR_MESSAGE)
READ_REPORTS = Rule(can_read_reports, READER_MESSAGE)
ADMINISTER = Rule(is_admin, ADMIN_MESSAGE)
EXPORT_USERNAMES = Rule(may_export_usernames, USERNAMES_MESSAGE)


# ---- API views (DRF) ---------------------------------------------------------------------------


class IsAnnotator(BasePermission):
    message = ANNOTATOR_MESSAGE

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_annotator(request.user)


class IsReportReader(BasePermission):
    message = READER_MESSAGE

    def has_permission(self, request: Request, view: APIView) -> bool:
        return can_read_reports(request.user)


class IsEvalsiteAdmin(BasePermission):
    message = ADMIN_MESSAGE

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_admin(request.user)


class ReadersReadAdminsWrite(BasePermission):
    """GET for researchers and admins, anything else for admins only."""

    message = ADMIN_MESSAGE

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return can_read_reports(request.user)
        return is_admin(request.user)


# ---- HTML views ---------------------------------------------------------------------------------


def require(rule: Rule, request: HttpRequest) -> None:
    """Raise PermissionDenied (403) unless the request's user passes `rule`."""
    if not rule.allows(request.user):
        raise PermissionDenied(rule.message)


def login_redirect(request: HttpRequest) -> HttpResponseRedirect:
    """To the login page with `?next=` this request's path: what Django's `redirect_to_login` answers
    (see the module docstring for why it is not imported)."""
    login_url = resolve_url(settings.LOGIN_URL)
    base, _, query = login_url.partition("?")
    querystring = QueryDict(query, mutable=True)
    querystring[REDIRECT_FIELD_NAME] = request.get_full_path()
    return HttpResponseRedirect(f"{base}?{querystring.urlencode(safe='/')}")


def role_required(rule: Rule) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Function views: anonymous users go to the login page, users of another role get 403."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not request.user.is_authenticated:
                return login_redirect(request)
            require(rule, request)
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


class RoleRequiredMixin:
    """Class-based views: set `rule`; anonymous users go to the login page, other roles get 403."""

    rule: Rule

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            return login_redirect(request)
        require(self.rule, request)
        return super().dispatch(request, *args, **kwargs)  # type: ignore[misc]
