"""The sender interface and the dispatch from a contact method's kind to its sender."""

import http.client
import json
import logging
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Protocol

from oncall.models import ContactKind, ContactMethod

logger = logging.getLogger(__name__)

HTTP_TIMEOUT = 10  # seconds, for every outgoing HTTP request of a sender


@dataclass(frozen=True)
class Message:
    """What to say, independent of the channel. Each sender picks what fits its channel."""

    subject: str
    text: str
    html: str = ""
    url: str = ""  # where to look in the portal
    actions: dict[str, str] = field(default_factory=dict)  # label -> one-click URL
    data: dict = field(default_factory=dict)  # machine-readable body for webhooks
    event: str = "notification"


@dataclass(frozen=True)
class SendResult:
    ok: bool
    detail: str  # the provider's answer, shortened; never a secret
    retryable: bool = False

    @classmethod
    def sent(cls, detail: str) -> "SendResult":
        return cls(ok=True, detail=detail[:500])

    @classmethod
    def failed(cls, detail: str, retryable: bool = True) -> "SendResult":
        return cls(ok=False, detail=detail[:500], retryable=retryable)


class Sender(Protocol):
    def send(self, method: ContactMethod, message: Message) -> SendResult: ...


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """Senders never follow redirects: urllib would re-send the Authorization header (a Twilio
    token) to wherever the Location points, and turn a POST into a bodiless GET that then
    "succeeds". A 3xx is a final failure instead: the configured URL is wrong."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def post(url: str, body: bytes, content_type: str, headers: dict | None = None) -> SendResult:
    """POST with a timeout; a 2xx is sent, a 3xx or 4xx a final failure (but 408 and 429), and
    anything else (5xx, timeout, refused connection) a retryable one."""
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"Content-Type": content_type, "User-Agent": "Oncall", **(headers or {})},
    )
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        with opener.open(request, timeout=HTTP_TIMEOUT) as response:
            answer = response.read(300).decode("utf-8", "replace")
            return SendResult.sent(f"HTTP {response.status} {answer}".strip())
    except urllib.error.HTTPError as error:
        try:
            answer = error.read(300).decode("utf-8", "replace")
        except (OSError, http.client.HTTPException):
            answer = ""
        if 300 <= error.code < 400:
            answer = f"redirect to {error.headers.get('Location', '?')} not followed"
        retryable = error.code >= 500 or error.code in (408, 429)
        return SendResult.failed(f"HTTP {error.code} {answer}".strip(), retryable=retryable)
    except (urllib.error.URLError, OSError, http.client.HTTPException) as error:
        # URLError (refused, unknown host), TimeoutError and resets are OSErrors; a garbled
        # answer is an HTTPException. All may pass: try again later.
        reason = getattr(error, "reason", None) or error
        return SendResult.failed(f"no answer: {reason}")


def post_json(url: str, payload: dict) -> SendResult:
    return post(url, json.dumps(payload, default=str).encode(), "application/json")


def sender_for(kind: str) -> Sender:
    from . import channels

    return channels.SENDERS[kind]


def send(method: ContactMethod, message: Message) -> SendResult:
    """Send through the method's channel; a sender's unexpected error is a failed result."""
    if method.kind not in ContactKind.values:
        return SendResult.failed(f"unknown channel {method.kind!r}", retryable=False)
    try:
        return sender_for(method.kind).send(method, message)
    except Exception as error:  # noqa: BLE001 - one broken channel must not stop the others
        logger.exception("sender for %s failed", method.kind)
        return SendResult.failed(f"{type(error).__name__}: {error}")
