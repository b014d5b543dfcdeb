"""The endpoints alerts come in through: HTTP in, `incidents.ingest` services, JSON out.

- `POST /v2/enqueue`: the PagerDuty Events API v2, same answers as PagerDuty's.
- `POST /integrations/alertmanager/<key>/`: the Prometheus Alertmanager webhook (version 4).
- `POST /integrations/webhook/<key>/`: a generic JSON webhook.
- `GET|POST /integrations/heartbeat/<key>/`: a heartbeat ping.

Every answer is JSON, whatever goes wrong: 400 naming the bad fields, 404 for a key that is
unknown, rotated out or disabled (or whose service is disabled), 405, 413 over 512 KB, 429 with
`Retry-After` past the per-key rate limit, 503 with `Retry-After` when the database is
unreachable. Keys are secrets: logs name the integration id and the key's last four characters,
never the key, and Django's own request log (which prints the path, where keys sit) is skipped.

The hot path is short on purpose (issue #4: 1,000 events/s on two cores): the JSON is read with
the standard library, the rate limit costs one Redis round trip, and an event for an incident
that is already open is one SQL statement (`ingest.alert_attach_fast`, which checks the key as
it goes, so a rotated-out or disabled key is refused from the next event on). No DRF and no
database work in the middleware: machines send no session cookie, so the time-zone
middleware's look at `request.user` finds an anonymous user without a query.
"""

import contextlib
import functools
import hashlib
import logging
import math
import time
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.http import JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from . import events, ingest
from .events import EventError
from .models import Integration, Service

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 512 * 1024
DATABASE_RETRY_AFTER_SECONDS = 10
MAX_KEY_LENGTH = 64  # Integration.key


class Refused(Exception):
    """Stop handling the request and send this answer."""

    def __init__(self, response: JsonResponse):
        super().__init__(response.status_code)
        self.response = response


def answer(status: int, body: dict, headers: dict | None = None) -> JsonResponse:
    response = JsonResponse(body, status=status, headers=headers)
    # Django logs every 4xx/5xx with the request path, and these paths carry secret keys: the
    # views log what matters themselves (integration id and key hint).
    response._has_been_logged = True
    return response


def invalid(errors: list[str]) -> JsonResponse:
    return answer(
        400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    )


def hint(key: str) -> str:
    """The last four characters of a presented key: enough to tell keys apart in a log."""
    return f"…{key[-4:]}" if len(key) > 8 else "…"


def ingest_endpoint(*methods: str):
    """JSON in and out, no CSRF (machines post here), and no HTML error page ever: the
    database down → 503 with Retry-After; anything unexpected → a logged JSON 500."""

    def decorate(view):
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return answer(
                    405,
                    {
                        "status": "invalid event",
                        "message": f"Method not allowed: use {' or '.join(methods)}",
                    },
                    {"Allow": ", ".join(methods)},
                )
            try:
                return view(request, *args, **kwargs)
            except Refused as refusal:
                return refusal.response
            except (OperationalError, InterfaceError) as error:
                logger.warning(
                    "ingest: the database is unreachable (%s); answered 503",
                    type(error).__name__,
                )
                return answer(
                    503,
                    {
                        "status": "unavailable",
                        "message": "The database is unreachable: retry later.",
                    },
                    {"Retry-After": str(DATABASE_RETRY_AFTER_SECONDS)},
                )
            except Exception:
                logger.exception("ingest: unexpected error in %s", view.__name__)
                return answer(500, {"status": "error", "message": "Internal error"})

        return wrapper

    return decorate


# --- the steps every endpoint takes ------------------------------------------------------------


