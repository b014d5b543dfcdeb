"""Schedules, layers (rotations) and overrides in the admin, for the leads of their teams
(docs/permissions.md).

Everything is team-scoped through `oncall.admin.TeamScopedAdmin` / `TeamScopedInline`: a lead sees
and edits only their own teams' schedules, layers and overrides, and picks only their teams' people.
Rules live in `schedules.services` (`layer_validate`, `layer_record_version`, `override_validate`);
the forms here call them and turn their errors into form errors, so a bad input never gets past
the form (and never into a 500).

Times on the change page of a schedule, a layer or an override are shown and typed in the
schedule's own time zone (handoffs are wall-clock times there), not in the lead's.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Count, Prefetch, Q, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import dateformat, timezone
from django.utils.html import format_html

from oncall.admin import (
    OrderedRowForm,
    TeamListFilter,
    TeamScopedAdmin,
    TeamScopedInline,
    in_chosen_order,
    is_scoped,
    led_team_ids,
    renumber_positions,
    time_zone_field,
)
from oncall.models import Membership, Role

from . import selectors, services
from .models import Layer, LayerMember, LayerRestriction, Override, Schedule
from .rotation import RotationError

User = get_user_model()

PREVIEW_DAYS = 14
NO_MEMBERS_ERROR = "A rotation needs at least one member."
ACTING_ROLES = (Role.LEAD, Role.RESPONDER)
WEEKDAY_CHOICES = list(enumerate(["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]))
DAY_TIME = "D j M H:i"  # Mon 12 Jan 09:00, in the preview's table
FULL_TIME = "D j M Y H:i"  # Mon 12 Jan 2026 09:00, in warnings and errors


def person_name(user) -> str:
    try:
        return user.profile.name
    except AttributeError:  # no profile (RelatedObjectDoesNotExist is an AttributeError)
        return user.get_full_name() or user.get_username()


def person_label(user) -> str:
    """How a person is offered in a select: "Ada Lovelace (ada)"."""
    name, username = person_name(user), user.get_username()
    return username if name == username else f"{name} ({username})"


def local(value: datetime, zone: ZoneInfo, fmt: str = FULL_TIME) -> str:
    return dateformat.format(timezone.localtime(value, zone), fmt)


def acting_people(team_ids: Iterable[int] | None, also: Iterable[int] = ()) -> QuerySet:
    """Who may be put on call in the teams: their leads and responders (observers never act),
    plus the users in `also` (people already in the rows shown, so that a row of someone who
    has since left the team still shows who it is). None means every team."""
    memberships = Membership.objects.filter(role__in=ACTING_ROLES)
    if team_ids is not None:
        memberships = memberships.filter(team_id__in=list(team_ids))
    wanted = Q(pk__in=memberships.values("user_id"))
    also = [pk for pk in also if pk is not None]
    if also:
        wanted |= Q(pk__in=also)
    return User._default_manager.filter(wanted).select_related("profile").order_by("username")


def acting_user_ids(team_id: int) -> set[int]:
    return set(
        Membership.objects.filter(team_id=team_id, role__in=ACTING_ROLES).values_list(
            "user_id", flat=True
        )
    )


def offer_people(field, queryset: QuerySet) -> None:
    field.queryset = queryset
    field.label_from_instance = person_label


def visible_team_ids(request) -> list[int] | None:
    return led_team_ids(request) if is_scoped(request) else None


# ---------------------------------------------------------------------------------------------
# The final schedule of the next 14 days
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PreviewRow:
    who: str  # a display name, or "" for a gap
    start: str  # formatted in the schedule's zone
    end: str
    source: str  # the layer's name, "override", or "" for a gap
    is_gap: bool = False


@dataclass(frozen=True)
class SchedulePreview:
    """Who is on call on a schedule over the next days, ready to show: every time is text in the
    schedule's zone. `warnings` say where nobody is on call."""

    zone: str
    start: str
    end: str
    rows: tuple[PreviewRow, ...]
    warnings: tuple[str, ...]
    error: str = ""


def gap_warning(gap_start: datetime, gap_end: datetime, window_end: datetime, zone) -> str:
    text = f"Nobody is on call from {local(gap_start, zone)} to {local(gap_end, zone)} ({zone.key})"
    if gap_end >= window_end:
        text += f", the end of the {PREVIEW_DAYS} days shown"
    return text + "."


