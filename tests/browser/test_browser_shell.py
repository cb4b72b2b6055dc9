"""The site's shell in Chromium: the nav wraps on a phone with every item in view, no page of the shell
scrolls sideways at 1366 or 390 px, dark mode follows the system, the icon is answered, and My ratings
is usable from the keyboard."""

from __future__ import annotations

import pytest

from annotations.assignment import assignment_next, assignment_skip
from annotations.models import User
from annotations.rating import rating_submit
from tests.support.annotation_data import make_campaign
from tests.support.browser import DESKTOP, PHONE, horizontal_overflow, log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct-horse-battery"
LONG_COMMENT = "The left answer names the wrong feature and " + "repeats itself " * 12


def annotator_with_history(campaign) -> User:
    """An annotator with two ratings (one with a long comment) and one skipped pair in `campaign`."""
    alice = User.objects.create_user(username="alice", password=PASSWORD, role="annotator")
    for comment in ("short", LONG_COMMENT):
        assignment = assignment_next(campaign=campaign, annotator=alice)
        rating_submit(
            assignment=assignment,
            annotator=alice,
            score_left=4,
            score_right=2,
            correct_left=True,
            correct_right=False,
            preference="left",
            comment=comment,
        )
    skipped = assignment_next(campaign=campaign, annotator=alice)
    assignment_skip(assignment=skipped, annotator=alice)
    return alice


def nav_boxes(page) -> list[dict]:
    items = page.locator(".topbar .brand, .topbar nav a, .topbar nav .who, .topbar nav button")
    return [items.nth(i).bounding_box() for i in range(items.count())]


def test_phone_nav_wraps_with_every_item_in_view(live_server, phone_page):
    page = phone_page
    User.objects.create_user(username="administrator-with-a-long-name", password=PASSWORD, role="admin")
    log_in(page, live_server.url, "administrator-with-a-long-name", PASSWORD)
    page.goto(f"{live_server.url}/no-such-page/")  # the styled 404: the shell and nothing else
    assert page.locator("h1").inner_text() == "Page not found"
    boxes = nav_boxes(page)
    assert len(boxes) >= 6  # brand, Campaigns, Runs, Jobs, Admin, who, Log out
    width = page.viewport_size["width"]
    for box in boxes:
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert len({round(box["y"]) for box in boxes}) >= 2  # more than one row: it wrapped
    logout = page.get_by_role("button", name="Log out")
    assert logout.is_visible()
    assert horizontal_overflow(page) == 0
    screenshot(page, "shell-phone-nav")


def test_no_sideways_scroll_on_home_my_ratings_and_login(live_server, phone_page):
    page = phone_page
    campaign = make_campaign(prompts=4, overlap=1)
    annotator_with_history(campaign)
    for size, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        page.set_viewport_size(size)
        page.goto(f"{live_server.url}/login/")
        assert horizontal_overflow(page) == 0, f"login at {label}"
        screenshot(page, f"shell-{label}-login")
    log_in(page, live_server.url, "alice", PASSWORD)
    for size, label in ((PHONE, "phone"), (DESKTOP, "desktop")):
        page.set_viewport_size(size)
        page.goto(f"{live_server.url}/annotate/")
        assert page.get_by_role("link", name="Continue").is_visible()
        assert horizontal_overflow(page) == 0, f"home at {label}"
        screenshot(page, f"shell-{label}-home")
        page.goto(f"{live_server.url}/annotate/campaigns/{campaign.pk}/ratings/")
        assert page.get_by_text("repeats itself", exact=False).first.is_visible()
        assert page.get_by_role("link", name="Rate now").is_visible()
        assert horizontal_overflow(page) == 0, f"my ratings at {label}"
        screenshot(page, f"shell-{label}-my-ratings")


def test_dark_mode_follows_the_system(live_server, browser_page):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    campaign = make_campaign(prompts=3, overlap=1)
    annotator_with_history(campaign)
    log_in(page, live_server.url, "alice", PASSWORD)
    url = f"{live_server.url}/annotate/campaigns/{campaign.pk}/ratings/"

    def colours() -> tuple[str, str]:
        return page.evaluate(
            "[getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color]"
        )

    page.emulate_media(color_scheme="light")
    page.goto(url)
    light_bg, light_fg = colours()
    page.emulate_media(color_scheme="dark")
    page.goto(url)
    dark_bg, dark_fg = colours()
    assert dark_bg != light_bg and dark_fg != light_fg

    def brightness(rgb: str) -> float:
        return sum(int(v) for v in rgb[rgb.index("(") + 1 : rgb.index(")")].split(",")[:3]) / 3

    assert brightness(dark_bg) < 60 and brightness(light_bg) > 180
    assert brightness(dark_fg) > brightness(dark_bg) + 100  # text still reads on the dark page
    screenshot(page, "shell-dark-my-ratings")


def test_keyboard_reaches_continue_from_my_ratings_and_the_icon_is_served(live_server, browser_page):
    page = browser_page
    page.set_viewport_size(DESKTOP)
    campaign = make_campaign(prompts=3, overlap=1)
    annotator_with_history(campaign)
    log_in(page, live_server.url, "alice", PASSWORD)
    page.goto(f"{live_server.url}/annotate/campaigns/{campaign.pk}/ratings/")
    focused = ""
    for _ in range(3):
        page.keyboard.press("Tab")
        focused = page.evaluate("document.activeElement.textContent.trim()")
        if focused == "Continue rating":
            break
    assert focused == "Continue rating"
    assert page.locator(":focus").is_visible()  # the skip link shows itself while focused
    screenshot(page, "shell-desktop-skip-link")
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url.endswith(f"/annotate/campaigns/{campaign.pk}/")

    icon = page.request.get(f"{live_server.url}/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg+xml")
