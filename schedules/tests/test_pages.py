"""The schedule pages: the list, a schedule's page (timeline, overrides, "cover me", "take this
shift"), and my shifts with the calendar links. Only the readers of a team see its schedules."""

import itertools
import re
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from oncall import services as people
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory
from schedules import selectors, services
from schedules.models import Layer, Override, Schedule

pytestmark = pytest.mark.django_db

SCHEDULES = "/schedules/"
LONDON = ZoneInfo("Europe/London")
SINGAPORE = ZoneInfo("Asia/Singapore")
# A Wednesday. The daily rotation below started on Monday 2 Nov at 09:00 London (= UTC in
# November): lead_a on Mon, responder_a on Tue, lead_a on Wed (now), responder_a on Thu…
NOW = datetime(2026, 11, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _frozen_time():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world():
    lead_a = UserFactory(username="lead_a", display_name="Lena", time_zone="Asia/Singapore")
    responder_a = UserFactory(username="responder_a", display_name="Rafa")
    responder_a2 = UserFactory(username="responder_a2", display_name="Rose")
    observer_a = UserFactory(username="observer_a")
    team_a = TeamFactory(
        name="Alpha",
        lead=lead_a,
        members=[
            (responder_a, Role.RESPONDER),
            (responder_a2, Role.RESPONDER),
            (observer_a, Role.OBSERVER),
        ],
    )
    lead_b = UserFactory(username="lead_b")
    team_b = TeamFactory(name="Bravo", lead=lead_b)
    services.schedule_create(team=team_b, name="Bravo nights", time_zone="America/Chicago")
    return {
        "lead_a": lead_a,
        "responder_a": responder_a,
        "responder_a2": responder_a2,
        "observer_a": observer_a,
        "lead_b": lead_b,
        "team_a": team_a,
        "team_b": team_b,
    }


def primary(world, *, end=None, name="Primary") -> Schedule:
    """Alpha's "Primary": a daily 09:00 London rotation of lead_a and responder_a."""
    schedule = services.schedule_create(team=world["team_a"], name=name, time_zone="Europe/London")
    start = datetime(2026, 11, 2, 9, 0, tzinfo=LONDON)
    services.layer_create(
        schedule=schedule,
        name="Daily",
        start=start,
        end=end,
        turn_unit=Layer.TurnUnit.DAYS,
        turn_count=1,
        handoff_time=time(9, 0),
        members=[world["lead_a"], world["responder_a"]],
        now=start,
    )
    return schedule


def page(schedule: Schedule) -> str:
    return reverse("schedules:detail", args=[schedule.pk])


def override_post(client, schedule, **fields):
    data = {"who": "", "start": "", "end": "", "reason": ""} | {
        k: str(v) for k, v in fields.items()
    }
    return client.post(reverse("schedules:override_add", args=[schedule.pk]), data)


# --- URLs --------------------------------------------------------------------------------------


def test_url_names():
    assert reverse("schedules:list") == SCHEDULES
    assert reverse("schedules:mine") == "/schedules/mine/"
    assert reverse("schedules:calendar_reset") == "/schedules/mine/calendar-reset/"
    assert reverse("schedules:detail", args=[7]) == "/schedules/7/"
    assert reverse("schedules:override_add", args=[7]) == "/schedules/7/overrides/"
    assert reverse("schedules:take_shift", args=[7]) == "/schedules/7/take-shift/"
    assert reverse("schedules:override_delete", args=[7, 3]) == "/schedules/7/overrides/3/delete/"


# --- the list ----------------------------------------------------------------------------------


def test_anonymous_is_sent_to_login(client):
    for url in (SCHEDULES, "/schedules/mine/", "/schedules/1/"):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"] == f"{reverse('login')}?next={url}"


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
    assert f'href="{reverse("schedules:mine")}"' in html


def test_list_links_each_schedule_and_says_who_is_on_call_now(client, world):
    schedule = primary(world)
    client.force_login(world["responder_a"])
    response = client.get(SCHEDULES)
    html = response.content.decode()
    assert f'<a href="{page(schedule)}">Primary</a>' in html
    row = next(s for s in response.context["schedules"] if s.pk == schedule.pk)
    # Wednesday is lead_a's day, until Thursday 09:00 London, shown in the reader's zone.
    assert row.on_call_name == "Lena"
    assert row.on_call_until == datetime(2026, 11, 5, 9, tzinfo=UTC)
    assert "Thu 5 Nov 09:00" in html


def test_list_says_nobody_for_an_empty_schedule(client, world):
    client.force_login(world["lead_b"])
    html = client.get(SCHEDULES).content.decode()
    assert re.search(r"Bravo nights</a>.*?Nobody", html, re.S)


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


def test_list_query_count_does_not_grow(client, world, django_assert_num_queries):
    reader = world["responder_a"]

    def grow(n):
        for _ in range(n):
            team = TeamFactory(name=f"Grown {next(_names)}", members=[(reader, Role.RESPONDER)])
            services.schedule_create(team=team, name="Second", time_zone="Europe/Berlin")

    client.force_login(reader)
    grow(1)
    # session, user, profile, roles; the schedules with team and layer count; who is on call
    # (versions, layers, overrides); the names of the people on call
    with django_assert_num_queries(9):
        assert client.get(SCHEDULES).status_code == 200
    grow(4)
    with django_assert_num_queries(9):
        response = client.get(SCHEDULES)
    assert len(response.context["schedules"]) == 1 + 5 * 2
    assert sum(1 for s in response.context["schedules"] if s.on_call) == 5 + 1
    assert Schedule.objects.count() > 11


# --- the schedule page: who may read it --------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "status"),
    [
        ("lead_a", 200),
        ("responder_a", 200),
        ("superuser", 200),
        ("observer_a", 403),
        ("lead_b", 403),
        ("no_team", 403),
    ],
)
def test_who_may_read_a_schedule(client, world, who, status):
    schedule = primary(world)
    if who == "superuser":
        user = UserFactory(is_superuser=True)
    elif who == "no_team":
        user = UserFactory()
    else:
        user = world[who]
    client.force_login(user)
    response = client.get(page(schedule))
    assert response.status_code == status
    html = response.content.decode()
    if status == 403:
        assert "You can’t open this page" in html
        assert "Lena" not in html and "<svg" not in html
    else:
        assert "<svg" in html


