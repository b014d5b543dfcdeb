""" "Send a test notification" on each contact method of the profile page: one message, sent at
once through the channel's sender, and the provider's answer shown to its owner."""

import pytest
from django.urls import reverse

from oncall.models import ContactKind

from .factories import UserFactory, contact_method

pytestmark = pytest.mark.django_db


def url_of(method) -> str:
    return reverse("profile:contact_method_test", args=[method.pk])


@pytest.fixture
def ada(client):
    user = UserFactory(username="ada", display_name="Ada Lovelace")
    client.force_login(user)
    return user


def test_each_contact_method_has_the_button(client, ada, http_server):
    hook = contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    mail = contact_method(ada, ContactKind.EMAIL, "ada@example.com")

    page = client.get(reverse("profile:detail")).content.decode()

    for method in (hook, mail):
        assert f'action="{url_of(method)}"' in page
    assert page.count("Send a test notification") == 2


def test_a_webhook_test_is_posted_and_the_answer_shown(client, ada, http_server):
    hook = contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"), label="Pager app")

    response = client.post(url_of(hook), follow=True)

    [request] = http_server.wait_for_requests(1)
    body = request.json()
    assert body["event"] == "test"
    assert body["subject"] == "[Oncall] Test notification"
    assert "Generic webhook contact method (Pager app)" in body["text"]
    assert response.redirect_chain[-1][0].endswith("/profile/#contact-methods")
    page = response.content.decode()
    assert "Test notification sent to Generic webhook: Pager app — HTTP 200" in page


def test_a_failed_test_shows_the_providers_answer(client, ada, http_server):
    http_server.respond(500, "upstream exploded")
    hook = contact_method(ada, ContactKind.SLACK, http_server.url("/slack"))

    response = client.post(url_of(hook), follow=True)

    assert response.status_code == 200
    page = response.content.decode()
    assert "The test notification to Slack-compatible webhook" in page
    assert "failed — HTTP 500 upstream exploded" in page
    assert 'class="message message--error"' in page


def test_an_e_mail_test_reaches_the_mail_server(client, ada, settings, smtp_server):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = smtp_server.hostname, smtp_server.port
    settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
    mail = contact_method(ada, ContactKind.EMAIL, "ada@example.com")

    response = client.post(url_of(mail), follow=True)

    [message] = smtp_server.wait_for_messages(1)
    assert message.rcpt_tos == ("ada@example.com",)
    assert message.subject == "[Oncall] Test notification"
    assert "Nothing is wrong." in message.part("text/plain")
    assert "e-mail accepted for ada@example.com" in response.content.decode()


def test_sms_without_twilio_says_so(client, ada, settings):
    settings.TWILIO_ACCOUNT_SID = ""
    phone = contact_method(ada, ContactKind.SMS, "+447700900123")

    response = client.post(url_of(phone), follow=True)

    assert "Twilio is not configured" in response.content.decode()


def test_only_the_owner_may_test_a_contact_method(client, ada, http_server):
    bob = UserFactory(username="bob")
    bobs = contact_method(bob, ContactKind.WEBHOOK, http_server.url("/bob"))

    assert client.post(url_of(bobs)).status_code == 404
    assert http_server.requests == []


def test_a_test_is_a_post(client, ada, http_server):
    hook = contact_method(ada, ContactKind.WEBHOOK, http_server.url("/hook"))
    assert client.get(url_of(hook)).status_code == 405
    assert http_server.requests == []


def test_anonymous_is_sent_to_sign_in(client, http_server):
    owner = UserFactory()
    hook = contact_method(owner, ContactKind.WEBHOOK, http_server.url("/hook"))

    response = client.post(url_of(hook))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert http_server.requests == []
