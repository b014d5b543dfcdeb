"""Schedules: the final schedule of a year, and who is on call on 1,000 schedules at once.

Targets (issue #3): one year of 3 layers + 500 overrides under 50 ms; who_is_on_call for 1,000
schedules under 200 ms with a query count that does not grow with the number of schedules.
"""

import random
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from common import setup_django, timed

YEAR_START = datetime(2027, 1, 1, tzinfo=UTC)
YEAR_END = datetime(2028, 1, 1, tzinfo=UTC)


def run() -> list[dict]:
    vendor = setup_django()
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from oncall import services as people
    from oncall.models import Role
    from schedules import rotation, selectors, services
    from schedules.models import Layer, LayerMember, LayerVersion, Override, Schedule

    rng = random.Random(7)
    users = [people.user_create(username=f"bench{i}", time_zone="Europe/Paris") for i in range(12)]
    team = people.team_create(name="Bench", members=[(users[0], Role.LEAD)])
    paris = ZoneInfo("Europe/Paris")
    schedule = services.schedule_create(team=team, name="Year", time_zone="Europe/Paris")
    anchor = datetime(2026, 1, 5, 9, tzinfo=paris)
    for name, unit, count, members, restrictions in [
        ("Weekly", "weeks", 1, users[:4], ()),
        ("Daily", "days", 1, users[4:8], ()),
        ("Business hours", "days", 1, users[8:12], [((0, 1, 2, 3, 4), time(9), time(17))]),
    ]:
        services.layer_create(
            schedule=schedule,
            name=name,
            start=anchor,
            turn_unit=unit,
            turn_count=count,
            handoff_time=time(9),
            members=members,
            restrictions=restrictions,
            now=anchor,
        )
    overrides = []
    for i in range(500):
        start = YEAR_START + timedelta(minutes=rng.randrange(0, 365 * 24 * 60))
        overrides.append(
            Override(
                schedule=schedule,
                user=users[i % 12],
                start=start,
                end=start + timedelta(hours=rng.choice([1, 2, 4, 8, 12])),
            )
        )
    Override.objects.bulk_create(overrides)

    layers, plain_overrides = selectors.load_rotations([schedule.pk], YEAR_START, YEAR_END)[
        schedule.pk
    ]
    pure = timed(
        lambda: rotation.final_schedule(layers, plain_overrides, paris, YEAR_START, YEAR_END), 20
    )
    with_db = timed(lambda: selectors.final_schedule(schedule, YEAR_START, YEAR_END), 7)

    # 1,000 schedules, each with a weekly layer of 3 people and a few overrides.
    schedules = Schedule.objects.bulk_create(
        Schedule(
            team=team,
            name=f"S{i}",
            time_zone=rng.choice(
                ["Europe/Paris", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "UTC"]
            ),
        )
        for i in range(1000)
    )
    bench_layers = Layer.objects.bulk_create(
        Layer(
            schedule=s,
            name="Weekly",
            priority=1,
            start=anchor,
            turn_unit="weeks",
            turn_count=1,
            handoff_time=time(9),
        )
        for s in schedules
    )
    LayerMember.objects.bulk_create(
        LayerMember(layer=layer, user=users[(layer.pk + k) % 12], position=k)
        for layer in bench_layers
        for k in range(3)
    )
    LayerVersion.objects.bulk_create(
        LayerVersion(
            layer=layer,
            effective_from=anchor,
            rotation_start=anchor,
            turn_unit="weeks",
            turn_count=1,
            handoff_time=time(9),
            member_ids=[users[(layer.pk + k) % 12].pk for k in range(3)],
        )
        for layer in bench_layers
    )
    at = datetime(2027, 6, 15, 3, 30, tzinfo=UTC)
    Override.objects.bulk_create(
        Override(
            schedule=s, user=users[0], start=at - timedelta(hours=1), end=at + timedelta(hours=1)
        )
        for s in schedules[::10]
    )
    many = timed(lambda: selectors.who_is_on_call_many(schedules, at), 7)
    with CaptureQueriesContext(connection) as q1000:
        selectors.who_is_on_call_many(schedules, at)
    with CaptureQueriesContext(connection) as q10:
        selectors.who_is_on_call_many(schedules[:10], at)
    found = sum(1 for shift in many["result"].values() if shift is not None)

    return [
        {
            "name": "Final schedule, 1 year, 3 layers, 500 overrides (pure maths)",
            "figure": f"{pure['median_ms']:.1f} ms median, {pure['best_ms']:.1f} ms best",
            "target": "< 50 ms",
            "ok": pure["median_ms"] < 50,
            "note": f"{len(pure['result'].shifts)} shifts, {len(pure['result'].gaps)} gaps",
        },
        {
            "name": "Same, loading the schedule from the database (selectors.final_schedule)",
            "figure": f"{with_db['median_ms']:.1f} ms median, {with_db['best_ms']:.1f} ms best",
            "target": "< 50 ms",
            "ok": with_db["median_ms"] < 50,
            "note": vendor,
        },
        {
            "name": "who_is_on_call for 1,000 schedules at one instant",
            "figure": f"{many['median_ms']:.1f} ms median, {many['best_ms']:.1f} ms best",
            "target": "< 200 ms, queries fixed",
            "ok": many["median_ms"] < 200 and len(q1000) == len(q10),
            "note": (
                f"{found} of 1000 have someone on call; queries: {len(q10)} for 10 schedules, "
                f"{len(q1000)} for 1,000 ({vendor})"
            ),
        },
    ]


if __name__ == "__main__":
    for row in run():
        print(row)
