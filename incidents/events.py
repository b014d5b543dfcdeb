"""Alerts as they arrive, parsed into one normalized `Event` — pure code, no database.

Three formats come in: the PagerDuty Events API v2 (`/v2/enqueue`), the Prometheus Alertmanager
webhook (version 4) and a small generic JSON webhook. Each parser checks its payload and either
returns `Event`s or raises `EventError` naming every field that is wrong, so the endpoint can
answer 400 with the whole list at once. `incidents.ingest` turns events into incidents.

JSON is read strictly (no NaN or Infinity, bounded nesting) and every string is cleaned of what
PostgreSQL refuses to store (NUL characters, lone surrogates), so bad input is a 400, never a 500.
"""

import functools
import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

TRIGGER, ACKNOWLEDGE, RESOLVE = "trigger", "acknowledge", "resolve"
ACTIONS = (TRIGGER, ACKNOWLEDGE, RESOLVE)
SEVERITIES = ("critical", "error", "warning", "info")
HIGH_SEVERITIES = ("critical", "error")

MAX_DEPTH = 32  # nesting of objects and arrays in a payload
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024
MAX_SOURCE = 255


class EventError(Exception):
    """The payload is not a valid event. `errors` names each problem, for the 400 answer."""

    def __init__(self, errors: list[str]):
        super().__init__("; ".join(errors))
        self.errors = errors


