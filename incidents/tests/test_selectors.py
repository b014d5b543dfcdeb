"""Selectors of the incidents app: MTTA / MTTR maths, open counts, team scoping."""

from datetime import UTC, datetime, timedelta

import pytest

from incidents import selectors
from incidents import services as incident_services
from incidents.models import Incident, Service
from incidents.views import human_duration
from oncall.tests.factories import TeamFactory

T0 = datetime(2025, 4, 1, 10, 0, tzinfo=UTC)
APRIL = {"start": datetime(2025, 4, 1, tzinfo=UTC), "end": datetime(2025, 5, 1, tzinfo=UTC)}


def make_incident(service, *, ack=None, res=None, at=T0, status=None):
    """An incident triggered at `at`, acknowledged `ack` and resolved `res` after it.
    (Rows written directly until the ingest services exist.)"""
    if status is None:
        status = (
            "resolved" if res is not None else "acknowledged" if ack is not None else "triggered"
        )
    return Incident.objects.create(
        service=service,
        title="Something broke",
        status=status,
        triggered_at=at,
        acknowledged_at=at + ack if ack is not None else None,
        resolved_at=at + res if res is not None else None,
    )


# --- human durations (no database) --------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (None, "—"),
        (timedelta(0), "0 s"),
        (timedelta(seconds=45), "45 s"),
        (timedelta(seconds=44.6), "45 s"),
        (timedelta(minutes=4, seconds=30), "4 min 30 s"),
        (timedelta(minutes=4), "4 min"),
        (timedelta(hours=2, minutes=5, seconds=59), "2 h 5 min"),
        (timedelta(hours=2), "2 h"),
        (timedelta(days=3, hours=4, minutes=10), "3 d 4 h"),
        (timedelta(days=1), "1 d"),
        (timedelta(seconds=-90), "−1 min 30 s"),
    ],
)
def test_human_duration(value, text):
    assert human_duration(value) == text


# --- MTTA / MTTR ------------------------------------------------------------------------------


@pytest.fixture
def two_teams(db):
    alpha = TeamFactory(name="Alpha")
    bravo = TeamFactory(name="Bravo")
    web = Service.objects.get(team=alpha)
    api = incident_services.service_create(
        team=alpha, name="API", escalation_policy=web.escalation_policy
    )
    return {
        "alpha": alpha,
        "bravo": bravo,
        "web": web,
        "api": api,
        "bravo_service": Service.objects.get(team=bravo),
    }


def minutes(n):
    return timedelta(minutes=n)


def test_report_mean_and_median_per_service_team_and_total(two_teams, django_assert_num_queries):
    web, api = two_teams["web"], two_teams["api"]
    make_incident(web, ack=minutes(2), res=minutes(30))
    make_incident(web, ack=minutes(4), res=minutes(60))
    make_incident(web, ack=minutes(12), res=minutes(150))
    make_incident(api, ack=minutes(10))  # acknowledged, still open: MTTA only
    make_incident(api)  # triggered, nobody yet: counted, no duration
    make_incident(two_teams["bravo_service"], ack=minutes(1), res=minutes(1))

    with django_assert_num_queries(3):
        report = selectors.response_report(team_ids=None, **APRIL)

    teams = {team.name: team for team in report.teams}
    assert list(teams) == ["Alpha", "Bravo"]
    services_ = {s.name: s.stats for s in teams["Alpha"].services}
    assert list(services_) == ["Alpha default service", "API"]

    web_stats = services_["Alpha default service"]
    assert (web_stats.incidents, web_stats.acknowledged, web_stats.resolved) == (3, 3, 3)
    assert web_stats.mtta_mean == minutes(6)  # (2 + 4 + 12) / 3
    assert web_stats.mtta_median == minutes(4)
    assert web_stats.mttr_mean == minutes(80)  # (30 + 60 + 150) / 3
    assert web_stats.mttr_median == minutes(60)

    api_stats = services_["API"]
    assert (api_stats.incidents, api_stats.acknowledged, api_stats.resolved) == (2, 1, 0)
    assert api_stats.mtta_mean == api_stats.mtta_median == minutes(10)
    assert api_stats.mttr_mean is None and api_stats.mttr_median is None

    alpha = teams["Alpha"].stats
    assert (alpha.incidents, alpha.acknowledged, alpha.resolved) == (5, 4, 3)
    assert alpha.mtta_mean == minutes(7)  # (2 + 4 + 12 + 10) / 4
    assert alpha.mtta_median == minutes(7)  # median of 2, 4, 10, 12
    assert alpha.mttr_mean == minutes(80)

    assert report.total.incidents == 6
    assert report.total.mtta_median == minutes(4)  # 1, 2, 4, 10, 12


def test_report_only_counts_incidents_triggered_in_the_range(two_teams):
    web = two_teams["web"]
    make_incident(web, ack=minutes(1), at=APRIL["start"] - timedelta(seconds=1))
    make_incident(web, ack=minutes(5), at=APRIL["start"])
    make_incident(web, ack=minutes(9), at=APRIL["end"] - timedelta(seconds=1))
    make_incident(web, ack=minutes(1), at=APRIL["end"])
    report = selectors.response_report(team_ids=None, **APRIL)
    stats = report.teams[0].stats
    assert stats.incidents == 2
    assert stats.mtta_mean == minutes(7)


def test_report_keeps_teams_and_services_without_incidents(two_teams):
    report = selectors.response_report(team_ids=None, **APRIL)
    bravo = next(team for team in report.teams if team.name == "Bravo")
    assert bravo.stats == selectors.ResponseStats()
    assert [s.name for s in bravo.services] == ["Bravo default service"]


def test_report_is_limited_to_the_given_teams(two_teams, django_assert_num_queries):
    make_incident(two_teams["web"], ack=minutes(3))
    make_incident(two_teams["bravo_service"], ack=minutes(30))
    with django_assert_num_queries(3):
        report = selectors.response_report(team_ids={two_teams["bravo"].pk}, **APRIL)
    assert [team.name for team in report.teams] == ["Bravo"]
    assert report.total.incidents == 1
    assert report.total.mtta_mean == minutes(30)


# --- home overview and incident counts ----------------------------------------------------------


def test_incident_counts_and_list_are_scoped(two_teams):
    from incidents.list_selectors import ListFilters, incident_list_counts, incident_list_page

    make_incident(two_teams["web"])
    make_incident(two_teams["api"], ack=minutes(1), res=minutes(2))
    make_incident(two_teams["bravo_service"], ack=minutes(1))
    alpha_only = ListFilters(service_ids=(two_teams["web"].pk, two_teams["api"].pk))
    assert incident_list_counts(filters=alpha_only) == {
        "triggered": 1,
        "acknowledged": 0,
        "resolved": 1,
        "open": 1,
        "all": 2,
    }
    assert incident_list_counts(filters=ListFilters(service_ids=None))["all"] == 3
    alpha_all = ListFilters(service_ids=alpha_only.service_ids, status="all")
    assert len(incident_list_page(filters=alpha_all, offset=0, limit=25)) == 2
    nothing = ListFilters(service_ids=(), status="all")
    assert incident_list_page(filters=nothing, offset=0, limit=25) == []
