"""A new team is ready to page from the first minute."""

import pytest
from django.core.exceptions import ValidationError

from incidents.models import EscalationPolicy, Integration, Service
from oncall import services
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_new_team_gets_schedule_policy_service_and_events_integration():
    lead = UserFactory(time_zone="America/New_York")
    team = TeamFactory(name="Payments", lead=lead)

    schedule = team.schedules.get()
    assert schedule.name == "Payments on-call"
    assert schedule.time_zone == "America/New_York"

    policy = EscalationPolicy.objects.get(team=team)
    steps = list(policy.steps.order_by("position"))
    assert [list(s.target_schedules.all()) for s in steps] == [[schedule], []]
    assert list(steps[1].target_users.all()) == [lead]

    service = Service.objects.get(team=team)
    assert service.escalation_policy == policy
    assert service.status == Service.Status.ACTIVE
    integration = service.integrations.get()
    assert integration.kind == Integration.Kind.EVENTS_V2
    assert len(integration.key) == 32


def test_team_of_one_person_works():
    solo = UserFactory()
    team = services.team_create(name="Solo", members=[(solo, Role.LEAD)])
    assert team.members.get() == solo
    assert Service.objects.filter(team=team).count() == 1


def test_team_without_lead_escalates_to_the_whole_team():
    team = TeamFactory(name="Leaderless", lead=None)
    last_step = EscalationPolicy.objects.get(team=team).steps.order_by("position").last()
    assert list(last_step.target_teams.all()) == [team]


def test_team_names_are_unique():
    TeamFactory(name="Search")
    with pytest.raises(ValidationError):
        TeamFactory(name="Search")
