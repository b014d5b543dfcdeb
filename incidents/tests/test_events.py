"""Parsing of incoming alerts (no database): PagerDuty Events API v2, Alertmanager v4 and the
generic webhook, into one normalized Event."""

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from incidents import events
from incidents.events import EventError

KEY = "0123456789abcdef0123456789abcdef"


def pd_event(**overrides):
    event = {
        "routing_key": KEY,
        "event_action": "trigger",
        "dedup_key": "disk-web-1",
        "payload": {
            "summary": "Disk full on web-1",
            "source": "web-1",
            "severity": "critical",
        },
    }
    payload = overrides.pop("payload", None)
    if payload is not None:
        event["payload"] = {**event["payload"], **payload}
    event.update(overrides)
    return event


def errors_of(parser, data) -> list[str]:
    with pytest.raises(EventError) as caught:
        parser(data)
    return caught.value.errors


# --- JSON ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"   ",
        b"{",
        b"not json",
        b"\xff\xfe\x00",
        b"NaN",
        b'{"a": Infinity}',
        b'{"a": 1e999}',
        b'{"a": 1' + b"0" * 5000 + b"}",
    ],
)
def test_load_json_refuses_what_is_not_strict_json(body):
    with pytest.raises(EventError) as caught:
        events.load_json(body)
    assert caught.value.errors


def test_load_json_refuses_deep_nesting():
    with pytest.raises(EventError) as caught:
        events.load_json(b"[" * 50 + b"]" * 50)
    assert "nested" in caught.value.errors[0]
    with pytest.raises(EventError):
        events.load_json(b"[" * 100_000 + b"]" * 100_000)  # deeper than Python's recursion


def test_load_json_cleans_strings_postgresql_cannot_store():
    data = events.load_json(json.dumps({"a\u0000b": "x\u0000y", "s": "\ud800z"}).encode())
    assert data == {"ab": "xy", "s": "?z"}


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
        max_leaves=20,
    )
)
def test_load_json_output_always_encodes_as_utf8_json(value):
    """Whatever JSON comes in, what comes out can be stored (no NUL, valid UTF-8)."""
    body = json.dumps({"v": value}).encode()
    data = events.load_json(body)
    text = json.dumps(data, ensure_ascii=False)
    assert "\x00" not in text
    text.encode("utf-8")


# --- PagerDuty Events API v2 -------------------------------------------------------------------


def test_trigger_with_every_optional_field():
    links = [{"href": "https://grafana.example.com/d/1", "text": "Dashboard"}]
    images = [{"src": "https://img.example.com/1.png", "href": "https://x.example.com", "alt": "g"}]
    key, event = events.parse_events_v2(
        pd_event(
            payload={
                "timestamp": "2026-11-24T03:00:00.315+0000",
                "component": "postgres",
                "group": "prod-datapipe",
                "class": "disk",
                "custom_details": {"free": "0 B", "mount": "/var"},
            },
            links=links,
            images=images,
            client="Monitoring",
            client_url="https://monitoring.example.com",
        )
    )
    assert key == KEY
    assert event.action == "trigger"
    assert event.dedup_key == "disk-web-1"
    assert (event.summary, event.source, event.severity) == (
        "Disk full on web-1",
        "web-1",
        "critical",
    )
    assert event.timestamp == datetime(2026, 11, 24, 3, 0, 0, 315000, tzinfo=UTC)
    assert (event.component, event.group, event.event_class) == (
        "postgres",
        "prod-datapipe",
        "disk",
    )
    assert event.custom_details == {"free": "0 B", "mount": "/var"}
    assert event.links == links and event.images == images
    assert event.details["client_url"] == "https://monitoring.example.com"
    assert event.details["class"] == "disk"
    assert "routing_key" not in event.raw  # the key is never stored with the alert
    assert event.raw["payload"]["custom_details"] == {"free": "0 B", "mount": "/var"}
    assert event.high_urgency is True


