"""MTTA and MTTR: the percentile maths (no database), the `response_times` selector on fixed
timestamps (incidents made through the workflow with explicit times), and
/api/v1/metrics/response-times/."""

import statistics
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from hypothesis import given
from hypothesis import strategies as st
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from incidents import selectors, workflow
from incidents.models import Channel, Service
from incidents.selectors import percentile
from incidents.services import service_create
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory

START = datetime(2026, 3, 1, tzinfo=UTC)
END = datetime(2026, 4, 1, tzinfo=UTC)
T = datetime(2026, 3, 10, 8, 0, tzinfo=UTC)
URL = "/api/v1/metrics/response-times/"


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


# --- percentiles (no database) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "fraction", "expected"),
    [
        ([], 0.9, None),
        ([7], 0.9, 7),
        ([1, 2], 0.5, 1.5),
        ([1, 2], 0.9, 1.9),
        (list(range(1, 11)), 0.9, 9.1),
        (list(range(10, 0, -1)), 0.9, 9.1),  # order of the input does not matter
        (list(range(1, 11)), 0.5, 5.5),
        (list(range(1, 11)), 0.0, 1),
        (list(range(1, 11)), 1.0, 10),
        ([1, 3, 5], 0.9, 4.6),
    ],
)
def test_percentile_interpolates_between_the_closest_ranks(values, fraction, expected):
    result = percentile(values, fraction)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_percentile_refuses_a_fraction_outside_0_1():
    with pytest.raises(ValueError):
        percentile([1, 2], 90)


durations = st.lists(
    st.floats(min_value=0, max_value=10**7, allow_nan=False), min_size=1, max_size=50
)


@given(durations, st.floats(min_value=0, max_value=1), st.floats(min_value=0, max_value=1))
def test_percentile_lies_within_the_values_and_grows_with_the_fraction(values, a, b):
    low, high = sorted((a, b))
    p_low, p_high = percentile(values, low), percentile(values, high)
    assert min(values) <= p_low <= max(values)
    assert p_low <= p_high + 1e-6
    assert percentile(values, 0) == min(values)
    assert percentile(values, 1) == max(values)


@given(durations)
def test_the_50th_percentile_is_the_median(values):
    assert percentile(values, 0.5) == pytest.approx(statistics.median(values), abs=1e-6)


# --- the selector --------------------------------------------------------------------------------


def incident(service, at, *, ack=None, res=None, by=None):
    """Triggered at `at`, acknowledged `ack` and resolved `res` after it, through the workflow."""
    made = workflow.incident_trigger(service=service, title="Something broke", at=at)
    if ack is not None:
        workflow.incident_acknowledge(incident=made, by=by, via=Channel.WEB, at=at + ack)
    if res is not None:
        workflow.incident_resolve(incident=made, by=by, via=Channel.WEB, at=at + res)
    return made


@pytest.fixture
def world(db):
    """Alpha (services API and Alpha default service), Bravo, and Charlie with no incidents.

    API:    MTTA 1, 3, 5 min; MTTR 10, 30, 20 min; five incidents (one never acknowledged but
            resolved, one still open).
    Alpha default service: MTTA 10 min, MTTR 60 min.
    Bravo:  MTTA 2 min, MTTR 4 min.
    Outside the window: one before it, one at its end (excluded: the end is open).
    """
    lead = UserFactory(username="alpha_lead")
    observer = UserFactory(username="exec")
    alpha = TeamFactory(name="Alpha", lead=lead, members=[(observer, Role.OBSERVER)])
    bravo = TeamFactory(name="Bravo")
    charlie = TeamFactory(name="Charlie")
    default = Service.objects.get(team=alpha)
    api = service_create(team=alpha, name="API", escalation_policy=default.escalation_policy)
    bravo_service = Service.objects.get(team=bravo)

    day = timedelta(days=1)
    incident(api, T, ack=minutes(1), res=minutes(10), by=lead)
    incident(api, T + day, ack=minutes(3), res=minutes(30), by=lead)
    incident(api, T + 2 * day, ack=minutes(5), by=lead)
    incident(api, T + 3 * day, res=minutes(20))
    incident(api, T + 4 * day)
    incident(default, T, ack=minutes(10), res=minutes(60), by=lead)
    incident(bravo_service, T, ack=minutes(2), res=minutes(4))
    incident(api, START - timedelta(seconds=1), ack=minutes(100), res=minutes(100))
    incident(api, END, ack=minutes(100), res=minutes(100))
    return {
        "lead": lead,
        "observer": observer,
        "alpha": alpha,
        "bravo": bravo,
        "charlie": charlie,
        "api": api,
        "default": default,
        "bravo_service": bravo_service,
    }