def test_observer_is_told_why(client, world):
    client.force_login(world["observer_a"])
    html = client.get(page(primary(world))).content.decode()
    assert "Observers read their teams" in html


def test_unknown_schedule_is_404(client, world):
    client.force_login(world["lead_a"])
    assert client.get("/schedules/999999/").status_code == 404


# --- the schedule page: what it shows ----------------------------------------------------------


def test_header_says_team_zones_and_who_is_on_call_now_and_next(client, world):
    schedule = primary(world)
    client.force_login(world["responder_a"])  # in Europe/London
    response = client.get(page(schedule))
    html = response.content.decode()
    assert "Alpha" in html and "Europe/London" in html
    assert response.context["current"].name == "Lena"
    assert response.context["current"].until == datetime(2026, 11, 5, 9, tzinfo=UTC)
    assert response.context["next_up"].name == "Rafa"
    assert response.context["next_up"].since == datetime(2026, 11, 5, 9, tzinfo=UTC)
    assert response.context["next_up"].until == datetime(2026, 11, 6, 9, tzinfo=UTC)
    assert re.search(r"On call now</dt>\s*<dd>\s*<strong[^>]*>Lena</strong>", html)


def test_times_are_in_the_viewers_zone(client, world):
    schedule = primary(world)
    client.force_login(world["lead_a"])  # in Asia/Singapore: 09:00 London is 17:00 there
    html = client.get(page(schedule)).content.decode()
    assert "Asia/Singapore" in html
    assert "Thu 5 Nov 17:00" in html  # the handoff, in the table and the header
    assert "Thu 5 Nov 09:00" not in html
    # The picture starts at midnight in Singapore and its days are Singapore days.
    assert "Timeline of Primary from Wed 4 Nov to Tue 17 Nov (Asia/Singapore)" in html


