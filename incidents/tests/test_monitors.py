"""The built-in monitors: HTTP checks against a local HTTP server, heartbeats, their Celery
tasks and their admin. Time is set with time_machine or passed in; nothing sleeps."""

import base64
import logging
import threading
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.conf import settings
from django.db import connection

from incidents import ingest, monitor_tasks, monitors, services, workflow
from incidents.models import (
    Alert,
    Channel,
    Heartbeat,
    HttpCheck,
    Incident,
    Integration,
    Page,
    Service,
    TimelineEntry,
)
from oncall.tests.factories import TeamFactory, UserFactory, contact_method
from oncall.tests.servers import RecordingHTTPServer, Reply, closed_port
from oncall.tests.test_admin import admin_form_data, admin_url, errors_of

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def http_server():
    """A local HTTP server recording every request; answers 200 unless told otherwise."""
    with RecordingHTTPServer() as server:
        yield server


@pytest.fixture
def refused_port():
    """A local port on which connections are refused."""
    with closed_port() as port:
        yield port


@pytest.fixture
def lead():
    user = UserFactory(username="ada")
    contact_method(user)
    return user


@pytest.fixture
def service(lead):
    """A team's default service: its policy pages the team's schedule (the lead), then the lead."""
    team = TeamFactory(name="Payments", lead=lead)
    return Service.objects.get(team=team)


def make_check(service, url, **kwargs):
    integration = services.integration_create(
        service=service, name="Website", kind=Integration.Kind.HTTP_CHECK
    )
    return monitors.http_check_create(integration=integration, url=url, **kwargs)


@pytest.fixture
def check(service, http_server):
    return make_check(
        service, http_server.url("/health"), interval_seconds=30, failures_before_alert=2
    )


def run(check, at):
    """Run the check as the beat would at `at` (it must be due)."""
    result = monitors.http_check_run(check=check, now=at)
    assert result is not None, "the check was not due"
    return result


def incidents_of(integration):
    return list(Incident.objects.filter(integration=integration).order_by("pk"))


def make_heartbeat(service, interval_minutes=10, at=T0):
    integration = services.integration_create(
        service=service, name="Nightly backup", kind=Integration.Kind.HEARTBEAT
    )
    return monitors.heartbeat_create(
        integration=integration, interval_minutes=interval_minutes, now=at
    )


def ping(heartbeat, at):
    """A ping, through the ingest service the heartbeat endpoint calls: the clock starts again
    and the open missed-heartbeat incident is resolved."""
    return ingest.heartbeat_ping(integration=heartbeat.integration, at=at)


# -- pure helpers -------------------------------------------------------------------------------


def test_public_url_drops_credentials_only():
    assert monitors.public_url("https://bot:s3cret@example.com:8443/a?b=1") == (
        "https://example.com:8443/a?b=1"
    )
    assert monitors.public_url("http://[::1]/x") == "http://[::1]/x"
    assert monitors.public_url("http://u:p@[::1]:81/x") == "http://[::1]:81/x"


def test_probe_timeout_is_four_times_the_threshold_within_bounds():
    assert monitors.probe_timeout(500) == 2.0
    assert monitors.probe_timeout(10) == monitors.PROBE_MIN_TIMEOUT
    assert monitors.probe_timeout(60_000) == monitors.PROBE_MAX_TIMEOUT


# -- the probe against a local server -----------------------------------------------------------


def probe(url, **kwargs):
    kwargs.setdefault("expected_status", 200)
    kwargs.setdefault("max_latency_ms", 500)
    return monitors.http_probe(url, **kwargs)


def test_a_200_in_time_is_ok(http_server):
    result = probe(http_server.url("/health?deep=1"))
    assert result.ok and result.status == 200 and result.error == ""
    assert 0 <= result.latency_ms <= 500
    (request,) = http_server.requests
    assert (request.method, request.path) == ("GET", "/health?deep=1")
    assert request.headers["user-agent"] == monitors.USER_AGENT


def test_an_unexpected_status_fails_and_says_so(http_server):
    http_server.respond(500, "boom")
    result = probe(http_server.url("/"))
    assert not result.ok
    assert (result.status, result.error) == (500, "answered 500, expected 200")


