"""The incident list page and its live endpoint: filters, counts, sorting, pages, team scoping,
bad input, the version marker, incidents newly assigned to the reader, and query counts.

Rafa, the reader, responds in Alpha and Bravo and lives in Tokyo; Charlie is a team he is not
in. The clock stands still at T (moved by hand where a test needs a later change), so ages and
dates are exact.
"""

import itertools
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.urls import reverse

from incidents import workflow
from incidents.list_views import age_text
from incidents.models import Channel, Service
from incidents.services import service_create
from oncall.models import Role, Urgency
from oncall.tests.factories import TeamFactory, UserFactory, contact_method

pytestmark = pytest.mark.django_db

LIST = "/incidents/"
LIVE = "/incidents/live/"
T = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def trigger(service, title, at, urgency=Urgency.HIGH):
    return workflow.incident_trigger(service=service, title=title, at=at, urgency=urgency)


def assign(incident, user, at):
    """Hand the incident to `user` and let the engine page them, as a reassignment does."""
    workflow.incident_reassign(incident=incident, by=None, via=Channel.WEB, at=at, user=user)
    return workflow.incident_advance(incident=incident, now=at)


@pytest.fixture
def world():
    with time_machine.travel(T, tick=False) as clock:
        rafa = UserFactory(username="rafa", display_name="Rafa", time_zone="Asia/Tokyo")
        contact_method(rafa)
        olive = UserFactory(username="olive")
        alma = UserFactory(username="alma", display_name="Alma")
        contact_method(alma)
        alpha = TeamFactory(
            name="Alpha", lead=alma, members=[(rafa, Role.RESPONDER), (olive, Role.OBSERVER)]
        )
        bravo = TeamFactory(name="Bravo", members=[(rafa, Role.RESPONDER)])
        charlie = TeamFactory(name="Charlie")
        alpha_default = Service.objects.get(team=alpha)
        checkout = service_create(
            team=alpha, name="Checkout", escalation_policy=alpha_default.escalation_policy
        )
        bravo_default = Service.objects.get(team=bravo)
        charlie_default = Service.objects.get(team=charlie)

        a3 = trigger(checkout, "Checkout down", datetime(2026, 3, 1, 10, 0, tzinfo=UTC))
        workflow.incident_resolve(
            incident=a3, by=alma, via=Channel.WEB, at=datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
        )
        a2 = trigger(
            checkout, "Checkout slow", datetime(2026, 3, 5, 10, 0, tzinfo=UTC), Urgency.LOW
        )
        workflow.incident_acknowledge(
            incident=a2, by=alma, via=Channel.WEB, at=datetime(2026, 3, 5, 10, 5, tzinfo=UTC)
        )
        # 16:00 UTC on the 9th is 01:00 on the 10th in Tokyo.
        a1 = trigger(alpha_default, "Alpha disk full", datetime(2026, 3, 9, 16, 0, tzinfo=UTC))
        b1 = trigger(bravo_default, "Bravo queue backlog", datetime(2026, 3, 10, 11, 0, tzinfo=UTC))
        assign(b1, rafa, datetime(2026, 3, 10, 11, 1, tzinfo=UTC))
        c1 = trigger(charlie_default, "Charlie secret", datetime(2026, 3, 10, 11, 30, tzinfo=UTC))
        yield {
            "clock": clock,
            "rafa": rafa,
            "olive": olive,
            "alma": alma,
            "alpha": alpha,
            "bravo": bravo,
            "charlie": charlie,
            "alpha_default": alpha_default,
            "checkout": checkout,
            "bravo_default": bravo_default,
            "charlie_default": charlie_default,
            "a1": a1,
            "a2": a2,
            "a3": a3,
            "b1": b1,
            "c1": c1,
        }


def get(client, user, url=LIST, **params):
    client.force_login(user)
    return client.get(url, params)


def titles(response) -> list[str]:
    return [incident.title for incident in response.context["rows"]]


def counts(response) -> dict[str, int]:
    return {link["value"]: link["count"] for link in response.context["filters"]}


def html(response) -> str:
    return response.content.decode()