def test_timeline_has_a_row_per_layer_the_final_row_and_the_now_line(client, world):
    schedule = primary(world)
    services.layer_create(
        schedule=schedule,
        name="Weekend <cover>",
        start=datetime(2026, 11, 7, 9, tzinfo=LONDON),
        turn_unit=Layer.TurnUnit.WEEKS,
        turn_count=1,
        handoff_time=time(9, 0),
        members=[world["responder_a2"]],
        restrictions=[((5, 6), time(9, 0), time(21, 0))],
        now=NOW,
    )
    client.force_login(world["responder_a"])
    response = client.get(page(schedule))
    html = response.content.decode()
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert 'role="img"' in svg and 'aria-label="Timeline of Primary' in svg
    labels = re.findall(r'class="timeline__row-label"[^>]*><title>([^<]*)</title>', svg)
    assert labels == ["Weekend &lt;cover&gt;", "Daily", "Final"]  # highest layer first, escaped
    assert "Weekend <cover>" not in html
    assert 'class="timeline__row timeline__row--final"' in svg
    assert '<g class="timeline__now">' in svg
    # Every bar and gap carries its title, for hover and assistive text.
    assert svg.count('<g class="timeline__bar') == len(
        re.findall(r'<g class="timeline__bar[^"]*" data-user="\d+"><title>', svg)
    )
    assert "Weekend &lt;cover&gt;: Rose, Sat 7 Nov 09:00 – Sat 7 Nov 21:00" in svg
    assert "Final: Rose, Sat 7 Nov 09:00 – Sat 7 Nov 21:00" in svg
    assert "Nobody on call" not in svg  # no gap: the daily rotation covers everything
    # The legend names each person once.
    assert [e.name for e in response.context["timeline"].legend] == ["Lena", "Rafa", "Rose"]


def test_a_layer_ending_inside_the_window_leaves_a_marked_gap(client, world):
    schedule = primary(world, end=datetime(2026, 11, 10, 9, tzinfo=LONDON))
    client.force_login(world["responder_a"])
    response = client.get(page(schedule))
    html = response.content.decode()
    svg = re.search(r"<svg.*?</svg>", html, re.S).group(0)
    assert '<g class="timeline__gap">' in svg
    assert "Final: nobody on call, Tue 10 Nov 09:00 – Wed 18 Nov 00:00" in svg
    assert 'class="timeline__gap-label"' in svg and ">Nobody on call</text>" in svg
    assert "1 gap in the next two weeks" in html
    rows = response.context["shift_rows"]
    assert rows[-1].user_id is None and rows[-1].start == datetime(2026, 11, 10, 9, tzinfo=UTC)


def test_shift_table_lists_the_final_shifts_from_now(client, world):
    schedule = primary(world)
    client.force_login(world["responder_a"])
    rows = client.get(page(schedule)).context["shift_rows"]
    final = selectors.final_schedule(schedule, NOW, datetime(2026, 11, 18, tzinfo=UTC))
    assert [(r.user_id, r.end) for r in rows] == [(s.user_id, s.end) for s in final.shifts]
    assert rows[0].current and rows[0].take_start == NOW
    # Take buttons on the lead's shifts only: never on the reader's own.
    assert [r.takeable for r in rows] == [r.user_id == world["lead_a"].pk for r in rows]


