"""The senders against local stand-ins: a real SMTP server (aiosmtpd) and a recording HTTP server
playing webhook receiver, Slack and Twilio. Nothing leaves the machine."""

import base64
import logging
import xml.etree.ElementTree as ET

import pytest

from oncall import notify
from oncall.models import ContactKind, ContactMethod
from oncall.notify import base as notify_base
from oncall.notify import channels

from .servers import RecordingHTTPServer, RecordingSMTPServer

SID = "AC0123456789abcdef0123456789abcdef"
TOKEN = "s3cr3t-auth-token-do-not-leak"
FROM = "+15005550006"


def method(kind: str, address: str) -> ContactMethod:
    """A contact method as a sender sees it (senders read only kind and address)."""
    return ContactMethod(kind=kind, address=address)


def message(**overrides) -> notify.Message:
    values = {
        "subject": "[Oncall] #42 triggered: Checkout API 5xx",
        "text": "Checkout API error rate is 12% (threshold 5%).",
        "html": "<p>Checkout API error rate is <b>12%</b>.</p>",
        "url": "http://oncall.test/incidents/42/",
        "actions": {
            "Acknowledge": "http://oncall.test/a/ack-token/",
            "Escalate": "http://oncall.test/a/esc-token/",
        },
        "data": {"incident": 42, "status": "triggered", "service": "Checkout API"},
        "event": "incident.triggered",
    }
    values.update(overrides)
    return notify.Message(**values)


@pytest.fixture
def smtp_settings(settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.hostname
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    settings.DEFAULT_FROM_EMAIL = "Oncall <oncall@oncall.test>"
    return settings


@pytest.fixture
def twilio(settings, http_server):
    settings.TWILIO_ACCOUNT_SID = SID
    settings.TWILIO_AUTH_TOKEN = TOKEN
    settings.TWILIO_FROM_NUMBER = FROM
    settings.TWILIO_BASE_URL = http_server.base_url
    return http_server


# ---- e-mail over SMTP -----------------------------------------------------------------------


def test_email_arrives_with_text_and_html_parts(smtp_settings, smtp_server):
    result = notify.send(method(ContactKind.EMAIL, "ann@example.com"), message())

    assert result.ok, result.detail
    assert "ann@example.com" in result.detail
    [mail] = smtp_server.wait_for_messages(1)
    assert mail.rcpt_tos == ("ann@example.com",)
    assert mail.mail_from == "oncall@oncall.test"
    assert mail.subject == "[Oncall] #42 triggered: Checkout API 5xx"
    assert mail.message["To"] == "ann@example.com"
    text = mail.part("text/plain")
    assert text.startswith("Checkout API error rate is 12% (threshold 5%).")
    assert "Acknowledge: http://oncall.test/a/ack-token/" in text
    assert "Escalate: http://oncall.test/a/esc-token/" in text
    assert "Open in Oncall: http://oncall.test/incidents/42/" in text
    assert mail.part("text/html") == "<p>Checkout API error rate is <b>12%</b>.</p>"


def test_email_without_html_is_plain_text(smtp_settings, smtp_server):
    result = notify.send(
        method(ContactKind.EMAIL, "ann@example.com"), message(html="", actions={}, url="")
    )

    assert result.ok, result.detail
    [mail] = smtp_server.wait_for_messages(1)
    assert mail.message.get_content_type() == "text/plain"
    assert mail.part("text/plain").strip() == "Checkout API error rate is 12% (threshold 5%)."


def test_email_with_a_line_break_in_the_subject_is_a_final_failure(smtp_settings, smtp_server):
    result = notify.send(
        method(ContactKind.EMAIL, "ann@example.com"), message(subject="Disk full\nBcc: x@y.z")
    )

    assert not result.ok
    assert not result.retryable
    assert smtp_server.messages == []


def test_email_fails_when_the_smtp_server_is_down(settings, smtp_settings, refused_port):
    settings.EMAIL_PORT = refused_port

    result = notify.send(method(ContactKind.EMAIL, "ann@example.com"), message())

    assert not result.ok
    assert result.retryable
    assert result.detail.startswith("SMTP: ")


def test_email_refused_recipient_is_a_final_failure(smtp_settings):
    with RecordingSMTPServer(refuse={"gone@example.com"}) as server:
        smtp_settings.EMAIL_PORT = server.port
        result = notify.send(method(ContactKind.EMAIL, "gone@example.com"), message())

    assert not result.ok
    assert not result.retryable
    assert "550" in result.detail
    assert server.messages == []


# ---- webhooks -------------------------------------------------------------------------------


def test_webhook_posts_json_with_event_subject_text_and_data(http_server):
    result = notify.send(method(ContactKind.WEBHOOK, http_server.url("/hooks/oncall")), message())

    assert result.ok, result.detail
    assert result.detail.startswith("HTTP 200")
    [request] = http_server.wait_for_requests(1)
    assert request.method == "POST"
    assert request.path == "/hooks/oncall"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "event": "incident.triggered",
        "subject": "[Oncall] #42 triggered: Checkout API 5xx",
        "text": "Checkout API error rate is 12% (threshold 5%).",
        "url": "http://oncall.test/incidents/42/",
        "actions": {
            "Acknowledge": "http://oncall.test/a/ack-token/",
            "Escalate": "http://oncall.test/a/esc-token/",
        },
        "data": {"incident": 42, "status": "triggered", "service": "Checkout API"},
    }