def stats(times):
    """(incidents, acknowledged, resolved, MTTA mean/median/p90, MTTR …) in seconds."""

    def s(value):
        return None if value is None else round(value.total_seconds(), 3)

    return (
        times.incidents,
        times.acknowledged,
        times.resolved,
        (s(times.mtta.mean), s(times.mtta.median), s(times.mtta.p90)),
        (s(times.mttr.mean), s(times.mttr.median), s(times.mttr.p90)),
    )


def test_response_times_per_service_team_and_overall(world):
    report = selectors.response_times(team_ids=None, start=START, end=END)
    teams = {team.name: team for team in report.teams}
    assert list(teams) == ["Alpha", "Bravo", "Charlie"]
    alpha = teams["Alpha"]
    services = {service.name: service for service in alpha.services}
    assert list(services) == ["Alpha default service", "API"]
    # API: MTTA [1, 3, 5] min, MTTR [10, 20, 30] min; p90 interpolated.
    assert stats(services["API"].times) == (5, 3, 3, (180, 180, 276), (1200, 1200, 1680))
    assert stats(services["Alpha default service"].times) == (
        1,
        1,
        1,
        (600, 600, 600),
        (3600, 3600, 3600),
    )
    # Alpha: MTTA [1, 3, 5, 10] min, MTTR [10, 20, 30, 60] min.
    assert stats(alpha.times) == (6, 4, 4, (285, 240, 510), (1800, 1500, 3060))
    assert stats(teams["Bravo"].times) == (1, 1, 1, (120, 120, 120), (240, 240, 240))
    # Charlie has a service and no incidents: zeros and nothing measured.
    assert stats(teams["Charlie"].times) == (0, 0, 0, (None,) * 3, (None,) * 3)
    assert [stats(s.times)[0] for s in teams["Charlie"].services] == [0]
    # Overall: MTTA [1, 2, 3, 5, 10] min, MTTR [4, 10, 20, 30, 60] min.
    assert stats(report.total) == (7, 5, 5, (252, 180, 480), (1488, 1200, 2880))


def test_the_window_includes_its_start_and_excludes_its_end(world):
    report = selectors.response_times(
        team_ids=None, start=START - timedelta(seconds=1), end=END + timedelta(microseconds=1)
    )
    assert report.total.incidents == 9
    only_edges = selectors.response_times(
        team_ids=None, start=START - timedelta(seconds=1), end=START
    )
    assert only_edges.total.incidents == 1


def test_scoped_to_the_readers_teams_and_one_team(world):
    report = selectors.response_times(team_ids={world["alpha"].pk}, start=START, end=END)
    assert [team.name for team in report.teams] == ["Alpha"]
    assert report.total.incidents == 6
    one = selectors.response_times(team_ids=None, start=START, end=END, team_id=world["bravo"].pk)
    assert [team.name for team in one.teams] == ["Bravo"]
    assert one.total.incidents == 1
    nothing = selectors.response_times(team_ids=set(), start=START, end=END)
    assert nothing.teams == [] and nothing.total.incidents == 0


def test_mtta_counts_from_the_first_acknowledgement(world):
    """An acknowledgement that timed out and was given again keeps the first as the milestone."""
    api = world["api"]
    Service.objects.filter(pk=api.pk).update(ack_timeout_minutes=30)
    api.refresh_from_db()
    at = T + timedelta(days=10)
    made = incident(api, at, ack=minutes(1), by=world["lead"])
    assert workflow.incident_unacknowledge_if_due(incident=made, now=at + minutes(31))
    workflow.incident_acknowledge(
        incident=made, by=world["lead"], via=Channel.WEB, at=at + minutes(40)
    )
    report = selectors.response_times(
        team_ids=None, start=at, end=at + timedelta(days=1), team_id=world["alpha"].pk
    )
    assert stats(report.total)[3] == (60, 60, 60)


def test_a_team_without_services_is_listed_with_zeros(db):
    team = TeamFactory(name="Empty")
    Service.objects.filter(team=team).delete()
    report = selectors.response_times(team_ids={team.pk}, start=START, end=END)
    assert [(t.name, t.services, t.times.incidents) for t in report.teams] == [("Empty", [], 0)]