def test_the_shift_going_on_shows_its_real_start(client, world):
    # The team's default schedule: weekly, from Monday 2 Nov 09:00 Singapore (its lead's zone),
    # so the shift going on began before the picture's first day.
    schedule = Schedule.objects.get(name="Alpha on-call")
    client.force_login(world["lead_a"])
    response = client.get(page(schedule))
    row = response.context["shift_rows"][0]
    assert row.current and row.user_id == world["lead_a"].pk
    assert row.start == datetime(2026, 11, 2, 1, tzinfo=UTC)
    assert row.start < response.context["timeline"].start
    assert "Mon 2 Nov 09:00" in response.content.decode()


# --- overrides: "cover me / someone from … to …" -----------------------------------------------


def test_responder_covers_themselves_in_their_own_zone(client, world):
    schedule = primary(world)
    lead = world["lead_a"]
    client.force_login(lead)  # Asia/Singapore, UTC+8
    response = override_post(
        client,
        schedule,
        who=lead.pk,
        start="2026-11-06T10:00",
        end="2026-11-06T18:30",
        reason="Covering the release",
    )
    assert response.status_code == 302
    assert response["Location"] == f"{page(schedule)}#overrides"
    override = Override.objects.get(schedule=schedule)
    assert override.user == lead and override.created_by == lead
    assert override.start == datetime(2026, 11, 6, 2, 0, tzinfo=UTC)
    assert override.end == datetime(2026, 11, 6, 10, 30, tzinfo=UTC)
    assert override.reason == "Covering the release"

    html = client.get(response["Location"]).content.decode()
    assert "Override added: Lena is on call Fri 6 Nov 10:00 – Fri 6 Nov 18:30." in html
    overrides = re.search(r'id="overrides".*?</section>', html, re.S).group(0)
    assert "Lena" in overrides and "Covering the release" in overrides
    assert "Added by Lena" in overrides
    assert 'class="timeline__bar timeline__bar--override"' in html


def test_form_says_times_are_in_the_viewers_zone_and_defaults_to_the_viewer(client, world):
    schedule = primary(world)
    client.force_login(world["responder_a"])
    response = client.get(page(schedule))
    html = response.content.decode()
    assert 'type="datetime-local"' in html
    assert "Your time zone: Europe/London." in html
    form = response.context["form"]
    assert form.initial["who"] == world["responder_a"].pk
    assert form.fields["who"].choices == [(world["responder_a"].pk, "Me (Rafa)")]


def test_lead_may_put_any_lead_or_responder_on_call(client, world):
    schedule = primary(world)
    client.force_login(world["lead_a"])
    choices = client.get(page(schedule)).context["form"].fields["who"].choices
    assert [label for _, label in choices] == ["Me (Lena)", "Rafa", "Rose"]  # no observer
    response = override_post(
        client,
        schedule,
        who=world["responder_a2"].pk,
        start="2026-11-07T08:00",
        end="2026-11-07T20:00",
    )
    assert response.status_code == 302
    override = Override.objects.get()
    assert override.user == world["responder_a2"] and override.created_by == world["lead_a"]
    # An observer of the team can't be put on call.
    response = override_post(
        client,
        schedule,
        who=world["observer_a"].pk,
        start="2026-11-08T08:00",
        end="2026-11-08T20:00",
    )
    assert response.status_code == 400
    assert "Choose a lead or responder of this team." in response.content.decode()
    assert Override.objects.count() == 1


def test_responder_cannot_create_an_override_for_someone_else(client, world):
    schedule = primary(world)
    client.force_login(world["responder_a"])
    response = override_post(
        client,
        schedule,
        who=world["responder_a2"].pk,
        start="2026-11-06T10:00",
        end="2026-11-06T18:00",
    )
    assert response.status_code == 400
    assert "You can only add overrides for yourself." in response.content.decode()
    assert not Override.objects.exists()


