"""The incident page in a real browser: Debian's Chromium driven by Playwright.

A responder signs in, opens an incident, acknowledges it with the keyboard shortcut A, escalates
it, adds a note (reached with N) and resolves it, the timeline showing each step; on a second
incident the page updates itself when another person resolves it; on a 375 px phone nothing
scrolls sideways. Skips (fails under REQUIRE_SERVICES=1) when /usr/bin/chromium is missing.
With INCIDENT_SCREENSHOT=/some/dir set, desktop and phone screenshots are saved there.
"""

import os
from pathlib import Path

import pytest
from django.utils import timezone

from incidents import events, ingest, workflow
from incidents.models import Channel, Incident, Integration, TimelineEntry
from incidents.services import (
    escalation_policy_create,
    escalation_step_add,
    integration_create,
    service_create,
)
from oncall import services
from oncall.models import ContactKind, Role
from oncall.tests.factories import contact_method

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
PASSWORD = "correct-horse-battery"


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def screenshot(page, name: str) -> None:
    folder = os.environ.get("INCIDENT_SCREENSHOT")
    if folder:
        page.screenshot(path=str(Path(folder) / name), full_page=True)


@pytest.fixture
def team():
    """Payments: Lena leads, Rafa responds; Checkout pages Rafa, then Lena."""
    lena = services.user_create(
        username="lena", password=PASSWORD, display_name="Lena Lead", time_zone="Europe/Paris"
    )
    rafa = services.user_create(
        username="rafa", password=PASSWORD, display_name="Rafa Nadal", time_zone="Europe/Madrid"
    )
    payments = services.team_create(
        name="Payments", members=[(lena, Role.LEAD), (rafa, Role.RESPONDER)]
    )
    for person in (lena, rafa):
        contact_method(person, ContactKind.EMAIL, f"{person.username}@example.com")
    policy = escalation_policy_create(team=payments, name="Checkout first line")
    escalation_step_add(policy=policy, delay_minutes=10, users=[rafa])
    escalation_step_add(policy=policy, delay_minutes=10, users=[lena])
    service = service_create(team=payments, name="Checkout", escalation_policy=policy)
    return {"lena": lena, "rafa": rafa, "service": service}


def sign_in(page, live_server, username: str) -> None:
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


@pytest.mark.django_db(transaction=True)
def test_responder_handles_an_incident_from_its_page(live_server, browser_page, team, settings):
    from playwright.sync_api import expect

    settings.INCIDENT_PAGE_POLL_SECONDS = 1
    incident = workflow.incident_trigger(
        service=team["service"], title="Checkout 5xx above 2%", at=timezone.now()
    )  # paged Rafa at once (Celery runs in-process here)
    page = browser_page(viewport=DESKTOP, locale="en-GB")
    sign_in(page, live_server, "rafa")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")

    expect(page.get_by_role("heading", level=1)).to_contain_text("Checkout 5xx above 2%")
    timeline = page.locator(".incident-timeline")
    expect(timeline).to_contain_text("Step 1 (loop 1): paged rafa")
    expect(page.get_by_text("Shortcuts: A acknowledge · R resolve · N note")).to_be_visible()
    acknowledge = page.get_by_role("button", name="Acknowledge")
    expect(acknowledge).to_have_attribute("aria-keyshortcuts", "a")
    screenshot(page, "incident-triggered.png")

    # A: acknowledge, without touching the mouse.
    page.keyboard.press("a")
    expect(page.get_by_text(f"Incident #{incident.pk} acknowledged")).to_be_visible()
    status = page.locator(".incident-status")
    expect(status.locator(".badge")).to_have_text("Acknowledged")
    expect(timeline.locator(".tl-entry").first).to_contain_text("Acknowledged")
    expect(timeline.locator(".tl-entry").first).to_contain_text("by Rafa Nadal")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)

    # Escalate to the next step: Lena is paged.
    escalate_to = page.get_by_label("Step", exact=True)
    expect(escalate_to.locator("option:checked")).to_have_text("The next step (step 2: Lena Lead)")
    page.get_by_role("button", name="Escalate", exact=True).click()
    expect(page.get_by_text(f"Incident #{incident.pk} escalated to step 2.")).to_be_visible()
    expect(timeline).to_contain_text("Escalated by hand to step 2")
    expect(timeline).to_contain_text("Step 2 (loop 1): paged lena")
    expect(status.locator(".badge")).to_have_text("Triggered")

    # N: into the note box; the note lands on the timeline.
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("n")
    note = page.get_by_label("Add a note")
    expect(note).to_be_focused()
    expect(note).to_have_value("")
    page.keyboard.type("Rolled back the 14:00 deploy")  # "a" and "r" typed here do nothing
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_text("Note added to the timeline.")).to_be_visible()
    expect(timeline.locator(".tl-entry").first).to_contain_text("Rolled back the 14:00 deploy")

    # Resolve with the button.
    page.get_by_role("button", name="Resolve").click()
    expect(page.get_by_text(f"Incident #{incident.pk} resolved.")).to_be_visible()
    expect(status.locator(".badge")).to_have_text("Resolved")
    expect(page.get_by_role("button", name="Resolve")).to_have_count(0)
    kinds = [
        entry.kind for entry in TimelineEntry.objects.filter(incident=incident, channel=Channel.WEB)
    ]
    assert kinds == ["acknowledged", "escalated", "note", "resolved"]
    screenshot(page, "incident-desktop.png")

    # On a phone: no sideways scroll, the actions within reach, the timeline readable.
    page.set_viewport_size(PHONE)
    page.reload()
    assert no_horizontal_scroll(page)
    expect(page.get_by_role("button", name="Add note")).to_be_visible()
    first = timeline.locator(".tl-entry").first
    assert first.evaluate("el => el.getBoundingClientRect().right <= window.innerWidth")
    screenshot(page, "incident-phone.png")


