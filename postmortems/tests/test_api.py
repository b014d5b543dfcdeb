"""/api/v1/postmortems/ and /api/v1/action-items/: who reads and writes what, the filters, the
workflow through the API, clear 400/403/404/409s, the schema and pinned query counts."""

from datetime import date, timedelta

import pytest
import time_machine
import yaml
from django.core.management import call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from postmortems import services
from postmortems.models import ActionItem, Postmortem

from .factories import T0, draft, make_world, published, resolved_incident

pytestmark = pytest.mark.django_db
API = "/api/v1"


def client_for(user) -> APIClient:
    client = APIClient()
    if user is not None:
        token, _ = Token.objects.get_or_create(user=user)
        client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def ids(response) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def two(world):
    """A published postmortem and a draft, both of Alpha."""
    pub = published(world)
    dr = draft(world, resolved_incident(world, at=T0 + timedelta(days=1), title="Queue stuck"))
    return pub, dr


# --- reading: who sees what --------------------------------------------------------------------


def test_anonymous_callers_are_refused():
    assert APIClient().get(f"{API}/postmortems/").status_code == 401
    assert APIClient().get(f"{API}/action-items/").status_code == 401


@pytest.mark.parametrize(
    ("who", "sees_draft"),
    [
        ("author", True),
        ("peer", True),
        ("lead", True),
        ("root", True),
        ("observer", False),
        ("outsider", False),
    ],
)
def test_the_list_shows_drafts_to_the_team_only(world, two, who, sees_draft):
    pub, dr = two
    response = client_for(getattr(world, who)).get(f"{API}/postmortems/")
    assert response.status_code == 200
    expected = [dr.pk, pub.pk] if sees_draft else [pub.pk]
    assert ids(response) == expected


@pytest.mark.parametrize("who", ["observer", "outsider"])
def test_a_drafts_url_answers_404_to_observers_and_outsiders(world, two, who):
    pub, dr = two
    client = client_for(getattr(world, who))
    response = client.get(f"{API}/postmortems/{dr.pk}/")
    assert response.status_code == 404
    assert "Queue stuck" not in response.content.decode()
    assert client.get(f"{API}/postmortems/999999/").status_code == 404
    assert client.get(f"{API}/postmortems/{pub.pk}/").status_code == 200


def test_search_never_finds_a_draft_for_an_observer(world, two):
    response = client_for(world.observer).get(f"{API}/postmortems/", {"q": "Queue"})
    assert ids(response) == []
    response = client_for(world.author).get(f"{API}/postmortems/", {"q": "Queue"})
    assert ids(response) == [two[1].pk]
    response = client_for(world.observer).get(f"{API}/postmortems/", {"status": "draft"})
    assert ids(response) == []


def test_the_detail_has_the_fixed_format(world, two, client):
    pub, _ = two
    services.action_item_save(
        postmortem=pub,
        user=world.author,
        title="Add memory alert",
        owner=world.peer,
        due_date=date(2026, 3, 20),
        url="https://tracker.example.com/OPS-9",
        reason="Follow-up",
    )
    body = client_for(world.observer).get(f"{API}/postmortems/{pub.pk}/").json()
    assert body["status"] == "published"
    assert body["team"]["slug"] == "alpha"
    assert body["duration_seconds"] == 45 * 60
    assert body["time_zone"] == "Europe/Paris"
    assert body["summary_root_cause"] == "The WAL volume filled up."
    assert body["services"] == [{"id": world.api.pk, "name": "API"}]
    assert body["timeline_items"][0]["kind"] == "detected"
    assert body["action_items"][0]["title"] == "Add memory alert"
    assert body["action_items"][0]["tracker_url"] == "https://tracker.example.com/OPS-9"
    assert body["action_items"][0]["owner"]["username"] == "peer"
    assert [r["state"] for r in body["reviews"]] == ["approved"]
    assert body["amendments"][0]["reason"] == "Follow-up"
    assert 0 < body["word_count"] < 400
    assert body["word_count_warning"] == f"{body['word_count']} words — below the 400-word target"
    client.force_login(world.observer)  # the download is a page: signed in, not by token
    markdown = client.get(body["markdown_url"])
    assert markdown.status_code == 200
    assert markdown.content.decode().startswith("# Disk full on db-1")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"status": "lost"}, "status"),
        ({"urgency": "urgent"}, "urgency"),
        ({"team": "nope"}, "team"),
        ({"service": "abc"}, "service"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-03-05", "end": "2026-03-01"}, "end"),
    ],
)
def test_bad_filters_are_400_naming_the_parameter(world, params, field):
    response = client_for(world.author).get(f"{API}/postmortems/", params)
    assert response.status_code == 400
    assert field in response.json()


