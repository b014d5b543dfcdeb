"""Home, services, incidents and reports pages: who sees what, the counts, the query counts."""

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from incidents import services as incident_services
from incidents.models import Incident, Integration, Service
from oncall import services
from oncall.models import ContactMethod, Role, Urgency
from oncall.tests.factories import TeamFactory, UserFactory, contact_method

pytestmark = pytest.mark.django_db

HOME = "/"
SERVICES = "/services/"
INCIDENTS = "/incidents/"
REPORTS = "/reports/"


def make_incident(service, *, status=Incident.Status.TRIGGERED, title="Disk full", **times):
    """Test data until the ingest services exist (a later issue): rows written directly."""
    triggered_at = times.pop("triggered_at", None) or timezone.now()
    return Incident.objects.create(
        service=service, title=title, status=status, triggered_at=triggered_at, **times
    )


@pytest.fixture
def world():
    """Team A: a lead, a responder and an observer; team B: its own lead. One service each."""
    lead_a = UserFactory(username="lead_a")
    responder_a = UserFactory(username="responder_a")
    observer_a = UserFactory(username="observer_a")
    lead_b = UserFactory(username="lead_b")
    team_a = TeamFactory(
        name="Alpha",
        lead=lead_a,
        members=[(responder_a, Role.RESPONDER), (observer_a, Role.OBSERVER)],
    )
    team_b = TeamFactory(name="Bravo", lead=lead_b)
    service_a = Service.objects.get(team=team_a)
    service_b = Service.objects.get(team=team_b)
    service_a.integrations.update(name="Alpha events")
    return {
        "lead_a": lead_a,
        "responder_a": responder_a,
        "observer_a": observer_a,
        "lead_b": lead_b,
        "team_a": team_a,
        "team_b": team_b,
        "service_a": service_a,
        "service_b": service_b,
    }


def page(client, user, url, **params):
    client.force_login(user)
    return client.get(url, params)


# --- every page: anonymous visitors are sent to the login page ----------------------------------


@pytest.mark.parametrize("url", [HOME, SERVICES, INCIDENTS, REPORTS])
def test_anonymous_is_redirected_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_url_names():
    assert reverse("home") == HOME
    assert reverse("incidents:services") == SERVICES
    assert reverse("incidents:list") == INCIDENTS
    assert reverse("incidents:reports") == REPORTS


# --- home ---------------------------------------------------------------------------------------


def test_home_lists_my_teams_services_and_open_counts(client, world):
    extra = incident_services.service_create(
        team=world["team_a"],
        name="Checkout",
        escalation_policy=world["service_a"].escalation_policy,
    )
    make_incident(world["service_a"])
    make_incident(world["service_a"], status=Incident.Status.ACKNOWLEDGED)
    make_incident(world["service_a"], status=Incident.Status.RESOLVED)
    make_incident(extra)
    make_incident(world["service_b"])  # another team's: not counted, not shown

    response = page(client, world["responder_a"], HOME)

    assert response.status_code == 200
    rows = {row.team.name: row for row in response.context["teams"]}
    assert list(rows) == ["Alpha"]
    alpha = rows["Alpha"]
    assert alpha.role == Role.RESPONDER
    assert {s.name: s.open_incidents for s in alpha.services} == {
        "Alpha default service": 2,
        "Checkout": 1,
    }
    assert alpha.open_incidents == 3
    html = response.content.decode()
    assert "<strong>3</strong> open incidents" in html
    assert "Bravo" not in html


def test_home_superuser_sees_every_team(client, world):
    admin = UserFactory(username="root", is_superuser=True)
    make_incident(world["service_b"])
    response = page(client, admin, HOME)
    rows = {row.team.name: row for row in response.context["teams"]}
    assert list(rows) == ["Alpha", "Bravo"]
    assert rows["Bravo"].open_incidents == 1


def test_home_observer_sees_team_names_and_reports_link_but_no_incident_data(client, world):
    make_incident(world["service_a"])
    response = page(client, world["observer_a"], HOME)
    assert response.status_code == 200
    (row,) = response.context["teams"]
    assert row.team.name == "Alpha"
    assert not row.can_read and row.services == []
    html = response.content.decode()
    assert "You follow this team as an observer" in html
    assert reverse("incidents:reports") in html
    assert "Alpha default service" not in html
    assert "open incident" not in html


