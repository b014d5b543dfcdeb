"""The production set-up: docker-compose.yml, Dockerfile, .env.example and `check --deploy`.

There is no Docker engine where the tests run, so the compose file and the Dockerfile are read as
data and every command in them is resolved against the installed tools: the gunicorn target
imports, `-A oncall` finds the Celery app, and the command lines parse with the installed
gunicorn and celery. The web service's own command and health check are then run for real,
against a throw-away SQLite database.

The subprocesses get the production environment explicitly; a developer's `.env` would still be
read by the settings, so run these on a clone without one (CI does).
"""

import ast
import functools
import importlib.util
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import environ
import pytest
import yaml
from django.db import OperationalError
from django.test import RequestFactory
from django.urls import path, resolve

import oncall
from oncall import health

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sysconfig.get_path("scripts"))
SERVICES = ("postgres", "redis", "web", "worker", "beat")
APP_SERVICES = ("web", "worker", "beat")

# For `pytest.mark.urls`: the health view routed as compose's health check calls it, so the
# middleware (allowed hosts, HTTPS redirect) is exercised whatever oncall/urls.py contains.
urlpatterns = [path("healthz", health.healthz)]


# --- Reading the files ------------------------------------------------------------------------


@functools.cache
def settings_env_calls() -> tuple[tuple[str, str, ast.expr | None], ...]:
    """(variable, reader, default expression) of every environment read in oncall/settings.py."""
    tree = ast.parse((ROOT / "oncall" / "settings.py").read_text())
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        func = node.func
        default = next((k.value for k in node.keywords if k.arg == "default"), None)
        if isinstance(func, ast.Name) and func.id == "env":
            calls.append((first.value, "str", default))
        elif isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name):
            if func.value.id == "env":
                calls.append((first.value, func.attr, default))
            elif func.value.id == "os" and func.attr == "getenv":
                calls.append((first.value, "str", node.args[1] if len(node.args) > 1 else None))
        elif (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and isinstance(func.value, ast.Attribute)
            and func.value.attr == "environ"
        ):
            calls.append((first.value, "str", node.args[1] if len(node.args) > 1 else None))
    return tuple(calls)


def settings_variables() -> set[str]:
    return {name for name, _, _ in settings_env_calls()}


ENV_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=(.*)$")


@functools.cache
def env_example() -> dict[str, str]:
    """`NAME=value` lines of .env.example, commented out or not, value unquoted."""
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = ENV_LINE.match(line.strip())
        if match:
            name, value = match.group(1), match.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            assert name not in values, f"{name} is listed twice in .env.example"
            values[name] = value
    return values


@functools.cache
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def service(name: str) -> dict:
    return compose()["services"][name]


def shell_script(command: str | list[str]) -> str | None:
    """The script of a `sh -c "..."` command, None for a plain command."""
    argv = shlex.split(command) if isinstance(command, str) else list(command)
    if argv[:2] in (["sh", "-c"], ["/bin/sh", "-c"]):
        return argv[2]
    return None


def command_steps(command: str | list[str]) -> list[list[str]]:
    """The programs a compose `command:` runs, in order, each as its argv."""
    script = shell_script(command)
    if script is None:
        argv = shlex.split(command) if isinstance(command, str) else list(command)
        assert "&&" not in argv, f"{argv}: compose runs no shell, `&&` needs `sh -c`"
        return [argv]
    steps = []
    for part in script.split("&&"):
        argv = shlex.split(part)
        steps.append(argv[1:] if argv[:1] == ["exec"] else argv)
    return steps


def interpolate(value: str, variables: dict[str, str]) -> str:
    """Compose's `${NAME}`, `${NAME:-default}` and `${NAME:?error}` with the given variables."""

    def one(match: re.Match) -> str:
        name, kind, rest = match.group(1), match.group(2), match.group(3)
        if variables.get(name):
            return variables[name]
        if kind == ":?":
            raise AssertionError(f"compose would stop: {rest}")
        return rest or ""

    return re.sub(r"\$\{(\w+)(?:(:-|:\?)([^}]*))?\}", one, str(value))


