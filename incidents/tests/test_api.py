"""/api/v1/ incidents, services and escalation policies: every endpoint, every role, the filters,
the actions through the workflow, clear 400/403/404/409s, the schema and pinned query counts."""

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from incidents import workflow
from incidents.models import Alert, Channel, Service, TimelineEntry
from incidents.services import (
    escalation_policy_create,
    escalation_step_add,
    integration_create,
    service_create,
)
from oncall import services as people
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory, contact_method

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
API = "/api/v1"


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


@pytest.fixture
def world():
    """Alpha: a lead, two responders (paged by the steps) and an observer, a two-step policy on
    the "API" service. Bravo: its own lead and service. A superuser, and one person who observes
    Alpha but responds in Bravo."""
    lead = UserFactory(username="lead")
    first = UserFactory(username="first")
    second = UserFactory(username="second")
    observer = UserFactory(username="observer")
    mixed = UserFactory(username="mixed")
    outsider = UserFactory(username="outsider")
    root = UserFactory(username="root", is_superuser=True)
    for user in (lead, first, second):
        method = contact_method(user)
        people.notification_rule_create(
            user=user, contact_method=method, delay_minutes=0, urgency="high"
        )
    alpha = TeamFactory(
        name="Alpha",
        lead=lead,
        members=[
            (first, Role.RESPONDER),
            (second, Role.RESPONDER),
            (observer, Role.OBSERVER),
            (mixed, Role.OBSERVER),
        ],
    )
    bravo = TeamFactory(name="Bravo", lead=outsider, members=[(mixed, Role.RESPONDER)])
    policy = escalation_policy_create(team=alpha, name="Two steps", repeat_count=1)
    escalation_step_add(policy=policy, delay_minutes=10, users=[first])
    escalation_step_add(policy=policy, delay_minutes=10, users=[second])
    api = service_create(team=alpha, name="API", escalation_policy=policy)
    events = integration_create(service=api, name="Events", kind="events_v2")
    return {
        "lead": lead,
        "first": first,
        "second": second,
        "observer": observer,
        "mixed": mixed,
        "outsider": outsider,
        "root": root,
        "alpha": alpha,
        "bravo": bravo,
        "policy": policy,
        "api": api,
        "events": events,
        "alpha_default": Service.objects.get(team=alpha, name="Alpha default service"),
        "bravo_service": Service.objects.get(team=bravo),
    }


def trigger(service, at=T0, title="Disk full", **kwargs):
    return workflow.incident_trigger(service=service, title=title, at=at, **kwargs)


def paged_incident(world, at=T0, dedup_key="disk"):
    """An incident on API whose first step has paged `first`."""
    incident = trigger(world["api"], at=at, integration=world["events"], dedup_key=dedup_key)
    workflow.incident_advance(incident=incident, now=at)
    return incident


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


# --- authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/incidents/",
        "/incidents/1/",
        "/incidents/1/timeline/",
        "/services/",
        "/escalation-policies/",
        "/metrics/response-times/",
    ],
)
def test_anonymous_callers_are_refused(path):
    response = APIClient().get(API + path)
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/json")


def test_a_wrong_token_is_refused(world):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Token not-a-token")
    assert client.get(f"{API}/incidents/").status_code == 401


# --- incident list: who sees what ----------------------------------------------------------------


@pytest.fixture
def two_incidents(world):
    mine = trigger(world["api"], at=T0)
    theirs = trigger(world["bravo_service"], at=T0 + timedelta(minutes=1))
    return mine, theirs


@pytest.mark.parametrize("who", ["lead", "first"])
def test_leads_and_responders_list_their_teams_incidents(world, two_incidents, who):
    mine, _ = two_incidents
    response = client_for(world[who]).get(f"{API}/incidents/")
    assert response.status_code == 200
    assert ids(response) == [mine.pk]
    row = response.json()["results"][0]
    assert row["service"] == {"id": world["api"].pk, "name": "API"}
    assert row["team"] == {"id": world["alpha"].pk, "slug": "alpha", "name": "Alpha"}
    assert row["status"] == "triggered"
    assert row["url"].endswith(f"/api/v1/incidents/{mine.pk}/")


def test_superusers_list_every_incident(world, two_incidents):
    mine, theirs = two_incidents
    assert ids(client_for(world["root"]).get(f"{API}/incidents/")) == [theirs.pk, mine.pk]


def test_observers_get_403_saying_why(world, two_incidents):
    response = client_for(world["observer"]).get(f"{API}/incidents/")
    assert response.status_code == 403
    assert "Observers read their teams' reports" in response.json()["detail"]


