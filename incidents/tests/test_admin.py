"""The admin for escalation policies, services, integrations and incidents."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from incidents import services
from incidents.admin import NO_TARGET_ERROR, escalation_policy_summary
from incidents.models import EscalationPolicy, Incident, Integration, Service
from oncall import services as team_services
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory
from oncall.tests.test_admin import admin_form_data, admin_url, errors_of

pytestmark = pytest.mark.django_db


@pytest.fixture
def lead():
    return UserFactory(username="ada", display_name="Ada Lovelace")


@pytest.fixture
def team(lead):
    return TeamFactory(name="Payments", lead=lead)


@pytest.fixture
def policy(team):
    return EscalationPolicy.objects.get(team=team)


@pytest.fixture
def service(team):
    return Service.objects.get(team=team)


@pytest.fixture
def integration(service):
    return service.integrations.get()


@pytest.fixture
def as_lead(client, lead):
    client.force_login(lead)
    return client


def step_rows(data: dict) -> int:
    return int(data["steps-TOTAL_FORMS"])


# -- escalation policies -----------------------------------------------------------------------


def test_the_policy_preview_reads_like_the_escalation(policy):
    assert escalation_policy_summary(policy) == (
        "Step 1: page Payments on-call schedule, escalate after 15 min"
        " → Step 2: page Ada Lovelace, escalate after 15 min"
        " → repeat 1 time"
    )


def test_the_preview_names_teams_counts_repeats_and_says_when_nobody_is_paged(team, lead):
    policy = services.escalation_policy_create(team=team, name="Loud", repeat_count=2)
    assert escalation_policy_summary(policy) == (
        "No steps yet: an incident on this policy pages nobody."
    )
    services.escalation_step_add(policy=policy, delay_minutes=5, teams=[team], users=[lead])
    assert escalation_policy_summary(policy) == (
        "Step 1: page Ada Lovelace, everyone in Payments, escalate after 5 min → repeat 2 times"
    )


def test_the_preview_costs_the_same_queries_for_more_steps(team, lead, policy):
    with CaptureQueriesContext(connection) as two_steps:
        escalation_policy_summary(policy)
    for _ in range(4):
        services.escalation_step_add(
            policy=policy, delay_minutes=1, users=[lead], schedules=team.schedules.all()
        )
    with CaptureQueriesContext(connection) as six_steps:
        escalation_policy_summary(policy)
    assert len(six_steps) == len(two_steps) <= 4


def test_the_policy_page_shows_the_preview_and_the_list_its_counts(as_lead, policy, service):
    page = as_lead.get(admin_url(EscalationPolicy, "change", policy.pk))
    assert page.status_code == 200
    assert "Step 1: page Payments on-call schedule" in page.content.decode()

    listing = as_lead.get(admin_url(EscalationPolicy, "changelist"))
    (row,) = listing.context["cl"].result_list
    assert row._step_count == 2
    assert service.name in listing.content.decode()


def test_a_step_without_a_target_is_refused_and_nothing_saved(as_lead, policy):
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    extra = step_rows(data) - 1  # the blank row at the end
    data[f"steps-{extra}-delay_minutes"] = "10"
    data["name"] = "Renamed"

    response = as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    errors = errors_of(response)
    assert errors[f"steps-{extra}"]["__all__"] == [NO_TARGET_ERROR]
    assert NO_TARGET_ERROR in response.content.decode()
    assert policy.steps.count() == 2
    policy.refresh_from_db()
    assert policy.name == "Default"


def test_removing_every_target_of_a_step_is_refused(as_lead, policy):
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    data.pop("steps-0-target_schedules")

    response = as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    assert errors_of(response)["steps-0"]["__all__"] == [NO_TARGET_ERROR]
    assert policy.steps.order_by("position").first().target_schedules.exists()


def test_a_negative_delay_is_refused(as_lead, policy):
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    data["steps-0-delay_minutes"] = "-1"

    response = as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    assert "delay_minutes" in errors_of(response)["steps-0"]
    assert sorted(policy.steps.values_list("delay_minutes", flat=True)) == [15, 15]


def test_deleting_every_step_of_a_policy_an_active_service_uses_is_refused(
    as_lead, policy, service
):
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    data["steps-0-DELETE"] = data["steps-1-DELETE"] = "on"

    response = as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    (error,) = errors_of(response)["steps"]
    assert service.name in error
    assert policy.steps.count() == 2


def test_every_step_may_go_once_no_active_service_uses_the_policy(as_lead, policy, service):
    services.service_update(service=service, status=Service.Status.MAINTENANCE)
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    data["steps-0-DELETE"] = data["steps-1-DELETE"] = "on"

    response = as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    assert response.status_code == 302, errors_of(response)
    assert not policy.steps.exists()


def test_steps_are_renumbered_in_the_order_given(as_lead, lead, team, policy):
    schedule_step, lead_step = policy.steps.order_by("position")
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    # A new step first, the lead step second, the schedule step last.
    extra = step_rows(data) - 1
    data[f"steps-{extra}-order"] = "1"
    data[f"steps-{extra}-delay_minutes"] = "5"
    data[f"steps-{extra}-target_teams"] = [str(team.pk)]
    data["steps-0-order"] = "9"
    data["steps-1-order"] = "2"

    response = as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    assert response.status_code == 302, errors_of(response)
    steps = list(policy.steps.order_by("position"))
    assert [s.position for s in steps] == [0, 1, 2]
    assert list(steps[0].target_teams.all()) == [team]
    assert steps[1:] == [lead_step, schedule_step]


def test_deleting_the_first_step_moves_the_others_up(as_lead, policy):
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    data["steps-0-DELETE"] = "on"

    response = as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    assert response.status_code == 302, errors_of(response)
    assert list(policy.steps.values_list("position", flat=True)) == [0]


def test_a_new_policy_with_steps_is_made_by_a_lead(as_lead, team, lead):
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "add")))
    data.update({"team": str(team.pk), "name": "Night", "repeat_count": "0"})
    data["steps-0-delay_minutes"] = "10"
    data["steps-0-target_users"] = [str(lead.pk)]

    response = as_lead.post(admin_url(EscalationPolicy, "add"), data)

    assert response.status_code == 302, errors_of(response)
    step = EscalationPolicy.objects.get(name="Night").steps.get()
    assert (step.position, step.delay_minutes, list(step.target_users.all())) == (0, 10, [lead])


def test_a_step_cannot_target_someone_outside_the_leads_teams(as_lead, policy):
    stranger = UserFactory(username="stranger")
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    data["steps-1-target_users"] = [str(stranger.pk)]

    response = as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    assert "target_users" in errors_of(response)["steps-1"]


def test_a_policy_used_by_services_cannot_move_to_another_team(client, policy):
    root = UserFactory(username="root", is_superuser=True)
    other = TeamFactory(name="Search")
    client.force_login(root)
    data = admin_form_data(client.get(admin_url(EscalationPolicy, "change", policy.pk)))
    data["team"] = str(other.pk)

    response = client.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    assert "team" in errors_of(response)["form"]


# -- services ----------------------------------------------------------------------------------


def test_an_active_service_needs_a_policy_with_steps(as_lead, team, service):
    empty = services.escalation_policy_create(team=team, name="Empty")
    data = admin_form_data(as_lead.get(admin_url(Service, "change", service.pk)))
    data["escalation_policy"] = str(empty.pk)

    response = as_lead.post(admin_url(Service, "change", service.pk), data)

    (message,) = errors_of(response)["form"]["escalation_policy"]
    assert "“Empty” has no steps" in message
    service.refresh_from_db()
    assert service.escalation_policy.name == "Default"

    data["status"] = Service.Status.MAINTENANCE
    response = as_lead.post(admin_url(Service, "change", service.pk), data)
    assert response.status_code == 302, errors_of(response)
    service.refresh_from_db()
    assert service.escalation_policy == empty


def test_a_service_cannot_use_another_teams_policy(client, service):
    root = UserFactory(username="root", is_superuser=True)
    foreign = EscalationPolicy.objects.get(team=TeamFactory(name="Search"))
    client.force_login(root)
    data = admin_form_data(client.get(admin_url(Service, "change", service.pk)))
    data["escalation_policy"] = str(foreign.pk)

    response = client.post(admin_url(Service, "change", service.pk), data)

    assert "escalation_policy" in errors_of(response)["form"]


def test_a_lead_adds_a_service_with_an_integration(as_lead, team, policy):
    data = admin_form_data(as_lead.get(admin_url(Service, "add")))
    data.update(
        {
            "team": str(team.pk),
            "name": "Checkout",
            "escalation_policy": str(policy.pk),
            "status": Service.Status.ACTIVE,
            "default_urgency": "high",
            "integrations-TOTAL_FORMS": "1",
            "integrations-0-name": "Prometheus",
            "integrations-0-kind": Integration.Kind.ALERTMANAGER,
            "integrations-0-enabled": "on",
        }
    )

    response = as_lead.post(admin_url(Service, "add"), data)

    assert response.status_code == 302, errors_of(response)
    integration = Service.objects.get(name="Checkout").integrations.get()
    assert integration.kind == Integration.Kind.ALERTMANAGER
    assert len(integration.key) == 32


def test_service_actions_change_status_but_never_make_an_unpageable_service_active(
    as_lead, team, service
):
    url = admin_url(Service, "changelist")
    response = as_lead.post(
        url, {"action": "put_in_maintenance", "_selected_action": [str(service.pk)]}
    )
    assert response.status_code == 302
    service.refresh_from_db()
    assert service.status == Service.Status.MAINTENANCE

    empty = services.escalation_policy_create(team=team, name="Empty")
    services.service_update(service=service, escalation_policy=empty)
    response = as_lead.post(
        url, {"action": "set_active", "_selected_action": [str(service.pk)]}, follow=True
    )
    assert "was not changed" in response.content.decode()
    service.refresh_from_db()
    assert service.status == Service.Status.MAINTENANCE


def test_the_service_page_shows_its_integrations_keys_with_a_copy_button(
    as_lead, service, integration
):
    page = as_lead.get(admin_url(Service, "change", service.pk)).content.decode()
    assert integration.key in page
    assert f'data-copy-target="integration-key-{integration.pk}"' in page
    assert "oncall/admin.js" in page


# -- integrations ------------------------------------------------------------------------------


def test_the_full_key_is_on_the_change_page_and_only_the_hint_on_the_list(as_lead, integration):
    page = as_lead.get(admin_url(Integration, "change", integration.pk))
    html = page.content.decode()
    assert page.status_code == 200
    assert integration.key in html
    assert 'aria-live="polite"' in html
    assert "/v2/enqueue" in html
    assert "Rotate key" in html

    listing = as_lead.get(admin_url(Integration, "changelist"))
    html = listing.content.decode()
    assert listing.status_code == 200
    assert integration.key not in html
    assert integration.key_hint in html


def test_the_rotate_button_gives_a_new_key_and_the_old_one_is_gone(as_lead, integration):
    old_key = integration.key

    response = as_lead.post(admin_url(Integration, "rotate_key", integration.pk), follow=True)

    assert response.status_code == 200
    integration.refresh_from_db()
    assert integration.key != old_key
    assert integration.key_rotated_at is not None
    assert not Integration.objects.filter(key=old_key).exists()
    messages = [str(m) for m in response.context["messages"]]
    assert any("new key" in m and integration.key[-4:] in m for m in messages), messages
    assert not any(integration.key in m or old_key in m for m in messages)
    assert response.redirect_chain[-1][0] == admin_url(Integration, "change", integration.pk)


def test_rotating_needs_a_post(as_lead, integration):
    old_key = integration.key
    response = as_lead.get(admin_url(Integration, "rotate_key", integration.pk))
    assert response.status_code == 405
    integration.refresh_from_db()
    assert integration.key == old_key


def test_rotating_needs_the_csrf_token(lead, integration):
    client = Client(enforce_csrf_checks=True)
    client.force_login(lead)
    old_key = integration.key
    response = client.post(admin_url(Integration, "rotate_key", integration.pk))
    assert response.status_code == 403
    integration.refresh_from_db()
    assert integration.key == old_key


@pytest.mark.parametrize("who", ["other_lead", "responder"])
def test_only_the_teams_lead_can_rotate(client, team, integration, who):
    if who == "other_lead":
        user = UserFactory(username="other")
        TeamFactory(name="Search", lead=user)
    else:
        user = UserFactory(username="responder")
        team_services.membership_set(team=team, user=user, role=Role.RESPONDER)
    client.force_login(user)
    old_key = integration.key

    response = client.post(admin_url(Integration, "rotate_key", integration.pk))
    action = client.post(
        admin_url(Integration, "changelist"),
        {"action": "rotate_keys", "_selected_action": [str(integration.pk)]},
    )

    assert response.status_code == 302
    expected = reverse("admin:index") if who == "other_lead" else reverse("admin:login")
    assert response["Location"].startswith(expected)
    assert action.status_code == 302
    integration.refresh_from_db()
    assert integration.key == old_key


def test_the_rotate_action_rotates_the_selected_keys(as_lead, service, integration):
    second = services.integration_create(service=service, name="Grafana", kind="webhook")
    old = {integration.key, second.key}

    response = as_lead.post(
        admin_url(Integration, "changelist"),
        {"action": "rotate_keys", "_selected_action": [str(integration.pk), str(second.pk)]},
    )

    assert response.status_code == 302
    assert not Integration.objects.filter(key__in=old).exists()
    assert Integration.objects.filter(service=service, key_rotated_at__isnull=False).count() == 2


# -- incidents ---------------------------------------------------------------------------------


@pytest.fixture
def incident(service):
    # No ingest service exists yet to trigger one; an incident row is all the admin needs.
    return Incident.objects.create(
        service=service, title="Checkout down", triggered_at=timezone.now()
    )


def test_incidents_are_read_only_in_the_admin(as_lead, incident):
    assert as_lead.get(admin_url(Incident, "changelist")).status_code == 200
    page = as_lead.get(admin_url(Incident, "change", incident.pk))
    assert page.status_code == 200
    assert "Checkout down" in page.content.decode()
    assert as_lead.get(admin_url(Incident, "add")).status_code == 403
    response = as_lead.post(admin_url(Incident, "change", incident.pk), {"title": "Changed"})
    assert response.status_code == 403
    incident.refresh_from_db()
    assert incident.title == "Checkout down"


# -- every page answers ------------------------------------------------------------------------


@pytest.mark.parametrize("model", [EscalationPolicy, Service, Integration, Incident])
@pytest.mark.parametrize("view", ["changelist", "change", "delete", "history"])
@pytest.mark.parametrize("who", ["superuser", "lead"])
def test_pages_answer(client, lead, team, incident, model, view, who):
    user = lead if who == "lead" else UserFactory(username="root", is_superuser=True)
    client.force_login(user)
    obj = model.objects.filter(
        **{"service__team" if model in (Integration, Incident) else "team": team}
    ).first()
    args = () if view == "changelist" else (obj.pk,)
    expected = 403 if (model is Incident and view == "delete" and who == "lead") else 200
    assert client.get(admin_url(model, view, *args)).status_code == expected


@pytest.mark.parametrize("model", [EscalationPolicy, Service, Integration])
def test_add_pages_answer_for_a_lead(as_lead, team, model):
    assert as_lead.get(admin_url(model, "add")).status_code == 200


def test_a_step_row_of_another_team_cannot_be_smuggled_into_a_policy(as_lead, policy):
    """Posting another policy's step id in a row: Django looks rows up in this policy's steps
    only, so the foreign step is never touched."""
    other = TeamFactory(name="Search")
    foreign_step = EscalationPolicy.objects.get(team=other).steps.order_by("position").first()
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    data["steps-0-id"] = str(foreign_step.pk)
    data["steps-0-delay_minutes"] = "1"

    as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    foreign_step.refresh_from_db()
    assert (foreign_step.policy.team, foreign_step.delay_minutes) == (other, 15)
    assert sorted(policy.steps.values_list("position", "delay_minutes")) == [(0, 15), (1, 15)]


def test_a_forged_row_does_not_count_as_a_kept_step(as_lead, policy, service):
    """Deleting both steps while a forged third row names another policy's step: refused."""
    foreign_step = EscalationPolicy.objects.get(team=TeamFactory(name="Search")).steps.first()
    data = admin_form_data(as_lead.get(admin_url(EscalationPolicy, "change", policy.pk)))
    data["steps-0-DELETE"] = data["steps-1-DELETE"] = "on"
    data["steps-INITIAL_FORMS"] = data["steps-TOTAL_FORMS"] = "3"
    data["steps-2-id"] = str(foreign_step.pk)
    data["steps-2-delay_minutes"] = "1"
    data["steps-2-target_users"] = data["steps-1-target_users"]

    response = as_lead.post(admin_url(EscalationPolicy, "change", policy.pk), data)

    assert service.name in errors_of(response)["steps"][0]
    assert policy.steps.count() == 2