def schedule_preview(schedule: Schedule, *, now: datetime | None = None) -> SchedulePreview:
    """The final schedule of the next 14 days with people's and layers' names: at most six
    queries (four for `selectors.final_schedule`, one for the people, one for the layers),
    however many layers, members and overrides there are."""
    zone = schedule.zone
    start = (now or timezone.now()).replace(second=0, microsecond=0)
    end = start + timedelta(days=PREVIEW_DAYS)
    shown = (local(start, zone), local(end, zone))
    try:
        final = selectors.final_schedule(schedule, start, end)
    except RotationError as error:
        message = f"The final schedule could not be worked out: {error}."
        return SchedulePreview(zone.key, *shown, rows=(), warnings=(), error=message)
    user_ids = {shift.user_id for shift in final.shifts}
    names = {}
    if user_ids:
        names = {
            user.pk: person_name(user)
            for user in User._default_manager.filter(pk__in=user_ids).select_related("profile")
        }
    layer_ids = {shift.layer_id for shift in final.shifts if shift.layer_id is not None}
    layers = {}
    if layer_ids:
        layers = dict(Layer.objects.filter(pk__in=layer_ids).values_list("pk", "name"))
    pieces = [
        (
            shift.start,
            PreviewRow(
                who=names.get(shift.user_id, f"user #{shift.user_id} (deleted)"),
                start=local(shift.start, zone, DAY_TIME),
                end=local(shift.end, zone, DAY_TIME),
                source="override"
                if shift.override_id is not None
                else layers.get(shift.layer_id, "layer"),
            ),
        )
        for shift in final.shifts
    ]
    pieces += [
        (
            gap.start,
            PreviewRow(
                who="",
                start=local(gap.start, zone, DAY_TIME),
                end=local(gap.end, zone, DAY_TIME),
                source="",
                is_gap=True,
            ),
        )
        for gap in final.gaps
    ]
    pieces.sort(key=lambda piece: piece[0])
    warnings = tuple(gap_warning(gap.start, gap.end, end, zone) for gap in final.gaps)
    return SchedulePreview(
        zone.key, *shown, rows=tuple(row for _, row in pieces), warnings=warnings
    )


class SchedulePreviewMixin:
    """A change page showing the 14-day final schedule of a schedule (a read-only field,
    `final_schedule_preview`) and warning on GET about the gaps in it. Computed once per page."""

    def schedule_of(self, obj) -> Schedule:
        raise NotImplementedError

    def preview_for(self, obj) -> SchedulePreview:
        cached = getattr(obj, "_oncall_preview", None)
        if cached is None:
            cached = schedule_preview(self.schedule_of(obj))
            obj._oncall_preview = cached
        return cached

    @admin.display(description=f"next {PREVIEW_DAYS} days")
    def final_schedule_preview(self, obj):
        if obj is None or obj.pk is None:
            return "Shown once saved."
        return render_to_string(
            "admin/schedules/final_schedule_preview.html",
            {"preview": self.preview_for(obj), "days": PREVIEW_DAYS},
        )

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and obj.pk is not None and request.method == "GET":
            preview = self.preview_for(obj)
            if preview.error:
                messages.error(request, preview.error)
            elif preview.warnings:
                text = preview.warnings[0]
                if len(preview.warnings) > 1:
                    more = len(preview.warnings) - 1
                    text += (
                        f" And {more} more gap{'s' if more != 1 else ''} in the next "
                        f"{PREVIEW_DAYS} days: see the final schedule below."
                    )
                messages.warning(request, text)
        return super().render_change_form(request, context, add, change, form_url, obj)


class ScheduleZoneMixin:
    """Shows and reads the times of a change page in the schedule's zone: handoffs are wall-clock
    times there, so a rotation's start and an override's window are typed there too. The zone is
    the stored one on a change page, the chosen schedule's on an add page."""

    zone_field = "schedule__time_zone"  # the path from the admin's model to the zone

    def stored_zone(self, request, object_id) -> str | None:
        return (
            self.get_queryset(request)
            .filter(pk=object_id)
            .values_list(self.zone_field, flat=True)
            .first()
        )

    def chosen_zone(self, request) -> str | None:
        pk = request.POST.get("schedule") or request.GET.get("schedule")
        if not pk:
            return None
        schedules = Schedule.objects.filter(pk=pk)
        if is_scoped(request):
            schedules = schedules.filter(team_id__in=led_team_ids(request))
        return schedules.values_list("time_zone", flat=True).first()

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            name = (
                self.stored_zone(request, unquote(object_id))
                if object_id
                else self.chosen_zone(request)
            )
            zone = ZoneInfo(name) if name else None
        except (ValueError, ValidationError, LookupError):
            zone = None  # a bad id or zone: the admin's own handling answers
        request.oncall_schedule_zone = zone
        if zone is None:
            return super().changeform_view(request, object_id, form_url, extra_context)
        with timezone.override(zone):
            response = super().changeform_view(request, object_id, form_url, extra_context)
            # Render now, while the zone is active: widgets convert datetimes when rendered.
            if hasattr(response, "render") and not response.is_rendered:
                response.render()
        return response