def test_another_expected_status_can_be_asked_for(http_server):
    http_server.respond(204)
    assert probe(http_server.url("/"), expected_status=204).ok


def test_a_redirect_is_not_followed(http_server):
    http_server.respond(301, headers={"Location": "/elsewhere"})
    result = probe(http_server.url("/"))
    assert result.error == "answered 301, expected 200"
    assert len(http_server.requests) == 1


def test_a_slow_answer_fails_on_latency(http_server, monkeypatch):
    ticks = iter([10.0, 10.75])  # the probe reads the clock before and after: 750 ms
    monkeypatch.setattr(monitors, "_clock", lambda: next(ticks))
    result = probe(http_server.url("/"), max_latency_ms=500)
    assert (result.status, result.latency_ms) == (200, 750)
    assert result.error == "answered in 750 ms, over 500 ms"


def test_no_answer_within_the_timeout_fails(http_server):
    http_server.hold()  # the server takes the request and never answers (until released)
    result = probe(http_server.url("/"), timeout=0.2)
    assert result.error == "no answer within 0.2 s"
    assert result.status is None and result.latency_ms is None


def test_a_closed_port_fails(refused_port):
    result = probe(f"http://127.0.0.1:{refused_port}/")
    assert result.error == "connection refused"


def test_credentials_in_the_url_are_sent_as_basic_auth(http_server):
    url = http_server.url("/").replace("http://", "http://bot:s3cret@")
    assert probe(url).ok
    expected = "Basic " + base64.b64encode(b"bot:s3cret").decode()
    assert http_server.requests[0].headers["authorization"] == expected


def test_only_http_urls_are_probed():
    assert probe("ftp://127.0.0.1/file").error.startswith("invalid URL")


# -- HTTP checks: failures, incidents, recovery -------------------------------------------------


def test_a_new_check_is_due_at_once_then_every_interval(check):
    assert monitors.http_checks_due(T0) == [check.pk]
    run(check, T0)
    check.refresh_from_db()
    assert check.next_check_at == T0 + timedelta(seconds=30)
    assert monitors.http_checks_due(T0 + timedelta(seconds=29)) == []
    assert monitors.http_check_run(check=check, now=T0 + timedelta(seconds=29)) is None
    assert monitors.http_checks_due(T0 + timedelta(seconds=30)) == [check.pk]


def test_a_healthy_check_records_what_it_saw_and_triggers_nothing(check, http_server):
    run(check, T0)
    check.refresh_from_db()
    assert check.last_ok is True and check.last_status == 200
    assert check.last_checked_at == T0 and check.consecutive_failures == 0
    assert incidents_of(check.integration) == []


def test_failures_below_the_threshold_trigger_nothing(service, http_server):
    check = make_check(service, http_server.url("/"), failures_before_alert=3)
    http_server.respond(500)
    run(check, T0)
    run(check, T0 + timedelta(seconds=60))
    check.refresh_from_db()
    assert check.consecutive_failures == 2
    assert check.last_ok is False and check.last_error == "answered 500, expected 200"
    assert incidents_of(check.integration) == []


def test_at_the_threshold_one_incident_and_no_more(check, http_server, lead):
    http_server.respond(503)
    run(check, T0)
    run(check, T0 + timedelta(seconds=30))
    (incident,) = incidents_of(check.integration)
    url = http_server.url("/health")
    assert incident.title == f"GET {url}: answered 503, expected 200"
    assert incident.dedup_key == f"http-check:{check.integration_id}"
    assert incident.status == Incident.Status.TRIGGERED
    assert incident.triggered_at == T0 + timedelta(seconds=30)
    assert incident.details["status"] == 503 and incident.details["url"] == url
    assert incident.details["consecutive_failures"] == 2
    assert incident.alert_count == 1
    alert = Alert.objects.get(incident=incident)
    assert (alert.action, alert.outcome, alert.dedup_key) == (
        "trigger",
        "triggered",
        incident.dedup_key,
    )
    entry = TimelineEntry.objects.get(incident=incident, kind=TimelineEntry.Kind.TRIGGERED)
    assert entry.channel == Channel.INTEGRATION

    # The engine pages the on-call person, as for any incident.
    workflow.incident_advance(incident=incident, now=incident.triggered_at)
    assert list(Page.objects.filter(incident=incident).values_list("user", flat=True)) == [lead.pk]

    # Still failing: the same incident, nobody paged again.
    for n in range(2, 6):
        run(check, T0 + timedelta(seconds=30 * n))
    assert incidents_of(check.integration) == [incident]
    assert Page.objects.filter(incident=incident).count() == 1
    incident.refresh_from_db()
    assert incident.alert_count == 1


