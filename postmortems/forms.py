"""Forms of the postmortem pages. They parse and check input; every write is a call to
`postmortems.services`, whose refusals (`PostmortemError`) are shown next to the field at fault.

Times on the edit page are wall-clock times in the postmortem's own zone (the zone its issue
summary is written in), not the reader's: the hidden `shown_zone` says which zone the page was
drawn in, so changing the zone keeps the same moments and only shows them in the new zone.
"""

import datetime as dt
import zoneinfo

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError

from oncall.forms import grouped_time_zone_choices
from oncall.models import Membership, Role, Urgency, time_zone_choices
from schedules.forms import LocalDateTimeField

from .models import ActionItem, Postmortem, ReviewComment, ReviewRequest, TimelineItem
from .services import PostmortemError

User = get_user_model()

MARKDOWN_HELP = "Markdown: **bold**, *italic*, - lists, [links](https://…), `code`."


def zone_or_utc(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def _known_zone(name: str | None) -> bool:
    return bool(name) and name in {zone for zone, _ in time_zone_choices()}


def team_people(team_id: int) -> list:
    """The team's leads and responders (who may own action items and review), by name, in one
    query."""
    memberships = (
        Membership.objects.filter(team_id=team_id, role__in=[Role.LEAD, Role.RESPONDER])
        .select_related("user__profile")
        .order_by("user__username")
    )
    people = [m.user for m in memberships if m.user.is_active]
    return sorted(people, key=lambda user: person_name(user).lower())


def person_name(user) -> str:
    profile = getattr(user, "profile", None)
    return profile.name if profile is not None else user.get_username()


def add_service_error(form: forms.Form, error: PostmortemError) -> None:
    """Show a service's refusal next to its field when the form has it, else on top."""
    field = error.field if error.field in form.fields else None
    form.add_error(field, error.message)


class TextField(forms.CharField):
    """Text typed in a textarea. Browsers send line ends as CRLF: stored as LF, so an untouched
    field compares equal to what is saved (an amendment records only real changes)."""

    def to_python(self, value):
        value = super().to_python(value)
        return value.replace("\r\n", "\n").replace("\r", "\n") if value else value


class MarkdownArea(forms.Textarea):
    """A Markdown textarea: the page's script counts its words and previews it."""

    def __init__(self, rows: int = 6):
        super().__init__(attrs={"rows": rows, "data-words": ""})


class PostmortemForm(forms.Form):
    """The postmortem's own fields: the issue summary and the long sections."""

    title = forms.CharField(label="Title", max_length=200)
    shown_zone = forms.CharField(widget=forms.HiddenInput, required=False)
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=grouped_time_zone_choices,
        help_text="The zone the start, end and timeline times are written in. Changing it keeps "
        "the same moments and shows them in the new zone.",
        error_messages={
            "invalid_choice": "%(value)s is not a known IANA time zone (for example Europe/Paris).",
        },
    )
    started_at = LocalDateTimeField(
        label="Start",
        error_messages={
            "invalid": "Enter a date and time, e.g. 2026-11-24 09:00.",
            "required": "Enter when the outage started.",
        },
    )
    ended_at = LocalDateTimeField(
        label="End",
        error_messages={
            "invalid": "Enter a date and time, e.g. 2026-11-24 09:45.",
            "required": "Enter when the outage ended.",
        },
    )
    urgency = forms.ChoiceField(label="Urgency", choices=Urgency.choices)
    services = forms.TypedMultipleChoiceField(
        label="Affected services",
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        error_messages={"invalid_choice": "Choose services of the team."},
    )
    impact = TextField(
        label="Impact",
        required=False,
        widget=MarkdownArea(rows=6),
        help_text="What service was down or slow, and what users experienced. " + MARKDOWN_HELP,
    )
    users_affected_percent = forms.DecimalField(
        label="Users affected (%)",
        required=False,
        min_value=0,
        max_value=100,
        max_digits=5,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01", "inputmode": "decimal"}),
        help_text="From 0 to 100. Leave empty if unknown.",
    )
    summary_root_cause = TextField(
        label="Root cause in brief",
        required=False,
        widget=MarkdownArea(rows=3),
        help_text="One or two sentences for the summary. " + MARKDOWN_HELP,
    )
    root_cause = TextField(
        label="Root cause",
        required=False,
        widget=MarkdownArea(rows=8),
        help_text="What caused the issue, in detail. " + MARKDOWN_HELP,
    )
    resolution = TextField(
        label="Resolution",
        required=False,
        widget=MarkdownArea(rows=8),
        help_text="How it was fixed, in detail. " + MARKDOWN_HELP,
    )
    improvements = TextField(
        label="What can be improved",
        required=False,
        widget=MarkdownArea(rows=6),
        help_text="Corrective and preventative measures, broadly; the specific tasks go in the "
        "action items below. " + MARKDOWN_HELP,
    )

    MARKDOWN_FIELDS = ("impact", "summary_root_cause", "root_cause", "resolution", "improvements")

    def __init__(self, *args, postmortem: Postmortem, services: list, **kwargs):
        kwargs.setdefault(
            "initial",
            {
                "title": postmortem.title,
                "shown_zone": postmortem.time_zone,
                "time_zone": postmortem.time_zone,
                "started_at": postmortem.started_at,
                "ended_at": postmortem.ended_at,
                "urgency": postmortem.urgency,
                "services": [s.pk for s in postmortem.services.all()],
                "impact": postmortem.impact,
                "users_affected_percent": postmortem.users_affected_percent,
                "summary_root_cause": postmortem.summary_root_cause,
                "root_cause": postmortem.root_cause,
                "resolution": postmortem.resolution,
                "improvements": postmortem.improvements,
            },
        )
        super().__init__(*args, **kwargs)
        self.postmortem = postmortem
        self.service_by_id = {s.pk: s for s in services}
        self.fields["services"].choices = [(s.pk, s.name) for s in services]
        self.zone = self.reading_zone()
        for name in ("started_at", "ended_at"):
            self.fields[name].zone = self.zone

    def reading_zone(self) -> zoneinfo.ZoneInfo:
        """The zone the submitted times were typed in: the one the page was drawn in."""
        if self.is_bound:
            shown = self.data.get(self.add_prefix("shown_zone"))
            if _known_zone(shown):
                return zone_or_utc(shown)
            chosen = self.data.get(self.add_prefix("time_zone"))
            if _known_zone(chosen):
                return zone_or_utc(chosen)
        return zone_or_utc(self.postmortem.time_zone)

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("started_at"), cleaned.get("ended_at")
        if start and end and end < start:
            self.add_error("ended_at", "The outage ends before it starts.")
        return cleaned

    def service_fields(self) -> dict:
        """The cleaned values as `postmortem_update` / `postmortem_amend` take them."""
        data = {
            name: self.cleaned_data[name]
            for name in (
                "title",
                "time_zone",
                "started_at",
                "ended_at",
                "urgency",
                "impact",
                "users_affected_percent",
                "summary_root_cause",
                "root_cause",
                "resolution",
                "improvements",
            )
        }
        data["services"] = [self.service_by_id[pk] for pk in self.cleaned_data["services"]]
        return data

    def changed_fields(self) -> dict:
        """Only the fields whose value differs from the saved postmortem (an amendment records
        exactly those)."""
        postmortem = self.postmortem
        fields = self.service_fields()
        changed = {}
        for name, value in fields.items():
            if name == "services":
                old = sorted(s.pk for s in postmortem.services.all())
                if old != sorted(s.pk for s in value):
                    changed[name] = value
            elif getattr(postmortem, name) != value:
                changed[name] = value
        return changed