def zone_help(request, what: str) -> str:
    zone = getattr(request, "oncall_schedule_zone", None)
    where = f"{zone.key}, the schedule's time zone" if zone else "the schedule's time zone"
    return f"{what} In {where}."


def set_time_help(request, fields, texts: dict[str, str]) -> None:
    for name, text in texts.items():
        if name in fields:
            fields[name].help_text = zone_help(request, text)


# ---------------------------------------------------------------------------------------------
# Shared form pieces
# ---------------------------------------------------------------------------------------------


class PeopleRowsFormSet(forms.BaseInlineFormSet):
    """Rows naming people. Reads the choices of the people selects once for the whole formset
    instead of once per row, so a page with many rows costs no more queries than one with a
    few."""

    shared_choice_fields: tuple[str, ...] = ("user",)

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        if self.instance.pk is not None:  # each row's parent, without a query per row
            setattr(form.instance, self.fk.name, self.instance)
        shared = self.__dict__.setdefault("_shared_choices", {})
        for name in self.shared_choice_fields:
            field = form.fields.get(name)
            if field is None or not hasattr(field, "queryset"):
                continue
            if name not in shared:
                shared[name] = list(field.choices)
            field.choices = shared[name]
        return form

    def live_forms(self) -> list[forms.BaseForm]:
        """The rows that will exist after saving (valid or not), in the order shown."""
        live = []
        for index, form in enumerate(self.forms):
            if self.can_delete and self._should_delete_form(form):
                continue
            if form.instance.pk is None and (
                index < self.initial_form_count() or not form.has_changed()
            ):
                continue  # an untouched extra row, or a row naming no object of this parent
            live.append(form)
        return live


class LayerForm(forms.ModelForm):
    """A layer's own fields, checked by `services.layer_validate` (members are checked by the
    members' inline, on the layer's page)."""

    turn_count = forms.IntegerField(
        initial=1,
        label="Turn count",
        help_text="Length of one turn, e.g. 12 hours, 1 day, 1 week.",
        widget=forms.NumberInput(attrs={"class": "vIntegerField"}),
    )

    class Meta:
        model = Layer
        fields = (
            "schedule",
            "name",
            "priority",
            "start",
            "end",
            "turn_unit",
            "turn_count",
            "handoff_time",
        )

    def clean(self):
        cleaned = super().clean()
        try:
            services.layer_validate(
                turn_count=cleaned.get("turn_count"),
                members=(),  # checked by LayerMemberFormSet: the "members" error is dropped
                start=cleaned.get("start"),
                end=cleaned.get("end"),
            )
        except ValidationError as error:
            for field, errors in error.message_dict.items():
                if field in self.fields and field not in self.errors:
                    self.add_error(field, errors)
        return cleaned


def record_version(request, layer: Layer) -> None:
    """Freeze the layer's configuration from now on (past shifts keep theirs). A layer without
    members can't have one: say so rather than fail."""
    try:
        services.layer_record_version(layer=layer)
    except ValidationError as error:
        if "members" in error.message_dict:
            messages.warning(
                request,
                f"Add members to “{layer.name}” on its page: until then it puts nobody on call.",
            )
        else:
            messages.error(request, f"“{layer.name}”: {' '.join(error.messages)}")


# ---------------------------------------------------------------------------------------------
# Layer members and restrictions (inlines of the layer page)
# ---------------------------------------------------------------------------------------------


class LayerChildInline(TeamScopedInline):
    """An inline whose parent is a layer: the team is the layer's schedule's."""

    def parent_team_id(self, obj) -> int | None:
        if isinstance(obj, Layer):
            return obj.schedule.team_id if obj.schedule_id else None
        return super().parent_team_id(obj)