# --- filters ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, ["Bravo queue backlog", "Alpha disk full", "Checkout slow"]),
        ({"status": "triggered"}, ["Bravo queue backlog", "Alpha disk full"]),
        ({"status": "acknowledged"}, ["Checkout slow"]),
        ({"status": "resolved"}, ["Checkout down"]),
        (
            {"status": "all"},
            ["Bravo queue backlog", "Alpha disk full", "Checkout slow", "Checkout down"],
        ),
        (
            {"status": "all", "team": "{alpha}"},
            ["Alpha disk full", "Checkout slow", "Checkout down"],
        ),
        ({"status": "all", "team": "alpha"}, ["Alpha disk full", "Checkout slow", "Checkout down"]),
        ({"status": "all", "service": "{checkout}"}, ["Checkout slow", "Checkout down"]),
        ({"urgency": "low"}, ["Checkout slow"]),
        (
            {"status": "all", "urgency": "high"},
            ["Bravo queue backlog", "Alpha disk full", "Checkout down"],
        ),
        ({"mine": "1"}, ["Bravo queue backlog"]),
        ({"mine": "on", "status": "all"}, ["Bravo queue backlog"]),
        # Days in the reader's zone (Tokyo): "Alpha disk full" was triggered on the 10th there.
        (
            {"status": "all", "triggered_from": "2026-03-05", "triggered_to": "2026-03-09"},
            ["Checkout slow"],
        ),
        (
            {"status": "all", "triggered_from": "2026-03-10"},
            ["Bravo queue backlog", "Alpha disk full"],
        ),
        ({"status": "all", "triggered_to": "2026-03-01"}, ["Checkout down"]),
        # Combinations.
        (
            {"status": "all", "team": "{alpha}", "urgency": "high"},
            ["Alpha disk full", "Checkout down"],
        ),
        ({"status": "open", "service": "{checkout}", "urgency": "high"}, []),
        (
            {
                "status": "all",
                "team": "{alpha}",
                "service": "{checkout}",
                "triggered_to": "2026-03-04",
            },
            ["Checkout down"],
        ),
        ({"team": "{bravo}", "mine": "1", "urgency": "high"}, ["Bravo queue backlog"]),
    ],
)
def test_each_filter_and_combinations(client, world, params, expected):
    ids = {"alpha": world["alpha"].pk, "bravo": world["bravo"].pk, "checkout": world["checkout"].pk}
    params = {name: value.format(**ids) for name, value in params.items()}
    response = get(client, world["rafa"], **params)
    assert response.status_code == 200
    assert titles(response) == expected
    assert response.context["warnings"] == []


def test_counts_per_status_honour_the_other_filters(client, world):
    everything = get(client, world["rafa"])
    assert counts(everything) == {
        "open": 3,
        "triggered": 2,
        "acknowledged": 1,
        "resolved": 1,
        "all": 4,
    }
    alpha = get(client, world["rafa"], team=world["alpha"].pk)
    assert counts(alpha) == {"open": 2, "triggered": 1, "acknowledged": 1, "resolved": 1, "all": 3}
    high = get(client, world["rafa"], urgency="high", status="resolved")
    assert counts(high) == {"open": 2, "triggered": 2, "acknowledged": 0, "resolved": 1, "all": 3}
    mine = get(client, world["rafa"], mine="1")
    assert counts(mine) == {"open": 1, "triggered": 1, "acknowledged": 0, "resolved": 0, "all": 1}
    assert '<span class="count">0</span>' in html(mine)


def test_status_tabs_keep_the_other_filters(client, world):
    response = get(client, world["rafa"], team=world["alpha"].pk, urgency="high", sort="oldest")
    tabs = {link["value"]: link for link in response.context["filters"]}
    resolved = parse_qs(urlsplit(tabs["resolved"]["url"]).query)
    assert resolved == {
        "status": ["resolved"],
        "team": [str(world["alpha"].pk)],
        "urgency": ["high"],
        "sort": ["oldest"],
    }
    assert tabs["open"]["active"]
    followed = client.get(tabs["resolved"]["url"])
    assert titles(followed) == ["Checkout down"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("newest", ["Bravo queue backlog", "Alpha disk full", "Checkout slow", "Checkout down"]),
        ("oldest", ["Checkout down", "Checkout slow", "Alpha disk full", "Bravo queue backlog"]),
        ("urgency", ["Bravo queue backlog", "Alpha disk full", "Checkout down", "Checkout slow"]),
        ("status", ["Bravo queue backlog", "Alpha disk full", "Checkout slow", "Checkout down"]),
    ],
)
def test_sort_orders(client, world, sort, expected):
    response = get(client, world["rafa"], status="all", sort=sort)
    assert titles(response) == expected