def test_observer_of_one_team_and_responder_of_another_sees_the_second(world, two_incidents):
    _, theirs = two_incidents
    assert ids(client_for(world["mixed"]).get(f"{API}/incidents/")) == [theirs.pk]


def test_somebody_in_no_team_sees_nothing(world, two_incidents):
    loner = UserFactory()
    response = client_for(loner).get(f"{API}/incidents/")
    assert response.status_code == 200
    assert response.json()["count"] == 0


# --- incident list: filters ----------------------------------------------------------------------


@pytest.fixture
def many(world):
    """Five Alpha incidents in different states, urgencies and services, an hour apart."""
    lead, first = world["lead"], world["first"]
    api, default = world["api"], world["alpha_default"]
    at = [T0 + timedelta(hours=n) for n in range(5)]
    triggered = paged_incident(world, at=at[0])  # assigned to `first`
    acked = trigger(api, at=at[1], title="acked")
    workflow.incident_acknowledge(incident=acked, by=lead, via=Channel.WEB, at=at[1])
    resolved = trigger(api, at=at[2], title="resolved")
    workflow.incident_resolve(incident=resolved, by=lead, via=Channel.WEB, at=at[2])
    low = trigger(default, at=at[3], title="low", urgency="low")
    other_service = trigger(default, at=at[4], title="other service")
    trigger(world["bravo_service"], at=at[4], title="Bravo's")
    return {
        "triggered": triggered,
        "acked": acked,
        "resolved": resolved,
        "low": low,
        "other_service": other_service,
        "first": first,
    }


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["other_service", "low", "resolved", "acked", "triggered"]),
        ({"status": "all"}, ["other_service", "low", "resolved", "acked", "triggered"]),
        ({"status": "open"}, ["other_service", "low", "acked", "triggered"]),
        ({"status": "triggered"}, ["other_service", "low", "triggered"]),
        ({"status": "acknowledged"}, ["acked"]),
        ({"status": "resolved"}, ["resolved"]),
        ({"status": "acknowledged,resolved"}, ["resolved", "acked"]),
        ({"status": ["acknowledged", "resolved"]}, ["resolved", "acked"]),
        ({"urgency": "low"}, ["low"]),
        ({"urgency": "high", "status": "triggered"}, ["other_service", "triggered"]),
        ({"assigned_to": "me"}, ["triggered"]),
        ({"since": "2026-03-02T11:00:00+01:00"}, ["other_service", "low", "resolved", "acked"]),
        ({"until": "2026-03-02T12:00:00+01:00"}, ["acked", "triggered"]),
        (
            {"since": "2026-03-02T10:00:00Z", "until": "2026-03-02T12:00:00Z"},
            ["resolved", "acked"],
        ),
        # a `+` not written as %2B arrives as a space: still read as the offset's sign
        ({"since": "2026-03-02T11:00:00 01:00"}, ["other_service", "low", "resolved", "acked"]),
    ],
)
def test_list_filters(world, many, params, expected):
    response = client_for(many["first"]).get(f"{API}/incidents/", params)
    assert response.status_code == 200, response.json()
    assert ids(response) == [many[name].pk for name in expected]


def test_filter_by_service_and_team(world, many):
    client = client_for(world["root"])
    api = world["api"].pk
    by_service = client.get(f"{API}/incidents/", {"service": api})
    assert ids(by_service) == [many[n].pk for n in ("resolved", "acked", "triggered")]
    both = client.get(f"{API}/incidents/", {"service": f"{api},{world['alpha_default'].pk}"})
    assert both.json()["count"] == 5
    for team in (world["alpha"].pk, "alpha"):
        assert client.get(f"{API}/incidents/", {"team": team}).json()["count"] == 5
    assert client.get(f"{API}/incidents/", {"team": "bravo"}).json()["count"] == 1