def test_end_before_start_is_refused_next_to_the_field_and_nothing_is_lost(client, world):
    schedule = primary(world)
    client.force_login(world["responder_a"])
    response = override_post(
        client,
        schedule,
        who=world["responder_a"].pk,
        start="2026-11-06T18:00",
        end="2026-11-06T10:00",
        reason="Dentist",
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "There is a problem" in html
    field = re.search(r'<div class="field field--error">.*?</div>', html, re.S).group(0)
    assert "The override must end after it starts." in field and 'name="end"' in field
    assert 'value="2026-11-06T18:00"' in html and 'value="2026-11-06T10:00"' in html
    assert 'value="Dentist"' in html
    assert not Override.objects.exists()


def test_overlapping_override_of_the_same_person_is_refused(client, world):
    schedule = primary(world)
    responder = world["responder_a"]
    services.override_create(
        schedule=schedule,
        user=responder,
        start=datetime(2026, 11, 6, 9, tzinfo=UTC),
        end=datetime(2026, 11, 6, 17, tzinfo=UTC),
        created_by=responder,
    )
    client.force_login(responder)
    response = override_post(
        client, schedule, who=responder.pk, start="2026-11-06T16:00", end="2026-11-06T20:00"
    )
    assert response.status_code == 400
    assert "already covers this schedule" in response.content.decode()
    assert Override.objects.count() == 1


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("", "", "Enter when the override starts."),
        ("tomorrow", "2026-11-06T10:00", "Enter a date and time"),
        ("2026-11-01T09:00", "2026-11-02T09:00", "This override would be over already"),
        # London's clocks go forward at 01:00 on 29 March 2026 and back at 02:00 on 25 Oct.
        ("2027-03-28T01:30", "2027-03-28T05:00", "does not exist in Europe/London"),
        ("2027-10-31T01:30", "2027-10-31T05:00", "happens twice in Europe/London"),
        ("0001-01-01T00:00", "2026-11-06T10:00", "between the years 1970 and 2999"),
        ("2026-11-06T10:00", "9999-12-31T23:59", "between the years 1970 and 2999"),
    ],
)
def test_bad_times_are_errors_never_500(client, world, start, end, message):
    schedule = primary(world)
    client.force_login(world["responder_a"])
    response = override_post(client, schedule, who=world["responder_a"].pk, start=start, end=end)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Override.objects.exists()


def test_observer_and_other_teams_cannot_post_overrides(client, world):
    schedule = primary(world)
    for user in (world["observer_a"], world["lead_b"]):
        client.force_login(user)
        response = override_post(
            client, schedule, who=user.pk, start="2026-11-06T10:00", end="2026-11-06T18:00"
        )
        assert response.status_code == 403
    assert not Override.objects.exists()
    client.force_login(world["lead_a"])
    assert client.get(reverse("schedules:override_add", args=[schedule.pk])).status_code == 405


# --- take this shift ---------------------------------------------------------------------------


def test_take_this_shift_covers_exactly_that_shift(client, world):
    schedule = primary(world)
    responder = world["responder_a"]
    client.force_login(responder)
    response = client.get(page(schedule))
    row = next(r for r in response.context["shift_rows"] if r.takeable and not r.current)
    assert (row.start, row.end) == (
        datetime(2026, 11, 6, 9, tzinfo=UTC),
        datetime(2026, 11, 7, 9, tzinfo=UTC),
    )
    html = response.content.decode()
    assert f'value="{row.start.isoformat()}"' in html
    response = client.post(
        reverse("schedules:take_shift", args=[schedule.pk]),
        {"start": row.start.isoformat(), "end": row.end.isoformat()},
    )
    assert response.status_code == 302
    override = Override.objects.get()
    assert (override.user, override.created_by) == (responder, responder)
    assert (override.start, override.end) == (row.start, row.end)
    assert override.reason == "Took Lena’s shift"
    final = selectors.final_schedule(schedule, row.start, row.end)
    assert [s.user_id for s in final.shifts] == [responder.pk]


