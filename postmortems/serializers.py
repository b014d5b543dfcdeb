"""What the REST API shows of postmortems and action items, and what it accepts.

Output only reads what `postmortems.selectors` loaded (no queries of its own); input serializers
check shapes and ranges, and the views then call `postmortems.services`, where the rules live.
Text fields are the raw Markdown, as written.
"""

from django.urls import NoReverseMatch, reverse
from rest_framework import serializers

from incidents.serializers import (
    MAX_ID,
    NamedChoiceField,
    ServiceRefSerializer,
    TeamRefSerializer,
    UserRefSerializer,
    urgency_field,
)
from oncall.models import validate_time_zone

from .models import (
    ActionItem,
    Amendment,
    Postmortem,
    ReviewRequest,
    TimelineItem,
)
from .words import check_words, word_count

TEXT_MAX = 50_000


def status_field(**kwargs) -> NamedChoiceField:
    return NamedChoiceField(
        enum_name="PostmortemStatusEnum", choices=Postmortem.Status.choices, **kwargs
    )


def action_item_status_field(**kwargs) -> NamedChoiceField:
    return NamedChoiceField(
        enum_name="ActionItemStatusEnum", choices=ActionItem.Status.choices, **kwargs
    )


class PostmortemRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    title = serializers.CharField(read_only=True)
    status = status_field(read_only=True)


class PostmortemSerializer(serializers.ModelSerializer):
    """A postmortem in a list: what, which team, its status and the outage window."""

    url = serializers.HyperlinkedIdentityField(view_name="api:postmortem-detail")
    team = TeamRefSerializer(read_only=True)
    author = UserRefSerializer(read_only=True)
    status = status_field(read_only=True)
    urgency = urgency_field(read_only=True)
    services = ServiceRefSerializer(many=True, read_only=True)
    duration_seconds = serializers.SerializerMethodField()

    class Meta:
        model = Postmortem
        fields = [
            "id",
            "url",
            "title",
            "status",
            "urgency",
            "team",
            "author",
            "services",
            "started_at",
            "ended_at",
            "duration_seconds",
            "time_zone",
            "published_at",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    def get_duration_seconds(self, postmortem) -> int | None:
        duration = postmortem.duration
        return None if duration is None else int(duration.total_seconds())


def timeline_kind_field(**kwargs) -> NamedChoiceField:
    return NamedChoiceField(
        enum_name="PostmortemTimelineKindEnum", choices=TimelineItem.Kind.choices, **kwargs
    )


def detection_field(**kwargs) -> NamedChoiceField:
    return NamedChoiceField(
        enum_name="DetectionEnum",
        choices=[("", "—"), *TimelineItem.Detection.choices],
        **kwargs,
    )


class TimelineItemSerializer(serializers.ModelSerializer):
    kind = timeline_kind_field(read_only=True)
    detection = detection_field(read_only=True)

    class Meta:
        model = TimelineItem
        fields = ["id", "at", "kind", "detection", "text", "position"]
        read_only_fields = fields


class ActionItemSerializer(serializers.ModelSerializer):
    """An action item: the task, its owner and due date, whether it is done or overdue."""

    url = serializers.HyperlinkedIdentityField(view_name="api:action-item-detail")
    owner = UserRefSerializer(read_only=True)
    done_by = UserRefSerializer(read_only=True, allow_null=True)
    status = action_item_status_field(read_only=True)
    is_overdue = serializers.BooleanField(read_only=True)
    postmortem = PostmortemRefSerializer(read_only=True)
    tracker_url = serializers.URLField(source="url", read_only=True)

    class Meta:
        model = ActionItem
        fields = [
            "id",
            "url",
            "title",
            "owner",
            "due_date",
            "status",
            "is_overdue",
            "tracker_url",
            "done_at",
            "done_by",
            "postmortem",
        ]
        read_only_fields = fields


class ReviewSerializer(serializers.ModelSerializer):
    reviewer = UserRefSerializer(read_only=True)
    requested_by = UserRefSerializer(read_only=True, allow_null=True)
    state = NamedChoiceField(
        enum_name="ReviewStateEnum", choices=ReviewRequest.State.choices, read_only=True
    )

    class Meta:
        model = ReviewRequest
        fields = ["id", "reviewer", "requested_by", "requested_at", "state", "decided_at", "note"]
        read_only_fields = fields


class AmendmentSerializer(serializers.ModelSerializer):
    author = UserRefSerializer(read_only=True)

    class Meta:
        model = Amendment
        fields = ["id", "at", "author", "reason", "before", "after"]
        read_only_fields = fields


class PostmortemDetailSerializer(PostmortemSerializer):
    """One postmortem in its fixed format (Markdown as written), with its timeline, action items,
    reviews and amendments."""

    incidents = serializers.SerializerMethodField()
    timeline_items = TimelineItemSerializer(many=True, read_only=True)
    action_items = serializers.SerializerMethodField()
    reviews = ReviewSerializer(many=True, read_only=True)
    amendments = AmendmentSerializer(many=True, read_only=True)
    published_by = UserRefSerializer(read_only=True, allow_null=True)
    markdown_url = serializers.SerializerMethodField()
    word_count = serializers.SerializerMethodField(
        help_text="Words of the summary, timeline, root cause, resolution, measures and action "
        "items; the target is 400–600."
    )
    word_count_warning = serializers.SerializerMethodField(
        help_text="Why the length is outside the target; null within it."
    )

    class Meta(PostmortemSerializer.Meta):
        fields = [
            *PostmortemSerializer.Meta.fields,
            "incidents",
            "impact",
            "users_affected_percent",
            "summary_root_cause",
            "root_cause",
            "resolution",
            "improvements",
            "timeline_items",
            "action_items",
            "reviews",
            "published_by",
            "publish_override_reason",
            "amendments",
            "markdown_url",
            "word_count",
            "word_count_warning",
        ]
        read_only_fields = fields

    def get_incidents(self, postmortem) -> list[int]:
        return [incident.pk for incident in postmortem.incidents.all()]

    def get_action_items(self, postmortem) -> list[dict]:
        # The postmortem is the parent here: say so without loading it again.
        rows = []
        for item in postmortem.action_items.all():
            item.postmortem = postmortem
            rows.append(item)
        return ActionItemSerializer(rows, many=True, context=self.context).data

    def get_word_count(self, postmortem) -> int:
        return word_count(postmortem)

    def get_word_count_warning(self, postmortem) -> str | None:
        check = check_words(word_count(postmortem))
        return None if check.within else check.message

    def get_markdown_url(self, postmortem) -> str | None:
        """Where the whole postmortem downloads as one Markdown document."""
        try:
            path = reverse("postmortems:download", args=[postmortem.pk])
        except NoReverseMatch:
            return None
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request else path


# --- input -------------------------------------------------------------------------------------


class PostmortemCreateSerializer(serializers.Serializer):
    incidents = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=50,
        help_text="Ids of resolved incidents of one team; the draft is filled from them. If one "
        "already has a postmortem, that one is returned (200) instead.",
    )


