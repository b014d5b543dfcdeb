"""Pages of the schedules app: the list, a schedule's page (timeline, overrides, "cover me"),
and the reader's own shifts with their calendar links."""

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from oncall import access
from oncall.forms import add_service_errors

from . import rotation, selectors, services, timeline
from .forms import OverrideForm, TakeShiftForm
from .models import Override, Schedule

OBSERVER_REASON = (
    "Observers read their teams' reports and published postmortems. Schedules are for the "
    "teams' leads and responders."
)
OTHER_TEAM_REASON = (
    "This schedule belongs to a team you are not a lead or responder of, so you can't see it."
)
TIMELINE_DAYS = 14
MY_SHIFTS_DAYS = 28
ON_CALL_SHOWN_UNTIL = timedelta(days=180)
HISTORY = timedelta(days=35)  # how far back the schedule page looks for the start of a shift


def _now() -> datetime:
    return timezone.now().replace(microsecond=0)


# --- the list ----------------------------------------------------------------------------------


@login_required
def schedule_list(request):
    """The schedules of the reader's teams, with team, time zone and who is on call now
    (observers: 403). A fixed number of queries, whatever the number of schedules."""
    user = request.user
    if access.is_observer_only(user):
        raise PermissionDenied(OBSERVER_REASON)
    schedules = list(selectors.schedule_list(team_ids=access.visible_team_ids(user)))
    now = _now()
    on_call = selectors.who_is_on_call_many(schedules, now) if schedules else {}
    names = selectors.people(s.user_id for s in on_call.values() if s is not None)
    for schedule in schedules:
        shift = on_call.get(schedule.pk)
        schedule.on_call = shift
        person = names.get(shift.user_id) if shift is not None else None
        schedule.on_call_name = person.name if person is not None else ""
        # A shift found to run past the lookahead of the maths (a one-person rotation) has no
        # end worth showing.
        far = shift is None or shift.end - now > ON_CALL_SHOWN_UNTIL
        schedule.on_call_until = None if far else shift.end
    return render(request, "schedules/schedule_list.html", {"schedules": schedules})


# --- one schedule ------------------------------------------------------------------------------


def _readable_schedule(user, pk: int) -> Schedule:
    """The schedule, if the user may read it: 404 when there is none, the 403 page otherwise."""
    schedule = get_object_or_404(Schedule.objects.select_related("team"), pk=pk)
    if not access.can_read_team(user, schedule.team_id):
        raise PermissionDenied(
            OBSERVER_REASON if access.is_observer_only(user) else OTHER_TEAM_REASON
        )
    return schedule


@dataclass(frozen=True)
class ShiftRow:
    """A row of the shift table: one piece of the final schedule (or a gap)."""

    start: datetime
    end: datetime
    user_id: int | None  # None: nobody on call
    name: str
    override: bool
    current: bool
    started_long_ago: bool  # before the stretch of time looked at: `start` is not the real one
    takeable: bool  # someone else's, not over: the viewer may take it
    take_start: datetime  # what "Take this shift" covers: from now on for the current one


@dataclass(frozen=True)
class OnCall:
    name: str
    until: datetime | None  # None: beyond the picture
    since: datetime | None


def _person_options(viewer, people: dict[int, selectors.Person], lead: bool):
    """(user id, label) choices for "Who covers": the viewer first, then (leads) the team."""
    own = people.get(viewer.pk)
    choices = [(viewer.pk, f"Me ({own.name if own else viewer.get_username()})")]
    if lead:
        others = sorted(
            (p for p in people.values() if p.role and p.id != viewer.pk),
            key=lambda p: (p.name.casefold(), p.id),
        )
        choices += [(p.id, p.name) for p in others]
    return choices


