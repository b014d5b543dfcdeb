"""REST API for incidents, services, escalation policies and response times (/api/v1/…).

Thin views: each checks access through `oncall.access` (as the pages do), parses its input,
calls one `incidents.workflow` function with channel `api` or one selector, and renders.

- Leads and responders of a team see and act on its incidents, services and policies;
  superusers on everybody's. An observer of the team gets 403 (observers read reports only);
  anybody else gets 404, exactly as for an object that does not exist.
- An action the incident's state does not allow (acknowledging a resolved incident) is 409 with
  the reason; input that does not make sense is 400 naming the field or parameter.
- Times are ISO 8601 with an offset, in and out; steps and loops count from 1.
"""

from datetime import UTC, datetime, timedelta

from django.http import Http404
from django.urls import path
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import generics, mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import APIException, PermissionDenied, ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from oncall import access
from oncall.models import Membership, Role, Urgency
from schedules.api import parse_instant

from . import selectors, workflow
from . import serializers as out
from .models import (
    Alert,
    Channel,
    EscalationPolicy,
    Incident,
    Notification,
    Service,
    TimelineEntry,
)

ISO = "ISO 8601 date-time with an offset, e.g. 2026-11-24T09:00:00+01:00 (write + as %2B)"
METRICS_DEFAULT_DAYS = 30
METRICS_MAX_WINDOW = timedelta(days=3 * 366)
# Times outside these are refused (400) rather than overflowing in date arithmetic or the database.
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)
MAX_ID = 2**63 - 1  # the largest primary key the databases store


