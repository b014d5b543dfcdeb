"""What the REST API shows of incidents, services and escalation policies, and what it accepts
for the incident actions. Output only reads what `incidents.selectors` loaded (no queries of its
own); input serializers validate, and the views then call `incidents.workflow`.

Step numbers, loops and positions are 1-based here (people count from one), 0-based in the
database. Integration keys and contact addresses are never shown.
"""

from datetime import timedelta

from django.core.exceptions import ObjectDoesNotExist
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from oncall.models import Urgency

from .models import (
    Alert,
    EscalationPolicy,
    EscalationStep,
    Incident,
    Notification,
    Service,
    TimelineEntry,
)
from .workflow import LEADS_FALLBACK_STEP

NOTE_MAX_LENGTH = 10_000
MAX_ID = 2**63 - 1  # the largest primary key the databases store
# Keys that may carry a secret in a stored event: never sent back out.
SECRET_PAYLOAD_KEYS = frozenset({"routing_key", "service_key", "integration_key", "token"})


def display_name(user) -> str:
    """The name people know the user by, from the profile loaded with the user, if any."""
    try:
        profile = user.profile
    except ObjectDoesNotExist:
        profile = None
    return profile.name if profile else user.get_username()


def redact(value):
    """`value` (a stored event) without the keys that may hold a secret, at any depth."""
    if isinstance(value, dict):
        return {
            k: "[redacted]" if k in SECRET_PAYLOAD_KEYS else redact(v) for k, v in value.items()
        }
    if isinstance(value, list):
        return [redact(v) for v in value]
    return value


def one_based(value: int | None) -> int | None:
    return None if value is None else value + 1


# --- small pieces ------------------------------------------------------------------------------


class NamedChoiceField(serializers.ChoiceField):
    """A choice field whose values are one named enum in the OpenAPI schema, so that the several
    `status` fields (of incidents, notifications, services) and the urgencies are told apart."""

    def __init__(self, *, enum_name: str, **kwargs):
        self.enum_name = enum_name
        super().__init__(**kwargs)


class NamedChoiceFieldSchema(OpenApiSerializerFieldExtension):
    target_class = NamedChoiceField

    def get_name(self) -> str:
        return self.target.enum_name

    def map_serializer_field(self, auto_schema, direction) -> dict:
        choices = self.target.choices
        return {
            "type": "string",
            "enum": list(choices),
            "description": "\n".join(f"* `{value}` - {label}" for value, label in choices.items()),
        }


def urgency_field(**kwargs) -> NamedChoiceField:
    return NamedChoiceField(enum_name="UrgencyEnum", choices=Urgency.choices, **kwargs)


class UserRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    username = serializers.CharField(read_only=True)
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return display_name(user)


class TeamRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    slug = serializers.CharField(read_only=True)
    name = serializers.CharField(read_only=True)


class ServiceRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class PolicyRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True, allow_null=True)
    name = serializers.CharField(read_only=True)


class EscalationStateSerializer(serializers.Serializer):
    """Where the incident's escalation stands, in the policy frozen into it when it was
    triggered (or reassigned)."""

    policy = PolicyRefSerializer(
        help_text="The policy as it was frozen into the incident (id null: reassigned to a person)."
    )
    step_count = serializers.IntegerField(help_text="Steps in the frozen policy.")
    repeat_count = serializers.IntegerField()
    loop = serializers.IntegerField(help_text="The loop the escalation is in, from 1.")
    current_step = serializers.IntegerField(
        allow_null=True,
        help_text="The last step that paged people, from 1; null when none has yet (or only the "
        "team's leads were paged because no step reached anybody).",
    )
    leads_paged = serializers.BooleanField(
        help_text="The last page went to the team's leads: no step reached anybody."
    )
    next_step = serializers.IntegerField(
        allow_null=True,
        help_text="The step that fires at next_escalation_at, from 1; null when nothing is due.",
    )
    next_escalation_at = serializers.DateTimeField(allow_null=True)


def escalation_state(incident: Incident) -> dict:
    snapshot = incident.policy_snapshot or {}
    last_step = getattr(incident, "last_paged_step", None)
    due = incident.next_escalation_at is not None
    return {
        "policy": {"id": snapshot.get("id"), "name": snapshot.get("name", "")},
        "step_count": len(snapshot.get("steps", [])),
        "repeat_count": int(snapshot.get("repeat_count", 0)),
        "loop": incident.loop + 1,
        "current_step": None if last_step in (None, LEADS_FALLBACK_STEP) else last_step + 1,
        "leads_paged": last_step == LEADS_FALLBACK_STEP,
        "next_step": incident.current_step + 1 if due else None,
        "next_escalation_at": incident.next_escalation_at,
    }


# --- incidents ---------------------------------------------------------------------------------


