"""Escalation policies, services, integrations and incidents in the admin (docs/permissions.md).

Everything here is team-scoped through `oncall.admin.TeamScopedAdmin`: a lead sees and edits only
their own teams' objects. Writes that carry a rule go through `incidents.services`.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Prefetch
from django.http import HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from oncall.admin import (
    OrderedRowForm,
    TeamListFilter,
    TeamScopedAdmin,
    TeamScopedInline,
    in_chosen_order,
    renumber_positions,
)
from oncall.models import Team
from schedules.models import Schedule

from . import monitors, services
from .models import (
    EscalationPolicy,
    EscalationStep,
    Heartbeat,
    HttpCheck,
    Incident,
    Integration,
    Service,
)

User = get_user_model()

NO_TARGET_ERROR = "A step needs at least one target: a schedule, a user or a whole team."


# ---------------------------------------------------------------------------------------------
# Escalation policies
# ---------------------------------------------------------------------------------------------


def _person_name(user) -> str:
    try:
        return user.profile.name
    except AttributeError:  # no profile yet (RelatedObjectDoesNotExist is an AttributeError)
        return user.get_full_name() or user.get_username()


def escalation_policy_summary(policy: EscalationPolicy) -> str:
    """The policy in one line, as the on-call engineer will live it, e.g.
    "Step 1: page Payments on-call schedule, escalate after 15 min → Step 2: page Ada,
    escalate after 15 min → repeat 1 time". Four queries, however many steps and targets."""
    steps = policy.steps.order_by("position", "id").prefetch_related(
        Prefetch("target_schedules", queryset=Schedule.objects.order_by("name")),
        Prefetch(
            "target_users",
            queryset=User._default_manager.select_related("profile").order_by("username"),
        ),
        Prefetch("target_teams", queryset=Team.objects.order_by("name")),
    )
    parts = []
    for number, step in enumerate(steps, start=1):
        targets = [f"{schedule.name} schedule" for schedule in step.target_schedules.all()]
        targets += [_person_name(user) for user in step.target_users.all()]
        targets += [f"everyone in {team.name}" for team in step.target_teams.all()]
        who = ", ".join(targets) if targets else "nobody"
        parts.append(f"Step {number}: page {who}, escalate after {step.delay_minutes} min")
    if not parts:
        return "No steps yet: an incident on this policy pages nobody."
    repeats = policy.repeat_count
    parts.append(
        "no repeat" if repeats == 0 else f"repeat {repeats} time{'s' if repeats != 1 else ''}"
    )
    return " → ".join(parts)


class EscalationStepForm(OrderedRowForm):
    order_help_text = "Steps run in this order. Leave empty to add the step at the end."

    class Meta:
        model = EscalationStep
        fields = ("delay_minutes", "target_schedules", "target_users", "target_teams")

    def clean(self):
        cleaned = super().clean()
        targets = ("target_schedules", "target_users", "target_teams")
        if not any(cleaned.get(name) for name in targets):
            raise ValidationError(NO_TARGET_ERROR, code="no_target")
        return cleaned


class EscalationStepFormSet(forms.BaseInlineFormSet):
    """Checks the steps as a whole and numbers them 0..n-1 in the order shown."""

    def live_forms(self) -> list[forms.ModelForm]:
        """The steps that will exist after saving, in their new order."""
        live = []
        initial_count = self.initial_form_count()
        for index, form in enumerate(self.forms):
            if not hasattr(form, "cleaned_data"):
                continue
            if self.can_delete and self._should_delete_form(form):
                continue
            if form.instance.pk is None and (index < initial_count or not form.has_changed()):
                continue  # an untouched extra row, or a row naming no step of this policy
            live.append(form)
        return in_chosen_order(live)

    def clean(self):
        super().clean()
        if any(self.errors) or self.instance.pk is None or self.live_forms():
            return
        active = list(
            self.instance.services.filter(status=Service.Status.ACTIVE)
            .order_by("name")
            .values_list("name", flat=True)
        )
        if active:
            names = ", ".join(f"“{name}”" for name in active)
            raise ValidationError(
                f"The active service {names} uses this policy, so it needs at least one step. "
                "Keep a step, or put the service in maintenance or give it another policy first.",
                code="policy_in_use",
            )

    def save(self, commit=True):
        live = self.live_forms()
        for position, form in enumerate(live):
            form.instance.position = position
        saved = super().save(commit)
        if commit:
            renumber_positions(self.instance.steps.all(), [form.instance.pk for form in live])
        return saved