def test_take_the_shift_going_on_from_now(client, world):
    schedule = primary(world)
    client.force_login(world["responder_a"])
    current = client.get(page(schedule)).context["shift_rows"][0]
    assert current.current and current.user_id == world["lead_a"].pk
    response = client.post(
        reverse("schedules:take_shift", args=[schedule.pk]),
        {"start": current.take_start.isoformat(), "end": current.end.isoformat()},
    )
    assert response.status_code == 302
    override = Override.objects.get()
    assert (override.start, override.end) == (NOW, datetime(2026, 11, 5, 9, tzinfo=UTC))
    assert selectors.who_is_on_call(schedule, NOW).user_id == world["responder_a"].pk


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        # Rafa's own shift.
        ("2026-11-05T09:00:00+00:00", "2026-11-06T09:00:00+00:00", "has changed"),
        # Two people's shifts at once: not one shift.
        ("2026-11-06T09:00:00+00:00", "2026-11-08T09:00:00+00:00", "has changed"),
        ("2026-11-02T09:00:00+00:00", "2026-11-03T09:00:00+00:00", "over already"),
        ("2026-11-06T09:00:00", "2026-11-07T09:00:00", "could not be read"),
        ("nonsense", "2026-11-07T09:00:00+00:00", "could not be read"),
    ],
)
def test_take_refuses_what_is_not_someone_elses_shift(client, world, start, end, message):
    schedule = primary(world)
    client.force_login(world["responder_a"])
    response = client.post(
        reverse("schedules:take_shift", args=[schedule.pk]), {"start": start, "end": end}
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "The shift was not taken." in html and message in html
    assert not Override.objects.exists()


def test_take_goes_through_the_service_checks(client, world):
    schedule = primary(world)
    rafa, rose = world["responder_a"], world["responder_a2"]
    # Rafa covers Friday 08:00-12:00, but Rose's override starting later wins from 08:30.
    _override_at(schedule, rafa, hour=8, until=12)
    _override_at(schedule, rose, hour=8, minute=30, until=12)
    client.force_login(rafa)
    response = client.post(
        reverse("schedules:take_shift", args=[schedule.pk]),
        {"start": "2026-11-06T10:00:00+00:00", "end": "2026-11-06T11:00:00+00:00"},
    )
    # Rose's shift, but Rafa may not overlap his own override: the service says so.
    assert response.status_code == 400
    assert "already covers this schedule" in response.content.decode()
    assert Override.objects.count() == 2


def _override_at(schedule, user, *, hour, until, minute=0):
    return services.override_create(
        schedule=schedule,
        user=user,
        start=datetime(2026, 11, 6, hour, minute, tzinfo=UTC),
        end=datetime(2026, 11, 6, until, tzinfo=UTC),
        created_by=user,
    )


def test_observers_cannot_take_shifts(client, world):
    schedule = primary(world)
    client.force_login(world["observer_a"])
    response = client.post(
        reverse("schedules:take_shift", args=[schedule.pk]),
        {"start": "2026-11-06T09:00:00+00:00", "end": "2026-11-07T09:00:00+00:00"},
    )
    assert response.status_code == 403
    assert not Override.objects.exists()


# --- deleting overrides ------------------------------------------------------------------------


def _override(schedule, user, by, day):
    return services.override_create(
        schedule=schedule,
        user=user,
        start=datetime(2026, 11, day, 9, tzinfo=UTC),
        end=datetime(2026, 11, day, 17, tzinfo=UTC),
        created_by=by,
    )


def _delete(client, override):
    return client.post(
        reverse("schedules:override_delete", args=[override.schedule_id, override.pk])
    )


def test_delete_buttons_for_own_overrides_and_all_for_leads(client, world):
    schedule = primary(world)
    rafa, rose, lena = world["responder_a"], world["responder_a2"], world["lead_a"]
    by_rafa = _override(schedule, rafa, rafa, 6)
    by_rose = _override(schedule, rose, rose, 7)
    client.force_login(rafa)
    items = client.get(page(schedule)).context["overrides"]
    assert {i["override"].pk: i["can_delete"] for i in items} == {
        by_rafa.pk: True,
        by_rose.pk: False,
    }
    client.force_login(lena)
    items = client.get(page(schedule)).context["overrides"]
    assert all(i["can_delete"] for i in items)


def test_delete_permissions(client, world):
    schedule = primary(world)
    rafa, rose, lena = world["responder_a"], world["responder_a2"], world["lead_a"]
    by_rafa = _override(schedule, rafa, rafa, 6)
    by_rose = _override(schedule, rose, rose, 7)
    by_rose_too = _override(schedule, rose, rose, 8)

    client.force_login(rafa)
    assert _delete(client, by_rose).status_code == 403  # someone else's
    response = _delete(client, by_rafa)
    assert response.status_code == 302 and response["Location"].endswith("#overrides")
    assert not Override.objects.filter(pk=by_rafa.pk).exists()

    for outsider in (world["observer_a"], world["lead_b"]):
        client.force_login(outsider)
        assert _delete(client, by_rose).status_code == 403

    client.force_login(lena)  # a lead deletes anyone's
    assert _delete(client, by_rose).status_code == 302
    assert list(Override.objects.values_list("pk", flat=True)) == [by_rose_too.pk]

    # The override must belong to the schedule in the URL.
    other = primary(world, name="Secondary")
    wrong = reverse("schedules:override_delete", args=[other.pk, by_rose_too.pk])
    assert client.post(wrong).status_code == 404
    assert (
        client.get(reverse("schedules:override_delete", args=[schedule.pk, 1])).status_code == 405
    )


# --- my shifts and the calendar links ----------------------------------------------------------


def test_my_shifts_lists_my_upcoming_shifts_on_every_schedule_of_my_teams(client, world):
    schedule = primary(world)
    responder = world["responder_a"]
    client.force_login(responder)
    response = client.get(reverse("schedules:mine"))
    assert response.status_code == 200
    got = [(row["schedule"].pk, row["shift"]) for row in response.context["shifts"]]
    expected = [
        (s.pk, shift)
        for s, shift in selectors.shifts_of_user(responder, NOW, NOW + timedelta(days=28))
    ]
    assert got == expected
    names = {pk for pk, _ in got}
    assert schedule.pk in names and len(names) == 2  # "Primary" and the team's default
    primary_starts = [shift.start for pk, shift in got if pk == schedule.pk]
    assert primary_starts[:3] == [
        datetime(2026, 11, 5, 9, tzinfo=UTC),
        datetime(2026, 11, 7, 9, tzinfo=UTC),
        datetime(2026, 11, 9, 9, tzinfo=UTC),
    ]
    html = response.content.decode()
    assert f'<a href="{page(schedule)}">Primary</a>' in html
    assert "Thu 5 Nov 09:00" in html
    assert "Bravo" not in html


def test_my_shifts_are_in_my_zone(client, world):
    primary(world)
    client.force_login(world["lead_a"])  # Singapore
    html = client.get(reverse("schedules:mine")).content.decode()
    assert "Fri 6 Nov 17:00" in html  # Friday 09:00 London


def test_feed_urls_carry_the_current_token_and_reset_breaks_the_old_ones(client, world, settings):
    settings.BASE_URL = "https://oncall.example.com"
    schedule = primary(world)
    responder = world["responder_a"]
    client.force_login(responder)
    html = client.get(reverse("schedules:mine")).content.decode()
    token = services.calendar_token_for(responder)
    mine = f"https://oncall.example.com/calendar/{token}/my-shifts.ics"
    one = f"https://oncall.example.com/calendar/{token}/schedules/{schedule.pk}.ics"
    assert f'value="{mine}"' in html and f'value="{one}"' in html
    assert "readonly" in html and "secret" in html
    assert client.get(f"/calendar/{token}/my-shifts.ics").status_code == 200
    assert client.get(f"/calendar/{token}/schedules/{schedule.pk}.ics").status_code == 200

    assert client.get(reverse("schedules:calendar_reset")).status_code == 405
    response = client.post(reverse("schedules:calendar_reset"))
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('schedules:mine')}#calendar"
    new = services.calendar_token_for(responder)
    assert new != token
    html = client.get(response["Location"]).content.decode()
    assert "Calendar link reset." in html
    assert new in html and token not in html
    assert client.get(f"/calendar/{token}/my-shifts.ics").status_code == 404
    assert client.get(f"/calendar/{token}/schedules/{schedule.pk}.ics").status_code == 404
    assert client.get(f"/calendar/{new}/my-shifts.ics").status_code == 200