def test_assigned_to_a_user_id(world, many):
    response = client_for(world["lead"]).get(
        f"{API}/incidents/", {"assigned_to": world["first"].pk}
    )
    assert ids(response) == [many["triggered"].pk]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "firing"}, "status"),
        ({"status": "open,nope"}, "status"),
        ({"urgency": "urgent"}, "urgency"),
        ({"assigned_to": "you"}, "assigned_to"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-02T10:00:00"}, "since"),  # no offset: refused, not guessed
        ({"until": "2026-13-02T10:00:00Z"}, "until"),
        ({"since": "2026-03-03T00:00:00Z", "until": "2026-03-02T00:00:00Z"}, "until"),
        ({"team": "no-such-team"}, "team"),
        ({"team": "bravo"}, "team"),  # exists, but not one of the caller's teams
        ({"service": "api"}, "service"),
        ({"service": "999999"}, "service"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(world, many, params, field):
    response = client_for(world["first"]).get(f"{API}/incidents/", params)
    assert response.status_code == 400
    body = response.json()
    assert list(body) == [field]
    assert body[field][0]


def test_another_teams_service_is_refused_as_unknown(world, many):
    response = client_for(world["first"]).get(
        f"{API}/incidents/", {"service": world["bravo_service"].pk}
    )
    assert response.status_code == 400
    assert "service" in response.json()


def test_pagination_newest_first(world, many):
    client = client_for(world["lead"])
    first_page = client.get(f"{API}/incidents/", {"page_size": 2}).json()
    assert first_page["count"] == 5
    assert [r["id"] for r in first_page["results"]] == [
        many["other_service"].pk,
        many["low"].pk,
    ]
    second_page = client.get(first_page["next"]).json()
    assert [r["id"] for r in second_page["results"]] == [many["resolved"].pk, many["acked"].pk]
    assert client.get(f"{API}/incidents/", {"page": 99}).status_code == 404


def test_same_triggered_time_is_ordered_by_id_newest_first(world):
    older = trigger(world["api"], at=T0)
    newer = trigger(world["api"], at=T0)
    assert ids(client_for(world["lead"]).get(f"{API}/incidents/")) == [newer.pk, older.pk]


def make_paged_incidents(world, count):
    for n in range(count):
        paged_incident(world, at=T0 + timedelta(minutes=n), dedup_key=f"disk-{n}")


@pytest.mark.parametrize("count", [2, 7])
@pytest.mark.parametrize("who", ["lead", "root"])
def test_incident_list_query_count_is_fixed(world, django_assert_num_queries, count, who):
    """Token, roles, count, page (with service, team, last page step), assignees."""
    make_paged_incidents(world, count)
    client = client_for(world[who])
    with django_assert_num_queries(5):
        response = client.get(f"{API}/incidents/", {"status": "open"})
    assert len(response.json()["results"]) == count
    assert all(row["assignees"] for row in response.json()["results"])
    with django_assert_num_queries(6):  # + the team looked up
        response = client.get(f"{API}/incidents/", {"team": "alpha", "urgency": "high"})
    assert len(response.json()["results"]) == count


# --- incident detail ------------------------------------------------------------------------------


def test_detail_shows_service_team_milestones_assignees_and_escalation(world):
    incident = paged_incident(world)
    response = client_for(world["first"]).get(f"{API}/incidents/{incident.pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == incident.pk
    assert body["title"] == "Disk full"
    assert body["service"] == {"id": world["api"].pk, "name": "API"}
    assert body["team"]["slug"] == "alpha"
    assert body["status"] == "triggered"
    assert body["urgency"] == "high"
    assert body["dedup_key"] == "disk"
    assert body["triggered_at"] == "2026-03-02T09:00:00Z"
    assert body["acknowledged_at"] is None and body["resolved_at"] is None
    assert body["acknowledged_by"] is None
    assert [a["username"] for a in body["assignees"]] == ["first"]
    assert body["assignees"][0]["name"] == "First"
    assert body["current_step"] == 1
    assert body["next_escalation_at"] == "2026-03-02T09:10:00Z"
    assert body["escalation"] == {
        "policy": {"id": world["policy"].pk, "name": "Two steps"},
        "step_count": 2,
        "repeat_count": 1,
        "loop": 1,
        "current_step": 1,
        "leads_paged": False,
        "next_step": 2,
        "next_escalation_at": "2026-03-02T09:10:00Z",
    }
    assert body["timeline_url"].endswith(f"/api/v1/incidents/{incident.pk}/timeline/")


def test_detail_shows_the_details_without_secrets(world):
    incident = trigger(world["api"], details={"custom_details": {"token": "s3cret", "disk": "/"}})
    body = client_for(world["lead"]).get(f"{API}/incidents/{incident.pk}/").json()
    assert body["details"] == {"custom_details": {"token": "[redacted]", "disk": "/"}}


def test_detail_after_acknowledgement_has_the_milestone_and_nothing_due(world):
    incident = paged_incident(world)
    workflow.incident_acknowledge(
        incident=incident, by=world["first"], via=Channel.WEB, at=T0 + timedelta(minutes=3)
    )
    body = client_for(world["lead"]).get(f"{API}/incidents/{incident.pk}/").json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_at"] == "2026-03-02T09:03:00Z"
    assert body["acknowledged_by"]["username"] == "first"
    assert body["escalation"]["next_step"] is None
    assert body["next_escalation_at"] is None


def test_detail_before_anybody_was_paged(world):
    incident = trigger(world["api"])
    body = client_for(world["lead"]).get(f"{API}/incidents/{incident.pk}/").json()
    assert body["current_step"] is None
    assert body["escalation"]["next_step"] == 1


def test_detail_when_only_the_leads_could_be_paged(world):
    for user in (world["first"], world["second"]):
        user.contact_methods.all().delete()
    incident = paged_incident(world)
    body = client_for(world["lead"]).get(f"{API}/incidents/{incident.pk}/").json()
    assert body["current_step"] is None
    assert body["escalation"]["leads_paged"] is True
    assert [a["username"] for a in body["assignees"]] == ["lead"]


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("lead", 200),
        ("first", 200),
        ("root", 200),
        ("observer", 403),
        ("mixed", 403),  # observer of Alpha, even though a responder elsewhere
        ("outsider", 404),
    ],
)
@pytest.mark.parametrize(
    "suffix", ["", "timeline/", "notifications/", "alerts/"], ids=["detail", "tl", "notif", "al"]
)
def test_who_may_read_one_incident(world, who, code, suffix):
    incident = paged_incident(world)
    response = client_for(world[who]).get(f"{API}/incidents/{incident.pk}/{suffix}")
    assert response.status_code == code
    assert response["Content-Type"].startswith("application/json")


@pytest.mark.parametrize("suffix", ["", "timeline/", "notifications/", "alerts/"])
def test_a_missing_incident_is_404_like_another_teams(world, suffix):
    response = client_for(world["root"]).get(f"{API}/incidents/999999/{suffix}")
    assert response.status_code == 404
    assert client_for(world["root"]).get(f"{API}/incidents/abc/").status_code == 404


def test_detail_query_count(world, django_assert_num_queries):
    incident = paged_incident(world)
    client = client_for(world["lead"])
    # token, roles, access check, the incident, its assignees
    with django_assert_num_queries(5):
        assert client.get(f"{API}/incidents/{incident.pk}/").status_code == 200


# --- timeline, notifications, alerts -------------------------------------------------------------


def test_timeline_oldest_first_with_actor_and_channel(world):
    incident = paged_incident(world)
    workflow.incident_add_note(
        incident=incident,
        by=world["first"],
        via=Channel.API,
        at=T0 + timedelta(minutes=1),
        text="Looking",
    )
    body = client_for(world["lead"]).get(f"{API}/incidents/{incident.pk}/timeline/").json()
    kinds = [row["kind"] for row in body["results"]]
    assert kinds == ["triggered", "escalated", "note"]
    note = body["results"][-1]
    assert note["actor"] == {"id": world["first"].pk, "username": "first", "name": "First"}
    assert note["channel"] == "api"
    assert note["message"] == "Looking"
    assert note["at"] == "2026-03-02T09:01:00Z"
    assert body["results"][0]["actor"] is None


def test_notifications_show_status_and_step_but_no_address(world):
    incident = paged_incident(world)
    body = client_for(world["lead"]).get(f"{API}/incidents/{incident.pk}/notifications/").json()
    assert body["count"] == 1
    row = body["results"][0]
    assert row["user"]["username"] == "first"
    assert row["channel"] == "email"
    assert row["status"] in ("pending", "sending", "sent", "failed", "skipped")
    assert row["step"] == 1 and row["loop"] == 1
    assert row["contact_method"]["kind"] == "email"
    assert "address" not in row["contact_method"]
    assert "first@example.com" not in json.dumps(body)


def test_alerts_newest_first_without_routing_keys(world, caplog):
    caplog.set_level(logging.DEBUG)
    incident = paged_incident(world)
    key = world["events"].key
    # Written directly: the ingest endpoints store alerts (built alongside this API).
    for n, action in enumerate(["trigger", "trigger"]):
        Alert.objects.create(
            incident=incident,
            integration=world["events"],
            received_at=T0 + timedelta(seconds=n),
            action=action,
            dedup_key="disk",
            summary=f"Disk full {n}",
            severity="critical",
            source="db1",
            payload={
                "routing_key": key,
                "event_action": action,
                "payload": {"summary": "Disk full", "custom_details": {"token": "s3cret"}},
            },
        )
    response = client_for(world["first"]).get(f"{API}/incidents/{incident.pk}/alerts/")
    body = response.json()
    assert [row["summary"] for row in body["results"]] == ["Disk full 1", "Disk full 0"]
    row = body["results"][0]
    assert row["integration"] == {"id": world["events"].pk, "name": "Events", "kind": "events_v2"}
    assert row["payload"]["routing_key"] == "[redacted]"
    assert row["payload"]["payload"]["custom_details"]["token"] == "[redacted]"
    assert row["payload"]["event_action"] == "trigger"
    assert key not in response.content.decode()
    assert "s3cret" not in response.content.decode()
    assert key not in caplog.text and "s3cret" not in caplog.text


@pytest.mark.parametrize("count", [1, 4])
def test_sub_list_query_counts_are_fixed(world, django_assert_num_queries, count):
    incident = paged_incident(world)
    for n in range(count):
        workflow.incident_add_note(
            incident=incident, by=world["lead"], via=Channel.API, at=T0, text=f"note {n}"
        )
        Alert.objects.create(
            incident=incident, integration=world["events"], received_at=T0, action="trigger"
        )
    client = client_for(world["lead"])
    for suffix in ("timeline", "notifications", "alerts"):
        # token, roles, access check, count, page
        with django_assert_num_queries(5):
            assert client.get(f"{API}/incidents/{incident.pk}/{suffix}/").status_code == 200


# --- actions ------------------------------------------------------------------------------------


def post(user, incident, action, data=None):
    return client_for(user).post(
        f"{API}/incidents/{incident.pk}/{action}/", data or {}, format="json"
    )


def last_entry(incident) -> TimelineEntry:
    return TimelineEntry.objects.filter(incident=incident).order_by("-at", "-id").first()


def test_acknowledge_then_again_is_409(world):
    incident = paged_incident(world)
    response = post(world["first"], incident, "acknowledge")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "acknowledged"
    assert body["acknowledged_by"]["username"] == "first"
    entry = last_entry(incident)
    assert (entry.kind, entry.channel, entry.actor) == ("acknowledged", "api", world["first"])
    again = post(world["first"], incident, "acknowledge")
    assert again.status_code == 409
    assert again.json() == {
        "detail": f"Incident #{incident.pk} is acknowledged: nothing to acknowledge."
    }


def test_resolve_with_a_note_then_again_is_409(world):
    incident = paged_incident(world)
    response = post(world["lead"], incident, "resolve", {"note": "Freed 20 GB"})
    assert response.status_code == 200
    assert response.json()["status"] == "resolved"
    assert response.json()["resolved_by"]["username"] == "lead"
    entry = last_entry(incident)
    assert (entry.kind, entry.channel, entry.message) == ("resolved", "api", "Freed 20 GB")
    again = post(world["lead"], incident, "resolve")
    assert again.status_code == 409
    assert "already resolved" in again.json()["detail"]
    assert post(world["lead"], incident, "acknowledge").status_code == 409


def test_escalate_to_the_next_step_and_to_a_chosen_one(world):
    incident = paged_incident(world)
    response = post(world["first"], incident, "escalate")
    assert response.status_code == 200
    entry = last_entry(incident)
    assert (entry.kind, entry.channel, entry.data) == ("escalated", "api", {"step": 1})
    assert response.json()["escalation"]["next_step"] == 2
    response = post(world["first"], incident, "escalate", {"step": 1})
    assert response.status_code == 200
    assert last_entry(incident).data == {"step": 0}
    assert response.json()["escalation"]["next_step"] == 1


@pytest.mark.parametrize("step", [0, -1, 3, "two"])
def test_escalate_to_a_step_that_does_not_exist_is_400(world, step):
    incident = paged_incident(world)
    response = post(world["first"], incident, "escalate", {"step": step})
    assert response.status_code == 400
    assert list(response.json()) == ["step"]


def test_escalating_a_resolved_incident_is_409(world):
    incident = paged_incident(world)
    workflow.incident_resolve(incident=incident, by=None, via=Channel.INTEGRATION, at=T0)
    response = post(world["first"], incident, "escalate")
    assert response.status_code == 409
    assert "resolved" in response.json()["detail"]


def test_reassign_to_a_person_and_to_a_policy(world):
    incident = paged_incident(world)
    response = post(world["first"], incident, "reassign", {"user": world["second"].pk})
    assert response.status_code == 200
    assert response.json()["escalation"]["policy"]["name"] == "Reassigned to second"
    assert (last_entry(incident).kind, last_entry(incident).channel) == ("reassigned", "api")
    default_policy = world["alpha_default"].escalation_policy
    response = post(world["first"], incident, "reassign", {"escalation_policy": default_policy.pk})
    assert response.status_code == 200
    assert response.json()["escalation"]["policy"] == {"id": default_policy.pk, "name": "Default"}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({}, "non_field_errors"),
        ({"user": 1, "escalation_policy": 1}, "non_field_errors"),
        ({"user": "someone"}, "user"),
        ({"user": "outsider"}, "user"),
        ({"user": "observer"}, "user"),
        ({"user": 999999}, "user"),
        ({"escalation_policy": "bravo"}, "escalation_policy"),
        ({"escalation_policy": 999999}, "escalation_policy"),
    ],
)
def test_reassign_refuses_bad_targets(world, data, field):
    incident = paged_incident(world)
    bravo_policy = world["bravo_service"].escalation_policy
    lookup = {"outsider": world["outsider"].pk, "observer": world["observer"].pk}
    data = {k: lookup.get(v, bravo_policy.pk if v == "bravo" else v) for k, v in data.items()}
    response = post(world["first"], incident, "reassign", data)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_reassign_to_a_policy_without_steps_is_400(world):
    incident = paged_incident(world)
    empty = escalation_policy_create(team=world["alpha"], name="Empty")
    response = post(world["first"], incident, "reassign", {"escalation_policy": empty.pk})
    assert response.status_code == 400
    assert "no steps" in response.json()["escalation_policy"][0]


