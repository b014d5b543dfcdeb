"""Who gets which admin page (docs/permissions.md): every role against every change page, the
changelists a lead sees, and that a lead can't write to another team's objects."""

from dataclasses import dataclass

import pytest
from django.contrib.auth import get_user_model
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents.models import EscalationPolicy, Incident, Integration, Service
from oncall.models import Membership, Role, Team
from oncall.tests.factories import TeamFactory, UserFactory
from schedules.models import Schedule

pytestmark = pytest.mark.django_db

User = get_user_model()


def make_incident(service: Service, title: str = "Checkout is down") -> Incident:
    # No ingest service exists yet to trigger one; an incident row is all the admin needs.
    return Incident.objects.create(service=service, title=title, triggered_at=timezone.now())


@dataclass
class TeamObjects:
    team: Team
    schedule: Schedule
    policy: EscalationPolicy
    service: Service
    integration: Integration
    incident: Incident


def objects_of(team: Team) -> TeamObjects:
    service = Service.objects.get(team=team)
    return TeamObjects(
        team=team,
        schedule=team.schedules.get(),
        policy=EscalationPolicy.objects.get(team=team),
        service=service,
        integration=service.integrations.get(),
        incident=make_incident(service, title=f"{team.name} is down"),
    )


@pytest.fixture
def world():
    """Payments (led by `lead`, with a responder and an observer) and Search (led by `other`)."""
    people = {
        "superuser": UserFactory(username="root", is_superuser=True),
        "lead": UserFactory(username="lead"),
        "other_lead": UserFactory(username="other"),
        "responder": UserFactory(username="responder"),
        "observer": UserFactory(username="observer"),
    }
    payments = TeamFactory(
        name="Payments",
        lead=people["lead"],
        members=[(people["responder"], Role.RESPONDER), (people["observer"], Role.OBSERVER)],
    )
    search = TeamFactory(name="Search", lead=people["other_lead"])
    return {"people": people, "mine": objects_of(payments), "theirs": objects_of(search)}


def change_url(obj) -> str:
    opts = obj._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])


PAGES = {
    "team": lambda w: change_url(w["mine"].team),
    "membership": lambda w: change_url(w["mine"].team),  # memberships are the team page's inline
    "user": lambda w: change_url(w["people"]["responder"]),
    "schedule": lambda w: change_url(w["mine"].schedule),
    "escalation policy": lambda w: change_url(w["mine"].policy),
    "service": lambda w: change_url(w["mine"].service),
    "integration": lambda w: change_url(w["mine"].integration),
    "incident": lambda w: change_url(w["mine"].incident),
}

OK, LOGIN, MISSING, FORBIDDEN = "200", "login", "missing", "403"

TEAM_PAGES = [page for page in PAGES if page != "user"]
EXPECTED = {
    "superuser": dict.fromkeys(PAGES, OK),
    "lead": {**dict.fromkeys(TEAM_PAGES, OK), "user": FORBIDDEN},
    "other_lead": {**dict.fromkeys(TEAM_PAGES, MISSING), "user": FORBIDDEN},
    "responder": dict.fromkeys(PAGES, LOGIN),
    "observer": dict.fromkeys(PAGES, LOGIN),
    "anonymous": dict.fromkeys(PAGES, LOGIN),
}


