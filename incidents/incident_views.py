"""The incident page: everything an engineer handles one incident from, and its actions.

GET `/incidents/<id>/` shows the incident; each action is a POST form to its own address that
calls one `incidents.workflow` function through the "web" channel, then redirects back to the
page with a message (post/redirect/get). Only the actions legal in the incident's status are
offered; one made stale by someone else in the meantime (resolved in another tab) comes back as
a message saying what happened, never a 500. Invalid input re-renders the page with the error
and status 400. `/incidents/<id>/live/` is what the page polls to keep itself current.

Access: `page_selectors.require_page_access` — 404 for a missing incident, the 403 page saying
why for another team's incident or an observer of its team (docs/incidents.md).
"""

import html
import json
from datetime import datetime

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.dateformat import format as date_format
from django.utils.safestring import SafeString, mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST, require_safe

from oncall.models import ContactKind, Urgency

from . import page_selectors, workflow
from .models import Channel, Incident, TimelineEntry
from .page_selectors import AlertRow, IncidentPage, TimelineRow, person_name

POLL_SECONDS = 5  # how often an open page asks /live/ whether anything changed

ACKNOWLEDGE, RESOLVE, ESCALATE, REASSIGN, NOTE, URGENCY = (
    "acknowledge",
    "resolve",
    "escalate",
    "reassign",
    "note",
    "urgency",
)
ACTIONS = (ACKNOWLEDGE, RESOLVE, ESCALATE, REASSIGN, NOTE, URGENCY)

# What "it can't be …" says when the incident's state refuses an action.
REFUSED_WORDS = {
    ACKNOWLEDGE: "it can't be acknowledged",
    RESOLVE: "it can't be resolved again",
    ESCALATE: "it can't be escalated",
    REASSIGN: "it can't be reassigned",
    URGENCY: "its urgency can't be changed",
    NOTE: "no note can be added",
}

# A payload is shown pretty-printed up to this many characters (ingest takes bodies up to 512 KB:
# fifty of those would make a page of megabytes); the whole alert is in the API.
PAYLOAD_SHOWN_CHARS = 20_000

CONTACT_KIND_LABELS = dict(ContactKind.choices)
CHANNEL_LABELS = dict(Channel.choices)
REGIONS = ("head", "status", "postmortem", "actions", "timeline", "alerts")


# --- forms -------------------------------------------------------------------------------------


class ActionForm(forms.Form):
    """A form of the page; knows the page it is on (for its choices)."""

    def __init__(self, *args, page: IncidentPage, **kwargs):
        kwargs.setdefault("auto_id", f"{self.prefix_id}-%s")
        super().__init__(*args, **kwargs)
        self.page = page

    prefix_id = "action"


class AcknowledgeForm(ActionForm):
    prefix_id = "acknowledge"


class ResolveForm(ActionForm):
    prefix_id = "resolve"


class EscalateForm(ActionForm):
    prefix_id = "escalate"
    step = forms.TypedChoiceField(
        label="Step",
        required=False,
        coerce=int,
        empty_value=None,
    )

    def __init__(self, *args, page: IncidentPage, **kwargs):
        super().__init__(*args, page=page, **kwargs)
        upcoming = page.hand_escalation_step
        following = f" (step {upcoming.number}: {upcoming.targets})" if upcoming else ""
        self.fields["step"].choices = [("", f"The next step{following}")] + [
            (str(step.number), f"Step {step.number}: {step.targets}") for step in page.steps
        ]
        self.fields["step"].error_messages["invalid_choice"] = (
            f"Choose a step of the escalation policy (1 to {len(page.steps)})."
        )


