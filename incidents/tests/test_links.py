"""One-click acknowledge and resolve links: signed, 24 hours, a confirmation page before acting,
refused cleanly when used twice, expired or altered — and the e-mail that carries them."""

import logging
import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import time_machine
from django.core import signing
from django.test import Client
from django.utils import timezone

from incidents import links, messages, outbox, workflow
from incidents.models import Channel, Incident, Page, TimelineEntry
from incidents.services import escalation_policy_create, escalation_step_add, service_create
from oncall import services as people
from oncall.models import ContactKind, Role
from oncall.tests.factories import TeamFactory, UserFactory, contact_method
from oncall.tests.servers import RecordingSMTPServer

pytestmark = pytest.mark.django_db


@pytest.fixture
def paged():
    """An incident that paged Ada (by e-mail); Bob is in the team but was not paged."""
    ada = UserFactory(username="ada", display_name="Ada Lovelace", time_zone="Europe/Paris")
    bob = UserFactory(username="bob")
    team = TeamFactory(lead=ada, members=[(bob, Role.RESPONDER)])
    contact_method(ada, ContactKind.EMAIL, "ada@example.com")
    policy = escalation_policy_create(team=team, name="Ada first")
    escalation_step_add(policy=policy, delay_minutes=10, users=[ada])
    service = service_create(team=team, name="Checkout", escalation_policy=policy)
    now = timezone.now()
    incident = workflow.incident_trigger(service=service, title="Checkout 5xx", at=now)
    workflow.incident_advance(incident=incident, now=now)
    return incident, ada, bob


def path_of(incident, action, user) -> str:
    return urlsplit(links.action_url(incident=incident, action=action, user=user)).path


# --- tokens -------------------------------------------------------------------------------------


def test_a_token_reads_back_as_what_was_signed():
    token = links.action_token(incident_id=12, action="acknowledge", user_id=7)
    assert links.action_read(token) == links.ActionLink(12, "acknowledge", 7)


@pytest.mark.parametrize(
    "token",
    [
        "not-a-token",
        "",
        signing.dumps({"i": 1, "a": "acknowledge", "u": 1}, salt="another.salt"),
        signing.dumps({"i": 1, "a": "delete", "u": 1}, salt=links.SALT),
        signing.dumps({"i": "x", "a": "acknowledge", "u": 1}, salt=links.SALT),
        signing.dumps(["i", "a"], salt=links.SALT),
    ],
)
def test_a_token_that_is_not_ours_is_invalid(token):
    with pytest.raises(links.LinkInvalid) as error:
        links.action_read(token)
    assert not isinstance(error.value, links.LinkExpired)


def test_a_token_expires_after_24_hours():
    with time_machine.travel("2026-11-24 03:00:00+00:00", tick=False) as clock:
        token = links.action_token(incident_id=1, action="resolve", user_id=2)
        clock.shift(timedelta(hours=23, minutes=59))
        assert links.action_read(token).action == "resolve"
        clock.shift(timedelta(minutes=1, seconds=1))
        with pytest.raises(links.LinkExpired):
            links.action_read(token)


# --- the page -----------------------------------------------------------------------------------


def test_opening_the_link_only_asks_for_confirmation(client, paged):
    incident, ada, _ = paged
    response = client.get(path_of(incident, "acknowledge", ada))

    assert response.status_code == 200
    page = response.content.decode()
    assert f"Acknowledge incident #{incident.pk}?" in page
    assert "Checkout 5xx" in page and "Ada Lovelace" in page
    assert 'method="post"' in page
    assert "no-cache" in response["Cache-Control"] and response["X-Robots-Tag"] == "noindex"
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


def test_the_button_acknowledges_as_the_person_paged_once(client, paged):
    incident, ada, _ = paged
    link = path_of(incident, "acknowledge", ada)

    response = client.post(link)

    assert response.status_code == 200
    assert f"Incident #{incident.pk} acknowledged" in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    assert incident.acknowledged_by == ada
    entry = TimelineEntry.objects.get(incident=incident, kind=TimelineEntry.Kind.ACKNOWLEDGED)
    assert (entry.actor, entry.channel) == (ada, Channel.EMAIL)

    again = client.post(link)

    assert again.status_code == 409
    page = again.content.decode()
    assert f"Incident #{incident.pk} is already acknowledged" in page
    assert "Acknowledged by Ada Lovelace" in page
    assert TimelineEntry.objects.filter(incident=incident, kind="acknowledged").count() == 1
    opened = client.get(link)
    assert opened.status_code == 200
    assert "is already acknowledged" in opened.content.decode()
    assert 'method="post"' not in opened.content.decode()


def test_the_resolve_link_works_after_an_acknowledgement_and_only_once(client, paged):
    incident, ada, _ = paged
    client.post(path_of(incident, "acknowledge", ada))
    resolve = path_of(incident, "resolve", ada)

    assert client.post(resolve).status_code == 200
    incident.refresh_from_db()
    assert (incident.status, incident.resolved_by) == (Incident.Status.RESOLVED, ada)
    again = client.post(resolve)
    assert again.status_code == 409
    assert "is already resolved" in again.content.decode()
    late_ack = client.post(path_of(incident, "acknowledge", ada))
    assert late_ack.status_code == 409
    assert "is already resolved" in late_ack.content.decode()