@functools.cache
def dockerfile() -> tuple[tuple[str, str], ...]:
    """(INSTRUCTION, arguments) of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return tuple(instructions)


def dockerfile_cmd() -> list[str]:
    cmds = [rest for keyword, rest in dockerfile() if keyword == "CMD"]
    assert cmds, "the Dockerfile has no CMD"
    argv = json.loads(cmds[-1])
    assert isinstance(argv, list), "CMD in exec form, so gunicorn gets the signals"
    return argv


# --- Running things as the container would ----------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def environment(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """This machine's environment without any setting of ours, state kept under tmp_path."""
    env = {k: v for k, v in os.environ.items() if k not in settings_variables()}
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        DJANGO_SETTINGS_MODULE="oncall.settings",
        HOME=str(tmp_path),  # gunicorn keeps its control socket under $HOME
        VAR_DIR=str(tmp_path / "var"),
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(overrides)
    return env


def production(tmp_path: Path) -> dict[str, str]:
    return environment(
        tmp_path,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="oncall.example.com",
        DATABASE_URL=f"sqlite:///{tmp_path / 'deploy.sqlite3'}",
    )


def compose_environment(tmp_path: Path, name: str, **overrides: str) -> dict[str, str]:
    """The environment compose gives service `name`, with a .env holding the required three."""
    dotenv = {
        "SECRET_KEY": secrets.token_urlsafe(50),
        "ALLOWED_HOSTS": "oncall.example.com",
        "BASE_URL": "https://oncall.example.com",
    }
    resolved = {k: interpolate(v, dotenv) for k, v in service(name)["environment"].items()}
    return environment(tmp_path, **{**resolved, **overrides})