class ReassignForm(ActionForm):
    prefix_id = "reassign"
    target = forms.ChoiceField(
        label="Reassign to",
        choices=[("user", "A person"), ("policy", "An escalation policy")],
        widget=forms.RadioSelect,
        error_messages={"required": "Choose a person or an escalation policy."},
    )
    user = forms.TypedChoiceField(label="Person", required=False, coerce=int, empty_value=None)
    policy = forms.TypedChoiceField(
        label="Escalation policy", required=False, coerce=int, empty_value=None
    )

    def __init__(self, *args, page: IncidentPage, **kwargs):
        super().__init__(*args, page=page, **kwargs)
        team = page.incident.service.team.name
        self.fields["user"].choices = [("", "— choose a person —")] + [
            (str(user.pk), person_name(user)) for user in page.reassign_users
        ]
        self.fields["user"].error_messages["invalid_choice"] = (
            f"Choose one of {team}'s leads and responders."
        )
        self.fields["policy"].choices = [("", "— choose a policy —")] + [
            (str(policy.pk), policy.name) for policy in page.reassign_policies
        ]
        self.fields["policy"].error_messages["invalid_choice"] = (
            f"Choose one of {team}'s escalation policies."
        )

    def clean(self):
        data = super().clean()
        target = data.get("target")
        if target == "user" and data.get("user") is None:
            self.add_error("user", "Choose the person to hand the incident to.")
        if target == "policy" and data.get("policy") is None:
            self.add_error("policy", "Choose the escalation policy to hand the incident to.")
        return data

    def chosen(self) -> dict:
        """{"user": User} or {"policy": EscalationPolicy}, for `workflow.incident_reassign`."""
        if self.cleaned_data["target"] == "user":
            users = {user.pk: user for user in self.page.reassign_users}
            return {"user": users[self.cleaned_data["user"]]}
        policies = {policy.pk: policy for policy in self.page.reassign_policies}
        return {"policy": policies[self.cleaned_data["policy"]]}


class NoteForm(ActionForm):
    prefix_id = "note"
    text = forms.CharField(
        label="Add a note",
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={
            "required": "Write the note first: it is empty.",
            "max_length": "A note may be at most 10,000 characters (this one has %(show_value)d).",
        },
    )


class UrgencyForm(ActionForm):
    prefix_id = "urgency"
    urgency = forms.ChoiceField(
        label="Urgency",
        choices=Urgency.choices,
        error_messages={"invalid_choice": "Urgency is high or low."},
    )

    def clean_urgency(self):
        urgency = self.cleaned_data["urgency"]
        if urgency == self.page.incident.urgency:
            raise forms.ValidationError(
                f"The incident is already {Urgency(urgency).label.lower()}."
            )
        return urgency


FORMS = {
    ACKNOWLEDGE: AcknowledgeForm,
    RESOLVE: ResolveForm,
    ESCALATE: EscalateForm,
    REASSIGN: ReassignForm,
    NOTE: NoteForm,
    URGENCY: UrgencyForm,
}


# --- what is legal when ------------------------------------------------------------------------


def legal_actions(page: IncidentPage) -> set[str]:
    """The actions the page offers: those the incident's status allows (workflow.py), and only
    those that have something to act with (steps to escalate to, someone to reassign to)."""
    if not page.can_act:
        return set()
    status = page.incident.status
    if status == Incident.Status.RESOLVED:
        return {NOTE}
    legal = {RESOLVE, URGENCY, NOTE}
    if status == Incident.Status.TRIGGERED:
        legal.add(ACKNOWLEDGE)
    if page.steps:
        legal.add(ESCALATE)
    if page.reassign_users or page.reassign_policies:
        legal.add(REASSIGN)
    return legal


def _clock(value: datetime) -> str:
    """A moment as the reader says it, in their zone: "14:03" today, "3 Mar 14:03" another
    day."""
    local = timezone.localtime(value)
    if local.date() == timezone.localdate():
        return date_format(local, "H:i")
    return date_format(local, "j M H:i")


def refusal_message(incident: Incident, action: str, reason: str = "") -> str:
    """Why an action came too late, from the incident's state now: "Incident #12 was resolved
    by Dana at 14:03; it can't be acknowledged." Falls back to the workflow's own reason."""
    refused = REFUSED_WORDS[action]
    if incident.status == Incident.Status.RESOLVED and incident.resolved_at:
        who = f" by {person_name(incident.resolved_by)}" if incident.resolved_by else ""
        when = _clock(incident.resolved_at)
        return f"Incident #{incident.pk} was resolved{who} at {when}; {refused}."
    if (
        action == ACKNOWLEDGE
        and incident.status == Incident.Status.ACKNOWLEDGED
        and incident.acknowledged_at
    ):
        last = (
            TimelineEntry.objects.filter(incident=incident, kind=TimelineEntry.Kind.ACKNOWLEDGED)
            .select_related("actor__profile")
            .order_by("-at", "-id")
            .first()
        )
        if last is not None:
            who = f" by {person_name(last.actor)}" if last.actor else ""
            return (
                f"Incident #{incident.pk} was acknowledged{who} at {_clock(last.at)}; "
                "it can't be acknowledged again."
            )
    if reason:
        return reason
    return f"Incident #{incident.pk} is {incident.get_status_display().lower()}; {refused}."


