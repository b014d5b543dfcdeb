"""The ingest endpoints through their URLs: PagerDuty Events API v2 answers, Alertmanager and
the generic webhook, heartbeat pings, and every refusal (400, 404, 405, 413, 429, 503) as JSON,
with no integration key ever written to a log."""

import io
import json
import logging
from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import InterfaceError, OperationalError, connection
from django.test import RequestFactory
from kombu.exceptions import OperationalError as BrokerError

from incidents import ingest, ingest_views, workflow
from incidents.models import Alert, Heartbeat, Incident, Page, TimelineEntry
from incidents.services import integration_rotate_key, service_update
from oncall.celery import app as celery_app

from .test_ingest import Paging

pytestmark = pytest.mark.django_db
ENQUEUE = "/v2/enqueue"


@pytest.fixture(autouse=True)
def _no_sending(monkeypatch):
    """Work queued after commit runs inline (the root conftest's CELERY_TASK_ALWAYS_EAGER=1
    comes after pytest-django has read the settings, so it is set here), never on a broker.
    These tests count pages; sending the notifications is the outbox's business."""
    monkeypatch.setattr("incidents.tasks.queue_send_notifications", lambda: None)
    previous = celery_app.conf.task_always_eager
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = previous


@pytest.fixture
def paging():
    return Paging()


@pytest.fixture
def logs(caplog):
    caplog.set_level(logging.DEBUG)
    return caplog


def url(kind: str, key: str, slash: bool = True) -> str:
    return f"/integrations/{kind}/{key}" + ("/" if slash else "")


def post(client, path, data, **extra):
    body = data if isinstance(data, bytes | str) else json.dumps(data)
    return client.post(path, body, content_type="application/json", **extra)


def pd(key, action="trigger", dedup_key="disk-web-1", **payload):
    event = {"routing_key": key, "event_action": action}
    if dedup_key is not None:
        event["dedup_key"] = dedup_key
    if action == "trigger":
        event["payload"] = {
            "summary": "Disk full on web-1",
            "source": "web-1",
            "severity": "critical",
            **payload,
        }
    return event


@pytest.fixture
def deliver(client, django_capture_on_commit_callbacks):
    """POST and run the work queued after commit (the escalation engine, Celery being eager),
    as a real commit would."""

    def _deliver(path, data):
        with django_capture_on_commit_callbacks(execute=True):
            return post(client, path, data)

    return _deliver


def assert_key_not_logged(logs, *keys):
    for key in keys:
        assert key not in logs.text


# --- PagerDuty Events API v2 ----------------------------------------------------------------------


def test_enqueue_answers_like_pagerduty(client, paging, logs):
    key = paging["events_v2"].key
    response = post(client, ENQUEUE, pd(key))
    assert response.status_code == 202
    assert response["Content-Type"] == "application/json"
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "disk-web-1",
    }
    incident = Incident.objects.get()
    assert incident.integration == paging["events_v2"]
    assert_key_not_logged(logs, key)
    assert key not in json.dumps(Alert.objects.get().payload)


def test_enqueue_with_a_trailing_slash_too(client, paging):
    response = post(client, ENQUEUE + "/", pd(paging["events_v2"].key))
    assert response.status_code == 202


def test_trigger_without_dedup_key_gets_one_back(client, paging):
    response = post(client, ENQUEUE, pd(paging["events_v2"].key, dedup_key=None))
    dedup_key = response.json()["dedup_key"]
    assert len(dedup_key) == 32
    assert Incident.objects.get().dedup_key == dedup_key