def test_add_a_note(world):
    incident = paged_incident(world)
    response = post(world["second"], incident, "notes", {"text": "  Rolling back  "})
    assert response.status_code == 201
    body = response.json()
    assert body["kind"] == "note"
    assert body["message"] == "Rolling back"
    assert body["channel"] == "api"
    assert body["actor"]["username"] == "second"
    assert TimelineEntry.objects.filter(incident=incident, kind="note").count() == 1


@pytest.mark.parametrize("data", [{}, {"text": ""}, {"text": "   "}, {"text": "x" * 10_001}])
def test_a_note_needs_text(world, data):
    incident = paged_incident(world)
    response = post(world["first"], incident, "notes", data)
    assert response.status_code == 400
    assert list(response.json()) == ["text"]


def test_set_urgency(world):
    incident = paged_incident(world)
    response = post(world["first"], incident, "urgency", {"urgency": "low"})
    assert response.status_code == 200
    assert response.json()["urgency"] == "low"
    assert (last_entry(incident).kind, last_entry(incident).channel) == ("urgency", "api")
    assert post(world["first"], incident, "urgency", {"urgency": "low"}).status_code == 200
    bad = post(world["first"], incident, "urgency", {"urgency": "urgent"})
    assert bad.status_code == 400 and list(bad.json()) == ["urgency"]
    assert post(world["first"], incident, "urgency").status_code == 400