def test_home_member_in_two_roles_sees_each_team_accordingly(client, world):
    services.membership_set(team=world["team_b"], user=world["responder_a"], role=Role.OBSERVER)
    response = page(client, world["responder_a"], HOME)
    rows = {row.team.name: row for row in response.context["teams"]}
    assert rows["Alpha"].can_read and rows["Alpha"].services
    assert not rows["Bravo"].can_read and rows["Bravo"].services == []


def test_home_without_teams_says_so(client):
    response = page(client, UserFactory(), HOME)
    assert response.status_code == 200
    assert "You are not in any team yet" in response.content.decode()


def test_nudge_shown_until_a_contact_method_and_a_high_urgency_rule_exist(client, world):
    user = world["responder_a"]
    html = page(client, user, HOME).content.decode()
    assert "Add a way to reach you" in html
    assert "Add a notification rule for high-urgency incidents" in html
    assert f'href="{reverse("profile:detail")}#contact-methods"' in html

    method = contact_method(user)
    html = page(client, user, HOME).content.decode()
    assert "Add a way to reach you" not in html
    assert "Add a notification rule for high-urgency incidents" in html

    # A low-urgency rule alone does not reach you for the incidents that matter.
    services.notification_rule_create(
        user=user, contact_method=method, delay_minutes=0, urgency=Urgency.LOW
    )
    assert "Add a notification rule" in page(client, user, HOME).content.decode()

    services.notification_rule_create(
        user=user, contact_method=method, delay_minutes=0, urgency=Urgency.HIGH
    )
    html = page(client, user, HOME).content.decode()
    assert "The portal cannot page you yet" not in html


def test_nudge_through_the_profile_page(client, world):
    """The whole loop a new engineer goes through: nudge → profile → nudge gone."""
    user = world["responder_a"]
    client.force_login(user)
    assert "Add a way to reach you" in client.get(HOME).content.decode()
    client.post(
        reverse("profile:contact_method_add"),
        {"method-kind": "sms", "method-address": "+44 7700 900123"},
    )
    method = ContactMethod.objects.get(user=user)
    client.post(
        reverse("profile:rule_add", args=["high"]),
        {"high-delay_minutes": "0", "high-contact_method": str(method.pk)},
    )
    assert "The portal cannot page you yet" not in client.get(HOME).content.decode()


# --- services -----------------------------------------------------------------------------------


def test_services_page_shows_my_teams_services_with_key_hints_only(client, world):
    make_incident(world["service_a"])
    make_incident(world["service_a"], status=Incident.Status.RESOLVED)
    response = page(client, world["responder_a"], SERVICES)
    assert response.status_code == 200
    (service,) = response.context["services"]
    assert service == world["service_a"]
    assert service.open_incidents == 1
    html = response.content.decode()
    integration = Integration.objects.get(service=world["service_a"])
    assert integration.key_hint in html
    assert integration.key not in html
    assert "Default" in html  # the escalation policy
    assert "Events API v2 (PagerDuty-compatible)" in html
    assert "Bravo" not in html
    assert "Manage in admin" not in html  # responders don't manage services


def test_services_page_lead_gets_admin_link(client, world):
    html = page(client, world["lead_a"], SERVICES).content.decode()
    assert "Manage in admin" in html


def test_services_page_other_team_lead_does_not_see_my_services(client, world):
    response = page(client, world["lead_b"], SERVICES)
    assert [s.name for s in response.context["services"]] == ["Bravo default service"]
    assert Integration.objects.get(service=world["service_a"]).key_hint not in (
        response.content.decode()
    )


def test_services_page_is_forbidden_to_observers(client, world):
    response = page(client, world["observer_a"], SERVICES)
    assert response.status_code == 403
    assert "Observers read their teams" in response.content.decode()
    assert "Alpha default service" not in response.content.decode()


# --- incidents ----------------------------------------------------------------------------------


def test_incident_list_defaults_to_open_newest_first_with_counts(client, world):
    now = timezone.now()
    old = make_incident(world["service_a"], title="Old", triggered_at=now - timedelta(hours=2))
    new = make_incident(
        world["service_a"],
        title="New",
        status=Incident.Status.ACKNOWLEDGED,
        triggered_at=now - timedelta(hours=1),
    )
    make_incident(world["service_a"], title="Done", status=Incident.Status.RESOLVED)
    make_incident(world["service_b"], title="Someone else's")

    response = page(client, world["responder_a"], INCIDENTS)

    assert response.status_code == 200
    assert list(response.context["page"].object_list) == [new, old]
    counts = {f["value"]: f["count"] for f in response.context["filters"]}
    assert counts == {"open": 2, "triggered": 1, "acknowledged": 1, "resolved": 1, "all": 3}
    html = response.content.decode()
    assert "Someone else" not in html
    assert 'aria-current="true">Open' in html


