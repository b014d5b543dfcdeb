"""Reports: response times by ISO week in the reader's zone, the noisiest alert sources, the
CSV downloads and the reports page (charts, empty state, who reads it, bad input, queries)."""

import csv
import io
import itertools
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from incidents import ingest
from incidents import services as incident_services
from incidents.events import Event
from incidents.models import Incident, Integration, Service
from incidents.report_selectors import noisy_sources, weekly_report, weeks_between
from oncall import services
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

REPORTS = "/reports/"
CSV = "/reports/csv/"
TOKYO = ZoneInfo("Asia/Tokyo")


def make_incident(service, *, at, ack=None, res=None):
    """An incident triggered at `at`, acknowledged `ack` and resolved `res` after it: the
    milestones the durations are derived from."""
    status = "resolved" if res is not None else "acknowledged" if ack is not None else "triggered"
    return Incident.objects.create(
        service=service,
        title="Something broke",
        status=status,
        triggered_at=at,
        acknowledged_at=at + ack if ack is not None else None,
        resolved_at=at + res if res is not None else None,
    )


def alert(integration, *, at, dedup_key, summary="CPU high"):
    return ingest.alert_ingest(
        integration=integration,
        event=Event(action="trigger", dedup_key=dedup_key, summary=summary, title=summary),
        received_at=at,
    )


@pytest.fixture
def world():
    lead = UserFactory(username="lead")
    observer = UserFactory(username="observer")
    outsider = UserFactory(username="outsider")
    alpha = TeamFactory(name="Alpha", lead=lead, members=[(observer, Role.OBSERVER)])
    bravo = TeamFactory(name="Bravo", lead=outsider)
    web = Service.objects.get(team=alpha)
    api = incident_services.service_create(
        team=alpha, name="API", escalation_policy=web.escalation_policy
    )
    return {
        "lead": lead,
        "observer": observer,
        "outsider": outsider,
        "alpha": alpha,
        "bravo": bravo,
        "web": web,
        "api": api,
        "bravo_service": Service.objects.get(team=bravo),
    }


def minutes(n):
    return timedelta(minutes=n)


# --- weeks ------------------------------------------------------------------------------------


def test_weeks_between_covers_every_iso_week_touching_the_range():
    weeks = weeks_between(date(2025, 5, 7), date(2025, 5, 19))  # Wed → Mon
    assert [w.label for w in weeks] == ["2025-W19", "2025-W20", "2025-W21"]
    assert weeks[0].monday == date(2025, 5, 5) and weeks[0].sunday == date(2025, 5, 11)
    assert weeks_between(date(2024, 12, 30), date(2024, 12, 31))[0].label == "2025-W01"
    assert weeks_between(date(2025, 5, 2), date(2025, 5, 1)) == []


# --- weekly MTTA / MTTR -------------------------------------------------------------------------


def test_weekly_report_buckets_incidents_by_iso_week(world, django_assert_num_queries):
    monday = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
    make_incident(world["web"], at=monday, ack=minutes(2), res=minutes(60))
    make_incident(world["web"], at=monday + timedelta(days=2), ack=minutes(4))
    make_incident(world["api"], at=monday + timedelta(days=8), ack=minutes(10), res=minutes(30))
    make_incident(world["bravo_service"], at=monday)  # another team: not in Alpha's report

    with django_assert_num_queries(2):
        report = weekly_report(
            team_ids={world["alpha"].pk},
            start=date(2025, 5, 5),
            end=date(2025, 5, 18),
            zone=UTC,
        )

    assert [w.label for w in report.weeks] == ["2025-W19", "2025-W20"]
    (alpha,) = report.teams
    assert [t.incidents for t in alpha.weekly] == [2, 1]
    assert alpha.weekly[0].mtta_mean == minutes(3)
    assert alpha.weekly[0].mttr_mean == minutes(60)
    assert alpha.weekly[1].mtta_mean == minutes(10)
    services_ = {s.name: s for s in alpha.services}
    assert [t.incidents for t in services_["Alpha default service"].weekly] == [2, 0]
    assert services_["Alpha default service"].weekly[1].mtta_mean is None
    assert services_["API"].weekly[1].mttr_mean == minutes(30)
    assert alpha.stats.incidents == 3 and report.total.incidents == 3


