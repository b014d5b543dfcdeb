"""The admin for teams, memberships and people: what a form post does, and what it refuses."""

import pytest
from django.contrib.admin.widgets import RelatedFieldWidgetWrapper
from django.contrib.auth import get_user_model
from django.forms import MultiWidget
from django.urls import reverse

from incidents.models import EscalationPolicy, Integration, Service
from oncall import services
from oncall.models import ContactMethod, Membership, NotificationRule, Role, Team
from oncall.tests.factories import TeamFactory, UserFactory, contact_method
from schedules.models import Schedule

pytestmark = pytest.mark.django_db

User = get_user_model()


def _widget(field):
    widget = field.widget
    while isinstance(widget, RelatedFieldWidgetWrapper):
        widget = widget.widget
    return widget


def admin_form_data(response) -> dict:
    """What the browser would post back from an admin add/change page as it was shown: the
    main form, every inline form and the inlines' management forms."""
    data: dict = {}
    context = response.context
    forms = [context["adminform"].form]
    for inline in context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = management[name].value()
        forms.extend(formset.forms)
    for form in forms:
        for bound in form:
            if bound.field.disabled:
                continue
            value, widget = bound.value(), _widget(bound.field)
            if isinstance(widget, MultiWidget):
                parts = widget.decompress(value)
                for index, (part, sub) in enumerate(zip(parts, widget.widgets, strict=True)):
                    data[f"{bound.html_name}_{index}"] = sub.format_value(part) or ""
            elif isinstance(value, bool):
                if value:
                    data[bound.html_name] = "on"
            elif isinstance(value, list | tuple):
                data[bound.html_name] = [str(item) for item in value]
            elif value is not None:
                data[bound.html_name] = value
    return data


def errors_of(response) -> dict:
    """Errors of the main form, each inline form (by prefix) and each inline formset."""
    assert response.status_code == 200, response.status_code
    found = {}
    form = response.context["adminform"].form
    if form.errors:
        found["form"] = form.errors
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        if formset.non_form_errors():
            found[formset.prefix] = formset.non_form_errors()
        for each in formset.forms:
            if each.errors:
                found[each.prefix] = each.errors
    return found


def admin_url(model, view: str, *args) -> str:
    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


def team_add_data(name: str, members=()) -> dict:
    data = {
        "name": name,
        "slug": "",
        "description": "",
        "memberships-TOTAL_FORMS": str(len(members)),
        "memberships-INITIAL_FORMS": "0",
        "memberships-MIN_NUM_FORMS": "0",
        "memberships-MAX_NUM_FORMS": "1000",
    }
    for index, (user, role) in enumerate(members):
        data[f"memberships-{index}-user"] = str(user.pk)
        data[f"memberships-{index}-role"] = role
    return data


@pytest.fixture
def root(client):
    user = UserFactory(username="root", is_superuser=True)
    client.force_login(user)
    return user


# -- teams -------------------------------------------------------------------------------------


def test_a_team_made_in_the_admin_gets_its_defaults(client, root):
    ada = UserFactory(username="ada", time_zone="Europe/Paris")
    bob = UserFactory(username="bob")

    response = client.post(
        admin_url(Team, "add"),
        team_add_data("Payments", [(ada, Role.LEAD), (bob, Role.RESPONDER)]),
    )

    assert response.status_code == 302, errors_of(response)
    team = Team.objects.get(name="Payments")
    assert team.slug == "payments"
    assert dict(team.memberships.values_list("user__username", "role")) == {
        "ada": Role.LEAD,
        "bob": Role.RESPONDER,
    }
    schedule = team.schedules.get()
    assert schedule.time_zone == "Europe/Paris"
    policy = EscalationPolicy.objects.get(team=team)
    steps = list(policy.steps.order_by("position"))
    assert [list(s.target_schedules.all()) for s in steps] == [[schedule], []]
    assert list(steps[1].target_users.all()) == [ada]
    service = Service.objects.get(team=team)
    assert service.escalation_policy == policy
    assert service.integrations.get().kind == Integration.Kind.EVENTS_V2
    assert not team.memberships.filter(user=root).exists()  # superusers are not added


def test_a_lead_who_makes_a_team_becomes_its_lead(client):
    lead = UserFactory(username="lead", time_zone="Asia/Tokyo")
    TeamFactory(name="Payments", lead=lead)
    client.force_login(lead)

    response = client.post(admin_url(Team, "add"), team_add_data("Search"))

    assert response.status_code == 302, errors_of(response)
    team = Team.objects.get(name="Search")
    assert team.memberships.get().user == lead
    assert team.memberships.get().role == Role.LEAD
    assert team.schedules.get().time_zone == "Asia/Tokyo"
    last_step = EscalationPolicy.objects.get(team=team).steps.order_by("position").last()
    assert list(last_step.target_users.all()) == [lead]
    # And the new team is the lead's to edit straight away.
    assert client.get(admin_url(Team, "change", team.pk)).status_code == 200