def test_malformed_json_is_400_not_500(world):
    incident = paged_incident(world)
    response = client_for(world["first"]).post(
        f"{API}/incidents/{incident.pk}/notes/", "{not json", content_type="application/json"
    )
    assert response.status_code == 400
    assert "JSON parse error" in response.json()["detail"]


ACTIONS = [
    ("acknowledge", {}),
    ("resolve", {}),
    ("escalate", {}),
    ("reassign", {"user": "lead"}),
    ("notes", {"text": "hi"}),
    ("urgency", {"urgency": "low"}),
]


@pytest.mark.parametrize(("action", "data"), ACTIONS, ids=[a for a, _ in ACTIONS])
@pytest.mark.parametrize(
    ("who", "code"),
    [("observer", 403), ("mixed", 403), ("outsider", 404), ("lead", None), ("root", None)],
)
def test_who_may_act(world, action, data, who, code):
    incident = paged_incident(world)
    data = {k: world[v] if v == "lead" else v for k, v in data.items()}
    data = {k: v.pk if hasattr(v, "pk") else v for k, v in data.items()}
    before = TimelineEntry.objects.filter(incident=incident).count()
    response = post(world[who], incident, action, data)
    if code is None:
        assert response.status_code in (200, 201), response.json()
        assert TimelineEntry.objects.filter(incident=incident).count() == before + 1
    else:
        assert response.status_code == code
        assert TimelineEntry.objects.filter(incident=incident).count() == before
        incident.refresh_from_db()
        assert (incident.status, incident.urgency) == ("triggered", "high")