def test_week_boundary_is_in_the_readers_zone(world):
    """Sunday 11 May 2025 at 16:00 UTC is already Monday 12 May 01:00 in Tokyo: week 20 there,
    week 19 in UTC."""
    make_incident(world["web"], at=datetime(2025, 5, 11, 16, 0, tzinfo=UTC), ack=minutes(5))
    kwargs = {"team_ids": {world["alpha"].pk}, "start": date(2025, 5, 5), "end": date(2025, 5, 18)}
    in_utc = weekly_report(zone=UTC, **kwargs)
    in_tokyo = weekly_report(zone=TOKYO, **kwargs)
    assert [t.incidents for t in in_utc.total_weekly] == [1, 0]
    assert [t.incidents for t in in_tokyo.total_weekly] == [0, 1]


def test_weekly_report_only_counts_the_local_days_asked_for(world):
    """The range is local days: 23:30 UTC on 18 May is 19 May in Tokyo, past the range."""
    make_incident(world["web"], at=datetime(2025, 5, 18, 23, 30, tzinfo=UTC))
    kwargs = {"team_ids": None, "start": date(2025, 5, 12), "end": date(2025, 5, 18)}
    assert weekly_report(zone=UTC, **kwargs).total.incidents == 1
    assert weekly_report(zone=TOKYO, **kwargs).total.incidents == 0


# --- noisy sources ------------------------------------------------------------------------------


def test_noisy_sources_rank_integrations_and_keys_by_alerts(world, django_assert_num_queries):
    events = Integration.objects.get(service=world["web"])
    am = incident_services.integration_create(
        service=world["api"], name="Prometheus", kind="alertmanager"
    )
    other = Integration.objects.get(service=world["bravo_service"])
    t = datetime(2025, 5, 6, 8, 0, tzinfo=UTC)
    clock = itertools.count()  # 11 minutes apart: the ingest drops repeats within 10
    for _ in range(3):
        alert(
            am, at=t + minutes(11 * next(clock)), dedup_key="disk-full", summary="Disk full on db1"
        )
    alert(am, at=t + minutes(11 * next(clock)), dedup_key="cpu", summary="CPU high")
    alert(events, at=t + minutes(11 * next(clock)), dedup_key="checkout-5xx", summary="5xx")
    for _ in range(5):  # another team's: never counted for Alpha
        alert(other, at=t + minutes(11 * next(clock)), dedup_key="x", summary="Other")
    alert(events, at=t - timedelta(days=30), dedup_key="old", summary="Before the range")

    with django_assert_num_queries(2):
        sources = noisy_sources(
            team_ids={world["alpha"].pk},
            start=datetime(2025, 5, 1, tzinfo=UTC),
            end=datetime(2025, 6, 1, tzinfo=UTC),
        )

    assert [(i.name, i.service_name, i.alerts) for i in sources.integrations] == [
        ("Prometheus", "API", 4),
        (events.name, "Alpha default service", 1),
    ]
    assert sources.integrations[0].kind == "Prometheus Alertmanager"
    assert [(k.key, k.title, k.service_name, k.alerts) for k in sources.keys] == [
        ("disk-full", "Disk full on db1", "API", 3),
        ("checkout-5xx", "5xx", "Alpha default service", 1),
        ("cpu", "CPU high", "API", 1),
    ]
    everything = noisy_sources(
        team_ids=None,
        start=datetime(2025, 5, 1, tzinfo=UTC),
        end=datetime(2025, 6, 1, tzinfo=UTC),
    )
    assert everything.integrations[0].team_name == "Bravo"


def test_noisy_sources_group_alerts_without_a_dedup_key_by_their_summary(world):
    from incidents.models import Alert

    events = Integration.objects.get(service=world["web"])
    t = datetime(2025, 5, 6, 8, 0, tzinfo=UTC)
    for i in range(2):
        Alert.objects.create(
            integration=events, received_at=t + minutes(i), action="trigger", summary="Ping lost"
        )
    (key,) = noisy_sources(team_ids=None, start=t, end=t + timedelta(days=1)).keys
    assert (key.key, key.is_dedup_key, key.alerts) == ("Ping lost", False, 2)


# --- the page -----------------------------------------------------------------------------------


def page(client, user, url=REPORTS, **params):
    client.force_login(user)
    return client.get(url, params)


def svgs(html: str) -> list[ET.Element]:
    """Every inline chart of the page, parsed as XML (so each is well-formed)."""
    found = []
    for chunk in html.split("<svg ")[1:]:
        markup = "<svg " + chunk.split("</svg>")[0] + "</svg>"
        if 'class="chart ' in markup:
            found.append(ET.fromstring(markup))
    return found