def test_every_optional_field_is_stored(client, paging):
    links = [{"href": "https://grafana.example.com/d/1", "text": "Dashboard"}]
    images = [{"src": "https://img.example.com/g.png", "href": "https://x.example.com", "alt": "g"}]
    custom = {"free": "0 B", "mounts": ["/", "/var"]}
    event = pd(
        paging["events_v2"].key,
        timestamp="2026-11-24T03:00:00.000+0000",
        component="postgres",
        group="prod-datapipe",
        custom_details=custom,
        **{"class": "disk"},
    )
    event.update(links=links, images=images, client="Monitoring", client_url="https://m.example")
    assert post(client, ENQUEUE, event).status_code == 202
    alert = Alert.objects.get()
    payload = alert.payload["payload"]
    assert (payload["component"], payload["group"], payload["class"]) == (
        "postgres",
        "prod-datapipe",
        "disk",
    )
    assert payload["custom_details"] == custom
    assert alert.payload["links"] == links and alert.payload["images"] == images
    assert "routing_key" not in alert.payload
    details = Incident.objects.get().details
    assert details["component"] == "postgres" and details["class"] == "disk"
    assert details["custom_details"] == custom
    assert details["links"] == links and details["images"] == images
    assert details["timestamp"] == "2026-11-24T03:00:00+00:00"
    assert details["client_url"] == "https://m.example"


def test_invalid_event_is_400_naming_the_fields(client, paging, logs):
    key = paging["events_v2"].key
    response = post(client, ENQUEUE, {"routing_key": key, "event_action": "trigger"})
    assert response.status_code == 400
    assert response.json() == {
        "status": "invalid event",
        "message": "Event object is invalid",
        "errors": ["'payload' is missing"],
    }
    response = post(client, ENQUEUE, pd(key, severity="sev1", summary=""))
    assert response.status_code == 400
    assert response.json()["errors"] == [
        "'payload.summary' is missing or blank",
        "'payload.severity' is invalid (must be one of critical, error, warning, info)",
    ]
    assert Incident.objects.count() == 0 and Alert.objects.count() == 0
    assert_key_not_logged(logs, key)


@pytest.mark.parametrize(
    "body", [b"{", b"", b"[1, 2]", b'"text"', b"\xff\xfe", b'{"a": NaN}', b"[" * 5000]
)
def test_malformed_json_is_400(client, body):
    response = post(client, ENQUEUE, body)
    assert response.status_code == 400
    assert response.json()["status"] == "invalid event"
    assert response.json()["errors"]


def test_nul_characters_do_not_break_the_database(client, paging):
    event = pd(paging["events_v2"].key, summary="disk\u0000 full", custom_details={"k\u0000": "v"})
    assert post(client, ENQUEUE, event).status_code == 202
    assert Incident.objects.get().title == "disk full"


def test_unknown_key_is_404(client, paging, logs):
    response = post(client, ENQUEUE, pd("f" * 32))
    assert response.status_code == 404
    body = response.json()
    assert (body["status"], body["message"]) == ("invalid event", "Unknown routing key")
    assert_key_not_logged(logs, "f" * 32)


def test_rotated_out_key_is_404_and_the_new_one_works(client, paging, logs):
    old = paging["events_v2"].key
    new = integration_rotate_key(integration=paging["events_v2"]).key
    assert post(client, ENQUEUE, pd(old)).status_code == 404
    assert post(client, ENQUEUE, pd(new)).status_code == 202
    assert_key_not_logged(logs, old, new)


def test_a_key_stops_at_once_for_an_open_incident_too(client, paging):
    """Alerts for an open incident take the one-statement path on PostgreSQL, which checks the
    key itself: a rotated-out key, a disabled integration or a disabled service is refused
    from the very next event, never attached."""
    integration = paging["events_v2"]
    old = integration.key
    assert post(client, ENQUEUE, pd(old)).status_code == 202
    assert post(client, ENQUEUE, pd(old, summary="attached")).status_code == 202
    new = integration_rotate_key(integration=integration).key
    assert post(client, ENQUEUE, pd(old, summary="after rotation")).status_code == 404
    assert post(client, ENQUEUE, pd(new, summary="new key")).status_code == 202
    type(integration).objects.filter(pk=integration.pk).update(enabled=False)
    assert post(client, ENQUEUE, pd(new, summary="disabled")).status_code == 404
    type(integration).objects.filter(pk=integration.pk).update(enabled=True)
    service_update(service=paging.service, status="disabled")
    assert post(client, ENQUEUE, pd(new, summary="service disabled")).status_code == 404
    assert post(client, url("webhook", new), {"title": "wrong kind"}).status_code == 404
    incident = Incident.objects.get()
    assert incident.alert_count == 3
    assert list(incident.alerts.order_by("id").values_list("summary", flat=True)) == [
        "Disk full on web-1",
        "attached",
        "new key",
    ]