@pytest.mark.django_db(transaction=True)
def test_the_page_follows_a_change_made_elsewhere(live_server, browser_page, team, settings):
    from playwright.sync_api import expect

    settings.INCIDENT_PAGE_POLL_SECONDS = 1
    integration = integration_create(
        service=team["service"], name="Queue monitor", kind=Integration.Kind.EVENTS_V2
    )
    event = events.parse_events_v2(
        {
            "routing_key": integration.key,
            "event_action": "trigger",
            "dedup_key": "queue-backlog",
            "payload": {
                "summary": "Queue backlog",
                "source": "worker-7",
                "severity": "critical",
                "custom_details": {"trace": "x" * 400, "depth": 12_000},
            },
        }
    )[1]
    result = ingest.alert_ingest(integration=integration, event=event, received_at=timezone.now())
    incident = Incident.objects.get(pk=result.incident_id)
    page = browser_page(viewport=PHONE, locale="en-GB")
    sign_in(page, live_server, "rafa")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    expect(page.locator(".incident-status .badge")).to_have_text("Triggered")
    # The raw alert, opened: its long payload scrolls in its own box, not the page.
    page.get_by_text("Show the raw alert").click()
    payload = page.get_by_label("Payload of the alert", exact=False)
    expect(payload).to_contain_text('"depth": 12000')
    assert payload.evaluate("el => el.scrollWidth > el.clientWidth")
    assert no_horizontal_scroll(page)
    screenshot(page, "incident-phone-triggered.png")

    # Lena resolves it from the API (or her phone) while Rafa looks at the page.
    workflow.incident_resolve(
        incident=incident, by=team["lena"], via=Channel.API, at=timezone.now()
    )

    expect(page.locator(".incident-status .badge")).to_have_text("Resolved")
    expect(page.locator(".incident-timeline .tl-entry").first).to_contain_text("by Lena Lead")
    expect(page.get_by_role("button", name="Acknowledge")).to_have_count(0)
    expect(page.locator("#incident-live-status")).to_contain_text(
        f"Incident #{incident.pk} is now resolved."
    )
    expect(page).to_have_title(f"#{incident.pk} Resolved: Queue backlog · Oncall")
    expect(payload).to_be_visible()  # the alerts stayed open through the update
    assert no_horizontal_scroll(page)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED


@pytest.mark.django_db(transaction=True)
def test_polling_pauses_while_the_tab_is_hidden(live_server, browser_page, team):
    """With the page's clock under the test's control (Playwright's fake timers): the page asks
    every 5 s, not at all while hidden, at once when shown again; the countdown keeps time."""
    from playwright.sync_api import expect

    incident = workflow.incident_trigger(
        service=team["service"], title="Disk full", at=timezone.now()
    )  # step 1 paged Rafa; step 2 fires in 10 min
    page = browser_page(viewport=DESKTOP, locale="en-GB")
    page.add_init_script(
        """(() => {
            window.__liveCalls = 0;
            const open = XMLHttpRequest.prototype.open;
            XMLHttpRequest.prototype.open = function (method, url) {
                if (String(url).includes("/live/")) window.__liveCalls += 1;
                return open.apply(this, arguments);
            };
        })();"""
    )
    page.clock.install()
    sign_in(page, live_server, "rafa")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    countdown = page.locator(".incident-status time[data-relative]")
    expect(countdown).to_have_text("in 10 min")

    def calls() -> int:
        return page.evaluate("window.__liveCalls")

    def five_seconds_later() -> None:
        with page.expect_response(lambda response: "/live/" in response.url):
            page.clock.run_for(5_000)

    assert calls() == 0
    for expected in (1, 2, 3):
        five_seconds_later()
        assert calls() == expected

    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", { value: true, configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    page.clock.run_for(60_000)
    assert calls() == 3

    page.evaluate(
        """() => {
            Object.defineProperty(document, "hidden", { value: false, configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }"""
    )
    assert calls() == 4  # at once
    expect(countdown).to_have_text("in 9 min")  # 75 s of the page's clock have passed
