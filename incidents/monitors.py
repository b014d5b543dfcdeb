"""The monitors in the portal: HTTP checks and heartbeats.

An HTTP check asks "does this URL answer the expected status, fast enough?" every
`interval_seconds`. `failures_before_alert` failures in a row trigger one incident through the
ordinary workflow (dedup key ``http-check:<integration id>``); the first good answer after that
resolves it. A heartbeat expects a ping every `interval_minutes`: a missed ping triggers one
incident (dedup key ``heartbeat:<integration id>``), and the next ping, handled by the ingest
endpoint, resolves it.

Celery beat runs the sweeps (`incidents.monitor_tasks`); the state lives in the database, so a
check claimed by one worker is never run twice at once, and a lost task only delays a check by
one beat. The network part of a check runs outside any transaction and never holds a row lock.
"""

from __future__ import annotations

import base64
import http.client
import logging
import socket
import ssl
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import unquote, urlsplit, urlunsplit

from django.db import transaction
from django.db.models import CharField, Exists, F, OuterRef, Q, Value
from django.db.models.functions import Cast, Concat

from . import workflow
from .models import Alert, Channel, Heartbeat, HttpCheck, Incident, Integration, Service

logger = logging.getLogger(__name__)

USER_AGENT = "Oncall-HTTP-check/1"
# How long a probe waits for an answer: four times the latency threshold, within these bounds.
# A slower answer is a failure anyway; the bounds keep a hung server from holding a worker.
PROBE_MIN_TIMEOUT = 1.0  # seconds
PROBE_MAX_TIMEOUT = 30.0  # seconds
READ_LIMIT = 64 * 1024  # bytes of the body read (and thrown away) before closing
PROBE_THREADS = 16  # checks probed at once by one sweep
SWEEP_LIMIT = 500  # checks claimed by one sweep; the rest wait for the next beat

# The services whose monitors run: a disabled service refuses alerts, so its checks rest too.
RUNNING_SERVICE_STATUSES = (Service.Status.ACTIVE, Service.Status.MAINTENANCE)

# Monotonic clock of the probes, a module attribute so that tests can make latency exact.
_clock = time.perf_counter


def http_check_dedup_key(integration_id: int) -> str:
    return f"http-check:{integration_id}"


def heartbeat_dedup_key(integration_id: int) -> str:
    return f"heartbeat:{integration_id}"


