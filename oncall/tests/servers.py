"""Local stand-ins for the outside world, for tests of anything that sends: an HTTP server that
records every request (webhooks, Slack, Twilio) and an SMTP server that records every message.

Both bind 127.0.0.1 on a free port, run in a background thread and are context managers::

    with RecordingHTTPServer() as server:
        post(server.url("/hook"), ...)
        assert server.requests[0].json()["event"] == "incident.triggered"

Nothing leaves the machine and no test sleeps: a test that must wait for something waits on a
condition with a deadline (`wait_for_requests`, `wait_for_messages`).
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import http.server
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from urllib.parse import parse_qs

from aiosmtpd.controller import Controller

LOCALHOST = "127.0.0.1"
DEFAULT_WAIT = 5.0  # seconds: how long a test waits for a request or message before failing


@contextlib.contextmanager
def closed_port() -> Iterator[int]:
    """A local port on which nothing listens, held for the duration so nobody else takes it:
    connecting to it is refused at once (the socket is bound but never listens)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        yield sock.getsockname()[1]


def free_port() -> int:
    """A port that was free a moment ago (for servers that cannot bind port 0 themselves)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        return sock.getsockname()[1]


# ---- HTTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it."""

    method: str
    path: str
    headers: dict[str, str]  # header names lower-cased
    body: bytes

    def json(self):
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        """An application/x-www-form-urlencoded body as {field: value} (last value wins)."""
        return {k: v[-1] for k, v in parse_qs(self.body.decode(), keep_blank_values=True).items()}


@dataclass
class Reply:
    """What the server answers. `hold=True` keeps the request waiting (to simulate a slow
    provider) until `RecordingHTTPServer.release()` or the server stops."""

    status: int = 200
    body: bytes = b'{"ok": true}'
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    hold: bool = False


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        owner = self.server.owner
        reply = owner._record(
            RecordedRequest(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
        )
        if reply.hold:
            owner._released.wait(timeout=60)  # never forever: the server must be able to stop
        try:
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)
        except OSError:  # the client gave up (timed out) while we held the request
            pass

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def log_message(self, format, *args):  # noqa: A002 - keep test output quiet
        pass


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    owner: RecordingHTTPServer


class RecordingHTTPServer:
    """A local HTTP server that records every request and answers `reply` (200 by default).

    `reply` may be changed at any time; `replies` (a list) is used first, one per request, to
    script a sequence such as 500 then 200.
    """

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply or Reply()
        self.replies: list[Reply] = []
        self.requests: list[RecordedRequest] = []
        self._condition = threading.Condition()
        self._released = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle
    def start(self) -> RecordingHTTPServer:
        self._server = _Server((LOCALHOST, 0), _Handler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"recording-http-{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self.release()
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=DEFAULT_WAIT)
        self._server = None

    def __enter__(self) -> RecordingHTTPServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # -- addresses
    @property
    def port(self) -> int:
        assert self._server is not None, "server not started"
        return self._server.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def url(self, path: str = "/") -> str:
        return self.base_url + (path if path.startswith("/") else "/" + path)

    # -- behaviour
    def respond(self, status: int = 200, body: bytes | str = b"", **kwargs) -> None:
        """Answer every following request with this status and body."""
        if isinstance(body, str):
            body = body.encode()
        self.reply = Reply(status=status, body=body, **kwargs)

    def hold(self) -> None:
        """Keep following requests waiting without an answer (a slow or hung provider)."""
        self._released.clear()
        self.reply = Reply(status=self.reply.status, body=self.reply.body, hold=True)

    def release(self) -> None:
        """Let held requests be answered."""
        self._released.set()

    def _record(self, request: RecordedRequest) -> Reply:
        with self._condition:
            self.requests.append(request)
            reply = self.replies.pop(0) if self.replies else self.reply
            self._condition.notify_all()
        return reply

    def wait_for_requests(self, count: int = 1, timeout: float = DEFAULT_WAIT) -> list:
        """The recorded requests once there are at least `count` (AssertionError at the
        deadline)."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} request(s) within {timeout}s, got {len(self.requests)}"
                    )
                self._condition.wait(remaining)
            return list(self.requests)


# ---- SMTP ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedMail:
    """One message as the SMTP server received it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    message: EmailMessage

    @property
    def subject(self) -> str:
        return str(self.message["Subject"])

    def part(self, content_type: str) -> str | None:
        """The decoded text of the first part of that type (text/plain, text/html), or None."""
        for part in self.message.walk():
            if part.get_content_type() == content_type and not part.is_multipart():
                return part.get_content()
        return None


class _SMTPHandler:
    def __init__(self, owner: RecordingSMTPServer) -> None:
        self.owner = owner

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802
        if address.lower() in self.owner.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd hook
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        self.owner._record(
            RecordedMail(
                mail_from=envelope.mail_from,
                rcpt_tos=tuple(envelope.rcpt_tos),
                message=message,
            )
        )
        return "250 Message accepted for delivery"


class RecordingSMTPServer:
    """A local SMTP server (aiosmtpd) that accepts and records every message. No TLS, no auth:
    point Django at it with EMAIL_HOST/EMAIL_PORT and EMAIL_USE_TLS = False. Recipients in
    `refuse` are turned away with a permanent 550, as a server does for an unknown mailbox."""

    def __init__(self, refuse: set[str] | frozenset[str] = frozenset()) -> None:
        self.refuse = {address.lower() for address in refuse}
        self.messages: list[RecordedMail] = []
        self._condition = threading.Condition()
        self._controller: Controller | None = None
        self.hostname = LOCALHOST
        self.port = 0

    def start(self) -> RecordingSMTPServer:
        # aiosmtpd needs a concrete port; take a free one, and try again should another
        # process grab it between the check and the bind.
        last_error: Exception | None = None
        for _ in range(5):
            port = free_port()
            controller = Controller(_SMTPHandler(self), hostname=LOCALHOST, port=port)
            try:
                controller.start()
            except Exception as error:  # noqa: BLE001 - port taken: try another
                last_error = error
                continue
            self._controller, self.port = controller, port
            return self
        raise RuntimeError(f"could not start the SMTP server: {last_error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> RecordingSMTPServer:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _record(self, mail: RecordedMail) -> None:
        with self._condition:
            self.messages.append(mail)
            self._condition.notify_all()

    def wait_for_messages(self, count: int = 1, timeout: float = DEFAULT_WAIT) -> list:
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} message(s) within {timeout}s, got {len(self.messages)}"
                    )
                self._condition.wait(remaining)
            return list(self.messages)