def test_recovery_resolves_the_incident(check, http_server):
    http_server.respond(500)
    run(check, T0)
    run(check, T0 + timedelta(seconds=30))
    http_server.respond(200, "ok")
    run(check, T0 + timedelta(seconds=60))
    (incident,) = incidents_of(check.integration)
    assert incident.status == Incident.Status.RESOLVED
    assert incident.resolved_at == T0 + timedelta(seconds=60) and incident.resolved_by is None
    resolved = TimelineEntry.objects.get(incident=incident, kind=TimelineEntry.Kind.RESOLVED)
    assert resolved.channel == Channel.INTEGRATION
    assert resolved.message.startswith(f"Recovered: GET {http_server.url('/health')} answered 200")
    assert incident.alert_count == 2
    check.refresh_from_db()
    assert check.consecutive_failures == 0 and check.last_ok is True


def test_a_new_outage_after_recovery_opens_a_new_incident(check, http_server):
    http_server.replies = [Reply(status=500), Reply(status=500)]
    for n in range(3):  # fail, fail (incident), recover
        run(check, T0 + timedelta(seconds=30 * n))
    http_server.respond(500)
    run(check, T0 + timedelta(seconds=90))
    assert len(incidents_of(check.integration)) == 1  # one failure: below the threshold again
    run(check, T0 + timedelta(seconds=120))
    first, second = incidents_of(check.integration)
    assert first.status == Incident.Status.RESOLVED
    assert second.status == Incident.Status.TRIGGERED


def test_a_closed_port_counts_as_a_failure(service, refused_port):
    check = make_check(service, f"http://127.0.0.1:{refused_port}/", failures_before_alert=1)
    run(check, T0)
    (incident,) = incidents_of(check.integration)
    assert incident.title == f"GET http://127.0.0.1:{refused_port}/: connection refused"
    assert incident.details["status"] is None and incident.details["error"] == "connection refused"


def test_resolved_by_hand_while_still_failing_the_next_failure_opens_a_new_one(
    check, http_server, lead
):
    http_server.respond(500)
    run(check, T0)
    run(check, T0 + timedelta(seconds=30))
    (incident,) = incidents_of(check.integration)
    workflow.incident_resolve(
        incident=incident, by=lead, via=Channel.WEB, at=T0 + timedelta(seconds=40)
    )
    run(check, T0 + timedelta(seconds=60))
    assert [i.status for i in incidents_of(check.integration)] == ["resolved", "triggered"]


def test_a_service_in_maintenance_records_the_incident_but_pages_nobody(
    check, http_server, service
):
    services.service_update(service=service, status=Service.Status.MAINTENANCE)
    http_server.respond(500)
    run(check, T0)
    run(check, T0 + timedelta(seconds=30))
    (incident,) = incidents_of(check.integration)
    assert incident.next_escalation_at is None
    workflow.incident_advance(incident=incident, now=T0 + timedelta(hours=1))
    assert not Page.objects.filter(incident=incident).exists()


def test_disabled_integrations_and_services_are_not_checked(check, service):
    Integration.objects.filter(pk=check.integration_id).update(enabled=False)
    assert monitors.http_checks_due(T0) == []
    assert monitors.http_check_run(check=check, now=T0) is None
    Integration.objects.filter(pk=check.integration_id).update(enabled=True)
    services.service_update(service=service, status=Service.Status.DISABLED)
    assert monitors.http_checks_due(T0) == []


def test_a_check_deleted_while_it_runs_is_not_recorded(check):
    claimed = monitors.http_check_claim(check=check, now=T0)
    result = monitors.http_probe(claimed.url, expected_status=200, max_latency_ms=500)
    check.integration.delete()
    assert monitors.http_check_record(check=claimed, result=result, now=T0) is None


