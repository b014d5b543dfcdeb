"""The incident page: what it shows (in the reader's zone), the actions it offers in each status,
each action through the page with its timeline entry, stale actions and bad input, who may open
it, the live endpoint, and a query count that does not grow with the incident."""

import json
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse
from django.utils import timezone

from incidents import events, ingest, outbox, workflow
from incidents.incident_views import PAYLOAD_SHOWN_CHARS, _clock, pretty_json, relative
from incidents.models import (
    Channel,
    Incident,
    Integration,
    Notification,
    Service,
    TimelineEntry,
)
from incidents.services import (
    escalation_policy_create,
    escalation_step_add,
    integration_create,
    service_create,
)
from oncall.models import ContactKind, Role, Urgency
from oncall.tests.factories import TeamFactory, UserFactory, contact_method

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def url(incident, action: str = "") -> str:
    if not action:
        return reverse("incidents:detail", args=[incident.pk])
    if action == "live":
        return reverse("incidents:detail_live", args=[incident.pk])
    return reverse(f"incidents:incident_{action}", args=[incident.pk])


@pytest.fixture
def world():
    """Team Payments: Dana leads, Rafa responds (in Tokyo), Olive observes; Bravo is another
    team. The Checkout service pages Rafa, then Dana, twice round; an incident is triggered."""
    dana = UserFactory(username="dana", display_name="Dana Scully", time_zone="Europe/London")
    rafa = UserFactory(username="rafa", display_name="Rafa Nadal", time_zone="Asia/Tokyo")
    olive = UserFactory(username="olive", display_name="Olive Observer")
    bruno = UserFactory(username="bruno", display_name="Bruno Bravo")
    team = TeamFactory(
        name="Payments",
        lead=dana,
        members=[(rafa, Role.RESPONDER), (olive, Role.OBSERVER)],
    )
    other = TeamFactory(name="Bravo", lead=bruno)
    for person in (dana, rafa, bruno):
        contact_method(person, ContactKind.EMAIL, f"{person.username}@example.com")
    policy = escalation_policy_create(team=team, name="Checkout first line", repeat_count=1)
    escalation_step_add(policy=policy, delay_minutes=10, users=[rafa])
    escalation_step_add(policy=policy, delay_minutes=15, users=[dana], teams=[team])
    spare = escalation_policy_create(team=team, name="Database experts")
    escalation_step_add(policy=spare, delay_minutes=5, users=[dana])
    service = service_create(team=team, name="Checkout", escalation_policy=policy)
    integration = integration_create(
        service=service, name="Checkout alerts", kind=Integration.Kind.EVENTS_V2
    )
    with time_machine.travel(T0, tick=False):
        result = send_alert(integration, "Checkout 5xx", T0)
    incident = Incident.objects.get(pk=result.incident_id)
    return {
        "integration": integration,
        "dana": dana,
        "rafa": rafa,
        "olive": olive,
        "bruno": bruno,
        "team": team,
        "other": other,
        "policy": policy,
        "spare": spare,
        "service": service,
        "incident": incident,
    }


def send_alert(integration, summary, at, dedup_key="checkout-5xx", **details):
    """An Events API v2 trigger, through ingest as the endpoint does."""
    event = events.parse_events_v2(
        {
            "routing_key": integration.key,
            "event_action": "trigger",
            "dedup_key": dedup_key,
            "payload": {
                "summary": summary,
                "source": "web-1",
                "severity": "error",
                "custom_details": details,
            },
        }
    )[1]
    return ingest.alert_ingest(integration=integration, event=event, received_at=at)


def open_page(client, user, incident, **params):
    client.force_login(user)
    return client.get(url(incident), params)


def html(response) -> str:
    return response.content.decode()


# --- what it shows ------------------------------------------------------------------------------


