"""The paging loop end to end in a real browser (Debian's Chromium driven by Playwright), on the
demo's teams and people (`seed_demo`).

A monitoring tool posts an alert to `/v2/enqueue`; Bruno, on call for Payments, sees it appear
in his open-incident list without reloading, opens it, acknowledges, escalates, adds a note and
resolves, and the timeline tells the whole story. Emeka (Platform) gets the 403 page on the
Payments incident; Fiona, an executive, reads the reports but reaches no incident and no action
anywhere.

The tests marked `screenshots` also take the README's pictures (docs/img/) when SCREENSHOTS_DIR
is set (`make screenshots`); without it they only check what the pictures show. Skips (fails
under REQUIRE_SERVICES=1) when /usr/bin/chromium is missing.
"""

import json
import re
import urllib.request
from datetime import datetime, timedelta

import pytest
import time_machine
from django.test import Client
from django.utils import timezone

from incidents import workflow
from incidents.models import Channel, Incident, Integration, Service, TimelineEntry
from oncall.management.commands.seed_demo import DEMO_PASSWORD, seed
from oncall.models import Urgency
from schedules import services as schedule_services
from schedules.models import Schedule

DESKTOP = {"width": 1280, "height": 800}
ACTION_BUTTONS = re.compile(r"^(Acknowledge|Resolve|Escalate|Reassign|Add note)$")
OPEN_ACTIONS = re.compile(r"^(Acknowledge|Resolve|Escalate|Reassign)$")  # a note fits any state
# The story the timeline must tell, oldest first.
STORY = ["Triggered", "Notified", "Acknowledged", "Escalated", "Note", "Resolved"]


@pytest.fixture
def sms_provider(settings):
    """A Twilio-compatible service on this machine that accepts every message, so the demo's
    SMS rules are sent rather than failing for want of credentials."""
    from oncall.tests.servers import RecordingHTTPServer, Reply

    reply = Reply(status=201, body=b'{"sid": "SM0123456789abcdef", "status": "queued"}')
    with RecordingHTTPServer(reply) as server:
        settings.TWILIO_ACCOUNT_SID = "AC0123456789abcdef"
        settings.TWILIO_AUTH_TOKEN = "test-token"
        settings.TWILIO_FROM_NUMBER = "+15005550006"
        settings.TWILIO_BASE_URL = server.url("/")
        yield server


@pytest.fixture
def demo(monkeypatch):
    """The demo data, with Bruno covering the Payments rotation for two and a half days from two
    hours ago (so the first step of "Payments critical" pages him whatever the weekday), and the
    list polling every second."""
    from django.contrib.auth import get_user_model

    from incidents import list_views

    monkeypatch.setattr(list_views, "LIVE_INTERVAL_SECONDS", 1, raising=False)
    seed()
    people = {user.username: user for user in get_user_model().objects.all()}
    payments = Schedule.objects.get(team__name="Payments")
    start = timezone.now().replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    schedule_services.override_create(
        schedule=payments,
        user=people["bruno"],
        start=start,
        end=start + timedelta(days=2, hours=12),
        created_by=people["alice"],
        reason="Alice at the payments conference",
    )
    return {"people": people, "payments_schedule": payments}


def sign_in(browser_page, live_server, username: str):
    """A new browser (its own cookies) signed in through the sign-in page."""
    page = browser_page(viewport=DESKTOP, locale="en-GB")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    return page