def test_the_sweep_runs_every_due_check_at_once(service, http_server):
    ok = make_check(service, http_server.url("/ok"))
    with RecordingHTTPServer() as broken:
        broken.respond(500)
        failing = make_check(
            services.service_create(
                team=service.team, name="Other", escalation_policy=service.escalation_policy
            ),
            broken.url("/"),
            failures_before_alert=1,
        )
        ran = monitors.http_checks_run_due(now=T0)
    assert sorted(c.pk for c in ran) == sorted([ok.pk, failing.pk])
    assert incidents_of(ok.integration) == []
    assert len(incidents_of(failing.integration)) == 1
    assert monitors.http_checks_run_due(now=T0 + timedelta(seconds=1)) == []


def test_secrets_stay_out_of_titles_and_logs(service, http_server, caplog):
    url = http_server.url("/").replace("http://", "http://bot:s3cret@")
    check = make_check(service, url, failures_before_alert=1)
    http_server.respond(500)
    with caplog.at_level(logging.DEBUG):
        run(check, T0)
    (incident,) = incidents_of(check.integration)
    assert "s3cret" not in incident.title and "s3cret" not in str(incident.details)
    assert "triggered" in caplog.text
    assert "s3cret" not in caplog.text
    assert check.integration.key not in caplog.text


# -- heartbeats ---------------------------------------------------------------------------------


def test_a_new_heartbeat_is_armed(service):
    heartbeat = make_heartbeat(service, interval_minutes=10)
    assert heartbeat.expected_by == T0 + timedelta(minutes=10)
    assert heartbeat.last_ping_at is None


def test_a_missed_ping_triggers_once(service, lead):
    heartbeat = make_heartbeat(service, interval_minutes=10)
    assert monitors.heartbeats_overdue(T0 + timedelta(minutes=9, seconds=59)) == []
    late = T0 + timedelta(minutes=10)
    assert monitors.heartbeats_overdue(late) == [heartbeat.pk]

    (incident,) = monitors.heartbeats_check(now=late)
    assert incident.title == "Missed heartbeat: Nightly backup (expected every 10 min)"
    assert incident.dedup_key == f"heartbeat:{heartbeat.integration_id}"
    assert incident.details["expected_by"] == late.isoformat()
    assert incident.details["last_ping_at"] is None
    assert incident.alert_count == 1

    # Later sweeps: the same miss, nothing new — even once somebody resolved it by hand.
    assert monitors.heartbeats_check(now=late + timedelta(seconds=30)) == []
    workflow.incident_resolve(
        incident=incident, by=lead, via=Channel.WEB, at=late + timedelta(minutes=1)
    )
    assert monitors.heartbeats_check(now=late + timedelta(hours=3)) == []
    assert monitors.heartbeat_miss(heartbeat=heartbeat, now=late + timedelta(hours=3)) is None
    assert Incident.objects.filter(integration=heartbeat.integration).count() == 1


def test_the_next_ping_resolves_and_a_later_miss_triggers_again(service):
    heartbeat = make_heartbeat(service, interval_minutes=10)
    (first,) = monitors.heartbeats_check(now=T0 + timedelta(minutes=11))
    ping(heartbeat, T0 + timedelta(minutes=12))
    first.refresh_from_db()
    assert first.status == Incident.Status.RESOLVED
    assert monitors.heartbeats_check(now=T0 + timedelta(minutes=21)) == []  # due at 22
    (second,) = monitors.heartbeats_check(now=T0 + timedelta(minutes=22))
    assert second.pk != first.pk
    assert second.details["last_ping_at"] == (T0 + timedelta(minutes=12)).isoformat()