def log_in(client, world, role: str) -> None:
    if role != "anonymous":
        client.force_login(world["people"][role])


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("role", list(EXPECTED))
def test_change_page_access(client, world, role, page):
    log_in(client, world, role)
    url = PAGES[page](world)
    response = client.get(url)
    expected = EXPECTED[role][page]

    if expected == OK:
        assert response.status_code == 200
        if page == "membership":
            assert b'name="memberships-TOTAL_FORMS"' in response.content
            assert b"responder" in response.content
    elif expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    elif expected == MISSING:
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:index")
        texts = [str(m) for m in get_messages(response.wsgi_request)]
        assert any("doesn’t exist" in text for text in texts), texts
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", ["responder", "observer"])
def test_responders_and_observers_are_sent_to_the_login_page_from_the_index(client, world, role):
    log_in(client, world, role)
    response = client.get(reverse("admin:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))


def test_a_lead_signs_in_on_the_admin_login_page(client, world):
    """Leads are not staff; Django's own admin sign-in form would refuse them."""
    response = client.post(
        reverse("admin:login"),
        {"username": "lead", "password": "correct-horse-battery", "next": "/admin/"},
    )
    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get(reverse("admin:index")).status_code == 200


@pytest.mark.parametrize("role", ["responder", "observer"])
def test_responders_and_observers_cannot_sign_in_to_the_admin(client, world, role):
    response = client.post(
        reverse("admin:login"),
        {"username": role, "password": "correct-horse-battery", "next": "/admin/"},
    )
    assert response.status_code == 200
    assert "team lead or administrator" in str(response.context["form"].non_field_errors())
    assert "_auth_user_id" not in client.session


def test_staff_without_leadership_or_permissions_sees_none_of_these_models(client, world):
    staff = UserFactory(username="staff")
    staff.is_staff = True
    staff.save(update_fields=["is_staff"])
    client.force_login(staff)

    index = client.get(reverse("admin:index"))
    assert index.status_code == 200
    assert index.context["app_list"] == []
    assert client.get(change_url(world["mine"].service)).status_code == 403
    assert client.get(reverse("admin:incidents_service_changelist")).status_code == 403


CHANGELISTS = {
    "oncall_team": lambda objs: objs.team,
    "schedules_schedule": lambda objs: objs.schedule,
    "incidents_escalationpolicy": lambda objs: objs.policy,
    "incidents_service": lambda objs: objs.service,
    "incidents_integration": lambda objs: objs.integration,
    "incidents_incident": lambda objs: objs.incident,
}


@pytest.mark.parametrize("changelist", list(CHANGELISTS))
def test_a_lead_lists_only_their_teams_rows(client, world, changelist):
    client.force_login(world["people"]["lead"])
    response = client.get(reverse(f"admin:{changelist}_changelist"))
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert shown == [CHANGELISTS[changelist](world["mine"])]


@pytest.mark.parametrize("changelist", list(CHANGELISTS))
def test_a_superuser_lists_every_teams_rows(client, world, changelist):
    client.force_login(world["people"]["superuser"])
    response = client.get(reverse(f"admin:{changelist}_changelist"))
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) == 2


def test_the_team_filter_offers_only_the_leads_teams(client, world):
    client.force_login(world["people"]["lead"])
    response = client.get(reverse("admin:schedules_schedule_changelist"))
    team_filter = next(f for f in response.context["cl"].filter_specs if f.title == "team")
    assert [name for _, name in team_filter.lookup_choices] == ["Payments"]


def test_a_lead_sees_the_admin_index_with_their_models_but_not_users(client, world):
    client.force_login(world["people"]["lead"])
    response = client.get(reverse("admin:index"))
    assert response.status_code == 200
    models = {m["object_name"] for app in response.context["app_list"] for m in app["models"]}
    assert {"Team", "Schedule", "EscalationPolicy", "Service", "Integration", "Incident"} <= models
    assert "User" not in models and "Group" not in models


def _post_edits(world):
    theirs = world["theirs"]
    return {
        "team": (theirs.team, {"name": "Hijacked", "slug": "hijacked", "description": ""}),
        "schedule": (
            theirs.schedule,
            {"team": theirs.team.pk, "name": "Hijacked", "time_zone": "UTC", "description": ""},
        ),
        "escalation policy": (
            theirs.policy,
            {"team": theirs.team.pk, "name": "Hijacked", "repeat_count": 0, "description": ""},
        ),
        "service": (
            theirs.service,
            {
                "team": theirs.team.pk,
                "name": "Hijacked",
                "escalation_policy": theirs.policy.pk,
                "status": "maintenance",
                "default_urgency": "high",
            },
        ),
        "integration": (
            theirs.integration,
            {"service": theirs.service.pk, "name": "Hijacked", "kind": "webhook"},
        ),
    }


@pytest.mark.parametrize(
    "page", ["team", "schedule", "escalation policy", "service", "integration"]
)
def test_a_lead_posting_to_another_teams_object_changes_nothing(client, world, page):
    obj, data = _post_edits(world)[page]
    before = type(obj).objects.filter(pk=obj.pk).values().get()
    client.force_login(world["people"]["lead"])

    response = client.post(change_url(obj), data)

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert type(obj).objects.filter(pk=obj.pk).values().get() == before


def test_a_lead_cannot_delete_another_teams_service(client, world):
    service = world["theirs"].service
    client.force_login(world["people"]["lead"])
    url = reverse("admin:incidents_service_delete", args=[service.pk])
    response = client.post(url, {"post": "yes"})
    assert response.status_code == 302
    assert Service.objects.filter(pk=service.pk).exists()


def test_a_lead_cannot_create_objects_in_another_team(client, world):
    client.force_login(world["people"]["lead"])
    response = client.post(
        reverse("admin:schedules_schedule_add"),
        {"team": world["theirs"].team.pk, "name": "Sneaky", "time_zone": "UTC"},
    )
    assert response.status_code == 200
    assert "team" in response.context["adminform"].form.errors
    assert not Schedule.objects.filter(name="Sneaky").exists()


def test_a_lead_cannot_add_another_teams_member_through_a_step(client, world):
    """Step targets offer only the lead's teams' people, schedules and teams."""
    client.force_login(world["people"]["lead"])
    response = client.get(change_url(world["mine"].policy))
    inline = response.context["inline_admin_formsets"][0].formset
    field = inline.empty_form.fields
    assert set(field["target_users"].queryset) == {
        world["people"]["lead"],
        world["people"]["responder"],
        world["people"]["observer"],
    }
    assert list(field["target_schedules"].queryset) == [world["mine"].schedule]
    assert list(field["target_teams"].queryset) == [world["mine"].team]


def test_a_lead_picks_policies_only_from_their_teams(client, world):
    client.force_login(world["people"]["lead"])
    response = client.get(change_url(world["mine"].service))
    form = response.context["adminform"].form
    assert list(form.fields["escalation_policy"].queryset) == [world["mine"].policy]
    assert list(form.fields["team"].queryset) == [world["mine"].team]


def test_a_lead_sees_no_membership_of_another_team_on_their_team_page(client, world):
    client.force_login(world["people"]["lead"])
    response = client.get(change_url(world["mine"].team))
    formset = response.context["inline_admin_formsets"][0].formset
    assert {form.instance.team_id for form in formset.initial_forms} == {world["mine"].team.pk}
    assert Membership.objects.filter(team=world["theirs"].team).exists()


@pytest.mark.parametrize(
    "changelist",
    [
        "oncall_team",
        "schedules_schedule",
        "incidents_escalationpolicy",
        "incidents_service",
        "incidents_integration",
        "incidents_incident",
        "auth_user",
    ],
)
def test_changelists_take_the_same_number_of_queries_for_more_rows(client, changelist):
    root = UserFactory(is_superuser=True)
    client.force_login(root)
    url = reverse(f"admin:{changelist}_changelist")

    def queries_for_page() -> int:
        client.get(url)  # warm the session and the content types
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    objects_of(TeamFactory(name="One"))
    small = queries_for_page()
    for name in ("Two", "Three", "Four"):
        objects_of(TeamFactory(name=name, members=[(UserFactory(), Role.RESPONDER)]))
    assert queries_for_page() == small


# -- layers and overrides (schedules.admin): the same answers as their schedule's page ----------
# (Imported here rather than at the top: this section was appended while others edit the file.)

from datetime import timedelta  # noqa: E402

from schedules import services as schedule_services  # noqa: E402
from schedules.models import Layer, Override  # noqa: E402


def layer_of(objs: TeamObjects) -> Layer:
    """The weekly rotation every new team's default schedule starts with."""
    return objs.schedule.layers.get()


def override_of(objs: TeamObjects) -> Override:
    """An override of the team's lead tomorrow, made on first use."""
    existing = Override.objects.filter(schedule=objs.schedule).first()
    if existing is not None:
        return existing
    lead = objs.team.memberships.get(role=Role.LEAD).user
    start = timezone.now() + timedelta(days=1)
    return schedule_services.override_create(
        schedule=objs.schedule,
        user=lead,
        start=start,
        end=start + timedelta(hours=4),
        created_by=lead,
    )


SCHEDULE_PARTS = {
    "layer": lambda w: change_url(layer_of(w["mine"])),
    "override": lambda w: change_url(override_of(w["mine"])),
}


@pytest.mark.parametrize("page", list(SCHEDULE_PARTS))
@pytest.mark.parametrize("role", list(EXPECTED))
def test_layer_and_override_change_page_access(client, world, role, page):
    log_in(client, world, role)
    response = client.get(SCHEDULE_PARTS[page](world))
    expected = EXPECTED[role]["schedule"]

    if expected == OK:
        assert response.status_code == 200
    elif expected == LOGIN:
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))
    else:
        assert expected == MISSING
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:index")
        texts = [str(m) for m in get_messages(response.wsgi_request)]
        assert any("doesn’t exist" in text for text in texts), texts