def enqueue(base_url: str, body: dict) -> dict:
    """What Alertmanager or Grafana would do: POST the event to the portal over HTTP."""
    request = urllib.request.Request(
        f"{base_url}/v2/enqueue",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202
        return json.loads(response.read())


def timeline_kinds(page) -> list[str]:
    """The kinds on the incident page's timeline, oldest first (the page shows newest first)."""
    kinds = page.locator(".incident-timeline .tl-kind").all_inner_texts()
    return [kind.strip() for kind in reversed(kinds)]


def in_order(wanted: list[str], seen: list[str]) -> bool:
    """`wanted` appears in `seen` in this order (other entries may come between)."""
    rest = iter(seen)
    return all(any(kind == item for item in rest) for kind in wanted)


@pytest.mark.django_db(transaction=True)
def test_an_alert_becomes_an_incident_handled_from_the_browser(live_server, browser_page, demo):
    from playwright.sync_api import expect

    key = Integration.objects.get(service__name="Checkout API", kind=Integration.Kind.EVENTS_V2).key
    page = sign_in(browser_page, live_server, "bruno")
    page.goto(f"{live_server.url}/incidents/")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads

    # Alertmanager (here: urllib) raises the incident over HTTP with the integration's key.
    answer = enqueue(
        live_server.url,
        {
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": "checkout-5xx",
            "payload": {
                "summary": "Checkout API: 5xx above 2% for 5 minutes",
                "source": "prometheus-eu-1",
                "severity": "critical",
                "custom_details": {"error_rate": "4.1%", "region": "eu-west-1"},
            },
        },
    )
    assert answer["dedup_key"] == "checkout-5xx"
    incident = Incident.objects.get(dedup_key="checkout-5xx")

    # It appears in the open list by itself, without a reload.
    link = page.get_by_role("link", name="Checkout API: 5xx above 2% for 5 minutes")
    expect(link).to_be_visible(timeout=20_000)
    assert page.evaluate("window.__sameDocument") is True

    # Open it: triggered, and Bruno (on call) was notified by e-mail.
    link.click()
    page.wait_for_url(f"{live_server.url}/incidents/{incident.pk}/")
    status = page.locator(".incident-status .badge")
    expect(status).to_have_text("Triggered")
    timeline = page.locator(".incident-timeline")
    expect(timeline).to_contain_text("Notified Bruno Costa by E-mail")

    # Acknowledge, escalate, add a note, resolve: each through the page's forms.
    page.get_by_role("button", name="Acknowledge").click()
    expect(status).to_have_text("Acknowledged")
    page.get_by_role("button", name="Escalate", exact=True).click()
    expect(timeline).to_contain_text("Escalated by hand to step 2")
    expect(status).to_have_text("Triggered")
    page.get_by_label("Add a note").fill(
        "Card vault timeouts since the 14:02 deploy; rolling back."
    )
    page.get_by_role("button", name="Add note").click()
    expect(timeline).to_contain_text("Card vault timeouts since the 14:02 deploy; rolling back.")
    page.get_by_role("button", name="Resolve").click()
    expect(status).to_have_text("Resolved")
    expect(page.get_by_role("button", name=OPEN_ACTIONS)).to_have_count(0)

    # The timeline shows each step, in order, as the database recorded them.
    assert in_order(STORY, timeline_kinds(page)), timeline_kinds(page)
    recorded = list(
        TimelineEntry.objects.filter(incident=incident)
        .order_by("at", "id")
        .values_list("kind", flat=True)
    )
    assert in_order([kind.lower() for kind in STORY], recorded), recorded
    web = TimelineEntry.objects.filter(incident=incident, channel=Channel.WEB)
    assert {entry.actor.username for entry in web} == {"bruno"}
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_by.username) == ("resolved", "bruno")

    # A Platform responder can't open a Payments incident: the 403 page, without its content.
    emeka = sign_in(browser_page, live_server, "emeka")
    response = emeka.goto(f"{live_server.url}/incidents/{incident.pk}/")
    assert response.status == 403
    expect(emeka.get_by_role("heading", level=1)).to_have_text("You can’t open this page")
    expect(emeka.get_by_text("Checkout API: 5xx above 2%")).to_have_count(0)
    expect(emeka.get_by_role("button", name=ACTION_BUTTONS)).to_have_count(0)

    # An executive reads the reports (charts included) and reaches no incident action.
    fiona = sign_in(browser_page, live_server, "fiona")
    fiona.goto(f"{live_server.url}/reports/")
    expect(fiona.get_by_role("heading", level=1)).to_be_visible()
    expect(fiona.locator("svg.chart[role=img]").first).to_be_visible()
    response = fiona.goto(f"{live_server.url}/incidents/{incident.pk}/")
    assert response.status == 403
    expect(fiona.get_by_role("heading", level=1)).to_have_text("You can’t open this page")
    expect(fiona.get_by_role("button", name=ACTION_BUTTONS)).to_have_count(0)
    assert fiona.goto(f"{live_server.url}/incidents/").status == 403
    fiona.goto(f"{live_server.url}/")
    reachable = fiona.locator("header a[href^='/'], nav a[href^='/'], main a[href^='/']")
    paths = sorted({href for href in reachable.evaluate_all("els => els.map(a => a.pathname)")})
    assert "/reports/" in paths
    for path in paths:
        response = fiona.goto(f"{live_server.url}{path}")
        if response.status != 200:
            continue
        expect(fiona.get_by_role("button", name=ACTION_BUTTONS)).to_have_count(0)
        assert f"/incidents/{incident.pk}/" not in fiona.content()


# --- the README's pictures -------------------------------------------------------------------


def _post_alert(client: Client, key: str, summary: str, dedup_key: str, **details) -> None:
    response = client.post(
        "/v2/enqueue",
        data={
            "routing_key": key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": summary,
                "source": "prometheus-eu-1",
                "severity": "critical",
                "custom_details": details,
            },
        },
        content_type="application/json",
    )
    assert response.status_code == 202, response.content


