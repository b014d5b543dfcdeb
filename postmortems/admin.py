"""Postmortems in the admin, for team leads: their teams' postmortems with the timeline and the
action items inline, reviews and amendments shown read-only.

Every change goes through `postmortems.services`, as from the pages, so the admin refuses what
the pages refuse (an action item due before the incident, a timeline item a year off). Nobody
adds a postmortem here (drafts are made from incidents, on the incident page), and a published
postmortem is read-only: it changes only through an amendment, on its page.
"""

from django import forms
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import transaction
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html

from oncall.admin import TeamListFilter, TeamScopedAdmin, TeamScopedInline

from . import services
from .models import ActionItem, Amendment, Postmortem, ReviewComment, ReviewRequest, TimelineItem


def public_url(postmortem: Postmortem) -> str | None:
    try:
        return reverse("postmortems:detail", args=[postmortem.pk])
    except NoReverseMatch:
        return None


def _as_form_error(error: services.PostmortemError, fields) -> ValidationError:
    if error.field in fields:
        return ValidationError({error.field: error.message})
    return ValidationError(error.message)


# --- inlines -----------------------------------------------------------------------------------


class _PostmortemInline(TeamScopedInline):
    """Inlines of a postmortem: editable while it is not published, for its team's leads."""

    extra = 0

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status == Postmortem.Status.PUBLISHED:
            return False
        return super().has_change_permission(request, obj)

    def has_add_permission(self, request, obj):
        if obj is not None and obj.status == Postmortem.Status.PUBLISHED:
            return False
        return super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status == Postmortem.Status.PUBLISHED:
            return False
        return super().has_delete_permission(request, obj)


