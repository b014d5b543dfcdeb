"""Pages of the schedules app."""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render

from oncall import access

from . import selectors

OBSERVER_REASON = (
    "Observers read their teams' reports and published postmortems. Schedules are for the "
    "teams' leads and responders."
)


@login_required
def schedule_list(request):
    """The schedules of the reader's teams, with team and time zone (observers: 403)."""
    user = request.user
    if access.is_observer_only(user):
        raise PermissionDenied(OBSERVER_REASON)
    schedules = selectors.schedule_list(team_ids=access.visible_team_ids(user))
    return render(request, "schedules/schedule_list.html", {"schedules": schedules})