def test_a_lead_who_puts_themselves_in_the_inline_keeps_that_role(client):
    lead = UserFactory(username="lead")
    TeamFactory(name="Payments", lead=lead)
    other = UserFactory(username="other")
    client.force_login(lead)

    response = client.post(
        admin_url(Team, "add"),
        team_add_data("Search", [(other, Role.LEAD), (lead, Role.RESPONDER)]),
    )

    assert response.status_code == 302, errors_of(response)
    team = Team.objects.get(name="Search")
    assert dict(team.memberships.values_list("user__username", "role")) == {
        "other": Role.LEAD,
        "lead": Role.RESPONDER,
    }


def test_a_team_with_a_taken_name_is_refused_with_nothing_made(client, root):
    TeamFactory(name="Payments")
    response = client.post(admin_url(Team, "add"), team_add_data("Payments"))
    assert "name" in errors_of(response)["form"]
    assert Team.objects.count() == 1
    assert Schedule.objects.count() == 1


def test_membership_edits_go_through_the_inline(client, root):
    ada, bob, cyd = (UserFactory(username=name) for name in ("ada", "bob", "cyd"))
    team = TeamFactory(name="Payments", lead=ada, members=[(bob, Role.RESPONDER)])
    page = client.get(admin_url(Team, "change", team.pk))
    data = admin_form_data(page)
    rows = {data[f"memberships-{i}-user"]: i for i in range(2)}
    # Bob becomes an observer, Ada's row is deleted, Cyd is added as lead in the extra row.
    data[f"memberships-{rows[bob.pk]}-role"] = Role.OBSERVER
    data[f"memberships-{rows[ada.pk]}-DELETE"] = "on"
    data["memberships-2-user"] = str(cyd.pk)
    data["memberships-2-role"] = Role.LEAD

    response = client.post(admin_url(Team, "change", team.pk), data)

    assert response.status_code == 302, errors_of(response)
    assert dict(team.memberships.values_list("user__username", "role")) == {
        "bob": Role.OBSERVER,
        "cyd": Role.LEAD,
    }


def test_swapping_people_between_membership_rows_keeps_both(client, root):
    ada, bob = UserFactory(username="ada"), UserFactory(username="bob")
    team = TeamFactory(name="Payments", lead=ada, members=[(bob, Role.RESPONDER)])
    data = admin_form_data(client.get(admin_url(Team, "change", team.pk)))
    first, second = data["memberships-0-user"], data["memberships-1-user"]
    data["memberships-0-user"], data["memberships-1-user"] = second, first
    roles = data["memberships-0-role"], data["memberships-1-role"]

    response = client.post(admin_url(Team, "change", team.pk), data)

    assert response.status_code == 302, errors_of(response)
    assert dict(team.memberships.values_list("user_id", "role")) == {
        second: roles[0],
        first: roles[1],
    }


def test_the_same_person_twice_in_a_team_is_an_error(client, root):
    ada = UserFactory(username="ada")
    team = TeamFactory(name="Payments", lead=ada)
    data = admin_form_data(client.get(admin_url(Team, "change", team.pk)))
    data["memberships-1-user"] = str(ada.pk)
    data["memberships-1-role"] = Role.RESPONDER

    response = client.post(admin_url(Team, "change", team.pk), data)

    assert "memberships" in errors_of(response)
    assert team.memberships.get().role == Role.LEAD


def test_the_team_page_lists_its_services_read_only(client, root):
    team = TeamFactory(name="Payments")
    response = client.get(admin_url(Team, "change", team.pk))
    assert response.status_code == 200
    assert "Payments default service" in response.content.decode()
    assert "services_list" not in response.context["adminform"].form.fields


def test_the_team_list_counts_members(client, root):
    TeamFactory(name="Payments", members=[(UserFactory(), Role.RESPONDER)])
    response = client.get(admin_url(Team, "changelist") + "?q=pay")
    (team,) = response.context["cl"].result_list
    assert team._members_count == 2


# -- schedules ---------------------------------------------------------------------------------


