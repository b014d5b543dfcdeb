"""The paging loop with real parts: PostgreSQL, Redis as the Celery broker and `celery worker`
processes, paging a local webhook receiver and a local SMTP server.

Each test starts its workers (`--pool threads`, one process each, in their own process group)
on the test database, and kills them at the end whatever happens. This process produces tasks
onto the same Redis. Nothing sleeps for a fixed time: every wait is on a condition with a
deadline. Time beyond "now" is driven through the sweep's `now`, as beat would reach it later.

Needs REDIS_URL and DATABASE_URL=postgres://… (skipped otherwise, failed with
REQUIRE_SERVICES=1). The Redis database of REDIS_URL is emptied (FLUSHDB) by these tests.
"""

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote, urlsplit

import kombu.pools
import pytest
import redis
import time_machine
from django.conf import settings as django_settings
from django.db import connection
from django.utils import timezone

from incidents import tasks, workflow
from incidents.models import Incident, Notification, Page, Service
from incidents.services import escalation_policy_create, escalation_step_add, service_create
from oncall import celery_app
from oncall.models import ContactKind, Role
from oncall.tests.factories import TeamFactory, UserFactory, contact_method
from oncall.tests.servers import RecordingHTTPServer, RecordingSMTPServer

ROOT = Path(__file__).resolve().parents[2]
CELERY = Path(sys.executable).parent / "celery"
WAIT = 20.0  # seconds: the longest any step may take before the test fails

pytestmark = pytest.mark.django_db(transaction=True)


def wait_until(condition, timeout: float = WAIT, what: str = "condition"):
    """Poll `condition` until it returns something truthy (returned), failing at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


class Worker:
    """A `celery -A oncall worker` process of our own, in its own process group."""

    def __init__(self, name: str, env: dict, log_dir: Path, concurrency: int = 4):
        self.name = name
        self.log_path = log_dir / f"worker-{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            [
                str(CELERY),
                "-A",
                "oncall",
                "worker",
                "--pool",
                "threads",
                "--concurrency",
                str(concurrency),
                "--hostname",
                f"{name}@%h",
                "--loglevel",
                "INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: killed as a whole, by its id
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self) -> "Worker":
        def ready():
            if self.process.poll() is not None:
                raise AssertionError(f"worker {self.name} exited:\n{self.log}")
            return re.search(r"\bready\.", self.log)

        wait_until(ready, timeout=60, what=f"worker {self.name} to be ready")
        return self

    def kill(self) -> None:
        """SIGKILL, as the kernel's OOM killer or a pulled plug: no clean-up at all."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=WAIT)
        self._log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=WAIT)
        self._log.close()


def database_url() -> str:
    """The test database, as DATABASE_URL for another process."""
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = f":{db['PORT']}" if db["PORT"] else ""
    return f"postgres://{auth}@{host}{port}/{quote(db['NAME'], safe='')}"


@pytest.fixture
def broker(redis_url, postgres_required):
    """An empty Redis broker, and this process producing onto it instead of running tasks
    inline."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    conf = celery_app.conf
    saved = (conf.task_always_eager, conf.broker_url, conf.broker_transport_options)
    conf.task_always_eager = False
    conf.broker_url = redis_url
    conf.broker_transport_options = {}
    kombu.pools.reset()
    celery_app._pool = None
    celery_app.amqp._producer_pool = None
    try:
        yield client
    finally:
        kombu.pools.reset()  # close this test's broker connections (and forget them)
        celery_app._pool = None
        celery_app.amqp._producer_pool = None
        conf.task_always_eager, conf.broker_url, conf.broker_transport_options = saved
        client.flushdb()
        client.close()


@pytest.fixture
def http_server():
    with RecordingHTTPServer() as server:
        yield server


@pytest.fixture
def workers(transactional_db, broker, redis_url, tmp_path):
    """start(name) → a ready Worker on the test database and the broker; all are killed at the
    end of the test, before the database is emptied."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url(),
        "CELERY_BROKER_URL": redis_url,
        "REDIS_URL": redis_url,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "SECRET_KEY": django_settings.SECRET_KEY,
        "BASE_URL": "http://oncall.test",
        "VAR_DIR": str(tmp_path / "var"),
        "EMAIL_URL": "consolemail://",
        "LOG_LEVEL": "INFO",
        "PYTHONUNBUFFERED": "1",
    }
    started: list[Worker] = []

    def start(name: str = "w1", **extra_env) -> Worker:
        worker = Worker(name, {**env, **extra_env}, tmp_path)
        started.append(worker)
        return worker.wait_ready()

    try:
        yield start
    finally:
        for worker in started:
            worker.stop()


