"""Forms of the profile page. They parse and check input; the writes are in `oncall.services`."""

from collections import defaultdict
from functools import cache

from django import forms
from django.core.exceptions import ValidationError

from .models import (
    ContactKind,
    ContactMethod,
    Profile,
    contact_address_errors,
    normalize_phone,
    time_zone_choices,
    validate_phone,
)

MAX_RULE_DELAY_MINUTES = 24 * 60


def add_service_errors(
    form: forms.Form, error: ValidationError, *, duplicate_message: str = ""
) -> None:
    """Show a service's ValidationError on the form: next to a field the form has, else on top.

    A unique-constraint error (a row like this exists already) reads `duplicate_message`."""
    if not hasattr(error, "error_dict"):
        form.add_error(None, error)
        return
    for field, errors in error.error_dict.items():
        if duplicate_message:
            errors = [
                ValidationError(duplicate_message, code="unique")
                if e.code in ("unique", "unique_together") or "already exists" in " ".join(e)
                else e
                for e in errors
            ]
        form.add_error(field if field in form.fields else None, errors)


@cache
def grouped_time_zone_choices() -> list[tuple[str, list[tuple[str, str]]]]:
    """IANA zones grouped by region (Africa, America, Europe…) for an <optgroup> select.

    Zones without a region (UTC, legacy names such as EST5EDT) go to a last group, "Other",
    except UTC, which comes first as it is the default."""
    groups: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for name, label in time_zone_choices():
        region = name.split("/", 1)[0] if "/" in name else "Other"
        groups[region].append((name, label))
    other = groups.pop("Other", [])
    ordered = [("Universal", [("UTC", "UTC")])]
    ordered += sorted(groups.items())
    ordered.append(("Other", [choice for choice in other if choice[0] != "UTC"]))
    return ordered


class ProfileForm(forms.Form):
    display_name = forms.CharField(
        label="Display name",
        max_length=Profile._meta.get_field("display_name").max_length,
        required=False,
        help_text="How your name appears to your teams. Leave empty to use your account name.",
        widget=forms.TextInput(attrs={"autocomplete": "name"}),
    )
    time_zone = forms.ChoiceField(
        label="Time zone",
        choices=grouped_time_zone_choices,
        help_text="Every time on the pages is shown in this zone.",
        error_messages={
            "invalid_choice": "%(value)s is not a known IANA time zone (for example Europe/Paris).",
            "required": "Choose your time zone.",
        },
    )
    phone = forms.CharField(
        label="Phone",
        max_length=Profile._meta.get_field("phone").max_length,
        required=False,
        help_text="International format, e.g. +44 20 7946 0958. Optional.",
        widget=forms.TextInput(attrs={"autocomplete": "tel", "inputmode": "tel"}),
    )

    def clean_display_name(self) -> str:
        return self.cleaned_data["display_name"].strip()

    def clean_phone(self) -> str:
        phone = self.cleaned_data["phone"].strip()
        if not phone:
            return ""
        validate_phone(phone)
        return normalize_phone(phone)


ADDRESS_HELP = (
    "E-mail: an address such as ada@example.com. SMS and voice: a number in international format "
    "such as +44 20 7946 0958. Webhooks: a full https:// URL."
)


class ContactMethodForm(forms.Form):
    kind = forms.ChoiceField(label="Kind", choices=ContactKind.choices)
    address = forms.CharField(
        label="Address",
        max_length=ContactMethod._meta.get_field("address").max_length,
        help_text=ADDRESS_HELP,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
    )
    label = forms.CharField(
        label="Label",
        max_length=ContactMethod._meta.get_field("label").max_length,
        required=False,
        help_text="Optional, e.g. “Work phone”.",
    )

    def clean(self):
        cleaned = super().clean()
        kind, address = cleaned.get("kind"), (cleaned.get("address") or "").strip()
        if kind and "address" in cleaned:
            for message in contact_address_errors(kind, address):
                self.add_error("address", message)
        cleaned["label"] = (cleaned.get("label") or "").strip()
        return cleaned


class ContactMethodChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: ContactMethod) -> str:
        return f"{obj.get_kind_display()}: {obj.label or obj.address}"


class NotificationRuleForm(forms.Form):
    """A rule of one urgency: "N minutes after I am paged, notify me via this contact method"."""

    delay_minutes = forms.IntegerField(
        label="Minutes after I am paged",
        min_value=0,
        max_value=MAX_RULE_DELAY_MINUTES,
        initial=0,
        help_text="0 means straight away.",
        widget=forms.NumberInput(attrs={"inputmode": "numeric"}),
    )
    contact_method = ContactMethodChoiceField(
        label="Notify me via",
        queryset=ContactMethod.objects.none(),
        empty_label=None,
        error_messages={"invalid_choice": "Choose one of your own contact methods."},
    )

    def __init__(self, *args, user, methods=None, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["contact_method"]
        field.queryset = ContactMethod.objects.filter(user=user)
        if methods is not None:
            # The page has the user's methods already: build the <option>s without a query.
            field.choices = [(m.pk, field.label_from_instance(m)) for m in methods]


class DateRangeForm(forms.Form):
    """A date range such as the reports page's, in the reader's time zone; both days included."""

    start = forms.DateField(
        label="From",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the start as a date, e.g. 2025-01-31."},
    )
    end = forms.DateField(
        label="To (included)",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        error_messages={"invalid": "Enter the end as a date, e.g. 2025-01-31."},
    )

    EARLIEST_YEAR, LATEST_YEAR = 1970, 2999

    def _check_year(self, field: str):
        value = self.cleaned_data[field]
        if not self.EARLIEST_YEAR <= value.year <= self.LATEST_YEAR:
            raise ValidationError(
                f"Choose a date between {self.EARLIEST_YEAR} and {self.LATEST_YEAR}."
            )
        return value

    def clean_start(self):
        return self._check_year("start")

    def clean_end(self):
        return self._check_year("end")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end and end < start:
            self.add_error("end", "The end date is before the start date.")
        return cleaned
