"""One-click acknowledge and resolve links, sent in pages by e-mail (and chat, and webhooks).

A link carries the incident, the action and the person paged, signed with the project's secret
key (`django.core.signing`, its own salt) and valid for 24 hours. It needs no sign-in: the
signature is the proof. Opening it (GET) only shows a confirmation page with a button, because
mail scanners and link previews fetch every link in a message; the button (POST) performs the
action through `incidents.workflow`, as that person, through the "e-mail link" channel — if that
person was paged for the incident and may still act on the team's incidents (`oncall.access`). Used
again, the state machine refuses and the page says what the incident's state is; an expired or
altered link gets a 410 or 400 page, never a 500. Every answer links to the incident's page;
someone already signed in as the person paged goes straight there after the button.

The token in the address is a capability for 24 hours: the views keep it out of the portal's
own logs (Django logs the path of every 4xx answer).
"""

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core import signing
from django.core.exceptions import ObjectDoesNotExist
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from oncall import access

from . import workflow
from .models import Channel, Incident, Page

logger = logging.getLogger(__name__)

SALT = "oncall.incidents.email-action"
MAX_AGE = timedelta(hours=24)
ACKNOWLEDGE = "acknowledge"
RESOLVE = "resolve"
ACTIONS = {ACKNOWLEDGE: "Acknowledge", RESOLVE: "Resolve"}


class LinkInvalid(Exception):
    """Not a link the portal made (altered, truncated, made with another key)."""

    status = 400


class LinkExpired(LinkInvalid):
    """A real link, older than MAX_AGE."""

    status = 410


@dataclass(frozen=True)
class ActionLink:
    incident_id: int
    action: str
    user_id: int


def action_token(*, incident_id: int, action: str, user_id: int) -> str:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    return signing.dumps(
        {"i": int(incident_id), "a": action, "u": int(user_id)}, salt=SALT, compress=True
    )


def action_url(*, incident: Incident, action: str, user) -> str:
    """The absolute one-click link (settings.BASE_URL) for `user` to `action` the incident."""
    token = action_token(incident_id=incident.pk, action=action, user_id=user.pk)
    return settings.BASE_URL + reverse("incidents:email_action", args=[token])


def action_read(token: str) -> ActionLink:
    """The link a token stands for; LinkExpired after MAX_AGE, LinkInvalid if not ours."""
    try:
        data = signing.loads(token, salt=SALT, max_age=MAX_AGE)
    except signing.SignatureExpired as error:
        raise LinkExpired("expired") from error
    except (signing.BadSignature, ValueError, TypeError) as error:
        raise LinkInvalid("bad signature") from error
    try:
        link = ActionLink(incident_id=int(data["i"]), action=data["a"], user_id=int(data["u"]))
    except (KeyError, TypeError, ValueError) as error:
        raise LinkInvalid("malformed") from error
    if link.action not in ACTIONS:
        raise LinkInvalid("unknown action")
    return link


def action_refusal(incident: Incident, action: str) -> str | None:
    """Why the incident's state refuses the action (None when it may be done)."""
    if incident.status == Incident.Status.RESOLVED:
        return "resolved"
    if action == ACKNOWLEDGE and incident.status == Incident.Status.ACKNOWLEDGED:
        return "acknowledged"
    return None


def action_perform(*, link: ActionLink, incident: Incident, user, at) -> Incident:
    """Do what the link says, as its person, through the e-mail channel. Raises
    workflow.IncidentStateError when the state machine refuses (e.g. used a second time)."""
    if link.action == ACKNOWLEDGE:
        return workflow.incident_acknowledge(incident=incident, by=user, via=Channel.EMAIL, at=at)
    return workflow.incident_resolve(incident=incident, by=user, via=Channel.EMAIL, at=at)


# --- the page ----------------------------------------------------------------------------------