def test_my_shifts_is_not_for_observers(client, world):
    client.force_login(world["observer_a"])
    assert client.get(reverse("schedules:mine")).status_code == 403


# --- query counts ------------------------------------------------------------------------------


def test_schedule_page_query_count_does_not_grow(client, world, django_assert_num_queries):
    schedule = primary(world)
    lead = world["lead_a"]
    _override(schedule, world["responder_a"], lead, 6)
    client.force_login(lead)
    # session, user, profile, roles; the schedule with its team; versions, layers and overrides
    # in the window; the layers' names; the upcoming overrides with their people; the names
    # and team roles of everybody shown
    with django_assert_num_queries(11):
        assert client.get(page(schedule)).status_code == 200

    for n in range(3):
        extra = UserFactory(username=f"extra{n}")
        people.membership_set(team=world["team_a"], user=extra, role=Role.RESPONDER)
        services.layer_create(
            schedule=schedule,
            name=f"Extra {n}",
            start=datetime(2026, 11, 3 + n, 18, tzinfo=LONDON),
            turn_unit=Layer.TurnUnit.HOURS,
            turn_count=6,
            handoff_time=time(18, 0),
            members=[extra, world["responder_a2"]],
            restrictions=[((0, 1, 2, 3, 4), time(18, 0), time(22, 0))],
            now=NOW,
        )
        _override(schedule, extra, extra, 10 + n)
        _override(schedule, world["responder_a2"], world["responder_a"], 14 + n)
    with django_assert_num_queries(11):
        response = client.get(page(schedule))
    assert len(response.context["overrides"]) == 7
    assert len(response.context["timeline"].rows) == 5