def _schedule_part_edits(world):
    theirs = world["theirs"]
    layer, override = layer_of(theirs), override_of(theirs)
    now = timezone.localtime(timezone.now())
    return {
        "layer": (
            layer,
            {
                "name": "Hijacked",
                "priority": "9",
                "start_0": f"{now:%Y-%m-%d}",
                "start_1": "09:00",
                "turn_unit": "days",
                "turn_count": "3",
                "handoff_time": "09:00",
                "members-TOTAL_FORMS": "0",
                "members-INITIAL_FORMS": "0",
                "restrictions-TOTAL_FORMS": "0",
                "restrictions-INITIAL_FORMS": "0",
            },
        ),
        "override": (
            override,
            {
                "user": str(world["people"]["lead"].pk),
                "start_0": f"{now:%Y-%m-%d}",
                "start_1": "00:00",
                "end_0": f"{now + timedelta(days=3):%Y-%m-%d}",
                "end_1": "00:00",
                "reason": "Hijacked",
            },
        ),
    }


@pytest.mark.parametrize("page", list(SCHEDULE_PARTS))
def test_a_lead_posting_to_another_teams_layer_or_override_changes_nothing(client, world, page):
    obj, data = _schedule_part_edits(world)[page]
    before = type(obj).objects.filter(pk=obj.pk).values().get()
    client.force_login(world["people"]["lead"])

    response = client.post(change_url(obj), data)
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    opts = obj._meta
    delete = reverse(f"admin:{opts.app_label}_{opts.model_name}_delete", args=[obj.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302

    assert type(obj).objects.filter(pk=obj.pk).values().get() == before


SCHEDULE_PART_CHANGELISTS = {
    "schedules_layer": layer_of,
    "schedules_override": override_of,
}


@pytest.mark.parametrize("changelist", list(SCHEDULE_PART_CHANGELISTS))
def test_a_lead_lists_only_their_teams_layers_and_overrides(client, world, changelist):
    for objs in (world["mine"], world["theirs"]):
        SCHEDULE_PART_CHANGELISTS[changelist](objs)
    client.force_login(world["people"]["lead"])
    response = client.get(reverse(f"admin:{changelist}_changelist"))
    assert response.status_code == 200
    shown = list(response.context["cl"].result_list)
    assert shown == [SCHEDULE_PART_CHANGELISTS[changelist](world["mine"])]

    client.force_login(world["people"]["superuser"])
    response = client.get(reverse(f"admin:{changelist}_changelist"))
    assert len(response.context["cl"].result_list) == 2


@pytest.mark.parametrize("changelist", list(SCHEDULE_PART_CHANGELISTS))
def test_layer_and_override_changelists_take_the_same_number_of_queries(client, changelist):
    root = UserFactory(is_superuser=True)
    client.force_login(root)
    url = reverse(f"admin:{changelist}_changelist")

    def queries_for_page() -> int:
        client.get(url)  # warm the session and the content types
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    override_of(objects_of(TeamFactory(name="One")))
    small = queries_for_page()
    for name in ("Two", "Three", "Four"):
        override_of(objects_of(TeamFactory(name=name, members=[(UserFactory(), Role.RESPONDER)])))
    assert queries_for_page() == small