def test_disabled_integration_or_service_is_404(client, paging):
    integration = paging["events_v2"]
    type(integration).objects.filter(pk=integration.pk).update(enabled=False)
    assert post(client, ENQUEUE, pd(integration.key)).status_code == 404
    type(integration).objects.filter(pk=integration.pk).update(enabled=True)
    service_update(service=paging.service, status="disabled")
    assert post(client, ENQUEUE, pd(integration.key)).status_code == 404
    assert Incident.objects.count() == 0


def test_a_key_of_another_kind_is_404(client, paging):
    assert post(client, ENQUEUE, pd(paging["webhook"].key)).status_code == 404
    response = post(client, url("webhook", paging["events_v2"].key), {"title": "x"})
    assert response.status_code == 404
    assert response.json()["message"] == "Unknown integration key"


def test_wrong_method_is_405_json(client, paging):
    response = client.get(ENQUEUE)
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json()["status"] == "invalid event"
    response = client.put(url("heartbeat", paging["heartbeat"].key))
    assert response.status_code == 405 and response["Allow"] == "GET, POST"


def test_body_over_512_kb_is_413_by_content_length(client, paging, logs):
    event = pd(paging["events_v2"].key, custom_details={"blob": "x" * (512 * 1024)})
    response = post(client, ENQUEUE, event)
    assert response.status_code == 413
    assert "512 KB" in response.json()["message"]
    assert Alert.objects.count() == 0
    response = post(client, url("alertmanager", paging["alertmanager"].key), "x" * 600_000)
    assert response.status_code == 413
    assert_key_not_logged(logs, paging["events_v2"].key, paging["alertmanager"].key)


def test_body_at_the_limit_is_read(client, paging):
    event = pd(paging["events_v2"].key, custom_details={"blob": ""})
    padding = 512 * 1024 - len(json.dumps(event))
    event["payload"]["custom_details"]["blob"] = "x" * padding
    body = json.dumps(event)
    assert len(body) == 512 * 1024
    assert post(client, ENQUEUE, body).status_code == 202


def chunked_request(body: bytes):
    """A chunked upload as gunicorn hands it over: no Content-Length, the input terminated."""
    request = RequestFactory().post(ENQUEUE, b"", content_type="application/json")
    request.META.pop("CONTENT_LENGTH", None)
    request.META["wsgi.input_terminated"] = True
    request.META["wsgi.input"] = io.BytesIO(body)
    return request


def test_body_over_512_kb_is_413_by_what_is_read():
    """Without a Content-Length (a chunked upload) the body is cut off at the limit while
    reading."""
    response = ingest_views.enqueue(chunked_request(b"{" + b" " * (600 * 1024) + b"}"))
    assert response.status_code == 413


def test_a_chunked_upload_within_the_limit_is_read(paging):
    body = json.dumps(pd(paging["events_v2"].key)).encode()
    response = ingest_views.enqueue(chunked_request(body))
    assert response.status_code == 202
    assert Incident.objects.count() == 1


@pytest.fixture(autouse=True)
def _limiter_not_paused(monkeypatch):
    """A limiter paused by an earlier test (after a Redis failure) would let everything pass."""
    monkeypatch.setattr(ingest_views, "_limiter_paused_until", 0.0)