def test_a_schedule_with_an_unknown_time_zone_is_refused(client, root):
    team = TeamFactory(name="Payments")
    schedule = team.schedules.get()
    data = admin_form_data(client.get(admin_url(Schedule, "change", schedule.pk)))
    data["time_zone"] = "Mars/Olympus_Mons"

    response = client.post(admin_url(Schedule, "change", schedule.pk), data)

    assert "time_zone" in errors_of(response)["form"]
    schedule.refresh_from_db()
    assert schedule.time_zone != "Mars/Olympus_Mons"


def test_a_schedule_time_zone_is_picked_from_the_iana_list(client, root):
    team = TeamFactory(name="Payments")
    schedule = team.schedules.get()
    data = admin_form_data(client.get(admin_url(Schedule, "change", schedule.pk)))
    data["time_zone"] = "America/Sao_Paulo"

    response = client.post(admin_url(Schedule, "change", schedule.pk), data)

    assert response.status_code == 302
    schedule.refresh_from_db()
    assert schedule.time_zone == "America/Sao_Paulo"


# -- people ------------------------------------------------------------------------------------


@pytest.fixture
def ada():
    return UserFactory(username="ada", display_name="Ada Lovelace")


def test_a_profile_with_an_unknown_time_zone_is_refused(client, root, ada):
    data = admin_form_data(client.get(admin_url(User, "change", ada.pk)))
    data["profile-0-time_zone"] = "Europe/Atlantis"

    response = client.post(admin_url(User, "change", ada.pk), data)

    assert "time_zone" in errors_of(response)["profile-0"]
    ada.profile.refresh_from_db()
    assert ada.profile.time_zone == "Europe/London"


def test_a_profile_is_saved_from_the_user_page(client, root, ada):
    data = admin_form_data(client.get(admin_url(User, "change", ada.pk)))
    data["profile-0-time_zone"] = "Pacific/Auckland"
    data["profile-0-phone"] = "+64 9 123 4567"

    response = client.post(admin_url(User, "change", ada.pk), data)

    assert response.status_code == 302, errors_of(response)
    ada.profile.refresh_from_db()
    assert ada.profile.time_zone == "Pacific/Auckland"


def _add_contact_method(data: dict, kind: str, address: str) -> dict:
    index = int(data["contact_methods-TOTAL_FORMS"])
    data["contact_methods-TOTAL_FORMS"] = str(index + 1)
    data[f"contact_methods-{index}-kind"] = kind
    data[f"contact_methods-{index}-label"] = "Work"
    data[f"contact_methods-{index}-address"] = address
    return data


@pytest.mark.parametrize(
    ("kind", "address"),
    [
        (ContactMethod.Kind.EMAIL, "not-an-email"),
        (ContactMethod.Kind.SMS, "12ab"),
        (ContactMethod.Kind.VOICE, "12ab"),
        (ContactMethod.Kind.WEBHOOK, "ftp://x"),
        (ContactMethod.Kind.SLACK, "ftp://x"),
    ],
)
def test_a_contact_method_with_an_unusable_address_is_refused(client, root, ada, kind, address):
    data = admin_form_data(client.get(admin_url(User, "change", ada.pk)))

    response = client.post(
        admin_url(User, "change", ada.pk), _add_contact_method(data, kind, address)
    )

    assert "address" in errors_of(response)["contact_methods-0"]
    assert not ContactMethod.objects.filter(user=ada).exists()


def test_a_phone_contact_method_is_stored_in_international_format(client, root, ada):
    data = admin_form_data(client.get(admin_url(User, "change", ada.pk)))
    data = _add_contact_method(data, ContactMethod.Kind.SMS, "+44 (20) 7946-0958")

    response = client.post(admin_url(User, "change", ada.pk), data)

    assert response.status_code == 302, errors_of(response)
    assert ContactMethod.objects.get(user=ada).address == "+442079460958"


def test_a_notification_rule_may_only_use_the_persons_own_contact_methods(client, root, ada):
    mine = contact_method(ada)
    theirs = contact_method(UserFactory(username="bob"))
    page = client.get(admin_url(User, "change", ada.pk))
    formset = next(
        inline.formset
        for inline in page.context["inline_admin_formsets"]
        if inline.formset.prefix == "notification_rules"
    )
    assert list(formset.empty_form.fields["contact_method"].queryset) == [mine]

    data = admin_form_data(page)
    data["notification_rules-TOTAL_FORMS"] = "1"
    data["notification_rules-0-urgency"] = "high"
    data["notification_rules-0-delay_minutes"] = "5"
    data["notification_rules-0-contact_method"] = str(theirs.pk)
    response = client.post(admin_url(User, "change", ada.pk), data)
    assert "contact_method" in errors_of(response)["notification_rules-0"]

    data["notification_rules-0-contact_method"] = str(mine.pk)
    response = client.post(admin_url(User, "change", ada.pk), data)
    assert response.status_code == 302, errors_of(response)
    assert NotificationRule.objects.get(user=ada).contact_method == mine