def test_times_are_shown_in_the_zone_of_the_person_paged(client, paged):
    incident, ada, _ = paged
    response = client.get(path_of(incident, "acknowledge", ada))
    local = timezone.localtime(incident.triggered_at, ada.profile.zone)
    assert f"{local:%Y-%m-%d %H:%M}" in response.content.decode()


def test_a_link_expires_after_24_hours(client, paged):
    incident, ada, _ = paged
    link = path_of(incident, "acknowledge", ada)
    with time_machine.travel(timezone.now() + timedelta(hours=24, seconds=1)):
        opened, pressed = client.get(link), client.post(link)

    for response in (opened, pressed):
        assert response.status_code == 410
        assert "This link has expired" in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


@pytest.mark.parametrize("method", ["get", "post"])
def test_an_altered_link_is_a_400_page(client, paged, method):
    incident, ada, _ = paged
    link = path_of(incident, "acknowledge", ada)
    altered = link[:-6] + ("A" if link[-6] != "A" else "B") + link[-5:]

    response = getattr(client, method)(altered)

    assert response.status_code == 400
    assert "This link does not work" in response.content.decode()


def test_a_link_for_a_deleted_incident_is_a_410_page(client, paged):
    incident, ada, _ = paged
    link = path_of(incident, "acknowledge", ada)
    incident.delete()

    response = client.post(link)

    assert response.status_code == 410
    assert "no longer exists" in response.content.decode()


def test_a_link_acts_only_for_a_person_who_was_paged_and_still_active(client, paged):
    incident, ada, bob = paged
    assert client.post(path_of(incident, "acknowledge", bob)).status_code == 403
    ada.is_active = False
    ada.save(update_fields=["is_active"])
    assert client.post(path_of(incident, "acknowledge", ada)).status_code == 403
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


def test_a_link_acts_only_for_someone_who_may_act_on_the_team(client, paged):
    incident, ada, bob = paged
    policy = escalation_policy_create(team=incident.service.team, name="Bob only")
    escalation_step_add(policy=policy, delay_minutes=5, users=[bob])
    workflow.incident_reassign(
        incident=incident, by=ada, via=Channel.WEB, at=timezone.now(), policy=policy
    )
    contact_method(bob, ContactKind.EMAIL, "bob@example.com")
    workflow.incident_advance(incident=incident, now=timezone.now())
    assert Page.objects.filter(incident=incident, user=bob).exists()
    people.membership_set(team=incident.service.team, user=bob, role=Role.OBSERVER)

    response = client.post(path_of(incident, "acknowledge", bob))

    assert response.status_code == 403
    assert "You may not act on this incident" in response.content.decode()
    incident.refresh_from_db()
    assert incident.status == Incident.Status.TRIGGERED


def test_other_methods_are_refused(client, paged):
    incident, ada, _ = paged
    assert client.put(path_of(incident, "acknowledge", ada)).status_code == 405


def test_the_confirmation_form_passes_the_csrf_check_of_a_real_browser(paged):
    incident, ada, _ = paged
    browser = Client(enforce_csrf_checks=True)
    link = path_of(incident, "acknowledge", ada)
    page = browser.get(link).content.decode()
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)

    assert browser.post(link).status_code == 403  # no token: refused
    assert browser.post(link, {"csrfmiddlewaretoken": token}).status_code == 200


def test_the_token_stays_out_of_the_logs(client, paged, caplog):
    caplog.set_level(logging.DEBUG)
    incident, ada, _ = paged
    link = path_of(incident, "acknowledge", ada)
    token = link.rstrip("/").rsplit("/", 1)[1]
    client.post(link)
    client.post(link)  # 409
    client.get(link[:-3] + "xx/")  # 400
    with time_machine.travel(timezone.now() + timedelta(days=2)):
        client.get(link)  # 410

    assert "e-mail action link refused" in caplog.text
    assert token not in caplog.text
    assert token[:20] not in caplog.text


# --- the message --------------------------------------------------------------------------------


def test_the_message_links_the_incident_page(settings, paged):
    settings.BASE_URL = "https://oncall.example.com"
    incident, ada, _ = paged
    message = messages.incidents_message(incidents=[incident], user=ada)

    assert message.subject == f"[Oncall] #{incident.pk} Triggered: Checkout 5xx — Checkout"
    assert message.url == f"https://oncall.example.com/incidents/{incident.pk}/"
    assert f"https://oncall.example.com/incidents/{incident.pk}/" in message.text
    assert f'href="https://oncall.example.com/incidents/{incident.pk}/"' in message.html
    assert message.data["incidents"][0]["url"] == message.url
    assert set(message.actions) == {"Acknowledge", "Resolve"}
    for url in message.actions.values():
        assert url.startswith("https://oncall.example.com/incidents/act/")
    assert message.event == "incident.triggered"
    assert message.data["incidents"][0]["title"] == "Checkout 5xx"