def test_trigger_missing_fields_are_all_named():
    errors = errors_of(
        events.parse_events_v2, {"event_action": "trigger", "payload": {"severity": "bad"}}
    )
    assert errors == [
        "'routing_key' is missing or blank",
        "'payload.summary' is missing or blank",
        "'payload.source' is missing or blank",
        "'payload.severity' is invalid (must be one of critical, error, warning, info)",
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ([], "the event must be a JSON object"),
        (pd_event(event_action="explode"), "'event_action' is invalid"),
        ({"routing_key": KEY}, "'event_action' is missing or blank"),
        (pd_event(payload=None) | {"payload": None}, "'payload' is missing"),
        (pd_event() | {"payload": "text"}, "'payload' must be an object"),
        (pd_event(dedup_key="x" * 256), "'dedup_key' is too long"),
        (pd_event(dedup_key=["x"]), "'dedup_key' must be a string"),
        (pd_event(payload={"timestamp": "yesterday"}), "'payload.timestamp' is not an ISO 8601"),
        (pd_event(payload={"summary": {"a": 1}}), "'payload.summary' must be a string"),
        (pd_event(links="https://x"), "'links' must be a list"),
        (pd_event(links=["https://x"]), "'links[0]' must be an object"),
        (pd_event(images=[{"src": 5}]), "'images[0].src' must be a string"),
        ({"routing_key": KEY, "event_action": "resolve"}, "'dedup_key' is missing or blank"),
        (
            {"routing_key": KEY, "event_action": "acknowledge", "dedup_key": "  "},
            "'dedup_key' is missing or blank",
        ),
    ],
)
def test_invalid_events_name_the_field(data, expected):
    errors = errors_of(events.parse_events_v2, data)
    assert any(error.startswith(expected) for error in errors), errors


def test_acknowledge_and_resolve_need_only_the_dedup_key():
    _, event = events.parse_events_v2(
        {"routing_key": KEY, "event_action": "resolve", "dedup_key": "disk-web-1"}
    )
    assert (event.action, event.dedup_key, event.summary) == ("resolve", "disk-web-1", "")


def test_trigger_without_dedup_key_leaves_it_to_the_ingest():
    data = pd_event()
    del data["dedup_key"]
    _, event = events.parse_events_v2(data)
    assert event.dedup_key == ""


def test_long_summary_is_cut_to_1024_characters():
    _, event = events.parse_events_v2(pd_event(payload={"summary": "x" * 5000}))
    assert len(event.summary) == 1024


def test_timestamp_without_offset_is_utc():
    _, event = events.parse_events_v2(pd_event(payload={"timestamp": "2026-11-24T03:00:00"}))
    assert event.timestamp == datetime(2026, 11, 24, 3, tzinfo=UTC)


@pytest.mark.parametrize(
    ("severity", "high"), [("critical", True), ("error", True), ("warning", False), ("info", False)]
)
def test_severity_says_the_urgency(severity, high):
    _, event = events.parse_events_v2(pd_event(payload={"severity": severity.upper()}))
    assert event.severity == severity
    assert event.high_urgency is high


def test_fingerprint_is_the_same_for_the_same_event_and_differs_otherwise():
    _, one = events.parse_events_v2(pd_event())
    _, again = events.parse_events_v2(pd_event())
    _, other = events.parse_events_v2(pd_event(payload={"summary": "Disk full on web-2"}))
    assert one.fingerprint == again.fingerprint
    assert one.fingerprint != other.fingerprint
    assert len(one.fingerprint) == 64


# --- Alertmanager ------------------------------------------------------------------------------


def am_alert(name="HighLatency", instance="web-1", status="firing", **overrides):
    alert = {
        "status": status,
        "labels": {"alertname": name, "instance": instance, "severity": "critical"},
        "annotations": {"summary": f"p99 over 1 s on {instance}"},
        "startsAt": "2026-11-24T03:00:00.123456789Z",
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus:9090/graph?g0.expr=x",
        "fingerprint": f"fp-{instance}",
    }
    alert.update(overrides)
    return alert


def am_notification(*alerts, status="firing", external_url="http://am-1:9093"):
    return {
        "version": "4",
        "groupKey": '{}:{alertname="HighLatency"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "oncall",
        "groupLabels": {"alertname": "HighLatency"},
        "commonLabels": {"alertname": "HighLatency", "severity": "critical"},
        "commonAnnotations": {},
        "externalURL": external_url,
        "alerts": list(alerts) or [am_alert()],
    }


def test_alertmanager_one_event_per_alert_sharing_the_group_key():
    batch = events.parse_alertmanager(
        am_notification(am_alert(instance="web-1"), am_alert(instance="web-2"))
    )
    assert [e.action for e in batch] == ["trigger", "trigger"]
    assert {e.dedup_key for e in batch} == {'{}:{alertname="HighLatency"}'}
    assert [e.alert_key for e in batch] == ["fp-web-1", "fp-web-2"]
    assert batch[0].summary == "HighLatency: p99 over 1 s on web-1"
    assert batch[0].title == "HighLatency"
    assert batch[0].severity == "critical"
    assert batch[0].source == "web-1"
    assert batch[0].alert_started == "2026-11-24T03:00:00.123456+00:00"
    assert batch[0].raw["alert"]["generatorURL"].startswith("http://prometheus")
    assert batch[0].raw["externalURL"] == "http://am-1:9093"