@pytest.mark.parametrize(
    ("status", "titles"),
    [
        ("triggered", ["T"]),
        ("acknowledged", ["A"]),
        ("resolved", ["R"]),
        ("open", ["A", "T"]),
        ("all", ["R", "A", "T"]),
    ],
)
def test_incident_list_status_filter(client, world, status, titles):
    now = timezone.now()
    for minutes, (title, state) in enumerate(
        [("T", "triggered"), ("A", "acknowledged"), ("R", "resolved")]
    ):
        make_incident(
            world["service_a"],
            title=title,
            status=state,
            triggered_at=now + timedelta(minutes=minutes),
        )
    response = page(client, world["responder_a"], INCIDENTS, status=status)
    assert response.status_code == 200
    assert [i.title for i in response.context["page"].object_list] == titles


def test_incident_list_unknown_filter_is_ignored_with_a_message(client, world):
    make_incident(world["service_a"], title="Still open")
    response = page(client, world["responder_a"], INCIDENTS, status="<script>", page="x")
    assert response.status_code == 200
    assert response.context["status_filter"] == "open"
    html = response.content.decode()
    assert "is not a status filter; showing open incidents instead" in html
    assert "<script>" not in html
    assert "Still open" in html


def test_incident_list_is_paginated_by_25(client, world):
    start = datetime(2025, 1, 1, tzinfo=UTC)
    for n in range(30):
        make_incident(world["service_a"], title=f"Incident {n}", triggered_at=start + timedelta(n))
    response = page(client, world["responder_a"], INCIDENTS)
    assert len(response.context["page"].object_list) == 25
    assert response.context["page"].paginator.num_pages == 2
    second = page(client, world["responder_a"], INCIDENTS, status="open", page=2)
    assert [i.title for i in second.context["page"].object_list] == [
        f"Incident {n}" for n in range(4, -1, -1)
    ]
    assert page(client, world["responder_a"], INCIDENTS, page=99).status_code == 200


def test_incident_times_are_shown_in_the_readers_zone(client, world):
    services.profile_update(
        user=world["responder_a"], display_name="", time_zone="Asia/Tokyo", phone=""
    )
    make_incident(world["service_a"], triggered_at=datetime(2025, 3, 1, 12, 0, tzinfo=UTC))
    html = page(client, world["responder_a"], INCIDENTS).content.decode()
    assert "2025-03-01 21:00" in html
    assert "Asia/Tokyo" in html


def test_incident_list_is_forbidden_to_observers(client, world):
    make_incident(world["service_a"], title="Secret")
    response = page(client, world["observer_a"], INCIDENTS)
    assert response.status_code == 403
    assert "Secret" not in response.content.decode()


def test_incident_list_other_team_sees_nothing_of_mine(client, world):
    make_incident(world["service_a"], title="Alpha trouble")
    response = page(client, world["lead_b"], INCIDENTS, status="all")
    assert list(response.context["page"].object_list) == []
    assert "Alpha trouble" not in response.content.decode()


def test_incident_list_superuser_sees_all(client, world):
    make_incident(world["service_a"])
    make_incident(world["service_b"])
    response = page(client, UserFactory(is_superuser=True), INCIDENTS)
    assert len(response.context["page"].object_list) == 2


# --- reports ------------------------------------------------------------------------------------


def test_reports_default_to_the_last_30_days_in_my_zone(client, world):
    response = page(client, world["responder_a"], REPORTS)
    assert response.status_code == 200
    today = timezone.localdate(timezone=world["responder_a"].profile.zone)
    assert response.context["end"] == today
    assert response.context["start"] == today - timedelta(days=29)


def test_reports_are_readable_by_observers_and_show_durations(client, world):
    base = datetime(2025, 5, 10, 9, 0, tzinfo=UTC)
    make_incident(
        world["service_a"],
        status=Incident.Status.RESOLVED,
        triggered_at=base,
        acknowledged_at=base + timedelta(minutes=4, seconds=30),
        resolved_at=base + timedelta(hours=2, minutes=5),
    )
    make_incident(world["service_b"], triggered_at=base)  # Bravo: not the observer's team
    response = page(client, world["observer_a"], REPORTS, start="2025-05-01", end="2025-05-31")
    assert response.status_code == 200
    assert [team["name"] for team in response.context["teams"]] == ["Alpha"]
    html = response.content.decode()
    assert "4 min 30 s" in html
    assert "2 h 5 min" in html
    assert "Bravo" not in html