def test_a_ping_on_the_endpoint_resolves_the_missed_heartbeat(client, service):
    heartbeat = make_heartbeat(service, interval_minutes=10)
    (incident,) = monitors.heartbeats_check(now=T0 + timedelta(minutes=10))
    with time_machine.travel(T0 + timedelta(minutes=15), tick=False):
        response = client.get(f"/integrations/heartbeat/{heartbeat.integration.key}/")
    assert response.status_code == 200, response.content
    incident.refresh_from_db()
    assert incident.status == Incident.Status.RESOLVED
    heartbeat.refresh_from_db()
    assert heartbeat.expected_by == T0 + timedelta(minutes=25)
    assert monitors.heartbeats_check(now=T0 + timedelta(minutes=24)) == []
    (again,) = monitors.heartbeats_check(now=T0 + timedelta(minutes=25))
    assert again.pk != incident.pk


def test_an_unresolved_miss_is_never_raised_twice(service):
    """Even should the ping fail to resolve the incident, the next miss doesn't open a second one
    (the unique constraint would refuse it): the open incident stands."""
    heartbeat = make_heartbeat(service, interval_minutes=10)
    (incident,) = monitors.heartbeats_check(now=T0 + timedelta(minutes=10))
    Heartbeat.objects.filter(pk=heartbeat.pk).update(expected_by=T0 + timedelta(minutes=30))
    assert monitors.heartbeats_check(now=T0 + timedelta(minutes=40)) == []


def test_paused_or_unarmed_heartbeats_are_not_overdue(service):
    heartbeat = make_heartbeat(service, interval_minutes=10)
    late = T0 + timedelta(hours=1)
    Integration.objects.filter(pk=heartbeat.integration_id).update(enabled=False)
    assert monitors.heartbeats_overdue(late) == []
    Integration.objects.filter(pk=heartbeat.integration_id).update(enabled=True)
    Heartbeat.objects.filter(pk=heartbeat.pk).update(expected_by=None)
    assert monitors.heartbeats_overdue(late) == []


# -- Celery tasks and beat ----------------------------------------------------------------------


def test_beat_runs_the_monitors_often_enough():
    schedule = {
        entry["task"]: entry["schedule"] for entry in settings.CELERY_BEAT_SCHEDULE.values()
    }
    assert schedule["incidents.monitor_tasks.run_http_checks"] <= 10
    assert schedule["incidents.monitor_tasks.check_heartbeats"] <= 30
    from oncall.celery import app

    app.loader.import_default_modules()
    assert {
        "incidents.monitor_tasks.run_http_checks",
        "incidents.monitor_tasks.run_http_check",
        "incidents.monitor_tasks.check_heartbeats",
    } <= set(app.tasks)


def test_tasks_read_the_clock_and_run_what_is_due(check, http_server, service):
    http_server.respond(500)
    heartbeat = make_heartbeat(service, interval_minutes=1)
    with time_machine.travel(T0, tick=False):
        assert monitor_tasks.run_http_checks.apply().get() == 1
        assert monitor_tasks.run_http_checks() == 0  # not due again yet
    with time_machine.travel(T0 + timedelta(seconds=30), tick=False):
        monitor_tasks.run_http_check.apply(args=[check.pk])
        assert monitor_tasks.check_heartbeats() == 0  # due at T0 + 1 min
    with time_machine.travel(T0 + timedelta(minutes=1), tick=False):
        assert monitor_tasks.check_heartbeats() == 1
    assert len(incidents_of(check.integration)) == 1
    assert len(incidents_of(heartbeat.integration)) == 1
    assert len(http_server.requests) == 2


# -- races, on PostgreSQL ---------------------------------------------------------------------


@pytest.fixture
def nothing_queued(monkeypatch):
    """Committed transactions queue Celery work after commit: not wanted from these tests."""
    from incidents import tasks

    monkeypatch.setattr(tasks, "queue_advance", lambda *args, **kwargs: None)
    monkeypatch.setattr(tasks, "queue_send_notifications", lambda *args, **kwargs: None)


def _race(fn, workers=2):
    barrier = threading.Barrier(workers)
    errors = []

    def worker():
        try:
            barrier.wait(timeout=10)
            fn()
        except Exception as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_one_check_probe_it_once(
    postgres_required, nothing_queued, service, http_server
):
    check = make_check(service, http_server.url("/"), failures_before_alert=1)
    http_server.respond(500)
    _race(lambda: monitors.http_check_run(check=check.pk, now=T0))
    assert len(http_server.requests) == 1
    assert Incident.objects.filter(integration=check.integration).count() == 1