def test_status_sort_puts_triggered_before_acknowledged_before_resolved(client, world):
    with time_machine.travel(T + timedelta(minutes=1), tick=False):
        newest_ack = trigger(world["checkout"], "Newest but acknowledged", T)
        workflow.incident_acknowledge(incident=newest_ack, by=None, via=Channel.WEB, at=T)
        newest_done = trigger(world["checkout"], "Newest but resolved", T)
        workflow.incident_resolve(incident=newest_done, by=None, via=Channel.WEB, at=T)
    response = get(client, world["rafa"], status="all", sort="status")
    assert [incident.status for incident in response.context["rows"]] == [
        "triggered",
        "triggered",
        "acknowledged",
        "acknowledged",
        "resolved",
        "resolved",
    ]
    assert titles(response)[2] == "Newest but acknowledged"


def test_pagination_is_25_a_page_and_keeps_the_filters(client, world):
    for n in range(30):
        trigger(world["checkout"], f"Low {n:02}", T - timedelta(hours=n + 1), Urgency.LOW)
    first = get(client, world["rafa"], service=world["checkout"].pk, urgency="low")
    assert len(first.context["rows"]) == 25
    assert counts(first)["open"] == 31
    assert 'rel="next"' in html(first)
    next_url = first.context["next_url"]
    assert parse_qs(urlsplit(next_url).query) == {
        "status": ["open"],
        "service": [str(world["checkout"].pk)],
        "urgency": ["low"],
        "page": ["2"],
    }
    second = client.get(next_url)
    assert titles(second) == ["Low 25", "Low 26", "Low 27", "Low 28", "Low 29", "Checkout slow"]
    assert parse_qs(urlsplit(second.context["previous_url"]).query)["urgency"] == ["low"]
    assert "Page 2 of 2" in html(second)


# --- team scoping -------------------------------------------------------------------------------


def test_other_teams_incidents_are_never_shown_nor_counted(client, world):
    response = get(client, world["rafa"], status="all")
    page = html(response)
    assert "Charlie secret" not in page
    assert counts(response)["all"] == 4
    # Charlie is not offered in the menus either.
    assert "Charlie" not in page
    team_menu = response.context["form"].fields["team"].choices
    assert [label for _, label in team_menu] == ["All my teams", "Alpha", "Bravo"]


def test_naming_another_teams_team_or_service_falls_back_with_a_warning(client, world):
    by_team = get(client, world["rafa"], status="all", team=world["charlie"].pk)
    assert by_team.status_code == 200
    assert "is not one of your teams; showing all your teams instead" in html(by_team)
    assert "Charlie secret" not in html(by_team)
    assert counts(by_team)["all"] == 4
    by_service = get(client, world["rafa"], status="all", service=world["charlie_default"].pk)
    assert "is not a service of your teams; showing all services instead" in html(by_service)
    assert "Charlie secret" not in html(by_service)


def test_superuser_sees_every_team(client, world):
    boss = UserFactory(username="boss", is_superuser=True)
    response = get(client, boss, status="all")
    assert "Charlie secret" in titles(response)
    assert counts(response)["all"] == 5


def test_observers_get_the_403_page_and_anonymous_people_the_sign_in_page(client, world):
    observer = get(client, world["olive"])
    assert observer.status_code == 403
    assert "Alpha disk full" not in html(observer)
    assert get(client, world["olive"], LIVE).status_code == 403
    client.logout()
    assert client.get(LIST).status_code == 302
    live = client.get(LIVE)
    assert live.status_code == 401
    assert live.json() == {"error": "Sign in again to see live updates."}


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"status": "<script>"}, "is not a status filter; showing open incidents instead."),
        ({"team": "nope"}, "is not one of your teams; showing all your teams instead."),
        ({"team": "99999"}, "is not one of your teams; showing all your teams instead."),
        ({"service": "x1"}, "is not a service of your teams; showing all services instead."),
        ({"urgency": "urgent"}, "is not an urgency (high or low); showing any urgency instead."),
        ({"sort": "title"}, "is not a sort order; showing newest first instead."),
        ({"mine": "maybe"}, "showing everybody’s incidents instead."),
        ({"page": "abc"}, "is not a page number; showing page 1."),
        ({"page": "0"}, "is not a page number; showing page 1."),
        ({"page": "-2"}, "is not a page number; showing page 1."),
        ({"page": "7"}, "There is no page 7; showing the last page, 1."),
    ],
)
def test_unknown_values_fall_back_with_a_warning(client, world, params, message):
    response = get(client, world["rafa"], **params)
    assert response.status_code == 200
    assert message in html(response)
    assert titles(response) == ["Bravo queue backlog", "Alpha disk full", "Checkout slow"]
    assert "<script>" not in html(response)