def test_actions_only_by_post(world):
    incident = paged_incident(world)
    client = client_for(world["lead"])
    assert client.get(f"{API}/incidents/{incident.pk}/acknowledge/").status_code == 405
    assert client.delete(f"{API}/incidents/{incident.pk}/").status_code == 405
    assert client.post(f"{API}/incidents/", {}, format="json").status_code == 405


def test_session_auth_posts_need_the_csrf_token(world):
    incident = paged_incident(world)
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(world["lead"])
    assert client.get(f"{API}/incidents/{incident.pk}/").status_code == 200
    assert client.post(f"{API}/incidents/{incident.pk}/acknowledge/").status_code == 403
    incident.refresh_from_db()
    assert incident.status == "triggered"


# --- services and escalation policies ------------------------------------------------------------


def test_services_of_the_callers_teams_with_open_counts_and_no_keys(world):
    trigger(world["api"])
    response = client_for(world["first"]).get(f"{API}/services/")
    assert response.status_code == 200
    rows = {row["name"]: row for row in response.json()["results"]}
    assert set(rows) == {"Alpha default service", "API"}
    api = rows["API"]
    assert api["team"]["slug"] == "alpha"
    assert api["status"] == "active"
    assert api["escalation_policy"] == {"id": world["policy"].pk, "name": "Two steps"}
    assert api["open_incidents"] == 1
    assert api["integrations"] == [
        {"id": world["events"].pk, "name": "Events", "kind": "events_v2"}
    ]
    assert world["events"].key not in response.content.decode()