def idle(client: redis.Redis, polls: int = 3) -> bool:
    """Nothing waiting in the queue and nothing taken but unfinished (tasks are acked late),
    read atomically, on a few polls in a row (a message is briefly in neither while a worker
    moves it from the queue to its unacknowledged set)."""
    for _ in range(polls):
        pipe = client.pipeline(transaction=True)
        queued, taken = pipe.llen("celery").hlen("unacked").execute()
        if queued or taken:
            return False
        time.sleep(0.05)
    return True


def next_step_at(incident: Incident):
    """When the incident's next step is due (the worker that fired the last one set it)."""
    incident.refresh_from_db()
    assert incident.next_escalation_at is not None
    return incident.next_escalation_at


def posts(server: RecordingHTTPServer) -> Counter:
    return Counter(request.path for request in server.requests)


def policy_of(team, *steps, delay=1, repeat_count=0):
    """A service on a new policy: one step per list of users, `delay` minutes each."""
    policy = escalation_policy_create(team=team, name="Test policy", repeat_count=repeat_count)
    for users in steps:
        escalation_step_add(policy=policy, delay_minutes=delay, users=users)
    return service_create(team=team, name="Checkout", escalation_policy=policy)


@pytest.fixture
def two_people(http_server):
    ada = UserFactory(username="ada", display_name="Ada Lovelace")
    bob = UserFactory(username="bob", display_name="Bob")
    team = TeamFactory(name="Payments", lead=ada, members=[(bob, Role.RESPONDER)])
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/ada"))
    contact_method(bob, ContactKind.WEBHOOK, http_server.url("/bob"))
    return team, ada, bob


# --- the fast path -----------------------------------------------------------------------------


def test_a_trigger_pages_the_on_call_person_within_seconds(workers, http_server):
    ada = UserFactory(username="ada")
    team = TeamFactory(name="Payments", lead=ada)  # its default policy: the schedule, the leads
    contact_method(ada, ContactKind.WEBHOOK, http_server.url("/ada"))
    service = Service.objects.get(team=team)
    workers("w1")

    started = time.monotonic()
    incident = workflow.incident_trigger(service=service, title="Disk full", at=timezone.now())
    [request] = http_server.wait_for_requests(1, timeout=10)
    elapsed = time.monotonic() - started

    assert elapsed < 10
    assert request.json()["data"]["incidents"][0]["id"] == incident.pk
    assert list(Page.objects.values_list("user", flat=True)) == [ada.pk]
    notification = wait_until(
        lambda: Notification.objects.filter(status=Notification.Status.SENT).first(),
        what="the outcome to be recorded",
    )
    assert notification.provider_answer.startswith("HTTP 200")


def test_no_acknowledgement_pages_step_two_after_its_delay(workers, http_server, two_people):
    team, ada, bob = two_people
    service = policy_of(team, [ada], [bob], delay=1)
    workers("w1")
    at = timezone.now()
    incident = workflow.incident_trigger(service=service, title="Disk full", at=at)
    http_server.wait_for_requests(1)
    assert posts(http_server) == {"/ada": 1}

    due = next_step_at(incident)
    assert due - at >= timedelta(minutes=1)  # the step's delay, from when step 1 fired
    assert tasks.sweep(now=(due - timedelta(seconds=1)).isoformat())["advanced"] == []
    assert tasks.sweep(now=due.isoformat())["advanced"] == [incident.pk]

    http_server.wait_for_requests(2)
    assert posts(http_server) == {"/ada": 1, "/bob": 1}
    assert list(Page.objects.order_by("id").values_list("user", "step")) == [
        (ada.pk, 0),
        (bob.pk, 1),
    ]