def test_a_service_of_another_of_my_teams_than_the_one_chosen_is_dropped(client, world):
    response = get(
        client, world["rafa"], status="all", team=world["bravo"].pk, service=world["checkout"].pk
    )
    assert "That service belongs to Alpha, not Bravo; showing all of Bravo" in html(response)
    assert titles(response) == ["Bravo queue backlog"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"triggered_from": "2026-02-30"}, "“2026-02-30” is not a date: enter one such as"),
        ({"triggered_to": "yesterday"}, "“yesterday” is not a date: enter one such as"),
        ({"triggered_to": "03/10/2026"}, "“03/10/2026” is not a date: enter one such as"),
        ({"triggered_from": "0999-01-01"}, "Choose a date between 1970 and 2999."),
        (
            {"triggered_from": "2026-03-10", "triggered_to": "2026-03-01"},
            "The range ends (2026-03-01) before it starts (2026-03-10)",
        ),
    ],
)
def test_bad_dates_answer_400_with_the_problem_on_the_page(client, world, params, message):
    response = get(client, world["rafa"], **params)
    assert response.status_code == 400
    page = html(response)
    assert message in page
    assert 'class="error-summary"' in page
    assert "Alpha disk full" not in page
    # The form is still there, with what was typed, to be corrected.
    assert 'id="incident-filters"' in page
    for value in params.values():
        assert f'value="{value}"' in page
    live = get(client, world["rafa"], LIVE, **params)
    assert live.status_code == 400
    assert message in live.json()["error"]


# --- rows ---------------------------------------------------------------------------------------


def test_rows_link_to_the_incident_and_show_service_team_assignees_times_and_age(client, world):
    response = get(client, world["rafa"], status="all")
    page = html(response)
    a1, b1 = world["a1"], world["b1"]
    assert f'href="{reverse("incidents:detail", args=[a1.pk])}">Alpha disk full</a>' in page
    assert world["bravo_default"].name in page
    row = page[page.index(f'data-incident-id="{b1.pk}"') :]
    row = row[: row.index("</tr>")]
    assert "Rafa" in row  # assigned to Rafa by the reassignment
    assert "· Bravo" in row
    assert "High" in row
    # Times in the reader's zone (Tokyo, UTC+9), age counted from T.
    a1_row = page[page.index(f'data-incident-id="{a1.pk}"') :]
    a1_row = a1_row[: a1_row.index("</tr>")]
    assert "2026-03-10 01:00" in a1_row
    assert "20 h ago" in a1_row
    assert "Nobody" in a1_row
    a3_row = page[page.index(f'data-incident-id="{world["a3"].pk}"') :]
    assert "resolved after 1 h" in a3_row[: a3_row.index("</tr>")]


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "under a minute"),
        (59, "under a minute"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h"),
        (3600 * 2 + 300, "2 h 5 min"),
        (86400, "1 d"),
        (86400 * 3 + 3600 * 4 + 59, "3 d 4 h"),
        (-5, "under a minute"),
    ],
)
def test_age_text(seconds, text):
    assert age_text(seconds) == text


def test_empty_states_say_why(client, world):
    mine_resolved = get(client, world["rafa"], status="resolved", mine="1")
    assert "No resolved incidents match these filters." in html(mine_resolved)
    lonely = UserFactory(username="lonely")
    TeamFactory(name="Quiet", lead=lonely)
    assert "No open incidents — all quiet." in html(get(client, lonely))