def run(argv: list[str], env: dict[str, str], timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def gunicorn_options(argv: list[str]):
    """Parse a gunicorn command line with the installed gunicorn's own parser."""
    from gunicorn.config import Config

    assert argv[0] == "gunicorn"
    return Config().parser().parse_args(argv[1:])


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_has_the_five_services():
    assert set(SERVICES) <= set(compose()["services"])


def test_postgres_keeps_its_data_in_a_named_volume():
    postgres = service("postgres")
    assert postgres["image"].startswith("postgres:16")
    mounts = [v.split(":") for v in postgres["volumes"] if isinstance(v, str)]
    data = [source for source, target, *_ in mounts if target == "/var/lib/postgresql/data"]
    assert data, "no volume on /var/lib/postgresql/data"
    assert data[0] in (compose().get("volumes") or {}), f"{data[0]} is not a named volume"


def test_redis_is_redis_7():
    assert service("redis")["image"].startswith("redis:7")


@pytest.mark.parametrize(
    ("name", "probe"),
    [("postgres", "pg_isready"), ("redis", "redis-cli ping"), ("web", "/healthz")],
)
def test_service_has_a_health_check(name, probe):
    check = service(name)["healthcheck"]
    test = check["test"]
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL"), test
    assert probe in " ".join(test[1:])
    assert check.get("interval") and check.get("retries")


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_services_wait_for_healthy_services(name):
    depends_on = service(name)["depends_on"]
    assert isinstance(depends_on, dict), "long form, so that a condition can be given"
    assert {"postgres", "redis"} <= set(depends_on)
    for dependency, condition in depends_on.items():
        assert condition == {"condition": "service_healthy"}, (name, dependency)
        assert "healthcheck" in service(dependency), f"{dependency} would never become healthy"


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_worker_and_beat_start_after_web_has_migrated(name):
    assert service(name)["depends_on"]["web"] == {"condition": "service_healthy"}


def test_web_migrates_before_starting_gunicorn():
    steps = command_steps(service("web")["command"])
    assert steps[0] == ["python", "manage.py", "migrate", "--noinput"]
    assert steps[-1][0] == "gunicorn"
    options = gunicorn_options(steps[-1])
    assert options.args == ["oncall.wsgi:application"]
    assert options.bind == ["0.0.0.0:8000"]


def test_worker_and_beat_commands():
    (worker,) = command_steps(service("worker")["command"])
    (beat,) = command_steps(service("beat")["command"])
    assert worker[:4] == ["celery", "-A", "oncall", "worker"]
    assert beat[:4] == ["celery", "-A", "oncall", "beat"]
    # The image's /app is not writable by its user: the schedule file goes to /tmp or a volume.
    schedule = beat[beat.index("--schedule") + 1]
    assert schedule.startswith("/tmp/") or any(
        schedule.startswith(v.split(":")[1]) for v in service("beat").get("volumes", [])
    )


def test_app_services_share_one_production_configuration():
    env = service("web")["environment"]
    for name in APP_SERVICES:
        assert service(name)["environment"] == env
        assert service(name).get("build") or service(name).get("image") == service("web")["image"]
    assert env["DEBUG"] == "0"
    assert env["DATABASE_URL"] == "postgres://oncall:oncall@postgres:5432/oncall"
    assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert env["REDIS_URL"].startswith("redis://redis:6379")
    assert env["SECRET_KEY"].startswith("${SECRET_KEY:?"), "the key comes from .env, never here"
    assert env["ALLOWED_HOSTS"].startswith("${ALLOWED_HOSTS:?")
    assert env["BASE_URL"].startswith("${BASE_URL:?")
    assert env["SECURE_SSL_REDIRECT"] == "0" and env["USE_X_FORWARDED_PROTO"] == "1"


def test_compose_passes_only_variables_the_settings_read():
    unknown = set(service("web")["environment"]) - settings_variables()
    assert not unknown, f"not read by oncall/settings.py (typo?): {sorted(unknown)}"


def test_compose_refuses_to_start_without_a_secret_key():
    with pytest.raises(AssertionError, match="set SECRET_KEY"):
        interpolate(service("web")["environment"]["SECRET_KEY"], {})


# --- The commands resolve to real entry points ------------------------------------------------


@pytest.mark.parametrize("executable", ["python", "gunicorn", "celery"])
def test_executables_are_installed_in_the_venv(executable):
    assert shutil.which(executable, path=str(VENV_BIN)), f"{executable} not in {VENV_BIN}"


def test_tool_packages_are_installed():
    assert importlib.util.find_spec("gunicorn") and importlib.util.find_spec("celery")


def test_gunicorn_target_imports_and_is_callable():
    from gunicorn.util import import_app

    for argv in (command_steps(service("web")["command"])[-1], dockerfile_cmd()):
        (target,) = gunicorn_options(argv).args
        assert callable(import_app(target)), target


def test_celery_app_option_finds_the_oncall_app():
    from celery.app.utils import find_app

    for name in ("worker", "beat"):
        (argv,) = command_steps(service(name)["command"])
        assert find_app(argv[argv.index("-A") + 1]) is oncall.celery_app


def test_manage_py_and_migrate_exist():
    from django.core.management import get_commands

    assert (ROOT / "manage.py").is_file()
    assert "migrate" in get_commands() and "collectstatic" in get_commands()


def test_gunicorn_command_lines_load_with_the_installed_gunicorn(tmp_path):
    """`gunicorn --check-config` loads the WSGI app with every option, as the container would."""
    env = production(tmp_path)
    for argv in (command_steps(service("web")["command"])[-1], dockerfile_cmd()):
        result = run([str(VENV_BIN / "gunicorn"), "--check-config", *argv[1:]], env)
        assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_celery_command_lines_load_with_the_installed_celery(tmp_path, name):
    """The installed celery loads `-A oncall` and accepts the options (`--help` stops there)."""
    (argv,) = command_steps(service(name)["command"])
    result = run([str(VENV_BIN / "celery"), *argv[1:], "--help"], production(tmp_path))
    assert result.returncode == 0, result.stderr


# --- Dockerfile and .dockerignore -------------------------------------------------------------


def test_dockerfile_builds_on_python_3_11_slim():
    froms = [rest for keyword, rest in dockerfile() if keyword == "FROM"]
    assert froms and froms[0].split()[0] == "python:3.11-slim"


def test_dockerfile_installs_requirements_then_copies_the_project():
    instructions = list(dockerfile())
    install = next(
        i
        for i, (k, rest) in enumerate(instructions)
        if k == "RUN" and re.search(r"pip install .*-r requirements\.txt", rest)
    )
    copy_all = next(i for i, (k, rest) in enumerate(instructions) if k == "COPY" and rest == ". .")
    assert install < copy_all


def collectstatic_run() -> str:
    runs = [rest for keyword, rest in dockerfile() if keyword == "RUN" and "collectstatic" in rest]
    assert len(runs) == 1, "one RUN collects the static files"
    return runs[0]


def test_dockerfile_collects_static_files_as_production_with_a_build_only_key():
    argv = shlex.split(collectstatic_run())
    assigned = dict(a.split("=", 1) for a in argv[: argv.index("python")] if "=" in a)
    assert assigned["DEBUG"] == "0"
    assert assigned["SECRET_KEY"], "settings refuse DEBUG=0 without a key"


def test_dockerfile_bakes_in_no_secret():
    for keyword, rest in dockerfile():
        if keyword in ("ENV", "ARG"):
            assert not re.search(r"SECRET|PASSWORD|TOKEN|DATABASE_URL|EMAIL_URL", rest), rest
    assert ".env" in (ROOT / ".dockerignore").read_text().split()


def test_dockerfile_runs_as_a_non_root_user():
    instructions = list(dockerfile())
    users = [(i, rest) for i, (k, rest) in enumerate(instructions) if k == "USER"]
    assert users, "no USER: the container would run as root"
    index, user = users[-1]
    assert user.split(":")[0] not in ("root", "0")
    cmd = max(i for i, (k, _) in enumerate(instructions) if k == "CMD")
    assert index < cmd


def test_dockerfile_cmd_serves_the_wsgi_app_on_port_8000():
    options = gunicorn_options(dockerfile_cmd())
    assert options.args == ["oncall.wsgi:application"]
    assert options.bind == ["0.0.0.0:8000"]
    assert ("EXPOSE", "8000") in dockerfile()


def test_dockerignore_keeps_local_state_out_of_the_image():
    ignored = {
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".git", ".env", ".venv", "var", "staticfiles"} <= ignored


def test_the_dockerfile_collectstatic_step_works(tmp_path):
    """The build step, with its own variables, into a temporary STATIC_ROOT."""
    argv = shlex.split(collectstatic_run())
    assigned = dict(a.split("=", 1) for a in argv[: argv.index("python")] if "=" in a)
    script = (
        "import sys, django\n"
        "from django.conf import settings\n"
        "from django.core.management import call_command\n"
        "django.setup()\n"
        "settings.STATIC_ROOT = sys.argv[1]\n"
        "call_command('collectstatic', interactive=False, verbosity=0)\n"
    )
    static_root = tmp_path / "static"
    env = environment(tmp_path, **assigned)
    result = run([sys.executable, "-c", script, str(static_root)], env)
    assert result.returncode == 0, result.stderr
    manifest = json.loads((static_root / "staticfiles.json").read_text())
    hashed = manifest["paths"]["admin/css/base.css"]
    assert (static_root / hashed).is_file() and (static_root / f"{hashed}.gz").is_file()


# --- .env.example -----------------------------------------------------------------------------


def test_every_variable_the_settings_read_is_in_env_example():
    missing = settings_variables() - set(env_example())
    assert not missing, f"add to .env.example: {sorted(missing)}"


def test_env_example_lists_no_variable_the_settings_do_not_read():
    stale = set(env_example()) - settings_variables()
    assert not stale, f"not read by oncall/settings.py, remove from .env.example: {sorted(stale)}"


def test_every_variable_in_env_example_has_a_comment():
    lines = (ROOT / ".env.example").read_text().splitlines()
    for number, line in enumerate(lines):
        if not ENV_LINE.match(line.strip()):
            continue
        above = number - 1
        while above >= 0 and ENV_LINE.match(lines[above].strip()):
            above -= 1  # a group of related variables shares its comment
        assert above >= 0 and lines[above].startswith("# ") and len(lines[above]) > 3, line


CASTS = {"str": str, "bool": bool, "int": int, "float": float, "list": list}


def test_env_example_shows_the_literal_defaults_of_the_settings():
    """Where a default is a literal, .env.example shows that value (computed ones are described)."""
    for name, reader, default in settings_env_calls():
        if default is None:
            continue
        try:
            expected = ast.literal_eval(default)
        except ValueError:
            continue  # computed from another setting: the comment describes it
        shown = env_example()[name]
        cast = CASTS.get(reader)
        value = environ.Env.parse_value(shown, cast) if cast else shown
        assert value == expected, f"{name}: .env.example shows {shown!r}, default is {expected!r}"


def test_env_example_holds_no_secret():
    for name, value in env_example().items():
        if re.search(r"SECRET|TOKEN|PASSWORD", name):
            assert value == "", f"{name} has a value in .env.example"


# --- Settings in production -------------------------------------------------------------------


def test_check_deploy_is_clean_with_the_production_defaults(tmp_path):
    result = run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        production(tmp_path),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_with_the_compose_environment_only_notes_the_proxy_redirect(tmp_path):
    """Compose leaves the http→https redirect to the proxy: W008, and nothing else."""
    env = compose_environment(tmp_path, "web")
    result = run([sys.executable, "manage.py", "check", "--deploy"], env)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert re.findall(r"\(([\w.]+)\)", output) == ["security.W008"], output


def test_settings_refuse_to_start_without_a_secret_key_when_debug_is_off(tmp_path):
    env = environment(tmp_path, DEBUG="0", SECRET_KEY="")
    result = run([sys.executable, "-c", "import django; django.setup()"], env)
    assert result.returncode != 0
    assert "ImproperlyConfigured: SECRET_KEY must be set when DEBUG=0" in result.stderr

    result = run([sys.executable, "manage.py", "check"], env)
    assert result.returncode != 0
    assert "SECRET_KEY must be set when DEBUG=0" in result.stderr


# --- /healthz ---------------------------------------------------------------------------------


@pytest.mark.django_db
def test_healthz_answers_ok_when_the_database_answers():
    response = health.healthz(RequestFactory().get("/healthz"))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"status": "ok"}
    assert "no-cache" in response["Cache-Control"]


