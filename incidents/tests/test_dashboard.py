"""The home dashboard: who is on call now and next, my open incidents, open incidents per
service, what observers get instead, and a constant number of queries."""

import itertools
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from incidents import services as incident_services
from incidents import workflow
from incidents.models import Incident, Service
from oncall import services
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory
from schedules import services as schedule_services
from schedules.models import Schedule

pytestmark = pytest.mark.django_db

LONDON = ZoneInfo("Europe/London")
# Wednesday 7 May 2025, 12:00 in London (11:00 UTC). The default schedule made on a team's
# creation is a weekly rotation of its lead then responders, handing off on Mondays at 09:00.
WEDNESDAY = datetime(2025, 5, 7, 12, 0, tzinfo=LONDON)
NEXT_MONDAY_0900 = datetime(2025, 5, 12, 9, 0, tzinfo=LONDON)


@pytest.fixture
def world():
    with time_machine.travel(WEDNESDAY, tick=False):
        lena = UserFactory(username="lena", display_name="Lena", time_zone="Europe/London")
        rafa = UserFactory(username="rafa", display_name="Rafa", time_zone="Europe/London")
        olga = UserFactory(username="olga", display_name="Olga")
        team = TeamFactory(
            name="Payments",
            lead=lena,
            members=[(rafa, Role.RESPONDER), (olga, Role.OBSERVER)],
        )
    service = Service.objects.get(team=team)
    return {
        "lena": lena,
        "rafa": rafa,
        "olga": olga,
        "team": team,
        "service": service,
        "schedule": Schedule.objects.get(team=team),
    }


def home(client, user, at=WEDNESDAY):
    client.force_login(user)
    with time_machine.travel(at, tick=False):
        return client.get("/")


def trigger(service, title, at=WEDNESDAY):
    return workflow.incident_trigger(service=service, title=title, at=at)


def test_on_call_now_and_next_from_the_schedule(client, world):
    response = home(client, world["rafa"])
    (panel,) = response.context["teams"]
    (on_call,) = panel.on_call
    assert on_call.schedule_name == "Payments on-call"
    assert on_call.now_name == "Lena"
    assert on_call.now_until == NEXT_MONDAY_0900
    assert on_call.next_name == "Rafa"
    assert on_call.next_from == NEXT_MONDAY_0900
    html = response.content.decode()
    assert "Mon 12 May 09:00" in html  # in the reader's zone
    assert reverse("schedules:detail", args=[world["schedule"].pk]) in html


def test_next_handoff_follows_overrides(client, world):
    """Rafa covers Thursday 10:00–12:00: that is the next handoff, back to Lena at noon."""
    thursday = datetime(2025, 5, 8, 10, 0, tzinfo=LONDON)
    with time_machine.travel(WEDNESDAY, tick=False):
        schedule_services.override_create(
            schedule=world["schedule"],
            user=world["rafa"],
            start=thursday,
            end=thursday + timedelta(hours=2),
            created_by=world["lena"],
        )
    (on_call,) = home(client, world["lena"]).context["teams"][0].on_call
    assert (on_call.now_name, on_call.now_until) == ("Lena", thursday)
    assert (on_call.next_name, on_call.next_from) == ("Rafa", thursday)
    # During the override, Rafa is on call and Lena takes over at noon.
    (during,) = (
        home(client, world["lena"], at=thursday + timedelta(minutes=30)).context["teams"][0].on_call
    )
    assert (during.now_name, during.next_name) == ("Rafa", "Lena")
    assert during.next_from == thursday + timedelta(hours=2)


def test_handoff_times_are_shown_in_the_readers_zone(client, world):
    services.profile_update(user=world["rafa"], display_name="", time_zone="Asia/Tokyo", phone="")
    html = home(client, world["rafa"]).content.decode()
    assert "Mon 12 May 17:00" in html  # 09:00 in London is 17:00 in Tokyo