def test_my_shifts_query_count_does_not_grow(client, world, django_assert_num_queries):
    reader = world["responder_a"]
    primary(world)
    services.calendar_token_for(reader)
    client.force_login(reader)
    # session, user, profile, roles; the schedules with their rotations (schedules, versions,
    # layers, overrides); the calendar token; the schedules for the calendar links
    with django_assert_num_queries(10):
        assert client.get(reverse("schedules:mine")).status_code == 200
    for n in range(3):
        team = TeamFactory(name=f"More {n}", members=[(reader, Role.RESPONDER)])
        schedule = services.schedule_create(team=team, name="Days", time_zone="Asia/Tokyo")
        services.layer_create(
            schedule=schedule,
            name="Daily",
            start=datetime(2026, 11, 1, 9, tzinfo=ZoneInfo("Asia/Tokyo")),
            turn_unit=Layer.TurnUnit.DAYS,
            turn_count=1,
            handoff_time=time(9, 0),
            members=[reader, world["responder_a2"]],
            now=NOW,
        )
        _override(schedule, reader, reader, 20 + n)
    with django_assert_num_queries(10):
        response = client.get(reverse("schedules:mine"))
    assert len(response.context["schedule_feeds"]) == 2 + 3 * 2
    assert len({row["schedule"].pk for row in response.context["shifts"]}) == 2 + 3 * 2
