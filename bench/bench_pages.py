"""Pages at scale: the incident list and the incident page with 100,000 incidents and
1,000,000 timeline entries on PostgreSQL (issue #5).

Target: p95 under 100 ms of server time per page. The bench makes a PostgreSQL database of its
own (`bench_pages_…`, dropped afterwards) on the server of `BENCH_POSTGRES_URL` (default:
`DATABASE_URL` when it is PostgreSQL, else postgres://postgres@127.0.0.1:5432/postgres), loads
the rows with `INSERT … SELECT generate_series` (five teams of six people, four services each,
the incidents spread over two years with their timeline, alerts, pages, notifications and
assignees), runs `VACUUM ANALYZE`, then asks each page 200 times through Django's test client
in one process, in rounds of one request per page: server time from the request entering the
middleware to the rendered answer, without the network or a browser. DEBUG is off, database
connections are kept (CONN_MAX_AGE), the reader is Chen, a responder of two of the five teams
(40,000 incidents), unless said.
"""

from __future__ import annotations

import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from common import ROOT

NOTES = """\
Run alone with `python bench/run_all.py pages` (a few minutes: about a minute to load, then
1,600 requests). Wall-clock figures include waiting for a CPU when the machine is busy; the
"CPU" in the notes is what the page itself costs in the Django process (PostgreSQL's share is
in the wall-clock figure only).

What the measurements led to (EXPLAIN ANALYZE on the bench's data; migration
`incidents/0002_list_indexes`):

- **Counts per status** (the list's tabs; the same filter as the list, every status): one
  aggregate over every incident of the reader's teams. With the old `(service, status)` index
  PostgreSQL read the whole table in parallel (about 110 ms for 40,000 incidents on the busy
  machine). The index is now `(service, status) INCLUDE (id)`: the counts come from the index
  alone (index-only scan, about 14 ms for 40,000 incidents, 30 ms for 100,000).
- **One service's incidents, newest first**: `(service, -triggered_at, -id)` reads the 25 rows
  of the page directly (10 ms → 0.2 ms).
- **Every status, newest first, and deep pages**: `(-triggered_at, -id) INCLUDE (service,
  status)`; a deep page still walks the skipped rows, so the list reads the ids of a page first
  (index only) and then those 25 incidents.
- **Not indexed on purpose**: `updated_at`. Every alert attached to an open incident moves it;
  an index on it would stop PostgreSQL's in-place (HOT) updates on the ingest path.
- **The incident page** spends its time in Python, not in the database: its 12 queries take a
  few milliseconds together (timeline, alerts and notifications are read through their
  `incident` foreign-key indexes). With 200 timeline entries and 50 alerts it first cost ~50 ms
  of CPU: turning rows into model objects (each entry with its actor and profile), rendering
  the timeline through template loops and pretty-printing every payload. It now reads the
  timeline and alerts as plain values (actor names joined in), builds their escaped HTML in
  Python, and pretty-prints only the payloads shown, cut at 20,000 characters: ~21 ms of CPU
  for 200 entries, ~17 ms for 10 (in-process, median of 100 renders)."""

INCIDENTS = 100_000
ENTRIES_PER_INCIDENT = 10  # the long incident adds ~190 more
REQUESTS = 200
WARM_UP = 10
TARGET_P95_MS = 100
CHILD_TIMEOUT_S = 1200