class IncidentSerializer(serializers.ModelSerializer):
    """An incident in a list: what it is, where, its state and milestones."""

    service = ServiceRefSerializer(read_only=True)
    team = TeamRefSerializer(source="service.team", read_only=True)
    status = NamedChoiceField(
        enum_name="IncidentStatusEnum", choices=Incident.Status.choices, read_only=True
    )
    urgency = urgency_field(read_only=True)
    assignees = UserRefSerializer(many=True, read_only=True)
    current_step = serializers.SerializerMethodField(
        help_text="The last step that paged people, from 1; null when none has yet."
    )
    url = serializers.HyperlinkedIdentityField(view_name="api:incident-detail")

    class Meta:
        model = Incident
        fields = [
            "id",
            "url",
            "title",
            "status",
            "urgency",
            "service",
            "team",
            "dedup_key",
            "alert_count",
            "triggered_at",
            "acknowledged_at",
            "resolved_at",
            "assignees",
            "current_step",
            "next_escalation_at",
        ]
        read_only_fields = fields

    def get_current_step(self, incident) -> int | None:
        step = getattr(incident, "last_paged_step", None)
        return None if step in (None, LEADS_FALLBACK_STEP) else step + 1


class IncidentDetailSerializer(IncidentSerializer):
    """One incident: the list's fields, plus who acknowledged and resolved it, its details and
    where its escalation stands."""

    details = serializers.SerializerMethodField(
        help_text="What the alert that opened it said, without routing keys or tokens."
    )
    acknowledged_by = UserRefSerializer(read_only=True, allow_null=True)
    resolved_by = UserRefSerializer(read_only=True, allow_null=True)
    escalation = serializers.SerializerMethodField()
    timeline_url = serializers.SerializerMethodField()

    class Meta(IncidentSerializer.Meta):
        fields = [
            *IncidentSerializer.Meta.fields,
            "details",
            "acknowledged_by",
            "resolved_by",
            "ack_timeout_at",
            "escalation",
            "timeline_url",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_details(self, incident):
        return redact(incident.details)

    @extend_schema_field(EscalationStateSerializer)
    def get_escalation(self, incident) -> dict:
        return EscalationStateSerializer(escalation_state(incident)).data

    def get_timeline_url(self, incident) -> str:
        from django.urls import reverse

        path = reverse("api:incident-timeline", args=[incident.pk])
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


class TimelineEntrySerializer(serializers.ModelSerializer):
    actor = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = TimelineEntry
        fields = ["id", "at", "kind", "actor", "channel", "message", "data"]
        read_only_fields = fields


class ContactMethodRefSerializer(serializers.Serializer):
    """A contact method without its address (a phone number, or a webhook URL that is itself a
    secret)."""

    id = serializers.IntegerField(read_only=True)
    kind = serializers.CharField(read_only=True)
    label = serializers.CharField(read_only=True)


class NotificationSerializer(serializers.ModelSerializer):
    user = UserRefSerializer(read_only=True)
    contact_method = ContactMethodRefSerializer(read_only=True, allow_null=True)
    status = NamedChoiceField(
        enum_name="NotificationStatusEnum", choices=Notification.Status.choices, read_only=True
    )
    step = serializers.SerializerMethodField(
        help_text="The escalation step that paged the person, from 1; null for the team's "
        "leads paged as the last resort."
    )
    loop = serializers.SerializerMethodField(help_text="The escalation loop, from 1.")

    class Meta:
        model = Notification
        fields = [
            "id",
            "user",
            "channel",
            "contact_method",
            "step",
            "loop",
            "rule_delay_minutes",
            "status",
            "due_at",
            "attempts",
            "last_attempt_at",
            "sent_at",
            "provider_answer",
            "bundled_into",
        ]
        read_only_fields = fields

    def get_step(self, notification) -> int | None:
        page = notification.page
        if page is None or page.step == LEADS_FALLBACK_STEP:
            return None
        return page.step + 1

    def get_loop(self, notification) -> int | None:
        return None if notification.page is None else notification.page.loop + 1


class IntegrationRefSerializer(serializers.Serializer):
    """An integration by name and kind; its key is never shown here."""

    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    kind = serializers.CharField(read_only=True)


class AlertSerializer(serializers.ModelSerializer):
    integration = IntegrationRefSerializer(read_only=True, allow_null=True)
    payload = serializers.SerializerMethodField(
        help_text="The event as received, without routing keys or tokens."
    )

    class Meta:
        model = Alert
        fields = [
            "id",
            "received_at",
            "integration",
            "action",
            "dedup_key",
            "summary",
            "severity",
            "source",
            "fingerprint",
            "outcome",
            "payload",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_payload(self, alert):
        return redact(alert.payload)


# --- services and escalation policies ----------------------------------------------------------


class ServiceSerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    status = NamedChoiceField(
        enum_name="ServiceStatusEnum", choices=Service.Status.choices, read_only=True
    )
    default_urgency = urgency_field(read_only=True)
    escalation_policy = PolicyRefSerializer(read_only=True)
    integrations = IntegrationRefSerializer(many=True, read_only=True)
    open_incidents = serializers.IntegerField(read_only=True)

    class Meta:
        model = Service
        fields = [
            "id",
            "name",
            "description",
            "team",
            "status",
            "default_urgency",
            "ack_timeout_minutes",
            "escalation_policy",
            "integrations",
            "open_incidents",
        ]
        read_only_fields = fields


class ScheduleRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)


class EscalationStepSerializer(serializers.ModelSerializer):
    position = serializers.SerializerMethodField(
        help_text="The step's place in the policy, from 1."
    )
    users = UserRefSerializer(source="target_users", many=True, read_only=True)
    schedules = ScheduleRefSerializer(source="target_schedules", many=True, read_only=True)
    teams = TeamRefSerializer(source="target_teams", many=True, read_only=True)

    class Meta:
        model = EscalationStep
        fields = ["id", "position", "delay_minutes", "users", "schedules", "teams"]
        read_only_fields = fields

    def get_position(self, step) -> int:
        # Positions may have holes after steps were removed: number them as they come.
        return self.context.get("positions", {}).get(step.pk, step.position + 1)


class EscalationPolicySerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True)
    steps = serializers.SerializerMethodField()
    services = ServiceRefSerializer(many=True, read_only=True)

    class Meta:
        model = EscalationPolicy
        fields = ["id", "name", "description", "team", "repeat_count", "steps", "services"]
        read_only_fields = fields

    @extend_schema_field(EscalationStepSerializer(many=True))
    def get_steps(self, policy) -> list:
        steps = list(policy.steps.all())
        positions = {step.pk: number for number, step in enumerate(steps, start=1)}
        return EscalationStepSerializer(
            steps, many=True, context={**self.context, "positions": positions}
        ).data