def test_a_team_without_rotation_says_nobody_is_on_call(client):
    with time_machine.travel(WEDNESDAY, tick=False):
        lone = UserFactory(username="lone")
        team = TeamFactory(name="Empty", lead=None, members=[(lone, Role.RESPONDER)])
    Schedule.objects.filter(team=team).first().layers.all().delete()
    response = home(client, lone)
    (on_call,) = response.context["teams"][0].on_call
    assert on_call.now_name is None and on_call.next_name is None
    html = response.content.decode()
    assert "Nobody" in html and "No handoff in the next 5 weeks" in html


def test_my_open_incidents_link_to_their_pages(client, world):
    mine = trigger(world["service"], "Checkout is slow")
    other = trigger(world["service"], "Somebody else's")
    done = trigger(world["service"], "Already resolved")
    mine.assignees.add(world["rafa"])  # as the escalation does when it pages Rafa
    done.assignees.add(world["rafa"])
    workflow.incident_resolve(incident=done, by=world["rafa"], via="web", at=WEDNESDAY)

    response = home(client, world["rafa"])

    assert [i.title for i in response.context["mine"].incidents] == ["Checkout is slow"]
    html = response.content.decode()
    assert reverse("incidents:detail", args=[mine.pk]) in html
    assert "Somebody else&#x27;s" not in html and other.title not in html


def test_open_incidents_per_service_with_link_to_the_filtered_list(client, world):
    first = trigger(world["service"], "One")
    trigger(world["service"], "Two")
    workflow.incident_acknowledge(incident=first, by=world["lena"], via="web", at=WEDNESDAY)
    quiet = incident_services.service_create(
        team=world["team"], name="Quiet", escalation_policy=world["service"].escalation_policy
    )

    response = home(client, world["lena"])

    services_ = {s.name: s for s in response.context["teams"][0].services}
    assert (
        services_["Payments default service"].triggered,
        services_["Payments default service"].acknowledged,
    ) == (1, 1)
    assert services_["Quiet"].open_incidents == 0
    html = response.content.decode()
    assert f"{reverse('incidents:list')}?service={world['service'].pk}" in html
    assert f"?service={quiet.pk}" not in html  # nothing open: no link


def test_observer_gets_reports_and_no_operational_panels(client, world):
    trigger(world["service"], "Secret outage")
    response = home(client, world["olga"])
    assert response.status_code == 200
    html = response.content.decode()
    reading = html.split('id="reading-heading">Your reading')[1].split("</section>")[0]
    assert f'href="{reverse("incidents:reports")}"' in reading
    assert f'href="{reverse("postmortems:list")}"' in reading
    assert "Secret outage" not in html
    assert "On call" not in html and "Payments on-call" not in html
    assert "My open incidents" not in html
    (panel,) = response.context["teams"]
    assert not panel.can_read and panel.services == [] and panel.on_call == []


_grown = itertools.count()


def grow(world, n):
    """`n` more teams of Rafa's, each with its schedule, two services and open incidents."""
    reader = world["rafa"]
    with time_machine.travel(WEDNESDAY, tick=False):
        for _ in range(n):
            team = TeamFactory(name=f"Grown {next(_grown)}", members=[(reader, Role.RESPONDER)])
            first = Service.objects.get(team=team)
            second = incident_services.service_create(
                team=team, name="Second", escalation_policy=first.escalation_policy
            )
            for service in (first, second):
                incident = trigger(service, "Broken")
                incident.assignees.add(reader)


def test_home_queries_do_not_grow_with_teams_schedules_and_incidents(
    client, world, django_assert_num_queries
):
    grow(world, 1)
    client.force_login(world["rafa"])
    with time_machine.travel(WEDNESDAY, tick=False):
        with django_assert_num_queries(4 + 9):
            response = client.get("/")
        assert len(response.context["teams"]) == 2
        grow(world, 4)
        with django_assert_num_queries(4 + 9):
            response = client.get("/")
    assert len(response.context["teams"]) == 6
    assert response.context["mine"].total == 10
    assert all(panel.on_call for panel in response.context["teams"])


def test_incidents_in_maintenance_still_count(client, world):
    incident_services.service_update(service=world["service"], status=Service.Status.MAINTENANCE)
    trigger(world["service"], "Recorded, nobody paged")
    (panel,) = home(client, world["lena"]).context["teams"]
    assert panel.open_incidents == 1
    assert Incident.objects.count() == 1