def test_acknowledging_stops_the_escalation(workers, http_server, two_people):
    team, ada, bob = two_people
    service = policy_of(team, [ada], [bob], delay=1)
    workers("w1")
    at = timezone.now()
    incident = workflow.incident_trigger(service=service, title="Disk full", at=at)
    http_server.wait_for_requests(1)

    workflow.incident_acknowledge(incident=incident, by=ada, via="web", at=timezone.now())
    report = tasks.sweep(now=(at + timedelta(minutes=5)).isoformat())

    assert report["advanced"] == []
    assert report["due_notifications"] == 0
    assert list(Page.objects.values_list("user", flat=True)) == [ada.pk]
    assert posts(http_server) == {"/ada": 1}


def test_loops_repeat_through_the_policy(workers, http_server, two_people):
    team, ada, bob = two_people
    service = policy_of(team, [ada], [bob], delay=1, repeat_count=1)
    workers("w1")
    incident = workflow.incident_trigger(service=service, title="Disk full", at=timezone.now())
    http_server.wait_for_requests(1)

    for count in (2, 3, 4):
        tasks.sweep(now=next_step_at(incident).isoformat())
        http_server.wait_for_requests(count)

    assert list(Page.objects.order_by("id").values_list("user", "step", "loop")) == [
        (ada.pk, 0, 0),
        (bob.pk, 1, 0),
        (ada.pk, 0, 1),
        (bob.pk, 1, 1),
    ]
    assert posts(http_server) == {"/ada": 2, "/bob": 2}


# --- things going wrong ------------------------------------------------------------------------


def test_a_worker_killed_in_the_middle_of_an_escalation_still_escalates_once(
    workers, broker, http_server, two_people
):
    team, ada, bob = two_people
    service = policy_of(team, [ada], [bob], delay=1)
    first = workers("w1")
    at = timezone.now()
    incident = workflow.incident_trigger(service=service, title="Disk full", at=at)
    http_server.wait_for_requests(1)
    # The worker now holds step 2 as a task with an ETA, taken from Redis but not acknowledged.
    wait_until(lambda: broker.hlen("unacked") == 1, what="the worker to hold the ETA task")

    first.kill()
    workers("w2")
    report = tasks.sweep(now=next_step_at(incident).isoformat())

    assert report["advanced"] == [incident.pk]
    http_server.wait_for_requests(2)
    wait_until(lambda: broker.llen("celery") == 0, what="the queue to drain")
    wait_until(
        lambda: not Notification.objects.exclude(status=Notification.Status.SENT).exists(),
        what="every notification to be sent",
    )
    assert list(Page.objects.order_by("id").values_list("user", "step")) == [
        (ada.pk, 0),
        (bob.pk, 1),
    ]
    assert posts(http_server) == {"/ada": 1, "/bob": 1}
    # Once Redis gives the dead worker's message back (its visibility timeout), it is harmless:
    workflow.incident_advance(incident=incident, now=at + timedelta(minutes=2))
    assert Page.objects.count() == 2


def test_a_worker_killed_while_sending_sends_again_after_the_stuck_delay(
    workers, broker, http_server, two_people
):
    team, ada, _ = two_people
    service = policy_of(team, [ada])
    http_server.hold()  # the provider takes its time: the worker is caught mid-send
    first = workers("w1")
    at = timezone.now()
    workflow.incident_trigger(service=service, title="Disk full", at=at)
    http_server.wait_for_requests(1)
    assert Notification.objects.get().status == Notification.Status.SENDING

    first.kill()
    http_server.release()
    http_server.respond(200, "ok")
    workers("w2")
    assert tasks.sweep(now=(at + timedelta(minutes=4)).isoformat())["released"] == 0
    report = tasks.sweep(now=(at + timedelta(minutes=5, seconds=30)).isoformat())

    assert report["released"] == 1
    http_server.wait_for_requests(2)
    notification = wait_until(
        lambda: Notification.objects.filter(status=Notification.Status.SENT).first(),
        what="the notification to be sent",
    )
    assert notification.attempts == 2
    assert Page.objects.count() == 1  # paged once; the message went out again (at least once)