# --- action input ------------------------------------------------------------------------------


class ResolveInputSerializer(serializers.Serializer):
    note = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=NOTE_MAX_LENGTH,
        help_text="Written on the timeline with the resolution.",
    )


class EscalateInputSerializer(serializers.Serializer):
    step = serializers.IntegerField(
        required=False,
        min_value=1,
        help_text="The step to escalate to, from 1 (default: the step after the last one that "
        "paged people).",
    )


class ReassignInputSerializer(serializers.Serializer):
    user = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Id of a lead or responder of the incident's team.",
    )
    escalation_policy = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="Id of one of the incident's team's escalation policies.",
    )

    def validate(self, attrs):
        if ("user" in attrs) == ("escalation_policy" in attrs):
            raise serializers.ValidationError(
                {"non_field_errors": ["Give exactly one of `user` and `escalation_policy`."]}
            )
        return attrs


class NoteInputSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=NOTE_MAX_LENGTH, trim_whitespace=True)


class UrgencyInputSerializer(serializers.Serializer):
    urgency = urgency_field()


# --- response times ----------------------------------------------------------------------------


def seconds(value: timedelta | None) -> float | None:
    return None if value is None else round(value.total_seconds(), 3)


class DurationStatsSerializer(serializers.Serializer):
    """Seconds; null when there is nothing to measure."""

    mean = serializers.FloatField(allow_null=True)
    median = serializers.FloatField(allow_null=True)
    p90 = serializers.FloatField(allow_null=True)


class ResponseTimesSerializer(serializers.Serializer):
    incidents = serializers.IntegerField(help_text="Incidents triggered in the window.")
    acknowledged = serializers.IntegerField(help_text="…of them acknowledged (MTTA is over these).")
    resolved = serializers.IntegerField(help_text="…of them resolved (MTTR is over these).")
    mtta = DurationStatsSerializer(help_text="Triggered → first acknowledged, in seconds.")
    mttr = DurationStatsSerializer(help_text="Triggered → resolved, in seconds.")


class ServiceResponseTimesSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    stats = ResponseTimesSerializer()


class TeamResponseTimesSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    slug = serializers.CharField()
    name = serializers.CharField()
    stats = ResponseTimesSerializer()
    services = ServiceResponseTimesSerializer(many=True)


class ResponseTimesReportSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    end = serializers.DateTimeField()
    total = ResponseTimesSerializer()
    teams = TeamResponseTimesSerializer(many=True)


def response_times_json(times) -> dict:
    """A `selectors.ResponseTimes` as the API shows it: durations in seconds."""
    return {
        "incidents": times.incidents,
        "acknowledged": times.acknowledged,
        "resolved": times.resolved,
        "mtta": {
            "mean": seconds(times.mtta.mean),
            "median": seconds(times.mtta.median),
            "p90": seconds(times.mtta.p90),
        },
        "mttr": {
            "mean": seconds(times.mttr.mean),
            "median": seconds(times.mttr.median),
            "p90": seconds(times.mttr.p90),
        },
    }


def response_report_json(report) -> dict:
    """A `selectors.ResponseTimesReport` as the API shows it."""
    return {
        "start": report.start.isoformat(),
        "end": report.end.isoformat(),
        "total": response_times_json(report.total),
        "teams": [
            {
                "id": team.team_id,
                "slug": team.slug,
                "name": team.name,
                "stats": response_times_json(team.times),
                "services": [
                    {
                        "id": service.service_id,
                        "name": service.name,
                        "stats": response_times_json(service.times),
                    }
                    for service in team.services
                ],
            }
            for team in report.teams
        ],
    }