def test_the_page_shows_the_incident_in_the_readers_zone(client, world):
    incident, rafa = world["incident"], world["rafa"]
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        workflow.incident_advance(incident=incident, now=T0 + timedelta(minutes=1))

    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        response = open_page(client, rafa, incident)

    assert response.status_code == 200
    page = html(response)
    assert f"#{incident.pk}" in page and "Checkout 5xx" in page
    assert "Checkout" in page and "Payments" in page
    assert '<span class="badge badge--triggered">Triggered</span>' in page
    assert "High urgency" in page
    # Rafa reads Tokyo time: triggered 12:00 UTC is 21:00 there.
    assert "2026-11-24 21:00:00" in page
    # Step 1 paged Rafa at 12:01; step 2 (Dana and the team) fires 10 min later, at 21:11.
    assert "Step 1 of 2, loop 1 of 2: Rafa Nadal" in page
    assert "Step 2 (Dana Scully and every lead and responder of Payments)" in page
    assert ">21:11</time>" in page
    assert ">in 6 min</time>" in page
    assert "Assigned to</dt><dd>Rafa Nadal" in page
    assert '<span class="muted">by Checkout alerts</span>' in page  # triggered by
    # Escalating without a choice goes to the step after the last that paged.
    assert '<option value="" selected>The next step (step 2: Dana Scully and every' in page


def test_the_whole_timeline_is_shown_newest_first_with_actor_channel_and_outcome(
    client, settings, world
):
    """Triggers, alerts, notifications sent and failed, acknowledgements, escalations,
    reassignments, urgency changes, notes, warnings and the resolution, each with who, how and
    when in the reader's zone (Dana: London, UTC+0 in November)."""
    incident, dana, rafa = world["incident"], world["dana"], world["rafa"]
    integration = world["integration"]
    at = T0
    with time_machine.travel(at, tick=False) as clock:

        def later(minutes=1):
            nonlocal at
            at = at + timedelta(minutes=minutes)
            clock.move_to(at)
            return at

        send_alert(integration, "Still failing", later())
        workflow.incident_advance(incident=incident, now=later())
        outbox.notifications_send_due(now=at, limit=10)  # Rafa by e-mail: sent (locmem)
        workflow.timeline_add(  # as outbox.py writes a failed attempt
            incident=incident,
            kind=TimelineEntry.Kind.NOTIFY_FAILED,
            at=later(),
            message="Notifying Rafa Nadal by SMS failed (attempt 1 of 5)",
            data={"contact_kind": "sms", "ok": False, "attempt": 1, "answer": "HTTP 500"},
        )
        workflow.incident_acknowledge(incident=incident, by=rafa, via=Channel.WEB, at=later())
        workflow.incident_set_urgency(
            incident=incident, by=dana, via=Channel.API, at=later(), urgency=Urgency.LOW
        )
        workflow.incident_add_note(
            incident=incident, by=dana, via=Channel.WEB, at=later(), text="Rolled back <b>v42</b>"
        )
        workflow.incident_reassign(
            incident=incident, by=dana, via=Channel.WEB, at=later(), policy=world["spare"]
        )
        workflow.incident_escalate(incident=incident, by=rafa, via=Channel.EMAIL, at=later())
        workflow.incident_resolve(incident=incident, by=dana, via=Channel.WEB, at=later())

        response = open_page(client, dana, incident)

    page = html(response)
    kinds = [entry.kind for entry in response.context["page"].timeline]
    assert kinds[0] == TimelineEntry.Kind.RESOLVED and kinds[-1] == TimelineEntry.Kind.TRIGGERED
    for label in (
        "Triggered",
        "Alert received",
        "Notified",
        "Notification failed",
        "Acknowledged",
        "Urgency changed",
        "Note",
        "Reassigned",
        "Escalated",
        "Resolved",
    ):
        assert f'<span class="tl-kind">{label}</span>' in page, label
    assert "Notified Rafa Nadal by" in page and "channel: E-mail" in page
    assert "channel: SMS" in page and "failed, attempt 1" in page
    assert "Rolled back &lt;b&gt;v42&lt;/b&gt;" in page  # a note is text, never markup
    assert "<span>by Dana Scully</span>" in page and "<span>via e-mail link</span>" in page
    assert '<time datetime="2026-11-24T12:06:00+00:00">2026-11-24 12:06:00</time>' in page
    assert "Resolved</dt><dd><time" in page and "by Dana Scully" in page


