"""The services page: status, open incidents, endpoints and keys (leads only), monitors, and the
maintenance switch (leads only, through incidents.services.service_update)."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.test import override_settings
from django.urls import reverse

from incidents import ingest, workflow
from incidents import services as incident_services
from incidents.models import Heartbeat, HttpCheck, Integration, Service
from oncall import services
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

SERVICES = "/services/"
NOW = datetime(2025, 5, 7, 12, 0, tzinfo=UTC)


@pytest.fixture
def world():
    lead = UserFactory(username="lead")
    responder = UserFactory(username="responder")
    observer = UserFactory(username="observer")
    other_lead = UserFactory(username="other_lead")
    team = TeamFactory(
        name="Alpha",
        lead=lead,
        members=[(responder, Role.RESPONDER), (observer, Role.OBSERVER)],
    )
    other = TeamFactory(name="Bravo", lead=other_lead)
    service = Service.objects.get(team=team)
    return {
        "lead": lead,
        "responder": responder,
        "observer": observer,
        "other_lead": other_lead,
        "team": team,
        "service": service,
        "events": Integration.objects.get(service=service),
        "other_service": Service.objects.get(team=other),
    }


def get(client, user, at=NOW):
    client.force_login(user)
    with time_machine.travel(at, tick=False):
        return client.get(SERVICES)


def maintenance(client, user, service, value):
    client.force_login(user)
    return client.post(
        reverse("incidents:service_maintenance", args=[service.pk]), {"maintenance": value}
    )


# --- endpoints and keys -------------------------------------------------------------------------


@override_settings(BASE_URL="https://oncall.example.com")
def test_lead_sees_endpoints_and_full_keys_with_copy_buttons(client, world):
    am = incident_services.integration_create(
        service=world["service"], name="Prometheus", kind="alertmanager"
    )
    html = get(client, world["lead"]).content.decode()
    events = world["events"]
    assert 'value="https://oncall.example.com/v2/enqueue"' in html
    assert f'value="{events.key}"' in html
    assert "routing_key" in html
    assert f'value="https://oncall.example.com/integrations/alertmanager/{am.key}/"' in html
    assert html.count('class="button button--secondary copy-button"') == 4
    assert f'data-copy-target="key-{events.pk}"' in html
    assert 'role="status"' in html


@override_settings(BASE_URL="https://oncall.example.com")
def test_responders_see_endpoints_but_only_key_hints(client, world):
    am = incident_services.integration_create(
        service=world["service"], name="Prometheus", kind="alertmanager"
    )
    html = get(client, world["responder"]).content.decode()
    for integration in (world["events"], am):
        assert integration.key not in html
        assert integration.key_hint in html
    assert "https://oncall.example.com/v2/enqueue" in html
    assert f"https://oncall.example.com/integrations/alertmanager/{am.key_hint}/" in html
    assert "copy-button" not in html
    assert "The full key is shown to the team's leads" in html


def test_keys_follow_the_role_held_in_each_team(client, world):
    """A lead of Bravo who responds in Alpha sees Bravo's keys, and only hints of Alpha's."""
    services.membership_set(team=world["team"], user=world["other_lead"], role=Role.RESPONDER)
    response = get(client, world["other_lead"])
    assert [s.name for s in response.context["services"]] == [
        "Alpha default service",
        "Bravo default service",
    ]
    html = response.content.decode()
    assert Integration.objects.get(service=world["other_service"]).key in html
    assert world["events"].key not in html and world["events"].key_hint in html
    assert html.count("Start maintenance") == 1


def test_superuser_sees_every_key(client, world):
    admin = UserFactory(username="root", is_superuser=True)
    html = get(client, admin).content.decode()
    assert world["events"].key in html
    assert Integration.objects.get(service=world["other_service"]).key in html


def test_other_teams_services_are_not_listed(client, world):
    response = get(client, world["other_lead"])
    assert [s.name for s in response.context["services"]] == ["Bravo default service"]
    html = response.content.decode()
    assert world["events"].key not in html and world["events"].key_hint not in html


def test_observers_are_refused(client, world):
    response = get(client, world["observer"])
    assert response.status_code == 403
    assert "Observers read their teams" in response.content.decode()


# --- open incidents -------------------------------------------------------------------------------


def test_open_incidents_count_and_newest_linked(client, world):
    service = world["service"]
    made = [
        workflow.incident_trigger(service=service, title=f"Problem {i}", at=NOW + timedelta(i))
        for i in range(5)
    ]
    workflow.incident_acknowledge(incident=made[0], by=world["lead"], via="web", at=NOW)
    workflow.incident_resolve(incident=made[1], by=world["lead"], via="web", at=NOW)
    response = get(client, world["responder"])
    (shown,) = response.context["services"]
    assert (shown.triggered, shown.acknowledged, shown.open_incidents) == (3, 1, 4)
    assert [i.title for i in shown.newest_open] == ["Problem 4", "Problem 3", "Problem 2"]
    html = response.content.decode()
    assert reverse("incidents:detail", args=[made[4].pk]) in html
    assert reverse("incidents:detail", args=[made[0].pk]) not in html  # only the 3 newest
    assert f"{reverse('incidents:list')}?service={service.pk}" in html


# --- monitors -----------------------------------------------------------------------------------


def test_heartbeat_last_ping_and_overdue(client, world):
    beat = incident_services.integration_create(
        service=world["service"], name="Nightly backup", kind="heartbeat"
    )
    Heartbeat.objects.create(integration=beat, interval_minutes=60)
    with time_machine.travel(NOW, tick=False):
        ingest.heartbeat_ping(integration=beat, at=NOW)
    html = get(client, world["responder"], at=NOW + timedelta(minutes=30)).content.decode()
    assert "Expected every 60 min" in html
    assert "Last ping: <time" in html
    assert "Overdue" not in html
    html = get(client, world["responder"], at=NOW + timedelta(minutes=90)).content.decode()
    assert "Overdue" in html


def test_http_check_last_result(client, world):
    check_integration = incident_services.integration_create(
        service=world["service"], name="Homepage", kind="http_check"
    )
    HttpCheck.objects.create(
        integration=check_integration,
        url="https://shop.example.com/health",
        last_checked_at=NOW,
        last_ok=False,
        last_status=503,
        last_latency_ms=120,
        last_error="answered 503, expected 200",
        consecutive_failures=3,
    )
    html = get(client, world["responder"]).content.decode()
    assert "https://shop.example.com/health" in html
    assert "Failing" in html
    assert "status 503 in 120 ms" in html
    assert "answered 503, expected 200" in html
    assert "3 failures in a row" in html


# --- maintenance --------------------------------------------------------------------------------


def test_lead_switches_maintenance_on_and_off(client, world):
    service = world["service"]
    response = maintenance(client, world["lead"], service, "on")
    assert response.status_code == 302
    assert response["Location"] == f"{SERVICES}#service-{service.pk}"
    service.refresh_from_db()
    assert service.status == Service.Status.MAINTENANCE
    html = client.get(SERVICES).content.decode()
    assert "is in maintenance: its alerts are recorded, nobody is paged" in html
    assert "End maintenance" in html

    maintenance(client, world["lead"], service, "off")
    service.refresh_from_db()
    assert service.status == Service.Status.ACTIVE


def test_stale_maintenance_switch_says_nothing_changed(client, world):
    response = maintenance(client, world["lead"], world["service"], "off")
    assert response.status_code == 302
    html = client.get(SERVICES).content.decode()
    assert "is already active: nothing changed" in html


def test_ending_maintenance_refused_when_the_service_could_page_nobody(client, world):
    service = world["service"]
    incident_services.service_update(service=service, status=Service.Status.MAINTENANCE)
    service.escalation_policy.steps.all().delete()
    maintenance(client, world["lead"], service, "off")
    service.refresh_from_db()
    assert service.status == Service.Status.MAINTENANCE
    html = client.get(SERVICES).content.decode()
    assert "was not changed" in html and "has no steps" in html


@pytest.mark.parametrize(("who", "status"), [("responder", 403), ("observer", 403)])
def test_others_may_not_switch_maintenance(client, world, who, status):
    response = maintenance(client, world[who], world["service"], "on")
    assert response.status_code == status
    world["service"].refresh_from_db()
    assert world["service"].status == Service.Status.ACTIVE


def test_other_teams_service_answers_404(client, world):
    response = maintenance(client, world["other_lead"], world["service"], "on")
    assert response.status_code == 404


def test_responders_see_the_state_without_the_switch(client, world):
    html = get(client, world["responder"]).content.decode()
    assert "Start maintenance" not in html
    assert "Active" in html


def test_bad_maintenance_value_and_get_are_refused(client, world):
    assert maintenance(client, world["lead"], world["service"], "sometimes").status_code == 400
    url = reverse("incidents:service_maintenance", args=[world["service"].pk])
    assert client.get(url).status_code == 405


def test_disabled_service_is_not_switched(client, world):
    incident_services.service_update(service=world["service"], status=Service.Status.DISABLED)
    maintenance(client, world["lead"], world["service"], "on")
    world["service"].refresh_from_db()
    assert world["service"].status == Service.Status.DISABLED
    assert "is disabled" in client.get(SERVICES).content.decode()


# --- queries ------------------------------------------------------------------------------------

_grown = itertools.count()


def grow(world, n):
    reader = world["lead"]
    for _ in range(n):
        team = TeamFactory(name=f"Grown {next(_grown)}", members=[(reader, Role.LEAD)])
        first = Service.objects.get(team=team)
        second = incident_services.service_create(
            team=team, name="Second", escalation_policy=first.escalation_policy
        )
        beat = incident_services.integration_create(service=second, name="HB", kind="heartbeat")
        Heartbeat.objects.create(integration=beat)
        check = incident_services.integration_create(service=second, name="HC", kind="http_check")
        HttpCheck.objects.create(integration=check, url="https://example.com/")
        for service in (first, second):
            for i in range(4):
                workflow.incident_trigger(service=service, title=f"T{i}", at=NOW)


def test_services_page_queries_do_not_grow(client, world, django_assert_num_queries):
    grow(world, 1)
    client.force_login(world["lead"])
    with django_assert_num_queries(4 + 3):
        assert client.get(SERVICES).status_code == 200
    grow(world, 4)
    with django_assert_num_queries(4 + 3):
        response = client.get(SERVICES)
    assert len(response.context["services"]) == 11