@pytest.mark.parametrize(
    ("who", "code"),
    [("lead", 200), ("first", 200), ("root", 200), ("observer", 403), ("outsider", 404)],
)
@pytest.mark.parametrize("kind", ["services", "escalation-policies"])
def test_who_may_read_a_service_or_policy(world, who, code, kind):
    pk = world["api"].pk if kind == "services" else world["policy"].pk
    response = client_for(world[who]).get(f"{API}/{kind}/{pk}/")
    assert response.status_code == code


@pytest.mark.parametrize("kind", ["services", "escalation-policies"])
def test_service_and_policy_lists_by_role(world, kind):
    assert client_for(world["observer"]).get(f"{API}/{kind}/").status_code == 403
    mixed = client_for(world["mixed"]).get(f"{API}/{kind}/").json()["results"]
    assert {row["team"]["slug"] for row in mixed} == {"bravo"}
    everything = client_for(world["root"]).get(f"{API}/{kind}/").json()["results"]
    assert {row["team"]["slug"] for row in everything} == {"alpha", "bravo"}
    only = client_for(world["root"]).get(f"{API}/{kind}/", {"team": "bravo"}).json()
    assert {row["team"]["slug"] for row in only["results"]} == {"bravo"}
    bad = client_for(world["first"]).get(f"{API}/{kind}/", {"team": "bravo"})
    assert bad.status_code == 400 and list(bad.json()) == ["team"]
    assert client_for(world["root"]).get(f"{API}/{kind}/999999/").status_code == 404


def test_policy_detail_with_steps_in_order(world):
    response = client_for(world["first"]).get(f"{API}/escalation-policies/{world['policy'].pk}/")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "Two steps"
    assert body["repeat_count"] == 1
    assert body["team"]["slug"] == "alpha"
    assert body["services"] == [{"id": world["api"].pk, "name": "API"}]
    assert [(s["position"], s["delay_minutes"]) for s in body["steps"]] == [(1, 10), (2, 10)]
    assert [[u["username"] for u in s["users"]] for s in body["steps"]] == [["first"], ["second"]]
    default = client_for(world["first"]).get(
        f"{API}/escalation-policies/{world['alpha_default'].escalation_policy.pk}/"
    )
    steps = default.json()["steps"]
    assert steps[0]["schedules"][0]["name"]
    assert steps[1]["users"][0]["username"] == "lead"


def test_policy_step_with_a_team_target(world):
    policy = escalation_policy_create(team=world["alpha"], name="Everyone")
    escalation_step_add(policy=policy, delay_minutes=5, teams=[world["alpha"]])
    body = client_for(world["lead"]).get(f"{API}/escalation-policies/{policy.pk}/").json()
    assert body["steps"][0]["teams"] == [
        {"id": world["alpha"].pk, "slug": "alpha", "name": "Alpha"}
    ]


@pytest.mark.parametrize("extra", [0, 3])
def test_service_and_policy_list_query_counts_are_fixed(world, django_assert_num_queries, extra):
    for n in range(extra):
        policy = escalation_policy_create(team=world["alpha"], name=f"Policy {n}")
        escalation_step_add(policy=policy, delay_minutes=5, users=[world["first"]])
        escalation_step_add(policy=policy, delay_minutes=5, teams=[world["alpha"]])
        service = service_create(team=world["alpha"], name=f"Service {n}", escalation_policy=policy)
        integration_create(service=service, name="Events", kind="events_v2")
        trigger(service)
    client = client_for(world["lead"])
    # token, roles, count, page, integrations
    with django_assert_num_queries(5):
        assert len(client.get(f"{API}/services/").json()["results"]) == 2 + extra
    # token, roles, count, page, steps, step users, schedules, teams, services
    with django_assert_num_queries(9):
        assert len(client.get(f"{API}/escalation-policies/").json()["results"]) == 2 + extra