def public_url(url: str) -> str:
    """The URL without its credentials (``https://user:secret@host/`` → ``https://host/``),
    for titles, timelines and logs."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


# --- the probe (network only: no database) -------------------------------------------------------


@dataclass(frozen=True)
class ProbeResult:
    """What one GET found. `error` says what failed, for a person, or is empty when all is well."""

    status: int | None
    latency_ms: int | None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def describe(self) -> str:
        """One line for a title or a timeline entry."""
        if self.error:
            return self.error
        return f"answered {self.status} in {self.latency_ms} ms"


def probe_timeout(max_latency_ms: int) -> float:
    return min(max(max_latency_ms * 4 / 1000, PROBE_MIN_TIMEOUT), PROBE_MAX_TIMEOUT)


def http_probe(
    url: str, *, expected_status: int, max_latency_ms: int, timeout: float | None = None
) -> ProbeResult:
    """GET `url` once, without following redirects (a 301 is compared as a 301), and judge the
    answer: the expected status, within the latency threshold (time to the response headers).
    Never raises for what the network does; the error names what went wrong."""
    timeout = probe_timeout(max_latency_ms) if timeout is None else timeout
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        return ProbeResult(None, None, f"invalid URL: {error}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ProbeResult(None, None, "invalid URL: only http:// and https:// URLs can be checked")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = {"User-Agent": USER_AGENT, "Accept": "*/*", "Connection": "close"}
    if parts.username is not None:
        credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        headers["Authorization"] = "Basic " + base64.b64encode(credentials.encode()).decode()
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, port, timeout=timeout)
    start = _clock()
    try:
        connection.request("GET", target, headers=headers)
        response = connection.getresponse()
        latency_ms = max(0, round((_clock() - start) * 1000))
        response.read(READ_LIMIT)
    except TimeoutError:
        return ProbeResult(None, None, f"no answer within {timeout:g} s")
    except ConnectionRefusedError:
        return ProbeResult(None, None, "connection refused")
    except socket.gaierror:
        return ProbeResult(None, None, f"host {parts.hostname} not found")
    except ssl.SSLCertVerificationError as error:
        return ProbeResult(None, None, f"TLS certificate not valid: {error.verify_message}")
    except ssl.SSLError as error:
        return ProbeResult(None, None, f"TLS error: {error.reason or error}")
    except ConnectionError as error:
        return ProbeResult(None, None, f"connection failed: {error.strerror or error}")
    except (OSError, http.client.HTTPException) as error:
        return ProbeResult(None, None, f"{type(error).__name__}: {error}"[:300])
    finally:
        connection.close()
    status = response.status
    if status != expected_status:
        return ProbeResult(status, latency_ms, f"answered {status}, expected {expected_status}")
    if latency_ms > max_latency_ms:
        return ProbeResult(
            status, latency_ms, f"answered in {latency_ms} ms, over {max_latency_ms} ms"
        )
    return ProbeResult(status, latency_ms)


# --- HTTP checks -------------------------------------------------------------------------------


def _running_checks():
    return HttpCheck.objects.filter(
        integration__enabled=True,
        integration__kind=Integration.Kind.HTTP_CHECK,
        integration__service__status__in=RUNNING_SERVICE_STATUSES,
    )


def http_checks_due(now: datetime, limit: int = SWEEP_LIMIT) -> list[int]:
    """Ids of the HTTP checks to run now (never run, or due), most overdue first."""
    return list(
        _running_checks()
        .filter(Q(next_check_at__isnull=True) | Q(next_check_at__lte=now))
        .order_by(F("next_check_at").asc(nulls_first=True), "pk")
        .values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def http_check_claim(*, check: HttpCheck | int, now: datetime) -> HttpCheck | None:
    """Take a due check for this run: its next run moves one interval on, so another worker (or
    a duplicate task) finds it not due. None if it is not due or not running."""
    pk = check if isinstance(check, int) else check.pk
    check = (
        _running_checks()
        .select_for_update(of=("self",))
        .select_related("integration__service")
        .filter(pk=pk)
        .first()
    )
    if check is None or (check.next_check_at is not None and check.next_check_at > now):
        return None
    check.next_check_at = now + timedelta(seconds=check.interval_seconds)
    check.save(update_fields=["next_check_at", "updated_at"])
    return check


def _record_alert(
    *,
    integration: Integration,
    incident: Incident,
    action: str,
    dedup_key: str,
    summary: str,
    at: datetime,
    payload: dict,
    outcome: str,
    source: str = "",
    severity: str = "",
) -> Alert:
    """The monitor's own event, stored like any alert received from outside, so the incident's
    alert list shows what the monitor saw."""
    alert = Alert.objects.create(
        incident=incident,
        integration=integration,
        received_at=at,
        action=action,
        dedup_key=dedup_key,
        summary=summary[:1024],
        severity=severity,
        source=source[:255],
        payload=payload,
        outcome=outcome,
    )
    Incident.objects.filter(pk=incident.pk).update(alert_count=F("alert_count") + 1)
    incident.alert_count += 1
    return alert


def _trigger(
    *, integration: Integration, key: str, title: str, details: dict, at: datetime, source: str = ""
) -> Incident:
    """Open the monitor's incident and store the event that opened it as its first alert."""
    incident = workflow.incident_trigger(
        service=integration.service,
        integration=integration,
        title=title,
        at=at,
        dedup_key=key,
        details=details,
        channel=Channel.INTEGRATION,
    )
    _record_alert(
        integration=integration,
        incident=incident,
        action="trigger",
        dedup_key=key,
        summary=title,
        at=at,
        payload=details,
        outcome="triggered",
        source=source,
        severity="critical",
    )
    return incident


def _open_incident(integration: Integration, dedup_key: str) -> Incident | None:
    return Incident.objects.filter(
        integration=integration, dedup_key=dedup_key, status__in=Incident.OPEN_STATUSES
    ).first()