def test_a_flushed_redis_loses_nothing_the_sweep_recovers_it(
    workers, broker, http_server, two_people
):
    team, ada, bob = two_people
    escalating = policy_of(team, [ada])
    now = timezone.now()
    # No worker yet: an escalation queued, and an escalated incident whose sends are queued.
    lost_advance = workflow.incident_trigger(service=escalating, title="Disk full", at=now)
    lost_send = workflow.incident_trigger(service=escalating, title="CPU hot", at=now)
    workflow.incident_advance(incident=lost_send, now=now)
    assert broker.llen("celery") >= 2

    broker.flushdb()
    assert broker.llen("celery") == 0
    workers("w1")
    tasks.sweep.delay()  # as beat does, every few seconds

    wait_until(
        lambda: Notification.objects.filter(status=Notification.Status.SENT).count() == 2,
        what="both incidents' notifications to be sent",
    )
    assert set(Page.objects.values_list("incident", flat=True)) == {lost_advance.pk, lost_send.pk}
    http_server.wait_for_requests(1)
    assert sum(posts(http_server).values()) == 1  # one message, both incidents (bundled)
    body = http_server.requests[0].json()
    assert {i["id"] for i in body["data"]["incidents"]} == {lost_advance.pk, lost_send.pk}


def test_two_workers_racing_on_one_incident_page_everybody_once(workers, broker, http_server):
    lead = UserFactory()
    people = [UserFactory() for _ in range(8)]
    team = TeamFactory(lead=lead, members=[(p, Role.RESPONDER) for p in people])
    for person in people:
        contact_method(person, ContactKind.WEBHOOK, http_server.url(f"/u{person.pk}"))
    service = policy_of(team, people)  # one step, no repeat: no task waits on an ETA
    workers("w1")
    workers("w2")

    incident = workflow.incident_trigger(
        service=service, title="Everything is on fire", at=timezone.now()
    )
    for _ in range(10):  # duplicates, as retries and redeliveries make them
        tasks.advance.delay(incident.pk)
        tasks.send_notifications.delay()
        tasks.sweep.delay()

    wait_until(
        lambda: Notification.objects.filter(status=Notification.Status.SENT).count() == 8,
        what="all eight notifications to be sent",
    )
    wait_until(lambda: idle(broker), what="both workers to finish every task")
    assert Counter(Page.objects.values_list("user", flat=True)) == {p.pk: 1 for p in people}
    assert Notification.objects.count() == 8
    assert posts(http_server) == {f"/u{p.pk}": 1 for p in people}
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


def test_a_page_by_e_mail_reaches_the_mail_server_and_its_link_acknowledges_once(workers, client):
    ada = UserFactory(username="ada", display_name="Ada Lovelace")
    team = TeamFactory(name="Payments", lead=ada)
    contact_method(ada, ContactKind.EMAIL, "ada@example.com")
    service = policy_of(team, [ada])
    with RecordingSMTPServer() as smtp:
        workers("w1", EMAIL_URL=f"smtp://{smtp.hostname}:{smtp.port}")
        incident = workflow.incident_trigger(service=service, title="Disk full", at=timezone.now())
        [mail] = smtp.wait_for_messages(1, timeout=WAIT)

    assert mail.rcpt_tos == ("ada@example.com",)
    assert mail.subject.strip() == f"[Oncall] #{incident.pk} Triggered: Disk full — Checkout"
    text = mail.part("text/plain").replace("\r\n", "\n")
    html = mail.part("text/html")
    assert "Ada Lovelace, you are paged." in text and "Disk full" in html
    link = re.search(r"^Acknowledge: (http://oncall\.test/\S+)$", text, re.M).group(1)
    assert f'href="{link}"' in html
    path = urlsplit(link).path

    assert client.get(path).status_code == 200
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED  # opening the link does nothing
    assert client.post(path).status_code == 200
    incident.refresh_from_db()
    assert (incident.status, incident.acknowledged_by) == (Incident.Status.ACKNOWLEDGED, ada)
    again = client.post(path)
    assert again.status_code == 409
    assert "already acknowledged" in again.content.decode()
    with time_machine.travel(timezone.now() + timedelta(hours=24, seconds=1)):
        expired = client.get(path)
    assert expired.status_code == 410