def test_slack_body_has_text_with_links(http_server):
    result = notify.send(method(ContactKind.SLACK, http_server.url("/services/T0/B0/x")), message())

    assert result.ok, result.detail
    [request] = http_server.wait_for_requests(1)
    body = request.json()
    assert list(body) == ["text"]
    lines = body["text"].split("\n")
    assert lines[0] == "*[Oncall] #42 triggered: Checkout API 5xx*"
    assert lines[1] == "Checkout API error rate is 12% (threshold 5%)."
    assert lines[2] == (
        "<http://oncall.test/a/ack-token/|Acknowledge> · "
        "<http://oncall.test/a/esc-token/|Escalate> · "
        "<http://oncall.test/incidents/42/|Open in Oncall>"
    )


def test_slack_escapes_control_characters_from_alert_text(http_server):
    """An alert saying `<!channel>` must not ping the whole channel, nor `a>b` break a link."""
    result = notify.send(
        method(ContactKind.SLACK, http_server.url("/hook")),
        message(
            subject="Disk <!channel> & co",
            text="usage > 90% <http://evil.test|click>",
            actions={"Ack|now": "http://oncall.test/a?x=1&y=2"},
            url="",
        ),
    )

    assert result.ok, result.detail
    text = http_server.wait_for_requests(1)[0].json()["text"]
    assert text.split("\n") == [
        "*Disk &lt;!channel&gt; &amp; co*",
        "usage &gt; 90% &lt;http://evil.test|click&gt;",
        "<http://oncall.test/a?x=1&amp;y=2|Ack/now>",
    ]


@pytest.mark.parametrize(
    ("status", "retryable"), [(500, True), (503, True), (429, True), (400, False), (404, False)]
)
def test_http_errors_fail_retryable_only_when_they_may_pass(http_server, status, retryable):
    http_server.respond(status, '{"error": "nope"}')

    result = notify.send(method(ContactKind.WEBHOOK, http_server.url("/hook")), message())

    assert not result.ok
    assert result.retryable is retryable
    assert result.detail == f'HTTP {status} {{"error": "nope"}}'


def test_connection_refused_fails_retryable(refused_port):
    result = notify.send(
        method(ContactKind.WEBHOOK, f"http://127.0.0.1:{refused_port}/hook"), message()
    )

    assert not result.ok
    assert result.retryable
    assert result.detail.startswith("no answer:")
    assert "refused" in result.detail.lower()


