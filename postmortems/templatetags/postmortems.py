"""Template helpers of the postmortem pages, and the postmortem box of the incident page.

`{% load postmortems %}` gives `|markdown` (sanitised HTML), `|outage_duration` ("2 h 05 min",
as in the Markdown download), `|person` (a user's display name) and
`{% incident_postmortem incident %}`, which the incident page includes in its side panel.
"""

from django import template

from incidents.models import Incident

from .. import selectors, services
from ..forms import person_name
from ..markdown import render_markdown

register = template.Library()


@register.filter
def markdown(text):
    return render_markdown(text)


@register.filter
def outage_duration(delta) -> str:
    return selectors.format_duration(delta) or "—"


@register.filter
def person(user) -> str:
    return person_name(user) if user is not None else "—"


@register.inclusion_tag("postmortems/_incident_box.html", takes_context=True)
def incident_postmortem(context, incident: Incident) -> dict:
    """The incident's postmortem ("Postmortem: <title> (status)", linked), or a "Create
    postmortem" button once the incident is resolved and the reader may write one. Nothing for
    readers who write no postmortems for this team."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not services.can_write(user, incident.service.team_id):
        return {"show": False}
    found = selectors.incident_postmortems(user=user, incidents=[incident]).get(incident.pk)
    return {
        "show": True,
        "incident": incident,
        "postmortem": found,
        "can_create": found is None and incident.status == Incident.Status.RESOLVED,
        "csrf_token": context.get("csrf_token"),
    }