# --- rendering ---------------------------------------------------------------------------------


def relative(value: datetime | None, now: datetime) -> str:
    """ "in 4 min", "in 1 h 5 min", "2 min ago", "now" — the countdown next to a time."""
    if value is None:
        return ""
    seconds = round((value - now).total_seconds())
    if abs(seconds) < 30:
        return "now"
    minutes = round(abs(seconds) / 60)
    if minutes < 60:
        text = f"{minutes} min"
    elif minutes < 48 * 60:
        hours, rest = divmod(minutes, 60)
        text = f"{hours} h {rest} min" if rest else f"{hours} h"
    else:
        text = f"{round(minutes / 1440)} d"
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _decorate(page: IncidentPage) -> None:
    """Names and labels the templates show, worked out once here."""
    incident = page.incident
    incident.acknowledged_by_name = person_name(incident.acknowledged_by)
    incident.resolved_by_name = person_name(incident.resolved_by)
    page.triggered_by = incident.integration.name if incident.integration else ""
    first = page.timeline[-1] if page.timeline else None  # the timeline is newest first
    if first is not None and first.kind == TimelineEntry.Kind.TRIGGERED and first.actor_name:
        page.triggered_by = first.actor_name  # opened by hand (API or admin)
    for count in page.notification_counts:
        count.channel_label = CONTACT_KIND_LABELS.get(count.channel, count.channel)


def timeline_html(timeline: list[TimelineRow]) -> SafeString:
    """The timeline's `<li>` items, built here rather than by a template loop: a long
    timeline (hundreds of entries, each with a time in the reader's zone, a message, who, how
    and the outcome) cost more to render through the template engine than everything else on
    the page. Every value is escaped; the reader's zone is the active one (middleware)."""
    escape = html.escape
    items = []
    for entry in timeline:
        local = timezone.localtime(entry.at).isoformat()
        message = entry.message.replace("\r\n", "\n").replace("\r", "\n")
        meta = []
        if entry.actor_name:
            meta.append(f"<span>by {escape(entry.actor_name)}</span>")
        if entry.channel == Channel.SYSTEM:
            if not entry.actor_name:
                meta.append("<span>by Oncall</span>")
        elif entry.channel in CHANNEL_LABELS:
            meta.append(f"<span>via {escape(CHANNEL_LABELS[entry.channel])}</span>")
        data = entry.data if isinstance(entry.data, dict) else {}
        kind = data.get("contact_kind")
        contact = CONTACT_KIND_LABELS.get(kind, kind) if isinstance(kind, str) else kind
        if contact:
            meta.append(f"<span>channel: {escape(str(contact))}</span>")
        if entry.kind == TimelineEntry.Kind.NOTIFIED:
            meta.append('<span class="outcome outcome--ok">sent</span>')
        elif entry.kind == TimelineEntry.Kind.NOTIFY_FAILED:
            attempt = data.get("attempt")
            attempt = f", attempt {escape(str(attempt))}" if attempt else ""
            meta.append(f'<span class="outcome outcome--failed">failed{attempt}</span>')
        items.append(
            f'<li class="tl-entry tl-entry--{escape(entry.kind)}">'
            f'<div class="tl-entry__head"><span class="tl-kind">'
            f"{escape(entry.get_kind_display())}</span> "
            f'<time datetime="{local}">{local[:10]} {local[11:19]}</time></div>'
            f'<p class="tl-entry__message">{escape(message).replace(chr(10), "<br>")}</p>'
            f'<p class="tl-entry__meta">{" ".join(meta)}</p></li>\n'
        )
    return mark_safe("".join(items))  # noqa: S308 -- built from escaped values above