def test_slow_receiver_times_out_retryable(http_server, monkeypatch):
    monkeypatch.setattr(notify_base, "HTTP_TIMEOUT", 0.3)
    http_server.hold()  # the request arrives but is never answered until released

    result = notify.send(method(ContactKind.WEBHOOK, http_server.url("/hook")), message())

    assert not result.ok
    assert result.retryable
    assert "timed out" in result.detail
    assert len(http_server.requests) == 1


def test_redirects_are_not_followed(http_server):
    """A redirect would turn the POST into a bodiless GET (and carry an Authorization header to
    another host): it is a final failure instead."""
    with RecordingHTTPServer() as elsewhere:
        http_server.respond(302, "", headers={"Location": elsewhere.url("/stolen")})

        result = notify.send(method(ContactKind.WEBHOOK, http_server.url("/hook")), message())

        assert not result.ok
        assert not result.retryable
        assert result.detail.startswith("HTTP 302 redirect to")
        assert elsewhere.requests == []


# ---- Twilio SMS and voice -------------------------------------------------------------------


def basic_auth(request) -> str:
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    return base64.b64decode(encoded).decode()


def test_sms_goes_to_the_messages_resource(twilio):
    twilio.respond(201, '{"sid": "SM123", "status": "queued"}')

    result = notify.send(method(ContactKind.SMS, "+447700900123"), message())

    assert result.ok, result.detail
    assert result.detail == 'HTTP 201 {"sid": "SM123", "status": "queued"}'
    [request] = twilio.wait_for_requests(1)
    assert request.method == "POST"
    assert request.path == f"/2010-04-01/Accounts/{SID}/Messages.json"
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert basic_auth(request) == f"{SID}:{TOKEN}"
    assert request.form() == {
        "To": "+447700900123",
        "From": FROM,
        "Body": "[Oncall] #42 triggered: Checkout API 5xx http://oncall.test/incidents/42/",
    }


def test_voice_call_says_the_message_in_escaped_twiml(twilio):
    twilio.respond(201, '{"sid": "CA123", "status": "queued"}')
    spoken = 'Disk <sda> & "root" at 95%'

    result = notify.send(
        method(ContactKind.VOICE, "+447700900123"), message(subject="Alert", text=spoken)
    )

    assert result.ok, result.detail
    [request] = twilio.wait_for_requests(1)
    assert request.path == f"/2010-04-01/Accounts/{SID}/Calls.json"
    assert basic_auth(request) == f"{SID}:{TOKEN}"
    form = request.form()
    assert form["To"] == "+447700900123"
    assert form["From"] == FROM
    assert "Body" not in form
    twiml = form["Twiml"]
    assert "&lt;sda&gt; &amp;" in twiml
    root = ET.fromstring(twiml)  # well-formed XML
    assert root.tag == "Response"
    [say] = list(root)
    assert say.tag == "Say"
    assert say.text == f"Alert. {spoken}"


def test_voice_twiml_stays_well_formed_with_control_characters(twilio):
    result = notify.send(
        method(ContactKind.VOICE, "+447700900123"), message(subject="Bell\x07", text="tab\x0bend")
    )

    assert result.ok, result.detail
    root = ET.fromstring(twilio.wait_for_requests(1)[0].form()["Twiml"])
    assert root.find("Say").text == "Bell . tab end"


@pytest.mark.parametrize(
    "missing", ["TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"]
)
@pytest.mark.parametrize("kind", [ContactKind.SMS, ContactKind.VOICE])
def test_twilio_not_configured_is_a_final_failure(twilio, settings, missing, kind):
    setattr(settings, missing, "")

    result = notify.send(method(kind, "+447700900123"), message())

    assert not result.ok
    assert not result.retryable
    assert "not configured" in result.detail
    assert twilio.requests == []


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (400, False), (401, False)])
def test_twilio_errors(twilio, status, retryable):
    twilio.respond(status, '{"code": 21211, "message": "Invalid To Phone Number"}')

    result = notify.send(method(ContactKind.SMS, "+447700900123"), message())

    assert not result.ok
    assert result.retryable is retryable
    assert result.detail.startswith(f"HTTP {status} ")