def test_alertmanager_firing_comes_before_resolved_and_a_resolved_group_is_flagged():
    batch = events.parse_alertmanager(
        am_notification(
            am_alert(instance="web-1", status="resolved"),
            am_alert(instance="web-2"),
        )
    )
    assert [(e.action, e.alert_key) for e in batch] == [
        ("trigger", "fp-web-2"),
        ("resolve", "fp-web-1"),
    ]
    assert not any(e.group_resolved for e in batch)
    resolved = events.parse_alertmanager(
        am_notification(
            am_alert(instance="web-1", status="resolved"),
            am_alert(instance="web-2", status="resolved"),
            status="resolved",
        )
    )
    assert [e.group_resolved for e in resolved] == [False, True]


def test_alertmanager_ha_pair_sends_the_same_fingerprints():
    one = events.parse_alertmanager(am_notification(external_url="http://am-1:9093"))
    two = events.parse_alertmanager(am_notification(external_url="http://am-2:9093"))
    assert [e.fingerprint for e in one] == [e.fingerprint for e in two]
    refired = events.parse_alertmanager(am_notification(am_alert(startsAt="2026-11-24T04:00:00Z")))
    assert refired[0].fingerprint != one[0].fingerprint


def test_alertmanager_without_fingerprint_uses_the_labels():
    alert = am_alert()
    del alert["fingerprint"]
    (event,) = events.parse_alertmanager(am_notification(alert))
    (same,) = events.parse_alertmanager(am_notification(dict(alert)))
    assert event.alert_key and event.alert_key == same.alert_key


def test_alertmanager_long_group_key_is_hashed_to_fit():
    data = am_notification()
    data["groupKey"] = "{}:{" + ",".join(f'l{i}="{"v" * 20}"' for i in range(30)) + "}"
    (event,) = events.parse_alertmanager(data)
    assert len(event.dedup_key) == 255
    assert event.details["alertmanager"]["group_key"] == data["groupKey"]


def test_alertmanager_unknown_severity_label_is_left_to_the_service():
    (event,) = events.parse_alertmanager(
        am_notification(am_alert(labels={"alertname": "X", "severity": "page"}))
    )
    assert event.severity == "" and event.high_urgency is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"version": "3"}, "'version' must be \"4\""),
        ({"groupKey": ""}, "'groupKey' is missing or blank"),
        ({"status": "exploded"}, "'status' must be"),
        ({"alerts": []}, "'alerts' must be a non-empty list"),
        ({"alerts": "x"}, "'alerts' must be a non-empty list"),
        ({"alerts": [5]}, "'alerts[0]' must be an object"),
        ({"alerts": [am_alert(status="x")]}, "'alerts[0].status' must be"),
        ({"alerts": [am_alert(labels={"a": 1})]}, "'alerts[0].labels' must be an object of"),
        ({"alerts": [am_alert(startsAt=None)]}, "'alerts[0].startsAt' is missing"),
        ({"alerts": [am_alert(startsAt="soon")]}, "'alerts[0].startsAt' is not an ISO 8601"),
        ({"commonLabels": []}, "'commonLabels' must be an object of strings"),
    ],
)
def test_alertmanager_invalid_payloads_name_the_field(change, expected):
    errors = errors_of(events.parse_alertmanager, {**am_notification(), **change})
    assert any(error.startswith(expected) for error in errors), errors


# --- generic webhook ---------------------------------------------------------------------------


def test_webhook_trigger_by_default_with_extra_fields_kept():
    event = events.parse_webhook(
        {"title": "Backup failed", "message": "exit 1", "severity": "warning", "host": "db-1"}
    )
    assert (event.action, event.summary, event.severity) == ("trigger", "Backup failed", "warning")
    assert event.details == {
        "message": "exit 1",
        "custom_details": {"host": "db-1"},
        "severity": "warning",
    }
    assert event.high_urgency is False


@pytest.mark.parametrize(
    ("status", "action"),
    [
        ("resolved", "resolve"),
        ("OK", "resolve"),
        ("acknowledge", "acknowledge"),
        ("firing", "trigger"),
    ],
)
def test_webhook_statuses(status, action):
    event = events.parse_webhook({"title": "t", "dedup_key": "k", "status": status})
    assert event.action == action


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({}, "'title' is missing or blank"),
        ({"title": "t", "status": "maybe"}, "'status' is invalid"),
        ({"status": "resolve"}, "'dedup_key' is missing or blank"),
        ({"title": "t", "message": 5}, "'message' must be a string"),
        ({"title": "t", "severity": "sev1"}, "'severity' is invalid"),
        ("text", "the event must be a JSON object"),
    ],
)
def test_webhook_invalid_payloads_name_the_field(data, expected):
    errors = errors_of(events.parse_webhook, data)
    assert any(error.startswith(expected) for error in errors), errors


def test_webhook_message_changes_the_fingerprint():
    one = events.parse_webhook({"title": "t", "message": "a"})
    two = events.parse_webhook({"title": "t", "message": "b"})
    assert one.fingerprint != two.fingerprint