class EscalationStepInline(TeamScopedInline, admin.TabularInline):
    model = EscalationStep
    form = EscalationStepForm
    formset = EscalationStepFormSet
    fields = ("order", "delay_minutes", "target_schedules", "target_users", "target_teams")
    ordering = ("position", "id")
    extra = 1
    classes = ("oncall-steps",)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        kwargs["widget"] = forms.CheckboxSelectMultiple(attrs={"class": "oncall-checkboxes"})
        return super().formfield_for_manytomany(db_field, request, **kwargs)

    def formfield_for_dbfield(self, db_field, request, **kwargs):
        field = super().formfield_for_dbfield(db_field, request, **kwargs)
        # Checkbox lists can't take the "+" pop-up's new option: drop the wrapper's links.
        if db_field.many_to_many and isinstance(field.widget, RelatedFieldWidgetWrapper):
            field.widget = field.widget.widget
        return field


class EscalationPolicyForm(forms.ModelForm):
    class Meta:
        model = EscalationPolicy
        fields = ("team", "name", "description", "repeat_count")

    def clean_team(self):
        team = self.cleaned_data["team"]
        if self.instance.pk and team and team.pk != self.instance.team_id:
            others = list(
                self.instance.services.exclude(team=team)
                .order_by("name")
                .values_list("name", flat=True)
            )
            if others:
                raise ValidationError(
                    "These services still use this policy: %(names)s. "
                    "Give them another policy before moving it to another team.",
                    params={"names": ", ".join(others)},
                    code="policy_in_use",
                )
        return team


@admin.register(EscalationPolicy)
class EscalationPolicyAdmin(TeamScopedAdmin):
    team_field = "team"
    form = EscalationPolicyForm
    inlines = [EscalationStepInline]
    list_display = ("name", "team", "step_count", "repeat_count", "services_using")
    list_filter = (TeamListFilter,)
    list_select_related = ("team",)
    search_fields = ("name", "team__name", "description")

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(_step_count=Count("steps", distinct=True))
            .prefetch_related(Prefetch("services", queryset=Service.objects.order_by("name")))
        )

    def get_fields(self, request, obj=None):
        fields = ["team", "name", "description", "repeat_count"]
        return fields + ["preview"] if obj is not None else fields

    def get_readonly_fields(self, request, obj=None):
        return ("preview",) if obj is not None else ()

    @admin.display(description="steps", ordering="_step_count")
    def step_count(self, obj: EscalationPolicy) -> int:
        return obj._step_count

    @admin.display(description="used by services")
    def services_using(self, obj: EscalationPolicy) -> str:
        return ", ".join(service.name for service in obj.services.all()) or "—"

    @admin.display(description="what happens")
    def preview(self, obj: EscalationPolicy) -> str:
        return escalation_policy_summary(obj)


# ---------------------------------------------------------------------------------------------
# Integrations (secret keys: full key on the change page only, the hint everywhere else)
# ---------------------------------------------------------------------------------------------

INGEST_HELP = {
    Integration.Kind.EVENTS_V2: "POST events to {base}/v2/enqueue with this key as routing_key.",
}


def key_with_copy_button(integration: Integration):
    if integration.pk is None:
        return "Made when you save."
    element_id = f"integration-key-{integration.pk}"
    return format_html(
        '<span class="oncall-secret">'
        '<code id="{}" class="oncall-key">{}</code> '
        '<button type="button" class="button oncall-copy" data-copy-target="{}" '
        'aria-label="Copy the key of {}">Copy</button> '
        '<span class="oncall-copy-status" role="status" aria-live="polite"></span>'
        "</span>",
        element_id,
        integration.key,
        element_id,
        integration.name,
    )


