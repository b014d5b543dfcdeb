"""Paging: from an alert accepted by `/v2/enqueue` (its 202) to the first notification arriving
at the on-call person's webhook, with gunicorn, PostgreSQL, Redis and a Celery worker process
(issue #4). Target: p99 under 1 s.

Triggers go one at a time, each with a new dedup key, so every one opens an incident and pages
the one person on the policy; the next goes once the webhook of the last has arrived, so the
figure is the latency of the fast path (engine task, then outbox task), not a queue building up.
No beat runs: the sweep, which would catch a lost task within seconds, plays no part. Same
PostgreSQL and Redis set-up as bench_ingest (BENCH_POSTGRES_URL, BENCH_REDIS_URL).
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from bench_ingest import (
    BIN,
    Unavailable,
    bench_database,
    bench_redis,
    child,
    gunicorn,
    manage,
    percentile,
    portal_env,
    process,
)
from common import ROOT

TRIGGERS = 200
TARGET_P99_S = 1.0
WORKER_CONCURRENCY = 2


def setup(webhook_url: str) -> None:
    """(child) One person whose only contact method is a webhook, notified at once; a policy
    paging them; a service with an Events API v2 integration."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from incidents import services
    from incidents.models import Integration
    from oncall import services as people
    from oncall.models import ContactMethod, Role, Urgency

    person = people.user_create(username="bench-oncall", email="oncall@bench.example")
    team = people.team_create(name="Bench paging", members=[(person, Role.LEAD)])
    method = people.contact_method_create(
        user=person, kind=ContactMethod.Kind.WEBHOOK, address=webhook_url
    )
    people.notification_rule_create(
        user=person, contact_method=method, delay_minutes=0, urgency=Urgency.HIGH
    )
    policy = services.escalation_policy_create(team=team, name="Bench: page at once")
    services.escalation_step_add(policy=policy, delay_minutes=5, users=[person])
    service = services.service_create(team=team, name="Bench paging", escalation_policy=policy)
    integration = services.integration_create(
        service=service, name="Events", kind=Integration.Kind.EVENTS_V2
    )
    print(json.dumps({"routing_key": integration.key}))


def trigger(base_url: str, routing_key: str, number: int) -> None:
    import http.client

    parts = urlsplit(base_url)
    body = json.dumps(
        {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": f"page-{number}",
            "payload": {
                "summary": f"Paging bench {number}",
                "source": "bench",
                "severity": "critical",
            },
        }
    )
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("POST", "/v2/enqueue", body=body, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        answer = response.read()
    finally:
        conn.close()
    if response.status != 202:
        raise RuntimeError(f"trigger {number}: {response.status} {answer[:300]!r}")


def run() -> list[dict]:
    try:
        return _run()
    except Unavailable as error:
        return [
            {
                "name": "alert accepted → first notification sent",
                "figure": "not run",
                "target": f"p99 < {TARGET_P99_S:g} s",
                "ok": False,
                "note": str(error),
            }
        ]


def _run() -> list[dict]:
    from oncall.tests.servers import RecordingHTTPServer

    var_dir = tempfile.mkdtemp(prefix="oncall-bench-paging-")
    with (
        RecordingHTTPServer() as webhook,
        bench_database("oncall_bench_paging") as database_url,
        bench_redis() as redis_url,
    ):
        env = portal_env(
            database_url,
            redis_url,
            var_dir,
            BASE_URL="http://127.0.0.1:8000",
            INGEST_RATE_LIMIT_PER_MINUTE=str(TRIGGERS * 100),  # on, out of reach
        )
        manage(env, "migrate", "--noinput", "-v0")
        made = child(env, Path(__file__).resolve(), "setup", webhook.url("/page"))
        routing_key = made["routing_key"]
        worker = [
            str(BIN / "celery"),
            "-A",
            "oncall",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            str(WORKER_CONCURRENCY),
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
        latencies = []
        with (
            gunicorn(env, var_dir, workers=2) as base_url,
            process(worker, env, Path(var_dir) / "worker.log"),
        ):
            # The first page also waits for the worker to start: not counted.
            trigger(base_url, routing_key, 0)
            webhook.wait_for_requests(1, timeout=120)
            for number in range(1, TRIGGERS + 1):
                trigger(base_url, routing_key, number)
                accepted = time.perf_counter()
                webhook.wait_for_requests(number + 1, timeout=30)
                latencies.append(time.perf_counter() - accepted)
        received = len(webhook.requests)
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    return [
        {
            "name": "alert accepted → first notification sent",
            "figure": f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, max "
            f"{max(latencies) * 1000:.0f} ms",
            "target": f"p99 < {TARGET_P99_S:g} s",
            "ok": p99 < TARGET_P99_S,
            "note": f"{TRIGGERS} triggers one after another, each a new incident paging one "
            f"person by webhook (local HTTP server); gunicorn 2 workers, Celery worker "
            f"(prefork, concurrency {WORKER_CONCURRENCY}), PostgreSQL, Redis; "
            f"{received} webhook requests for {TRIGGERS + 1} pages",
        }
    ]


if __name__ == "__main__":
    if sys.argv[1:3] == ["--child", "setup"]:
        setup(sys.argv[3])
    else:
        for row in run():
            print(f"{row['name']}: {row['figure']} (target {row['target']}) {row['note']}")
