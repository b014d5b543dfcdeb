"""Alert ingest: 10,000 PagerDuty Events API v2 events over 100 dedup keys, posted to
`/v2/enqueue` under gunicorn with PostgreSQL and a Redis broker (issue #4).

Targets: at least 1,000 events/s with a p99 latency under 50 ms, and exactly 100 incidents at
the end. The bench makes a PostgreSQL database of its own (dropped afterwards) on the server of
`BENCH_POSTGRES_URL` (default: `DATABASE_URL` when it is PostgreSQL, else
postgres://postgres@127.0.0.1:5432/postgres) and uses the Redis database of `BENCH_REDIS_URL`
(default redis://127.0.0.1:6379/15), which must be empty and is emptied afterwards. No worker
runs: the endpoint queues its Celery work on Redis and answers, as in production.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import os
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from common import ROOT

BIN = Path(sys.executable).parent
EVENTS = 10_000
DEDUP_KEYS = 100
GUNICORN_WORKERS = 4
CLIENT_THREADS = 8
TARGET_RATE = 1_000  # events/s
TARGET_P99_MS = 50


class Unavailable(Exception):
    """A service the bench needs is not there: the bench reports it instead of a figure."""


# --- the services (shared with bench_paging) ------------------------------------------------------


def postgres_server_url() -> str:
    url = os.environ.get("BENCH_POSTGRES_URL", "")
    if not url and os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        url = os.environ["DATABASE_URL"]
    return url or "postgres://postgres@127.0.0.1:5432/postgres"


def _with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, ""))


@contextlib.contextmanager
def bench_database(prefix: str) -> Iterator[str]:
    """A fresh, migrated PostgreSQL database with a unique name; dropped at the end."""
    try:
        import psycopg
    except ImportError as error:  # pragma: no cover - psycopg is in requirements.txt
        raise Unavailable("psycopg is not installed") from error
    server = postgres_server_url()
    maintenance = _with_database(server, "postgres")
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    try:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
    except psycopg.Error as error:
        raise Unavailable(f"PostgreSQL at {urlsplit(server).hostname}: {error}") from error
    url = _with_database(server, name)
    try:
        yield url
    finally:
        with psycopg.connect(maintenance, autocommit=True, connect_timeout=3) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def bench_redis() -> Iterator[str]:
    """The bench's own Redis database: refused if not empty (it may be somebody's), emptied at
    the end."""
    import redis

    url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
    client = redis.Redis.from_url(url, socket_timeout=3, socket_connect_timeout=3)
    try:
        if client.dbsize():
            raise Unavailable(
                f"Redis database {url} is not empty: set BENCH_REDIS_URL to an unused one"
            )
    except redis.RedisError as error:
        raise Unavailable(f"Redis at {url}: {error}") from error
    try:
        yield url
    finally:
        client.flushdb()
        client.close()


def portal_env(database_url: str, redis_url: str, var_dir: str, **extra: str) -> dict:
    """The environment of a production-like portal: DEBUG off, tasks queued on Redis, the
    database connections kept (CONN_MAX_AGE as in docker-compose), logs at WARNING."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "oncall.settings",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "CELERY_BROKER_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CONN_MAX_AGE": "60",
        "LOG_LEVEL": "WARNING",
        "VAR_DIR": var_dir,
        "EMAIL_URL": "filemail://",
        "EMAIL_FILE_PATH": str(Path(var_dir) / "mail"),
        "PYTHONPATH": str(ROOT),
    }
    env.update(extra)
    return env