class LayerMemberForm(OrderedRowForm):
    order_help_text = "Turns go in this order. Leave empty to add at the end."

    class Meta:
        model = LayerMember
        fields = ("user",)


class LayerMemberFormSet(PeopleRowsFormSet):
    """The rotation's turns: at least one, only the team's leads and responders (a person may
    take several turns), numbered 0..n-1 in the order shown."""

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        live = self.live_forms()
        if not live:
            raise ValidationError(NO_MEMBERS_ERROR, code="no_members")
        layer = self.instance
        if layer.schedule_id is None:
            return  # the layer's own form has the error
        team = layer.schedule.team
        allowed = acting_user_ids(team.pk)
        for form in live:
            user = form.cleaned_data.get("user")
            if user is not None and form.has_changed() and user.pk not in allowed:
                form.add_error(
                    "user", f"{person_name(user)} is not a lead or responder of {team.name}."
                )

    def save(self, commit=True):
        live = in_chosen_order(self.live_forms())
        for position, form in enumerate(live):
            form.instance.position = position
        saved = super().save(commit)
        if commit:
            renumber_positions(self.instance.members.all(), [form.instance.pk for form in live])
        return saved


class LayerMemberInline(LayerChildInline, admin.TabularInline):
    model = LayerMember
    form = LayerMemberForm
    formset = LayerMemberFormSet
    fields = ("order", "user")
    ordering = ("position", "id")
    extra = 1
    verbose_name = "member"
    verbose_name_plural = "members, in the order they take turns"
    classes = ("oncall-steps",)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user__profile")

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        field = formset.form.base_fields.get("user")
        if field is not None:
            if obj is not None and obj.schedule_id:
                current = obj.members.values_list("user_id", flat=True)
                offer_people(field, acting_people([obj.schedule.team_id], current))
            else:
                offer_people(field, acting_people(visible_team_ids(request)))
            field.help_text = "A lead or responder of the team. A person may take several turns."
        return formset


class LayerRestrictionForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=WEEKDAY_CHOICES,
        coerce=int,
        widget=forms.CheckboxSelectMultiple(attrs={"class": "oncall-checkboxes"}),
        label="Days",
        help_text="Days on which the window starts.",
        error_messages={"required": "Pick at least one day on which the window starts."},
    )

    class Meta:
        model = LayerRestriction
        fields = ("weekdays", "start_time", "end_time")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        raw = self.initial.get("weekdays")
        if isinstance(raw, str):
            self.initial["weekdays"] = [int(day) for day in raw.split(",") if day.strip()]

    def clean_weekdays(self) -> str:
        return ",".join(str(day) for day in sorted(set(self.cleaned_data["weekdays"])))


END_TIME_HELP = "An end at or before the start crosses midnight; equal to the start: 24 hours."


class LayerRestrictionInline(LayerChildInline, admin.TabularInline):
    model = LayerRestriction
    form = LayerRestrictionForm
    fields = ("weekdays", "start_time", "end_time")
    extra = 0
    verbose_name = "restriction"
    verbose_name_plural = "restrictions: windows in which the layer is active (none: always active)"
    classes = ("oncall-steps",)

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        fields = formset.form.base_fields
        if "end_time" in fields:
            fields["end_time"].help_text = END_TIME_HELP
        return formset


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------

LAYER_TIME_HELP = {
    "start": "When the rotation starts (the first handoff).",
    "end": "Optional: the rotation stops.",
    "handoff_time": "Time of day of the handoff.",
}


