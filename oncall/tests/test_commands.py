"""`seed_demo` and `run_portal`: what `make run` does on a fresh machine."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zoneinfo
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from incidents.models import EscalationPolicy, Service
from oncall.models import ContactMethod, NotificationRule, Team

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_seed_demo_builds_the_demo_and_is_idempotent(settings):
    settings.DEBUG = True
    call_command("seed_demo")
    counts = (
        get_user_model().objects.count(),
        Team.objects.count(),
        Service.objects.count(),
        ContactMethod.objects.count(),
        NotificationRule.objects.count(),
    )
    call_command("seed_demo")
    assert (
        get_user_model().objects.count(),
        Team.objects.count(),
        Service.objects.count(),
        ContactMethod.objects.count(),
        NotificationRule.objects.count(),
    ) == counts

    assert Team.objects.count() == 2
    people = get_user_model().objects.filter(is_superuser=False).select_related("profile")
    assert people.count() == 6
    continents = {p.profile.time_zone.split("/")[0] for p in people}
    assert len(continents) >= 3
    for person in people:
        zoneinfo.ZoneInfo(person.profile.time_zone)
        assert person.contact_methods.exists()
        assert person.notification_rules.filter(urgency="high").exists()
    services = Service.objects.prefetch_related("integrations")
    assert services.count() == 3
    assert all(s.integrations.count() >= 1 for s in services)
    assert EscalationPolicy.objects.filter(steps__isnull=False).distinct().count() >= 1
    assert max(p.steps.count() for p in EscalationPolicy.objects.all()) == 3


@pytest.mark.django_db
def test_seed_demo_refuses_without_debug(settings):
    settings.DEBUG = False
    with pytest.raises(CommandError, match="DEBUG=0"):
        call_command("seed_demo")
    assert not get_user_model().objects.exists()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _children(pid: int) -> set[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return set()
    return {int(p) for p in text.split()}


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_run_portal_serves_and_ctrl_c_stops_everything(tmp_path):
    """Web, worker and beat start on the embedded defaults; Ctrl-C leaves no process behind."""
    port = _free_port()
    env = {
        **os.environ,
        "VAR_DIR": str(tmp_path),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.sqlite3'}",
        "CELERY_BROKER_URL": "filesystem://",
        "REDIS_URL": "",
        "DEBUG": "1",
        "CELERY_TASK_ALWAYS_EAGER": "0",
    }
    manage = [sys.executable, str(ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "-v0"], env=env, check=True, cwd=ROOT)
    portal = subprocess.Popen(
        [*manage, "run_portal", "--port", str(port)],
        env=env,
        cwd=ROOT,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and status is None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/accounts/login/", timeout=2
                ) as r:
                    status = r.status
            except OSError:
                assert portal.poll() is None, portal.stdout.read()
                time.sleep(0.2)
        assert status == 200
        children = _children(portal.pid)
        assert len(children) == 3, "web, worker and beat"
        os.killpg(portal.pid, signal.SIGINT)  # what the terminal sends on Ctrl-C
        output, _ = portal.communicate(timeout=30)
    finally:
        if portal.poll() is None:
            os.killpg(portal.pid, signal.SIGKILL)
    assert f"http://127.0.0.1:{port}/" in output
    assert "alice" in output
    assert portal.returncode == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(c) for c in children):
        time.sleep(0.1)
    assert not any(_alive(c) for c in children)
