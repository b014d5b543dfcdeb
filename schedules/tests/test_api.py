"""/api/v1/oncall/ and /api/v1/schedules/<id>/shifts/: ISO 8601 in and out, clear 400s."""

from datetime import datetime

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory
from schedules.tests.helpers import LONDON, team_with_daily_rotation

pytestmark = pytest.mark.django_db


@pytest.fixture
def rotation():
    return team_with_daily_rotation(names=("ann", "ben"))


def client_for(user) -> APIClient:
    client = APIClient()
    token, _ = Token.objects.get_or_create(user=user)
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def test_oncall_at_an_instant_with_offsets(rotation):
    team, schedule, _, (ann, ben) = rotation
    response = client_for(ann).get(
        "/api/v1/oncall/", {"at": "2026-01-06T10:30:00+01:00", "team": team.slug}
    )
    assert response.status_code == 200
    rows = {r["schedule"]["id"]: r for r in response.json()["results"]}
    row = rows[schedule.pk]
    assert row["on_call"]["user"]["username"] == "ben"  # 09:30 London on the 6th
    assert row["on_call"]["start"] == "2026-01-06T09:00:00+00:00"
    assert row["on_call"]["end"] == "2026-01-07T09:00:00+00:00"
    assert row["at"] == "2026-01-06T09:30:00+00:00"


def test_oncall_hides_other_teams(rotation):
    _, schedule, _, _ = rotation
    outsider = UserFactory()
    TeamFactory(lead=outsider)
    response = client_for(outsider).get("/api/v1/oncall/")
    ids = {r["schedule"]["id"] for r in response.json()["results"]}
    assert schedule.pk not in ids
    assert client_for(outsider).get(f"/api/v1/schedules/{schedule.pk}/shifts/").status_code == 404


def test_observers_and_anonymous_get_no_rotations(rotation):
    team, schedule, _, _ = rotation
    observer = UserFactory()
    TeamFactory(lead=None, members=[(observer, Role.OBSERVER)])
    assert client_for(observer).get("/api/v1/oncall/").json()["results"] == []
    assert APIClient().get("/api/v1/oncall/").status_code in (401, 403)


def test_shifts_in_a_window_in_the_schedules_zone(rotation):
    _, schedule, _, (ann, _) = rotation
    response = client_for(ann).get(
        f"/api/v1/schedules/{schedule.pk}/shifts/",
        {"start": "2026-07-01T00:00:00Z", "end": "2026-07-03T00:00:00Z"},
    )
    assert response.status_code == 200
    body = response.json()
    # Summer: London is on +01:00, handoffs at 09:00 local.
    assert [s["start"] for s in body["shifts"]] == [
        "2026-07-01T01:00:00+01:00",
        "2026-07-01T09:00:00+01:00",
        "2026-07-02T09:00:00+01:00",
    ]
    assert body["gaps"] == []


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-07-01T00:00:00"}, "start"),  # no offset
        ({"start": "2026-07-03T00:00:00Z", "end": "2026-07-01T00:00:00Z"}, "end"),
        ({"start": "2026-01-01T00:00:00Z", "end": "2027-03-01T00:00:00Z"}, "end"),  # > 1 year
    ],
)
def test_bad_windows_are_400_naming_the_field(rotation, params, field):
    _, schedule, _, (ann, _) = rotation
    response = client_for(ann).get(f"/api/v1/schedules/{schedule.pk}/shifts/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_bad_at_and_unknown_team_are_400(rotation):
    _, _, _, (ann, _) = rotation
    client = client_for(ann)
    assert "at" in client.get("/api/v1/oncall/", {"at": "soon"}).json()
    for extreme in ("0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"):
        response = client.get("/api/v1/oncall/", {"at": extreme})
        assert response.status_code == 400 and "at" in response.json()
    assert client.get("/api/v1/oncall/", {"team": "no-such-team"}).status_code == 400


def test_schema_lists_the_schedule_endpoints(rotation):
    _, _, _, (ann, _) = rotation
    response = client_for(ann).get("/api/schema/", HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    text = response.content.decode()
    assert "/api/v1/oncall/" in text and "/api/v1/schedules/{id}/shifts/" in text


def test_window_boundaries_are_instants_not_local_dates(rotation):
    """The same instant written with two offsets gives the same answer."""
    _, schedule, _, (ann, _) = rotation
    client = client_for(ann)
    a = client.get("/api/v1/oncall/", {"at": "2026-01-06T08:59:00+00:00"}).json()
    b = client.get("/api/v1/oncall/", {"at": "2026-01-06T03:59:00-05:00"}).json()
    assert a["results"] == b["results"]
    assert datetime.fromisoformat(a["at"]) == datetime(2026, 1, 6, 8, 59, tzinfo=LONDON)