@pytest.fixture(params=["redis", "memory"])
def limiter(request, settings):
    """The rate limiter on each of its two stores: Redis (REDIS_URL, shared by every web
    process) and the process's own cache (no REDIS_URL: the embedded set-up)."""
    if request.param == "redis":
        settings.REDIS_URL = request.getfixturevalue("redis_url")
    else:
        settings.REDIS_URL = ""
    return request.param


@time_machine.travel(datetime(2026, 11, 24, 3, 0, 10, tzinfo=UTC), tick=False)
def test_rate_limit_is_429_with_retry_after(client, paging, settings, logs, limiter):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 3
    key = paging["events_v2"].key
    for n in range(3):
        assert post(client, ENQUEUE, pd(key, summary=f"#{n}")).status_code == 202
    response = post(client, ENQUEUE, pd(key, summary="#4"))
    assert response.status_code == 429
    assert response["Retry-After"] == "50"  # the minute's window ends in 50 s
    assert response.json()["status"] == "throttle event"
    # Another key has its own budget; the next minute starts afresh.
    assert post(client, url("webhook", paging["webhook"].key), {"title": "x"}).status_code == 202
    with time_machine.travel(datetime(2026, 11, 24, 3, 1, 0, tzinfo=UTC), tick=False):
        assert post(client, ENQUEUE, pd(key, summary="#5")).status_code == 202
    assert Alert.objects.filter(integration=paging["events_v2"]).count() == 4
    assert_key_not_logged(logs, key)


def test_rate_limit_counts_in_redis_with_an_expiry(client, paging, settings, redis_url):
    """Every web process counts in the same Redis key (named by a hash, never the key), which
    expires after its window."""
    import redis

    settings.REDIS_URL = redis_url
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 100
    store = redis.Redis.from_url(redis_url)
    before = set(store.keys("oncall:ingest-rate:*"))
    key = paging["events_v2"].key
    for n in range(2):
        assert post(client, ENQUEUE, pd(key, summary=f"#{n}")).status_code == 202
    (counter,) = set(store.keys("oncall:ingest-rate:*")) - before
    assert store.get(counter) == b"2"
    assert 60 < store.ttl(counter) <= 120
    assert key not in counter.decode()
    store.delete(counter)


def test_rate_limit_off_with_zero(client, paging, settings):
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 0
    for n in range(5):
        assert post(client, ENQUEUE, pd(paging["events_v2"].key, summary=str(n))).status_code == 202


@pytest.mark.parametrize("store", ["redis", "memory"])
def test_rate_limiter_fails_open_and_pauses_when_its_store_is_down(
    client, paging, monkeypatch, settings, logs, store
):
    """Redis refusing connections (or the cache failing): the alert goes through, and the
    limiter is not asked again for LIMITER_PAUSE_SECONDS, then it is."""
    settings.INGEST_RATE_LIMIT_PER_MINUTE = 1
    if store == "redis":
        settings.REDIS_URL = "redis://127.0.0.1:9/0"  # nothing listens on the discard port
    else:
        settings.REDIS_URL = ""

        def down(*args, **kwargs):
            raise ConnectionError("cache down")

        monkeypatch.setattr(ingest_views.cache, "add", down)
    key = paging["events_v2"].key
    start = datetime(2026, 11, 24, 3, 0, 10, tzinfo=UTC)
    with time_machine.travel(start, tick=False):
        assert post(client, ENQUEUE, pd(key, summary="a")).status_code == 202
    assert "rate limiter unavailable" in logs.text

    asked = []

    def over_the_limit(counter):
        asked.append(counter)
        return 1_000

    monkeypatch.setattr(ingest_views, "_count_request", over_the_limit)
    with time_machine.travel(start + timedelta(seconds=4), tick=False):
        assert post(client, ENQUEUE, pd(key, summary="b")).status_code == 202
    assert asked == []
    with time_machine.travel(start + timedelta(seconds=6), tick=False):
        assert post(client, ENQUEUE, pd(key, summary="c")).status_code == 429
    assert len(asked) == 1
    assert_key_not_logged(logs, key)


