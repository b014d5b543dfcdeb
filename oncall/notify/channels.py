"""The senders: e-mail (SMTP or whatever EMAIL_URL says), webhooks, and Twilio SMS and voice."""

import base64
import re
import smtplib
import urllib.parse
from xml.sax.saxutils import escape

from django.conf import settings
from django.core.mail import BadHeaderError, EmailMultiAlternatives, get_connection

from oncall.models import ContactKind, ContactMethod

from .base import Message, SendResult, post, post_json


class EmailSender:
    def send(self, method: ContactMethod, message: Message) -> SendResult:
        text = message.text
        if message.actions:
            text += "\n\n" + "\n".join(f"{label}: {url}" for label, url in message.actions.items())
        if message.url:
            text += f"\n\nOpen in Oncall: {message.url}"
        email = EmailMultiAlternatives(
            subject=message.subject,
            body=text,
            to=[method.address],
            connection=get_connection(timeout=settings.EMAIL_TIMEOUT),
        )
        if message.html:
            email.attach_alternative(message.html, "text/html")
        try:
            email.send(fail_silently=False)
        except BadHeaderError as error:  # a line break in the subject: it will never go
            return SendResult.failed(f"e-mail: {error}", retryable=False)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            return SendResult.failed(
                f"SMTP: recipient refused: {error.recipients}",
                retryable=any(code < 500 for code in codes),
            )
        except smtplib.SMTPResponseException as error:  # a 5xx answer will not change
            return SendResult.failed(f"SMTP: {error}", retryable=error.smtp_code < 500)
        except OSError as error:  # refused, timed out, disconnected: smtplib's are OSErrors
            return SendResult.failed(f"SMTP: {error}")
        return SendResult.sent(f"e-mail accepted for {method.address}")


class WebhookSender:
    """A generic JSON POST: the event, the text and the machine-readable data."""

    def send(self, method: ContactMethod, message: Message) -> SendResult:
        return post_json(
            method.address,
            {
                "event": message.event,
                "subject": message.subject,
                "text": message.text,
                "url": message.url,
                "actions": message.actions,
                "data": message.data,
            },
        )


def slack_escape(text: str) -> str:
    """Slack's mrkdwn gives &, < and > a meaning (`<!channel>` pings everybody, `<url|label>` is
    a link): text from an alert must have them escaped, as Slack documents."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackSender:
    """A Slack-compatible incoming webhook (Slack, Mattermost, Rocket.Chat accept `text`)."""

    def send(self, method: ContactMethod, message: Message) -> SendResult:
        lines = [f"*{slack_escape(message.subject)}*", slack_escape(message.text)]
        links = dict(message.actions)
        if message.url:
            links["Open in Oncall"] = message.url
        if links:
            lines.append(
                " · ".join(
                    f"<{slack_escape(url)}|{slack_escape(label).replace('|', '/')}>"
                    for label, url in links.items()
                )
            )
        return post_json(method.address, {"text": "\n".join(line for line in lines if line)})


# Characters XML 1.0 does not allow at all (escaping cannot save them): Twilio would reject the
# TwiML.
_XML_ILLEGAL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


class TwilioSender:
    """SMS and voice through the Twilio REST API (TWILIO_BASE_URL points elsewhere in tests)."""

    def __init__(self, voice: bool):
        self.voice = voice

    def send(self, method: ContactMethod, message: Message) -> SendResult:
        sid, token = settings.TWILIO_ACCOUNT_SID, settings.TWILIO_AUTH_TOKEN
        if not (sid and token and settings.TWILIO_FROM_NUMBER):
            return SendResult.failed(
                "Twilio is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, "
                "TWILIO_FROM_NUMBER)",
                retryable=False,
            )
        fields = {"To": method.address, "From": settings.TWILIO_FROM_NUMBER}
        if self.voice:
            spoken = escape(_XML_ILLEGAL.sub(" ", f"{message.subject}. {message.text}"[:1000]))
            fields["Twiml"] = f"<Response><Say>{spoken}</Say></Response>"
            resource = "Calls.json"
        else:
            body = message.subject if not message.url else f"{message.subject} {message.url}"
            fields["Body"] = body[:1600]
            resource = "Messages.json"
        url = (
            f"{settings.TWILIO_BASE_URL.rstrip('/')}/2010-04-01/Accounts/"
            f"{urllib.parse.quote(sid)}/{resource}"
        )
        auth = base64.b64encode(f"{sid}:{token}".encode()).decode()
        result = post(
            url,
            urllib.parse.urlencode(fields).encode(),
            "application/x-www-form-urlencoded",
            headers={"Authorization": f"Basic {auth}"},
        )
        # The answer is the provider's text: should it ever echo the credentials (a compatible
        # service, a proxy's error page), they still must not reach the outbox or the logs.
        if token in result.detail or auth in result.detail:
            detail = result.detail.replace(token, "[token]").replace(auth, "[credentials]")
            result = SendResult(ok=result.ok, detail=detail, retryable=result.retryable)
        return result


SENDERS = {
    ContactKind.EMAIL: EmailSender(),
    ContactKind.WEBHOOK: WebhookSender(),
    ContactKind.SLACK: SlackSender(),
    ContactKind.SMS: TwilioSender(voice=False),
    ContactKind.VOICE: TwilioSender(voice=True),
}