@admin.register(Layer)
class LayerAdmin(SchedulePreviewMixin, ScheduleZoneMixin, TeamScopedAdmin):
    team_field = "schedule__team"
    form = LayerForm
    inlines = [LayerMemberInline, LayerRestrictionInline]
    list_display = (
        "name",
        "schedule",
        "team",
        "priority",
        "turn",
        "handoff_time",
        "member_count",
        "start",
        "end",
    )
    list_filter = (TeamListFilter, ("schedule", admin.RelatedOnlyFieldListFilter))
    list_select_related = ("schedule__team",)
    search_fields = ("name", "schedule__name", "schedule__team__name")

    def schedule_of(self, obj: Layer) -> Schedule:
        return obj.schedule

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("schedule__team")
            .annotate(_member_count=Count("members"))
        )

    def get_fieldsets(self, request, obj=None):
        fields = ["schedule", "name", "priority", "start", "end", "turn_unit", "turn_count"]
        fieldsets = [(None, {"fields": fields + ["handoff_time"]})]
        if obj is not None:
            fieldsets.append(
                (
                    f"The whole schedule “{obj.schedule.name}”: who is on call the next "
                    f"{PREVIEW_DAYS} days",
                    {"fields": ["final_schedule_preview"]},
                )
            )
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        # A layer stays on its schedule: its versions and members belong to that team.
        return ("schedule", "final_schedule_preview") if obj is not None else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        set_time_help(request, form.base_fields, LAYER_TIME_HELP)
        return form

    def save_related(self, request, form, formsets, change):
        """After the layer and its members and restrictions are saved, freeze the configuration
        as in force from now on: shifts already past keep the one they had."""
        super().save_related(request, form, formsets, change)
        record_version(request, form.instance)

    @admin.display(description="team", ordering="schedule__team__name")
    def team(self, obj: Layer):
        return obj.schedule.team

    @admin.display(description="turn")
    def turn(self, obj: Layer) -> str:
        unit = obj.turn_unit.rstrip("s") if obj.turn_count == 1 else obj.turn_unit
        return f"{obj.turn_count} {unit}"

    @admin.display(description="members", ordering="_member_count")
    def member_count(self, obj: Layer) -> int:
        return obj._member_count


# ---------------------------------------------------------------------------------------------
# Overrides
# ---------------------------------------------------------------------------------------------


def lock_schedule(schedule: Schedule) -> None:
    """Hold the schedule's row until the admin's transaction ends, as `override_create` does, so
    two leads saving overlapping overrides of one person at once can't both pass the check."""
    list(Schedule.objects.select_for_update().filter(pk=schedule.pk).order_by().values("pk"))


class OverrideFormSet(PeopleRowsFormSet):
    """Overrides of one schedule: each checked by `services.override_validate`, and the rows of
    one post checked against each other (two new overlapping rows of one person)."""

    def clean(self):
        super().clean()
        schedule = self.instance
        if schedule.pk is None:
            return
        lock_schedule(schedule)
        live = self.live_forms()
        # Rows deleted or changed in this post: the database still has them as they were.
        moving = {
            form.instance.pk
            for form in self.initial_forms
            if form.instance.pk is not None and (form not in live or form.has_changed())
        }
        checked = []
        for form in live:
            if form.instance.pk is not None and not form.has_changed():
                continue
            if not hasattr(form, "cleaned_data") or form.errors:
                continue
            user, start, end = (form.cleaned_data.get(f) for f in ("user", "start", "end"))
            if user is None or start is None or end is None:
                continue
            if not self._validate(form, schedule, user, start, end, moving):
                continue
            checked.append((user.pk, start, end, form))
        self._check_each_other(schedule, checked)

    def _validate(self, form, schedule, user, start, end, moving: set[int]) -> bool:
        own = form.instance.pk
        try:
            services.override_validate(
                schedule=schedule, user=user, start=start, end=end, exclude_pk=own
            )
        except ValidationError as error:
            clash_only = set(error.message_dict) == {"start"}
            if (
                clash_only
                and moving
                and not self._clashes_outside(schedule, user, start, end, moving | {own})
            ):
                return True  # only with rows this post moves or deletes: checked below
            form.add_error(None, error)
            return False
        return True

    @staticmethod
    def _clashes_outside(schedule, user, start, end, exclude: set) -> bool:
        return (
            Override.objects.filter(schedule=schedule, user=user, start__lt=end, end__gt=start)
            .exclude(pk__in=[pk for pk in exclude if pk is not None])
            .exists()
        )

    def _check_each_other(self, schedule, rows) -> None:
        """Rows of one person, by start: each must start after every earlier one has ended."""
        zone = schedule.zone
        reach = None  # the row of this person reaching furthest so far: (user, start, end)
        for user_id, start, end, form in sorted(rows, key=lambda row: (row[0], row[1])):
            if reach is not None and reach[0] == user_id and start < reach[2]:
                form.add_error(
                    "start",
                    f"{form.cleaned_data['user']} already covers this schedule from "
                    f"{local(reach[1], zone)} to {local(reach[2], zone)} ({zone.key}) in "
                    "another row of this page; overrides of one person may not overlap.",
                )
            if reach is None or reach[0] != user_id or end > reach[2]:
                reach = (user_id, start, end)


OVERRIDE_TIME_HELP = {
    "start": "From when this person is on call, over every layer.",
    "end": "Until when.",
}


