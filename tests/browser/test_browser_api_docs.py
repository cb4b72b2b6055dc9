"""`/api/docs/` renders in Chromium with every request off this machine blocked (a lab network without
internet), under the site's content security policy, and lists every operation of the API schema."""

from __future__ import annotations

from urllib.parse import urlparse

import pytest
from django.test import Client

from annotations.models import User

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_the_api_docs_list_every_operation_with_the_outside_network_blocked(live_server, browser_page):
    page = browser_page
    User.objects.create_user(username="rita", password="correct-horse-battery", role="researcher")
    schema_client = Client()
    schema_client.login(username="rita", password="correct-horse-battery")
    schema = schema_client.get("/api/schema/", {"format": "json"}).json()
    operations = sum(1 for item in schema["paths"].values() for method in item if method in METHODS)

    blocked: list[str] = []

    def only_loopback(route) -> None:
        if urlparse(route.request.url).hostname in LOOPBACK:
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    page.route("**/*", only_loopback)
    console_errors: list[str] = []
    page.on("console", lambda msg: console_errors.append(msg.text) if msg.type == "error" else None)
    page_errors: list[str] = []
    page.on("pageerror", lambda error: page_errors.append(str(error)))

    page.goto(f"{live_server.url}/api/docs/")
    assert "/login/" in page.url  # behind login
    page.fill("#id_username", "rita")
    page.fill("#id_password", "correct-horse-battery")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert urlparse(page.url).path == "/api/docs/", page.url
    page.wait_for_selector(".opblock")
    listed = page.locator(".opblock").count()
    title = page.locator(".info .title").inner_text()

    assert operations > 5 and listed == operations, (listed, operations)
    assert "evalsite API" in title
    assert blocked == [], blocked
    assert console_errors == [] and page_errors == [], (console_errors, page_errors)
