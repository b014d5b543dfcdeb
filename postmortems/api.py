"""REST API for postmortems and action items (/api/v1/postmortems/, /api/v1/action-items/).

Thin views, in the style of `incidents.api`: each reads through `postmortems.selectors` (who
sees what is decided there once) and writes through one `postmortems.services` function.

- Everybody signed in reads published postmortems; the team's leads and responders also read
  and write its drafts. A draft answers 404 to anybody else, observers included, exactly as a
  postmortem that does not exist.
- A write by someone who may read but not write (an observer, another team's member) is 403.
- A refused transition (publishing without approval, editing a published postmortem) is 409
  with the reason; input that does not make sense is 400 naming the field.
"""

from django.contrib.auth import get_user_model
from django.http import Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import mixins, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied, ValidationError
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter

from incidents.api import (
    DETAIL_ERROR,
    VALIDATION_ERROR,
    Conflict,
    Pagination,
    as_id,
)
from incidents.models import Incident, Service
from incidents.selectors import team_for_reader
from oncall.models import Urgency

from . import selectors, services
from . import serializers as out
from .models import ActionItem, Postmortem

NOT_VISIBLE = {
    404: OpenApiResponse(DETAIL_ERROR, description="No such postmortem among those you may read."),
}
WRITE_ERRORS = {
    400: VALIDATION_ERROR,
    403: OpenApiResponse(DETAIL_ERROR, description="You may read it but not change it."),
    **NOT_VISIBLE,
    409: OpenApiResponse(DETAIL_ERROR, description="Not allowed in the postmortem's state."),
}


def run_service(function, **kwargs):
    """Call a postmortems service; a refusal becomes 403 (not allowed for this person), 400
    (about one field) or 409 (the state does not allow it), with the service's message."""
    try:
        return function(**kwargs)
    except services.PostmortemPermissionError as error:
        raise PermissionDenied(error.message) from None
    except services.PostmortemError as error:
        if error.field:
            raise ValidationError({error.field: [error.message]}) from None
        raise Conflict(error.message) from None