def test_reports_show_a_dash_without_data(client, world):
    response = page(client, world["lead_a"], REPORTS, start="2025-05-01", end="2025-05-31")
    (team,) = response.context["teams"]
    assert team["stats"]["incidents"] == 0
    assert team["stats"]["mtta_mean"] == "—"
    assert team["stats"]["mttr_median"] == "—"


def test_reports_range_is_in_the_readers_zone(client, world):
    """An incident at 23:30 UTC on 31 May is on 1 June in Tokyo."""
    services.profile_update(user=world["lead_a"], display_name="", time_zone="Asia/Tokyo", phone="")
    make_incident(world["service_a"], triggered_at=datetime(2025, 5, 31, 23, 30, tzinfo=UTC))
    may = page(client, world["lead_a"], REPORTS, start="2025-05-01", end="2025-05-31")
    june = page(client, world["lead_a"], REPORTS, start="2025-06-01", end="2025-06-01")
    assert may.context["overall"]["incidents"] == 0
    assert june.context["overall"]["incidents"] == 1


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2025-05-10", "end": "2025-05-01"}, "The end date is before the start date."),
        ({"start": "yesterday", "end": "2025-05-01"}, "Enter the start as a date"),
        ({"start": "2025-05-01", "end": "2025-13-45"}, "Enter the end as a date"),
        ({"start": "0001-01-01", "end": "2025-05-01"}, "Choose a date between 1970 and 2999."),
        ({"start": "2025-05-01", "end": "9999-12-31"}, "Choose a date between 1970 and 2999."),
    ],
)
def test_reports_bad_range_is_a_400_with_a_message(client, world, params, message):
    response = page(client, world["lead_a"], REPORTS, **params)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert response.context["report"] is None


def test_reports_for_a_user_without_teams(client):
    response = page(client, UserFactory(), REPORTS)
    assert response.status_code == 200
    assert "You are not in any team yet" in response.content.decode()


def test_reports_superuser_sees_every_team(client, world):
    response = page(client, UserFactory(is_superuser=True), REPORTS)
    assert [team["name"] for team in response.context["teams"]] == ["Alpha", "Bravo"]


# --- query counts: the same at two data sizes ---------------------------------------------------


_grown = itertools.count()


def grow(world, n):
    """Add `n` teams (the reader responds in each), each with 2 services and 3 incidents."""
    reader = world["responder_a"]
    for _ in range(n):
        team = TeamFactory(name=f"Grown {next(_grown)}", members=[(reader, Role.RESPONDER)])
        first = Service.objects.get(team=team)
        second = incident_services.service_create(
            team=team, name="Second", escalation_policy=first.escalation_policy
        )
        incident_services.integration_create(service=second, name="AM", kind="alertmanager")
        base = timezone.now() - timedelta(days=1)
        make_incident(first, triggered_at=base, acknowledged_at=base + timedelta(minutes=3))
        make_incident(
            second,
            status=Incident.Status.RESOLVED,
            triggered_at=base,
            acknowledged_at=base + timedelta(minutes=1),
            resolved_at=base + timedelta(hours=1),
        )
        make_incident(second, status=Incident.Status.ACKNOWLEDGED, triggered_at=base)


@pytest.mark.parametrize(
    ("url", "queries"),
    [
        # session, user, profile (time zone), roles; then the page's own queries:
        # teams, services with counts, schedules, rotations (3), names of the people on call,
        # my open incidents, reachability
        (HOME, 4 + 9),
        (SERVICES, 4 + 3),  # services with counts, integrations with monitors, newest open
        # filter menus, counts per status (+ version), the page, its assignees, my last page
        (INCIDENTS, 4 + 5),
        # teams with services, incident timestamps, noisiest integrations, noisiest keys
        (REPORTS, 4 + 4),
    ],
)
def test_query_count_does_not_grow_with_data(
    client, world, django_assert_num_queries, url, queries
):
    reader = world["responder_a"]
    make_incident(world["service_a"])
    client.force_login(reader)
    grow(world, 1)
    with django_assert_num_queries(queries):
        assert client.get(url).status_code == 200
    grow(world, 4)
    with django_assert_num_queries(queries):
        response = client.get(url)
    assert response.status_code == 200
    if url == HOME:
        assert len(response.context["teams"]) == 6