def test_the_filter_form_is_a_labelled_get_form_that_folds_on_phones(client, world):
    page = html(get(client, world["rafa"], team=world["alpha"].pk))
    assert '<form id="incident-filters"' in page
    assert 'method="get"' in page
    for field, label in [
        ("id_team", "Team"),
        ("id_service", "Service"),
        ("id_urgency", "Urgency"),
        ("id_triggered_from", "Triggered from"),
        ("id_triggered_to", "Triggered to (included)"),
        ("id_sort", "Sort by"),
        ("id_mine", "Assigned to me"),
    ]:
        assert f'<label for="{field}">{label}' in page
    assert '<details class="filter-toggle">' in page
    assert "(1 on)" in page  # one filter on: the team
    assert f'<option value="{world["alpha"].pk}" selected>Alpha</option>' in page
    assert '<optgroup label="Alpha">' in page
    assert 'aria-live="polite"' in page
    assert 'id="notify-button" hidden' in page


# --- the live endpoint --------------------------------------------------------------------------


def live(client, response, **extra):
    """Poll the live endpoint as the page's script does: its data-live-url plus the version."""
    url = response.context["live"]["url"]
    query = {"v": response.context["version"], **extra}
    return client.get(url + "&" + "&".join(f"{k}={v}" for k, v in query.items()))


def test_live_answer_is_tiny_while_nothing_changes(client, world):
    page = get(client, world["rafa"], status="all")
    answer = live(client, page)
    assert answer.status_code == 200
    body = answer.json()
    assert body["changed"] is False
    assert body["version"] == page.context["version"]
    assert "results_html" not in body
    assert len(answer.content) < 150
    assert answer["Cache-Control"].startswith("max-age=0")


def test_live_answer_brings_a_new_incident_with_counts_and_rows(client, world):
    page = get(client, world["rafa"])
    with time_machine.travel(T + timedelta(seconds=5), tick=False):
        new = trigger(world["checkout"], "Payments timing out", T + timedelta(seconds=5))
    body = live(client, page).json()
    assert body["changed"] is True
    assert body["counts"]["open"] == 4
    assert body["title"] == "(4 open) Open incidents"
    assert f'data-incident-id="{new.pk}"' in body["results_html"]
    assert "Payments timing out" in body["results_html"]
    assert (
        'href="/incidents/?status=open" aria-current="true">Open <span class="count">4</span>'
        in body["counts_html"]
    )
    # Polled again with the new version: nothing new.
    again = client.get(page.context["live"]["url"] + "&v=" + body["version"]).json()
    assert again["changed"] is False


@pytest.mark.parametrize(
    "change",
    ["acknowledge", "urgency", "assign"],
)
def test_live_answer_sees_a_change_to_a_row_shown(client, world, change):
    page = get(client, world["rafa"])
    a1 = world["a1"]
    later = T + timedelta(seconds=30)
    with time_machine.travel(later, tick=False):
        if change == "acknowledge":
            workflow.incident_acknowledge(incident=a1, by=world["alma"], via=Channel.WEB, at=later)
        elif change == "urgency":
            workflow.incident_set_urgency(
                incident=a1, by=world["alma"], via=Channel.WEB, at=later, urgency=Urgency.LOW
            )
        else:
            assign(a1, world["alma"], later)
    body = live(client, page).json()
    assert body["changed"] is True
    row = body["results_html"][body["results_html"].index(f'data-incident-id="{a1.pk}"') :]
    row = row[: row.index("</tr>")]
    expected = {"acknowledge": "Acknowledged", "urgency": "Low", "assign": "Alma"}[change]
    assert expected in row


def test_live_answer_ignores_changes_outside_the_filters(client, world):
    page = get(client, world["rafa"], team=world["bravo"].pk)
    with time_machine.travel(T + timedelta(seconds=5), tick=False):
        trigger(world["checkout"], "Alpha only", T + timedelta(seconds=5))
        trigger(world["charlie_default"], "Charlie again", T + timedelta(seconds=5))
    assert live(client, page).json()["changed"] is False


def test_live_answer_never_shows_other_teams(client, world):
    page = get(client, world["rafa"], status="all", team=world["charlie"].pk)
    with time_machine.travel(T + timedelta(seconds=5), tick=False):
        trigger(world["bravo_default"], "Bravo again", T + timedelta(seconds=5))
        trigger(world["charlie_default"], "Charlie again", T + timedelta(seconds=5))
    body = live(client, page).json()
    assert body["changed"] is True
    assert "Bravo again" in body["results_html"]
    assert "Charlie" not in body["results_html"]
    assert body["counts"]["all"] == 5


# --- incidents newly assigned to me (desktop notifications) -------------------------------------