def test_a_negative_notification_delay_is_refused(client, root, ada):
    mine = contact_method(ada)
    data = admin_form_data(client.get(admin_url(User, "change", ada.pk)))
    data["notification_rules-TOTAL_FORMS"] = "1"
    data["notification_rules-0-urgency"] = "high"
    data["notification_rules-0-delay_minutes"] = "-5"
    data["notification_rules-0-contact_method"] = str(mine.pk)

    response = client.post(admin_url(User, "change", ada.pk), data)

    assert "delay_minutes" in errors_of(response)["notification_rules-0"]
    assert not NotificationRule.objects.exists()


def test_a_user_made_in_the_admin_gets_a_profile(client, root):
    response = client.post(
        admin_url(User, "add"),
        {
            "username": "grace",
            "usable_password": "true",
            "password1": "a-long-enough-passphrase",
            "password2": "a-long-enough-passphrase",
        },
    )
    assert response.status_code == 302, errors_of(response)
    grace = User.objects.get(username="grace")
    assert grace.profile.time_zone == "UTC"
    assert client.get(admin_url(User, "change", grace.pk)).status_code == 200


def test_the_user_list_filters_and_searches(client, root, ada):
    bob = UserFactory(username="bob", display_name="Bob Builder")
    team = TeamFactory(name="Payments", lead=ada)
    TeamFactory(name="Search", lead=None, members=[(bob, Role.RESPONDER)])
    contact_method(ada)
    url = admin_url(User, "changelist")

    def listed(query: str) -> set[str]:
        response = client.get(url + query)
        assert response.status_code == 200
        return {user.username for user in response.context["cl"].result_list}

    assert listed(f"?memberships__team__id__exact={team.pk}") == {"ada"}
    assert listed("?has_contact_methods=yes") == {"ada"}
    assert listed("?has_contact_methods=no") == {"bob", "root"}
    assert listed("?has_notification_rules=no") == {"ada", "bob", "root"}
    assert listed("?q=lovelace") == {"ada"}
    assert listed("?q=bob@example") == {bob.username}


def test_leads_get_no_user_pages(client):
    lead = UserFactory(username="lead")
    TeamFactory(name="Payments", lead=lead)
    client.force_login(lead)
    # No Django permissions, so the stock checks refuse: 403 on the pages, nothing on the index.
    assert client.get(admin_url(User, "changelist")).status_code == 403
    assert client.get(admin_url(User, "add")).status_code == 403
    assert services.profile_for(lead)  # the lead still has their own profile page elsewhere


# -- pages answer -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "admin:index",
        "admin:oncall_team_add",
        "admin:oncall_team_changelist",
        "admin:auth_user_add",
        "admin:auth_user_changelist",
        "admin:schedules_schedule_add",
        "admin:schedules_schedule_changelist",
    ],
)
def test_pages_answer_for_a_superuser(client, root, name):
    TeamFactory(name="Payments")
    assert client.get(reverse(name)).status_code == 200


def test_a_team_delete_page_answers(client, root):
    team = TeamFactory(name="Payments")
    assert client.get(admin_url(Team, "delete", team.pk)).status_code == 200
    assert client.get(admin_url(Team, "history", team.pk)).status_code == 200


def test_a_lead_may_delete_their_own_team_with_everything_in_it(client):
    lead = UserFactory(username="lead")
    team = TeamFactory(name="Payments", lead=lead)
    service = Service.objects.get(team=team)
    client.force_login(lead)

    response = client.post(admin_url(Team, "delete", team.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Team.objects.filter(pk=team.pk).exists()
    assert not Service.objects.filter(pk=service.pk).exists()
    assert not Membership.objects.filter(team_id=team.pk).exists()


def test_a_policy_in_use_by_a_service_cannot_be_deleted_alone(client):
    lead = UserFactory(username="lead")
    team = TeamFactory(name="Payments", lead=lead)
    service = Service.objects.get(team=team)
    client.force_login(lead)

    response = client.post(
        admin_url(EscalationPolicy, "delete", service.escalation_policy_id), {"post": "yes"}
    )
    assert response.status_code == 200
    assert response.context["protected"]
    assert EscalationPolicy.objects.filter(pk=service.escalation_policy_id).exists()