@pytest.mark.django_db(transaction=True)
def test_two_workers_on_one_missed_heartbeat_raise_it_once(
    postgres_required, nothing_queued, service
):
    heartbeat = make_heartbeat(service, interval_minutes=1)
    _race(lambda: monitors.heartbeat_miss(heartbeat=heartbeat.pk, now=T0 + timedelta(minutes=5)), 4)
    assert Incident.objects.filter(integration=heartbeat.integration).count() == 1


# -- admin --------------------------------------------------------------------------------------


@pytest.fixture
def as_lead(client, lead, service):
    client.force_login(lead)
    return client


def add_page_data(client, service, kind, **fields):
    data = admin_form_data(client.get(admin_url(Integration, "add")))
    data.update({"service": str(service.pk), "name": "Monitor", "kind": kind, **fields})
    return data


def test_the_add_page_offers_both_monitors(as_lead):
    page = as_lead.get(admin_url(Integration, "add"))
    prefixes = [inline.formset.prefix for inline in page.context["inline_admin_formsets"]]
    assert prefixes == ["http_check", "heartbeat"]


def test_adding_an_http_check_integration_saves_its_check(as_lead, service, http_server):
    data = add_page_data(
        as_lead,
        service,
        Integration.Kind.HTTP_CHECK,
        **{"http_check-0-url": http_server.url("/"), "http_check-0-failures_before_alert": "2"},
    )
    response = as_lead.post(admin_url(Integration, "add"), data)
    assert response.status_code == 302, errors_of(response)
    check = HttpCheck.objects.get(integration__name="Monitor")
    assert (check.url, check.failures_before_alert, check.interval_seconds) == (
        http_server.url("/"),
        2,
        60,
    )
    assert check.next_check_at is None  # runs at the next beat
    assert not Heartbeat.objects.exists()


def test_an_http_check_integration_needs_a_url(as_lead, service):
    data = add_page_data(as_lead, service, Integration.Kind.HTTP_CHECK)
    errors = errors_of(as_lead.post(admin_url(Integration, "add"), data))
    assert errors["http_check-0"]["url"] == [
        "Enter the URL to check, starting with http:// or https://."
    ]
    assert not Integration.objects.filter(name="Monitor").exists()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "ftp://example.com/", "Only http:// and https:// URLs can be checked."),
        ("expected_status", "700", "An HTTP status is a number from 100 to 599."),
        ("interval_seconds", "5", "Check every 10 seconds at the most often"),
        ("failures_before_alert", "0", "Between 1 and 100 failures in a row."),
        ("max_latency_ms", "0", "The latency threshold is 1 to 60,000 ms (one minute)."),
    ],
)
def test_http_check_values_are_checked_with_clear_messages(as_lead, service, field, value, message):
    data = add_page_data(
        as_lead,
        service,
        Integration.Kind.HTTP_CHECK,
        **{"http_check-0-url": "https://example.com/"},
    )
    data[f"http_check-0-{field}"] = value
    errors = errors_of(as_lead.post(admin_url(Integration, "add"), data))
    assert errors["http_check-0"][field][0].startswith(message)
    assert not HttpCheck.objects.exists()


def test_a_url_on_another_kind_of_integration_is_refused(as_lead, service):
    data = add_page_data(
        as_lead, service, Integration.Kind.WEBHOOK, **{"http_check-0-url": "https://example.com/"}
    )
    errors = errors_of(as_lead.post(admin_url(Integration, "add"), data))
    assert "Only an HTTP check integration runs an HTTP check" in errors["http_check"][0]


def test_adding_a_heartbeat_integration_arms_its_heartbeat(as_lead, service):
    data = add_page_data(as_lead, service, Integration.Kind.HEARTBEAT)  # the default 5 minutes
    with time_machine.travel(T0, tick=False):
        response = as_lead.post(admin_url(Integration, "add"), data)
    assert response.status_code == 302, errors_of(response)
    heartbeat = Heartbeat.objects.get(integration__name="Monitor")
    assert heartbeat.interval_minutes == 5
    assert heartbeat.expected_by == T0 + timedelta(minutes=5)
    assert not HttpCheck.objects.exists()