def test_the_acknowledgement_timeout_is_shown_with_its_countdown(client, world):
    incident, rafa = world["incident"], world["rafa"]
    # Set by a lead in the admin (no service function takes it yet).
    Service.objects.filter(pk=world["service"].pk).update(ack_timeout_minutes=30)
    before = html(open_page(client, rafa, incident))
    assert "30 min after an acknowledgement" in before

    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        workflow.incident_acknowledge(incident=incident, by=rafa, via=Channel.WEB, at=T0)
        page = html(open_page(client, rafa, incident))

    # 12:30 UTC is 21:30 in Rafa's Tokyo.
    assert '<time datetime="2026-11-24T21:30:00+09:00">21:30</time>' in page
    assert '<time datetime="2026-11-24T21:30:00+09:00" data-relative>in 28 min</time>' in page
    assert "none: acknowledged, escalation stopped" in page


def test_times_follow_the_readers_zone(client, world):
    incident = world["incident"]
    london = html(open_page(client, world["dana"], incident))
    tokyo = html(open_page(client, world["rafa"], incident))
    assert '<time datetime="2026-11-24T12:00:00+00:00">2026-11-24 12:00:00</time>' in london
    assert '<time datetime="2026-11-24T21:00:00+09:00">2026-11-24 21:00:00</time>' in tokyo


def test_alerts_are_listed_newest_first_with_their_payload_and_capped(client, world):
    incident = world["incident"]
    for n in range(1, 53):
        send_alert(
            world["integration"], f"5xx rate {n}%", T0 + timedelta(seconds=n), rate=n, x="<script>"
        )

    response = open_page(client, world["rafa"], incident)

    page = html(response)
    page = page[page.index('<section class="card incident-alerts"') :]
    assert '<h2 id="alerts-heading">Alerts <span class="count-pill">53</span></h2>' in page
    assert "Showing the newest 50 of 53 alerts; 3 older ones not shown." in page
    assert page.index("5xx rate 52%") < page.index("5xx rate 51%")
    assert "5xx rate 2%" not in page
    assert "Dedup key: <code>checkout-5xx</code>" in page
    assert "&quot;rate&quot;: 52" in page and "&lt;script&gt;" in page
    assert "<details" in page and "<details open" not in page


def test_timeline_entries_name_their_actor_and_keep_the_message_as_text(client, world):
    """The entries are built in Python (incident_views.timeline_html): a person without a
    display name is named by their full name, then their username; the portal's own entries
    say "by Oncall"; messages and names keep their lines and stay text; odd `data` shows
    nothing."""
    incident, dana = world["incident"], world["dana"]
    User = dana.__class__
    full = User.objects.create_user(username="kim", first_name="Kim <i>", last_name="Lee")
    bare = User.objects.create_user(username="zed")
    for actor, text in ((full, "first line\r\nsecond <line>"), (bare, "by the username")):
        workflow.incident_add_note(incident=incident, by=actor, via=Channel.API, at=T0, text=text)
    workflow.timeline_add(
        incident=incident,
        kind=TimelineEntry.Kind.WARNING,
        at=T0,
        message="Nobody is on call on step 2",
        data=["not", "a", "dict"],
    )

    page = html(open_page(client, dana, incident))

    assert "first line<br>second &lt;line&gt;" in page
    assert "<span>by Kim &lt;i&gt; Lee</span> <span>via API</span>" in page
    assert "<span>by zed</span> <span>via API</span>" in page
    warning = page[page.index('<li class="tl-entry tl-entry--warning">') :]
    warning = warning[: warning.index("</li>")]
    assert '<p class="tl-entry__meta"><span>by Oncall</span></p>' in warning
    assert "(4 entries, newest first)" in page


