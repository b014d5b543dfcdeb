"""iCalendar feeds: parsed back with the icalendar library and compared with the final schedule."""

from datetime import UTC, datetime

import pytest
import time_machine
from icalendar import Calendar

from oncall.tests.factories import UserFactory
from schedules import selectors, services
from schedules.tests.helpers import LONDON, team_with_daily_rotation

pytestmark = pytest.mark.django_db
NOW = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)  # spans the London change on 2026-03-29


def events(response):
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    calendar = Calendar.from_ical(response.content)
    return [
        (e.get("summary"), e.decoded("dtstart"), e.decoded("dtend"), str(e.get("uid")))
        for e in calendar.walk("VEVENT")
    ]


@time_machine.travel(NOW, tick=False)
def test_schedule_feed_matches_the_final_schedule(client):
    _, schedule, _, (ann, ben) = team_with_daily_rotation()
    token = services.calendar_token_for(ann)
    got = events(client.get(f"/calendar/{token}/schedules/{schedule.pk}.ics"))
    final = selectors.final_schedule(
        schedule, datetime(2026, 3, 6, 12, tzinfo=UTC), datetime(2026, 6, 18, 12, tzinfo=UTC)
    )
    assert [(start, end) for _, start, end, _ in got] == [(s.start, s.end) for s in final.shifts]
    # Handoffs stay at 09:00 London across the change to summer time.
    assert {start.astimezone(LONDON).hour for _, start, _, _ in got[1:]} == {9}
    assert got[1][0].startswith("Ann on call") or got[1][0].startswith("Ben on call")
    assert len({uid for *_, uid in got}) == len(got)


@time_machine.travel(NOW, tick=False)
def test_my_shifts_feed_has_only_my_shifts(client):
    _, schedule, _, (ann, ben) = team_with_daily_rotation()
    token = services.calendar_token_for(ben)
    got = events(client.get(f"/calendar/{token}/my-shifts.ics"))
    final = selectors.final_schedule(
        schedule, datetime(2026, 3, 6, 12, tzinfo=UTC), datetime(2026, 6, 18, 12, tzinfo=UTC)
    )
    mine = [(s.start, s.end) for s in final.shifts if s.user_id == ben.pk]
    # The default team schedule also has shifts of ben's; compare the "Primary" ones.
    primary = [(start, end) for summary, start, end, _ in got if "Primary" in summary]
    assert primary == mine and mine


@time_machine.travel(NOW, tick=False)
def test_reset_token_breaks_old_urls_and_strangers_get_404(client):
    _, schedule, _, (ann, _) = team_with_daily_rotation()
    old = services.calendar_token_for(ann)
    new = services.calendar_token_reset(user=ann)
    assert new != old
    assert client.get(f"/calendar/{old}/my-shifts.ics").status_code == 404
    assert client.get(f"/calendar/{new}/my-shifts.ics").status_code == 200
    stranger = services.calendar_token_for(UserFactory())
    assert client.get(f"/calendar/{stranger}/schedules/{schedule.pk}.ics").status_code == 404
    assert client.get("/calendar/nonsense/my-shifts.ics").status_code == 404