class IntegrationInline(TeamScopedInline, admin.TabularInline):
    model = Integration
    fields = ("name", "kind", "enabled", "secret_key", "key_rotated_at")
    readonly_fields = ("secret_key", "key_rotated_at")
    extra = 0

    @admin.display(description="key")
    def secret_key(self, obj: Integration):
        return key_with_copy_button(obj)


class ServiceForm(forms.ModelForm):
    class Meta:
        model = Service
        fields = ("team", "name", "description", "escalation_policy", "status", "default_urgency")

    def clean(self):
        cleaned = super().clean()
        team, policy, status = (cleaned.get(f) for f in ("team", "escalation_policy", "status"))
        if team and policy and status:
            try:
                services.service_check_pageable(status=status, policy=policy, team=team)
            except ValidationError as error:
                self.add_error(None, error)
        return cleaned


@admin.register(Service)
class ServiceAdmin(TeamScopedAdmin):
    team_field = "team"
    form = ServiceForm
    inlines = [IntegrationInline]
    list_display = ("name", "team", "status", "escalation_policy", "integrations_count")
    list_filter = ("status", TeamListFilter)
    list_select_related = ("team", "escalation_policy")
    search_fields = ("name", "team__name", "description")
    actions = ["put_in_maintenance", "set_active"]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_integrations=Count("integrations"))

    @admin.display(description="integrations", ordering="_integrations")
    def integrations_count(self, obj: Service) -> int:
        return obj._integrations

    def _set_status(self, request, queryset, status: str) -> None:
        changed = 0
        for service in queryset.select_related("escalation_policy", "team"):
            try:
                services.service_update(service=service, status=status)
            except ValidationError as error:
                reasons = " ".join(error.messages)
                self.message_user(
                    request, f"“{service}” was not changed: {reasons}", messages.ERROR
                )
                continue
            self.log_change(request, service, f"Set status to {status}.")
            changed += 1
        if changed:
            label = Service.Status(status).label
            self.message_user(request, f"{changed} service(s) now: {label}.", messages.SUCCESS)

    @admin.action(description="Put in maintenance (nobody paged)", permissions=["change"])
    def put_in_maintenance(self, request, queryset):
        self._set_status(request, queryset, Service.Status.MAINTENANCE)

    @admin.action(description="Set active", permissions=["change"])
    def set_active(self, request, queryset):
        self._set_status(request, queryset, Service.Status.ACTIVE)


# -- monitors: the HTTP check of an HTTP check integration, the heartbeat of a heartbeat one --


def _when(moment) -> str:
    return timezone.localtime(moment).strftime("%Y-%m-%d %H:%M:%S %Z") if moment else "never"


class MonitorFormSet(forms.BaseInlineFormSet):
    """The one monitor row of an integration: needed when the integration is of the inline's
    kind, refused on any other kind. A page that did not show the inline (the kind was just
    changed) posts no rows for it: that is read as one row of defaults, not as tampering."""

    kind: str = ""
    defaults: dict = {}
    wrong_kind_error = ""
    missing_error = ""

    def __init__(self, data=None, *args, prefix=None, **kwargs):
        prefix = prefix or self.get_default_prefix()
        if data is not None and f"{prefix}-TOTAL_FORMS" not in data:
            data = data.copy()
            data.update({f"{prefix}-TOTAL_FORMS": "1", f"{prefix}-INITIAL_FORMS": "0"})
            data.update({f"{prefix}-0-{name}": value for name, value in self.defaults.items()})
        super().__init__(data, *args, prefix=prefix, **kwargs)

    @property
    def kind_matches(self) -> bool:
        return self.instance.kind == self.kind

    def _construct_form(self, i, **kwargs):
        form = super()._construct_form(i, **kwargs)
        form.required_by_kind = self.kind_matches and form.instance.pk is None
        return form

    def clean(self):
        super().clean()
        if any(self.errors):
            return
        filled = [
            form
            for form in self.forms
            if form.has_changed() and form.cleaned_data and not self._should_delete_form(form)
        ]
        if not self.kind_matches and any(form.instance.pk is None for form in filled):
            raise ValidationError(self.wrong_kind_error, code="wrong_kind")
        if self.kind_matches and self.missing_error and not (filled or self.initial_form_count()):
            raise ValidationError(self.missing_error, code="required")


