"""Schedules, layers and overrides in the admin: what a lead's form post does, what it refuses
(with errors on the page, never a 500, and nothing saved), the 14-day final schedule on the
change pages, and that another team's lead reaches none of it."""

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.contrib.messages import get_messages
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from oncall import services as oncall_services
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory
from oncall.tests.test_admin import admin_form_data, admin_url, errors_of
from schedules import selectors, services
from schedules.admin import NO_MEMBERS_ERROR, schedule_preview
from schedules.models import Layer, LayerRestriction, LayerVersion, Override, Schedule

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
UTC = ZoneInfo("UTC")
NOW = datetime(2026, 1, 7, 10, 0, tzinfo=PARIS)  # a Wednesday


def paris(day: int, hour: int = 9, minute: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, tzinfo=PARIS)


@pytest.fixture
def clock(time_machine):
    time_machine.move_to(NOW, tick=False)
    return time_machine


@pytest.fixture
def world(clock):
    """Payments, led by Ada (who lives in London), with responders Ben and Cat and an observer;
    its "Primary" schedule is in Paris. Search is led by Otto."""
    ada = UserFactory(username="ada", display_name="Ada Lovelace", time_zone="Europe/London")
    ben = UserFactory(username="ben", display_name="Ben Okri")
    cat = UserFactory(username="cat", display_name="Cat Stevens")
    obi = UserFactory(username="obi", display_name="Obi Observer")
    team = TeamFactory(
        name="Payments",
        lead=ada,
        members=[(ben, Role.RESPONDER), (cat, Role.RESPONDER), (obi, Role.OBSERVER)],
    )
    schedule = services.schedule_create(team=team, name="Primary", time_zone="Europe/Paris")
    otto = UserFactory(username="otto", display_name="Otto Other")
    search = TeamFactory(name="Search", lead=otto)
    return {
        "ada": ada,
        "ben": ben,
        "cat": cat,
        "obi": obi,
        "otto": otto,
        "team": team,
        "schedule": schedule,
        "search": search,
    }


@pytest.fixture
def lead(client, world):
    client.force_login(world["ada"])
    return world["ada"]


def daily_layer(schedule, members, *, name="Daily", start=None, end=None, restrictions=()) -> Layer:
    return services.layer_create(
        schedule=schedule,
        name=name,
        start=start or paris(5),
        end=end,
        turn_unit=Layer.TurnUnit.DAYS,
        turn_count=1,
        handoff_time=time(9, 0),
        members=members,
        restrictions=restrictions,
    )


def form_data(response, zone=PARIS) -> dict:
    """The page's form as the browser would post it back. Times on these pages are in the
    schedule's zone, so the values are read in it too."""
    with timezone.override(zone):
        return admin_form_data(response)


def management(prefix: str, total: int, initial: int = 0) -> dict:
    return {
        f"{prefix}-TOTAL_FORMS": str(total),
        f"{prefix}-INITIAL_FORMS": str(initial),
        f"{prefix}-MIN_NUM_FORMS": "0",
        f"{prefix}-MAX_NUM_FORMS": "1000",
    }


def layer_add_data(schedule, members=(), **fields) -> dict:
    """A post of the layer add page: a daily rotation from Mon 5 Jan 09:00 (in the schedule's
    zone) of `members`, in that order."""
    data = {
        "schedule": str(schedule.pk),
        "name": "Daily",
        "priority": "1",
        "start_0": "2026-01-05",
        "start_1": "09:00",
        "end_0": "",
        "end_1": "",
        "turn_unit": "days",
        "turn_count": "1",
        "handoff_time": "09:00",
        **management("members", len(members)),
        **management("restrictions", 0),
    }
    for index, user in enumerate(members):
        data[f"members-{index}-user"] = str(user.pk)
        data[f"members-{index}-order"] = str(index + 1)
    data.update(fields)
    return data


