"""The reports and services pages in a real browser: Debian's Chromium driven by Playwright.

On a 375 px phone the reports page does not scroll sideways, its charts are visible and scaled
to the screen, and a chart's numbers open from the keyboard. On the services page, a lead copies
an integration key with the keyboard alone and hears "Copied.". Skips (fails under
REQUIRE_SERVICES=1) when /usr/bin/chromium is missing; no browser is ever downloaded. With
REPORTS_SCREENSHOT=/some/dir set, phone screenshots of both pages are saved there.
"""

import os
from datetime import timedelta

import pytest
from django.utils import timezone

from incidents import ingest, workflow
from incidents.events import Event
from incidents.models import Integration, Service
from oncall import services
from oncall.models import Role

PHONE = {"width": 375, "height": 740}
PASSWORD = "correct-horse-battery"


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def sign_in(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base}/")


def screenshot(page, name: str) -> None:
    folder = os.environ.get("REPORTS_SCREENSHOT")
    if folder:
        page.screenshot(path=os.path.join(folder, name), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_reports_on_a_phone_and_copying_a_key(live_server, browser_page):
    from playwright.sync_api import expect

    lena = services.user_create(
        username="lena", password=PASSWORD, display_name="Lena", time_zone="Europe/London"
    )
    rafa = services.user_create(
        username="rafa", password=PASSWORD, display_name="Rafa", time_zone="Europe/London"
    )
    team = services.team_create(
        name="Payments", members=[(lena, Role.LEAD), (rafa, Role.RESPONDER)]
    )
    service = Service.objects.get(team=team)
    now = timezone.now()
    for days, ack, res in [(20, 3, 50), (13, 12, 200), (6, 1, 30), (1, 6, None)]:
        at = now - timedelta(days=days)
        incident = workflow.incident_trigger(service=service, title=f"Slow {days}", at=at)
        workflow.incident_acknowledge(
            incident=incident, by=rafa, via="web", at=at + timedelta(minutes=ack)
        )
        if res is not None:
            workflow.incident_resolve(
                incident=incident, by=rafa, via="web", at=at + timedelta(minutes=res)
            )

    # Alerts with a long dedup key: the sources tables must wrap it, not widen the page.
    integration = Integration.objects.get(service=service)
    for hours in (30, 20):
        ingest.alert_ingest(
            integration=integration,
            event=Event(
                action="trigger",
                dedup_key="checkout-api-latency-p99-above-threshold-" + "x" * 60,
                summary="Checkout API p99 latency above 2 s for 10 minutes",
            ),
            received_at=now - timedelta(hours=hours),
        )

    page = browser_page(viewport=PHONE, locale="en-GB")
    base = live_server.url
    sign_in(page, base, "lena")

    # Reports: the charts are there, visible, within the screen; the page never scrolls sideways.
    page.goto(f"{base}/reports/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Reports")
    mtta = page.get_by_role("img", name="MTTA by week, per team")
    expect(mtta).to_be_visible()
    expect(page.get_by_role("img", name="Incidents per service")).to_be_visible()
    expect(page.get_by_role("region", name="Alerts by dedup key or title")).to_contain_text(
        "Checkout API p99 latency"
    )
    assert page.locator("svg.chart").count() == 5
    box = mtta.bounding_box()
    assert box["width"] > 250 and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert mtta.locator(".chart__point").count() >= 4
    assert no_horizontal_scroll(page)

    # A chart's numbers open from the keyboard.
    summary = page.get_by_text("MTTA by week, per team: the numbers")
    summary.focus()
    page.keyboard.press("Enter")
    table = page.get_by_role("region", name="MTTA by week, per team: the numbers")
    expect(table).to_be_visible()
    expect(table).to_contain_text("12 min")
    assert no_horizontal_scroll(page)
    screenshot(page, "reports-phone.png")
    if os.environ.get("REPORTS_SCREENSHOT"):
        sources = page.locator("section", has=page.locator("#sources-heading"))
        sources.screenshot(path=os.path.join(os.environ["REPORTS_SCREENSHOT"], "sources.png"))

    # Services: the lead copies the key with the keyboard; the copy is announced.
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    page.goto(f"{base}/services/")
    button = page.get_by_role("button", name=f"Copy the key of {integration.name}")
    expect(button).to_be_visible()
    button.focus()
    page.keyboard.press("Enter")
    field = page.locator(f"#integration-{integration.pk} .copy-field").nth(1)
    expect(field.get_by_role("status")).to_have_text("Copied.")
    assert page.evaluate("navigator.clipboard.readText()") == integration.key
    assert no_horizontal_scroll(page)
    screenshot(page, "services-phone.png")

    if os.environ.get("REPORTS_SCREENSHOT"):
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(f"{base}/reports/")
        screenshot(page, "reports-desktop.png")
        page.goto(f"{base}/")
        screenshot(page, "home-desktop.png")