def test_reports_page_draws_weekly_charts_with_data_tables(client, world):
    monday = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
    make_incident(world["web"], at=monday, ack=minutes(4), res=minutes(90))
    make_incident(world["api"], at=monday + timedelta(days=7), ack=minutes(8))

    response = page(client, world["lead"], start="2025-05-05", end="2025-05-18")

    assert response.status_code == 200
    html = response.content.decode()
    charts_ = svgs(html)
    ids = [c.get("id") for c in charts_]
    team = world["alpha"].pk
    assert ids == [
        "chart-mtta-teams",
        "chart-mttr-teams",
        f"chart-mtta-team-{team}",
        f"chart-mttr-team-{team}",
        "chart-incidents-per-service",
    ]
    for chart in charts_:
        assert chart.get("role") == "img"
        assert chart.get("viewBox", "").startswith("0 0 ")
        assert chart.get("width") == "100%"
    # Units on the axis; every chart followed by its table (collapsed).
    assert "MTTA mean (minutes)" in html
    assert html.count('<details class="chart-data">') == 5
    assert "2025-W19" in html and "2025-W20" in html
    assert "4 min" in html and "1 h 30 min" in html
    assert "Download as CSV" in html


def test_reports_page_with_no_incidents_shows_an_empty_state(client, world):
    response = page(client, world["lead"], start="2025-05-01", end="2025-05-31")
    assert response.status_code == 200
    html = response.content.decode()
    assert "No incident was triggered in your teams in this period" in html
    assert "No alerts were received in this period" in html
    assert svgs(html) == []


def test_observers_read_reports_and_csv_of_their_teams_only(client, world):
    at = datetime(2025, 5, 6, 9, 0, tzinfo=UTC)
    make_incident(world["web"], at=at, ack=minutes(3))
    make_incident(world["bravo_service"], at=at, ack=minutes(3))
    response = page(client, world["observer"], start="2025-05-01", end="2025-05-31")
    assert response.status_code == 200
    assert [t["name"] for t in response.context["teams"]] == ["Alpha"]
    assert "Bravo" not in response.content.decode()

    response = page(
        client, world["observer"], CSV, start="2025-05-01", end="2025-05-31", kind="services"
    )
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {row["team"] for row in rows} == {"Alpha"}


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"start": "2025-05-10", "end": "2025-05-01"}, "The end date is before the start date."),
        ({"start": "soon", "end": "2025-05-01"}, "Enter the start as a date"),
        ({"start": "2025-05-01", "end": "2025-05-02", "kind": "pie"}, "Unknown CSV download"),
        ({"start": "2024-01-01", "end": "2025-01-01"}, "Choose a period of at most 366 days"),
    ],
)
def test_csv_bad_input_is_a_400_with_a_message(client, world, params, message):
    response = page(client, world["lead"], CSV, **params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert message in response.content.decode()


@pytest.mark.parametrize(
    ("start", "end", "status"),
    [
        ("2024-01-01", "2024-12-31", 200),  # a leap year: 366 days
        ("2024-01-01", "2025-01-01", 400),
        ("1970-01-01", "2999-12-31", 400),
    ],
)
def test_reports_cover_at_most_a_year(client, world, start, end, status):
    response = page(client, world["lead"], start=start, end=end)
    assert response.status_code == status
    if status == 400:
        assert "Choose a period of at most 366 days" in response.content.decode()
        assert response.context["report"] is None


def test_reports_need_sign_in(client):
    assert client.get(CSV).status_code == 302


# --- CSV ----------------------------------------------------------------------------------------


def read_csv(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(response.content.decode())))