def _render_detail(request, schedule: Schedule, *, status: int = 200, form=None):
    """The schedule page; a bound form with errors replaces the blank one, so whatever the
    person typed comes back next to its error. A fixed number of queries."""
    user = request.user
    viewer_zone = timezone.get_current_timezone()
    now = _now()
    start, end = timeline.window(now, viewer_zone, TIMELINE_DAYS)
    # Computed from further back than the picture shows, so that the shift going on has its
    # real start (the picture clips; its titles and the table keep the real times).
    since = start - HISTORY
    layers, overrides = selectors.load_rotations([schedule.pk], since, end)[schedule.pk]
    zone = schedule.zone
    final = rotation.final_schedule(layers, overrides, zone, since, end)
    by_id = {layer.id: layer for layer in layers}
    named_layers = selectors.layer_names(schedule.pk)
    layer_rows = [
        timeline.TimelineRow(
            label=name,
            shifts=rotation.layer_shifts(by_id[pk], zone, since, end) if pk in by_id else (),
        )
        for pk, name, _ in named_layers
    ]
    upcoming = selectors.upcoming_overrides(schedule.pk, now)
    user_ids = {s.user_id for row in layer_rows for s in row.shifts}
    user_ids |= {s.user_id for s in final.shifts}
    people = selectors.people(user_ids | {user.pk}, team_id=schedule.team_id)
    names = {pk: p.name for pk, p in people.items()}
    for override in upcoming:
        names.setdefault(override.user_id, _name(override.user))

    rows = [*layer_rows, timeline.TimelineRow("Final", final.shifts, final.gaps, final=True)]
    picture = timeline.build(
        rows=rows, names=names, start=start, end=end, now=now, zone=viewer_zone, title=schedule.name
    )

    can_act = access.can_act_on_team(user, schedule.team_id)
    lead = access.can_edit_team(user, schedule.team_id)

    # The final schedule from now on, as a table: the text alternative of the picture.
    pieces = sorted(
        [(s.start, s.end, s.user_id, s.override_id is not None) for s in final.shifts]
        + [(g.start, g.end, None, False) for g in final.gaps],
        key=lambda piece: piece[0],
    )
    table = [
        ShiftRow(
            start=p_start,
            end=p_end,
            user_id=user_id,
            name=names.get(user_id, f"User {user_id}") if user_id is not None else "",
            override=is_override,
            current=p_start <= now < p_end,
            started_long_ago=p_start <= since,
            takeable=can_act and user_id is not None and user_id != user.pk,
            take_start=max(p_start, now),
        )
        for p_start, p_end, user_id, is_override in pieces
        if p_end > now
    ]

    # Who is on call now, and next.
    now_stretch, next_stretch = timeline.now_and_next(final.shifts, now, end)
    current = next_up = None
    if now_stretch is not None:
        current = OnCall(names.get(now_stretch.user_id, "?"), now_stretch.end, now_stretch.start)
    if next_stretch is not None:
        next_up = OnCall(names.get(next_stretch.user_id, "?"), next_stretch.end, next_stretch.start)
    gap_now = next((g for g in final.gaps if g.start <= now < g.end), None)

    if form is None and can_act:
        form = OverrideForm(
            people=_person_options(user, people, lead),
            zone=viewer_zone,
            now=now,
            lead=lead,
            initial={"who": user.pk},
        )
    context = {
        "schedule": schedule,
        "timeline": picture,
        # render_svg escapes every text it writes.
        "timeline_svg": mark_safe(timeline.render_svg(picture)),
        "shift_rows": table,
        "gaps": [g for g in final.gaps if g.end > now],
        "current": current,
        "next_up": next_up,
        "gap_now": gap_now,
        "overrides": [
            {
                "override": o,
                "who": names.get(o.user_id) or _name(o.user),
                "by": _name(o.created_by) if o.created_by_id else "",
                "can_delete": lead or (o.created_by_id is not None and o.created_by_id == user.pk),
            }
            for o in upcoming
        ],
        "can_act": can_act,
        "is_lead": lead,
        "form": form,
        "viewer_zone": getattr(viewer_zone, "key", str(viewer_zone)),
        "window_end": end,
        "since": since,
    }
    return render(request, "schedules/schedule_detail.html", context, status=status)


def _name(user) -> str:
    if user is None:
        return ""
    profile = getattr(user, "profile", None)
    return profile.name if profile is not None else user.get_username()


@login_required
def schedule_detail(request, pk: int):
    """The schedule's page: who is on call now and next, the next two weeks as a picture and a
    table, the upcoming overrides, and (for leads and responders) the override form."""
    return _render_detail(request, _readable_schedule(request.user, pk))


def _acting_schedule(user, pk: int) -> Schedule:
    schedule = _readable_schedule(user, pk)
    if not access.can_act_on_team(user, schedule.team_id):
        raise PermissionDenied("Only the team's leads and responders can change who is on call.")
    return schedule


def _page_url(schedule: Schedule, anchor: str = "") -> str:
    url = reverse("schedules:detail", args=[schedule.pk])
    return f"{url}#{anchor}" if anchor else url


def _override_message(override: Override, who: str) -> str:
    return (
        f"Override added: {who} is on call "
        f"{timeline.format_span(override.start, override.end, timezone.get_current_timezone())}."
    )