@dataclass(frozen=True)
class Event:
    """One alert, whatever format it came in.

    `dedup_key` groups events into one incident ("" on a trigger: the ingest makes one up).
    `alert_key` and `alert_started` identify one Alertmanager alert inside its group (its
    fingerprint and `startsAt`); `group_resolved` is set on the last alert of an Alertmanager
    notification saying the whole group has resolved. `raw` is what is stored on the Alert row.
    """

    action: str
    dedup_key: str = ""
    summary: str = ""
    title: str = ""  # the incident's title if this event opens one
    severity: str = ""  # one of SEVERITIES, or "" when the sender gave none
    source: str = ""
    timestamp: datetime | None = None
    component: str = ""
    group: str = ""
    event_class: str = ""
    custom_details: Any = None
    links: list = field(default_factory=list)
    images: list = field(default_factory=list)
    alert_key: str = ""
    alert_started: str = ""
    group_resolved: bool = False
    raw: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)  # for the incident, if this event opens one

    @functools.cached_property
    def fingerprint(self) -> str:
        """A hash of what the event says (not of how it was wrapped), so the same alert sent
        twice — e.g. by both Alertmanagers of an HA pair — is recognized as one. Computed once
        per event (the ingest reads it up to three times)."""
        canonical = {
            "action": self.action,
            "dedup_key": self.dedup_key,
            "summary": self.summary,
            "severity": self.severity,
            "source": self.source,
            "timestamp": self.timestamp.isoformat() if self.timestamp else None,
            "component": self.component,
            "group": self.group,
            "class": self.event_class,
            "custom_details": self.custom_details,
            "links": self.links,
            "images": self.images,
            "alert_key": self.alert_key,
            "alert_started": self.alert_started,
            # Alertmanager's group details name the sending instance (externalURL, receiver):
            # left out, so both members of an HA pair send the same alert.
            "details": None if self.alert_key else self.details,
        }
        text = json.dumps(canonical, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    @property
    def high_urgency(self) -> bool | None:
        """True for critical/error, False for warning/info, None when no severity was given."""
        if not self.severity:
            return None
        return self.severity in HIGH_SEVERITIES


# --- reading JSON ------------------------------------------------------------------------------


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not allowed in JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _clean(value: Any, depth: int = 0) -> Any:
    """A copy with every string storable in PostgreSQL (no NUL, no lone surrogate)."""
    if depth > MAX_DEPTH:
        raise EventError([f"the JSON is nested more than {MAX_DEPTH} levels deep"])
    if isinstance(value, str):
        return _clean_str(value)
    if isinstance(value, dict):
        return {_clean_str(str(k)): _clean(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v, depth + 1) for v in value]
    return value


def _clean_str(text: str) -> str:
    if "\x00" in text:
        text = text.replace("\x00", "")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    return text


def load_json(body: bytes) -> Any:
    """The request body as JSON, strictly; EventError when it is not JSON."""
    if not body.strip():
        raise EventError(["the request body is empty: send a JSON object"])
    try:
        data = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
    except RecursionError:
        raise EventError([f"the JSON is nested more than {MAX_DEPTH} levels deep"]) from None
    except ValueError as error:  # JSONDecodeError, UnicodeDecodeError, huge integers
        raise EventError([f"the request body is not valid JSON: {str(error)[:200]}"]) from None
    return _clean(data)


# --- field helpers -----------------------------------------------------------------------------


def _text(data: dict, name: str, errors: list[str], *, path: str = "", limit: int = 0) -> str:
    """An optional string field ("" when absent or null); numbers are accepted as text."""
    value = data.get(name)
    label = f"{path}{name}"
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        errors.append(f"'{label}' must be a string")
        return ""
    text = str(value).strip()
    if limit and len(text) > limit:
        text = text[:limit]
    return text


def _required(data: dict, name: str, errors: list[str], *, path: str = "", limit: int = 0) -> str:
    before = len(errors)
    text = _text(data, name, errors, path=path, limit=limit)
    if not text and len(errors) == before:
        errors.append(f"'{path}{name}' is missing or blank")
    return text


def _severity(value: Any, label: str, errors: list[str], *, required: bool) -> str:
    if value is None or value == "":
        if required:
            errors.append(f"'{label}' is missing or blank")
        return ""
    if not isinstance(value, str) or value.strip().lower() not in SEVERITIES:
        errors.append(f"'{label}' is invalid (must be one of {', '.join(SEVERITIES)})")
        return ""
    return value.strip().lower()


def _timestamp(value: Any, label: str, errors: list[str]) -> datetime | None:
    """ISO 8601; a time without an offset is taken as UTC (as PagerDuty does)."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            pass
        else:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    errors.append(f"'{label}' is not an ISO 8601 timestamp")
    return None


def _dedup_key(data: dict, name: str, errors: list[str], *, required: bool) -> str:
    value = data.get(name)
    if value is None or value == "":
        if required:
            errors.append(f"'{name}' is missing or blank")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int):
        errors.append(f"'{name}' must be a string")
        return ""
    key = str(value).strip()
    if len(key) > MAX_DEDUP_KEY:
        errors.append(f"'{name}' is too long (at most {MAX_DEDUP_KEY} characters)")
        return ""
    if not key and required:
        errors.append(f"'{name}' is missing or blank")
    return key


def _object(data: Any) -> None:
    if not isinstance(data, dict):
        raise EventError(["the event must be a JSON object"])


def _list_of_objects(value: Any, label: str, keys: tuple[str, ...], errors: list[str]) -> list:
    """PagerDuty's `links` / `images`: a list of objects with string fields."""
    if value is None:
        return []
    if not isinstance(value, list):
        errors.append(f"'{label}' must be a list")
        return []
    items = []
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            errors.append(f"'{label}[{index}]' must be an object")
            continue
        for key in keys:
            if item.get(key) is not None and not isinstance(item[key], str):
                errors.append(f"'{label}[{index}].{key}' must be a string")
        items.append(item)
    return items


# --- PagerDuty Events API v2 -------------------------------------------------------------------


def parse_events_v2(data: Any) -> tuple[str, Event]:
    """(routing key, event) of a PagerDuty Events API v2 event, checked as PagerDuty does:
    trigger needs `payload.summary`, `payload.source` and `payload.severity`; acknowledge and
    resolve need `dedup_key`."""
    errors: list[str] = []
    _object(data)
    routing_key = _required(data, "routing_key", errors)
    action = data.get("event_action")
    if action is None or action == "":
        errors.append("'event_action' is missing or blank")
    elif action not in ACTIONS:
        errors.append(f"'event_action' is invalid (must be one of {', '.join(ACTIONS)})")
    dedup_key = _dedup_key(data, "dedup_key", errors, required=action in (ACKNOWLEDGE, RESOLVE))
    links = _list_of_objects(data.get("links"), "links", ("href", "text"), errors)
    images = _list_of_objects(data.get("images"), "images", ("src", "href", "alt"), errors)
    client = _text(data, "client", errors)
    client_url = _text(data, "client_url", errors)
    payload = data.get("payload")
    summary = source = severity = component = group = event_class = ""
    timestamp = custom_details = None
    if action == TRIGGER or payload is not None:
        if not isinstance(payload, dict):
            errors.append(
                "'payload' is missing" if payload is None else "'payload' must be an object"
            )
            raise EventError(errors)
        required = action == TRIGGER
        p = "payload."
        if required:
            summary = _required(payload, "summary", errors, path=p, limit=MAX_SUMMARY)
            source = _required(payload, "source", errors, path=p, limit=MAX_SOURCE)
        else:
            summary = _text(payload, "summary", errors, path=p, limit=MAX_SUMMARY)
            source = _text(payload, "source", errors, path=p, limit=MAX_SOURCE)
        severity = _severity(payload.get("severity"), "payload.severity", errors, required=required)
        timestamp = _timestamp(payload.get("timestamp"), "payload.timestamp", errors)
        component = _text(payload, "component", errors, path=p, limit=MAX_SOURCE)
        group = _text(payload, "group", errors, path=p, limit=MAX_SOURCE)
        event_class = _text(payload, "class", errors, path=p, limit=MAX_SOURCE)
        custom_details = payload.get("custom_details")
    if errors:
        raise EventError(errors)
    details = {
        key: value
        for key, value in {
            "source": source,
            "severity": severity,
            "timestamp": timestamp.isoformat() if timestamp else "",
            "component": component,
            "group": group,
            "class": event_class,
            "custom_details": custom_details,
            "links": links,
            "images": images,
            "client": client,
            "client_url": client_url,
        }.items()
        if value not in ("", None, [], {})
    }
    raw = {k: v for k, v in data.items() if k != "routing_key"}  # the key is a secret
    event = Event(
        action=action,
        dedup_key=dedup_key,
        summary=summary,
        title=summary,
        severity=severity,
        source=source,
        timestamp=timestamp,
        component=component,
        group=group,
        event_class=event_class,
        custom_details=custom_details,
        links=links,
        images=images,
        raw=raw,
        details=details,
    )
    return routing_key, event


# --- Prometheus Alertmanager webhook (version 4) -----------------------------------------------


def alertmanager_dedup_key(group_key: str) -> str:
    """The incident's dedup key for an Alertmanager group: the groupKey itself, or, when it is
    longer than a dedup key may be, its start and a hash of the whole."""
    if len(group_key) <= MAX_DEDUP_KEY:
        return group_key
    digest = hashlib.sha256(group_key.encode()).hexdigest()
    return f"{group_key[: MAX_DEDUP_KEY - len(digest) - 1]}~{digest}"


def _string_map(value: Any, label: str, errors: list[str]) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        errors.append(f"'{label}' must be an object of strings")
        return {}
    return value


def _alert_summary(labels: dict, annotations: dict) -> str:
    name = labels.get("alertname", "")
    text = annotations.get("summary") or annotations.get("description") or ""
    if name and text:
        return f"{name}: {text}"[:MAX_SUMMARY]
    if text:
        return text[:MAX_SUMMARY]
    others = ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k != "alertname")
    return (f"{name or 'Alert'} ({others})" if others else name or "Alert")[:MAX_SUMMARY]


