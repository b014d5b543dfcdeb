"""What a page says: the Message sent for one incident, or for a bundle of several, to one person.

Channel-independent (`oncall.notify.Message`): the e-mail sender uses the text and HTML parts and
appends the one-click action links, the webhooks post the machine-readable data, SMS and voice
use the short subject (phone messages are kept short on purpose). Each incident carries signed
acknowledge and resolve links for the person paged (see `incidents.links`), valid 24 hours.
"""

import zoneinfo
from collections.abc import Sequence

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ObjectDoesNotExist
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from oncall.models import ContactKind
from oncall.notify import Message

from . import links
from .models import Incident

BUNDLE_LISTED = 10  # a bundle lists (and links) this many incidents; the rest are counted
PHONE_KINDS = (ContactKind.SMS, ContactKind.VOICE)


def person_name(user: AbstractUser) -> str:
    try:
        return user.profile.name
    except ObjectDoesNotExist:
        return user.get_full_name() or user.get_username()


def person_zone(user: AbstractUser) -> zoneinfo.ZoneInfo:
    try:
        return user.profile.zone
    except ObjectDoesNotExist:
        return zoneinfo.ZoneInfo("UTC")


def incident_path(incident: Incident) -> str:
    """The incident's page (`incidents.incident_views`), where the person paged handles it."""
    return reverse("incidents:detail", args=[incident.pk])


def incident_url(incident: Incident) -> str:
    return settings.BASE_URL + incident_path(incident)


def open_incidents_url() -> str:
    return settings.BASE_URL + reverse("incidents:list") + "?status=open"


def incident_line(incident: Incident) -> str:
    """`#12 Triggered: Disk full — API`"""
    return f"#{incident.pk} {incident.get_status_display()}: {incident.title} — {incident.service}"


def _entry(incident: Incident, user: AbstractUser) -> dict:
    return {
        "incident": incident,
        "line": incident_line(incident),
        "url": incident_url(incident),
        "acknowledge_url": links.action_url(incident=incident, action=links.ACKNOWLEDGE, user=user),
        "resolve_url": links.action_url(incident=incident, action=links.RESOLVE, user=user),
    }


def _data(entry: dict) -> dict:
    incident = entry["incident"]
    return {
        "id": incident.pk,
        "title": incident.title,
        "status": incident.status,
        "urgency": incident.urgency,
        "service": {"id": incident.service_id, "name": str(incident.service)},
        "triggered_at": incident.triggered_at.isoformat(),
        "alert_count": incident.alert_count,
        "url": entry["url"],
        "acknowledge_url": entry["acknowledge_url"],
        "resolve_url": entry["resolve_url"],
    }


def incidents_message(
    *, incidents: Sequence[Incident], user: AbstractUser, kind: str = ContactKind.EMAIL
) -> Message:
    """The page for `user` about one incident or several (a bundle), for a channel `kind`.

    Subject: `[Oncall] #12 Triggered: Disk full — API`, or `[Oncall] 3 incidents triggered: …`.
    """
    unique = list({incident.pk: incident for incident in incidents}.values())
    if not unique:
        raise ValueError("a page is about at least one incident")
    listed = [_entry(incident, user) for incident in unique[:BUNDLE_LISTED]]
    more = len(unique) - len(listed)
    if len(unique) == 1:
        entry = listed[0]
        subject = f"[Oncall] {entry['line']}"
        url = entry["url"]
        actions = {"Acknowledge": entry["acknowledge_url"], "Resolve": entry["resolve_url"]}
    else:
        subject = f"[Oncall] {len(unique)} incidents triggered: " + "; ".join(
            f"#{e['incident'].pk} {e['incident'].title}" for e in listed[:3]
        )
        url = open_incidents_url()
        actions = {}
        for entry in listed:
            actions[f"Acknowledge #{entry['incident'].pk}"] = entry["acknowledge_url"]
            actions[f"Resolve #{entry['incident'].pk}"] = entry["resolve_url"]
    subject = subject.replace("\r", " ").replace("\n", " ")  # a header: one line, or no mail
    if len(subject) > 200:
        subject = subject[:199] + "…"
    context = {
        "name": person_name(user),
        "entries": listed,
        "count": len(unique),
        "more": more,
        "list_url": open_incidents_url(),
        "valid_hours": int(links.MAX_AGE.total_seconds() // 3600),
    }
    if kind in PHONE_KINDS:
        # A text message or a spoken call: one sentence, the links stay in the portal.
        if len(unique) == 1:
            incident = unique[0]
            text = (
                f"Incident {incident.pk} on {incident.service}: {incident.title}. "
                "Acknowledge it in Oncall."
            )
        else:
            text = f"{len(unique)} incidents are triggered for you. Acknowledge them in Oncall."
        html = ""
    else:
        with timezone.override(person_zone(user)):  # times as the person reads them
            text = render_to_string("incidents/email/page.txt", context).strip()
            html = render_to_string("incidents/email/page.html", context) if kind == "email" else ""
    return Message(
        subject=subject,
        text=text,
        html=html,
        url=url,
        actions=actions,
        event="incident.triggered",
        data={
            "user": {"id": user.pk, "username": user.get_username()},
            "count": len(unique),
            "incidents": [_data(entry) for entry in listed],
        },
    )