def test_filters(world, two):
    pub, dr = two
    client = client_for(world.author)
    assert ids(client.get(f"{API}/postmortems/", {"status": "published"})) == [pub.pk]
    assert ids(client.get(f"{API}/postmortems/", {"team": "alpha"})) == [dr.pk, pub.pk]
    assert ids(client.get(f"{API}/postmortems/", {"team": "bravo"})) == []
    assert ids(client.get(f"{API}/postmortems/", {"service": world.api.pk})) == [dr.pk, pub.pk]
    assert ids(client.get(f"{API}/postmortems/", {"start": "2026-03-03"})) == [dr.pk]
    assert ids(client.get(f"{API}/postmortems/", {"end": "2026-03-02"})) == [pub.pk]
    assert ids(client.get(f"{API}/postmortems/", {"urgency": "low"})) == []


def test_the_list_runs_a_fixed_number_of_queries(world, django_assert_num_queries):
    client = client_for(world.author)
    published(world)
    client.get(f"{API}/postmortems/")  # warm the token and the roles
    with django_assert_num_queries(5) as small:
        assert len(ids(client.get(f"{API}/postmortems/"))) == 1
    for day in range(1, 5):
        draft(world, resolved_incident(world, at=T0 + timedelta(days=day), title=f"Outage {day}"))
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(ids(client.get(f"{API}/postmortems/"))) == 5


def test_the_detail_runs_a_fixed_number_of_queries(world, django_assert_num_queries):
    pm = published(world)
    client = client_for(world.observer)
    url = f"{API}/postmortems/{pm.pk}/"
    client.get(url)
    with django_assert_num_queries(11) as small:
        assert client.get(url).status_code == 200
    for n in range(4):
        services.timeline_item_save(
            postmortem=pm,
            user=world.author,
            at=T0 + timedelta(minutes=n),
            text=f"Step {n}.",
            reason="More detail",
        )
        services.action_item_save(
            postmortem=pm,
            user=world.author,
            title=f"Task {n}",
            owner=world.peer,
            due_date=date(2026, 4, 1),
            reason="More tasks",
        )
    with django_assert_num_queries(len(small.captured_queries)):
        body = client.get(url).json()
    assert len(body["action_items"]) == 4 and len(body["amendments"]) == 8


# --- writing -----------------------------------------------------------------------------------


def test_a_responder_creates_a_draft_from_incidents(world):
    incident = resolved_incident(world)
    client = client_for(world.peer)
    response = client.post(f"{API}/postmortems/", {"incidents": [incident.pk]}, format="json")
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["status"] == "draft" and body["author"]["username"] == "peer"
    assert body["incidents"] == [incident.pk]
    again = client.post(f"{API}/postmortems/", {"incidents": [incident.pk]}, format="json")
    assert again.status_code == 200 and again.json()["id"] == body["id"]


def test_creating_from_an_open_incident_is_409(world):
    from incidents import workflow

    incident = workflow.incident_trigger(service=world.api, title="Burning", at=T0)
    response = client_for(world.author).post(
        f"{API}/postmortems/", {"incidents": [incident.pk]}, format="json"
    )
    assert response.status_code == 409
    assert "resolve it before" in response.json()["detail"]


@pytest.mark.parametrize("who", ["observer", "outsider"])
def test_creating_by_non_members_is_403(world, who):
    incident = resolved_incident(world)
    response = client_for(getattr(world, who)).post(
        f"{API}/postmortems/", {"incidents": [incident.pk]}, format="json"
    )
    assert response.status_code == 403
    assert not Postmortem.objects.exists()


def test_bad_create_input_is_400(world):
    client = client_for(world.author)
    assert client.post(f"{API}/postmortems/", {"incidents": []}, format="json").status_code == 400
    response = client.post(f"{API}/postmortems/", {"incidents": [987654]}, format="json")
    assert response.status_code == 400 and "987654" in response.json()["incidents"][0]