class PostmortemWriteSerializer(serializers.Serializer):
    """The fields a person writes; every one optional (PATCH)."""

    title = serializers.CharField(max_length=200, required=False)
    urgency = urgency_field(required=False)
    started_at = serializers.DateTimeField(required=False)
    ended_at = serializers.DateTimeField(required=False)
    time_zone = serializers.CharField(
        max_length=64, required=False, validators=[validate_time_zone]
    )
    impact = serializers.CharField(max_length=TEXT_MAX, required=False, allow_blank=True)
    users_affected_percent = serializers.DecimalField(
        max_digits=5,
        decimal_places=2,
        min_value=0,
        max_value=100,
        required=False,
        allow_null=True,
    )
    summary_root_cause = serializers.CharField(
        max_length=TEXT_MAX, required=False, allow_blank=True, trim_whitespace=False
    )
    root_cause = serializers.CharField(
        max_length=TEXT_MAX, required=False, allow_blank=True, trim_whitespace=False
    )
    resolution = serializers.CharField(
        max_length=TEXT_MAX, required=False, allow_blank=True, trim_whitespace=False
    )
    improvements = serializers.CharField(
        max_length=TEXT_MAX, required=False, allow_blank=True, trim_whitespace=False
    )
    services = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        required=False,
        max_length=100,
        help_text="Ids of the team's affected services (replaces the list).",
    )


class AmendSerializer(PostmortemWriteSerializer):
    reason = serializers.CharField(max_length=5000, help_text="Why the published text changes.")


class ReviewRequestInputSerializer(serializers.Serializer):
    reviewers = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=20,
        help_text="User ids of leads or responders of the team, not the author.",
    )


class ReviewDecisionInputSerializer(serializers.Serializer):
    decision = serializers.ChoiceField(choices=["approved", "changes_requested"])
    note = serializers.CharField(max_length=5000, required=False, allow_blank=True)


class PublishInputSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=5000,
        required=False,
        allow_blank=True,
        help_text="Only for a lead publishing without an approval: why (recorded).",
    )


class TimelineItemInputSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = timeline_kind_field(default="action")
    detection = detection_field(required=False, allow_blank=True, default="")
    text = serializers.CharField(max_length=2000)
    reason = serializers.CharField(
        max_length=5000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Needed on a published postmortem: the change is recorded as an amendment.",
    )


class ActionItemInputSerializer(serializers.Serializer):
    title = serializers.CharField(max_length=300)
    owner = serializers.IntegerField(min_value=1, max_value=MAX_ID, help_text="User id.")
    due_date = serializers.DateField()
    tracker_url = serializers.URLField(max_length=500, required=False, allow_blank=True)
    reason = serializers.CharField(
        max_length=5000,
        required=False,
        allow_blank=True,
        default="",
        help_text="Needed on a published postmortem: the change is recorded as an amendment.",
    )


class ActionItemStatusInputSerializer(serializers.Serializer):
    status = action_item_status_field()