def test_other_kinds_get_no_monitor(as_lead, service):
    data = add_page_data(as_lead, service, Integration.Kind.WEBHOOK)
    assert as_lead.post(admin_url(Integration, "add"), data).status_code == 302
    assert not HttpCheck.objects.exists() and not Heartbeat.objects.exists()
    integration = Integration.objects.get(name="Monitor")
    page = as_lead.get(admin_url(Integration, "change", integration.pk))
    assert page.context["inline_admin_formsets"] == []


def test_the_change_page_shows_the_check_of_its_kind_and_an_edit_runs_it_afresh(
    as_lead, check, http_server
):
    run(check, T0)
    http_server.respond(500)
    run(check, T0 + timedelta(seconds=30))
    page = as_lead.get(admin_url(Integration, "change", check.integration_id))
    assert [i.formset.prefix for i in page.context["inline_admin_formsets"]] == ["http_check"]
    assert "answered 500, expected 200 (1 failure(s) in a row)" in page.content.decode()

    data = admin_form_data(page)
    data["http_check-0-url"] = http_server.url("/v2/health")
    response = as_lead.post(admin_url(Integration, "change", check.integration_id), data)
    assert response.status_code == 302, errors_of(response)
    check.refresh_from_db()
    assert check.url == http_server.url("/v2/health")
    assert check.next_check_at is None and check.consecutive_failures == 0


def test_changing_an_interval_moves_the_next_ping_deadline(as_lead, service):
    heartbeat = make_heartbeat(service, interval_minutes=10)
    ping(heartbeat, T0)
    page = as_lead.get(admin_url(Integration, "change", heartbeat.integration_id))
    data = admin_form_data(page)
    data["heartbeat-0-interval_minutes"] = "60"
    response = as_lead.post(admin_url(Integration, "change", heartbeat.integration_id), data)
    assert response.status_code == 302, errors_of(response)
    heartbeat.refresh_from_db()
    assert heartbeat.expected_by == T0 + timedelta(minutes=60)


def test_turning_an_integration_into_an_http_check_asks_for_its_url(as_lead, service):
    integration = services.integration_create(
        service=service, name="Hook", kind=Integration.Kind.WEBHOOK
    )
    data = admin_form_data(as_lead.get(admin_url(Integration, "change", integration.pk)))
    data["kind"] = Integration.Kind.HTTP_CHECK
    response = as_lead.post(admin_url(Integration, "change", integration.pk), data)
    errors = errors_of(response)
    assert errors == {
        "http_check-0": {"url": ["Enter the URL to check, starting with http:// or https://."]}
    }
    integration.refresh_from_db()
    assert integration.kind == Integration.Kind.WEBHOOK


def test_another_teams_lead_never_sees_the_check(client, check):
    stranger = UserFactory(username="mallory")
    TeamFactory(name="Other", lead=stranger)
    client.force_login(stranger)
    page = client.get(admin_url(Integration, "change", check.integration_id))
    assert page.status_code == 302  # as for a deleted object
    assert check.url not in client.get(page.url).content.decode()


# -- the demo -----------------------------------------------------------------------------------


def test_the_demo_check_raises_a_real_incident_that_pages_somebody(settings):
    from django.core.management import call_command
    from django.utils import timezone

    from oncall.management.commands.seed_demo import DEMO_CHECK_URL

    settings.DEBUG = True
    call_command("seed_demo")
    call_command("seed_demo")  # idempotent: still one check
    (check,) = HttpCheck.objects.select_related("integration__service")
    assert check.url == DEMO_CHECK_URL
    assert (check.interval_seconds, check.failures_before_alert) == (30, 2)
    assert check.integration.service.name == "Payments web"

    now = timezone.now()
    assert monitors.http_checks_run_due(now=now)[0].last_error == "connection refused"
    assert incidents_of(check.integration) == []
    monitors.http_checks_run_due(now=now + timedelta(seconds=30))
    (incident,) = incidents_of(check.integration)
    assert incident.title == f"GET {DEMO_CHECK_URL}: connection refused"
    workflow.incident_advance(incident=incident, now=incident.triggered_at)
    assert Page.objects.filter(incident=incident).exists()