def test_a_huge_payload_is_cut_and_says_where_the_whole_alert_is(client, world):
    incident = world["incident"]
    send_alert(world["integration"], "Huge", T0 + timedelta(seconds=1), dump="x" * 60_000)

    page = html(open_page(client, world["rafa"], incident))

    api = reverse("api:incident-alerts", args=[incident.pk])
    cut = f"The payload is cut here, after {PAYLOAD_SHOWN_CHARS:,} characters"
    assert page.count(cut) == 1  # the huge one; the first alert is shown whole
    assert f"the whole alert is in the API: <code>{api}</code>" in page
    assert "x" * 60_000 not in page and "x" * 10_000 in page
    assert len(page) < 100_000


def test_pretty_json_stops_at_its_limit():
    assert pretty_json({"a": [1, 2]}, limit=100) == ('{\n  "a": [\n    1,\n    2\n  ]\n}', False)
    text, cut = pretty_json({"a": "é" * 50}, limit=20)
    assert cut and text == '{\n  "a": "' + "é" * 10  # 20 characters
    assert pretty_json(list(range(5)), limit=len(json.dumps(list(range(5)), indent=2))) == (
        json.dumps(list(range(5)), indent=2),
        False,
    )


# --- the actions offered in each status ---------------------------------------------------------


def offered(response) -> set[str]:
    page = html(response)
    return {
        action
        for action in ("acknowledge", "resolve", "escalate", "reassign", "note", "urgency")
        if f'data-action="{action}"' in page
    }


def test_a_triggered_incident_offers_every_action(client, world):
    response = open_page(client, world["rafa"], world["incident"])
    assert offered(response) == {
        "acknowledge",
        "resolve",
        "escalate",
        "reassign",
        "note",
        "urgency",
    }
    page = html(response)
    assert 'aria-keyshortcuts="a"' in page and 'aria-keyshortcuts="r"' in page
    assert "Shortcuts: <kbd>A</kbd> acknowledge · <kbd>R</kbd> resolve · <kbd>N</kbd> note" in page
    assert page.count('name="csrfmiddlewaretoken"') >= 6
    assert '<option value="2">Step 2: Dana Scully and every lead and responder of Payments' in page
    assert ">Dana Scully</option>" in page and ">Rafa Nadal</option>" in page
    assert "Olive Observer</option>" not in page  # observers are not paged
    assert ">Database experts</option>" in page


def test_an_incident_whose_policy_has_no_steps_offers_no_escalation(client, world):
    Incident.objects.filter(pk=world["incident"].pk).update(policy_snapshot={"steps": []})
    response = open_page(client, world["rafa"], world["incident"])
    assert "escalate" not in offered(response)
    assert act(client, world["rafa"], world["incident"], "escalate").status_code == 302
    assert "it can&#x27;t be escalated" in html(client.get(url(world["incident"])))


def test_an_acknowledged_incident_cannot_be_acknowledged_again(client, world):
    workflow.incident_acknowledge(
        incident=world["incident"], by=world["dana"], via=Channel.WEB, at=timezone.now()
    )
    response = open_page(client, world["rafa"], world["incident"])
    assert offered(response) == {"resolve", "escalate", "reassign", "note", "urgency"}


def test_a_resolved_incident_only_takes_notes(client, world):
    workflow.incident_resolve(
        incident=world["incident"], by=world["dana"], via=Channel.WEB, at=timezone.now()
    )
    response = open_page(client, world["rafa"], world["incident"])
    assert offered(response) == {"note"}
    assert "Shortcuts:" not in html(response)


# --- each action through the page ----------------------------------------------------------------


def act(client, who, incident, action, **data):
    client.force_login(who)
    return client.post(url(incident, action), data)


def last_entry(incident) -> TimelineEntry:
    return TimelineEntry.objects.filter(incident=incident).order_by("-id").first()