TEAMS = ["Payments", "Platform", "Data", "Mobile", "Identity"]
SERVICES = {
    "Payments": ["Checkout API", "Payments web", "Card vault", "Payouts"],
    "Platform": ["Kubernetes cluster", "Postgres primary", "Edge proxy", "CI runners"],
    "Data": ["Warehouse loads", "Kafka", "Reporting API", "Nightly backup"],
    "Mobile": ["iOS app API", "Android app API", "Push gateway", "App config"],
    "Identity": ["Login", "SSO bridge", "Sessions", "Password reset"],
}
# Six people a team (lead, four responders, an observer), the demo's names first.
PEOPLE = {
    "Payments": [
        ("alice", "Alice Martin", "lead"),
        ("bruno", "Bruno Costa", "responder"),
        ("chen", "Chen Wei", "responder"),
        ("gita", "Gita Rao", "responder"),
        ("hugo", "Hugo Lindqvist", "responder"),
        ("fiona", "Fiona Hart", "observer"),
    ],
    "Platform": [
        ("dana", "Dana Whitfield", "lead"),
        ("emeka", "Emeka Okafor", "responder"),
        ("chen", "Chen Wei", "responder"),
        ("ines", "Inès Moreau", "responder"),
        ("jonas", "Jonas Weber", "responder"),
        ("fiona", "Fiona Hart", "observer"),
    ],
    "Data": [
        ("kofi", "Kofi Mensah", "lead"),
        ("lea", "Léa Dubois", "responder"),
        ("mateo", "Mateo García", "responder"),
        ("nora", "Nora Berg", "responder"),
        ("omar", "Omar Haddad", "responder"),
        ("fiona", "Fiona Hart", "observer"),
    ],
    "Mobile": [
        ("priya", "Priya Nair", "lead"),
        ("quinn", "Quinn Murphy", "responder"),
        ("rosa", "Rosa Ferreira", "responder"),
        ("sven", "Sven Olsen", "responder"),
        ("tara", "Tara Singh", "responder"),
        ("fiona", "Fiona Hart", "observer"),
    ],
    "Identity": [
        ("uma", "Uma Patel", "lead"),
        ("victor", "Victor Ivanov", "responder"),
        ("wen", "Wen Zhao", "responder"),
        ("yusuf", "Yusuf Demir", "responder"),
        ("zoe", "Zoe Adams", "responder"),
        ("fiona", "Fiona Hart", "observer"),
    ],
}
TITLES = [
    "High error rate on {service}: 5xx above 2% for 5 minutes",
    "{service}: p99 latency above 1.5 s",
    "Disk 91% full on {service} node 3",
    "{service}: pod crash-looping (OOMKilled)",
    "TLS certificate for {service} expires in 7 days",
    "{service}: queue depth above 10,000 messages",
    "Heartbeat missed: {service}",
    "HTTP check failing: {service} /healthz answers 503",
    "{service}: replication lag above 30 s",
    "{service}: CPU throttled above 80% for 10 minutes",
    "{service}: error budget burn rate 14x over 1 h",
    "{service}: connection pool exhausted",
]


# --- the parent: database, child process, rows for run_all -------------------------------------


def run() -> list[dict]:
    from bench_ingest import Unavailable, bench_database

    try:
        with bench_database("bench_pages") as database_url:
            return _measure_in_child(database_url)
    except (Unavailable, RuntimeError, subprocess.TimeoutExpired) as error:
        return [_not_run("incident list and incident page at 100,000 incidents", str(error))]


def _not_run(name: str, why: str) -> dict:
    """A row saying why there is no figure (make bench goes on with the other benches)."""
    why = " ".join(why.split())
    return {
        "name": name,
        "figure": "not run",
        "target": f"p95 < {TARGET_P95_MS} ms",
        "ok": False,
        "note": why[-500:].replace("|", "/"),
    }