class Conflict(APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The incident's state does not allow this action."
    default_code = "conflict"


class Pagination(PageNumberPagination):
    """`?page=N`, and `?page_size=` up to 200 (default 50)."""

    page_size_query_param = "page_size"
    max_page_size = 200


DETAIL_ERROR = inline_serializer("Error", {"detail": serializers.CharField()})
VALIDATION_ERROR = OpenApiResponse(
    OpenApiTypes.OBJECT, description="Invalid input: {field or parameter: [messages]}."
)
NOT_ALLOWED = {
    403: OpenApiResponse(DETAIL_ERROR, description="An observer of the team."),
    404: OpenApiResponse(DETAIL_ERROR, description="No such object among the caller's teams."),
}


def operational_team_ids(user) -> set[int] | None:
    """The teams whose incidents, services and policies the caller sees (None: all).
    Someone who is only ever an observer gets 403 saying why."""
    if access.is_observer_only(user):
        raise PermissionDenied(access.OBSERVER_REASON)
    return access.visible_team_ids(user)


def team_param(params, team_ids) -> int | None:
    """The `team` parameter (id or slug) among `team_ids`; 400 when it names no team there."""
    value = params.get("team")
    if value is None or value == "":
        return None
    team = selectors.team_for_reader(value, team_ids)
    if team is None:
        raise ValidationError({"team": [f"No team “{value[:100]}” among your teams."]})
    return team.pk


def list_param(params, name: str) -> list[str]:
    """Every value of a parameter given as `a,b` or repeated."""
    values = []
    for raw in params.getlist(name):
        values += [part.strip() for part in raw.split(",") if part.strip()]
    return values


def instant_param(params, name: str, default: datetime | None = None) -> datetime | None:
    """An ISO 8601 parameter with an offset, `default` when absent; 400 naming it when it is not
    such a time or lies outside the years 1900–9000."""
    value = params.get(name)
    if not value:
        return default
    parsed = parse_instant(value, name)
    try:
        in_range = EARLIEST <= parsed.astimezone(UTC) <= LATEST
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValidationError({name: ["Give a time between the years 1900 and 9000."]})
    return parsed


def as_id(value: str) -> int | None:
    """A database id written in ASCII digits, or None."""
    if value.isascii() and value.isdigit() and len(value) <= 19 and 0 < int(value) <= MAX_ID:
        return int(value)
    return None


def id_list(values: list[str], name: str) -> set[int]:
    """Database ids from text; 400 naming the parameter for anything else."""
    ids = {as_id(value) for value in values}
    if None in ids:
        raise ValidationError({name: ["Give ids (positive whole numbers), e.g. 3 or 3,4."]})
    return ids


def run_action(function, **kwargs):
    """Call a workflow function; its refusal becomes 409 with the reason."""
    try:
        return function(**kwargs)
    except workflow.IncidentStateError as error:
        raise Conflict(str(error)) from None


# --- incidents ---------------------------------------------------------------------------------

STATUS_HELP = (
    "One or more of open, triggered, acknowledged, resolved, all (comma-separated or repeated); "
    "default all."
)
INCIDENT_FILTERS = [
    OpenApiParameter("status", OpenApiTypes.STR, description=STATUS_HELP),
    OpenApiParameter("team", OpenApiTypes.STR, description="Team id or slug."),
    OpenApiParameter(
        "service", OpenApiTypes.STR, description="Service id(s), comma-separated or repeated."
    ),
    OpenApiParameter("urgency", OpenApiTypes.STR, enum=Urgency.values),
    OpenApiParameter(
        "assigned_to", OpenApiTypes.STR, description="`me`, or a user id: incidents assigned to."
    ),
    OpenApiParameter("since", OpenApiTypes.DATETIME, description=f"Triggered at or after: {ISO}."),
    OpenApiParameter("until", OpenApiTypes.DATETIME, description=f"Triggered before: {ISO}."),
]
ACTION_RESPONSES = {
    200: out.IncidentDetailSerializer,
    400: VALIDATION_ERROR,
    **NOT_ALLOWED,
    409: OpenApiResponse(DETAIL_ERROR, description="Not allowed in the incident's state."),
}


@extend_schema_view(
    list=extend_schema(
        summary="List incidents",
        description="Incidents of the caller's teams, newest first, paginated.",
        parameters=INCIDENT_FILTERS,
        responses={
            200: out.IncidentSerializer(many=True),
            400: VALIDATION_ERROR,
            403: DETAIL_ERROR,
        },
    ),
    retrieve=extend_schema(
        summary="One incident",
        responses={200: out.IncidentDetailSerializer, **NOT_ALLOWED},
    ),
)
class IncidentViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Incidents: list with filters, detail, and the actions (acknowledge, resolve, escalate,
    reassign, notes, urgency), each through `incidents.workflow` with channel `api`."""

    queryset = Incident.objects.none()  # the real one depends on the caller: get_queryset
    serializer_class = out.IncidentSerializer
    pagination_class = Pagination
    lookup_value_regex = r"[0-9]+"

    def get_serializer_class(self):
        if self.action == "list":
            return out.IncidentSerializer
        return out.IncidentDetailSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Incident.objects.none()
        team_ids = operational_team_ids(self.request.user)
        return selectors.incident_search(team_ids=team_ids, **self._filters(team_ids))

    def _filters(self, team_ids) -> dict:
        params = self.request.query_params
        filters: dict = {"team_id": team_param(params, team_ids)}

        statuses = list_param(params, "status")
        chosen: set[str] = set()
        for name in statuses:
            if name not in selectors.STATUS_FILTERS:
                raise ValidationError(
                    {"status": [f"“{name[:50]}” is not a status filter. {STATUS_HELP}"]}
                )
            if selectors.STATUS_FILTERS[name] is None:
                chosen = set()
                break
            chosen.update(selectors.STATUS_FILTERS[name])
        filters["statuses"] = sorted(chosen) if chosen else None

        service_values = list_param(params, "service")
        if service_values:
            wanted = id_list(service_values, "service")
            known = set(
                selectors.service_api_queryset(team_ids=team_ids)
                .filter(pk__in=wanted)
                .values_list("pk", flat=True)
            )
            if wanted - known:
                missing = ", ".join(str(pk) for pk in sorted(wanted - known))
                raise ValidationError({"service": [f"No service {missing} among your teams'."]})
            filters["service_ids"] = wanted

        urgency = params.get("urgency")
        if urgency:
            if urgency not in Urgency.values:
                raise ValidationError({"urgency": [f"Urgency is one of {', '.join(Urgency)}."]})
            filters["urgency"] = urgency

        assigned_to = params.get("assigned_to")
        if assigned_to:
            if assigned_to == "me":
                filters["assigned_to"] = self.request.user.pk
            elif as_id(assigned_to) is not None:
                filters["assigned_to"] = as_id(assigned_to)
            else:
                raise ValidationError({"assigned_to": ["Give `me` or a user id."]})

        since, until = instant_param(params, "since"), instant_param(params, "until")
        if since and until and until <= since:
            raise ValidationError({"until": ["until must be after since."]})
        filters["since"], filters["until"] = since, until
        return filters

    def get_object(self) -> Incident:
        incident = selectors.incident_for_user(
            user=self.request.user,
            pk=int(self.kwargs["pk"]),
            for_write=self.action != "retrieve",
        )
        self.check_object_permissions(self.request, incident)
        return incident

    def retrieve(self, request, *args, **kwargs):
        return self._detail(self.get_object().pk)

    def _detail(self, pk: int, status_code: int = status.HTTP_200_OK) -> Response:
        incident = selectors.incident_api_queryset().get(pk=pk)
        return Response(self.get_serializer(incident).data, status=status_code)

    def _input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    @extend_schema(summary="Acknowledge", request=None, responses=ACTION_RESPONSES)
    @action(detail=True, methods=["post"])
    def acknowledge(self, request, pk=None):
        """Someone is on it: escalation stops and pending pages are skipped."""
        incident = self.get_object()
        run_action(
            workflow.incident_acknowledge,
            incident=incident,
            by=request.user,
            via=Channel.API,
            at=timezone.now(),
        )
        return self._detail(incident.pk)

    @extend_schema(
        summary="Resolve", request=out.ResolveInputSerializer, responses=ACTION_RESPONSES
    )
    @action(detail=True, methods=["post"])
    def resolve(self, request, pk=None):
        """Resolve, with an optional note for the timeline."""
        incident = self.get_object()
        data = self._input(out.ResolveInputSerializer)
        run_action(
            workflow.incident_resolve,
            incident=incident,
            by=request.user,
            via=Channel.API,
            at=timezone.now(),
            note=data.get("note", "").strip(),
        )
        return self._detail(incident.pk)

    @extend_schema(
        summary="Escalate by hand",
        request=out.EscalateInputSerializer,
        responses=ACTION_RESPONSES,
    )
    @action(detail=True, methods=["post"])
    def escalate(self, request, pk=None):
        """Escalate now, to the next step or to `step` (from 1) of the incident's policy."""
        incident = self.get_object()
        data = self._input(out.EscalateInputSerializer)
        to_step = None
        if "step" in data:
            count = len((incident.policy_snapshot or {}).get("steps", []))
            if count and data["step"] > count:
                raise ValidationError(
                    {"step": [f"The incident's escalation policy has {count} step(s)."]}
                )
            to_step = data["step"] - 1
        run_action(
            workflow.incident_escalate,
            incident=incident,
            by=request.user,
            via=Channel.API,
            at=timezone.now(),
            to_step=to_step,
        )
        return self._detail(incident.pk)

    @extend_schema(
        summary="Reassign", request=out.ReassignInputSerializer, responses=ACTION_RESPONSES
    )
    @action(detail=True, methods=["post"])
    def reassign(self, request, pk=None):
        """Hand the incident to one of its team's leads or responders (paged now), or to one of
        its team's escalation policies (from the first step)."""
        incident = self.get_object()
        data = self._input(out.ReassignInputSerializer)
        team = incident.service.team
        user = policy = None
        if "user" in data:
            membership = (
                Membership.objects.filter(
                    team=team,
                    user_id=data["user"],
                    user__is_active=True,
                    role__in=[Role.LEAD, Role.RESPONDER],
                )
                .select_related("user")
                .first()
            )
            if membership is None:
                raise ValidationError(
                    {"user": [f"No active lead or responder of {team.name} has id {data['user']}."]}
                )
            user = membership.user
        else:
            policy = EscalationPolicy.objects.filter(
                pk=data["escalation_policy"], team=team
            ).first()
            if policy is None:
                raise ValidationError(
                    {
                        "escalation_policy": [
                            f"No escalation policy {data['escalation_policy']} in {team.name}."
                        ]
                    }
                )
            if not policy.steps.exists():
                raise ValidationError(
                    {"escalation_policy": [f"The escalation policy {policy.name} has no steps."]}
                )
        run_action(
            workflow.incident_reassign,
            incident=incident,
            by=request.user,
            via=Channel.API,
            at=timezone.now(),
            user=user,
            policy=policy,
        )
        return self._detail(incident.pk)

    @extend_schema(
        summary="Add a note",
        request=out.NoteInputSerializer,
        responses={
            201: out.TimelineEntrySerializer,
            400: VALIDATION_ERROR,
            **NOT_ALLOWED,
        },
    )
    @action(detail=True, methods=["post"])
    def notes(self, request, pk=None):
        """Write a note on the incident's timeline."""
        incident = self.get_object()
        data = self._input(out.NoteInputSerializer)
        entry = run_action(
            workflow.incident_add_note,
            incident=incident,
            by=request.user,
            via=Channel.API,
            at=timezone.now(),
            text=data["text"],
        )
        entry.actor = request.user
        return Response(out.TimelineEntrySerializer(entry).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Set the urgency", request=out.UrgencyInputSerializer, responses=ACTION_RESPONSES
    )
    @action(detail=True, methods=["post"])
    def urgency(self, request, pk=None):
        """High or low: decides which of the paged people's notification rules apply."""
        incident = self.get_object()
        data = self._input(out.UrgencyInputSerializer)
        run_action(
            workflow.incident_set_urgency,
            incident=incident,
            by=request.user,
            via=Channel.API,
            at=timezone.now(),
            urgency=data["urgency"],
        )
        return self._detail(incident.pk)


class _IncidentPartList(generics.ListAPIView):
    """A paginated list of one part of an incident the caller may see."""

    pagination_class = Pagination
    selector = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        incident = selectors.incident_for_user(user=self.request.user, pk=self.kwargs["pk"])
        return type(self).selector(incident=incident)


@extend_schema(
    summary="An incident's timeline",
    description="What happened, oldest first: who, when, what, through which channel.",
    responses={200: out.TimelineEntrySerializer(many=True), **NOT_ALLOWED},
)
class IncidentTimelineView(_IncidentPartList):
    queryset = TimelineEntry.objects.none()
    serializer_class = out.TimelineEntrySerializer
    selector = staticmethod(selectors.incident_timeline)


@extend_schema(
    summary="An incident's notifications",
    description="The outbox rows of the incident: each message to one contact method, with its "
    "status, attempts and the provider's answer. Contact addresses are not shown.",
    responses={200: out.NotificationSerializer(many=True), **NOT_ALLOWED},
)
class IncidentNotificationsView(_IncidentPartList):
    queryset = Notification.objects.none()
    serializer_class = out.NotificationSerializer
    selector = staticmethod(selectors.incident_notifications)


@extend_schema(
    summary="An incident's alerts",
    description="The events that opened the incident or attached to it, newest first; routing "
    "keys and tokens are removed from the payloads.",
    responses={200: out.AlertSerializer(many=True), **NOT_ALLOWED},
)
class IncidentAlertsView(_IncidentPartList):
    queryset = Alert.objects.none()
    serializer_class = out.AlertSerializer
    selector = staticmethod(selectors.incident_alerts)


# --- services and escalation policies ----------------------------------------------------------

TEAM_FILTER = [OpenApiParameter("team", OpenApiTypes.STR, description="Team id or slug.")]


class _TeamScopedReadOnly(viewsets.ReadOnlyModelViewSet):
    """Read-only lists and details of a team-owned model: the caller's teams only."""

    pagination_class = Pagination
    lookup_value_regex = r"[0-9]+"
    selector = None

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return self.queryset
        team_ids = operational_team_ids(self.request.user)
        return type(self).selector(
            team_ids=team_ids, team_id=team_param(self.request.query_params, team_ids)
        )

    def get_object(self):
        obj = type(self).selector(team_ids=None).filter(pk=int(self.kwargs["pk"])).first()
        if obj is None:
            raise Http404("No such object.")
        access.require_operational(self.request.user, obj.team_id)
        self.check_object_permissions(self.request, obj)
        return obj


@extend_schema_view(
    list=extend_schema(
        summary="List services",
        parameters=TEAM_FILTER,
        responses={200: out.ServiceSerializer(many=True), 400: VALIDATION_ERROR, 403: DETAIL_ERROR},
    ),
    retrieve=extend_schema(
        summary="One service", responses={200: out.ServiceSerializer, **NOT_ALLOWED}
    ),
)
class ServiceViewSet(_TeamScopedReadOnly):
    """Services of the caller's teams with their policy, integrations (never their keys) and
    open incident counts."""

    queryset = Service.objects.none()
    serializer_class = out.ServiceSerializer
    selector = staticmethod(selectors.service_api_queryset)


@extend_schema_view(
    list=extend_schema(
        summary="List escalation policies",
        parameters=TEAM_FILTER,
        responses={
            200: out.EscalationPolicySerializer(many=True),
            400: VALIDATION_ERROR,
            403: DETAIL_ERROR,
        },
    ),
    retrieve=extend_schema(
        summary="One escalation policy",
        responses={200: out.EscalationPolicySerializer, **NOT_ALLOWED},
    ),
)
class EscalationPolicyViewSet(_TeamScopedReadOnly):
    """Escalation policies of the caller's teams, each with its steps in order (who they page
    and how long they wait) and the services that use it."""

    queryset = EscalationPolicy.objects.none()
    serializer_class = out.EscalationPolicySerializer
    selector = staticmethod(selectors.escalation_policy_api_queryset)


# --- response times ----------------------------------------------------------------------------


class ResponseTimesView(APIView):
    """MTTA (triggered → first acknowledged) and MTTR (triggered → resolved): mean, median and
    90th percentile in seconds, with counts, of the incidents triggered in [start, end), per team,
    per service and overall. Every member of a team reads its figures, observers included."""

    @extend_schema(
        summary="MTTA and MTTR",
        parameters=[
            OpenApiParameter(
                "start", OpenApiTypes.DATETIME, description=f"{ISO}; default end − 30 days"
            ),
            OpenApiParameter("end", OpenApiTypes.DATETIME, description=f"{ISO}; default now"),
            OpenApiParameter("team", OpenApiTypes.STR, description="Team id or slug."),
        ],
        responses={200: out.ResponseTimesReportSerializer, 400: VALIDATION_ERROR},
    )
    def get(self, request):
        params = request.query_params
        end = instant_param(params, "end", default=timezone.now())
        start = instant_param(params, "start", default=end - timedelta(days=METRICS_DEFAULT_DAYS))
        if end <= start:
            raise ValidationError({"end": ["end must be after start."]})
        if end - start > METRICS_MAX_WINDOW:
            raise ValidationError({"end": ["The window may be at most 1,098 days (3 years)."]})
        user = request.user
        team_ids = None if user.is_superuser else access.team_ids(user)
        report = selectors.response_times(
            team_ids=team_ids, start=start, end=end, team_id=team_param(params, team_ids)
        )
        return Response(out.response_report_json(report))


# --- routes (included under /api/v1/ by oncall/api_urls.py, in its `api` namespace) ------------

router = SimpleRouter()
router.register("incidents", IncidentViewSet, basename="incident")
router.register("services", ServiceViewSet, basename="service")
router.register("escalation-policies", EscalationPolicyViewSet, basename="escalation-policy")

urlpatterns = [
    *router.urls,
    path(
        "incidents/<int:pk>/timeline/",
        IncidentTimelineView.as_view(),
        name="incident-timeline",
    ),
    path(
        "incidents/<int:pk>/notifications/",
        IncidentNotificationsView.as_view(),
        name="incident-notifications",
    ),
    path("incidents/<int:pk>/alerts/", IncidentAlertsView.as_view(), name="incident-alerts"),
    path(
        "metrics/response-times/",
        ResponseTimesView.as_view(),
        name="metrics-response-times",
    ),
]