def test_live_answer_lists_incidents_newly_assigned_to_me_once(client, world):
    page = get(client, world["rafa"])
    marker = page.context["live"]["assigned_after"]
    assert marker > 0  # Rafa was paged for Bravo's incident before the page was drawn
    first = live(client, page, assigned_after=marker).json()
    assert first["assigned"] == []
    assert first["assigned_after"] == marker

    a1, a2, c1 = world["a1"], world["a2"], world["c1"]
    later = T + timedelta(minutes=1)
    with time_machine.travel(later, tick=False):
        assign(a1, world["rafa"], later)
        assign(a2, world["alma"], later)  # someone else's
        assign(c1, world["rafa"], later)  # paged, but Charlie is not Rafa's team
    body = live(client, page, assigned_after=marker).json()
    assert body["assigned"] == [
        {
            "id": a1.pk,
            "title": f"#{a1.pk} Alpha disk full",
            "body": "Alpha default service · high urgency",
            "url": f"/incidents/{a1.pk}/",
        }
    ]
    assert body["assigned_after"] > marker
    again = live(client, page, assigned_after=body["assigned_after"]).json()
    assert again["assigned"] == []


def test_an_incident_resolved_or_handed_on_before_the_poll_is_not_announced(client, world):
    page = get(client, world["rafa"])
    marker = page.context["live"]["assigned_after"]
    a1, a2 = world["a1"], world["a2"]
    later = T + timedelta(minutes=1)
    with time_machine.travel(later, tick=False):
        assign(a1, world["rafa"], later)
        workflow.incident_resolve(incident=a1, by=world["alma"], via=Channel.WEB, at=later)
        assign(a2, world["rafa"], later)
        assign(a2, world["alma"], later + timedelta(seconds=1))
    body = live(client, page, assigned_after=marker).json()
    assert body["assigned"] == []
    assert body["assigned_after"] > marker  # the skipped pages are passed over for good


def test_no_assignment_list_unless_asked_and_bad_markers_are_ignored(client, world):
    page = get(client, world["rafa"])
    assert "assigned" not in live(client, page).json()
    assert "assigned" not in live(client, page, assigned_after="x").json()


# --- query counts -------------------------------------------------------------------------------

_grown = itertools.count()


def grow(world, n):
    """Add `n` incidents to each of the reader's services, a third of them assigned to him."""
    with time_machine.travel(T, tick=False):
        for service in (world["alpha_default"], world["checkout"], world["bravo_default"]):
            for _ in range(n):
                number = next(_grown)
                incident = trigger(service, f"Grown {number}", T - timedelta(minutes=number))
                if number % 3 == 0:
                    assign(incident, world["rafa"], T)


@pytest.mark.parametrize(
    ("params", "queries"),
    [
        # session, user, profile (time zone), roles; filter menus, counts, the page of
        # incidents, their assignees, the reader's last page
        ({}, 4 + 5),
        ({"status": "all", "sort": "urgency", "mine": "1", "triggered_from": "2026-01-01"}, 4 + 5),
    ],
)
def test_page_query_count_does_not_grow_with_data(
    client, world, django_assert_num_queries, params, queries
):
    client.force_login(world["rafa"])
    grow(world, 2)
    with django_assert_num_queries(queries):
        assert client.get(LIST, params).status_code == 200
    grow(world, 20)
    with django_assert_num_queries(queries):
        response = client.get(LIST, params)
    assert response.status_code == 200
    assert len(response.context["rows"]) == min(25, counts(response)[params.get("status", "open")])


def test_live_query_count_does_not_grow_with_data(client, world, django_assert_num_queries):
    client.force_login(world["rafa"])
    grow(world, 2)
    for size in (2, 20):
        if size == 20:
            grow(world, 18)
        page = client.get(LIST)
        marker = page.context["live"]["assigned_after"]
        # Unchanged: menus, counts, the page's stamps, the new assignments.
        with django_assert_num_queries(4 + 4):
            body = live(client, page, assigned_after=0).json()
        assert body["changed"] is False
        assert body["assigned"]
        # Changed (an old version): then the rows and their assignees as well.
        with django_assert_num_queries(4 + 6):
            body = json.loads(
                client.get(page.context["live"]["url"] + f"&v=old&assigned_after={marker}").content
            )
        assert body["changed"] is True