def _measure_in_child(database_url: str) -> list[dict]:
    """Django runs in a child process on the bench database: the parent (run_all) may already
    have set Django up on another one."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "oncall.settings",
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": secrets.token_urlsafe(48),
        "ALLOWED_HOSTS": "testserver,127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SESSION_COOKIE_SECURE": "0",
        "CSRF_COOKIE_SECURE": "0",
        "CONN_MAX_AGE": "60",
        "LOG_LEVEL": "WARNING",
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "CELERY_BROKER_URL": "memory://",
        "EMAIL_URL": "consolemail://",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT_S,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench_pages --child failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# --- the child: load, then measure --------------------------------------------------------------


def _child() -> list[dict]:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    # The manifest storage of DEBUG=0 needs `collectstatic`; the page's HTML is what is timed.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    world = load()
    load_s = time.perf_counter() - started
    return measure(world, load_s)


def _people_and_services() -> dict:
    """Teams, people, contact methods, services and integrations through the services layer
    (a few hundred rows); returns the ids the bulk load needs."""
    from incidents import services as incident_services
    from incidents.models import EscalationPolicy, Integration, Service
    from incidents.workflow import policy_snapshot
    from oncall import services as people
    from oncall.models import ContactMethod, Role

    users: dict[str, object] = {}
    names: dict[str, str] = {}
    methods: dict[str, tuple[int, int]] = {}
    for members in PEOPLE.values():
        for username, name, _role in members:
            if username in users:
                continue
            user = people.user_create(
                username=username,
                email=f"{username}@example.com",
                password="bench",
                display_name=name,
                time_zone="Europe/London",
            )
            email = people.contact_method_create(
                user=user, kind=ContactMethod.Kind.EMAIL, address=user.email, verified=True
            )
            sms = people.contact_method_create(
                user=user, kind=ContactMethod.Kind.SMS, address="+44 20 7946 0000", verified=True
            )
            users[username], names[username] = user, name
            methods[username] = (email.pk, sms.pk)
    admin = people.user_create(username="admin", password="bench", is_superuser=True)

    services = []  # (n, service id, integration id, policy id, team n, snapshot)
    actors = []  # (team n, k, user id, name, e-mail method, sms method)
    for team_n, team_name in enumerate(TEAMS):
        members = PEOPLE[team_name]
        team = people.team_create(
            name=team_name, members=[(users[u], Role(role)) for u, _n, role in members]
        )
        responders = [u for u, _n, role in members if role != "observer"]
        for k, username in enumerate(responders[1:]):  # the four responders act
            actors.append((team_n, k, users[username].pk, names[username], *methods[username]))
        policy = incident_services.escalation_policy_create(
            team=team, name=f"{team_name} critical", repeat_count=1
        )
        incident_services.escalation_step_add(
            policy=policy, delay_minutes=5, schedules=team.schedules.all()[:1]
        )
        incident_services.escalation_step_add(
            policy=policy, delay_minutes=10, users=[users[u] for u in responders[1:3]]
        )
        incident_services.escalation_step_add(
            policy=policy, delay_minutes=15, users=[users[responders[0]]]
        )
        snapshot = policy_snapshot(policy)
        default = Service.objects.get(team=team)
        for s, service_name in enumerate(SERVICES[team_name]):
            if s == 0:
                service = incident_services.service_update(
                    service=default, name=service_name, escalation_policy=policy
                )
                integration = default.integrations.first()
            else:
                service = incident_services.service_create(
                    team=team, name=service_name, escalation_policy=policy
                )
                integration = incident_services.integration_create(
                    service=service, name="Alertmanager", kind=Integration.Kind.ALERTMANAGER
                )
            services.append(
                (
                    len(services),
                    service.pk,
                    integration.pk,
                    policy.pk,
                    team_n,
                    json.dumps(snapshot),
                    service_name,
                    integration.name,
                )
            )
    assert EscalationPolicy.objects.count() >= len(TEAMS)
    return {"users": users, "admin": admin, "services": services, "actors": actors}


class _TimedCursor:
    """A cursor that notes how long each statement of the load took (by its first words)."""

    def __init__(self, cursor):
        self.cursor = cursor
        self.steps: list[tuple[str, float]] = []

    def execute(self, sql: str, params=None) -> None:
        start = time.perf_counter()
        self.cursor.execute(sql, params)
        self.steps.append((" ".join(sql.split()[:3]), time.perf_counter() - start))

    def executemany(self, sql: str, rows) -> None:
        self.cursor.executemany(sql, rows)

    def fetchone(self):
        return self.cursor.fetchone()

    def fetchall(self):
        return self.cursor.fetchall()


def load() -> dict:
    """Everything the pages read, in bulk: a few seconds per million rows."""
    from django.db import connection, transaction
    from django.utils import timezone

    setup = _people_and_services()
    now = timezone.now().replace(microsecond=0)
    nservices = len(setup["services"])
    with transaction.atomic(), connection.cursor() as raw:
        cursor = _TimedCursor(raw)
        cursor.execute(
            "CREATE TEMP TABLE bench_services (n int PRIMARY KEY, service_id bigint, "
            "integration_id bigint, policy_id bigint, team_n int, snapshot jsonb, "
            "service_name text, integration_name text) ON COMMIT DROP"
        )
        cursor.executemany(
            "INSERT INTO bench_services VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s)",
            setup["services"],
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_actors (team_n int, k int, user_id bigint, name text, "
            "email_id bigint, sms_id bigint, PRIMARY KEY (team_n, k)) ON COMMIT DROP"
        )
        cursor.executemany(
            "INSERT INTO bench_actors VALUES (%s, %s, %s, %s, %s, %s)", setup["actors"]
        )
        cursor.execute(
            "CREATE TEMP TABLE bench_titles (k int PRIMARY KEY, title text) ON COMMIT DROP"
        )
        cursor.executemany("INSERT INTO bench_titles VALUES (%s, %s)", list(enumerate(TITLES)))

        # Incidents: g = 1 is the newest, one every ten minutes back over ~two years; the 300
        # newest are open (half triggered), plus an old acknowledged one now and then.
        cursor.execute(
            """
            INSERT INTO incidents_incident (
                created_at, updated_at, service_id, integration_id, title, details, status,
                urgency, dedup_key, alert_count, triggered_at, acknowledged_at, resolved_at,
                acknowledged_by_id, resolved_by_id, escalation_policy_id, policy_snapshot,
                current_step, loop, round, next_escalation_at, ack_timeout_at)
            SELECT x.t, COALESCE(x.resolved, x.acked, x.t), s.service_id, s.integration_id,
                   replace(ti.title, '{service}', s.service_name),
                   jsonb_build_object('source', lower(replace(s.service_name, ' ', '-'))),
                   x.status, CASE WHEN x.g %% 5 = 0 THEN 'low' ELSE 'high' END,
                   'bench-' || x.g, 3, x.t, x.acked, x.resolved,
                   CASE WHEN x.acked IS NULL THEN NULL ELSE a.user_id END,
                   CASE WHEN x.resolved IS NULL THEN NULL ELSE a.user_id END,
                   s.policy_id, s.snapshot, 1, 0, 0,
                   CASE WHEN x.status = 'triggered' THEN %(now)s + interval '10 minutes' END,
                   NULL
            FROM (
                SELECT g, t, status,
                       CASE WHEN status <> 'triggered'
                            THEN t + (6 + g %% 9) * interval '1 minute' END AS acked,
                       CASE WHEN status = 'resolved'
                            THEN t + (25 + g %% 200) * interval '1 minute' END AS resolved
                FROM (
                    SELECT g, %(now)s - g * interval '10 minutes' AS t,
                           CASE WHEN g <= 300 AND g %% 2 = 0 THEN 'triggered'
                                WHEN g <= 300 OR g %% 997 = 0 THEN 'acknowledged'
                                ELSE 'resolved' END AS status
                    FROM generate_series(1, %(incidents)s) AS g
                ) AS y
            ) AS x
            JOIN bench_services s ON s.n = x.g %% %(nservices)s
            JOIN bench_actors a ON a.team_n = s.team_n AND a.k = (x.g / %(nservices)s) %% 4
            JOIN bench_titles ti ON ti.k = (x.g / 7) %% %(ntitles)s
            ORDER BY x.g DESC
            """,
            {"now": now, "incidents": INCIDENTS, "nservices": nservices, "ntitles": len(TITLES)},
        )
        # Per incident: who was paged first (p1: a responder) and who acknowledged (p2).
        cursor.execute(
            """
            CREATE TEMP TABLE bench_incidents ON COMMIT DROP AS
            SELECT i.id, i.status, i.title, i.triggered_at AS t, i.acknowledged_at AS a,
                   i.resolved_at AS r, s.integration_id, s.integration_name,
                   p1.user_id AS p1, p1.name AS p1_name, p1.email_id AS p1_email,
                   p1.sms_id AS p1_sms,
                   COALESCE(i.acknowledged_by_id, p2.user_id) AS p2,
                   p2.name AS p2_name, p2.email_id AS p2_email
            FROM incidents_incident i
            JOIN bench_services s ON s.service_id = i.service_id
            JOIN bench_actors p1 ON p1.team_n = s.team_n AND p1.k = (i.id + 1) % 4
            JOIN bench_actors p2 ON p2.team_n = s.team_n
                 AND p2.user_id = COALESCE(i.acknowledged_by_id,
                     (SELECT user_id FROM bench_actors z WHERE z.team_n = s.team_n
                      AND z.k = i.id % 4))
            """
        )
        cursor.execute("ALTER TABLE bench_incidents ADD PRIMARY KEY (id)")
        # Ten timeline entries an incident, as the workflow writes them.
        cursor.execute(
            """
            INSERT INTO incidents_timelineentry (incident_id, at, kind, actor_id, channel,
                                                 message, data)
            SELECT b.id,
                   CASE e.base WHEN 'a' THEN b.a WHEN 'r' THEN b.r ELSE b.t END
                       + e.offset_s * interval '1 second',
                   e.kind,
                   CASE WHEN e.actor THEN b.p2 END,
                   e.channel,
                   replace(replace(replace(replace(e.message,
                       '{title}', b.title), '{p1}', b.p1_name), '{p2}', b.p2_name),
                       '{integration}', b.integration_name),
                   CASE e.kind
                       WHEN 'notified' THEN jsonb_build_object(
                           'user', CASE WHEN e.pos = 7 THEN b.p2 ELSE b.p1 END,
                           'contact_kind', CASE WHEN e.pos = 4 THEN 'sms' ELSE 'email' END,
                           'attempt', 1, 'ok', true, 'answer', 'accepted',
                           'bundled_incidents', 1)
                       WHEN 'triggered' THEN jsonb_build_object('integration', b.integration_id)
                       WHEN 'alert' THEN jsonb_build_object('integration', b.integration_id)
                       WHEN 'escalated' THEN jsonb_build_object('step', 1, 'loop', 0)
                       ELSE '{}'::jsonb END
            FROM bench_incidents b
            JOIN (VALUES
                (1, 'any', 't', 0, 'triggered', false, 'integration',
                    'Triggered by {integration}: {title}'),
                (2, 'any', 't', 0, 'alert', false, 'integration',
                    'Alert from {integration}: {title}'),
                (3, 'any', 't', 8, 'notified', false, 'system', 'Notified {p1} by e-mail'),
                (4, 'any', 't', 62, 'notified', false, 'system', 'Notified {p1} by SMS'),
                (5, 'any', 't', 120, 'alert', false, 'integration',
                    'Alert from {integration}: {title}'),
                (6, 'any', 't', 300, 'escalated', false, 'system',
                    'Nobody acknowledged within 5 minutes: escalated to step 2 of 3'),
                (7, 'any', 't', 305, 'notified', false, 'system', 'Notified {p2} by e-mail'),
                (8, 'triggered', 't', 900, 'escalated', false, 'system',
                    'Nobody acknowledged within 10 minutes: escalated to step 3 of 3'),
                (9, 'triggered', 't', 905, 'notified', false, 'system',
                    'Notified {p1} by e-mail'),
                (10, 'triggered', 't', 960, 'notified', false, 'system',
                    'Notified {p1} by SMS'),
                (8, 'open', 'a', 0, 'acknowledged', true, 'web', 'Acknowledged by {p2}'),
                (9, 'open', 'a', 90, 'note', true, 'web',
                    'Looking at the dashboards; the last deploy was 12 minutes before.'),
                (10, 'acknowledged', 'a', 600, 'note', true, 'web',
                    'Mitigated; keeping it open until the fix is deployed.'),
                (10, 'resolved', 'r', 0, 'resolved', true, 'web', 'Resolved by {p2}')
            ) AS e(pos, applies, base, offset_s, kind, actor, channel, message)
              ON e.applies = 'any' OR e.applies = b.status
                 OR (e.applies = 'open' AND b.status <> 'triggered')
            ORDER BY b.id, e.pos
            """
        )
        # Three alerts an incident (two firing, then the resolve or a repeat).
        cursor.execute(
            """
            INSERT INTO incidents_alert (incident_id, integration_id, received_at, action,
                dedup_key, summary, severity, source, fingerprint, payload, outcome)
            SELECT b.id, b.integration_id,
                   CASE WHEN n = 3 AND b.r IS NOT NULL THEN b.r
                        ELSE b.t + (n - 1) * interval '2 minutes' END,
                   CASE WHEN n = 3 AND b.r IS NOT NULL THEN 'resolve' ELSE 'trigger' END,
                   'bench-' || b.id, b.title, 'critical', 'prometheus-eu-1', '',
                   jsonb_build_object(
                       'routing_key', '…redacted', 'event_action', 'trigger',
                       'dedup_key', 'bench-' || b.id,
                       'payload', jsonb_build_object(
                           'summary', b.title, 'source', 'prometheus-eu-1',
                           'severity', 'critical',
                           'custom_details', jsonb_build_object(
                               'value', 2.5 + n, 'threshold', 2, 'runbook',
                               'https://runbooks.example.com/high-error-rate'))),
                   CASE WHEN n = 1 THEN 'triggered'
                        WHEN n = 3 AND b.r IS NOT NULL THEN 'resolved' ELSE 'attached' END
            FROM bench_incidents b CROSS JOIN generate_series(1, 3) AS n
            ORDER BY b.id, n
            """
        )
        # Two pages (step 1 to p1, step 2 to p2) and three notifications; p2 is the assignee.
        cursor.execute(
            """
            INSERT INTO incidents_page (incident_id, user_id, step, loop, round, paged_at)
            SELECT b.id, CASE WHEN n = 0 THEN b.p1 ELSE b.p2 END, n, 0, 0,
                   b.t + n * interval '5 minutes'
            FROM bench_incidents b CROSS JOIN generate_series(0, 1) AS n
            ORDER BY b.id, n
            """
        )
        cursor.execute(
            """
            INSERT INTO incidents_notification (page_id, incident_id, user_id,
                contact_method_id, channel, rule_delay_minutes, status, due_at, attempts,
                last_attempt_at, sent_at, provider_answer, bundled_into_id)
            SELECT p.id, b.id, p.user_id,
                   CASE WHEN n = 1 THEN COALESCE(CASE WHEN p.step = 0 THEN b.p1_sms END,
                                                 b.p2_email)
                        WHEN p.step = 0 THEN b.p1_email ELSE b.p2_email END,
                   CASE WHEN n = 1 AND p.step = 0 THEN 'sms' ELSE 'email' END,
                   n, 'sent', p.paged_at + n * interval '1 minute', 1,
                   p.paged_at + n * interval '1 minute', p.paged_at + n * interval '1 minute',
                   'accepted', NULL
            FROM incidents_page p
            JOIN bench_incidents b ON b.id = p.incident_id
            CROSS JOIN generate_series(0, 1) AS n
            WHERE n = 0 OR p.step = 0
            ORDER BY p.id, n
            """
        )
        cursor.execute(
            """
            INSERT INTO incidents_incident_assignees (incident_id, user_id)
            SELECT id, p2 FROM bench_incidents
            """
        )
        # The long incident: a bad night, ~200 timeline entries and 60 alerts.
        cursor.execute(
            """
            SELECT b.id FROM bench_incidents b
            JOIN incidents_incident i ON i.id = b.id
            JOIN bench_services s ON s.service_id = i.service_id
            WHERE b.status = 'resolved' AND s.team_n = 0
            ORDER BY b.id DESC LIMIT 2 OFFSET 400
            """
        )
        long_id, short_id = (row[0] for row in cursor.fetchall())
        cursor.execute(
            """
            INSERT INTO incidents_timelineentry (incident_id, at, kind, actor_id, channel,
                                                 message, data)
            SELECT b.id, b.a + n * interval '20 seconds',
                   CASE WHEN n %% 3 = 0 THEN 'note' ELSE 'alert' END,
                   CASE WHEN n %% 3 = 0 THEN b.p2 END,
                   CASE WHEN n %% 3 = 0 THEN 'web' ELSE 'integration' END,
                   CASE WHEN n %% 3 = 0 THEN 'Still seeing errors from shard ' || n
                        ELSE 'Alert from ' || b.integration_name || ': ' || b.title END,
                   CASE WHEN n %% 3 = 0 THEN '{}'::jsonb
                        ELSE jsonb_build_object('integration', b.integration_id) END
            FROM bench_incidents b CROSS JOIN generate_series(1, 190) AS n
            WHERE b.id = %s
            """,
            [long_id],
        )
        cursor.execute(
            """
            INSERT INTO incidents_alert (incident_id, integration_id, received_at, action,
                dedup_key, summary, severity, source, fingerprint, payload, outcome)
            SELECT b.id, b.integration_id, b.a + n * interval '30 seconds', 'trigger',
                   'bench-' || b.id, b.title, 'critical', 'prometheus-eu-1', '',
                   jsonb_build_object('summary', b.title, 'shard', n), 'attached'
            FROM bench_incidents b CROSS JOIN generate_series(1, 60) AS n
            WHERE b.id = %s
            """,
            [long_id],
        )
        cursor.execute(
            "UPDATE incidents_incident SET alert_count = alert_count + 60 WHERE id = %s",
            [long_id],
        )
        counts = {}
        for table in ("incident", "timelineentry", "alert", "page", "notification"):
            cursor.execute(f"SELECT count(*) FROM incidents_{table}")
            counts[table] = cursor.fetchone()[0]
    with connection.cursor() as raw:
        vacuum = _TimedCursor(raw)
        vacuum.execute("VACUUM ANALYZE")
    for step, seconds in cursor.steps + vacuum.steps:
        if seconds >= 1:
            print(f"load: {step}: {seconds:.1f} s", file=sys.stderr)
    return {**setup, "long_id": long_id, "short_id": short_id, "counts": counts}


def _shown(url: str) -> str:
    """The URL as the notes show it: without the version marker."""
    path, _, query = url.partition("?")
    kept = [(k, v) for k, v in parse_qsl(query) if k not in ("v", "version")]
    return f"{path}?{urlencode(kept)}" if kept else path


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _prepare(client, url: str) -> dict:
    """Warm `url` up; the query count, the slowest query and the size of one answer."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(WARM_UP):
        response = client.get(url)
        if response.status_code != 200:
            raise RuntimeError(f"{url} answered {response.status_code}")
    with CaptureQueriesContext(connection) as context:
        client.get(url)
    queries = list(context.captured_queries)  # read now: the next request empties the log
    return {
        "queries": len(queries),
        "slowest_query_ms": max((float(q["time"]) * 1000 for q in queries), default=0.0),
        "bytes": len(response.content),
        "times": [],
        "cpu": [],
    }