def test_twilio_redirect_does_not_carry_the_credentials_elsewhere(twilio):
    with RecordingHTTPServer() as elsewhere:
        twilio.respond(307, "", headers={"Location": elsewhere.url("/collect")})

        result = notify.send(method(ContactKind.SMS, "+447700900123"), message())

        assert not result.ok
        assert not result.retryable
        assert elsewhere.requests == []
    assert len(twilio.requests) == 1


def test_twilio_unreachable_fails_retryable(twilio, settings, refused_port):
    settings.TWILIO_BASE_URL = f"http://127.0.0.1:{refused_port}"

    result = notify.send(method(ContactKind.SMS, "+447700900123"), message())

    assert not result.ok
    assert result.retryable
    assert result.detail.startswith("no answer:")


def test_the_auth_token_never_reaches_results_or_logs(twilio, settings, caplog, refused_port):
    """Whatever happens — an answer echoing the credentials, an error, a crash in the sender —
    neither the token nor the encoded credentials appear in a result or a log record."""
    caplog.set_level(logging.DEBUG)
    credentials = base64.b64encode(f"{SID}:{TOKEN}".encode()).decode()
    sms = method(ContactKind.SMS, "+447700900123")
    results = []

    # 1. a provider (or proxy) that echoes the request's credentials back
    twilio.respond(401, f'{{"message": "bad token {TOKEN}", "auth": "Basic {credentials}"}}')
    results.append(notify.send(sms, message()))
    twilio.respond(200, f"ok {TOKEN}")
    results.append(notify.send(sms, message()))
    # 2. a server error and an unreachable provider
    twilio.respond(500, "oops")
    results.append(notify.send(sms, message()))
    settings.TWILIO_BASE_URL = f"http://127.0.0.1:{refused_port}"
    results.append(notify.send(method(ContactKind.VOICE, "+447700900123"), message()))
    # 3. a misconfigured base URL makes the sender raise; send() logs the traceback
    settings.TWILIO_BASE_URL = "not-a-url"
    results.append(notify.send(sms, message()))

    assert [r.ok for r in results] == [False, True, False, False, False]
    assert "[token]" in results[0].detail and "[credentials]" in results[0].detail
    assert any(record.exc_info for record in caplog.records)  # the crash was logged
    for result in results:
        assert TOKEN not in result.detail
        assert credentials not in result.detail
    logged = caplog.text  # every record, formatted, with its traceback
    assert "ValueError" in logged
    for secret in (TOKEN, credentials):
        assert secret not in logged
        assert all(secret not in record.getMessage() for record in caplog.records)


# ---- dispatch -------------------------------------------------------------------------------


def test_unknown_channel_is_a_final_failure():
    result = notify.send(method("pigeon", "loft 3"), message())

    assert not result.ok
    assert not result.retryable
    assert "pigeon" in result.detail


def test_a_crashing_sender_is_a_failed_result_and_is_logged(monkeypatch, caplog):
    class Broken:
        def send(self, method, message):
            raise RuntimeError("boom")

    monkeypatch.setitem(channels.SENDERS, ContactKind.WEBHOOK, Broken())

    result = notify.send(method(ContactKind.WEBHOOK, "http://127.0.0.1:9/"), message())

    assert not result.ok
    assert result.retryable
    assert result.detail == "RuntimeError: boom"
    assert any(r.levelno == logging.ERROR and r.exc_info for r in caplog.records)


def test_every_kind_has_a_sender():
    for kind in ContactKind.values:
        assert callable(notify.sender_for(kind).send)