class OverrideRowForm(forms.ModelForm):
    """One override row: its window checked here (so the database constraint never answers
    first), clashes by the formset, which sees every row."""

    class Meta:
        model = Override
        fields = ("user", "start", "end", "reason")

    def clean(self):
        cleaned = super().clean()
        try:  # without a user, override_validate checks the window only
            services.override_validate(
                schedule=self.instance.schedule,
                user=None,
                start=cleaned.get("start"),
                end=cleaned.get("end"),
            )
        except ValidationError as error:
            self.add_error(None, error)
        return cleaned


class OverrideInline(TeamScopedInline, admin.TabularInline):
    model = Override
    form = OverrideRowForm
    formset = OverrideFormSet
    fields = ("user", "start", "end", "reason", "made_by")
    readonly_fields = ("made_by",)
    ordering = ("start", "id")
    extra = 1
    verbose_name_plural = "overrides still to come (past ones: in the override list)"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .filter(end__gt=timezone.now())
            # The schedule too: each row's title names it.
            .select_related("schedule", "user__profile", "created_by__profile")
        )

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        fields = formset.form.base_fields
        if "user" in fields and obj is not None:
            current = obj.overrides.filter(end__gt=timezone.now()).values_list("user_id", flat=True)
            offer_people(fields["user"], acting_people([obj.team_id], current))
            fields["user"].help_text = "A lead or responder of the team."
        set_time_help(request, fields, OVERRIDE_TIME_HELP)
        return formset

    @admin.display(description="created by")
    def made_by(self, obj: Override) -> str:
        if obj.pk is None:
            return "you, when saved"
        return person_name(obj.created_by) if obj.created_by_id else "—"


class OverrideForm(forms.ModelForm):
    class Meta:
        model = Override
        fields = ("schedule", "user", "start", "end", "reason")

    def clean(self):
        cleaned = super().clean()
        schedule = cleaned.get("schedule") or (
            self.instance.schedule if self.instance.schedule_id else None
        )
        user, start, end = (cleaned.get(f) for f in ("user", "start", "end"))
        if schedule is None:
            return cleaned
        if user is not None and user.pk not in acting_user_ids(schedule.team_id):
            self.add_error(
                "user", f"{person_name(user)} is not a lead or responder of {schedule.team}."
            )
            return cleaned
        if user is not None and start is not None and end is not None:
            lock_schedule(schedule)
            try:
                services.override_validate(
                    schedule=schedule, user=user, start=start, end=end, exclude_pk=self.instance.pk
                )
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


@admin.register(Override)
class OverrideAdmin(ScheduleZoneMixin, TeamScopedAdmin):
    team_field = "schedule__team"
    form = OverrideForm
    list_display = ("user_name", "schedule", "team", "starts", "ends", "reason", "made_by")
    list_filter = (TeamListFilter, ("schedule", admin.RelatedOnlyFieldListFilter))
    search_fields = ("user__username", "user__profile__display_name", "reason", "schedule__name")
    ordering = ("-start",)

    def get_queryset(self, request):
        # Here rather than in list_select_related, which the changelist skips once any is set.
        return (
            super()
            .get_queryset(request)
            .select_related("schedule__team", "user__profile", "created_by__profile")
        )

    def get_fields(self, request, obj=None):
        fields = ["schedule", "user", "start", "end", "reason"]
        return fields + ["made_by"] if obj is not None else fields

    def get_readonly_fields(self, request, obj=None):
        # An override stays on its schedule (its times are in that schedule's zone).
        return ("schedule", "made_by") if obj is not None else ()

    def get_form(self, request, obj=None, change=False, **kwargs):
        form = super().get_form(request, obj, change, **kwargs)
        fields = form.base_fields
        if "user" in fields:
            if obj is not None:
                offer_people(fields["user"], acting_people([obj.schedule.team_id], [obj.user_id]))
            else:
                offer_people(fields["user"], acting_people(visible_team_ids(request)))
            fields["user"].help_text = "A lead or responder of the schedule's team."
        set_time_help(request, fields, OVERRIDE_TIME_HELP)
        return form

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="who", ordering="user__username")
    def user_name(self, obj: Override) -> str:
        return person_name(obj.user)

    @admin.display(description="team", ordering="schedule__team__name")
    def team(self, obj: Override):
        return obj.schedule.team

    @admin.display(description="from", ordering="start")
    def starts(self, obj: Override) -> str:
        return f"{local(obj.start, obj.schedule.zone)} ({obj.schedule.time_zone})"

    @admin.display(description="to", ordering="end")
    def ends(self, obj: Override) -> str:
        return f"{local(obj.end, obj.schedule.zone)} ({obj.schedule.time_zone})"

    @admin.display(description="created by", ordering="created_by__username")
    def made_by(self, obj: Override) -> str:
        return person_name(obj.created_by) if obj.created_by_id else "—"