def pretty_json(value, *, limit: int = PAYLOAD_SHOWN_CHARS) -> tuple[str, bool]:
    """`value` as indented JSON, cut at `limit` characters: (text, whether it was cut). The
    encoder's chunks are read only until the limit, so a huge payload costs no more than a
    small one."""
    size, chunks = 0, []
    for chunk in json.JSONEncoder(indent=2, ensure_ascii=False).iterencode(value):
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            return "".join(chunks)[:limit], True
    return "".join(chunks), False


def alerts_html(alerts: list[AlertRow], *, api_url: str) -> SafeString:
    """The raw alerts' `<li>` items, built here for the reason the timeline's are (fifty alerts,
    each with its times, dedup key and payload, pretty-printed here for the shown ones only).
    Every value is escaped; a payload cut at `PAYLOAD_SHOWN_CHARS` says where the whole alert
    is."""
    escape = html.escape
    cut_note = (
        '<p class="muted small">The payload is cut here, after '
        f"{PAYLOAD_SHOWN_CHARS:,} characters; the whole alert is in the API: "
        f"<code>{escape(api_url)}</code>.</p>"
    )
    items = []
    for alert in alerts:
        local = timezone.localtime(alert.received_at).isoformat()
        outcome = (
            f' <span class="muted small">{escape(alert.outcome)}</span>' if alert.outcome else ""
        )
        summary = (
            f'<p class="alert-item__summary">{escape(alert.summary)}</p>' if alert.summary else ""
        )
        source = f"From {escape(alert.integration_name)} · " if alert.integration_name else ""
        dedup = f"<code>{escape(alert.dedup_key)}</code>" if alert.dedup_key else "none"
        payload, cut = pretty_json(alert.payload)
        items.append(
            '<li class="alert-item"><p class="alert-item__head">'
            f'<time datetime="{local}">{local[:10]} {local[11:19]}</time> '
            f'<span class="tag">{escape(alert.action)}</span>{outcome}</p>{summary}'
            f'<p class="muted small">{source}Dedup key: {dedup}</p>'
            '<pre class="payload" tabindex="0" aria-label="Payload of the alert received at '
            f'{local[11:19]}"><code>{escape(payload)}</code></pre>'
            f"{cut_note if cut else ''}</li>\n"
        )
    return mark_safe("".join(items))  # noqa: S308 -- built from escaped values above


def page_context(request, page: IncidentPage, bound: ActionForm | None = None) -> dict:
    incident = page.incident
    _decorate(page)
    now = timezone.now()
    legal = legal_actions(page)
    forms_on_page = {
        action: FORMS[action](page=page, initial=_initial(action, page)) for action in legal
    }
    if bound is not None:  # the form that came back with errors, as it was filled in
        forms_on_page[next(a for a, form in FORMS.items() if isinstance(bound, form))] = bound
    return {
        "page": page,
        "incident": incident,
        "timeline_html": timeline_html(page.timeline),
        "alerts_html": alerts_html(
            page.alerts, api_url=reverse("api:incident-alerts", args=[incident.pk])
        ),
        "legal": legal,
        "forms": forms_on_page,
        "action_urls": {
            action: reverse(f"incidents:incident_{action}", args=[incident.pk])
            for action in ACTIONS
        },
        "next_escalation_in": relative(incident.next_escalation_at, now),
        "next_escalation_clock": _clock(incident.next_escalation_at)
        if incident.next_escalation_at
        else "",
        "ack_timeout_in": relative(incident.ack_timeout_at, now),
        "ack_timeout_clock": _clock(incident.ack_timeout_at) if incident.ack_timeout_at else "",
        "other_urgency": Urgency.LOW if incident.urgency == Urgency.HIGH else Urgency.HIGH,
        "live_url": reverse("incidents:detail_live", args=[incident.pk]),
        "poll_ms": int(getattr(settings, "INCIDENT_PAGE_POLL_SECONDS", POLL_SECONDS) * 1000),
    }


def _initial(action: str, page: IncidentPage) -> dict:
    if action == REASSIGN:
        return {"target": "user"}
    return {}


def _render_page(request, page: IncidentPage, bound: ActionForm | None = None, status=200):
    context = page_context(request, page, bound)
    return render(request, "incidents/incident_detail.html", context, status=status)


# --- views -------------------------------------------------------------------------------------


@login_required
@require_safe
def incident_detail(request, pk: int):
    page = page_selectors.incident_page(user=request.user, pk=pk)
    return _render_page(request, page)