def _labels_fingerprint(labels: dict) -> str:
    text = json.dumps(labels, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def parse_alertmanager(data: Any) -> list[Event]:
    """One event per alert of an Alertmanager notification, firing alerts first: firing
    triggers, resolved resolves, and all of them share the group's dedup key (its groupKey)."""
    errors: list[str] = []
    _object(data)
    version = data.get("version")
    if version is not None and str(version) != "4":
        errors.append("'version' must be \"4\" (the Alertmanager webhook version)")
    group_key = data.get("groupKey")
    if not isinstance(group_key, str) or not group_key.strip():
        errors.append("'groupKey' is missing or blank")
        group_key = ""
    status = data.get("status")
    if status not in ("firing", "resolved"):
        errors.append('\'status\' must be "firing" or "resolved"')
    common_labels = _string_map(data.get("commonLabels"), "commonLabels", errors)
    common_annotations = _string_map(data.get("commonAnnotations"), "commonAnnotations", errors)
    group_labels = _string_map(data.get("groupLabels"), "groupLabels", errors)
    alerts = data.get("alerts")
    if not isinstance(alerts, list) or not alerts:
        errors.append("'alerts' must be a non-empty list")
        alerts = []
    parsed = []
    for index, alert in enumerate(alerts):
        label = f"alerts[{index}]"
        if not isinstance(alert, dict):
            errors.append(f"'{label}' must be an object")
            continue
        alert_status = alert.get("status")
        if alert_status not in ("firing", "resolved"):
            errors.append(f'\'{label}.status\' must be "firing" or "resolved"')
        labels = _string_map(alert.get("labels"), f"{label}.labels", errors)
        annotations = _string_map(alert.get("annotations"), f"{label}.annotations", errors)
        starts_at = alert.get("startsAt")
        if not isinstance(starts_at, str) or not starts_at:
            errors.append(f"'{label}.startsAt' is missing or blank")
        else:
            _timestamp(starts_at, f"{label}.startsAt", errors)
        fingerprint = alert.get("fingerprint")
        if fingerprint is not None and not isinstance(fingerprint, str):
            errors.append(f"'{label}.fingerprint' must be a string")
        parsed.append((alert_status, labels, annotations, starts_at, fingerprint or "", alert))
    if errors:
        raise EventError(errors)

    dedup_key = alertmanager_dedup_key(group_key.strip())
    title = _group_title(common_labels, common_annotations, group_labels, parsed)
    context = {k: v for k, v in data.items() if k != "alerts"}
    group_details = {
        key: value
        for key, value in {
            "receiver": data.get("receiver"),
            "externalURL": data.get("externalURL"),
            "groupLabels": group_labels,
            "commonLabels": common_labels,
            "commonAnnotations": common_annotations,
        }.items()
        if value not in ("", None, {})
    }
    events = []
    # Firing first, so an alert resolving in the same notification as another one starts
    # firing never resolves the group's incident in between.
    parsed.sort(key=lambda item: item[0] != "firing")
    for alert_status, labels, annotations, starts_at, fingerprint, alert in parsed:
        severity = labels.get("severity", "").strip().lower()
        alert_key = fingerprint or _labels_fingerprint(labels)
        starts = _timestamp(starts_at, "startsAt", [])
        events.append(
            Event(
                action=TRIGGER if alert_status == "firing" else RESOLVE,
                dedup_key=dedup_key,
                summary=_alert_summary(labels, annotations),
                title=title,
                severity=severity if severity in SEVERITIES else "",
                source=labels.get("instance", labels.get("job", ""))[:MAX_SOURCE],
                timestamp=starts,
                custom_details={"labels": labels, "annotations": annotations},
                alert_key=alert_key,
                alert_started=starts.isoformat() if starts else starts_at,
                raw={**context, "alert": alert},
                details={"alertmanager": {"group_key": group_key, **group_details}},
            )
        )
    if status == "resolved" and events:
        events[-1] = replace(events[-1], group_resolved=True)
    return events


def _group_title(common_labels, common_annotations, group_labels, parsed) -> str:
    summary = common_annotations.get("summary", "")
    name = common_labels.get("alertname", "")
    if name and summary:
        return f"{name}: {summary}"[:MAX_SUMMARY]
    if summary:
        return summary[:MAX_SUMMARY]
    if name:
        others = ", ".join(f"{k}={v}" for k, v in sorted(group_labels.items()) if k != "alertname")
        return (f"{name} ({others})" if others else name)[:MAX_SUMMARY]
    _, labels, annotations, *_ = parsed[0]
    return _alert_summary(labels, annotations)


# --- generic webhook ---------------------------------------------------------------------------

WEBHOOK_STATUSES = {
    "trigger": TRIGGER,
    "triggered": TRIGGER,
    "firing": TRIGGER,
    "problem": TRIGGER,
    "acknowledge": ACKNOWLEDGE,
    "acknowledged": ACKNOWLEDGE,
    "resolve": RESOLVE,
    "resolved": RESOLVE,
    "ok": RESOLVE,
}


def parse_webhook(data: Any) -> Event:
    """The generic webhook: `title` (needed to trigger), `message`, `severity`, `dedup_key`
    (needed to acknowledge or resolve) and `status` (trigger — the default —, acknowledge or
    resolve; also firing / resolved / ok). Any other fields are kept with the alert."""
    errors: list[str] = []
    _object(data)
    status = data.get("status")
    action = TRIGGER
    if status is not None and status != "":
        if not isinstance(status, str) or status.strip().lower() not in WEBHOOK_STATUSES:
            errors.append("'status' is invalid (must be one of trigger, acknowledge, resolve)")
        else:
            action = WEBHOOK_STATUSES[status.strip().lower()]
    dedup_key = _dedup_key(data, "dedup_key", errors, required=action != TRIGGER)
    if action == TRIGGER:
        title = _required(data, "title", errors, limit=MAX_SUMMARY)
    else:
        title = _text(data, "title", errors, limit=MAX_SUMMARY)
    message = data.get("message")
    if message is not None and not isinstance(message, str):
        errors.append("'message' must be a string")
        message = None
    severity = _severity(data.get("severity"), "severity", errors, required=False)
    source = _text(data, "source", errors, limit=MAX_SOURCE)
    if errors:
        raise EventError(errors)
    details = {"message": message} if message else {}
    extra = {
        k: v
        for k, v in data.items()
        if k not in ("title", "message", "severity", "dedup_key", "status", "source")
    }
    if extra:
        details["custom_details"] = extra
    if severity:
        details["severity"] = severity
    return Event(
        action=action,
        dedup_key=dedup_key,
        summary=title,
        title=title,
        severity=severity,
        source=source,
        custom_details=extra or None,
        raw=data,
        details=details,
    )