@pytest.mark.parametrize("extra_teams", [0, 4])
def test_two_queries_whatever_the_number_of_teams(world, django_assert_num_queries, extra_teams):
    for n in range(extra_teams):
        team = TeamFactory(name=f"Extra {n}")
        service = Service.objects.get(team=team)
        second = service_create(
            team=team, name="Second", escalation_policy=service.escalation_policy
        )
        incident(second, T, ack=minutes(n + 1), res=minutes(n + 2))
        incident(service, T, ack=minutes(n + 1))
    with django_assert_num_queries(2):
        report = selectors.response_times(team_ids=None, start=START, end=END)
    assert len(report.teams) == 3 + extra_teams
    assert report.total.incidents == 7 + 2 * extra_teams


# --- the API ------------------------------------------------------------------------------------


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


WINDOW = {"start": "2026-03-01T00:00:00Z", "end": "2026-04-01T02:00:00+02:00"}


def test_api_gives_seconds_per_team_and_service(world):
    response = client_for(world["lead"]).get(URL, WINDOW)
    assert response.status_code == 200
    body = response.json()
    assert body["start"] == "2026-03-01T00:00:00+00:00"
    assert body["end"] == "2026-04-01T02:00:00+02:00"
    assert [team["slug"] for team in body["teams"]] == ["alpha"]
    alpha = body["teams"][0]
    assert alpha["stats"] == {
        "incidents": 6,
        "acknowledged": 4,
        "resolved": 4,
        "mtta": {"mean": 285.0, "median": 240.0, "p90": 510.0},
        "mttr": {"mean": 1800.0, "median": 1500.0, "p90": 3060.0},
    }
    api = next(s for s in alpha["services"] if s["name"] == "API")
    assert api["id"] == world["api"].pk
    assert api["stats"]["mtta"] == {"mean": 180.0, "median": 180.0, "p90": 276.0}
    assert body["total"] == alpha["stats"]


def test_observers_read_their_teams_metrics_only(world):
    client = client_for(world["observer"])
    body = client.get(URL, WINDOW).json()
    assert [team["name"] for team in body["teams"]] == ["Alpha"]
    refused = client.get(URL, {**WINDOW, "team": "bravo"})
    assert refused.status_code == 400
    assert list(refused.json()) == ["team"]
    by_slug = client.get(URL, {**WINDOW, "team": "alpha"}).json()
    by_id = client.get(URL, {**WINDOW, "team": world["alpha"].pk}).json()
    assert by_slug == by_id


def test_superusers_read_every_team(world):
    root = UserFactory(username="root", is_superuser=True)
    body = client_for(root).get(URL, WINDOW).json()
    assert [team["name"] for team in body["teams"]] == ["Alpha", "Bravo", "Charlie"]
    assert body["total"]["incidents"] == 7
    assert body["teams"][2]["stats"]["mtta"] == {"mean": None, "median": None, "p90": None}


def test_somebody_in_no_team_gets_an_empty_report(world):
    body = client_for(UserFactory()).get(URL, WINDOW).json()
    assert body["teams"] == [] and body["total"]["incidents"] == 0


def test_the_default_window_is_the_last_30_days(world):
    body = client_for(world["lead"]).get(URL).json()
    start, end = (datetime.fromisoformat(body[k]) for k in ("start", "end"))
    assert end - start == timedelta(days=30)
    assert abs(end - timezone.now()) < timedelta(minutes=1)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "last month"}, "start"),
        ({"start": "2026-03-01"}, "start"),  # a date without a time and offset is refused
        ({"end": "2026-03-01T00:00:00"}, "end"),
        ({"start": "2026-03-02T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),
        ({"start": "2026-03-01T00:00:00Z", "end": "2026-03-01T00:00:00Z"}, "end"),
        ({"start": "2020-01-01T00:00:00Z", "end": "2026-01-01T00:00:00Z"}, "end"),
        ({"team": "nope"}, "team"),
    ],
)
def test_bad_parameters_are_400_naming_them(world, params, field):
    response = client_for(world["lead"]).get(URL, params)
    assert response.status_code == 400
    assert list(response.json()) == [field]


def test_api_query_count(world, django_assert_num_queries):
    client = client_for(world["lead"])
    with django_assert_num_queries(4):  # token, roles, teams with services, incidents
        assert client.get(URL, WINDOW).status_code == 200
    with django_assert_num_queries(5):  # + the team
        assert client.get(URL, {**WINDOW, "team": "alpha"}).status_code == 200


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "0001-01-01T00:00:00+01:00"}, "start"),
        ({"end": "0001-01-01T00:00:00+01:00"}, "end"),
        ({"end": "9999-12-31T23:59:59-01:00"}, "end"),
    ],
)
def test_times_out_of_range_are_400_not_500(world, params, field):
    response = client_for(world["lead"]).get(URL, params)
    assert response.status_code == 400
    assert list(response.json()) == [field]