def read_body(request) -> bytes:
    """The body, at most MAX_BODY_BYTES: 413 beyond, by Content-Length or by what is read.

    A chunked upload has no Content-Length, and Django then reads no body at all; when the
    server marks the input as terminated (gunicorn does), it is read from the server's stream,
    still cut off at the limit."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        declared = None
    if declared is not None and declared > MAX_BODY_BYTES:
        raise Refused(too_large())
    stream = request
    if declared is None and request.META.get("wsgi.input_terminated"):
        stream = request.META["wsgi.input"]
    chunks, size = [], 0
    while chunk := stream.read(min(64 * 1024, MAX_BODY_BYTES + 1 - size)):
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise Refused(too_large())
        chunks.append(chunk)
    return b"".join(chunks)


def too_large() -> JsonResponse:
    logger.info("ingest: refused a body over %d bytes", MAX_BODY_BYTES)
    return answer(
        413,
        {
            "status": "invalid event",
            "message": f"Request body too large: at most {MAX_BODY_BYTES} bytes (512 KB)",
        },
    )


# After a failure of Redis the limiter is left out for this long, so that a Redis that stalls
# (its socket timeout is 1 s) does not add a second to every alert in the meantime.
LIMITER_PAUSE_SECONDS = 5.0
_limiter_paused_until = 0.0

# One round trip to Redis: the window's counter +1, and its expiry (the key names its minute,
# so it is never reused; the expiry only cleans up).
_COUNT_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@functools.cache
def _limiter_redis(url: str):
    """A Redis client of its own (one connection pool per process), with the short timeouts of
    the cache: the limiter must never hold an alert up for long."""
    import redis

    client = redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1)
    return client, client.register_script(_COUNT_SCRIPT)


def _count_request(counter: str) -> int:
    """This request's number in its key's window: in Redis when REDIS_URL is set (shared by
    every web process, one round trip), else in this process's cache."""
    if settings.REDIS_URL:
        _client, count = _limiter_redis(settings.REDIS_URL)
        return int(count(keys=[f"oncall:{counter}"], args=[120]))
    if cache.add(counter, 1, timeout=120):
        return 1
    try:
        return cache.incr(counter)
    except ValueError:  # expired between add and incr
        return 1


