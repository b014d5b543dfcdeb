"""The schedule page in a real browser: Debian's Chromium driven by Playwright.

A responder signs in, opens their team's schedule, sees the timeline picture, adds an override
with the keyboard alone and finds it listed; on a 375 px phone nothing scrolls sideways except
the picture inside its own region. Skips (fails under REQUIRE_SERVICES=1) when /usr/bin/chromium
is missing; no browser is ever downloaded. With SCHEDULE_SCREENSHOT=/some/file.png set, a
desktop-width screenshot of the page is saved there.
"""

import os
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from oncall import services
from oncall.models import Role
from schedules.models import Override, Schedule

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
PASSWORD = "correct-horse-battery"
LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def desktop_page(browser_page):
    return browser_page(viewport=DESKTOP, locale="en-GB")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def focused_label(page) -> str:
    """The text of the label of the focused form control."""
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const label = el.labels && el.labels[0];
            return label ? label.textContent.trim() : '';
        }"""
    )


def tab_to(page, label: str, limit: int = 5) -> None:
    """Press Tab until the control labelled `label` has focus (a date-time input takes a few
    presses to leave: one per part of the date and time)."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused_label(page).startswith(label):
            return
    raise AssertionError(f"{label!r} never reached with the Tab key")


def type_local_time(page, value: datetime) -> None:
    """Type a wall-clock time into the focused datetime-local input, segment by segment, as a
    person does: Chromium shows it as mm/dd/yyyy, hh:mm AM/PM and Tab moves to the time."""
    page.keyboard.type(f"{value:%m%d%Y}")
    page.keyboard.press("Tab")
    page.keyboard.type(f"{value:%I%M}")
    page.keyboard.type("A" if value.hour < 12 else "P")


@pytest.mark.django_db(transaction=True)
def test_responder_adds_an_override_with_the_keyboard(live_server, desktop_page):
    from playwright.sync_api import expect

    lena = services.user_create(
        username="lena", password=PASSWORD, display_name="Lena", time_zone="Europe/London"
    )
    rafa = services.user_create(
        username="rafa", password=PASSWORD, display_name="Rafa", time_zone="Europe/London"
    )
    services.team_create(name="Payments", members=[(lena, Role.LEAD), (rafa, Role.RESPONDER)])
    schedule = Schedule.objects.get(team__name="Payments")
    page = desktop_page

    # Sign in; open the schedule from the list.
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill("rafa")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/schedules/")
    page.get_by_role("link", name="Payments on-call").click()
    page.wait_for_url(f"{live_server.url}/schedules/{schedule.pk}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Payments on-call")

    # The timeline picture: an image with its label, a final row and the now line.
    picture = page.get_by_role("img", name="Timeline of Payments on-call")
    expect(picture).to_be_visible()
    expect(picture.locator(".timeline__row--final")).to_have_count(1)
    expect(picture.locator(".timeline__now")).to_have_count(1)
    assert picture.locator(".timeline__bar").count() >= 2
    expect(page.get_by_role("button", name="Take this shift").first).to_be_visible()

    # "Cover me" with the keyboard alone: tomorrow 10:00-14:00, in Rafa's zone.
    tomorrow = timezone.now().astimezone(LONDON).date() + timedelta(days=1)
    start = datetime.combine(tomorrow, time(10, 0), tzinfo=LONDON)
    end = datetime.combine(tomorrow, time(14, 0), tzinfo=LONDON)
    who = page.get_by_label("Who covers")
    who.focus()
    expect(who).to_have_value(str(rafa.pk))
    tab_to(page, "From")
    type_local_time(page, start)
    expect(page.get_by_label("From", exact=True)).to_have_value(f"{start:%Y-%m-%dT%H:%M}")
    tab_to(page, "To")
    type_local_time(page, end)
    expect(page.get_by_label("To", exact=True)).to_have_value(f"{end:%Y-%m-%dT%H:%M}")
    tab_to(page, "Reason")
    page.keyboard.type("Covering Lena’s dentist appointment")
    page.keyboard.press("Enter")

    expect(page.get_by_text("Override added: Rafa is on call")).to_be_visible()
    overrides = page.locator("#overrides")
    expect(overrides).to_contain_text("Covering Lena’s dentist appointment")
    expect(overrides).to_contain_text("Added by Rafa")
    expect(overrides.get_by_role("button", name="Delete")).to_have_count(1)
    override = Override.objects.get(schedule=schedule)
    assert (override.user_id, override.created_by_id) == (rafa.pk, rafa.pk)
    assert (override.start, override.end) == (start, end)
    expect(picture.locator(".timeline__bar--override")).not_to_have_count(0)

    if os.environ.get("SCHEDULE_SCREENSHOT"):
        page.screenshot(path=os.environ["SCHEDULE_SCREENSHOT"], full_page=True)

    # On a phone: no sideways scroll of the page; the picture scrolls inside its own region.
    page.set_viewport_size(PHONE)
    page.reload()
    expect(picture).to_be_attached()
    assert no_horizontal_scroll(page)
    region = page.get_by_role("region", name="Timeline of the next two weeks")
    assert region.evaluate("el => el.scrollWidth > el.clientWidth")
    region.focus()
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("button", name="Take this shift").first).to_be_visible()
    assert no_horizontal_scroll(page)