@login_required
@require_POST
def override_add(request, pk: int):
    """Add an override ("cover me from … to …"); errors come back next to the fields (400)."""
    user = request.user
    schedule = _acting_schedule(user, pk)
    lead = access.can_edit_team(user, schedule.team_id)
    people = selectors.people({user.pk}, team_id=schedule.team_id)
    form = OverrideForm(
        request.POST,
        people=_person_options(user, people, lead),
        zone=timezone.get_current_timezone(),
        now=_now(),
        lead=lead,
    )
    if form.is_valid():
        data = form.cleaned_data
        who = request.user if data["who"] == user.pk else None
        if who is None:
            who = get_object_or_404(get_user_model(), pk=data["who"])
        try:
            override = services.override_create(
                schedule=schedule,
                user=who,
                start=data["start"],
                end=data["end"],
                created_by=user,
                reason=data["reason"].strip(),
            )
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _override_message(override, people[who.pk].name))
            return redirect(_page_url(schedule, "overrides"))
    return _render_detail(request, schedule, status=400, form=form)


@login_required
@require_POST
def override_take(request, pk: int):
    """ "Take this shift": an override for the viewer over exactly that shift (from now on,
    for the shift going on), if it is still someone else's."""
    user = request.user
    schedule = _acting_schedule(user, pk)
    form = TakeShiftForm(request.POST)
    problem = ""
    if not form.is_valid():
        problem = "That shift could not be read. Reload the page and try again."
    else:
        try:
            override = services.override_take_shift(
                schedule=schedule,
                user=user,
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
                now=_now(),
            )
        except ValidationError as error:
            problem = " ".join(error.messages)
        else:
            names = selectors.people({user.pk})
            name = names[user.pk].name if user.pk in names else "you"
            messages.success(request, _override_message(override, name))
            return redirect(_page_url(schedule, "overrides"))
    messages.error(request, f"The shift was not taken. {problem}")
    return _render_detail(request, schedule, status=400)


@login_required
@require_POST
def override_delete(request, pk: int, override_pk: int):
    """Delete an override: its maker may, and so may the team's leads."""
    user = request.user
    schedule = _readable_schedule(user, pk)
    override = get_object_or_404(
        Override.objects.select_related("user__profile"), pk=override_pk, schedule=schedule
    )
    mine = override.created_by_id is not None and override.created_by_id == user.pk
    if not (mine or access.can_edit_team(user, schedule.team_id)):
        raise PermissionDenied(
            "Only the person who added an override, or a lead of the team, can delete it."
        )
    zone = timezone.get_current_timezone()
    description = (
        f"{_name(override.user)}, {timeline.format_span(override.start, override.end, zone)}"
    )
    services.override_delete(override=override)
    messages.success(request, f"Override deleted: {description}.")
    return redirect(_page_url(schedule, "overrides"))


# --- my shifts and calendar links --------------------------------------------------------------


def _feed_url(name: str, *args) -> str:
    return f"{settings.BASE_URL}{reverse(name, args=args)}"


@login_required
def my_shifts(request):
    """The reader's shifts over the next four weeks on every schedule of their teams, and the
    secret calendar links to subscribe to them."""
    user = request.user
    if access.is_observer_only(user):
        raise PermissionDenied(OBSERVER_REASON)
    now = _now()
    until = now + timedelta(days=MY_SHIFTS_DAYS)
    shifts = selectors.shifts_of_user(user, now, until)
    token = services.calendar_token_for(user)
    schedules = selectors.schedule_list(team_ids=access.acting_team_ids(user))
    context = {
        "shifts": [
            {
                "schedule": schedule,
                "shift": shift,
                "override": shift.override_id is not None,
                "current": shift.start <= now,
            }
            for schedule, shift in shifts
        ],
        "until": until,
        "days": MY_SHIFTS_DAYS,
        "my_feed": _feed_url("calendar:my_shifts", token),
        "schedule_feeds": [
            {"schedule": s, "url": _feed_url("calendar:schedule", token, s.pk)} for s in schedules
        ],
    }
    return render(request, "schedules/my_shifts.html", context)


@login_required
@require_POST
def calendar_reset(request):
    """A new calendar secret: every old feed link stops working at once."""
    services.calendar_token_reset(user=request.user)
    messages.success(
        request,
        "Calendar link reset. The old links no longer work: subscribe again with the new ones "
        "below.",
    )
    return redirect(f"{reverse('schedules:mine')}#calendar")
