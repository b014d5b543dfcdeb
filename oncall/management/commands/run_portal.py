"""Run the whole portal in the foreground: web (gunicorn), Celery worker and Celery beat.

`make run` calls this after migrating and seeding. Ctrl-C (or SIGTERM) stops every process it
started; if one of them dies, the others are stopped too, so nothing is left running.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from oncall.management.commands.seed_demo import DEMO_PASSWORD


class Command(BaseCommand):
    help = "Run web, Celery worker and Celery beat together; Ctrl-C stops them all."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))

    def handle(self, *args, host: str, port: int, **options):
        bin_dir = Path(sys.executable).parent
        var = Path(settings.VAR_DIR)
        (var / "celery" / "queue").mkdir(parents=True, exist_ok=True)
        (var / "celery" / "processed").mkdir(parents=True, exist_ok=True)
        (var / "celery" / "control").mkdir(parents=True, exist_ok=True)
        commands = {
            "web": [
                str(bin_dir / "gunicorn"),
                "oncall.wsgi:application",
                "--bind",
                f"{host}:{port}",
                "--workers",
                "2",
                "--access-logfile",
                "-",
                "--logger-class",
                "oncall.gunicorn_logging.KeyMaskingLogger",
            ],
            "worker": [
                str(bin_dir / "celery"),
                "-A",
                "oncall",
                "worker",
                "--loglevel",
                "INFO",
                "--concurrency",
                "2",
            ],
            "beat": [
                str(bin_dir / "celery"),
                "-A",
                "oncall",
                "beat",
                "--loglevel",
                "INFO",
                "--schedule",
                str(var / "celerybeat-schedule"),
            ],
        }
        processes: dict[str, subprocess.Popen] = {}
        stopping = False

        def stop(*_):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        try:
            for name, command in commands.items():
                # Same process group: Ctrl-C in the terminal reaches every process at once, and
                # each shuts down gracefully; whatever is still running after that is stopped
                # below, and a signal to the group stops them all.
                processes[name] = subprocess.Popen(command)
            mail = settings.EMAIL_BACKEND.rsplit(".", 2)[-2]
            if mail == "filebased":
                mail = f"files in {settings.EMAIL_FILE_PATH}"
            database = settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1]
            broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
            self.stdout.write(
                self.style.SUCCESS(
                    f"\nOncall is running at http://{host}:{port}/\n"
                    f"  Sign in as alice / {DEMO_PASSWORD} (team lead, Payments)\n"
                    f"  or admin / {DEMO_PASSWORD} (superuser; the admin is at /admin/)\n"
                    f"  Database: {database}; Celery broker: {broker}; "
                    f"e-mail: {mail}\n"
                    "  Ctrl-C stops web, worker and beat.\n"
                )
            )
            while not stopping:
                for name, process in processes.items():
                    if process.poll() is not None:
                        self.stderr.write(f"{name} exited with code {process.returncode}; stopping")
                        stopping = True
                time.sleep(0.5)
        finally:
            self._stop_all(processes)
        return None

    def _stop_all(self, processes: dict[str, subprocess.Popen]) -> None:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()  # each stops its own children: a warm shutdown
        deadline = time.monotonic() + 15
        for process in processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.stdout.write("Stopped web, worker and beat.")
