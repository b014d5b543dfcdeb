"""Forms of the schedule pages. They parse and check input; the writes are in
`schedules.services` (override_create), whose errors are shown next to these fields."""

from datetime import UTC, datetime, tzinfo

from django import forms
from django.core.exceptions import ValidationError
from django.utils import timezone

from .models import Override

LOCAL_INPUT_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
# Far enough to be any real override; near enough that no zone offset leaves datetime's range.
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999


def _zone_name(zone: tzinfo) -> str:
    return getattr(zone, "key", None) or str(zone)


class LocalDateTimeField(forms.DateTimeField):
    """A `datetime-local` input read as wall-clock time in a given zone (the viewer's).

    A time the clocks skip (spring forward) or pass twice (fall back) is refused with a clear
    message rather than guessed."""

    widget = forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M")

    def __init__(self, *, zone: tzinfo | None = None, **kwargs):
        kwargs.setdefault("input_formats", LOCAL_INPUT_FORMATS)
        super().__init__(**kwargs)
        self.zone = zone

    def prepare_value(self, value):
        if isinstance(value, datetime) and timezone.is_aware(value) and self.zone is not None:
            return value.astimezone(self.zone).replace(tzinfo=None)
        return value

    def to_python(self, value):
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            naive = value.replace(tzinfo=None) if timezone.is_aware(value) else value
        else:
            naive = None
            for fmt in self.input_formats:
                try:
                    naive = datetime.strptime(str(value).strip(), fmt)  # noqa: DTZ007 (zoned below)
                    break
                except (TypeError, ValueError):
                    continue
            if naive is None:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
        if not EARLIEST_YEAR <= naive.year <= LATEST_YEAR:
            raise ValidationError(
                f"Choose a time between the years {EARLIEST_YEAR} and {LATEST_YEAR}.",
                code="out_of_range",
            )
        zone = self.zone or timezone.get_current_timezone()
        return _place(naive.replace(second=0, microsecond=0), zone)


def _place(naive: datetime, zone: tzinfo) -> datetime:
    """The wall-clock time `naive` in `zone`, or a ValidationError when it is skipped or
    happens twice there."""
    first = naive.replace(tzinfo=zone, fold=0)
    second = naive.replace(tzinfo=zone, fold=1)
    name = _zone_name(zone)
    if first.utcoffset() != second.utcoffset():
        # Either the clocks skip this time (it does not exist) or pass it twice (ambiguous).
        round_trip = first.astimezone(UTC).astimezone(zone).replace(tzinfo=None)
        if round_trip != naive:
            raise ValidationError(
                f"{naive:%H:%M} on {naive:%Y-%m-%d} does not exist in {name}: the clocks "
                "go forward then. Choose a time after the change.",
                code="nonexistent",
            )
        raise ValidationError(
            f"{naive:%H:%M} on {naive:%Y-%m-%d} happens twice in {name}: the clocks go "
            "back then. Choose a time outside that hour.",
            code="ambiguous",
        )
    return first.astimezone(UTC)


class OverrideForm(forms.Form):
    """The "cover me / someone from … to …" form: who, start and end in the viewer's zone,
    and a reason.

    `people` are the (user id, name) choices the viewer may pick: themselves only for a
    responder, any lead or responder of the team for a lead."""

    who = forms.TypedChoiceField(
        label="Who covers",
        coerce=int,
        error_messages={
            "invalid_choice": (
                "You can only add overrides for yourself. Ask a team lead to put someone "
                "else on call."
            ),
            "required": "Choose who covers.",
        },
    )
    start = LocalDateTimeField(
        label="From",
        error_messages={
            "invalid": "Enter a date and time, e.g. 2026-11-24 09:00.",
            "required": "Enter when the override starts.",
        },
    )
    end = LocalDateTimeField(
        label="To",
        error_messages={
            "invalid": "Enter a date and time, e.g. 2026-11-24 17:00.",
            "required": "Enter when the override ends.",
        },
    )
    reason = forms.CharField(
        label="Reason",
        required=False,
        max_length=Override._meta.get_field("reason").max_length,
        help_text="Shown to the team, e.g. “Dentist” or “Swap with Ben”.",
    )

    def __init__(
        self,
        *args,
        people: list[tuple[int, str]],
        zone: tzinfo,
        now: datetime,
        lead: bool,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.now = now
        name = _zone_name(zone)
        who = self.fields["who"]
        who.choices = people
        if lead:
            who.help_text = "As a team lead you may put any lead or responder of the team on call."
            who.error_messages["invalid_choice"] = "Choose a lead or responder of this team."
        else:
            who.help_text = "Team leads can put someone else on call; you can cover yourself."
        for field in ("start", "end"):
            self.fields[field].zone = zone
            self.fields[field].help_text = f"Your time zone: {name}."

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end > start and end <= self.now:
            self.add_error("end", "This override would be over already: choose an end to come.")
        return cleaned


class TakeShiftForm(forms.Form):
    """The "Take this shift" button: the shift's exact bounds, as ISO 8601 with an offset."""

    start = forms.CharField()
    end = forms.CharField()

    def _instant(self, field: str) -> datetime:
        try:
            value = datetime.fromisoformat(self.cleaned_data[field])
        except ValueError:
            raise ValidationError("Not a date and time.") from None
        if timezone.is_naive(value):
            raise ValidationError("Give the time with an offset.")
        return value.astimezone(UTC)

    def clean_start(self) -> datetime:
        return self._instant("start")

    def clean_end(self) -> datetime:
        return self._instant("end")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end <= start:
            raise ValidationError("The shift must end after it starts.")
        return cleaned