def test_acknowledge_through_the_page(client, world):
    incident, rafa = world["incident"], world["rafa"]

    response = act(client, rafa, incident, "acknowledge")

    assert response.status_code == 302 and response["Location"] == url(incident)
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED and incident.acknowledged_by == rafa
    entry = last_entry(incident)
    assert (entry.kind, entry.actor, entry.channel) == ("acknowledged", rafa, Channel.WEB)
    page = html(client.get(response["Location"]))
    assert f"Incident #{incident.pk} acknowledged: escalation has stopped." in page


def test_resolve_through_the_page(client, world):
    incident, dana = world["incident"], world["dana"]
    response = act(client, dana, incident, "resolve")
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.resolved_by == dana
    assert (last_entry(incident).kind, last_entry(incident).channel) == ("resolved", "web")
    assert f"Incident #{incident.pk} resolved." in html(client.get(url(incident)))


def test_escalate_to_the_next_step_or_a_chosen_one(client, world):
    incident, rafa = world["incident"], world["rafa"]
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        workflow.incident_advance(incident=incident, now=timezone.now())  # step 1 paged Rafa

        act(client, rafa, incident, "escalate")
        entry = last_entry(incident)
        assert (entry.kind, entry.actor, entry.channel) == ("escalated", rafa, Channel.WEB)
        assert entry.message == "Escalated by hand to step 2"
        assert f"Incident #{incident.pk} escalated to step 2." in html(client.get(url(incident)))

        response = act(client, rafa, incident, "escalate", step="1")
        assert response.status_code == 302
        assert last_entry(incident).message == "Escalated by hand to step 1"


def test_reassign_to_a_person_or_a_policy(client, world):
    incident, dana, rafa = world["incident"], world["dana"], world["rafa"]

    act(client, rafa, incident, "reassign", target="user", user=str(dana.pk))
    incident.refresh_from_db()
    assert incident.policy_snapshot["steps"][0]["users"] == [dana.pk]
    entry = TimelineEntry.objects.filter(incident=incident, kind="reassigned").last()
    assert (entry.actor, entry.channel) == (rafa, Channel.WEB)
    assert "reassigned to Dana Scully, who is paged now." in html(client.get(url(incident)))

    act(client, rafa, incident, "reassign", target="policy", policy=str(world["spare"].pk))
    incident.refresh_from_db()
    assert incident.escalation_policy == world["spare"]
    entry = last_entry(incident)
    assert (entry.kind, entry.message) == (
        "reassigned",
        "Reassigned to escalation policy Database experts",
    )
    assert "reassigned to the escalation policy Database experts." in html(
        client.get(url(incident))
    )


def test_add_a_note_even_when_resolved(client, world):
    incident, rafa = world["incident"], world["rafa"]
    workflow.incident_resolve(incident=incident, by=rafa, via=Channel.WEB, at=timezone.now())

    response = act(client, rafa, incident, "note", text="  Root cause: expired certificate  ")

    assert response.status_code == 302
    entry = last_entry(incident)
    assert (entry.kind, entry.message, entry.actor) == (
        "note",
        "Root cause: expired certificate",
        rafa,
    )
    assert "Note added to the timeline." in html(client.get(url(incident)))


def test_change_the_urgency(client, world):
    incident, rafa = world["incident"], world["rafa"]
    act(client, rafa, incident, "urgency", urgency="low")
    incident.refresh_from_db()
    assert incident.urgency == Urgency.LOW
    assert (last_entry(incident).kind, last_entry(incident).actor) == ("urgency", rafa)
    page = html(client.get(url(incident)))
    assert "is now low urgency." in page and "Raise to high urgency" in page


# --- stale actions and bad input ----------------------------------------------------------------


def test_acknowledging_what_another_tab_resolved_says_who_and_when(client, world):
    incident, dana, rafa = world["incident"], world["dana"], world["rafa"]
    with time_machine.travel(T0 + timedelta(minutes=3), tick=False):
        open_page(client, rafa, incident)  # the page, with its Acknowledge button
        workflow.incident_resolve(incident=incident, by=dana, via=Channel.WEB, at=timezone.now())

        response = act(client, rafa, incident, "acknowledge")

        assert response.status_code == 302 and response["Location"] == url(incident)
        page = html(client.get(url(incident)))
    # Rafa reads Tokyo time: 12:03 UTC is 21:03 there.
    assert (
        f"Incident #{incident.pk} was resolved by Dana Scully at 21:03; "
        "it can&#x27;t be acknowledged." in page
    )
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED and incident.acknowledged_at is None