def test_weekly_csv(client, world):
    monday = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
    make_incident(world["web"], at=monday, ack=minutes(2), res=minutes(61))
    make_incident(world["web"], at=monday + timedelta(days=1), ack=minutes(4))

    response = page(client, world["lead"], CSV, start="2025-05-05", end="2025-05-18")

    assert response["Content-Disposition"] == (
        'attachment; filename="oncall-weekly-2025-05-05-to-2025-05-18.csv"'
    )
    rows = read_csv(response)
    assert list(rows[0]) == [
        "week",
        "week_start",
        "week_end",
        "team",
        "service",
        "incidents",
        "acknowledged",
        "resolved",
        "mtta_mean_seconds",
        "mtta_median_seconds",
        "mttr_mean_seconds",
        "mttr_median_seconds",
    ]
    by = {(r["week"], r["team"], r["service"]): r for r in rows}
    # Two weeks × (team row + two services).
    assert len(rows) == 6
    team_w19 = by[("2025-W19", "Alpha", "")]
    assert team_w19["week_start"] == "2025-05-05" and team_w19["week_end"] == "2025-05-11"
    assert team_w19["incidents"] == "2"
    assert team_w19["mtta_mean_seconds"] == "180"
    assert team_w19["mttr_mean_seconds"] == "3660"
    empty = by[("2025-W20", "Alpha", "API")]
    assert empty["incidents"] == "0" and empty["mtta_mean_seconds"] == ""


def test_services_csv(client, world):
    make_incident(world["api"], at=datetime(2025, 5, 6, tzinfo=UTC), ack=minutes(1))
    rows = read_csv(
        page(client, world["lead"], CSV, start="2025-05-01", end="2025-05-31", kind="services")
    )
    assert [(r["team"], r["service"], r["incidents"]) for r in rows] == [
        ("Alpha", "", "1"),
        ("Alpha", "Alpha default service", "0"),
        ("Alpha", "API", "1"),
    ]
    assert rows[0]["period_start"] == "2025-05-01" and rows[0]["period_end"] == "2025-05-31"
    assert rows[2]["mtta_median_seconds"] == "60"


def test_sources_csv_neutralises_formulas(client, world):
    events = Integration.objects.get(service=world["web"])
    t = datetime(2025, 5, 6, 8, 0, tzinfo=UTC)
    alert(events, at=t, dedup_key="=HYPERLINK(1)", summary="+danger")
    alert(events, at=t + minutes(11), dedup_key="=HYPERLINK(1)", summary="+danger")
    rows = read_csv(
        page(client, world["lead"], CSV, start="2025-05-01", end="2025-05-31", kind="sources")
    )
    assert [(r["source"], r["rank"], r["alerts"]) for r in rows] == [
        ("integration", "1", "2"),
        ("dedup_key", "1", "2"),
    ]
    assert rows[0]["integration"] == events.name and rows[0]["service"] == "Alpha default service"
    assert rows[1]["key"] == "'=HYPERLINK(1)" and rows[1]["title"] == "'+danger"


# --- the page in the reader's zone, by default --------------------------------------------------


def test_reports_default_range_ends_today_in_the_readers_zone(client, world):
    services.profile_update(user=world["lead"], display_name="", time_zone="Asia/Tokyo", phone="")
    with time_machine.travel(datetime(2025, 5, 31, 20, 0, tzinfo=UTC), tick=False):
        response = page(client, world["lead"])
    assert response.context["end"] == date(2025, 6, 1)  # already 1 June in Tokyo
    assert response.context["report"].weeks[-1].label == "2025-W22"


# --- queries: the same at two sizes -------------------------------------------------------------

_grown = itertools.count()


def grow(world, n):
    """`n` more services of Alpha, each with incidents over three weeks and some alerts."""
    base = datetime(2025, 5, 5, 9, 0, tzinfo=UTC)
    policy = world["web"].escalation_policy
    for _ in range(n):
        service = incident_services.service_create(
            team=world["alpha"], name=f"Grown {next(_grown)}", escalation_policy=policy
        )
        integration = incident_services.integration_create(
            service=service, name="AM", kind="alertmanager"
        )
        for week in range(3):
            at = base + timedelta(days=7 * week)
            make_incident(service, at=at, ack=minutes(week + 1), res=minutes(30))
            alert(integration, at=at, dedup_key=f"k{week}", summary=f"Alert {week}")


@pytest.mark.parametrize("url", [REPORTS, CSV + "?kind=weekly", CSV + "?kind=sources"])
def test_reports_queries_do_not_grow_with_data(client, world, django_assert_num_queries, url):
    client.force_login(world["lead"])
    params = "start=2025-05-01&end=2025-05-31"
    full = f"{url}{'&' if '?' in url else '?'}{params}"
    grow(world, 1)
    client.get(full)  # warm the session
    with django_assert_num_queries(4 + (4 if url == REPORTS else 2)) as first:
        assert client.get(full).status_code == 200
    grow(world, 5)
    with django_assert_num_queries(len(first.captured_queries)):
        assert client.get(full).status_code == 200