def test_team_members_edit_a_draft(world, two):
    _, dr = two
    response = client_for(world.peer).patch(
        f"{API}/postmortems/{dr.pk}/",
        {"impact": "Orders queued for 40 minutes.", "users_affected_percent": "12.5"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    assert response.json()["impact"] == "Orders queued for 40 minutes."
    assert response.json()["users_affected_percent"] == "12.50"


def test_writes_by_non_members_are_403_and_change_nothing(world, two):
    pub, dr = two
    for who in (world.observer, world.outsider):
        response = client_for(who).patch(
            f"{API}/postmortems/{pub.pk}/", {"title": "Hacked"}, format="json"
        )
        assert response.status_code == 403
        response = client_for(who).post(
            f"{API}/postmortems/{pub.pk}/amend/", {"reason": "x", "title": "Hacked"}, format="json"
        )
        assert response.status_code == 403
    # a draft of another team is not even there for them
    response = client_for(world.outsider).patch(
        f"{API}/postmortems/{dr.pk}/", {"title": "Hacked"}, format="json"
    )
    assert response.status_code == 404
    assert not Postmortem.objects.filter(title="Hacked").exists()


def test_editing_a_published_postmortem_is_409_and_amend_records_it(world, two):
    pub, _ = two
    client = client_for(world.author)
    response = client.patch(f"{API}/postmortems/{pub.pk}/", {"title": "New"}, format="json")
    assert response.status_code == 409
    assert "amendment" in response.json()["detail"]
    response = client.post(
        f"{API}/postmortems/{pub.pk}/amend/",
        {"reason": "The title named the wrong host.", "title": "Disk full on db-2"},
        format="json",
    )
    assert response.status_code == 200, response.json()
    [amendment] = response.json()["amendments"]
    assert amendment["before"] == {"title": "Disk full on db-1"}
    assert amendment["after"] == {"title": "Disk full on db-2"}
    assert amendment["author"]["username"] == "author"


def test_bad_edits_are_400_naming_the_field(world, two):
    _, dr = two
    client = client_for(world.author)
    for body, field in [
        ({"users_affected_percent": "150"}, "users_affected_percent"),
        ({"time_zone": "Mars/Base"}, "time_zone"),
        ({"ended_at": "2026-01-01T00:00:00Z"}, "ended_at"),
        ({"services": [world.bravo_service.pk]}, "services"),
    ]:
        response = client.patch(f"{API}/postmortems/{dr.pk}/", body, format="json")
        assert response.status_code == 400, body
        assert field in response.json(), response.json()


def test_the_whole_workflow_through_the_api(world):
    incident = resolved_incident(world)
    author, peer = client_for(world.author), client_for(world.peer)
    pk = author.post(f"{API}/postmortems/", {"incidents": [incident.pk]}, format="json").json()[
        "id"
    ]
    author.patch(f"{API}/postmortems/{pk}/", {"summary_root_cause": "WAL filled."}, format="json")
    response = author.post(f"{API}/postmortems/{pk}/publish/", {}, format="json")
    assert response.status_code == 409
    assert "at least one approval" in response.json()["detail"]
    response = author.post(
        f"{API}/postmortems/{pk}/timeline-items/",
        {"at": "2026-03-02T09:10:00Z", "kind": "misleading", "text": "We blamed the network."},
        format="json",
    )
    assert response.status_code == 201
    response = author.post(
        f"{API}/postmortems/{pk}/action-items/",
        {"title": "Alert on WAL size", "owner": world.peer.pk, "due_date": "2026-02-01"},
        format="json",
    )
    assert response.status_code == 400
    assert "before the incident started" in response.json()["due_date"][0]
    response = author.post(
        f"{API}/postmortems/{pk}/action-items/",
        {"title": "Alert on WAL size", "owner": world.peer.pk, "due_date": "2026-03-20"},
        format="json",
    )
    assert response.status_code == 201
    response = author.post(
        f"{API}/postmortems/{pk}/request-review/", {"reviewers": [world.peer.pk]}, format="json"
    )
    assert response.json()["status"] == "in_review"
    response = author.post(
        f"{API}/postmortems/{pk}/review/", {"decision": "approved"}, format="json"
    )
    assert response.status_code == 403  # the author does not approve their own
    response = peer.post(
        f"{API}/postmortems/{pk}/review/", {"decision": "approved", "note": "Good"}, format="json"
    )
    assert response.json()["status"] == "approved"
    response = author.post(f"{API}/postmortems/{pk}/publish/", {}, format="json")
    assert response.status_code == 200
    assert response.json()["status"] == "published"
    assert client_for(world.observer).get(f"{API}/postmortems/{pk}/").status_code == 200


def test_a_lead_publishes_without_approval_with_a_reason(world, two):
    _, dr = two
    lead = client_for(world.lead)
    response = lead.post(f"{API}/postmortems/{dr.pk}/publish/", {}, format="json")
    assert response.status_code == 400 and "reason" in response.json()
    response = lead.post(
        f"{API}/postmortems/{dr.pk}/publish/", {"reason": "Reviewer away"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["publish_override_reason"] == "Reviewer away"


# --- action items ------------------------------------------------------------------------------


@pytest.fixture
def items(world, two):
    pub, dr = two
    overdue = services.action_item_save(
        postmortem=pub,
        user=world.author,
        title="Patch Nginx",
        owner=world.peer,
        due_date=date(2026, 3, 5),
        reason="Follow-up",
    )
    later = services.action_item_save(
        postmortem=pub,
        user=world.author,
        title="Memory alert",
        owner=world.author,
        due_date=date(2026, 4, 30),
        reason="Follow-up",
    )
    hidden = services.action_item_save(
        postmortem=dr,
        user=world.author,
        title="Draft task",
        owner=world.peer,
        due_date=date(2026, 3, 6),
    )
    return overdue, later, hidden


def test_action_item_list_and_filters(world, items):
    overdue, later, hidden = items
    with time_machine.travel(date(2026, 3, 10)):
        peer = client_for(world.peer)
        assert ids(peer.get(f"{API}/action-items/")) == [overdue.pk, hidden.pk, later.pk]
        assert ids(peer.get(f"{API}/action-items/", {"owner": "me"})) == [overdue.pk, hidden.pk]
        assert ids(peer.get(f"{API}/action-items/", {"owner": world.author.pk})) == [later.pk]
        body = peer.get(f"{API}/action-items/", {"overdue": "true"}).json()
        assert [r["id"] for r in body["results"]] == [overdue.pk, hidden.pk]
        assert all(r["is_overdue"] for r in body["results"])
        assert ids(peer.get(f"{API}/action-items/", {"overdue": "false"})) == [later.pk]
        assert ids(peer.get(f"{API}/action-items/", {"status": "done"})) == []
        # the observer never sees the draft's item
        observer = client_for(world.observer)
        assert ids(observer.get(f"{API}/action-items/")) == [overdue.pk, later.pk]
        assert observer.get(f"{API}/action-items/{hidden.pk}/").status_code == 404
        for params in ({"owner": "x"}, {"status": "closed"}, {"overdue": "maybe"}, {"team": "?"}):
            assert peer.get(f"{API}/action-items/", params).status_code == 400


def test_the_owner_closes_and_reopens_an_action_item(world, items):
    overdue, later, _ = items
    response = client_for(world.peer).patch(
        f"{API}/action-items/{overdue.pk}/", {"status": "done"}, format="json"
    )
    assert response.status_code == 200
    assert response.json()["status"] == "done"
    assert response.json()["done_by"]["username"] == "peer"
    response = client_for(world.peer).patch(
        f"{API}/action-items/{overdue.pk}/", {"status": "done"}, format="json"
    )
    assert response.status_code == 409
    response = client_for(world.lead).patch(
        f"{API}/action-items/{overdue.pk}/", {"status": "open"}, format="json"
    )
    assert response.status_code == 200 and response.json()["status"] == "open"


@pytest.mark.parametrize("who", ["peer", "observer", "outsider"])
def test_others_cannot_close_an_action_item(world, items, who):
    _, later, _ = items  # owned by the author
    response = client_for(getattr(world, who)).patch(
        f"{API}/action-items/{later.pk}/", {"status": "done"}, format="json"
    )
    assert response.status_code == 403
    later.refresh_from_db()
    assert later.status == ActionItem.Status.OPEN


def test_the_action_item_list_runs_a_fixed_number_of_queries(
    world, items, django_assert_num_queries
):
    client = client_for(world.peer)
    client.get(f"{API}/action-items/")
    with django_assert_num_queries(4) as small:
        assert len(ids(client.get(f"{API}/action-items/"))) == 3
    pub = items[0].postmortem
    for n in range(5):
        services.action_item_save(
            postmortem=pub,
            user=world.lead,
            title=f"Task {n}",
            owner=world.lead,
            due_date=date(2026, 5, 1),
            reason="More",
        )
    with django_assert_num_queries(len(small.captured_queries)):
        assert len(ids(client.get(f"{API}/action-items/"))) == 8


# --- the schema --------------------------------------------------------------------------------


def test_the_schema_contains_the_endpoints(tmp_path):
    out = tmp_path / "schema.yaml"
    call_command("spectacular", "--file", str(out), "--validate", "--fail-on-warn")
    schema = yaml.safe_load(out.read_text())
    paths = schema["paths"]
    for expected in [
        "/api/v1/postmortems/",
        "/api/v1/postmortems/{id}/",
        "/api/v1/postmortems/{id}/publish/",
        "/api/v1/postmortems/{id}/request-review/",
        "/api/v1/postmortems/{id}/review/",
        "/api/v1/postmortems/{id}/amend/",
        "/api/v1/postmortems/{id}/timeline-items/",
        "/api/v1/postmortems/{id}/action-items/",
        "/api/v1/action-items/",
        "/api/v1/action-items/{id}/",
    ]:
        assert expected in paths, expected
    assert set(paths["/api/v1/postmortems/{id}/"]) >= {"get", "patch"}
    assert "PostmortemStatusEnum" in schema["components"]["schemas"]