@login_required
@require_POST
def incident_action(request, pk: int, action: str):
    """One action of the page's forms, through `incidents.workflow` with channel "web"."""
    page = page_selectors.incident_page(user=request.user, pk=pk)
    incident = page.incident
    if not page.can_act:
        raise PermissionDenied("Only the team's leads and responders act on its incidents.")
    if action not in legal_actions(page):
        # Offered when the page was drawn, no longer: someone else was quicker.
        messages.error(request, refusal_message(incident, action))
        return _back(incident)
    form = FORMS[action](request.POST, page=page)
    if not form.is_valid():
        return _render_page(request, page, bound=form, status=400)
    try:
        done = _perform(request, action, form, incident)
    except workflow.IncidentStateError as error:
        incident.refresh_from_db()
        messages.error(request, refusal_message(incident, action, reason=str(error)))
        return _back(incident)
    messages.success(request, done)
    return _back(incident)


def _back(incident: Incident):
    return redirect("incidents:detail", pk=incident.pk)


def _perform(request, action: str, form: ActionForm, incident: Incident) -> str:
    """Call the workflow; return the success message."""
    common = {"incident": incident, "by": request.user, "via": Channel.WEB, "at": timezone.now()}
    number = f"Incident #{incident.pk}"
    if action == ACKNOWLEDGE:
        workflow.incident_acknowledge(**common)
        return f"{number} acknowledged: escalation has stopped."
    if action == RESOLVE:
        workflow.incident_resolve(**common)
        return f"{number} resolved."
    if action == ESCALATE:
        step = form.cleaned_data.get("step")
        updated = workflow.incident_escalate(
            **common, to_step=step - 1 if step is not None else None
        )
        return f"{number} escalated to step {updated.current_step + 1}."
    if action == REASSIGN:
        chosen = form.chosen()
        workflow.incident_reassign(**common, **chosen)
        if "user" in chosen:
            return f"{number} reassigned to {person_name(chosen['user'])}, who is paged now."
        return f"{number} reassigned to the escalation policy {chosen['policy'].name}."
    if action == NOTE:
        workflow.incident_add_note(**common, text=form.cleaned_data["text"])
        return "Note added to the timeline."
    urgency = form.cleaned_data["urgency"]
    workflow.incident_set_urgency(**common, urgency=urgency)
    return f"{number} is now {Urgency(urgency).label.lower()}."


@never_cache
@login_required
@require_safe
def incident_live(request, pk: int):
    """What the page polls: {"changed": false} while its version marker is current; otherwise
    the new marker, the status and the server-rendered regions of the page to swap in, with a
    sentence for the page's live region."""
    incident = page_selectors.incident_for_page(user=request.user, pk=pk)
    known = request.GET.get("version", "")
    version = page_selectors.incident_version(incident_id=incident.pk)
    if version == known:
        return JsonResponse({"changed": False, "version": version})
    page = page_selectors.incident_page(user=request.user, pk=pk)
    context = page_context(request, page)
    regions = {
        name: render_to_string(f"incidents/_incident_{name}.html", context, request=request)
        for name in REGIONS
    }
    return JsonResponse(
        {
            "changed": True,
            "version": page.version,
            "status": page.incident.status,
            "status_label": page.incident.get_status_display(),
            "title": f"#{page.incident.pk} {page.incident.get_status_display()}: "
            f"{page.incident.title}",
            "alerts_total": page.alerts_total,
            "regions": regions,
            "announcement": _announcement(page, known),
        }
    )


def _announcement(page: IncidentPage, known: str) -> str:
    """One sentence for screen readers: the status if it changed, then what is new."""
    incident = page.incident
    parts = []
    known_status = known.split(".")[1] if known.count(".") >= 1 else ""
    if known_status and known_status != incident.status:
        parts.append(f"Incident #{incident.pk} is now {incident.get_status_display().lower()}.")
    after = page_selectors.version_entry_id(known)
    if after is not None:
        new = [entry for entry in page.timeline if entry.pk > after][:3]
        for entry in new:
            who = f" ({entry.actor_name})" if entry.actor_name else ""
            parts.append(f"{entry.get_kind_display()}{who}: {entry.message}")
    return " ".join(parts)[:500]