@pytest.mark.parametrize("error", [OperationalError, InterfaceError])
def test_database_unreachable_is_503_with_retry_after(client, paging, logs, error):
    """Every statement fails as with the server gone, on whichever path (the one-statement
    attach included)."""
    key = paging["events_v2"].key
    assert post(client, ENQUEUE, pd(key)).status_code == 202  # an open incident to attach to

    def unreachable(execute, sql, params, many, context):
        raise error("could not connect to server: Connection refused")

    requests = [
        (ENQUEUE, pd(key, summary="again")),
        (url("alertmanager", paging["alertmanager"].key), am()),
        (url("webhook", paging["webhook"].key), {"title": "x"}),
        (url("heartbeat", paging["heartbeat"].key), {}),
    ]
    with connection.execute_wrapper(unreachable):
        for path, data in requests:
            response = post(client, path, data)
            assert response.status_code == 503
            assert response["Retry-After"] == "10"
            assert response["Content-Type"] == "application/json"
            assert response.json()["status"] == "unavailable"
    assert Incident.objects.get().alert_count == 1
    assert_key_not_logged(logs, *(i.key for i in paging.integrations.values()))


def test_database_failing_mid_ingest_is_503(client, paging, monkeypatch):
    def fails(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(ingest, "alert_ingest", fails)
    response = post(client, ENQUEUE, pd(paging["events_v2"].key))
    assert response.status_code == 503


def test_unexpected_error_is_a_json_500_without_the_key_in_logs(client, paging, monkeypatch, logs):
    def broken(**kwargs):
        raise RuntimeError("bug")

    monkeypatch.setattr(ingest, "alert_ingest", broken)
    key = paging["alertmanager"].key
    response = post(client, url("alertmanager", key), am())
    assert response.status_code == 500
    assert response.json() == {"status": "error", "message": "Internal error"}
    assert "RuntimeError" in logs.text
    assert_key_not_logged(logs, key)


def test_anything_else_under_integrations_is_a_json_404(client, logs):
    response = post(client, "/integrations/nagios/0123456789abcdef0123456789abcdef/", {})
    assert response.status_code == 404
    assert response.json()["status"] == "invalid event"
    assert_key_not_logged(logs, "0123456789abcdef0123456789abcdef")


# --- dedup through the endpoint -------------------------------------------------------------------


def test_same_key_attaches_and_nobody_is_paged_again(deliver, paging):
    key = paging["events_v2"].key
    assert deliver(ENQUEUE, pd(key)).status_code == 202
    assert Page.objects.count() == 1  # the engine ran after commit: the on-call user is paged
    for n in range(3):
        response = deliver(ENQUEUE, pd(key, summary=f"still full #{n}"))
        assert response.json()["dedup_key"] == "disk-web-1"
    incident = Incident.objects.get()
    assert incident.alert_count == 4
    assert Page.objects.count() == 1


def test_an_alert_for_an_open_incident_is_one_statement(
    client, paging, postgres_required, django_assert_num_queries
):
    """On PostgreSQL the common case — one more alert for an open incident — is one SQL
    statement (one round trip), whatever the number of alerts and incidents already there."""
    key = paging["events_v2"].key
    for n in range(2):
        assert post(client, ENQUEUE, pd(key, dedup_key=f"other-{n}")).status_code == 202
    assert post(client, ENQUEUE, pd(key)).status_code == 202
    for n in range(3):
        with django_assert_num_queries(1):
            assert post(client, ENQUEUE, pd(key, summary=f"more #{n}")).status_code == 202
    assert Incident.objects.get(dedup_key="disk-web-1").alert_count == 4


def test_identical_resend_changes_nothing(deliver, paging):
    key = paging["events_v2"].key
    deliver(ENQUEUE, pd(key))
    before = (Alert.objects.count(), TimelineEntry.objects.count(), Page.objects.count())
    assert deliver(ENQUEUE, pd(key)).status_code == 202
    assert (Alert.objects.count(), TimelineEntry.objects.count(), Page.objects.count()) == before
    assert Incident.objects.get().alert_count == 1


def test_resolve_by_event_then_a_trigger_opens_a_new_incident(deliver, paging):
    key = paging["events_v2"].key
    deliver(ENQUEUE, pd(key))
    response = deliver(ENQUEUE, pd(key, "resolve"))
    assert response.status_code == 202 and response.json()["dedup_key"] == "disk-web-1"
    assert Incident.objects.get().status == "resolved"
    deliver(ENQUEUE, pd(key))
    assert Incident.objects.count() == 2
    assert Incident.objects.filter(status="triggered").count() == 1
    assert Page.objects.count() == 2


def test_acknowledge_by_event_stops_escalation(deliver, paging):
    key = paging["events_v2"].key
    deliver(ENQUEUE, pd(key))
    assert deliver(ENQUEUE, pd(key, "acknowledge")).status_code == 202
    incident = Incident.objects.get()
    assert incident.status == "acknowledged" and incident.next_escalation_at is None


@pytest.mark.parametrize("action", ["acknowledge", "resolve"])
def test_acknowledge_or_resolve_for_an_unknown_key_is_accepted_and_dropped(client, paging, action):
    response = post(client, ENQUEUE, pd(paging["events_v2"].key, action, dedup_key="nope"))
    assert response.status_code == 202
    assert response.json() == {
        "status": "success",
        "message": "Event processed",
        "dedup_key": "nope",
    }
    assert Incident.objects.count() == 0
    assert Alert.objects.get().outcome == "dropped"


def test_maintenance_service_records_alerts_but_pages_nobody(deliver, paging):
    service_update(service=paging.service, status="maintenance")
    key = paging["events_v2"].key
    assert deliver(ENQUEUE, pd(key)).status_code == 202
    assert deliver(ENQUEUE, pd(key, summary="again")).status_code == 202
    incident = Incident.objects.get()
    assert incident.alert_count == 2 and incident.alerts.count() == 2
    workflow.incident_advance(incident=incident, now=incident.triggered_at.replace(year=2030))
    assert Page.objects.count() == 0


# --- Alertmanager ---------------------------------------------------------------------------------


def am_alert(instance, status="firing"):
    return {
        "status": status,
        "labels": {"alertname": "HighLatency", "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"p99 over 1 s on {instance}"},
        "startsAt": "2026-11-24T02:59:00.5Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph",
        "fingerprint": f"fp-{instance}",
    }


def am(*alerts, status="firing", external_url="http://am-1:9093"):
    return {
        "version": "4",
        "groupKey": '{}/{severity="critical"}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "oncall",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": external_url,
        "alerts": list(alerts) or [am_alert("web-1")],
    }


def test_alertmanager_firing_triggers_and_resolved_resolves(deliver, paging):
    path = url("alertmanager", paging["alertmanager"].key)
    response = deliver(path, am(am_alert("web-1"), am_alert("web-2")))
    assert response.status_code == 202
    assert response.json()["alerts"] == 2
    incident = Incident.objects.get()
    assert incident.dedup_key == '{}/{severity="critical"}:{alertname="HighLatency"}'
    assert incident.alert_count == 2 and incident.urgency == "high"
    assert Page.objects.count() == 1
    deliver(path, am(am_alert("web-1", "resolved"), am_alert("web-2")))
    assert Incident.objects.get().status == "triggered"
    deliver(
        path, am(am_alert("web-1", "resolved"), am_alert("web-2", "resolved"), status="resolved")
    )
    assert Incident.objects.get().status == "resolved"


def test_alertmanager_without_trailing_slash(client, paging):
    response = post(client, url("alertmanager", paging["alertmanager"].key, slash=False), am())
    assert response.status_code == 202


def test_alertmanager_ha_pair_duplicates_change_nothing(deliver, paging):
    path = url("alertmanager", paging["alertmanager"].key)
    deliver(path, am(am_alert("web-1"), am_alert("web-2")))

    def snapshot():
        incident = Incident.objects.get()
        return (
            incident.status,
            incident.alert_count,
            incident.details,
            Alert.objects.count(),
            TimelineEntry.objects.count(),
            Page.objects.count(),
        )

    before = snapshot()
    for _ in range(2):
        response = deliver(
            path, am(am_alert("web-1"), am_alert("web-2"), external_url="http://am-2")
        )
        assert response.status_code == 202
    assert snapshot() == before


def test_alertmanager_invalid_payload_is_400(client, paging):
    response = post(client, url("alertmanager", paging["alertmanager"].key), {"version": "4"})
    assert response.status_code == 400
    assert set(response.json()["errors"]) >= {
        "'groupKey' is missing or blank",
        "'alerts' must be a non-empty list",
    }


@pytest.mark.django_db(transaction=True)
def test_broker_down_after_commit_still_answers_202(paging, client, monkeypatch, logs):
    """Queueing the engine after commit fails (Redis down): the alerts are stored and the beat
    sweep will page, so the sender is told 202 and does not retry."""

    def broker_down(incident_id, when):
        raise BrokerError("Error 111 connecting to redis")

    monkeypatch.setattr("incidents.tasks.queue_advance", broker_down)
    path = url("alertmanager", paging["alertmanager"].key)
    response = post(client, path, am(am_alert("a"), am_alert("b")))
    assert response.status_code == 202
    assert Incident.objects.get().alert_count == 2
    assert "queueing follow-up work failed" in logs.text


# --- generic webhook ------------------------------------------------------------------------------


def test_webhook_trigger_and_resolve(deliver, paging):
    path = url("webhook", paging["webhook"].key)
    response = deliver(
        path,
        {"title": "Backup failed", "message": "exit 1", "severity": "error", "dedup_key": "backup"},
    )
    assert response.status_code == 202
    assert response.json()["dedup_key"] == "backup"
    incident = Incident.objects.get()
    assert incident.title == "Backup failed" and incident.details["message"] == "exit 1"
    assert Page.objects.count() == 1
    deliver(path, {"dedup_key": "backup", "status": "resolved"})
    assert Incident.objects.get().status == "resolved"


def test_webhook_missing_title_is_400(client, paging):
    response = post(client, url("webhook", paging["webhook"].key), {"message": "no title"})
    assert response.status_code == 400
    assert response.json()["errors"] == ["'title' is missing or blank"]


# --- heartbeats -----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["get", "post"])
def test_heartbeat_ping_by_get_or_post(client, paging, method, logs):
    key = paging["heartbeat"].key
    at = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
    with time_machine.travel(at, tick=False):
        response = getattr(client, method)(url("heartbeat", key))
    assert response.status_code == 200
    heartbeat = Heartbeat.objects.get(integration=paging["heartbeat"])
    assert heartbeat.last_ping_at == at
    assert response.json()["expected_by"] == heartbeat.expected_by.isoformat()
    assert_key_not_logged(logs, key)


def test_heartbeat_ping_resolves_the_missed_heartbeat_incident(client, paging):
    integration = paging["heartbeat"]
    missed = workflow.incident_trigger(
        service=paging.service,
        title="Missed heartbeat",
        at=datetime(2026, 11, 24, 3, 0, tzinfo=UTC),
        integration=integration,
        dedup_key=ingest.heartbeat_dedup_key(integration),
    )
    response = client.post(url("heartbeat", integration.key, slash=False))
    assert response.status_code == 200
    assert response.json()["resolved_incidents"] == [missed.pk]
    missed.refresh_from_db()
    assert missed.status == "resolved"


def test_heartbeat_unknown_or_wrong_kind_key_is_404(client, paging):
    assert client.get(url("heartbeat", "nope")).status_code == 404
    assert client.get(url("heartbeat", paging["webhook"].key)).status_code == 404
    assert client.get(url("heartbeat", "x" * 500)).status_code == 404