def bool_param(params, name: str) -> bool | None:
    value = (params.get(name) or "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ValidationError({name: ["Give true or false."]})


POSTMORTEM_FILTERS = [
    OpenApiParameter("team", OpenApiTypes.STR, description="Team id or slug."),
    OpenApiParameter("service", OpenApiTypes.INT, description="Affected service id."),
    OpenApiParameter("status", OpenApiTypes.STR, enum=Postmortem.Status.values),
    OpenApiParameter("urgency", OpenApiTypes.STR, enum=Urgency.values),
    OpenApiParameter(
        "q",
        OpenApiTypes.STR,
        description="Words to search for in the text (full-text on PostgreSQL, best first).",
    ),
    OpenApiParameter("start", OpenApiTypes.DATE, description="Outage started on or after."),
    OpenApiParameter("end", OpenApiTypes.DATE, description="Outage started on or before."),
]


@extend_schema_view(
    list=extend_schema(
        summary="List postmortems",
        description="Published postmortems, and the drafts of the caller's teams (leads and "
        "responders), newest outage first (best match first with `q` on PostgreSQL).",
        parameters=POSTMORTEM_FILTERS,
        responses={200: out.PostmortemSerializer(many=True), 400: VALIDATION_ERROR},
    ),
    retrieve=extend_schema(
        summary="One postmortem",
        responses={200: out.PostmortemDetailSerializer, **NOT_VISIBLE},
    ),
    create=extend_schema(
        summary="Create a draft from incidents",
        request=out.PostmortemCreateSerializer,
        responses={
            201: out.PostmortemDetailSerializer,
            200: OpenApiResponse(
                out.PostmortemDetailSerializer,
                description="One of the incidents already has this postmortem.",
            ),
            **WRITE_ERRORS,
        },
    ),
    partial_update=extend_schema(
        summary="Edit a draft",
        request=out.PostmortemWriteSerializer,
        responses={200: out.PostmortemDetailSerializer, **WRITE_ERRORS},
    ),
)
class PostmortemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Postmortems: list with filters and search, detail in the fixed format, drafts created from
    incidents and edited, and the review workflow (request review, decide, publish, amend)."""

    queryset = Postmortem.objects.none()
    serializer_class = out.PostmortemSerializer
    pagination_class = Pagination
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_serializer_class(self):
        if self.action == "list":
            return out.PostmortemSerializer
        return out.PostmortemDetailSerializer

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return Postmortem.objects.none()
        params = self.request.query_params
        team = team_for_reader(params.get("team", ""), None)
        if params.get("team") and team is None:
            raise ValidationError({"team": [f"No team “{params['team'][:100]}”."]})
        service = None
        if params.get("service"):
            service = as_id(params["service"])
            if service is None:
                raise ValidationError({"service": ["Give a service id."]})
        status_value = params.get("status") or None
        if status_value and status_value not in Postmortem.Status.values:
            raise ValidationError(
                {"status": [f"Status is one of {', '.join(Postmortem.Status.values)}."]}
            )
        urgency = params.get("urgency") or None
        if urgency and urgency not in Urgency.values:
            raise ValidationError({"urgency": [f"Urgency is one of {', '.join(Urgency)}."]})
        start, end = self._date(params, "start"), self._date(params, "end")
        if start and end and end < start:
            raise ValidationError({"end": ["end must be on or after start."]})
        return selectors.postmortem_search(
            user=self.request.user,
            q=params.get("q", ""),
            team=team,
            service=service,
            start=start,
            end=end,
            urgency=urgency,
            status=status_value,
        )

    @staticmethod
    def _date(params, name):
        from django.utils.dateparse import parse_date

        value = params.get(name)
        if not value:
            return None
        try:
            parsed = parse_date(value)
        except ValueError:
            parsed = None
        if parsed is None:
            raise ValidationError({name: ["Give a date as YYYY-MM-DD."]})
        return parsed

    def get_object(self) -> Postmortem:
        pk = int(self.kwargs["pk"])
        postmortem = selectors.visible_postmortems(user=self.request.user).filter(pk=pk).first()
        if postmortem is None:
            raise Http404("No such postmortem.")
        if self.action != "retrieve" and not services.can_write(self.request.user, postmortem):
            raise PermissionDenied("Only the team's leads and responders change its postmortems.")
        self.check_object_permissions(self.request, postmortem)
        return postmortem

    def _detail(self, pk: int, status_code: int = status.HTTP_200_OK) -> Response:
        postmortem = selectors.postmortem_detail_queryset(user=self.request.user).get(pk=pk)
        return Response(self.get_serializer(postmortem).data, status=status_code)

    def _input(self, serializer_class) -> dict:
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def retrieve(self, request, *args, **kwargs):
        return self._detail(self.get_object().pk)

    def create(self, request, *args, **kwargs):
        data = self._input(out.PostmortemCreateSerializer)
        wanted = set(data["incidents"])
        incidents = list(Incident.objects.filter(pk__in=wanted))
        missing = wanted - {i.pk for i in incidents}
        if missing:
            raise ValidationError(
                {"incidents": [f"No incident {', '.join(map(str, sorted(missing)))}."]}
            )
        before = Postmortem.objects.filter(incidents__in=incidents).exists()
        postmortem = run_service(
            services.postmortem_create_from_incidents, user=request.user, incidents=incidents
        )
        return self._detail(
            postmortem.pk, status.HTTP_200_OK if before else status.HTTP_201_CREATED
        )

    def _fields(self, postmortem: Postmortem, data: dict) -> dict:
        fields = dict(data)
        if "services" in fields:
            wanted = set(fields["services"])
            found = list(Service.objects.filter(pk__in=wanted, team_id=postmortem.team_id))
            if len(found) != len(wanted):
                raise ValidationError(
                    {"services": [f"Give ids of {postmortem.team.name}'s own services."]}
                )
            fields["services"] = found
        return fields

    def update(self, request, *args, **kwargs):
        if not kwargs.get("partial"):
            raise ValidationError({"detail": ["Use PATCH with the fields to change."]})
        postmortem = self.get_object()
        data = self._input(out.PostmortemWriteSerializer)
        run_service(
            services.postmortem_update,
            postmortem=postmortem,
            user=request.user,
            **self._fields(postmortem, data),
        )
        return self._detail(postmortem.pk)

    @extend_schema(
        summary="Ask for a review",
        request=out.ReviewRequestInputSerializer,
        responses={200: out.PostmortemDetailSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="request-review")
    def request_review(self, request, pk=None):
        """The author or a lead asks peers of the team to review."""
        postmortem = self.get_object()
        data = self._input(out.ReviewRequestInputSerializer)
        wanted = set(data["reviewers"])
        reviewers = list(get_user_model().objects.filter(pk__in=wanted))
        if len(reviewers) != len(wanted):
            raise ValidationError({"reviewers": ["Give ids of the team's leads or responders."]})
        run_service(
            services.review_request, postmortem=postmortem, user=request.user, reviewers=reviewers
        )
        return self._detail(postmortem.pk)

    @extend_schema(
        summary="Approve or request changes",
        request=out.ReviewDecisionInputSerializer,
        responses={200: out.PostmortemDetailSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def review(self, request, pk=None):
        """A reviewer who was asked decides: approved or changes_requested, with a note."""
        postmortem = self.get_object()
        data = self._input(out.ReviewDecisionInputSerializer)
        run_service(
            services.review_decide,
            postmortem=postmortem,
            user=request.user,
            decision=data["decision"],
            note=data.get("note", ""),
        )
        return self._detail(postmortem.pk)

    @extend_schema(
        summary="Publish",
        request=out.PublishInputSerializer,
        responses={200: out.PostmortemDetailSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def publish(self, request, pk=None):
        """Needs an approval by someone other than the author; a lead may publish without one,
        giving a `reason` that is recorded."""
        postmortem = self.get_object()
        data = self._input(out.PublishInputSerializer)
        run_service(
            services.postmortem_publish,
            postmortem=postmortem,
            user=request.user,
            reason=data.get("reason", ""),
        )
        return self._detail(postmortem.pk)

    @extend_schema(
        summary="Amend a published postmortem",
        request=out.AmendSerializer,
        responses={200: out.PostmortemDetailSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"])
    def amend(self, request, pk=None):
        """Change a published postmortem with a `reason`: who, when, why and the text before and
        after are recorded in its amendments."""
        postmortem = self.get_object()
        data = self._input(out.AmendSerializer)
        reason = data.pop("reason")
        run_service(
            services.postmortem_amend,
            postmortem=postmortem,
            user=request.user,
            reason=reason,
            **self._fields(postmortem, data),
        )
        return self._detail(postmortem.pk)

    @extend_schema(
        summary="Add a timeline item",
        request=out.TimelineItemInputSerializer,
        responses={201: out.TimelineItemSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="timeline-items")
    def timeline_items(self, request, pk=None):
        postmortem = self.get_object()
        data = self._input(out.TimelineItemInputSerializer)
        item = run_service(
            services.timeline_item_save, postmortem=postmortem, user=request.user, **data
        )
        return Response(out.TimelineItemSerializer(item).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="Add an action item",
        request=out.ActionItemInputSerializer,
        responses={201: out.ActionItemSerializer, **WRITE_ERRORS},
    )
    @action(detail=True, methods=["post"], url_path="action-items")
    def action_items(self, request, pk=None):
        postmortem = self.get_object()
        data = self._input(out.ActionItemInputSerializer)
        owner = get_user_model().objects.filter(pk=data["owner"]).first()
        if owner is None:
            raise ValidationError({"owner": ["No such user."]})
        item = run_service(
            services.action_item_save,
            postmortem=postmortem,
            user=request.user,
            title=data["title"],
            owner=owner,
            due_date=data["due_date"],
            url=data.get("tracker_url", ""),
            reason=data.get("reason", ""),
        )
        item = selectors.action_item_list(user=request.user).get(pk=item.pk)
        return Response(
            out.ActionItemSerializer(item, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


ACTION_ITEM_FILTERS = [
    OpenApiParameter("owner", OpenApiTypes.STR, description="`me`, or a user id: items owned by."),
    OpenApiParameter("status", OpenApiTypes.STR, enum=ActionItem.Status.values),
    OpenApiParameter("overdue", OpenApiTypes.BOOL, description="Open and past the due date."),
    OpenApiParameter("team", OpenApiTypes.STR, description="Team id or slug."),
]


@extend_schema_view(
    list=extend_schema(
        summary="List action items",
        description="Action items of the postmortems the caller may read, soonest due first.",
        parameters=ACTION_ITEM_FILTERS,
        responses={200: out.ActionItemSerializer(many=True), 400: VALIDATION_ERROR},
    ),
    retrieve=extend_schema(
        summary="One action item",
        responses={200: out.ActionItemSerializer, 404: DETAIL_ERROR},
    ),
    partial_update=extend_schema(
        summary="Close or reopen",
        description="`status`: done or open. The owner, or a lead of the team.",
        request=out.ActionItemStatusInputSerializer,
        responses={
            200: out.ActionItemSerializer,
            400: VALIDATION_ERROR,
            403: DETAIL_ERROR,
            404: DETAIL_ERROR,
            409: DETAIL_ERROR,
        },
    ),
)
class ActionItemViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Action items across postmortems: who does what by when; the owner closes them."""

    queryset = ActionItem.objects.none()
    serializer_class = out.ActionItemSerializer
    pagination_class = Pagination
    lookup_value_regex = r"[0-9]+"
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):
            return ActionItem.objects.none()
        params = self.request.query_params
        owner = None
        if params.get("owner"):
            owner = self.request.user.pk if params["owner"] == "me" else as_id(params["owner"])
            if owner is None:
                raise ValidationError({"owner": ["Give `me` or a user id."]})
        status_value = params.get("status") or None
        if status_value and status_value not in ActionItem.Status.values:
            raise ValidationError({"status": ["Status is one of open, done."]})
        items = selectors.action_item_list(
            user=self.request.user,
            owner=owner,
            status=status_value,
            overdue=bool_param(params, "overdue"),
        )
        if params.get("team"):
            team = team_for_reader(params["team"], None)
            if team is None:
                raise ValidationError({"team": [f"No team “{params['team'][:100]}”."]})
            items = items.filter(postmortem__team=team)
        return items

    def get_object(self) -> ActionItem:
        item = (
            selectors.action_item_list(user=self.request.user)
            .filter(pk=int(self.kwargs["pk"]))
            .first()
        )
        if item is None:
            raise Http404("No such action item.")
        self.check_object_permissions(self.request, item)
        return item

    def update(self, request, *args, **kwargs):
        if not kwargs.get("partial"):
            raise ValidationError({"detail": ["Use PATCH with the status."]})
        item = self.get_object()
        data = out.ActionItemStatusInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        function = (
            services.action_item_close
            if data.validated_data["status"] == ActionItem.Status.DONE
            else services.action_item_reopen
        )
        run_service(function, item=item, user=request.user)
        item = selectors.action_item_list(user=request.user).get(pk=item.pk)
        return Response(self.get_serializer(item).data)


# --- routes (included under /api/v1/ by oncall/api_urls.py, in its `api` namespace) ------------

router = SimpleRouter()
router.register("postmortems", PostmortemViewSet, basename="postmortem")
router.register("action-items", ActionItemViewSet, basename="action-item")

urlpatterns = router.urls
