"""The role rules in evalsite.access: who passes which rule, and what a refused visitor gets."""

from __future__ import annotations

from io import StringIO

import pytest
from django.contrib.auth.models import AnonymousUser
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.core.management import call_command
from django.http import HttpRequest, HttpResponse
from django.test import RequestFactory
from django.views import View

from annotations.models import User
from evalsite import access

pytestmark = pytest.mark.django_db


def _user(role: str, *, superuser: bool = False) -> User:
    user = User.objects.create_user(username=f"{role}-{superuser}", password="x" * 12, role=role)
    if superuser:  # flags set behind the role's back (a raw UPDATE, a row from before roles ruled)
        User.objects.filter(pk=user.pk).update(is_staff=True, is_superuser=True)
        user.refresh_from_db()
    return user


def test_each_role_passes_exactly_its_rules():
    annotator, researcher, admin = _user("annotator"), _user("researcher"), _user("admin")
    superuser = _user("annotator", superuser=True)
    table = {
        "anonymous": (AnonymousUser(), (False, False, False)),
        "annotator": (annotator, (True, False, False)),
        "researcher": (researcher, (False, True, False)),
        "admin": (admin, (False, True, True)),
        # the role decides: a superuser flag alone opens nothing
        "superuser": (superuser, (True, False, False)),
    }
    for name, (user, expected) in table.items():
        got = tuple(rule.allows(user) for rule in (access.ANNOTATE, access.READ_REPORTS, access.ADMINISTER))
        assert got == expected, name
    assert not access.is_annotator(None) and not access.can_read_reports(None) and not access.is_admin(None)


def test_user_role_properties_follow_the_rules():
    for role in access.ROLES:
        user = _user(role)
        assert user.can_read_reports == access.can_read_reports(user)
        assert user.is_evalsite_admin == access.is_admin(user)


class _AnnotatorPage(access.RoleRequiredMixin, View):
    rule = access.ANNOTATE

    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse("ok")


@access.role_required(access.READ_REPORTS)
def _report_page(request: HttpRequest) -> HttpResponse:
    """A report page."""
    return HttpResponse("ok")


def _get(path: str, user: User | AnonymousUser) -> HttpRequest:
    request = RequestFactory().get(path)
    request.user = user
    return request


@pytest.mark.parametrize("view", [_AnnotatorPage.as_view(), _report_page])
def test_anonymous_visitors_go_to_the_login_page_with_next_as_django_sends_them(view):
    request = _get("/annotate/campaigns/3/?a=1&b=two words", AnonymousUser())
    response = view(request)
    assert response.status_code == 302
    assert response["Location"] == redirect_to_login(request.get_full_path())["Location"]
    assert response["Location"].startswith("/login/?next=/annotate/campaigns/3/")


def test_another_role_gets_403_with_the_rule_message():
    with pytest.raises(PermissionDenied, match=r"^Only annotators can rate pairs\.$"):
        _AnnotatorPage.as_view()(_get("/annotate/", _user("researcher")))
    with pytest.raises(PermissionDenied, match=r"^Only researchers and admins can read reports\.$"):
        _report_page(_get("/campaigns/", _user("annotator")))
    assert _report_page(_get("/campaigns/", _user("admin"))).content == b"ok"
    assert _report_page.__name__ == "_report_page" and _report_page.__doc__ == "A report page."


def test_is_staff_and_is_superuser_follow_the_role_however_the_row_is_saved():
    user = _user("annotator")
    assert (user.is_staff, user.is_superuser) == (False, False)
    user.role = "admin"
    user.save(update_fields=["role"])
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (True, True)
    user.role = "researcher"
    user.is_superuser = True  # ignored: the role decides
    user.save()
    user.refresh_from_db()
    assert (user.is_staff, user.is_superuser) == (False, False)


def test_createsuperuser_makes_an_evalsite_admin():
    args = ["--no-input", "--username", "root", "--email", "r@example.org"]
    call_command("createsuperuser", *args, stdout=StringIO())
    root = User.objects.get(username="root")
    assert (root.role, root.is_staff, root.is_superuser) == ("admin", True, True)
