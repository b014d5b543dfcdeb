"""Layers, versions and overrides, through the services, read back by the selectors."""

from datetime import datetime, time, timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from oncall.tests.factories import UserFactory
from schedules import selectors, services
from schedules.models import Layer, LayerMember
from schedules.tests.helpers import LONDON, team_with_daily_rotation

pytestmark = pytest.mark.django_db


def at(day, hour=12, minute=0):
    return datetime(2026, 1, day, hour, minute, tzinfo=LONDON)


def username_on_call(schedule, when):
    shift = selectors.who_is_on_call(schedule, when)
    if shift is None:
        return None
    return next(m.user.username for m in LayerMember.objects.filter(user_id=shift.user_id))


def test_who_is_on_call_follows_the_daily_rotation():
    _, schedule, _, _ = team_with_daily_rotation(names=("ann", "ben", "cat"))
    assert username_on_call(schedule, at(5)) == "ann"
    assert username_on_call(schedule, at(6, 8, 59)) == "ann"
    assert username_on_call(schedule, at(6, 9, 0)) == "ben"
    assert username_on_call(schedule, at(7)) == "cat"
    assert username_on_call(schedule, at(8)) == "ann"
    assert username_on_call(schedule, at(5, 8)) is None  # before the rotation starts


def test_override_replaces_whoever_the_layers_give():
    _, schedule, _, users = team_with_daily_rotation()
    cover = UserFactory(username="cover")
    services.override_create(
        schedule=schedule, user=cover, start=at(6, 13), end=at(6, 15), created_by=users[0]
    )
    assert username_on_call(schedule, at(6, 12)) == "ben"
    shift = selectors.who_is_on_call(schedule, at(6, 14))
    assert shift.user_id == cover.pk and shift.override_id is not None
    assert username_on_call(schedule, at(6, 15)) == "ben"


def test_override_must_end_after_start_and_not_overlap_the_same_user():
    _, schedule, _, users = team_with_daily_rotation()
    with pytest.raises(ValidationError) as error:
        services.override_create(
            schedule=schedule, user=users[1], start=at(6, 15), end=at(6, 13), created_by=None
        )
    assert "end" in error.value.message_dict
    services.override_create(
        schedule=schedule, user=users[1], start=at(6, 13), end=at(6, 15), created_by=None
    )
    with pytest.raises(ValidationError) as error:
        services.override_create(
            schedule=schedule, user=users[1], start=at(6, 14), end=at(6, 16), created_by=None
        )
    assert "overlap" in str(error.value)
    # Another person may overlap; and back-to-back overrides of one person are fine.
    services.override_create(
        schedule=schedule, user=users[0], start=at(6, 14), end=at(6, 16), created_by=None
    )
    services.override_create(
        schedule=schedule, user=users[1], start=at(6, 15), end=at(6, 16), created_by=None
    )


def test_layer_needs_members_and_a_positive_turn():
    _, schedule, _, users = team_with_daily_rotation()
    common = dict(schedule=schedule, name="x", start=at(5), turn_unit="days", handoff_time=time(9))
    with pytest.raises(ValidationError) as error:
        services.layer_create(**common, turn_count=1, members=[])
    assert "members" in error.value.message_dict
    with pytest.raises(ValidationError) as error:
        services.layer_create(**common, turn_count=0, members=users)
    assert "turn_count" in error.value.message_dict


def test_changing_member_order_only_changes_shifts_after_the_change():
    _, schedule, layer, users = team_with_daily_rotation(names=("ann", "ben", "cat"))
    before = selectors.final_schedule(schedule, at(5, 9), at(15, 9)).shifts
    change_time = at(9, 12)
    LayerMember.objects.filter(layer=layer).delete()
    for position, user in enumerate(reversed(users)):
        LayerMember.objects.create(layer=layer, user=user, position=position)
    version = services.layer_record_version(layer=layer, now=change_time)
    assert version is not None
    after = selectors.final_schedule(schedule, at(5, 9), at(15, 9)).shifts
    assert [s for s in after if s.end <= change_time] == [s for s in before if s.end <= change_time]
    assert after != before
    # Recording the same configuration again changes nothing.
    assert services.layer_record_version(layer=layer, now=change_time + timedelta(hours=1)) is None


def test_changing_turn_length_before_the_rotation_starts_replaces_the_plan():
    start = datetime(2027, 1, 4, 9, tzinfo=LONDON)
    _, schedule, layer, _ = team_with_daily_rotation(start=start)
    Layer.objects.filter(pk=layer.pk).update(turn_unit=Layer.TurnUnit.WEEKS)
    services.layer_record_version(layer=layer, now=at(5))
    assert layer.versions.count() == 1
    final = selectors.final_schedule(schedule, start, start + timedelta(days=14))
    assert [s.end - s.start for s in final.shifts] == [timedelta(days=7)] * 2


def test_gaps_are_reported_where_nobody_is_on_call():
    _, schedule, layer, users = team_with_daily_rotation()
    Layer.objects.filter(pk=layer.pk).update(end=at(7, 9))
    layer.refresh_from_db()
    final = selectors.final_schedule(schedule, at(6, 9), at(8, 9))
    assert [(g.start, g.end) for g in final.gaps] == [(at(7, 9), at(8, 9))]


def test_default_team_schedule_rotates_its_people_weekly():
    team, _, _, users = team_with_daily_rotation()
    default = team.schedules.get(name=f"{team.name} on-call")
    layer = default.layers.get()
    assert layer.turn_unit == Layer.TurnUnit.WEEKS
    assert layer.handoff_time == time(9)
    assert selectors.who_is_on_call(default, timezone.now()) is not None
    assert selectors.who_is_on_call(default, layer.start - timedelta(hours=1)) is None


def test_who_is_on_call_many_uses_a_fixed_number_of_queries(django_assert_num_queries):
    schedules = [team_with_daily_rotation(names=(f"a{i}", f"b{i}"))[1] for i in range(2)]
    with django_assert_num_queries(3):
        small = selectors.who_is_on_call_many(schedules, at(6))
    schedules += [team_with_daily_rotation(names=(f"c{i}", f"d{i}"))[1] for i in range(6)]
    with django_assert_num_queries(3):
        large = selectors.who_is_on_call_many(schedules, at(6))
    assert len(small) == 2 and len(large) == 8
    assert all(shift is not None for shift in large.values())