def test_healthz_answers_503_when_the_database_is_down(monkeypatch):
    class DownConnection:
        def cursor(self):
            raise OperationalError("connection refused")

    monkeypatch.setattr(health, "connection", DownConnection())
    response = health.healthz(RequestFactory().get("/healthz"))
    assert response.status_code == 503
    assert json.loads(response.content)["status"] == "error"


def test_healthz_accepts_only_safe_methods():
    assert health.healthz(RequestFactory().post("/healthz")).status_code == 405


@pytest.mark.django_db
@pytest.mark.urls(__name__)
def test_healthz_answers_the_container_health_check(client, settings):
    """Plain HTTP on `localhost`, with the production security settings: no redirect, no 400."""
    settings.ALLOWED_HOSTS = ["oncall.example.com", "localhost"]
    settings.SECURE_SSL_REDIRECT = True
    response = client.get("/healthz", HTTP_HOST="localhost:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert client.get("/other", HTTP_HOST="localhost:8000").status_code == 301


def test_healthz_is_routed_where_compose_looks():
    assert resolve("/healthz").func is health.healthz


def test_web_service_migrates_serves_and_passes_its_health_check(tmp_path):
    """web's command and health check, verbatim but for the port, on a fresh SQLite database."""
    web = service("web")
    port = free_port()
    script = shell_script(web["command"])
    assert "0.0.0.0:8000" in script
    script = script.replace("0.0.0.0:8000", f"127.0.0.1:{port}")
    probe = [
        part.replace("localhost:8000", f"localhost:{port}") for part in web["healthcheck"]["test"]
    ]
    assert probe[0] == "CMD"
    env = compose_environment(tmp_path, "web", DATABASE_URL=f"sqlite:///{tmp_path / 'web.sqlite3'}")
    log = (tmp_path / "web.log").open("w")
    process = subprocess.Popen(
        ["sh", "-c", script],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, (tmp_path / "web.log").read_text()
            result = run(probe[1:], env, timeout=10)
            if result.returncode == 0:
                break
            # Refused while gunicorn starts; an HTTP error means it is up and answers wrongly.
            assert "HTTPError" not in result.stderr, (
                result.stderr + (tmp_path / "web.log").read_text()
            )
            assert time.monotonic() < deadline, result.stderr + (tmp_path / "web.log").read_text()
            time.sleep(0.5)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        log.close()
    text = (tmp_path / "web.log").read_text()
    assert "Applying oncall." in text, "migrations ran before gunicorn"
    assert "GET /healthz" in text