def test_acknowledging_twice_says_who_was_first(client, world):
    incident, dana, rafa = world["incident"], world["dana"], world["rafa"]
    with time_machine.travel(T0 + timedelta(minutes=2), tick=False):
        workflow.incident_acknowledge(
            incident=incident, by=dana, via=Channel.API, at=timezone.now()
        )
        act(client, rafa, incident, "acknowledge")
        page = html(client.get(url(incident)))
    assert f"Incident #{incident.pk} was acknowledged by Dana Scully at 21:02" in page


def test_a_refusal_raised_by_the_workflow_in_a_race_is_a_message(client, world, monkeypatch):
    """Legal when checked, refused inside the workflow's lock (someone was quicker)."""
    incident, dana, rafa = world["incident"], world["dana"], world["rafa"]
    real = workflow.incident_acknowledge

    def quicker(**kwargs):
        workflow.incident_resolve(incident=incident, by=dana, via=Channel.API, at=timezone.now())
        return real(**kwargs)

    monkeypatch.setattr(workflow, "incident_acknowledge", quicker)
    response = act(client, rafa, incident, "acknowledge")
    assert response.status_code == 302
    assert "was resolved by Dana Scully" in html(client.get(url(incident)))


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        ("note", {"text": "   "}, "Write the note first: it is empty."),
        ("note", {"text": "x" * 10_001}, "A note may be at most 10,000 characters"),
        ("escalate", {"step": "7"}, "Choose a step of the escalation policy (1 to 2)."),
        ("escalate", {"step": "two"}, "Choose a step of the escalation policy (1 to 2)."),
        ("reassign", {}, "Choose a person or an escalation policy."),
        ("reassign", {"target": "user"}, "Choose the person to hand the incident to."),
        ("reassign", {"target": "user", "user": "999999"}, "leads and responders"),
        ("reassign", {"target": "policy", "policy": "abc"}, "escalation policies"),
        ("urgency", {"urgency": "urgent"}, "Urgency is high or low."),
        ("urgency", {"urgency": "high"}, "The incident is already high urgency."),
    ],
)
def test_bad_input_rerenders_the_page_with_the_error_and_400(client, world, action, data, message):
    incident = world["incident"]
    before = TimelineEntry.objects.filter(incident=incident).count()

    response = act(client, world["rafa"], incident, action, **data)

    assert response.status_code == 400
    page = html(response)
    assert message.replace("'", "&#x27;") in page
    assert "Checkout 5xx" in page and 'data-action="acknowledge"' in page
    assert TimelineEntry.objects.filter(incident=incident).count() == before


def test_reassigning_to_another_teams_person_or_policy_is_refused(client, world):
    incident = world["incident"]
    other_policy = world["other"].escalation_policies.first()
    for data in (
        {"target": "user", "user": str(world["bruno"].pk)},
        {"target": "user", "user": str(world["olive"].pk)},
        {"target": "policy", "policy": str(other_policy.pk)},
    ):
        assert act(client, world["rafa"], incident, "reassign", **data).status_code == 400
    assert not TimelineEntry.objects.filter(incident=incident, kind="reassigned").exists()


def test_the_note_typed_is_kept_when_the_page_comes_back_with_an_error(client, world):
    response = act(client, world["rafa"], world["incident"], "note", text="x" * 10_001)
    assert response.status_code == 400
    assert ">" + "x" * 10_001 + "</textarea>" in html(response)


def test_actions_answer_only_to_post(client, world):
    client.force_login(world["rafa"])
    assert client.get(url(world["incident"], "acknowledge")).status_code == 405


