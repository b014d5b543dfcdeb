"""REST API for schedules: who is on call, and the shifts of a schedule over a window.

Times go in and out as ISO 8601 with an offset (`2026-11-24T09:00:00+01:00`); a time without an
offset is refused rather than guessed.
"""

from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from oncall import access
from oncall.models import Team

from . import selectors
from .models import Schedule

MAX_WINDOW = timedelta(days=366)


def parse_instant(value: str | None, field: str, default: datetime | None = None) -> datetime:
    """An aware datetime from ISO 8601 text; a clear 400 naming the field otherwise."""
    if not value:
        if default is not None:
            return default
        raise ValidationError({field: ["This parameter is required (ISO 8601 with an offset)."]})
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "+") if value.count(" ") == 1 else value)
    except ValueError:
        raise ValidationError(
            {field: [f"“{value}” is not an ISO 8601 date-time, e.g. 2026-11-24T09:00:00+01:00."]}
        ) from None
    if timezone.is_naive(parsed):
        raise ValidationError({field: ["Give the time with an offset, e.g. +01:00 or Z."]})
    if not 1970 <= parsed.year <= 2999:
        raise ValidationError({field: ["Give a time between the years 1970 and 2999."]})
    return parsed


def parse_window(params, default_days: int = 14) -> tuple[datetime, datetime]:
    start = parse_instant(params.get("start"), "start", default=timezone.now())
    end = parse_instant(params.get("end"), "end", default=start + timedelta(days=default_days))
    if end <= start:
        raise ValidationError({"end": ["end must be after start."]})
    if end - start > MAX_WINDOW:
        raise ValidationError({"end": ["The window may be at most 366 days long."]})
    return start, end


class UserBrief(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.CharField()


class ScheduleBrief(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    team = serializers.CharField(source="team.slug")
    time_zone = serializers.CharField()


def _users(ids) -> dict[int, dict]:
    users = get_user_model().objects.filter(pk__in=set(ids)).select_related("profile")
    result = {}
    for user in users:
        profile = getattr(user, "profile", None)
        name = profile.name if profile else user.get_username()
        result[user.pk] = {"id": user.pk, "username": user.get_username(), "name": name}
    return result


def _shift_json(shift, users, zone) -> dict:
    return {
        "user": users.get(shift.user_id),
        "start": shift.start.astimezone(zone).isoformat(),
        "end": shift.end.astimezone(zone).isoformat(),
        "source": "override" if shift.override_id else "layer",
        "layer_id": shift.layer_id,
        "override_id": shift.override_id,
    }


def _visible_schedules(user):
    schedules = Schedule.objects.select_related("team")
    team_ids = access.visible_team_ids(user)
    return schedules if team_ids is None else schedules.filter(team_id__in=team_ids)


class ShiftOut(serializers.Serializer):
    user = UserBrief()
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    source = serializers.ChoiceField(choices=["layer", "override"])
    layer_id = serializers.IntegerField(allow_null=True)
    override_id = serializers.IntegerField(allow_null=True)


class GapOut(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()


ONCALL_RESPONSE = inline_serializer(
    "OnCallResponse",
    {
        "at": serializers.DateTimeField(),
        "results": inline_serializer(
            "OnCallRow",
            {
                "schedule": ScheduleBrief(),
                "at": serializers.DateTimeField(),
                "on_call": ShiftOut(allow_null=True),
            },
            many=True,
        ),
    },
)
SHIFTS_RESPONSE = inline_serializer(
    "ScheduleShiftsResponse",
    {
        "schedule": ScheduleBrief(),
        "start": serializers.DateTimeField(),
        "end": serializers.DateTimeField(),
        "shifts": ShiftOut(many=True),
        "gaps": GapOut(many=True),
    },
)
ISO = "ISO 8601 date-time with an offset, e.g. 2026-11-24T09:00:00+01:00"


class OnCallView(APIView):
    """Who is on call at `at` (default now) on each schedule of the caller's teams.

    Filter with `team` (id or slug). Responders and leads see their teams; superusers all.
    """

    @extend_schema(
        parameters=[
            OpenApiParameter("at", OpenApiTypes.DATETIME, description=f"{ISO}; default now"),
            OpenApiParameter("team", OpenApiTypes.STR, description="Team id or slug"),
        ],
        responses=ONCALL_RESPONSE,
    )
    def get(self, request):
        at = parse_instant(request.query_params.get("at"), "at", default=timezone.now())
        schedules = _visible_schedules(request.user)
        team = request.query_params.get("team")
        if team:
            lookup = {"pk": int(team)} if team.isdigit() else {"slug": team}
            if not Team.objects.filter(**lookup).exists():
                raise ValidationError({"team": [f"No team “{team}”."]})
            schedules = schedules.filter(**{f"team__{k}": v for k, v in lookup.items()})
        schedules = list(schedules.order_by("team__name", "name"))
        on_call = selectors.who_is_on_call_many(schedules, at)
        users = _users(s.user_id for s in on_call.values() if s is not None)
        results = []
        for schedule in schedules:
            shift = on_call.get(schedule.pk)
            results.append(
                {
                    "schedule": ScheduleBrief(schedule).data,
                    "at": at.astimezone(schedule.zone).isoformat(),
                    "on_call": _shift_json(shift, users, schedule.zone) if shift else None,
                }
            )
        return Response({"at": at.isoformat(), "results": results})


class ScheduleShiftsView(APIView):
    """The final shifts of one schedule between `start` and `end` (at most 366 days), with the
    gaps where nobody is on call. Times are given in the schedule's zone, with offsets."""

    @extend_schema(
        parameters=[
            OpenApiParameter("start", OpenApiTypes.DATETIME, description=f"{ISO}; default now"),
            OpenApiParameter(
                "end", OpenApiTypes.DATETIME, description=f"{ISO}; default start + 14 days"
            ),
        ],
        responses=SHIFTS_RESPONSE,
    )
    def get(self, request, pk: int):
        schedule = get_object_or_404(_visible_schedules(request.user), pk=pk)
        start, end = parse_window(request.query_params)
        final = selectors.final_schedule(schedule, start, end)
        users = _users(s.user_id for s in final.shifts)
        zone = schedule.zone
        return Response(
            {
                "schedule": ScheduleBrief(schedule).data,
                "start": start.astimezone(zone).isoformat(),
                "end": end.astimezone(zone).isoformat(),
                "shifts": [_shift_json(s, users, zone) for s in final.shifts],
                "gaps": [
                    {
                        "start": g.start.astimezone(zone).isoformat(),
                        "end": g.end.astimezone(zone).isoformat(),
                    }
                    for g in final.gaps
                ],
            }
        )
