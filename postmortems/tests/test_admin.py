"""Postmortems in the admin: pages render for a lead with their inlines and filters, scoped to
the lead's teams; edits go through the services (and are refused as on the pages); published
postmortems are read-only."""

from datetime import date, timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from oncall.tests.test_admin import admin_form_data, admin_url, errors_of
from postmortems import services
from postmortems.models import ActionItem, Postmortem

from .factories import T0, draft, make_world, published, resolved_incident

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def mine(world):
    pm = draft(world)
    services.action_item_save(
        postmortem=pm,
        user=world.author,
        title="Alert on WAL size",
        owner=world.peer,
        due_date=date(2026, 3, 20),
    )
    services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    services.review_comment_add(
        postmortem=pm, user=world.peer, section="timeline", body="When was the DBA paged?"
    )
    return pm


@pytest.fixture
def theirs(world):
    incident = resolved_incident(world, service=world.bravo_service, by=world.outsider)
    return services.postmortem_create_from_incidents(user=world.outsider, incidents=[incident])


def test_the_changelist_shows_a_lead_their_teams_postmortems_only(client, world, mine, theirs):
    client.force_login(world.lead)
    response = client.get(admin_url(Postmortem, "changelist"))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Disk full on db-1" in page
    assert theirs.title not in page or theirs.team.name not in page
    assert list(response.context["cl"].result_list) == [mine]
    # filters by status, urgency and team (only the lead's teams offered)
    assert "By status" in page and "By urgency" in page and "By team" in page
    assert "Bravo" not in page
    response = client.get(admin_url(Postmortem, "changelist"), {"status__exact": "published"})
    assert list(response.context["cl"].result_list) == []
    response = client.get(admin_url(Postmortem, "changelist"), {"q": "WAL volume"})
    assert list(response.context["cl"].result_list) == [mine]


def test_a_superuser_sees_every_team(client, world, mine, theirs):
    client.force_login(world.root)
    response = client.get(admin_url(Postmortem, "changelist"))
    assert set(response.context["cl"].result_list) == {mine, theirs}


def test_the_change_page_has_the_inlines(client, world, mine):
    client.force_login(world.lead)
    response = client.get(admin_url(Postmortem, "change", mine.pk))
    assert response.status_code == 200
    page = response.content.decode()
    for heading in (
        "Issue summary",
        "Root cause and resolution",
        "Timeline items",
        "Action items",
        "Reviews",
        "Review comments",
        "Amendments",
    ):
        assert heading in page, heading
    assert "Alert on WAL size" in page
    assert "When was the DBA paged?" in page
    prefixes = [inline.formset.prefix for inline in response.context["inline_admin_formsets"]]
    assert prefixes[:2] == ["timeline_items", "action_items"]


@pytest.mark.parametrize("who", ["outsider", "peer", "observer"])
def test_others_cannot_open_the_change_page(client, world, mine, who):
    client.force_login(getattr(world, who))
    response = client.get(admin_url(Postmortem, "change", mine.pk))
    if who == "outsider":  # another team's lead: as if it did not exist
        assert response.status_code == 302
        assert response.url == "/admin/"
    else:  # responders and observers have no admin at all
        assert response.status_code == 302
        assert "/admin/login/" in response.url


def test_nobody_adds_a_postmortem_in_the_admin(client, world):
    client.force_login(world.root)
    assert client.get(admin_url(Postmortem, "add")).status_code == 403


def test_a_lead_edits_a_draft_through_the_services(client, world, mine):
    client.force_login(world.lead)
    url = admin_url(Postmortem, "change", mine.pk)
    data = admin_form_data(client.get(url))
    data["impact"] = "Checkout failed for 45 minutes."
    data["action_items-0-status"] = "done"
    data["timeline_items-TOTAL_FORMS"] = str(int(data["timeline_items-TOTAL_FORMS"]) + 1)
    n = int(data["timeline_items-TOTAL_FORMS"]) - 1
    data.update(
        {
            f"timeline_items-{n}-at_0": "2026-03-02",
            f"timeline_items-{n}-at_1": "09:12:00",
            f"timeline_items-{n}-kind": "misleading",
            f"timeline_items-{n}-detection": "",
            f"timeline_items-{n}-text": "We restarted the load balancer first.",
            f"timeline_items-{n}-position": "0",
            f"timeline_items-{n}-postmortem": str(mine.pk),
        }
    )
    response = client.post(url, data)
    assert response.status_code == 302, errors_of(response)
    mine.refresh_from_db()
    assert mine.impact == "Checkout failed for 45 minutes."
    assert mine.timeline_items.filter(kind="misleading").exists()
    item = mine.action_items.get()
    assert item.status == ActionItem.Status.DONE and item.done_by == world.lead


def test_the_admin_refuses_what_the_services_refuse(client, world, mine):
    client.force_login(world.lead)
    url = admin_url(Postmortem, "change", mine.pk)
    data = admin_form_data(client.get(url))
    data["action_items-0-due_date"] = "2026-02-01"
    data["timeline_items-0-at_0"] = "2024-01-01"
    response = client.post(url, data)
    errors = errors_of(response)
    assert "before the incident started" in str(errors["action_items-0"])
    assert "more than a year away" in str(errors["timeline_items-0"])
    data = admin_form_data(client.get(url))
    data["ended_at_0"] = "2026-03-01"
    errors = errors_of(client.post(url, data))
    assert "The outage ends before it starts." in str(errors["form"])
    mine.refresh_from_db()
    assert mine.ended_at == T0 + timedelta(minutes=45)


def test_owners_are_people_of_the_team(client, world, mine):
    client.force_login(world.lead)
    url = admin_url(Postmortem, "change", mine.pk)
    data = admin_form_data(client.get(url))
    data["action_items-0-owner"] = str(world.observer.pk)
    errors = errors_of(client.post(url, data))
    assert "not a lead or responder of Alpha" in str(errors["action_items-0"])


def test_a_published_postmortem_is_read_only(client, world):
    pm = published(world)
    client.force_login(world.lead)
    url = admin_url(Postmortem, "change", pm.pk)
    response = client.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert 'name="title"' not in page  # shown, not editable
    assert "Disk full on db-1" in page
    assert "Open the page" in page or "View on site" in page or "public page" in page
    response = client.post(url, {"title": "Changed quietly"})
    assert response.status_code == 403
    pm.refresh_from_db()
    assert pm.title == "Disk full on db-1"


def test_the_changelist_takes_the_same_number_of_queries_for_more_rows(client, world):
    client.force_login(world.lead)
    url = admin_url(Postmortem, "changelist")
    draft(world)

    def queries() -> int:
        client.get(url)
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured)

    small = queries()
    for day in range(1, 4):
        draft(world, resolved_incident(world, at=T0 + timedelta(days=day), title=f"Outage {day}"))
    assert queries() == small