# --- the schema ----------------------------------------------------------------------------------


def test_schema_contains_the_paths(world):
    client = client_for(world["lead"])
    response = client.get("/api/schema/", {"format": "json"})
    assert response.status_code == 200
    paths = response.json()["paths"]
    for path in [
        "/api/v1/incidents/",
        "/api/v1/incidents/{id}/",
        "/api/v1/incidents/{id}/timeline/",
        "/api/v1/incidents/{id}/notifications/",
        "/api/v1/incidents/{id}/alerts/",
        "/api/v1/incidents/{id}/acknowledge/",
        "/api/v1/incidents/{id}/resolve/",
        "/api/v1/incidents/{id}/escalate/",
        "/api/v1/incidents/{id}/reassign/",
        "/api/v1/incidents/{id}/notes/",
        "/api/v1/incidents/{id}/urgency/",
        "/api/v1/services/",
        "/api/v1/services/{id}/",
        "/api/v1/escalation-policies/",
        "/api/v1/escalation-policies/{id}/",
        "/api/v1/metrics/response-times/",
    ]:
        assert path in paths, path
    assert "post" in paths["/api/v1/incidents/{id}/acknowledge/"]
    assert "409" in paths["/api/v1/incidents/{id}/acknowledge/"]["post"]["responses"]
    params = {p["name"] for p in paths["/api/v1/incidents/"]["get"]["parameters"]}
    assert {"status", "team", "service", "urgency", "assigned_to", "since", "until"} <= params


def test_schema_generates_without_warnings(tmp_path):
    """`check --deploy` turns drf-spectacular's warnings into failures (test_deploy.py)."""
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yml")
    )
    assert "/api/v1/incidents/{id}/escalate/" in (tmp_path / "schema.yml").read_text()


@pytest.mark.parametrize(
    "path", ["/incidents/", "/incidents/{pk}/", "/incidents/{pk}/timeline/", "/services/"]
)
def test_the_browsable_api_renders(world, path):
    incident = paged_incident(world)
    client = APIClient()
    client.force_login(world["lead"])
    response = client.get(API + path.format(pk=incident.pk), HTTP_ACCEPT="text/html")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


HUGE = "9" * 25


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"until": "9999-12-31T23:59:59-01:00"}, "until"),
        ({"since": "2026-03-02T10:00:00+99:00"}, "since"),
        ({"service": HUGE}, "service"),
        ({"service": "0"}, "service"),
        ({"assigned_to": HUGE}, "assigned_to"),
        ({"team": HUGE}, "team"),
        ({"team": "²"}, "team"),
        ({"team": "9" * 5000}, "team"),
        ({"service": "²"}, "service"),
        ({"service": "9" * 5000}, "service"),
        ({"assigned_to": "²"}, "assigned_to"),
    ],
)
def test_out_of_range_filters_are_400_not_500(world, params, field):
    response = client_for(world["root"]).get(f"{API}/incidents/", params)
    assert response.status_code == 400
    assert list(response.json()) == [field]


@pytest.mark.parametrize(
    "path",
    [
        f"/incidents/{HUGE}/",
        f"/incidents/{HUGE}/timeline/",
        f"/incidents/{HUGE}/alerts/",
        f"/services/{HUGE}/",
        f"/escalation-policies/{HUGE}/",
    ],
)
def test_huge_ids_in_paths_are_404(world, path):
    assert client_for(world["root"]).get(API + path).status_code == 404
    if path.startswith("/incidents/") and path.count("/") == 3:
        assert client_for(world["root"]).post(API + path + "acknowledge/").status_code == 404


@pytest.mark.parametrize(
    ("action", "data", "field"),
    [
        ("escalate", {"step": 10**30}, "step"),
        ("reassign", {"user": 10**30}, "user"),
        ("reassign", {"escalation_policy": 10**30}, "escalation_policy"),
    ],
)
def test_huge_numbers_in_action_bodies_are_400(world, action, data, field):
    response = post(world["root"], paged_incident(world), action, data)
    assert response.status_code == 400
    assert list(response.json()) == [field]