def manage(env: dict, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return done.stdout


def child(env: dict, script: Path, *args: str) -> dict:
    """Run `script --child …` (Django on the bench database); it prints one JSON line last."""
    done = subprocess.run(
        [sys.executable, str(script), "--child", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} --child {args[0]} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(condition, timeout: float, what: str, process: subprocess.Popen | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {process.returncode}")
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise RuntimeError(f"{what}: not within {timeout:g} s")


def _answers(url: str) -> bool:
    parts = urlsplit(url)
    try:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=2)
        conn.request("GET", parts.path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


@contextlib.contextmanager
def process(command: list[str], env: dict, log: Path) -> Iterator[subprocess.Popen]:
    """A child process in its own process group, stopped (and its children with it) at the end."""
    with open(log, "w") as out:
        proc = subprocess.Popen(
            command, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


@contextlib.contextmanager
def gunicorn(env: dict, var_dir: str, workers: int) -> Iterator[str]:
    """gunicorn on 127.0.0.1 (sync workers, as docker-compose runs it); yields the base URL."""
    port = free_port()
    command = [
        str(BIN / "gunicorn"),
        "oncall.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--backlog",
        "2048",
        "--worker-tmp-dir",
        "/dev/shm" if Path("/dev/shm").is_dir() else var_dir,
        "--log-level",
        "warning",
    ]
    base = f"http://127.0.0.1:{port}"
    with process(command, env, Path(var_dir) / "gunicorn.log") as proc:
        wait_until(lambda: _answers(base + "/healthz"), 60, "gunicorn start", proc)
        yield base


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return ordered[index]


# --- the load ----------------------------------------------------------------------------------


def event_body(routing_key: str, number: int, keys: int = DEDUP_KEYS) -> bytes:
    """A trigger event as PagerDuty's client libraries send it; every event is different
    (a re-sent identical one would take the cheaper duplicate path)."""
    key = number % keys
    return json.dumps(
        {
            "routing_key": routing_key,
            "event_action": "trigger",
            "dedup_key": f"bench-{key}",
            "payload": {
                "summary": f"Bench event {number}: disk filling up on host-{key}",
                "source": f"host-{key}.bench",
                "severity": "critical",
                "component": "disk",
                "group": "bench",
                "class": "disk",
                "custom_details": {"event": number, "free_percent": number % 7},
            },
        }
    ).encode()


def post_events(base_url: str, bodies: list[bytes], threads: int, path="/v2/enqueue") -> dict:
    """Post every body to `path` from `threads` client threads, each on one keep-alive
    connection (re-opened when the server closes it); latency per request, statuses. A body of
    None is a GET."""
    parts = urlsplit(base_url)
    counter = itertools.count()
    latencies: list[float] = []
    statuses: Counter = Counter()
    lock = threading.Lock()
    headers = {"Content-Type": "application/json", "Connection": "keep-alive"}

    def client() -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        mine, seen = [], Counter()
        while (index := next(counter)) < len(bodies):
            for attempt in range(2):
                start = time.perf_counter()
                try:
                    body = bodies[index]
                    method = "GET" if body is None else "POST"
                    conn.request(method, path, body=body, headers=headers)
                    response = conn.getresponse()
                    response.read()
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    conn.close()  # a kept-alive connection the server had closed: once more
                    if attempt:
                        raise
                    continue
                mine.append((time.perf_counter() - start) * 1000)
                seen[response.status] += 1
                if response.will_close:
                    conn.close()
                break
        conn.close()
        with lock:
            latencies.extend(mine)
            statuses.update(seen)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    start = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - start
    return {"elapsed": elapsed, "latencies": latencies, "statuses": statuses}


def count_rows(database_url: str) -> dict:
    import psycopg

    with psycopg.connect(database_url) as conn:
        incidents, alerts, alert_sum = conn.execute(
            "SELECT (SELECT count(*) FROM incidents_incident WHERE dedup_key LIKE 'bench-%%'),"
            " (SELECT count(*) FROM incidents_alert WHERE dedup_key LIKE 'bench-%%'),"
            " (SELECT coalesce(sum(alert_count), 0) FROM incidents_incident"
            "  WHERE dedup_key LIKE 'bench-%%')"
        ).fetchone()
    return {"incidents": incidents, "alerts": alerts, "alert_count_sum": alert_sum}


def setup() -> None:
    """(child) The demo-like team, service and Events API v2 integration the events go to."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from incidents import services
    from incidents.models import Integration
    from oncall import services as people
    from oncall.models import ContactMethod

    lead = people.user_create(username="bench-lead", email="lead@bench.example")
    people.contact_method_create(user=lead, kind=ContactMethod.Kind.EMAIL, address=lead.email)
    team = people.team_create(name="Bench", members=[(lead, "lead")])
    service = services.team_paging_defaults_create(team=team)
    integration = service.integrations.get(kind=Integration.Kind.EVENTS_V2)
    print(json.dumps({"routing_key": integration.key}))


def per_event(routing_key: str, count: int) -> None:
    """(child) `count` events through Django in this one process, one after another, without
    HTTP: the wall-clock and CPU time of one event in the endpoint, for the notes."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.test import Client

    client = Client(HTTP_HOST="127.0.0.1")
    bodies = [event_body(routing_key, n, keys=1).replace(b"bench-0", b"solo") for n in range(count)]
    for body in bodies[:50]:  # warm-up
        client.post("/v2/enqueue", body, content_type="application/json")
    wall, cpu = time.perf_counter(), time.process_time()
    for body in bodies[50:]:
        client.post("/v2/enqueue", body, content_type="application/json")
    events = count - 50
    wall_ms = (time.perf_counter() - wall) * 1000 / events
    cpu_ms = (time.process_time() - cpu) * 1000 / events
    print(json.dumps({"wall_ms": wall_ms, "cpu_ms": cpu_ms}))


def run() -> list[dict]:
    try:
        return _run()
    except Unavailable as error:
        return [
            {
                "name": "ingest /v2/enqueue",
                "figure": "not run",
                "target": f"≥ {TARGET_RATE:,} events/s, p99 < {TARGET_P99_MS} ms",
                "ok": False,
                "note": str(error),
            }
        ]


def _run() -> list[dict]:
    var_dir = tempfile.mkdtemp(prefix="oncall-bench-ingest-")
    with bench_database("oncall_bench_ingest") as database_url, bench_redis() as redis_url:
        # The per-key rate limit is on but out of reach: its Redis counter is part of the cost.
        env = portal_env(
            database_url, redis_url, var_dir, INGEST_RATE_LIMIT_PER_MINUTE=str(EVENTS * 100)
        )
        manage(env, "migrate", "--noinput", "-v0")
        routing_key = child(env, Path(__file__).resolve(), "setup")["routing_key"]
        bodies = [event_body(routing_key, n) for n in range(EVENTS)]
        load_average = os.getloadavg()[0]
        with gunicorn(env, var_dir, GUNICORN_WORKERS) as base_url:
            # Warm-up (connections, imports) on another key, not counted.
            warm = [event_body(routing_key, n, keys=1).replace(b"bench-0", b"warm") for n in (0, 1)]
            post_events(base_url, warm * 100, CLIENT_THREADS)
            # What the same set-up serves for a request that only asks the database `SELECT 1`:
            # the ceiling any endpoint has on this machine.
            baseline = post_events(base_url, [None] * 2000, CLIENT_THREADS, path="/healthz")
            load = post_events(base_url, bodies, CLIENT_THREADS)
        rows = count_rows(database_url)
        solo = child(env, Path(__file__).resolve(), "per-event", routing_key)
    latencies = load["latencies"]
    rate = len(latencies) / load["elapsed"]
    p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
    accepted = load["statuses"].get(202, 0)
    others = {k: v for k, v in load["statuses"].items() if k != 202}
    incidents = rows["incidents"]
    setting = (
        f"{EVENTS:,} events over {DEDUP_KEYS} dedup keys from {CLIENT_THREADS} client threads; "
        f"gunicorn {GUNICORN_WORKERS} sync workers, PostgreSQL, Redis broker, all on this "
        f"machine ({os.cpu_count()} cores, load average {load_average:.1f} at the start)"
    )
    healthz = baseline["latencies"]
    healthz_rate = len(healthz) / baseline["elapsed"]
    return [
        {
            "name": "ingest /v2/enqueue: throughput",
            "figure": f"{rate:,.0f} events/s",
            "target": f"≥ {TARGET_RATE:,} events/s",
            "ok": rate >= TARGET_RATE,
            "note": f"{setting}; {accepted:,} answered 202"
            + (f", others: {others}" if others else "")
            + f". What limits it: one event costs {solo['cpu_ms']:.1f} ms of CPU in the "
            f"endpoint's own process ({solo['wall_ms']:.1f} ms wall-clock, one after another, "
            "no HTTP), before PostgreSQL, Redis and the client take their share of the "
            f"{os.cpu_count()} cores",
        },
        {
            "name": "ingest /v2/enqueue: latency",
            "figure": f"p50 {p50:.1f} ms, p99 {p99:.1f} ms",
            "target": f"p99 < {TARGET_P99_MS} ms",
            "ok": p99 < TARGET_P99_MS,
            "note": "from sending the request to reading the whole answer, at the client",
        },
        {
            "name": "for comparison: GET /healthz (SELECT 1)",
            "figure": f"{healthz_rate:,.0f} requests/s, p50 {statistics.median(healthz):.1f} ms, "
            f"p99 {percentile(healthz, 0.99):.1f} ms",
            "target": "none (the ceiling of this set-up)",
            "ok": True,
            "note": "the same gunicorn and clients; what any Django endpoint can reach here",
        },
        {
            "name": "ingest /v2/enqueue: dedup",
            "figure": f"{incidents} incidents",
            "target": f"exactly {DEDUP_KEYS}",
            "ok": incidents == DEDUP_KEYS and accepted == EVENTS,
            "note": f"{rows['alerts']:,} alerts stored; the incidents' alert counts sum to "
            f"{rows['alert_count_sum']:,}",
        },
    ]


if __name__ == "__main__":
    if sys.argv[1:3] == ["--child", "setup"]:
        setup()
    elif sys.argv[1:3] == ["--child", "per-event"]:
        per_event(sys.argv[3], 1050)
    else:
        for row in run():
            print(f"{row['name']}: {row['figure']} (target {row['target']}) {row['note']}")