def test_after_the_button_the_page_links_the_incident(client, paged):
    incident, ada, _ = paged
    response = client.post(path_of(incident, "acknowledge", ada))
    assert response.status_code == 200
    assert f'<a href="/incidents/{incident.pk}/">Open incident #{incident.pk} in Oncall</a>' in (
        response.content.decode()
    )


def test_signed_in_as_the_person_paged_the_button_leads_to_the_incident_page(client, paged):
    incident, ada, _ = paged
    client.force_login(ada)

    response = client.post(path_of(incident, "resolve", ada), follow=True)

    assert response.redirect_chain == [(f"/incidents/{incident.pk}/", 302)]
    page = response.content.decode()
    assert f"Incident #{incident.pk} resolved from the e-mail link." in page
    assert '<span class="badge badge--resolved">Resolved</span>' in page
    entry = TimelineEntry.objects.get(incident=incident, kind=TimelineEntry.Kind.RESOLVED)
    assert (entry.actor, entry.channel) == (ada, Channel.EMAIL)


def test_signed_in_as_someone_else_the_button_still_acts_as_the_person_paged(client, paged):
    incident, ada, bob = paged
    client.force_login(bob)
    response = client.post(path_of(incident, "acknowledge", ada))
    assert response.status_code == 200
    assert f"Incident #{incident.pk} acknowledged" in response.content.decode()
    incident.refresh_from_db()
    assert incident.acknowledged_by == ada


def test_a_phone_message_is_one_short_sentence(paged):
    incident, ada, _ = paged
    message = messages.incidents_message(incidents=[incident], user=ada, kind=ContactKind.SMS)
    assert message.html == ""
    assert (
        message.text
        == f"Incident {incident.pk} on Checkout: Checkout 5xx. Acknowledge it in Oncall."
    )


def test_a_title_with_line_breaks_still_makes_a_one_line_subject(paged):
    incident, ada, _ = paged
    Incident.objects.filter(pk=incident.pk).update(title="Disk\r\nfull\nBcc: x@example.com")
    incident.refresh_from_db()
    message = messages.incidents_message(incidents=[incident], user=ada)
    assert "\n" not in message.subject and "\r" not in message.subject


def test_a_bundle_lists_ten_incidents_and_counts_the_rest(paged):
    incident, ada, _ = paged
    others = [
        workflow.incident_trigger(service=incident.service, title=f"#{n}", at=timezone.now())
        for n in range(11)
    ]
    message = messages.incidents_message(incidents=[incident, *others], user=ada)
    assert message.subject.startswith("[Oncall] 12 incidents triggered: ")
    assert len(message.actions) == 2 * messages.BUNDLE_LISTED
    assert "…and 2 more" in message.text
    assert "2 more</a>" in message.html
    assert message.data["count"] == 12
    # A bundle's own link is the open incidents; each incident links its page.
    assert message.url.endswith("/incidents/?status=open")
    assert [entry["url"] for entry in message.data["incidents"]][0].endswith(
        f"/incidents/{incident.pk}/"
    )


def test_a_page_by_e_mail_has_text_and_html_parts_and_working_links(settings, client, paged):
    """The whole way: the outbox sends through a real (local) SMTP server; the links in the mail
    work once, and no longer after 24 hours."""
    incident, ada, _ = paged
    with RecordingSMTPServer() as smtp:
        settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
        settings.EMAIL_HOST, settings.EMAIL_PORT = smtp.hostname, smtp.port
        settings.EMAIL_USE_TLS = settings.EMAIL_USE_SSL = False
        settings.EMAIL_HOST_USER = settings.EMAIL_HOST_PASSWORD = ""
        assert outbox.notifications_send_due(now=timezone.now()).sent == 1
        [mail] = smtp.wait_for_messages(1)

    assert mail.rcpt_tos == ("ada@example.com",)
    # (a non-ASCII subject is an RFC 2047 encoded word, folded onto its own line: unfolding
    # leaves a leading space that mail clients ignore)
    assert mail.subject.strip() == f"[Oncall] #{incident.pk} Triggered: Checkout 5xx — Checkout"
    text, html = mail.part("text/plain").replace("\r\n", "\n"), mail.part("text/html")
    assert "Ada Lovelace, you are paged." in text
    assert "Service: Checkout" in text
    local = timezone.localtime(incident.triggered_at, ada.profile.zone)  # Europe/Paris
    assert f"Triggered: {local:%Y-%m-%d %H:%M} {local:%Z}" in text
    assert f"#{incident.pk} Checkout 5xx" in html
    ack = re.search(r"^Acknowledge: (\S+)$", text, re.M).group(1)
    assert f'href="{ack}"' in html
    assert re.search(r"^Resolve: (\S+)$", text, re.M)
    ack_path = urlsplit(ack).path

    assert client.get(ack_path).status_code == 200
    assert client.post(ack_path).status_code == 200
    incident.refresh_from_db()
    assert incident.status == Incident.Status.ACKNOWLEDGED
    second = client.post(ack_path)
    assert second.status_code == 409
    assert "already acknowledged" in second.content.decode()
    with time_machine.travel(timezone.now() + timedelta(hours=24, minutes=1)):
        assert client.get(ack_path).status_code == 410