# ---------------------------------------------------------------------------------------------
# Schedules
# ---------------------------------------------------------------------------------------------


class LayerInline(TeamScopedInline, admin.TabularInline):
    """The schedule's layers in a table; members and restrictions on each layer's own page."""

    model = Layer
    form = LayerForm
    fields = (
        "name",
        "priority",
        "start",
        "end",
        "turn_unit",
        "turn_count",
        "handoff_time",
        "members_summary",
        "edit_link",
    )
    readonly_fields = ("members_summary", "edit_link")
    extra = 0
    verbose_name_plural = "layers (rotations): higher priority covers lower"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related("schedule")  # each row's title names it
            .prefetch_related(
                Prefetch(
                    "members",
                    queryset=LayerMember.objects.select_related("user__profile").order_by(
                        "position", "id"
                    ),
                )
            )
        )

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        set_time_help(request, formset.form.base_fields, LAYER_TIME_HELP)
        return formset

    @admin.display(description="members")
    def members_summary(self, obj: Layer) -> str:
        if obj.pk is None:
            return "Add them on the layer's page once saved."
        members = list(obj.members.all())
        if not members:
            return "Nobody yet: this layer puts nobody on call."
        return ", ".join(
            f"{number}. {person_name(member.user)}" for number, member in enumerate(members, 1)
        )

    @admin.display(description="members and restrictions")
    def edit_link(self, obj: Layer):
        if obj.pk is None:
            return "—"
        url = reverse(
            "admin:schedules_layer_change", args=[obj.pk], current_app=self.admin_site.name
        )
        return format_html('<a href="{}">Edit members and restrictions</a>', url)


class ScheduleForm(forms.ModelForm):
    time_zone = time_zone_field(help_text="Handoff times of the rotations are given in this zone.")

    class Meta:
        model = Schedule
        fields = ("team", "name", "description", "time_zone")


@admin.register(Schedule)
class ScheduleAdmin(SchedulePreviewMixin, ScheduleZoneMixin, TeamScopedAdmin):
    zone_field = "time_zone"
    team_field = "team"
    form = ScheduleForm
    inlines = [LayerInline, OverrideInline]
    list_display = ("name", "team", "time_zone", "layer_count")
    list_filter = (TeamListFilter, "time_zone")
    list_select_related = ("team",)
    search_fields = ("name", "team__name", "description")

    def schedule_of(self, obj: Schedule) -> Schedule:
        return obj

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_layer_count=Count("layers"))

    @admin.display(description="layers", ordering="_layer_count")
    def layer_count(self, obj: Schedule) -> int:
        return obj._layer_count

    def get_fieldsets(self, request, obj=None):
        fieldsets = [(None, {"fields": ["team", "name", "description", "time_zone"]})]
        if obj is not None:
            fieldsets.append(
                (
                    f"Who is on call: the final schedule of the next {PREVIEW_DAYS} days",
                    {"fields": ["final_schedule_preview"]},
                )
            )
        return fieldsets

    def get_readonly_fields(self, request, obj=None):
        return ("final_schedule_preview",) if obj is not None else ()

    def get_inline_instances(self, request, obj=None):
        # Layers and overrides come once the schedule (and so its time zone) exists.
        return [] if obj is None else super().get_inline_instances(request, obj)

    def save_formset(self, request, form, formset, change):
        if formset.model is Override:
            save_overrides(request, formset)
            return
        super().save_formset(request, form, formset, change)
        if formset.model is Layer:
            changed = [layer for layer, _ in formset.changed_objects]
            for layer in formset.new_objects + changed:
                record_version(request, layer)


def save_overrides(request, formset) -> None:
    """Deletions first, then changes, then new rows (created by the person saving)."""
    instances = formset.save(commit=False)
    for override in formset.deleted_objects:
        services.override_delete(override=override)
    for override in instances:
        if override.pk is None:
            override.created_by = request.user
        override.save()
    formset.save_m2m()