class TimelineItemForm(forms.ModelForm):
    class Meta:
        model = TimelineItem
        fields = ("at", "kind", "detection", "text", "position")
        widgets = {"text": forms.Textarea(attrs={"rows": 2, "cols": 60})}

    def __init__(self, *args, postmortem=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.postmortem = postmortem

    def clean(self):
        data = super().clean()
        if self.postmortem is not None and data.get("at") and not self.errors:
            try:
                services.timeline_item_check(
                    postmortem=self.postmortem,
                    at=data["at"],
                    text=data.get("text", ""),
                    kind=data.get("kind", ""),
                    detection=data.get("detection", ""),
                )
            except services.PostmortemError as error:
                raise _as_form_error(error, self.fields) from None
        return data


class _ParentFormSet(forms.BaseInlineFormSet):
    def get_form_kwargs(self, index):
        return {**super().get_form_kwargs(index), "postmortem": self.instance}


class TimelineItemInline(_PostmortemInline, admin.TabularInline):
    model = TimelineItem
    form = TimelineItemForm
    formset = _ParentFormSet
    fields = ("at", "kind", "detection", "text", "position")
    ordering = ("at", "position", "id")


class ActionItemForm(forms.ModelForm):
    url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        label="Tracker link",
        help_text="Optional outside link.",
    )

    class Meta:
        model = ActionItem
        fields = ("title", "owner", "due_date", "status", "url")

    def __init__(self, *args, postmortem=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.postmortem = postmortem

    def clean(self):
        data = super().clean()
        if self.postmortem is not None and not self.errors and data.get("due_date"):
            try:
                services.action_item_check(
                    postmortem=self.postmortem,
                    title=data.get("title", ""),
                    owner=data.get("owner"),
                    due_date=data["due_date"],
                )
            except services.PostmortemError as error:
                raise _as_form_error(error, self.fields) from None
        return data


class ActionItemInline(_PostmortemInline, admin.TabularInline):
    model = ActionItem
    form = ActionItemForm
    formset = _ParentFormSet
    fields = ("title", "owner", "due_date", "status", "url")
    autocomplete_fields = ()
    ordering = ("due_date", "id")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("owner")


class _ReadOnlyInline(TeamScopedInline, admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReviewRequestInline(_ReadOnlyInline):
    model = ReviewRequest
    fields = ("reviewer", "requested_by", "requested_at", "state", "decided_at", "note")
    readonly_fields = fields
    verbose_name = "review"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("reviewer", "requested_by")


class ReviewCommentInline(_ReadOnlyInline):
    model = ReviewComment
    fields = ("section", "author", "created_at", "body", "resolved")
    readonly_fields = fields
    verbose_name = "review comment"

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


class AmendmentInline(_ReadOnlyInline):
    model = Amendment
    fields = ("at", "author", "reason", "changed")
    readonly_fields = fields

    @admin.display(description="changed")
    def changed(self, obj: Amendment) -> str:
        return ", ".join(obj.changed_fields)

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("author")


# --- the postmortem ----------------------------------------------------------------------------


class PostmortemForm(forms.ModelForm):
    class Meta:
        model = Postmortem
        fields = (
            "title",
            "urgency",
            "started_at",
            "ended_at",
            "time_zone",
            "services",
            "impact",
            "users_affected_percent",
            "summary_root_cause",
            "root_cause",
            "resolution",
            "improvements",
        )


@admin.register(Postmortem)
class PostmortemAdmin(TeamScopedAdmin):
    form = PostmortemForm
    inlines = [
        TimelineItemInline,
        ActionItemInline,
        ReviewRequestInline,
        ReviewCommentInline,
        AmendmentInline,
    ]
    list_display = (
        "title",
        "team",
        "status",
        "urgency",
        "started_at",
        "author",
        "published_at",
        "public_page",
    )
    list_filter = ("status", "urgency", TeamListFilter)
    list_select_related = ("team", "author")
    search_fields = (
        "title",
        "impact",
        "summary_root_cause",
        "root_cause",
        "resolution",
        "improvements",
    )
    date_hierarchy = "started_at"
    readonly_fields = (
        "team",
        "status",
        "author",
        "incident_list",
        "published_at",
        "published_by",
        "publish_override_reason",
        "public_page",
    )
    fieldsets = (
        (None, {"fields": ("title", "team", "status", "author", "public_page", "incident_list")}),
        (
            "Issue summary",
            {
                "fields": (
                    "urgency",
                    "started_at",
                    "ended_at",
                    "time_zone",
                    "services",
                    "impact",
                    "users_affected_percent",
                    "summary_root_cause",
                )
            },
        ),
        ("Root cause and resolution", {"fields": ("root_cause", "resolution")}),
        ("Corrective and preventative measures", {"fields": ("improvements",)}),
        ("Publication", {"fields": ("published_at", "published_by", "publish_override_reason")}),
    )

    @admin.display(description="public page")
    def public_page(self, obj: Postmortem):
        url = public_url(obj)
        if not url:
            return "—"
        return format_html('<a href="{}">Open the page</a>', url)

    @admin.display(description="incidents")
    def incident_list(self, obj: Postmortem) -> str:
        return (
            ", ".join(f"#{i.pk} {i.title}" for i in obj.incidents.order_by("triggered_at")) or "—"
        )

    def view_on_site(self, obj):
        return public_url(obj)

    def has_add_permission(self, request):
        return False  # drafts are made from resolved incidents, on the incident page

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status == Postmortem.Status.PUBLISHED:
            return False  # read-only: a published postmortem changes through an amendment
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if obj is not None and obj.status == Postmortem.Status.PUBLISHED:
            return request.user.is_superuser
        return super().has_delete_permission(request, obj)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        field = super().formfield_for_manytomany(db_field, request, **kwargs)
        if db_field.name == "services":
            team_id = getattr(request, "_postmortem_team_id", None)
            if team_id is not None:
                field.queryset = field.queryset.filter(team_id=team_id)
        return field

    def get_form(self, request, obj=None, change=False, **kwargs):
        request._postmortem_team_id = obj.team_id if obj is not None else None
        return super().get_form(request, obj, change, **kwargs)

    # Saving goes through the services (the form already validated the same rules).
    @transaction.atomic
    def save_model(self, request, obj, form, change):
        fields = {
            name: form.cleaned_data[name]
            for name in form.changed_data
            if name in services.EDITABLE_FIELDS
        }
        if fields:
            fresh = Postmortem.objects.get(pk=obj.pk)
            services.postmortem_update(postmortem=fresh, user=request.user, **fields)

    def save_related(self, request, form, formsets, change):
        # services were set by postmortem_update; only the inlines are left.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)

    def save_formset(self, request, form, formset, change):
        postmortem = form.instance
        # What the admin's history message lists (Django's own save would set these).
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for row in formset.deleted_forms:
            if row.instance.pk:
                formset.deleted_objects.append(row.instance)
        for row in formset.forms:
            if row in formset.deleted_forms or not row.has_changed():
                continue
            if row.instance.pk:
                formset.changed_objects.append((row.instance, row.changed_data))
            else:
                formset.new_objects.append(row.instance)
        if formset.model is TimelineItem:
            for row in formset.deleted_forms:
                if row.instance.pk:
                    services.timeline_item_delete(item=row.instance, user=request.user)
            for row in formset.forms:
                if row in formset.deleted_forms or not row.has_changed():
                    continue
                data = row.cleaned_data
                services.timeline_item_save(
                    postmortem=postmortem,
                    user=request.user,
                    item=row.instance if row.instance.pk else None,
                    at=data["at"],
                    kind=data["kind"],
                    detection=data.get("detection", ""),
                    text=data["text"],
                    position=data.get("position"),
                )
        elif formset.model is ActionItem:
            for row in formset.deleted_forms:
                if row.instance.pk:
                    services.action_item_delete(item=row.instance, user=request.user)
            for row in formset.forms:
                if row in formset.deleted_forms or not row.has_changed():
                    continue
                data = row.cleaned_data
                existing = row.instance if row.instance.pk else None
                if existing is not None:
                    existing = ActionItem.objects.get(pk=existing.pk)  # as stored
                item = services.action_item_save(
                    postmortem=postmortem,
                    user=request.user,
                    item=existing,
                    title=data["title"],
                    owner=data["owner"],
                    due_date=data["due_date"],
                    url=data.get("url", ""),
                )
                wanted = data.get("status") or ActionItem.Status.OPEN
                if wanted != item.status:
                    if wanted == ActionItem.Status.DONE:
                        services.action_item_close(item=item, user=request.user)
                    else:
                        services.action_item_reopen(item=item, user=request.user)
        # Reviews, comments and amendments are read-only here: nothing to save.