@transaction.atomic
def http_check_record(*, check: HttpCheck, result: ProbeResult, now: datetime) -> HttpCheck | None:
    """Store what a run found and act on it: at `failures_before_alert` failures in a row,
    trigger an incident (unless one is open already); on the first good answer, resolve it.

    While the URL keeps failing with no open incident (someone resolved it by hand), the next
    failed run triggers a new one: the URL is still down, and nobody is left unaware of it.
    None if the check was deleted while it ran."""
    check = (
        HttpCheck.objects.select_for_update(of=("self",))
        .select_related("integration__service")
        .filter(pk=check.pk)
        .first()
    )
    if check is None:
        return None
    integration = check.integration
    url = public_url(check.url)
    check.last_checked_at = now
    check.last_ok = result.ok
    check.last_status = result.status
    check.last_latency_ms = result.latency_ms
    check.last_error = result.error[:500]
    check.consecutive_failures = 0 if result.ok else check.consecutive_failures + 1
    check.save()

    key = http_check_dedup_key(integration.pk)
    details = {
        "monitor": "http_check",
        "url": url,
        "expected_status": check.expected_status,
        "max_latency_ms": check.max_latency_ms,
        "status": result.status,
        "latency_ms": result.latency_ms,
        "error": result.error,
        "consecutive_failures": check.consecutive_failures,
        "checked_at": now.isoformat(),
    }
    host = urlsplit(check.url).hostname or ""
    open_incident = _open_incident(integration, key)
    if result.ok:
        if open_incident is not None:
            note = f"Recovered: GET {url} {result.describe()}."
            _record_alert(
                integration=integration,
                incident=open_incident,
                action="resolve",
                dedup_key=key,
                summary=note,
                at=now,
                payload=details,
                outcome="resolved",
                source=host,
                severity="info",
            )
            workflow.incident_resolve(
                incident=open_incident, by=None, via=Channel.INTEGRATION, at=now, note=note
            )
            logger.info("HTTP check %s: %s recovered, incident resolved", check.pk, url)
        return check
    if check.consecutive_failures < check.failures_before_alert or open_incident is not None:
        return check
    title = f"GET {url}: {result.error}"
    incident = _trigger(
        integration=integration, key=key, title=title, details=details, at=now, source=host
    )
    logger.info(
        "HTTP check %s: %s failed %s time(s) in a row (%s), incident %s triggered",
        check.pk,
        url,
        check.consecutive_failures,
        result.error,
        incident.pk,
    )
    return check


def _probe(check: HttpCheck) -> ProbeResult:
    return http_probe(
        check.url, expected_status=check.expected_status, max_latency_ms=check.max_latency_ms
    )


def http_check_run(*, check: HttpCheck | int, now: datetime) -> HttpCheck | None:
    """Run one HTTP check if it is due: claim it, GET the URL (outside any transaction), record
    the outcome. None when it was not due (already run by someone else, paused or deleted)."""
    claimed = http_check_claim(check=check, now=now)
    if claimed is None:
        return None
    return http_check_record(check=claimed, result=_probe(claimed), now=now)


def http_checks_run_due(*, now: datetime, limit: int = SWEEP_LIMIT) -> list[HttpCheck]:
    """The beat's sweep: run every due check, probing them at once in threads (the database
    work stays in this thread), so a slow URL holds one worker for one timeout at most."""
    claimed = [
        check
        for check in (http_check_claim(check=pk, now=now) for pk in http_checks_due(now, limit))
        if check is not None
    ]
    if not claimed:
        return []
    with ThreadPoolExecutor(max_workers=min(PROBE_THREADS, len(claimed))) as pool:
        results = list(pool.map(_probe, claimed))
    recorded = (
        http_check_record(check=check, result=result, now=now)
        for check, result in zip(claimed, results, strict=True)
    )
    return [check for check in recorded if check is not None]


@transaction.atomic
def http_check_create(
    *,
    integration: Integration,
    url: str,
    expected_status: int = 200,
    max_latency_ms: int = 500,
    interval_seconds: int = 60,
    failures_before_alert: int = 3,
) -> HttpCheck:
    """The check of an HTTP check integration, first run at the next beat."""
    check = HttpCheck(
        integration=integration,
        url=url,
        expected_status=expected_status,
        max_latency_ms=max_latency_ms,
        interval_seconds=interval_seconds,
        failures_before_alert=failures_before_alert,
    )
    # The run state is the monitor's, not the caller's (and `last_ok` may not be blank to
    # full_clean although it is nullable: unknown until the first run).
    check.full_clean()
    check.save()
    return check