def _bad_afternoon(people: dict) -> Incident:
    """An incident as it looks 40 minutes in: alerts, pages, an escalation, an acknowledgement,
    notes. Each step happens at its own time (time_machine), as it would have."""
    key = Integration.objects.get(service__name="Checkout API", kind=Integration.Kind.EVENTS_V2).key
    client = Client()
    start = timezone.now().replace(second=0, microsecond=0) - timedelta(minutes=41)

    def at(minutes: float) -> datetime:
        return start + timedelta(minutes=minutes)

    summary = "Checkout API: 5xx above 2% for 5 minutes"
    with time_machine.travel(at(0), tick=False):
        _post_alert(client, key, summary, "checkout-5xx", error_rate="2.4%", region="eu-west-1")
    incident = Incident.objects.get(dedup_key="checkout-5xx")
    with time_machine.travel(at(2), tick=False):
        _post_alert(client, key, summary, "checkout-5xx", error_rate="4.1%", region="eu-west-1")
    with time_machine.travel(at(5), tick=False):
        workflow.incident_advance(incident=incident, now=at(5))  # nobody acked: step 2
    with time_machine.travel(at(7), tick=False):
        workflow.incident_acknowledge(
            incident=incident, by=people["chen"], via=Channel.WEB, at=at(7)
        )
    with time_machine.travel(at(9), tick=False):
        workflow.incident_add_note(
            incident=incident,
            by=people["chen"],
            via=Channel.WEB,
            at=at(9),
            text="Card vault calls time out since the 14:02 deploy (client timeout 200 ms, "
            "was 2 s). Rolling back.",
        )
    with time_machine.travel(at(16), tick=False):
        _post_alert(client, key, summary, "checkout-5xx", error_rate="1.2%", region="eu-west-1")
    with time_machine.travel(at(24), tick=False):
        workflow.incident_add_note(
            incident=incident,
            by=people["bruno"],
            via=Channel.WEB,
            at=at(24),
            text="Rollback done; 5xx back under 0.1%. Keeping it open 15 minutes to be sure.",
        )
    return incident


def _past_incidents(people: dict) -> None:
    """Eight weeks of incidents on the demo's services, for the report's charts: a few a week,
    acknowledged within minutes, resolved within the hour or two."""
    services = list(Service.objects.filter(team__name__in=["Payments", "Platform"]))
    titles = [
        "5xx above 2% for 5 minutes",
        "p99 latency above 1.5 s",
        "Disk 91% full on node 3",
        "Pod crash-looping (OOMKilled)",
        "Certificate expires in 7 days",
        "Queue depth above 10,000",
    ]
    responders = {"Payments": ["bruno", "chen", "alice"], "Platform": ["emeka", "chen", "dana"]}
    today = timezone.now().replace(hour=10, minute=0, second=0, microsecond=0)
    for n in range(34):
        service = services[n % len(services)]
        when = today - timedelta(days=55 - n * 1.6, hours=n % 7)
        who = people[responders[service.team.name][n % 3]]
        incident = workflow.incident_trigger(
            service=service,
            title=f"{service.name}: {titles[n % len(titles)]}",
            at=when,
            urgency=Urgency.LOW if n % 5 == 0 else Urgency.HIGH,
        )
        ack = when + timedelta(minutes=2 + (n * 7) % 19 + n // 6)
        workflow.incident_acknowledge(incident=incident, by=who, via=Channel.WEB, at=ack)
        workflow.incident_resolve(
            incident=incident,
            by=who,
            via=Channel.WEB,
            at=ack + timedelta(minutes=12 + (n * 23) % 110),
        )


@pytest.mark.screenshots
@pytest.mark.django_db(transaction=True)
def test_pictures_of_the_incident_page_and_the_schedule(
    live_server, browser_page, demo, sms_provider, screenshot
):
    from playwright.sync_api import expect

    people = demo["people"]
    incident = _bad_afternoon(people)

    page = sign_in(browser_page, live_server, "chen")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    expect(page.locator(".incident-status .badge")).to_have_text("Acknowledged")
    assert in_order(
        ["Triggered", "Notified", "Escalated", "Acknowledged", "Note", "Alert received", "Note"],
        timeline_kinds(page),
    ), timeline_kinds(page)
    expect(page.get_by_role("button", name="Resolve")).to_be_visible()
    screenshot(page, "incident", max_height=1800)

    alice = sign_in(browser_page, live_server, "alice")
    alice.goto(f"{live_server.url}/schedules/{demo['payments_schedule'].pk}/")
    picture = alice.get_by_role("img", name="Timeline of Payments on-call")
    expect(picture).to_be_visible()
    expect(picture.locator(".timeline__bar--override")).not_to_have_count(0)
    screenshot(alice, "schedule", full_page=False)


@pytest.mark.screenshots
@pytest.mark.django_db(transaction=True)
def test_picture_of_the_reports(live_server, browser_page, demo, screenshot):
    from playwright.sync_api import expect

    _past_incidents(demo["people"])
    fiona = sign_in(browser_page, live_server, "fiona")
    today = timezone.localdate()
    start = today - timedelta(weeks=8)
    fiona.goto(f"{live_server.url}/reports/?start={start:%Y-%m-%d}&end={today:%Y-%m-%d}")
    charts = fiona.locator("svg.chart[role=img]")
    expect(charts.first).to_be_visible()
    assert charts.count() >= 2
    screenshot(fiona, "reports", max_height=1500)