REFUSALS = {
    # reason: (status, heading, explanation)
    "invalid": (
        400,
        "This link does not work",
        "The link is incomplete or was changed. Open the incident in Oncall instead, or copy the "
        "whole link from the message.",
    ),
    "expired": (
        410,
        "This link has expired",
        "Acknowledge and resolve links in a page work for 24 hours. Open the incident in Oncall "
        "to act on it.",
    ),
    "gone": (410, "This incident no longer exists", "It was deleted after the page was sent."),
    "not_yours": (
        403,
        "This link no longer acts for anybody",
        "The person it was sent to can no longer be found or was not paged for this incident. "
        "Sign in to Oncall to act on it.",
    ),
    "not_allowed": (
        403,
        "You may not act on this incident",
        "Acknowledging and resolving are for the team's leads and responders, and your role in "
        "the team does not (or no longer) allow it. Ask someone in the team to act on it.",
    ),
}


def _answer(request, context: dict, status: int, outcome: str, link: ActionLink | None):
    response = render(request, "incidents/email_action.html", context, status=status)
    response["X-Robots-Tag"] = "noindex"
    if status >= 400:
        # Django would log this path — the token — as "Bad Request: …"; log it without.
        logger.info(
            "e-mail action link refused (%s, HTTP %s): incident %s, %s",
            outcome,
            status,
            link.incident_id if link else "?",
            link.action if link else "?",
        )
        response._has_been_logged = True
    return response


def _refused(request, reason: str, link: ActionLink | None = None):
    status, heading, explanation = REFUSALS[reason]
    context = {"mode": "refused", "heading": heading, "explanation": explanation}
    return _answer(request, context, status, reason, link)


def _zone(user):
    try:
        return user.profile.zone
    except ObjectDoesNotExist:
        return timezone.get_current_timezone()


@never_cache
@require_http_methods(["GET", "POST"])
def email_action(request, token: str):
    """GET: "Acknowledge incident #12?" with a button. POST: do it."""
    try:
        link = action_read(token)
    except LinkExpired:
        return _refused(request, "expired")
    except LinkInvalid:
        return _refused(request, "invalid")
    incident = (
        Incident.objects.select_related("service", "acknowledged_by", "resolved_by")
        .filter(pk=link.incident_id)
        .first()
    )
    if incident is None:
        return _refused(request, "gone", link)
    user = get_user_model().objects.filter(pk=link.user_id, is_active=True).first()
    if user is None or not Page.objects.filter(incident=incident, user=user).exists():
        return _refused(request, "not_yours", link)
    if not access.can_act_on_team(user, incident.service.team_id):  # docs/permissions.md
        return _refused(request, "not_allowed", link)
    context = {
        "incident": incident,
        "action": link.action,
        "action_label": ACTIONS[link.action],
        "person": user,
        "incident_url": _incident_path(incident),
    }
    with timezone.override(_zone(user)):
        if request.method == "GET":
            refusal = action_refusal(incident, link.action)
            mode = "already" if refusal else "confirm"
            return _answer(request, {**context, "mode": mode}, 200, mode, link)
        try:
            incident = action_perform(link=link, incident=incident, user=user, at=timezone.now())
        except workflow.IncidentStateError:
            incident.refresh_from_db()
            return _answer(
                request, {**context, "incident": incident, "mode": "already"}, 409, "used", link
            )
        logger.info("incident %s: %s by e-mail link", incident.pk, link.action)
        if request.user.is_authenticated and request.user.pk == user.pk:
            # Signed in as the person paged: straight on to the incident page.
            done = "acknowledged" if link.action == ACKNOWLEDGE else "resolved"
            messages.success(request, f"Incident #{incident.pk} {done} from the e-mail link.")
            return redirect(context["incident_url"])
        return _answer(
            request, {**context, "incident": incident, "mode": "done"}, 200, "done", link
        )


def _incident_path(incident: Incident) -> str:
    from .messages import incident_path

    return incident_path(incident)