def _time_pages(pages: list[tuple[object, str, dict]]) -> None:
    """REQUESTS answers of every page, one page after the other in each round, so that a burst
    of other work on the machine falls on all of them alike. Per answer: the wall-clock time and
    the CPU time of this process (what the page costs whatever else runs on the machine;
    PostgreSQL's share is in the wall-clock time only)."""
    for _ in range(REQUESTS):
        for client, url, figures in pages:
            start, start_cpu = time.perf_counter(), time.process_time()
            client.get(url)
            figures["times"].append((time.perf_counter() - start) * 1000)
            figures["cpu"].append((time.process_time() - start_cpu) * 1000)


def measure(world: dict, load_s: float) -> list[dict]:
    from django.db.models import Count
    from django.test import Client

    from incidents.models import Incident, Service

    chen, admin = world["users"]["chen"], world["admin"]
    reader = Client()
    reader.force_login(chen)
    superuser = Client()
    superuser.force_login(admin)
    checkout = Service.objects.get(name="Checkout API")
    resolved_checkout = Incident.objects.filter(
        service=checkout, status=Incident.Status.RESOLVED
    ).count()
    readable = Incident.objects.filter(service__team__memberships__user=chen).count()
    deep_page = readable // 25 * 5 // 8  # five eighths of the way down "All"
    long_entries = Incident.objects.filter(pk=world["long_id"]).annotate(n=Count("timeline"))
    long_n = long_entries.get().n
    short_n = Incident.objects.filter(pk=world["short_id"]).annotate(n=Count("timeline")).get().n

    def live(client, url: str, param: str) -> str:
        """The live poll's URL with the version marker the page already shows (unchanged:
        the answer every open tab gets most of the time)."""
        version = client.get(url).json()["version"]
        return f"{url}{'&' if '?' in url else '?'}{urlencode({param: version})}"

    counts = world["counts"]
    data_note = (
        f"{counts['incident']:,} incidents, {counts['timelineentry']:,} timeline entries, "
        f"{counts['alert']:,} alerts, {counts['notification']:,} notifications, "
        f"loaded in {load_s:.0f} s; load average {os.getloadavg()[0]:.1f} before the requests"
    )
    scenarios = [
        (
            "Incident list, default view (open incidents of the reader's teams)",
            reader,
            "/incidents/",
            f"reader sees {readable:,} incidents; {data_note}",
        ),
        (
            "Incident list, one service's resolved incidents",
            reader,
            f"/incidents/?status=resolved&service={checkout.pk}",
            f"{resolved_checkout:,} match",
        ),
        (
            f"Incident list, all statuses, page {deep_page:,}",
            reader,
            f"/incidents/?status=all&page={deep_page}",
            f"offset {(deep_page - 1) * 25:,}",
        ),
        (
            "Incident list, default view, superuser (every team)",
            superuser,
            "/incidents/",
            f"{counts['incident']:,} incidents counted per status",
        ),
        (
            "Incident list live poll, unchanged (every 5 s per open tab)",
            reader,
            live(reader, "/incidents/live/", "v"),
            "answer with the version marker only",
        ),
        (
            f"Incident page, {short_n} timeline entries",
            reader,
            f"/incidents/{world['short_id']}/",
            "3 alerts, 3 notifications",
        ),
        (
            f"Incident page, {long_n} timeline entries",
            reader,
            f"/incidents/{world['long_id']}/",
            "63 alerts (50 shown)",
        ),
        (
            "Incident page live poll, unchanged",
            reader,
            live(reader, f"/incidents/{world['long_id']}/live/", "version"),
            "answer with the version marker only",
        ),
    ]
    rows, timed = [], []
    for name, client, url, note in scenarios:
        try:
            timed.append((name, client, url, note, _prepare(client, url)))
        except RuntimeError as error:  # a page that answers an error has no timing
            rows.append(_not_run(name, str(error)))
    _time_pages([(client, url, figures) for _, client, url, _, figures in timed])
    for name, _client, url, note, figures in timed:
        p95 = _percentile(figures["times"], 0.95)
        rows.append(
            {
                "name": name,
                "figure": f"p50 {statistics.median(figures['times']):.1f} ms, p95 {p95:.1f} ms",
                "target": f"p95 < {TARGET_P95_MS} ms",
                "ok": p95 < TARGET_P95_MS,
                "note": (
                    f"`{_shown(url)}`; Django's own CPU "
                    f"{statistics.median(figures['cpu']):.0f} ms (median); "
                    f"{figures['queries']} queries, "
                    f"slowest {figures['slowest_query_ms']:.1f} ms; "
                    f"{figures['bytes'] / 1024:.0f} KB; {note}"
                ),
            }
        )
    return rows


if __name__ == "__main__":
    if "--child" in sys.argv:
        print(json.dumps(_child()))
    else:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        for row in run():
            print(row)
