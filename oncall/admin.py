"""The admin for team leads and superusers: teams, memberships and people (docs/permissions.md).

Leads are not staff and hold no Django model permissions. What a lead may see and change comes
from their memberships (`oncall.access`): `TeamScopedAdmin` and `TeamScopedInline` below filter
every list, every object and every choice to the teams the lead leads. Superusers see everything.
Anybody else who gets into the admin (staff who lead no team) goes through Django's ordinary
model-permission check, unscoped, exactly as in a stock Django admin.
"""

from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, Exists, OuterRef, Prefetch, QuerySet
from django.urls import NoReverseMatch, reverse
from django.utils.html import format_html, format_html_join
from django.utils.text import slugify

from . import access, services
from .models import (
    ContactMethod,
    Membership,
    NotificationRule,
    Profile,
    Role,
    Team,
    time_zone_choices,
)

User = get_user_model()


# --- ordered rows (escalation steps, rotation members) ---------------------------------------


class OrderedRowForm(forms.ModelForm):
    """An inline row with an "Order" number; the stored 0-based `position` shows as 1, 2, …"""

    order_help_text = "Rows go in this order. Leave empty to add at the end."
    order = forms.IntegerField(
        required=False,
        min_value=1,
        label="Order",
        widget=forms.NumberInput(attrs={"class": "oncall-order"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["order"].help_text = self.order_help_text
        if self.instance.pk is not None:
            self.initial.setdefault("order", self.instance.position + 1)


def in_chosen_order(rows: list[forms.BaseForm]) -> list[forms.BaseForm]:
    """Rows sorted by their "Order" number; rows without one keep their place at the end."""
    keyed = []
    for index, form in enumerate(rows):
        order = form.cleaned_data.get("order") if hasattr(form, "cleaned_data") else None
        keyed.append((order if order is not None else float("inf"), index, form))
    return [form for _, _, form in sorted(keyed, key=lambda row: row[:2])]


def renumber_positions(rows: QuerySet, ordered_pks: list[int]) -> None:
    """Positions 0..n-1: the rows in the order given, then any row the post left out."""
    current = dict(rows.order_by("position", "id").values_list("pk", "position"))
    rest = [pk for pk in current if pk not in ordered_pks]
    for position, pk in enumerate([pk for pk in ordered_pks if pk in current] + rest):
        if current[pk] != position:
            rows.model.objects.filter(pk=pk).update(position=position)


ADMIN_MEDIA = forms.Media(css={"all": ["oncall/admin.css"]}, js=["oncall/admin.js"])


def is_scoped(request) -> bool:
    """True when the request is a lead's: everything they see is cut to the teams they lead.

    Superusers are never scoped. Users who lead no team fall back to Django's permissions."""
    user = request.user
    return bool(user.is_active and not user.is_superuser and access.is_lead(user))


def led_team_ids(request) -> list[int]:
    return sorted(access.lead_team_ids(request.user))


def time_zone_field(**kwargs) -> forms.ChoiceField:
    """A select of the IANA zones this machine knows (the model validator checks it again)."""
    return forms.ChoiceField(choices=time_zone_choices, initial="UTC", **kwargs)


def choices_for_lead(
    request, model, queryset: QuerySet | None = None, site: admin.AdminSite = admin.site
) -> QuerySet | None:
    """What a lead may pick for a relation to `model`: the objects its admin shows them, or
    members of their teams for people. None when the model is not owned by a team."""
    if model is User:
        base = queryset if queryset is not None else User._default_manager.all()
        return (
            base.filter(memberships__team__in=led_team_ids(request)).distinct().order_by("username")
        )
    model_admin = site._registry.get(model)
    if not isinstance(model_admin, TeamScopedAdmin):
        return None
    base = queryset if queryset is not None else model._default_manager.all()
    return model_admin.limit_to_led_teams(request, base)


class RelationChoicesMixin:
    """Foreign-key and many-to-many choices limited to the lead's own teams' objects."""

    # Relations left alone (e.g. the user picked for a membership may be anybody).
    unscoped_relations: tuple[str, ...] = ()

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if is_scoped(request) and db_field.name not in self.unscoped_relations:
            queryset = choices_for_lead(
                request, db_field.related_model, kwargs.get("queryset"), self.admin_site
            )
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def formfield_for_manytomany(self, db_field, request, **kwargs):
        if is_scoped(request) and db_field.name not in self.unscoped_relations:
            queryset = choices_for_lead(
                request, db_field.related_model, kwargs.get("queryset"), self.admin_site
            )
            if queryset is not None:
                kwargs["queryset"] = queryset
        return super().formfield_for_manytomany(db_field, request, **kwargs)


class TeamListFilter(admin.SimpleListFilter):
    """Filter by team, offering only the teams the user may see (not every team's name)."""

    title = "team"
    parameter_name = "team"

    def lookups(self, request, model_admin):
        teams = Team.objects.all()
        if is_scoped(request):
            teams = teams.filter(pk__in=led_team_ids(request))
        return [(str(pk), name) for pk, name in teams.values_list("pk", "name")]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        lookup = "pk" if self.model_admin_team_field is None else self.model_admin_team_field
        return queryset.filter(**{lookup: self.value()})

    def __init__(self, request, params, model, model_admin):
        self.model_admin_team_field = getattr(model_admin, "team_field", "team")
        super().__init__(request, params, model, model_admin)


class TeamScopedAdmin(RelationChoicesMixin, admin.ModelAdmin):
    """A model admin whose objects belong to a team, reached through `team_field`.

    `team_field` is a lookup path to the owning team ("team", "service__team", "policy__team");
    None means the object is the team itself. For a lead every queryset, every per-object
    permission and every relation choice is cut to the teams they lead, so another team's object
    is simply not there (the admin answers as for a deleted object). Superusers see everything;
    other users get Django's own model permissions.
    """

    team_field: str | None = "team"

    # -- scoping ---------------------------------------------------------------------------
    def limit_to_led_teams(self, request, queryset: QuerySet) -> QuerySet:
        lookup = "pk__in" if self.team_field is None else f"{self.team_field}__in"
        return queryset.filter(**{lookup: led_team_ids(request)})

    def team_id_of(self, obj) -> int | None:
        """The id of the team owning `obj`, following `team_field` attribute by attribute."""
        if self.team_field is None:
            return obj.pk
        *path, last = self.team_field.split("__")
        for name in path:
            obj = getattr(obj, name, None)
            if obj is None:
                return None
        return getattr(obj, f"{last}_id", None)

    def led_by_user(self, request, obj) -> bool:
        return self.team_id_of(obj) in access.lead_team_ids(request.user)

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if is_scoped(request):
            queryset = self.limit_to_led_teams(request, queryset)
        return queryset

    # -- permissions -----------------------------------------------------------------------
    def has_module_permission(self, request):
        return is_scoped(request) or super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        if is_scoped(request):
            return obj is None or self.led_by_user(request, obj)
        return super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        if is_scoped(request):
            return obj is None or self.led_by_user(request, obj)
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if is_scoped(request):
            return obj is None or self.led_by_user(request, obj)
        return super().has_delete_permission(request, obj)

    def has_add_permission(self, request):
        # A lead may add objects; the team choices keep them inside their own teams.
        return is_scoped(request) or super().has_add_permission(request)

    @property
    def media(self):
        return super().media + ADMIN_MEDIA


class TeamScopedInline(RelationChoicesMixin, admin.options.InlineModelAdmin):
    """An inline on a team-owned parent: a lead may edit it exactly when they lead the parent's
    team (or are adding a new parent, whose team choices are already limited)."""

    def parent_team_id(self, obj) -> int | None:
        return obj.pk if isinstance(obj, Team) else getattr(obj, "team_id", None)

    def _lead_may(self, request, obj) -> bool:
        return obj is None or self.parent_team_id(obj) in access.lead_team_ids(request.user)

    def has_view_permission(self, request, obj=None):
        if is_scoped(request):
            return self._lead_may(request, obj)
        return super().has_view_permission(request, obj)

    def has_change_permission(self, request, obj=None):
        if is_scoped(request):
            return self._lead_may(request, obj)
        return super().has_change_permission(request, obj)

    def has_add_permission(self, request, obj):
        if is_scoped(request):
            return self._lead_may(request, obj)
        return super().has_add_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        if is_scoped(request):
            return self._lead_may(request, obj)
        return super().has_delete_permission(request, obj)


# ---------------------------------------------------------------------------------------------
# Teams and memberships
# ---------------------------------------------------------------------------------------------


class MembershipInline(TeamScopedInline, admin.TabularInline):
    model = Membership
    fields = ("user", "role")
    extra = 1
    # A lead adds people who are in none of their teams yet, so any account may be picked.
    unscoped_relations = ("user",)


class TeamForm(forms.ModelForm):
    class Meta:
        model = Team
        fields = ("name", "slug", "description")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["slug"].required = False
        self.fields["slug"].help_text = "Used in links. Made from the name when left empty."

    def clean_slug(self) -> str:
        return self.cleaned_data.get("slug") or slugify(self.cleaned_data.get("name") or "")


@admin.register(Team)
class TeamAdmin(TeamScopedAdmin):
    team_field = None
    form = TeamForm
    inlines = [MembershipInline]
    list_display = ("name", "slug", "members_count")
    search_fields = ("name",)
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_members_count=Count("memberships"))

    @admin.display(description="members", ordering="_members_count")
    def members_count(self, obj: Team) -> int:
        return obj._members_count

    def get_fields(self, request, obj=None):
        fields = ["name", "slug", "description"]
        return fields + ["services_list"] if obj is not None else fields

    def get_readonly_fields(self, request, obj=None):
        return ("services_list",) if obj is not None else ()

    @admin.display(description="services")
    def services_list(self, obj: Team):
        rows = list(obj.services.select_related("escalation_policy").order_by("name"))
        if not rows:
            return "No services yet."
        items = []
        for service in rows:
            try:
                url = reverse("admin:incidents_service_change", args=[service.pk])
            except NoReverseMatch:
                url = ""
            items.append(
                (url, service.name, service.get_status_display(), service.escalation_policy.name)
            )
        return format_html(
            '<ul class="oncall-plain-list">{}</ul>',
            format_html_join(
                "",
                '<li><a href="{}">{}</a> — {}, escalation policy “{}”</li>',
                items,
            ),
        )

    def save_formset(self, request, form, formset, change):
        if formset.model is Membership:
            save_memberships(team=form.instance, formset=formset)
            access.forget_roles(request.user)
        else:
            super().save_formset(request, form, formset, change)

    def save_related(self, request, form, formsets, change):
        """On add: memberships first, then the creator as lead if needed, then the defaults
        (the default schedule takes the first lead's time zone, the policy pages the leads)."""
        super().save_related(request, form, formsets, change)
        if change:
            return
        team = form.instance
        user = request.user
        if is_scoped(request) and not team.memberships.filter(user=user).exists():
            services.membership_set(team=team, user=user, role=Role.LEAD)
        access.forget_roles(user)
        services.team_setup_defaults(team=team)


def save_memberships(*, team: Team, formset) -> None:
    """Write the membership inline through the services. Removals come first so that swapping
    two people between rows, or removing and re-adding someone, ends up as typed."""
    originals = {m.pk: m for m in Membership.objects.filter(team=team).select_related("user")}
    formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
    to_set = []
    for form in formset.forms:
        pk = form.instance.pk
        original = originals.get(pk) if pk else None
        if original is not None and form in formset.deleted_forms:
            services.membership_remove(team=team, user=original.user)
            formset.deleted_objects.append(original)
            continue
        if not form.has_changed() or form in formset.deleted_forms:
            continue
        user, role = form.cleaned_data["user"], form.cleaned_data["role"]
        if original is not None and original.user_id != user.pk:
            services.membership_remove(team=team, user=original.user)
        to_set.append((form, original, user, role))
    for form, original, user, role in to_set:
        membership = services.membership_set(team=team, user=user, role=role)
        form.instance = membership
        if original is None:
            formset.new_objects.append(membership)
        else:
            formset.changed_objects.append((membership, form.changed_data))


# ---------------------------------------------------------------------------------------------
# People: superusers only (leads hold no Django permissions, so the stock checks keep them out)
# ---------------------------------------------------------------------------------------------


class ProfileForm(forms.ModelForm):
    time_zone = time_zone_field(help_text="Times on the pages are shown in this zone.")

    class Meta:
        model = Profile
        fields = ("display_name", "time_zone", "phone")


class ProfileInline(admin.StackedInline):
    model = Profile
    form = ProfileForm
    can_delete = False
    max_num = 1
    min_num = 1


class ContactMethodInline(admin.TabularInline):
    model = ContactMethod
    fields = ("kind", "label", "address", "verified")
    extra = 0


class NotificationRuleInline(admin.TabularInline):
    model = NotificationRule
    fields = ("urgency", "delay_minutes", "contact_method")
    extra = 0

    def get_formset(self, request, obj=None, **kwargs):
        formset = super().get_formset(request, obj, **kwargs)
        field = formset.form.base_fields.get("contact_method")
        if field is not None:
            # Only this person's own methods (NotificationRule.clean() checks it again).
            field.queryset = (
                ContactMethod.objects.filter(user=obj) if obj else ContactMethod.objects.none()
            )
            field.help_text = "Save a new contact method first, then pick it here."
        return formset


class HasContactMethodsFilter(admin.SimpleListFilter):
    title = "contact methods"
    parameter_name = "has_contact_methods"
    related = ContactMethod

    def lookups(self, request, model_admin):
        return [("yes", "Has some"), ("no", "Has none")]

    def queryset(self, request, queryset):
        exists = Exists(self.related.objects.filter(user=OuterRef("pk")))
        if self.value() == "yes":
            return queryset.filter(exists)
        if self.value() == "no":
            return queryset.filter(~exists)
        return queryset


class HasNotificationRulesFilter(HasContactMethodsFilter):
    title = "notification rules"
    parameter_name = "has_notification_rules"
    related = NotificationRule


admin.site.unregister(User)


@admin.register(User)
class OncallUserAdmin(UserAdmin):
    """Django's user admin plus what paging needs: profile, contact methods and rules."""

    inlines = [ProfileInline, ContactMethodInline, NotificationRuleInline]
    list_display = ("username", "display_name", "email", "team_names", "is_staff", "is_superuser")
    list_filter = (
        ("memberships__team", admin.RelatedOnlyFieldListFilter),
        HasContactMethodsFilter,
        HasNotificationRulesFilter,
        "is_staff",
        "is_superuser",
        "is_active",
    )
    search_fields = ("username", "email", "first_name", "last_name", "profile__display_name")
    list_select_related = ("profile",)

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch("memberships", queryset=Membership.objects.select_related("team"))
            )
        )

    def get_inline_instances(self, request, obj=None):
        # The add page only creates the account; profile and contact methods come after.
        return [] if obj is None else super().get_inline_instances(request, obj)

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            services.profile_for(obj)

    @admin.display(description="display name", ordering="profile__display_name")
    def display_name(self, obj) -> str:
        try:
            return obj.profile.display_name
        except Profile.DoesNotExist:
            return ""

    @admin.display(description="teams")
    def team_names(self, obj) -> str:
        return ", ".join(
            f"{m.team.name} ({m.get_role_display().lower()})" for m in obj.memberships.all()
        )

    @property
    def media(self):
        return super().media + ADMIN_MEDIA