class MonitorForm(forms.ModelForm):
    """An unchanged new row still counts when the integration needs it (the defaults may be
    just right), so its fields are checked and it is saved."""

    required_by_kind = False

    def has_changed(self) -> bool:
        return self.required_by_kind or super().has_changed()


class HttpCheckForm(MonitorForm):
    url = forms.URLField(
        label="URL",
        max_length=2000,
        assume_scheme="https",
        help_text="http:// or https://. The check GETs it from the portal and does not follow "
        "redirects (a 301 counts as 301).",
        error_messages={"required": "Enter the URL to check, starting with http:// or https://."},
    )

    class Meta:
        model = HttpCheck
        fields = (
            "url",
            "expected_status",
            "max_latency_ms",
            "interval_seconds",
            "failures_before_alert",
        )
        labels = {
            "expected_status": "Expected status",
            "max_latency_ms": "Latency threshold (ms)",
            "interval_seconds": "Check every (seconds)",
            "failures_before_alert": "Failures in a row before an incident",
        }
        help_texts = {
            "expected_status": "The status a healthy answer has, e.g. 200.",
            "max_latency_ms": "A slower answer (time to the response headers) is a failure.",
            "interval_seconds": "At least 10: the monitors run every 10 seconds.",
            "failures_before_alert": "1 pages at the first failure; 3 rides out a blip.",
        }

    def clean_url(self) -> str:
        url = self.cleaned_data["url"]
        if not url.lower().startswith(("http://", "https://")):
            raise ValidationError("Only http:// and https:// URLs can be checked.", code="scheme")
        return url

    def _bounded(self, name: str, low: int, high: int, message: str) -> int:
        value = self.cleaned_data.get(name)
        if value is not None and not low <= value <= high:
            raise ValidationError(message, code="out_of_range")
        return value

    def clean_expected_status(self) -> int:
        return self._bounded(
            "expected_status", 100, 599, "An HTTP status is a number from 100 to 599."
        )

    def clean_max_latency_ms(self) -> int:
        return self._bounded(
            "max_latency_ms", 1, 60_000, "The latency threshold is 1 to 60,000 ms (one minute)."
        )

    def clean_interval_seconds(self) -> int:
        return self._bounded(
            "interval_seconds",
            10,
            24 * 3600,
            "Check every 10 seconds at the most often, and at least once a day (86,400).",
        )

    def clean_failures_before_alert(self) -> int:
        return self._bounded(
            "failures_before_alert", 1, 100, "Between 1 and 100 failures in a row."
        )

    def save(self, commit=True):
        check = super().save(commit=False)
        if self.instance.pk is None or self.changed_data:
            # Something about what is checked changed: run it at the next beat and count the
            # failures afresh (an open incident stays open until the URL answers well).
            monitors.http_check_reset(check)
        if commit:
            check.save()
        return check


class HttpCheckFormSet(MonitorFormSet):
    kind = Integration.Kind.HTTP_CHECK
    defaults = {
        "url": "",
        "expected_status": "200",
        "max_latency_ms": "500",
        "interval_seconds": "60",
        "failures_before_alert": "3",
    }
    wrong_kind_error = (
        "Only an HTTP check integration runs an HTTP check: choose the kind “HTTP check”, "
        "or leave the HTTP check empty."
    )
    missing_error = "An HTTP check integration needs a URL to check: fill in the HTTP check."


