"""The schedules page: the reader's teams' schedules, never another team's."""

import itertools

import pytest
from django.urls import reverse

from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory
from schedules import services
from schedules.models import Schedule

pytestmark = pytest.mark.django_db

SCHEDULES = "/schedules/"


@pytest.fixture
def world():
    lead_a = UserFactory(username="lead_a", time_zone="Asia/Singapore")
    responder_a = UserFactory(username="responder_a")
    observer_a = UserFactory(username="observer_a")
    team_a = TeamFactory(
        name="Alpha",
        lead=lead_a,
        members=[(responder_a, Role.RESPONDER), (observer_a, Role.OBSERVER)],
    )
    team_b = TeamFactory(name="Bravo", lead=UserFactory(username="lead_b"))
    services.schedule_create(team=team_b, name="Bravo nights", time_zone="America/Chicago")
    return {
        "responder_a": responder_a,
        "observer_a": observer_a,
        "team_a": team_a,
        "team_b": team_b,
    }


def test_url_name():
    assert reverse("schedules:list") == SCHEDULES


def test_anonymous_is_sent_to_login(client):
    response = client.get(SCHEDULES)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={SCHEDULES}"


def test_member_sees_own_team_schedules_with_team_and_zone(client, world):
    client.force_login(world["responder_a"])
    response = client.get(SCHEDULES)
    assert response.status_code == 200
    assert [s.name for s in response.context["schedules"]] == ["Alpha on-call"]
    html = response.content.decode()
    assert "Alpha on-call" in html
    assert "Asia/Singapore" in html  # the schedule's zone, from its first lead
    assert "Bravo" not in html
    assert "America/Chicago" not in html


def test_observer_gets_the_403_page(client, world):
    client.force_login(world["observer_a"])
    response = client.get(SCHEDULES)
    assert response.status_code == 403
    assert "Alpha on-call" not in response.content.decode()


def test_user_without_team_sees_an_empty_page(client):
    client.force_login(UserFactory())
    response = client.get(SCHEDULES)
    assert response.status_code == 200
    assert "Your teams have no schedules yet." in response.content.decode()


def test_superuser_sees_every_schedule(client, world):
    client.force_login(UserFactory(is_superuser=True))
    response = client.get(SCHEDULES)
    assert {s.name for s in response.context["schedules"]} == {
        "Alpha on-call",
        "Bravo on-call",
        "Bravo nights",
    }


_names = itertools.count()


def test_query_count_does_not_grow(client, world, django_assert_num_queries):
    reader = world["responder_a"]

    def grow(n):
        for _ in range(n):
            team = TeamFactory(name=f"Grown {next(_names)}", members=[(reader, Role.RESPONDER)])
            services.schedule_create(team=team, name="Second", time_zone="Europe/Berlin")

    client.force_login(reader)
    grow(1)
    # session, user, profile, roles; the schedules with team and layer count
    with django_assert_num_queries(5):
        assert client.get(SCHEDULES).status_code == 200
    grow(4)
    with django_assert_num_queries(5):
        response = client.get(SCHEDULES)
    assert len(response.context["schedules"]) == 1 + 5 * 2
    assert Schedule.objects.count() > 11