# --- who may open it ----------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_sign_in(client, world):
    target = url(world["incident"])
    response = client.get(target)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={target}"
    assert client.post(url(world["incident"], "resolve")).status_code == 302
    world["incident"].refresh_from_db()
    assert world["incident"].status == Incident.Status.TRIGGERED


def test_observers_get_the_403_page_and_cannot_act(client, world):
    incident = world["incident"]
    response = open_page(client, world["olive"], incident)
    assert response.status_code == 403
    assert "Observers read their teams" in html(response)
    assert act(client, world["olive"], incident, "acknowledge").status_code == 403
    client.force_login(world["olive"])
    assert client.get(url(incident, "live")).status_code == 403
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


def test_another_teams_incident_is_the_403_page_saying_why(client, world):
    """A responder of another team gets the 403 page naming the incident's team; nothing they
    post changes it."""
    incident = world["incident"]
    bruno = world["bruno"]
    response = open_page(client, bruno, incident)
    assert response.status_code == 403
    assert any(t.name == "errors/403.html" for t in response.templates)
    assert "a team you are not a member of" in html(response)
    assert act(client, bruno, incident, "resolve").status_code == 403
    client.force_login(bruno)
    assert client.get(url(incident, "live")).status_code == 403
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


def test_an_unknown_incident_is_the_404_page(client, world):
    client.force_login(world["rafa"])
    response = client.get("/incidents/999999/")
    assert response.status_code == 404
    assert any(t.name == "errors/404.html" for t in response.templates)


def test_a_superuser_may_open_and_act_on_any_incident(client, world):
    root = UserFactory(username="root", is_superuser=True)
    assert open_page(client, root, world["incident"]).status_code == 200
    assert act(client, root, world["incident"], "acknowledge").status_code == 302


# --- live updates -------------------------------------------------------------------------------


def live(client, user, incident, version=""):
    client.force_login(user)
    response = client.get(url(incident, "live"), {"version": version})
    assert response.status_code == 200
    assert "no-cache" in response["Cache-Control"]
    return response.json()


def test_live_answers_unchanged_while_nothing_happened(client, world):
    incident, rafa = world["incident"], world["rafa"]
    version = open_page(client, rafa, incident).context["page"].version
    assert live(client, rafa, incident, version) == {"changed": False, "version": version}


def test_live_sends_the_new_regions_and_an_announcement_after_a_change(client, world):
    incident, dana, rafa = world["incident"], world["dana"], world["rafa"]
    version = open_page(client, rafa, incident).context["page"].version

    workflow.incident_resolve(incident=incident, by=dana, via=Channel.API, at=timezone.now())
    data = live(client, rafa, incident, version)

    assert data["changed"] is True and data["version"] != version
    assert data["status"] == "resolved" and data["status_label"] == "Resolved"
    assert set(data["regions"]) == {"head", "status", "postmortem", "actions", "timeline", "alerts"}
    # Resolved while the page was open: the offer to write the postmortem appears without a reload.
    assert "Create postmortem" in data["regions"]["postmortem"]
    assert '<span class="badge badge--resolved">Resolved</span>' in data["regions"]["status"]
    assert '<span class="tl-kind">Resolved</span>' in data["regions"]["timeline"]
    assert 'data-action="acknowledge"' not in data["regions"]["head"]
    assert 'data-action="note"' not in "".join(data["regions"].values())  # never swapped
    assert data["announcement"].startswith(f"Incident #{incident.pk} is now resolved.")
    assert "Resolved (Dana Scully)" in data["announcement"]
    # And now it is current again.
    assert live(client, rafa, incident, data["version"])["changed"] is False


def test_live_notices_an_alert_attached_by_ingest(client, world):
    incident, rafa = world["incident"], world["rafa"]
    version = open_page(client, rafa, incident).context["page"].version
    Incident.objects.filter(pk=incident.pk).update(alert_count=4)  # as ingest's F() update
    assert live(client, rafa, incident, version)["changed"] is True