class TimelineItemForm(forms.Form):
    """One timeline row: time in the postmortem's zone, kind, how it was detected, text."""

    item_id = forms.IntegerField(widget=forms.HiddenInput, required=False)
    at = LocalDateTimeField(
        label="Time",
        error_messages={
            "invalid": "Enter a date and time, e.g. 2026-11-24 09:05.",
            "required": "Enter when it happened.",
        },
    )
    # An initial value, so an untouched blank row (its select sends the first option) counts
    # as unchanged and is skipped rather than refused.
    kind = forms.ChoiceField(
        label="Kind", choices=TimelineItem.Kind.choices, initial=TimelineItem.Kind.ACTION
    )
    detection = forms.ChoiceField(
        label="How it was detected",
        required=False,
        choices=[("", "—")] + list(TimelineItem.Detection.choices),
        help_text="For a “detected” row.",
    )
    text = TextField(
        label="What happened",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "data-words": ""}),
        error_messages={"required": "Write what happened, in one or two sentences."},
    )

    def __init__(self, *args, zone: zoneinfo.ZoneInfo, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["at"].zone = zone

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("detection") and cleaned.get("kind") != TimelineItem.Kind.DETECTED:
            self.add_error("detection", "“How it was detected” goes with a “Detected” row only.")
        return cleaned


class BaseItemFormSet(forms.BaseFormSet):
    """Rows of items; a row whose "Remove" box is ticked is deleted, an untouched blank row is
    ignored."""

    def existing_ids(self) -> list[int]:
        return [
            form.cleaned_data["item_id"]
            for form in self.forms
            if form.cleaned_data.get("item_id") is not None
        ]


TimelineFormSet = forms.formset_factory(
    TimelineItemForm, formset=BaseItemFormSet, extra=1, can_delete=True, max_num=500
)


class ActionItemForm(forms.Form):
    """One action item: a task with an owner and a due date."""

    item_id = forms.IntegerField(widget=forms.HiddenInput, required=False)
    title = forms.CharField(
        label="Task",
        max_length=300,
        widget=forms.TextInput(attrs={"data-words": ""}),
        help_text="As specific as “patch the Nginx server”.",
        error_messages={"required": "Say what is to be done."},
    )
    owner = forms.TypedChoiceField(
        label="Owner",
        coerce=int,
        error_messages={
            "invalid_choice": "Choose an owner from the team's leads and responders.",
            "required": "Choose who owns it.",
        },
    )
    due_date = forms.DateField(
        label="Due",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={
            "invalid": "Enter a date, e.g. 2026-12-15.",
            "required": "Enter a due date.",
        },
    )
    status = forms.ChoiceField(
        label="Status", choices=ActionItem.Status.choices, initial=ActionItem.Status.OPEN
    )
    url = forms.URLField(
        label="Tracker link",
        required=False,
        max_length=500,
        assume_scheme="https",
        widget=forms.URLInput(attrs={"placeholder": "https://…"}),
        error_messages={"invalid": "Enter a full link, e.g. https://tracker.example.com/OPS-12."},
    )

    def __init__(self, *args, people: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["owner"].choices = [("", "Choose…")] + [
            (user.pk, person_name(user)) for user in people
        ]


ActionItemFormSet = forms.formset_factory(
    ActionItemForm, formset=BaseItemFormSet, extra=1, can_delete=True, max_num=200
)


class AmendmentReasonForm(forms.Form):
    reason = TextField(
        label="Why does the published postmortem change?",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Recorded with your name and the time, and shown to every reader.",
        error_messages={"required": "Say why the published postmortem changes."},
    )


class ReviewRequestForm(forms.Form):
    reviewers = forms.TypedMultipleChoiceField(
        label="Reviewers",
        coerce=int,
        widget=forms.CheckboxSelectMultiple,
        help_text="Peers of the team who read it and approve it or ask for changes.",
        error_messages={
            "required": "Choose at least one reviewer.",
            "invalid_choice": "Choose reviewers among the team's leads and responders.",
        },
    )

    def __init__(self, *args, people: list, author_id: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.people = {user.pk: user for user in people if user.pk != author_id}
        self.fields["reviewers"].choices = [
            (pk, person_name(user)) for pk, user in self.people.items()
        ]

    def chosen(self) -> list:
        return [self.people[pk] for pk in self.cleaned_data["reviewers"]]


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[
            (ReviewRequest.State.APPROVED, "Approve"),
            (ReviewRequest.State.CHANGES_REQUESTED, "Request changes"),
        ],
        error_messages={
            "required": "Approve or request changes.",
            "invalid_choice": "Approve or request changes.",
        },
    )
    note = TextField(
        label="Note",
        required=False,
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: what you liked, or what has to change.",
    )


class CommentForm(forms.Form):
    section = forms.ChoiceField(choices=ReviewComment.Section.choices)
    body = TextField(
        label="Comment",
        max_length=5000,
        widget=forms.Textarea(attrs={"rows": 3}),
        error_messages={"required": "Write the comment."},
    )


class PublishForm(forms.Form):
    reason = TextField(
        label="Reason to publish without an approval",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Leads only. Recorded and shown on the postmortem.",
    )


class PreviewForm(forms.Form):
    text = forms.CharField(required=False, max_length=50_000, strip=False)


class PostmortemFilterForm(forms.Form):
    """The list's filters. Unknown values are refused with a message, never ignored silently."""

    q = forms.CharField(label="Search", required=False, max_length=200)
    team = forms.TypedChoiceField(label="Team", coerce=int, required=False, empty_value=None)
    service = forms.TypedChoiceField(label="Service", coerce=int, required=False, empty_value=None)
    urgency = forms.ChoiceField(
        label="Urgency", required=False, choices=[("", "Any")] + list(Urgency.choices)
    )
    status = forms.ChoiceField(label="Status", required=False)
    start = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a date, e.g. 2026-11-01."},
    )
    end = forms.DateField(
        label="To",
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter a date, e.g. 2026-11-30."},
    )

    def __init__(self, *args, teams: list, services: list, drafts: bool, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "All teams")] + [(t.pk, t.name) for t in teams]
        self.fields["team"].error_messages["invalid_choice"] = "That team is not one you can see."
        self.fields["service"].choices = [("", "All services")] + [
            (s.pk, f"{s.name} ({s.team.name})") for s in services
        ]
        self.fields["service"].error_messages["invalid_choice"] = (
            "That service is not one you can see."
        )
        if drafts:
            self.fields["status"].choices = [("", "Any status")] + list(Postmortem.Status.choices)
        else:
            del self.fields["status"]

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            raise ValidationError(
                f"The range ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d}): "
                "swap the dates."
            )
        return cleaned


class ActionItemFilterForm(forms.Form):
    mine = forms.BooleanField(label="Only mine", required=False)


def day_bounds(day: dt.date, zone: dt.tzinfo, *, end: bool = False) -> dt.datetime:
    """Midnight at the start of `day` (or of the next day for an end bound) in `zone`."""
    if end:
        day = day + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time.min, tzinfo=zone)