def texts_of(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


# -- adding a layer, and the final schedule it makes ----------------------------------------------


def test_a_lead_adds_a_layer_with_members_and_the_preview_lists_the_shifts(client, world, lead):
    schedule, ben, cat = world["schedule"], world["ben"], world["cat"]

    response = client.post(admin_url(Layer, "add"), layer_add_data(schedule, [ben, cat]))

    assert response.status_code == 302, errors_of(response)
    layer = Layer.objects.get(schedule=schedule, name="Daily")
    # Typed in the schedule's zone (Paris), not the lead's (London).
    assert layer.start == datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    assert list(layer.members.values_list("user__username", "position")) == [
        ("ben", 0),
        ("cat", 1),
    ]
    (version,) = layer.versions.all()
    assert version.member_ids == [ben.pk, cat.pk]

    page = client.get(admin_url(Schedule, "change", schedule.pk))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Times in <strong>Europe/Paris</strong>" in html
    preview = schedule_preview(schedule)
    assert [(row.who, row.start, row.end, row.source) for row in preview.rows[:3]] == [
        ("Ben Okri", "Wed 7 Jan 10:00", "Thu 8 Jan 09:00", "Daily"),
        ("Cat Stevens", "Thu 8 Jan 09:00", "Fri 9 Jan 09:00", "Daily"),
        ("Ben Okri", "Fri 9 Jan 09:00", "Sat 10 Jan 09:00", "Daily"),
    ]
    for row in preview.rows[:3]:
        assert f"<td>{row.who}</td><td>{row.start}</td><td>{row.end}</td>" in html
    assert not preview.warnings
    assert not [text for text in texts_of(page) if "Nobody is on call" in text]
    # The schedule page links to the layer's own page and sums up its members.
    assert reverse("admin:schedules_layer_change", args=[layer.pk]) in html
    assert "Edit members and restrictions" in html
    assert "1. Ben Okri, 2. Cat Stevens" in html


def test_a_layer_with_a_restriction_is_saved_with_its_days(client, world, lead):
    data = layer_add_data(world["schedule"], [world["ben"]])
    data.update(management("restrictions", 1))
    data["restrictions-0-weekdays"] = ["0", "2", "4"]
    data["restrictions-0-start_time"] = "09:00"
    data["restrictions-0-end_time"] = "17:00"

    response = client.post(admin_url(Layer, "add"), data)

    assert response.status_code == 302, errors_of(response)
    restriction = LayerRestriction.objects.get(layer__name="Daily")
    assert restriction.weekdays == "0,2,4"
    assert restriction.end_time == time(17, 0)
    (version,) = LayerVersion.objects.filter(layer__name="Daily")
    assert version.restrictions == [{"weekdays": [0, 2, 4], "start": "09:00:00", "end": "17:00:00"}]
    # The page shows the days ticked again.
    page = client.get(admin_url(Layer, "change", restriction.layer_id))
    formset = next(
        inline.formset
        for inline in page.context["inline_admin_formsets"]
        if inline.formset.prefix == "restrictions"
    )
    assert formset.forms[0]["weekdays"].value() == [0, 2, 4]


def test_reordering_members_changes_only_the_shifts_still_to_come(client, world, lead, clock):
    schedule = world["schedule"]
    ada, ben, cat = world["ada"], world["ben"], world["cat"]
    layer = daily_layer(schedule, [ada, ben, cat])
    now = paris(9, 12)
    clock.move_to(now, tick=False)
    past = selectors.final_schedule(schedule, paris(5), now).shifts
    future = selectors.final_schedule(schedule, now, paris(15)).shifts
    assert future[0].user_id == ben.pk  # turn k = 4 of [Ada, Ben, Cat]

    page = client.get(admin_url(Layer, "change", layer.pk))
    data = form_data(page)
    # Ben, Cat, Ada: the order column decides, not the row.
    new_order = {ben.pk: 1, cat.pk: 2, ada.pk: 3}
    for index in range(3):
        data[f"members-{index}-order"] = str(new_order[data[f"members-{index}-user"]])
    response = client.post(admin_url(Layer, "change", layer.pk), data)

    assert response.status_code == 302, errors_of(response)
    assert list(layer.members.values_list("user__username", "position")) == [
        ("ben", 0),
        ("cat", 1),
        ("ada", 2),
    ]
    # The past keeps its shifts; from now on the new order: turn k = 4 of [Ben, Cat, Ada].
    assert selectors.final_schedule(schedule, paris(5), now).shifts == past
    changed = selectors.final_schedule(schedule, now, paris(15)).shifts
    assert [(s.user_id, s.start, s.end) for s in changed[:2]] == [
        (cat.pk, now, paris(10)),
        (ada.pk, paris(10), paris(11)),
    ]
    assert layer.versions.count() == 2


def test_a_gap_ahead_is_warned_about_on_the_schedule_and_layer_pages(client, world, lead):
    schedule = world["schedule"]
    layer = daily_layer(schedule, [world["ben"]], end=paris(10))

    page = client.get(admin_url(Schedule, "change", schedule.pk))

    expected = (
        "Nobody is on call from Sat 10 Jan 2026 09:00 to Wed 21 Jan 2026 10:00 (Europe/Paris), "
        "the end of the 14 days shown."
    )
    assert expected in texts_of(page)
    html = page.content.decode()
    assert 'class="messagelist oncall-gaps"' in html
    assert "Nobody on call" in html

    layer_page = client.get(admin_url(Layer, "change", layer.pk))
    assert expected in texts_of(layer_page)
    assert 'class="messagelist oncall-gaps"' in layer_page.content.decode()


def test_a_schedule_without_layers_warns_that_nobody_is_on_call(client, world, lead):
    page = client.get(admin_url(Schedule, "change", world["schedule"].pk))
    (warning,) = [text for text in texts_of(page) if text.startswith("Nobody is on call")]
    assert warning.startswith("Nobody is on call from Wed 7 Jan 2026 10:00 to Wed 21 Jan 2026")


def test_several_gaps_make_one_warning_counting_the_rest(client, world, lead):
    schedule = world["schedule"]
    daily_layer(schedule, [world["ben"]], restrictions=[((0, 1, 2, 3, 4), time(9), time(17))])

    page = client.get(admin_url(Schedule, "change", schedule.pk))

    (warning,) = [text for text in texts_of(page) if "Nobody is on call" in text]
    assert warning.startswith("Nobody is on call from Wed 7 Jan 2026 17:00 to Thu 8 Jan 2026 09:00")
    assert "more gaps in the next 14 days" in warning


# -- the layer page refuses bad input -------------------------------------------------------------


def test_a_layer_without_members_is_refused(client, world, lead):
    response = client.post(admin_url(Layer, "add"), layer_add_data(world["schedule"], []))

    assert errors_of(response) == {"members": [NO_MEMBERS_ERROR]}
    assert not Layer.objects.filter(name="Daily").exists()


def test_removing_every_member_of_a_layer_is_refused(client, world, lead):
    layer = daily_layer(world["schedule"], [world["ben"], world["cat"]])
    data = form_data(client.get(admin_url(Layer, "change", layer.pk)))
    data["members-0-DELETE"] = "on"
    data["members-1-DELETE"] = "on"

    response = client.post(admin_url(Layer, "change", layer.pk), data)

    assert errors_of(response) == {"members": [NO_MEMBERS_ERROR]}
    assert layer.members.count() == 2
    assert layer.versions.count() == 1


@pytest.mark.parametrize("turn_count", ["0", "-1"])
def test_a_turn_of_zero_or_less_is_refused(client, world, lead, turn_count):
    data = layer_add_data(world["schedule"], [world["ben"]], turn_count=turn_count)

    response = client.post(admin_url(Layer, "add"), data)

    errors = errors_of(response)
    assert list(errors) == ["form"]
    assert errors["form"]["turn_count"] == ["A turn must be at least 1 hour, day or week long."]
    assert not Layer.objects.filter(name="Daily").exists()


def test_a_layer_ending_before_it_starts_is_refused(client, world, lead):
    data = layer_add_data(world["schedule"], [world["ben"]], end_0="2026-01-04", end_1="09:00")

    response = client.post(admin_url(Layer, "add"), data)

    assert errors_of(response) == {"form": {"end": ["The rotation must end after it starts."]}}
    assert not Layer.objects.filter(name="Daily").exists()


def test_a_change_to_a_layer_that_breaks_a_rule_changes_nothing(client, world, lead):
    layer = daily_layer(world["schedule"], [world["ben"]])
    data = form_data(client.get(admin_url(Layer, "change", layer.pk)))
    data["turn_count"] = "0"
    data["name"] = "Renamed"

    response = client.post(admin_url(Layer, "change", layer.pk), data)

    assert "turn_count" in errors_of(response)["form"]
    layer.refresh_from_db()
    assert (layer.name, layer.turn_count) == ("Daily", 1)


def test_a_restriction_without_days_is_refused(client, world, lead):
    data = layer_add_data(world["schedule"], [world["ben"]])
    data.update(management("restrictions", 1))
    data["restrictions-0-start_time"] = "09:00"
    data["restrictions-0-end_time"] = "17:00"  # and no day ticked

    response = client.post(admin_url(Layer, "add"), data)

    assert errors_of(response) == {
        "restrictions-0": {"weekdays": ["Pick at least one day on which the window starts."]}
    }
    assert not Layer.objects.filter(name="Daily").exists()


@pytest.mark.parametrize("who", ["obi", "otto"])
def test_only_the_teams_leads_and_responders_take_turns(client, world, lead, who):
    """An observer of the team, or a person of another team, is refused."""
    data = layer_add_data(world["schedule"], [world["ben"], world[who]])

    response = client.post(admin_url(Layer, "add"), data)

    assert "user" in errors_of(response)["members-1"]
    assert not Layer.objects.filter(name="Daily").exists()


def test_the_members_select_offers_the_teams_leads_and_responders(client, world, lead):
    layer = daily_layer(world["schedule"], [world["ben"]])
    page = client.get(admin_url(Layer, "change", layer.pk))
    formset = next(
        inline.formset
        for inline in page.context["inline_admin_formsets"]
        if inline.formset.prefix == "members"
    )
    field = formset.empty_form.fields["user"]
    assert {user.username for user in field.queryset} == {"ada", "ben", "cat"}
    assert field.label_from_instance(world["ben"]) == "Ben Okri (ben)"


def test_a_person_may_take_several_turns(client, world, lead):
    ben, cat = world["ben"], world["cat"]
    response = client.post(
        admin_url(Layer, "add"), layer_add_data(world["schedule"], [ben, cat, ben])
    )
    assert response.status_code == 302, errors_of(response)
    assert LayerVersion.objects.get(layer__name="Daily").member_ids == [ben.pk, cat.pk, ben.pk]


# -- layers on the schedule page ---------------------------------------------------------------


def schedule_page_data(client, schedule) -> dict:
    return form_data(client.get(admin_url(Schedule, "change", schedule.pk)))


def add_layer_row(data: dict, **fields) -> dict:
    index = int(data["layers-TOTAL_FORMS"])
    data["layers-TOTAL_FORMS"] = str(index + 1)
    row = {
        "name": "Nights",
        "priority": "2",
        "start_0": "2026-01-12",
        "start_1": "21:00",
        "end_0": "",
        "end_1": "",
        "turn_unit": "weeks",
        "turn_count": "1",
        "handoff_time": "21:00",
        **fields,
    }
    for name, value in row.items():
        data[f"layers-{index}-{name}"] = value
    return data


def test_a_layer_added_on_the_schedule_page_asks_for_members(client, world, lead):
    schedule = world["schedule"]
    data = add_layer_row(schedule_page_data(client, schedule))
    data["_continue"] = "Save and continue editing"

    response = client.post(admin_url(Schedule, "change", schedule.pk), data, follow=True)

    assert response.status_code == 200
    layer = Layer.objects.get(schedule=schedule, name="Nights")
    assert layer.start == datetime(2026, 1, 12, 20, 0, tzinfo=UTC)
    assert not layer.versions.exists()
    assert "Add members to “Nights” on its page: until then it puts nobody on call." in texts_of(
        response
    )
    assert "Nobody yet: this layer puts nobody on call." in response.content.decode()


def test_members_added_later_on_the_layer_page_put_the_layer_on_call(client, world, lead):
    schedule = world["schedule"]
    client.post(
        admin_url(Schedule, "change", schedule.pk),
        add_layer_row(schedule_page_data(client, schedule)),
    )
    layer = Layer.objects.get(schedule=schedule, name="Nights")
    data = form_data(client.get(admin_url(Layer, "change", layer.pk)))
    data["members-0-user"] = str(world["ben"].pk)

    response = client.post(admin_url(Layer, "change", layer.pk), data)

    assert response.status_code == 302, errors_of(response)
    (version,) = layer.versions.all()
    assert version.effective_from == layer.start
    rows = [(row.who, row.start, row.source) for row in schedule_preview(schedule).rows]
    assert ("Ben Okri", "Mon 12 Jan 21:00", "Nights") in rows


def test_a_layer_changed_on_the_schedule_page_gets_a_new_version(client, world, lead):
    schedule = world["schedule"]
    layer = daily_layer(schedule, [world["ben"], world["cat"]])
    data = schedule_page_data(client, schedule)
    data["layers-0-turn_count"] = "2"

    response = client.post(admin_url(Schedule, "change", schedule.pk), data)

    assert response.status_code == 302, errors_of(response)
    versions = list(layer.versions.order_by("effective_from"))
    assert [v.turn_count for v in versions] == [1, 2]
    assert versions[1].effective_from == NOW


@pytest.mark.parametrize(
    ("fields", "field", "message"),
    [
        ({"turn_count": "0"}, "turn_count", "A turn must be at least 1 hour, day or week long."),
        (
            {"end_0": "2026-01-11", "end_1": "21:00"},
            "end",
            "The rotation must end after it starts.",
        ),
    ],
)
def test_the_schedule_page_refuses_a_bad_layer(client, world, lead, fields, field, message):
    schedule = world["schedule"]
    data = add_layer_row(schedule_page_data(client, schedule), **fields)

    response = client.post(admin_url(Schedule, "change", schedule.pk), data)

    assert errors_of(response) == {"layers-0": {field: [message]}}
    assert not schedule.layers.exists()


# -- overrides ---------------------------------------------------------------------------------


def add_override_row(data: dict, user, start: datetime, end: datetime, reason="") -> dict:
    index = int(data["overrides-TOTAL_FORMS"])
    data["overrides-TOTAL_FORMS"] = str(index + 1)
    start, end = start.astimezone(PARIS), end.astimezone(PARIS)
    data[f"overrides-{index}-user"] = str(user.pk)
    data[f"overrides-{index}-start_0"] = f"{start:%Y-%m-%d}"
    data[f"overrides-{index}-start_1"] = f"{start:%H:%M}"
    data[f"overrides-{index}-end_0"] = f"{end:%Y-%m-%d}"
    data[f"overrides-{index}-end_1"] = f"{end:%H:%M}"
    data[f"overrides-{index}-reason"] = reason
    return data


def without_extra_rows(data: dict, prefix: str) -> dict:
    """Drop the page's empty extra rows so the rows a test adds are numbered from the first
    free index."""
    initial = int(data[f"{prefix}-INITIAL_FORMS"])
    for key in [k for k in data if k.startswith(f"{prefix}-")]:
        parts = key.split("-")
        if len(parts) >= 3 and parts[1].isdigit() and int(parts[1]) >= initial:
            del data[key]
    data[f"{prefix}-TOTAL_FORMS"] = str(initial)
    return data


def override_page_data(client, schedule) -> dict:
    return without_extra_rows(schedule_page_data(client, schedule), "overrides")


def test_an_override_added_on_the_schedule_page_records_who_made_it(client, world, lead):
    schedule, ben = world["schedule"], world["ben"]
    daily_layer(schedule, [world["cat"]])
    data = add_override_row(
        override_page_data(client, schedule), ben, paris(8, 14), paris(8, 18), "Dentist"
    )

    response = client.post(admin_url(Schedule, "change", schedule.pk), data)

    assert response.status_code == 302, errors_of(response)
    override = Override.objects.get(schedule=schedule)
    assert (override.user, override.created_by, override.reason) == (ben, lead, "Dentist")
    assert override.start == paris(8, 14)
    preview = schedule_preview(schedule)
    assert ("Ben Okri", "Thu 8 Jan 14:00", "Thu 8 Jan 18:00", "override") in [
        (row.who, row.start, row.end, row.source) for row in preview.rows
    ]
    page = client.get(admin_url(Schedule, "change", schedule.pk))
    assert "Ada Lovelace" in page.content.decode()  # shown as who made it


def test_an_override_ending_before_it_starts_is_refused(client, world, lead):
    schedule = world["schedule"]
    data = add_override_row(
        override_page_data(client, schedule), world["ben"], paris(8, 18), paris(8, 14)
    )

    response = client.post(admin_url(Schedule, "change", schedule.pk), data)

    assert errors_of(response) == {
        "overrides-0": {"end": ["The override must end after it starts."]}
    }
    assert not Override.objects.exists()


def test_an_override_overlapping_another_of_the_same_person_is_refused(client, world, lead):
    schedule, ben = world["schedule"], world["ben"]
    services.override_create(
        schedule=schedule, user=ben, start=paris(8, 12), end=paris(8, 16), created_by=lead
    )
    data = add_override_row(override_page_data(client, schedule), ben, paris(8, 14), paris(8, 18))

    response = client.post(admin_url(Schedule, "change", schedule.pk), data)

    (message,) = errors_of(response)["overrides-1"]["start"]
    assert "ben already covers this schedule from 2026-01-08 12:00 to 2026-01-08 16:00" in message
    assert "(Europe/Paris)" in message
    assert Override.objects.count() == 1


def test_two_overlapping_rows_of_one_person_in_one_post_are_refused(client, world, lead):
    schedule, ben, cat = world["schedule"], world["ben"], world["cat"]
    data = override_page_data(client, schedule)
    add_override_row(data, ben, paris(8, 12), paris(8, 20))
    add_override_row(data, cat, paris(8, 13), paris(8, 14))  # someone else may overlap
    add_override_row(data, ben, paris(8, 14), paris(8, 16))

    response = client.post(admin_url(Schedule, "change", schedule.pk), data)

    errors = errors_of(response)
    assert list(errors) == ["overrides-2"]
    (message,) = errors["overrides-2"]["start"]
    assert "from Thu 8 Jan 2026 12:00 to Thu 8 Jan 2026 20:00 (Europe/Paris)" in message
    assert not Override.objects.exists()


def test_an_override_may_take_the_place_of_one_deleted_in_the_same_post(client, world, lead):
    schedule, ben = world["schedule"], world["ben"]
    old = services.override_create(
        schedule=schedule, user=ben, start=paris(8, 12), end=paris(8, 16), created_by=lead
    )
    data = override_page_data(client, schedule)
    data["overrides-0-DELETE"] = "on"
    add_override_row(data, ben, paris(8, 13), paris(8, 17))

    response = client.post(admin_url(Schedule, "change", schedule.pk), data)

    assert response.status_code == 302, errors_of(response)
    (override,) = Override.objects.all()
    assert override.pk != old.pk and override.start == paris(8, 13)


def test_the_override_select_offers_the_teams_leads_and_responders(client, world, lead):
    page = client.get(admin_url(Schedule, "change", world["schedule"].pk))
    formset = next(
        inline.formset
        for inline in page.context["inline_admin_formsets"]
        if inline.formset.prefix == "overrides"
    )
    assert {u.username for u in formset.empty_form.fields["user"].queryset} == {"ada", "ben", "cat"}


def override_add_data(schedule, user, start: datetime, end: datetime) -> dict:
    start, end = start.astimezone(PARIS), end.astimezone(PARIS)
    return {
        "schedule": str(schedule.pk),
        "user": str(user.pk),
        "start_0": f"{start:%Y-%m-%d}",
        "start_1": f"{start:%H:%M}",
        "end_0": f"{end:%Y-%m-%d}",
        "end_1": f"{end:%H:%M}",
        "reason": "Swap",
    }


def test_the_override_page_records_who_made_it(client, world, lead):
    schedule, cat = world["schedule"], world["cat"]
    data = override_add_data(schedule, cat, paris(9, 9), paris(10, 9))

    response = client.post(admin_url(Override, "add"), data)

    assert response.status_code == 302, errors_of(response)
    override = Override.objects.get()
    assert (override.user, override.created_by) == (cat, lead)
    assert override.start == paris(9, 9)  # typed in the schedule's zone
    listing = client.get(admin_url(Override, "changelist"))
    assert list(listing.context["cl"].result_list) == [override]
    assert "Fri 9 Jan 2026 09:00 (Europe/Paris)" in listing.content.decode()


def test_the_override_page_refuses_overlaps_and_people_outside_the_team(client, world, lead):
    schedule, cat = world["schedule"], world["cat"]
    services.override_create(
        schedule=schedule, user=cat, start=paris(9, 12), end=paris(9, 13), created_by=None
    )

    overlap = client.post(
        admin_url(Override, "add"), override_add_data(schedule, cat, paris(9, 9), paris(10, 9))
    )
    assert "already covers this schedule" in errors_of(overlap)["form"]["start"][0]

    # Ada also leads Billing: its responder Dan is offered, but is not in Payments.
    dan = UserFactory(username="dan")
    TeamFactory(name="Billing", lead=lead, members=[(dan, Role.RESPONDER)])
    outsider = client.post(
        admin_url(Override, "add"), override_add_data(schedule, dan, paris(9, 9), paris(10, 9))
    )
    assert errors_of(outsider)["form"]["user"] == ["Dan is not a lead or responder of Payments."]
    observer = client.post(
        admin_url(Override, "add"),
        override_add_data(schedule, world["obi"], paris(9, 9), paris(10, 9)),
    )
    assert "user" in errors_of(observer)["form"]  # not even offered

    backwards = client.post(
        admin_url(Override, "add"), override_add_data(schedule, cat, paris(10, 9), paris(9, 9))
    )
    assert errors_of(backwards)["form"]["end"] == ["The override must end after it starts."]
    assert Override.objects.count() == 1


def test_an_override_changed_on_its_page_keeps_who_made_it(client, world, lead):
    schedule, cat = world["schedule"], world["cat"]
    override = services.override_create(
        schedule=schedule, user=cat, start=paris(9, 12), end=paris(9, 13), created_by=world["ben"]
    )
    data = form_data(client.get(admin_url(Override, "change", override.pk)))
    assert (data["start_0"], data["start_1"]) == ("2026-01-09", "12:00:00")
    data["end_1"] = "15:00"

    response = client.post(admin_url(Override, "change", override.pk), data)

    assert response.status_code == 302, errors_of(response)
    override.refresh_from_db()
    assert (override.end, override.created_by) == (paris(9, 15), world["ben"])


# -- another team's lead -----------------------------------------------------------------------


@pytest.fixture
def theirs(world):
    """Search's objects, as Ada (lead of Payments only) would try to reach them."""
    schedule = world["search"].schedules.get()
    layer = schedule.layers.get()
    override = services.override_create(
        schedule=schedule, user=world["otto"], start=paris(8), end=paris(9), created_by=None
    )
    return {"schedule": schedule, "layer": layer, "override": override}


@pytest.mark.parametrize("what", ["schedule", "layer", "override"])
def test_another_teams_objects_do_not_exist_for_a_lead(client, lead, theirs, what):
    obj = theirs[what]

    response = client.get(admin_url(type(obj), "change", obj.pk))

    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    assert any("doesn’t exist" in text for text in texts_of(response))


def test_a_lead_cannot_post_changes_to_another_teams_objects(client, world, lead, theirs):
    schedule, layer, override = theirs["schedule"], theirs["layer"], theirs["override"]
    before = {
        "schedule": Schedule.objects.filter(pk=schedule.pk).values().get(),
        "layer": Layer.objects.filter(pk=layer.pk).values().get(),
        "override": Override.objects.filter(pk=override.pk).values().get(),
    }
    members = list(layer.members.values_list("user_id", flat=True))
    posts = {
        "schedule": {"team": str(schedule.team_id), "name": "Hijacked", "time_zone": "UTC"},
        "layer": {
            **layer_add_data(schedule, [world["ben"]], name="Hijacked", turn_count="5"),
            **management("members", 1),
        },
        "override": override_add_data(schedule, world["ben"], paris(8), paris(20)),
    }
    for what, obj in theirs.items():
        response = client.post(admin_url(type(obj), "change", obj.pk), posts[what])
        assert response.status_code == 302
        assert response["Location"] == reverse("admin:index")
        response = client.post(admin_url(type(obj), "delete", obj.pk), {"post": "yes"})
        assert response.status_code == 302
    # Nor by adding objects to their schedule.
    response = client.post(
        admin_url(Layer, "add"), layer_add_data(schedule, [world["ben"]], name="Sneaky")
    )
    assert "schedule" in errors_of(response)["form"]
    response = client.post(
        admin_url(Override, "add"), override_add_data(schedule, world["ben"], paris(8), paris(9))
    )
    assert "schedule" in errors_of(response)["form"]

    assert Schedule.objects.filter(pk=schedule.pk).values().get() == before["schedule"]
    assert Layer.objects.filter(pk=layer.pk).values().get() == before["layer"]
    assert Override.objects.filter(pk=override.pk).values().get() == before["override"]
    assert list(layer.members.values_list("user_id", flat=True)) == members
    assert not Layer.objects.filter(name="Sneaky").exists()


def test_a_lead_lists_only_their_teams_layers_and_overrides(client, world, lead, theirs):
    mine = daily_layer(world["schedule"], [world["ben"]])
    override = services.override_create(
        schedule=world["schedule"], user=world["ben"], start=paris(8), end=paris(9), created_by=lead
    )
    layers = client.get(admin_url(Layer, "changelist"))
    assert set(layers.context["cl"].result_list) == {
        mine,
        world["team"].schedules.get(name="Payments on-call").layers.get(),
    }
    assert list(client.get(admin_url(Override, "changelist")).context["cl"].result_list) == [
        override
    ]
    index = client.get(reverse("admin:index"))
    models = {m["object_name"] for app in index.context["app_list"] for m in app["models"]}
    assert {"Schedule", "Layer", "Override"} <= models


# -- query counts ------------------------------------------------------------------------------


def add_rotation(team, index: int) -> None:
    """One more schedule with a layer of two and an override, in `team`."""
    people = [
        UserFactory(username=f"p{index}a"),
        UserFactory(username=f"p{index}b"),
    ]
    for person in people:
        oncall_services.membership_set(team=team, user=person, role=Role.RESPONDER)
    schedule = services.schedule_create(team=team, name=f"Extra {index}", time_zone="Europe/Paris")
    daily_layer(schedule, people)
    services.override_create(
        schedule=schedule, user=people[0], start=paris(8), end=paris(9), created_by=None
    )


@pytest.mark.parametrize("model", [Schedule, Layer, Override])
def test_changelists_take_the_same_number_of_queries_for_more_rows(
    client, world, lead, model, django_assert_num_queries
):
    add_rotation(world["team"], 0)
    url = admin_url(model, "changelist")
    client.get(url)  # warm the session and the content types
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200

    for index in range(1, 4):
        add_rotation(world["team"], index)
    with django_assert_num_queries(len(small)):
        response = client.get(url)
    assert response.status_code == 200
    assert len(response.context["cl"].result_list) > 3


def test_the_preview_takes_a_fixed_number_of_queries(world, django_assert_num_queries):
    schedule = world["schedule"]
    daily_layer(schedule, [world["ben"]], name="One")
    fresh = Schedule.objects.get(pk=schedule.pk)
    with CaptureQueriesContext(connection) as small:
        schedule_preview(fresh)
    assert len(small) == 6

    daily_layer(schedule, [world["ada"], world["cat"]], name="Two")
    daily_layer(schedule, [world["cat"], world["ben"], world["ada"]], name="Three")
    for day in (8, 9, 10):
        services.override_create(
            schedule=schedule,
            user=world["ben"],
            start=paris(day, 1),
            end=paris(day, 3),
            created_by=None,
        )
    fresh = Schedule.objects.get(pk=schedule.pk)
    with django_assert_num_queries(len(small)):
        preview = schedule_preview(fresh)
    assert {row.source for row in preview.rows} >= {"Three", "override"}


def test_the_schedule_page_takes_the_same_number_of_queries_for_more_rows(
    client, world, lead, django_assert_num_queries
):
    schedule = world["schedule"]
    daily_layer(schedule, [world["ben"]], name="One")
    services.override_create(
        schedule=schedule, user=world["ben"], start=paris(8), end=paris(9), created_by=None
    )
    url = admin_url(Schedule, "change", schedule.pk)
    client.get(url)
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200

    daily_layer(schedule, [world["ada"], world["cat"]], name="Two")
    daily_layer(schedule, [world["cat"], world["ben"], world["ada"]], name="Three")
    for day in (10, 11, 12):
        services.override_create(
            schedule=schedule,
            user=world["cat"],
            start=paris(day),
            end=paris(day, 12),
            created_by=None,
        )
    with django_assert_num_queries(len(small)):
        assert client.get(url).status_code == 200


# -- pages answer, whatever is asked -----------------------------------------------------------


@pytest.mark.parametrize("who", ["root", "ada"])
def test_the_pages_answer(client, world, who, theirs):
    user = UserFactory(username="root", is_superuser=True) if who == "root" else world["ada"]
    client.force_login(user)
    schedule = world["schedule"]
    layer = daily_layer(schedule, [world["ben"]])
    override = services.override_create(
        schedule=schedule, user=world["ben"], start=paris(8), end=paris(9), created_by=None
    )
    urls = [
        admin_url(Schedule, "add"),
        admin_url(Layer, "add"),
        admin_url(Layer, "add") + f"?schedule={schedule.pk}",
        admin_url(Override, "add") + f"?schedule={schedule.pk}",
        admin_url(Layer, "changelist") + f"?schedule__id__exact={schedule.pk}",
        admin_url(Override, "changelist") + f"?team={world['team'].pk}",
    ]
    for obj in (schedule, layer, override):
        for view in ("change", "delete", "history"):
            urls.append(admin_url(type(obj), view, obj.pk))
    for url in urls:
        assert client.get(url).status_code == 200, url
    add_page = client.get(admin_url(Schedule, "add"))
    assert add_page.context["inline_admin_formsets"] == []  # layers come once it exists
    assert ("Europe/Paris", "Europe/Paris") in add_page.context["adminform"].form.fields[
        "time_zone"
    ].choices


@pytest.mark.parametrize("model", [Schedule, Layer, Override])
def test_a_malformed_address_or_schedule_is_no_error(client, world, lead, model):
    response = client.get(admin_url(model, "change", "abc"))
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:index")
    if model is not Schedule:
        response = client.post(admin_url(model, "add"), {"schedule": "abc"})
        assert "schedule" in errors_of(response)["form"]


def test_a_rotation_that_cannot_be_worked_out_is_reported_not_a_500(client, world, lead):
    schedule = world["schedule"]
    layer = daily_layer(schedule, [world["ben"]])
    # Data no service writes (say, restored from a bad backup): a weekday that does not exist.
    layer.versions.update(restrictions=[{"weekdays": [9], "start": "09:00:00", "end": "17:00:00"}])

    page = client.get(admin_url(Schedule, "change", schedule.pk))

    assert page.status_code == 200
    (text,) = texts_of(page)
    assert text.startswith("The final schedule could not be worked out")
    assert 'class="errornote"' in page.content.decode()