def check_rate(key: str) -> None:
    """A fixed one-minute window per key: past INGEST_RATE_LIMIT_PER_MINUTE requests, 429
    until the minute ends. If Redis fails, requests go through for LIMITER_PAUSE_SECONDS before
    it is asked again: losing an alert is worse than a flood."""
    global _limiter_paused_until
    limit = settings.INGEST_RATE_LIMIT_PER_MINUTE
    if limit <= 0:
        return
    now = time.time()
    if now < _limiter_paused_until:
        return
    window = int(now // 60)
    digest = hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()[:32]
    try:
        count = _count_request(f"ingest-rate:{digest}:{window}")
    except Exception as error:  # the cache server is down: fail open, loudly
        _limiter_paused_until = now + LIMITER_PAUSE_SECONDS
        logger.warning(
            "ingest: rate limiter unavailable (%s); requests pass unlimited for %g s",
            type(error).__name__,
            LIMITER_PAUSE_SECONDS,
        )
        return
    if count > limit:
        retry_after = max(1, math.ceil((window + 1) * 60 - now))
        logger.info("ingest: key %s over its rate limit of %d per minute", hint(key), limit)
        raise Refused(
            answer(
                429,
                {
                    "status": "throttle event",
                    "message": f"Rate limit of {limit} requests per minute per integration "
                    f"key reached: retry in {retry_after} s",
                },
                {"Retry-After": str(retry_after)},
            )
        )


def find_integration(key: str, kind: str) -> Integration | None:
    """The enabled integration of this kind with this key on a service that is not disabled."""
    if not key or len(key) > MAX_KEY_LENGTH:
        return None
    integration = Integration.objects.select_related("service").filter(key=key).first()
    if (
        integration is None
        or integration.kind != kind
        or not integration.enabled
        or integration.service.status == Service.Status.DISABLED
    ):
        logger.info("ingest: no enabled %s integration has the key %s", kind, hint(key))
        return None
    return integration


def parse(request, parser):
    try:
        return parser(events.load_json(read_body(request)))
    except EventError as error:
        logger.debug("ingest: invalid event: %s", error.errors)
        raise Refused(invalid(error.errors)) from None


def run_ingest(
    integration: Integration, batch: list[events.Event], received_at: datetime | None = None
) -> list[ingest.IngestResult]:
    """Ingest the events in one transaction. Celery work is queued after the commit; if
    queueing fails (the broker is down) the alerts are stored all the same and the beat sweep
    does the work, so the answer is still 202."""
    received_at = received_at or timezone.now()
    results: list[ingest.IngestResult] = []
    try:
        # One event is its own transaction already (alert_ingest is atomic).
        with transaction.atomic() if len(batch) > 1 else contextlib.nullcontext():
            for event in batch:
                results.append(
                    ingest.alert_ingest(
                        integration=integration, event=event, received_at=received_at
                    )
                )
    except DatabaseError:
        raise
    except Exception as error:
        if len(results) != len(batch):
            raise
        logger.warning(
            "ingest: integration %s: alerts stored, but queueing follow-up work failed (%s); "
            "the sweep will do it",
            integration.pk,
            type(error).__name__,
        )
    logger.debug(
        "ingest: integration %s (%s): %s",
        integration.pk,
        integration.key_hint,
        ", ".join(r.outcome for r in results),
    )
    return results


def ingest_one(key: str, kind: str, event: events.Event, unknown: str) -> ingest.IngestResult:
    """One event of an endpoint that takes one: the fast path when the event attaches to an open
    incident (one statement, which checks the key too), else the full path. Raises Refused
    (404) for a key that is unknown, rotated out or disabled, whichever path decides it."""
    received_at = timezone.now()
    result = ingest.alert_attach_fast(key=key, kind=kind, event=event, received_at=received_at)
    if result is not None:
        logger.debug("ingest: key %s: %s (fast path)", hint(key), result.outcome)
        return result
    integration = find_integration(key, kind)
    if integration is None:
        raise Refused(unknown_key(unknown))
    (result,) = run_ingest(integration, [event], received_at)
    return result


def unknown_key(message: str = "Unknown integration key") -> JsonResponse:
    return answer(
        404,
        {
            "status": "invalid event",
            "message": message,
            "errors": ["The key is unknown, rotated out or disabled, or its service is disabled"],
        },
    )


# --- the endpoints -----------------------------------------------------------------------------


@ingest_endpoint("POST")
def enqueue(request):
    """PagerDuty Events API v2: `POST /v2/enqueue` with the integration key as `routing_key`."""
    routing_key, event = parse(request, events.parse_events_v2)
    check_rate(routing_key)
    result = ingest_one(routing_key, Integration.Kind.EVENTS_V2, event, "Unknown routing key")
    return answer(
        202, {"status": "success", "message": "Event processed", "dedup_key": result.dedup_key}
    )


@ingest_endpoint("POST")
def alertmanager(request, key: str):
    """Prometheus Alertmanager webhook, version 4: one incident per groupKey."""
    batch = parse(request, events.parse_alertmanager)
    check_rate(key)
    integration = find_integration(key, Integration.Kind.ALERTMANAGER)
    if integration is None:
        return unknown_key()
    results = run_ingest(integration, batch)
    return answer(
        202,
        {
            "status": "success",
            "message": "Event processed",
            "dedup_key": results[0].dedup_key,
            "alerts": len(results),
        },
    )


@ingest_endpoint("POST")
def webhook(request, key: str):
    """The generic JSON webhook (see events.parse_webhook and the README)."""
    event = parse(request, events.parse_webhook)
    check_rate(key)
    result = ingest_one(key, Integration.Kind.WEBHOOK, event, "Unknown integration key")
    return answer(
        202, {"status": "success", "message": "Event processed", "dedup_key": result.dedup_key}
    )


@ingest_endpoint("GET", "POST")
def heartbeat(request, key: str):
    """A heartbeat ping; any body is ignored."""
    read_body(request)
    check_rate(key)
    integration = find_integration(key, Integration.Kind.HEARTBEAT)
    if integration is None:
        return unknown_key()
    ping = ingest.heartbeat_ping(integration=integration, at=timezone.now())
    return answer(
        200,
        {
            "status": "success",
            "message": "Heartbeat received",
            "expected_by": ping.heartbeat.expected_by.isoformat(),
            "resolved_incidents": ping.resolved,
        },
    )


@csrf_exempt
def not_found(request, rest: str = ""):
    """Anything else under /integrations/: a JSON 404 (and the path, which may hold a key, is
    not logged)."""
    return answer(404, {"status": "invalid event", "message": "No such integration endpoint"})