def test_live_with_a_garbled_version_sends_everything(client, world):
    data = live(client, world["rafa"], world["incident"], "<garbage>")
    assert data["changed"] is True and data["announcement"] == ""
    head = data["regions"]["head"]  # the forms swapped in work: they carry a CSRF token
    assert 'data-action="acknowledge"' in head and 'name="csrfmiddlewaretoken"' in head


def test_live_needs_a_signed_in_reader(client, world):
    response = client.get(url(world["incident"], "live"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


# --- query counts -------------------------------------------------------------------------------


def grow(world, n: int) -> None:
    """n alerts, n timeline notes, n notifications and their entries on the incident."""
    incident, dana = world["incident"], world["dana"]
    for i in range(n):
        send_alert(world["integration"], f"alert {i}", T0 + timedelta(seconds=i))
        workflow.incident_add_note(
            incident=incident, by=dana, via=Channel.WEB, at=T0, text=f"note {i}"
        )
    now = T0 + timedelta(minutes=1)
    workflow.incident_advance(incident=incident, now=now)
    for i in range(n):
        workflow.timeline_add(
            incident=incident,
            kind=TimelineEntry.Kind.NOTIFIED,
            at=now,
            message=f"Notified {i}",
            data={"contact_kind": "email", "ok": True},
        )
    page_row = incident.pages.first()
    Notification.objects.bulk_create(
        Notification(
            incident=incident,
            user=world["rafa"],
            channel="sms",
            status="sent",
            due_at=now,
            page=page_row,
            rule_delay_minutes=1000 + i,
        )
        for i in range(n)
    )


@pytest.mark.parametrize("size", [3, 40])
def test_query_count_does_not_grow_with_the_incident(
    client, world, django_assert_num_queries, size
):
    grow(world, size)
    incident, rafa = world["incident"], world["rafa"]
    client.force_login(rafa)
    assert TimelineEntry.objects.filter(incident=incident).count() > 2 * size
    with django_assert_num_queries(PAGE_QUERIES):
        response = client.get(url(incident))
    assert response.status_code == 200
    assert f"note {size - 1}" in html(response)
    with django_assert_num_queries(LIVE_UNCHANGED_QUERIES):
        client.get(url(incident, "live"), {"version": response.context["page"].version})
    with django_assert_num_queries(LIVE_CHANGED_QUERIES):
        client.get(url(incident, "live"), {"version": "0"})


# Session, user and profile (middleware); the incident, the reader's roles, assignees, timeline,
# alerts, notification counts, the policy's users and teams, the team's people and policies to
# reassign to, and the postmortem link (postmortems app).
PAGE_QUERIES = 14
# Session, user, profile; the incident (access), roles, the version marker.
LIVE_UNCHANGED_QUERIES = 6
# ...then the page's reads again, without the roles (cached) and the postmortem link.
LIVE_CHANGED_QUERIES = LIVE_UNCHANGED_QUERIES + PAGE_QUERIES - 4


def test_clock_times_say_the_day_when_it_is_not_today():
    with time_machine.travel(T0, tick=False), timezone.override(ZoneInfo("Asia/Tokyo")):
        assert _clock(T0 + timedelta(minutes=10)) == "21:10"
        assert _clock(T0 + timedelta(hours=10)) == "25 Nov 07:00"


def test_relative_times():
    assert relative(T0 + timedelta(minutes=4, seconds=10), T0) == "in 4 min"
    assert relative(T0 - timedelta(minutes=2), T0) == "2 min ago"
    assert relative(T0 + timedelta(seconds=20), T0) == "now"
    assert relative(T0 + timedelta(minutes=65), T0) == "in 1 h 5 min"
    assert relative(T0 + timedelta(days=3), T0) == "in 3 d"
    assert relative(None, T0) == ""


def test_payload_json_is_pretty_printed(client, world):
    incident = world["incident"]
    alert = incident.alerts.get()
    page = html(open_page(client, world["rafa"], incident))
    pretty = json.dumps(alert.payload, indent=2).replace('"', "&quot;")
    assert pretty in page
    assert "\n  &quot;" in pretty