class HeartbeatForm(MonitorForm):
    class Meta:
        model = Heartbeat
        fields = ("interval_minutes",)
        labels = {"interval_minutes": "Expect a ping every (minutes)"}
        help_texts = {
            "interval_minutes": "No ping for this long triggers an incident; the next ping "
            "resolves it. The clock starts when you save."
        }

    def clean_interval_minutes(self) -> int:
        value = self.cleaned_data.get("interval_minutes")
        if value is not None and not 1 <= value <= 7 * 24 * 60:
            raise ValidationError(
                "Between 1 minute and a week (10,080 minutes).", code="out_of_range"
            )
        return value

    def save(self, commit=True):
        heartbeat = super().save(commit=False)
        if self.instance.pk is None or "interval_minutes" in self.changed_data:
            heartbeat.expected_by = monitors.heartbeat_expected_by(
                last_ping_at=heartbeat.last_ping_at,
                interval_minutes=heartbeat.interval_minutes,
                now=timezone.now(),
            )
        if commit:
            heartbeat.save()
        return heartbeat


class HeartbeatFormSet(MonitorFormSet):
    kind = Integration.Kind.HEARTBEAT
    defaults = {"interval_minutes": "5"}
    wrong_kind_error = (
        "Only a heartbeat integration expects pings: choose the kind “Heartbeat”, "
        "or leave the heartbeat as it is."
    )


class MonitorInline(TeamScopedInline, admin.StackedInline):
    """The monitor row on an integration's page: shown for its kind (both while adding one,
    the kind not being chosen yet). Team scoping follows the integration's service."""

    kind: str = ""
    extra = 1
    max_num = 1
    can_delete = False

    @classmethod
    def shown_for(cls, integration: Integration | None, kind: str | None = None) -> bool:
        if integration is None or integration.pk is None:
            return True
        return (kind or integration.kind) == cls.kind

    def parent_team_id(self, obj) -> int | None:
        return obj.service.team_id if getattr(obj, "service_id", None) else None

    def _lead_may(self, request, obj) -> bool:
        # A new integration: its service choices are already cut to the lead's teams.
        return obj is None or obj.pk is None or super()._lead_may(request, obj)

    def get_extra(self, request, obj=None, **kwargs):
        return 0 if obj is not None and obj.pk is not None and self._exists(obj) else 1

    def _exists(self, obj: Integration) -> bool:
        return self.model.objects.filter(integration=obj).exists()


class HttpCheckInline(MonitorInline):
    model = HttpCheck
    kind = Integration.Kind.HTTP_CHECK
    form = HttpCheckForm
    formset = HttpCheckFormSet
    verbose_name = "HTTP check"
    verbose_name_plural = "HTTP check (for an HTTP check integration)"
    readonly_fields = ("state",)

    def get_fields(self, request, obj=None):
        return [*HttpCheckForm._meta.fields, "state"]

    @admin.display(description="state")
    def state(self, check: HttpCheck) -> str:
        if check.pk is None or check.last_checked_at is None:
            return "Not run yet: it runs within 10 seconds of saving."
        if check.last_ok:
            outcome = f"answered {check.last_status} in {check.last_latency_ms} ms"
        else:
            outcome = f"{check.last_error} ({check.consecutive_failures} failure(s) in a row)"
        return f"Last run {_when(check.last_checked_at)}: {outcome}."


class HeartbeatInline(MonitorInline):
    model = Heartbeat
    kind = Integration.Kind.HEARTBEAT
    form = HeartbeatForm
    formset = HeartbeatFormSet
    verbose_name = "heartbeat"
    verbose_name_plural = "heartbeat (for a heartbeat integration)"
    fields = ("interval_minutes", "state")
    readonly_fields = ("state",)

    @admin.display(description="state")
    def state(self, heartbeat: Heartbeat) -> str:
        if heartbeat.pk is None:
            return "The first ping is expected one interval after you save."
        return (
            f"Last ping: {_when(heartbeat.last_ping_at)}. "
            f"Next ping expected by {_when(heartbeat.expected_by)}."
        )


