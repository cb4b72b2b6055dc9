"""The site's shell with DEBUG off, as in production: `/favicon.ico` is answered, and 403, 404 and 500
are the site's own styled pages, saying what happened and nothing about the code behind it."""

from __future__ import annotations

import re

import pytest
from django.http import HttpRequest
from django.urls import include, path

from tests.support.annotation_data import make_campaign

pytestmark = pytest.mark.django_db

INTERNALS = ["Traceback", "DEBUG", "django", "Django", "matches the given query", "Assignment", "urls.py"]


def boom(request: HttpRequest):
    raise RuntimeError("secret-internal-detail-42")


urlpatterns = [path("boom/", boom), path("", include("evalsite.urls"))]


@pytest.fixture(autouse=True)
def production_debug(settings):
    settings.DEBUG = False


def assert_styled(response, status: int, marker: str) -> str:
    assert response.status_code == status
    html = response.content.decode()
    assert f'id="error-{status}"' in html and marker in html
    assert '<link rel="stylesheet" href="/static/css/site.css">' in html
    assert 'rel="icon"' in html
    assert "style=" not in html and re.search(r"<script(?![^>]*\bsrc=)", html) is None  # the CSP holds
    for word in INTERNALS:
        assert word not in html, word
    return html


def test_favicon_ico_is_answered_with_the_site_icon(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"
    icon = client.get(response["Location"])
    assert icon.status_code == 200 and icon["Content-Type"].startswith("image/svg+xml")
    assert b"<svg" in b"".join(icon.streaming_content)
    assert client.head("/favicon.ico").status_code == 301
    assert client.post("/favicon.ico").status_code == 405


def test_every_page_links_the_icon(client, annotator):
    assert '<link rel="icon" href="/static/favicon.svg"' in client.get("/login/").content.decode()
    client.force_login(annotator)
    assert '<link rel="icon" href="/static/favicon.svg"' in client.get("/annotate/").content.decode()


def test_unknown_address_is_the_styled_404(client, annotator):
    assert_styled(client.get("/no-such-page/"), 404, "Page not found")
    client.force_login(annotator)
    html = assert_styled(client.get("/annotate/assignments/99999999/"), 404, "Page not found")
    assert "annotator" in html  # the shell is there: who is logged in, and the way out
    assert "Log out" in html


def test_wrong_role_is_the_styled_403_with_the_rule_message(client, annotator, researcher):
    make_campaign(prompts=1)
    client.force_login(researcher)
    assert_styled(client.get("/annotate/"), 403, "Only annotators can rate pairs.")
    client.force_login(annotator)
    html = assert_styled(client.get("/campaigns/"), 403, "Only researchers and admins can read reports.")
    assert "Go to your start page" in html


def test_server_error_is_the_styled_500_without_the_fault(client, settings):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    html = assert_styled(client.get("/boom/"), 500, "Something went wrong")
    assert "secret-internal-detail-42" not in html and "RuntimeError" not in html


def test_a_rejected_form_is_the_styled_403_that_says_nothing_was_saved():
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post("/login/", {"username": "x", "password": "y"})
    html = assert_styled(response, 403, "This form could not be accepted")
    assert "Nothing was saved" in html and "CSRF" not in html
