"""iCalendar (RFC 5545) feeds of on-call shifts, for a schedule and for one person.

The feed URLs carry the person's secret calendar token instead of a login, so calendar apps can
subscribe; resetting the token on the schedule pages breaks every old URL at once.
"""

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404, HttpResponse
from django.utils import timezone
from icalendar import Calendar, Event

from oncall import access

from . import selectors
from .models import CalendarToken, Schedule
from .rotation import Shift

PAST = timedelta(days=14)
FUTURE = timedelta(days=90)


def build_calendar(name: str, events: Iterable[tuple[Shift, str, str]]) -> bytes:
    """A VCALENDAR with one VEVENT per shift: (shift, summary, uid prefix)."""
    calendar = Calendar()
    calendar.add("prodid", "-//Oncall//On-call shifts//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("x-wr-calname", name)
    stamp = timezone.now().astimezone(UTC).replace(microsecond=0)
    for shift, summary, prefix in events:
        event = Event()
        event.add("uid", f"{prefix}-{shift.user_id}-{int(shift.start.timestamp())}@oncall")
        event.add("dtstamp", stamp)
        event.add("dtstart", shift.start.astimezone(UTC))
        event.add("dtend", shift.end.astimezone(UTC))
        event.add("summary", summary)
        event.add("url", settings.BASE_URL)
        calendar.add_component(event)
    return calendar.to_ical()


def _user_for_token(token: str):
    row = CalendarToken.objects.select_related("user").filter(token=token).first()
    if row is None or not row.user.is_active:
        raise Http404("Unknown calendar link")
    return row.user


def _window() -> tuple[datetime, datetime]:
    now = timezone.now().replace(microsecond=0)
    return now - PAST, now + FUTURE


def _names(ids) -> dict[int, str]:
    users = get_user_model().objects.filter(pk__in=set(ids)).select_related("profile")
    return {u.pk: (u.profile.name if hasattr(u, "profile") else u.get_username()) for u in users}


def _ics_response(body: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(body, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = f'inline; filename="{filename}"'
    response["Cache-Control"] = "private, max-age=300"
    return response


def schedule_feed(request, token: str, pk: int):
    """Every shift of one schedule of the token owner's teams."""
    user = _user_for_token(token)
    schedule = Schedule.objects.select_related("team").filter(pk=pk).first()
    if schedule is None or not access.can_read_team(user, schedule.team_id):
        raise Http404("Unknown schedule")
    start, end = _window()
    final = selectors.final_schedule(schedule, start, end)
    names = _names(s.user_id for s in final.shifts)
    events = [
        (s, f"{names.get(s.user_id, '?')} on call — {schedule.name}", f"schedule{schedule.pk}")
        for s in final.shifts
    ]
    return _ics_response(build_calendar(schedule.name, events), f"schedule-{schedule.pk}.ics")


def my_shifts_feed(request, token: str):
    """The token owner's own shifts on every schedule of their teams."""
    user = _user_for_token(token)
    start, end = _window()
    events = [
        (shift, f"On call — {schedule.name}", f"schedule{schedule.pk}")
        for schedule, shift in selectors.shifts_of_user(user, start, end)
    ]
    return _ics_response(build_calendar("My on-call shifts", events), "my-shifts.ics")