def http_check_reset(check: HttpCheck) -> None:
    """After an edit of what is checked: run at the next beat and count failures afresh (an
    open incident stays open until the URL answers well)."""
    check.next_check_at = None
    check.consecutive_failures = 0


# --- heartbeats --------------------------------------------------------------------------------


def heartbeat_expected_by(
    *, last_ping_at: datetime | None, interval_minutes: int, now: datetime
) -> datetime:
    """When the next ping is due: one interval after the last ping, or after `now` for a
    heartbeat that never pinged (it is armed from the moment it is made)."""
    return (last_ping_at or now) + timedelta(minutes=interval_minutes)


def _miss_already_raised():
    """An incident of this heartbeat that is open, or that was triggered by the current miss."""
    key = Concat(Value("heartbeat:"), Cast(OuterRef("integration_id"), output_field=CharField()))
    return Exists(
        Incident.objects.filter(integration_id=OuterRef("integration_id"), dedup_key=key).filter(
            Q(status__in=Incident.OPEN_STATUSES) | Q(triggered_at__gte=OuterRef("expected_by"))
        )
    )


def _overdue_heartbeats(now: datetime):
    return Heartbeat.objects.filter(
        integration__enabled=True,
        integration__kind=Integration.Kind.HEARTBEAT,
        integration__service__status__in=RUNNING_SERVICE_STATUSES,
        expected_by__lte=now,
    ).filter(~_miss_already_raised())


def heartbeats_overdue(now: datetime, limit: int = SWEEP_LIMIT) -> list[int]:
    """Ids of heartbeats whose ping is overdue and whose miss has not raised an incident yet."""
    return list(
        _overdue_heartbeats(now).order_by("expected_by", "pk").values_list("pk", flat=True)[:limit]
    )


@transaction.atomic
def heartbeat_miss(*, heartbeat: Heartbeat | int, now: datetime) -> Incident | None:
    """Trigger the "Missed heartbeat" incident of an overdue heartbeat, once per miss: a miss is
    one `expected_by` deadline, and the next ping (which resolves the incident) sets a new one.
    None when the heartbeat is not overdue or this miss has been raised already."""
    pk = heartbeat if isinstance(heartbeat, int) else heartbeat.pk
    heartbeat = (
        Heartbeat.objects.select_for_update(of=("self",))
        .select_related("integration__service")
        .filter(pk=pk)
        .first()
    )
    # Checked again once the row is locked, in a new statement: a worker that raised this miss
    # a moment ago (or a ping that just arrived) has committed by now.
    if heartbeat is None or not _overdue_heartbeats(now).filter(pk=pk).exists():
        return None
    integration = heartbeat.integration
    key = heartbeat_dedup_key(integration.pk)
    last = heartbeat.last_ping_at
    title = (
        f"Missed heartbeat: {integration.name} (expected every {heartbeat.interval_minutes} min)"
    )
    details = {
        "monitor": "heartbeat",
        "interval_minutes": heartbeat.interval_minutes,
        "last_ping_at": last.isoformat() if last else None,
        "expected_by": heartbeat.expected_by.isoformat(),
    }
    incident = _trigger(integration=integration, key=key, title=title, details=details, at=now)
    logger.info(
        "Heartbeat %s of integration %s missed (expected by %s), incident %s triggered",
        heartbeat.pk,
        integration.pk,
        heartbeat.expected_by.isoformat(),
        incident.pk,
    )
    return incident


def heartbeats_check(*, now: datetime) -> list[Incident]:
    """The beat's sweep: one incident for each heartbeat that missed its ping."""
    incidents = []
    for pk in heartbeats_overdue(now):
        incident = heartbeat_miss(heartbeat=pk, now=now)
        if incident is not None:
            incidents.append(incident)
    return incidents


@transaction.atomic
def heartbeat_create(
    *, integration: Integration, interval_minutes: int, now: datetime
) -> Heartbeat:
    """The heartbeat of a heartbeat integration, armed at once: without a ping within
    `interval_minutes`, it triggers an incident."""
    heartbeat = Heartbeat(
        integration=integration,
        interval_minutes=interval_minutes,
        expected_by=heartbeat_expected_by(
            last_ping_at=None, interval_minutes=interval_minutes, now=now
        ),
    )
    heartbeat.full_clean()
    heartbeat.save()
    return heartbeat