@admin.register(Integration)
class IntegrationAdmin(TeamScopedAdmin):
    team_field = "service__team"
    list_display = ("name", "service", "team", "kind", "enabled", "key_hint", "key_rotated_at")
    list_filter = ("kind", "enabled", TeamListFilter)
    list_select_related = ("service__team",)
    search_fields = ("name", "service__name")
    actions = ["rotate_keys"]
    inlines = [HttpCheckInline, HeartbeatInline]

    def get_inlines(self, request, obj):
        """The HTTP check or heartbeat of an integration of that kind (of the kind posted, when
        it is being changed); both while adding one."""
        kind = request.POST.get("kind") if request.method == "POST" else None
        return [inline for inline in self.inlines if inline.shown_for(obj, kind)]

    def get_fields(self, request, obj=None):
        fields = ["service", "name", "kind", "enabled"]
        if obj is not None:
            fields += ["secret_key", "ingest", "key_rotated_at"]
        return fields

    def get_readonly_fields(self, request, obj=None):
        return ("secret_key", "ingest", "key_rotated_at") if obj is not None else ()

    @admin.display(description="team", ordering="service__team__name")
    def team(self, obj: Integration) -> Team:
        return obj.service.team

    @admin.display(description="key")
    def key_hint(self, obj: Integration) -> str:
        return obj.key_hint

    @admin.display(description="key")
    def secret_key(self, obj: Integration):
        return key_with_copy_button(obj)

    @admin.display(description="how to send alerts")
    def ingest(self, obj: Integration) -> str:
        text = INGEST_HELP.get(obj.kind)
        return text.format(base=settings.BASE_URL) if text else "—"

    # -- key rotation: list action and a button (POST) on the change page -------------------
    def get_urls(self):
        opts = self.opts
        return [
            path(
                "<path:object_id>/rotate-key/",
                self.admin_site.admin_view(self.rotate_key_view),
                name=f"{opts.app_label}_{opts.model_name}_rotate_key",
            ),
            *super().get_urls(),
        ]

    def _rotate(self, request, integration: Integration) -> Integration:
        integration = services.integration_rotate_key(integration=integration)
        # Only the hint: keys never go into messages, the change log or the logs.
        self.log_change(request, integration, "Rotated the key.")
        return integration

    def rotate_key_view(self, request, object_id):
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        integration = self.get_object(request, unquote(object_id))
        if not self.has_change_permission(request, integration):
            raise PermissionDenied
        if integration is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        integration = self._rotate(request, integration)
        self.message_user(
            request,
            f"“{integration.name}” has a new key (ending {integration.key_hint[1:]}). "
            "The old key no longer works: update the monitoring that sends to it.",
            messages.SUCCESS,
        )
        url = reverse(
            f"admin:{self.opts.app_label}_{self.opts.model_name}_change",
            args=[integration.pk],
            current_app=self.admin_site.name,
        )
        return HttpResponseRedirect(url)

    @admin.action(description="Rotate key (the old key stops working)", permissions=["change"])
    def rotate_keys(self, request, queryset):
        rotated = [self._rotate(request, integration) for integration in queryset]
        self.message_user(
            request,
            f"New keys for {len(rotated)} integration(s). The old keys no longer work.",
            messages.SUCCESS,
        )


# ---------------------------------------------------------------------------------------------
# Incidents: a read-only list; incidents change through their own pages and services
# ---------------------------------------------------------------------------------------------


@admin.register(Incident)
class IncidentAdmin(TeamScopedAdmin):
    team_field = "service__team"
    list_display = ("title", "service", "status", "urgency", "triggered_at")
    list_filter = ("status", "urgency", TeamListFilter)
    list_select_related = ("service",)
    search_fields = ("title", "dedup_key", "service__name")
    fields = (
        "title",
        "service",
        "status",
        "urgency",
        "dedup_key",
        "triggered_at",
        "acknowledged_at",
        "resolved_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        # Deleting a team deletes its incidents, so superusers keep that; nobody else.
        return request.user.is_superuser
