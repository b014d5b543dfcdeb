"""Who reads which postmortem, the search and its filters, the action item list and the Markdown
export — observers never see a draft in any of them."""

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import time_machine
from django.core.exceptions import PermissionDenied
from django.http import Http404

from postmortems import selectors, services
from postmortems.models import Postmortem

from .factories import T0, draft, make_world, published, resolved_incident

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def two(world):
    pub = published(world)
    dr = draft(
        world,
        resolved_incident(world, at=T0 + timedelta(days=1), title="Queue stuck", urgency="low"),
        summary_root_cause="A poison message.",
        root_cause="A poison message blocked the payments queue.",
    )
    return pub, dr


# --- visibility --------------------------------------------------------------------------------


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
def test_visible_postmortems(world, two, who, sees_draft):
    pub, dr = two
    visible = set(selectors.visible_postmortems(user=getattr(world, who)))
    assert visible == ({pub, dr} if sees_draft else {pub})


def test_anonymous_and_deactivated_people_see_nothing(world, two):
    from django.contrib.auth.models import AnonymousUser

    assert not selectors.visible_postmortems(user=AnonymousUser()).exists()
    world.observer.is_active = False
    world.observer.save()
    assert not selectors.visible_postmortems(user=world.observer).exists()


def test_postmortem_for_user(world, two):
    pub, dr = two
    assert selectors.postmortem_for_user(user=world.observer, pk=pub.pk) == pub
    with pytest.raises(Http404):
        selectors.postmortem_for_user(user=world.observer, pk=dr.pk)
    with pytest.raises(PermissionDenied):
        selectors.postmortem_for_user(user=world.observer, pk=pub.pk, for_write=True)
    with pytest.raises(PermissionDenied):
        selectors.postmortem_for_user(user=world.outsider, pk=pub.pk, for_write=True)
    assert selectors.postmortem_for_user(user=world.peer, pk=dr.pk, for_write=True) == dr


def test_incident_postmortems_links_only_visible_ones(world, two):
    pub, dr = two
    [pub_incident] = pub.incidents.all()
    [dr_incident] = dr.incidents.all()
    assert selectors.incident_postmortems(
        user=world.author, incidents=[pub_incident, dr_incident]
    ) == {pub_incident.pk: pub, dr_incident.pk: dr}
    assert selectors.incident_postmortems(
        user=world.observer, incidents=[pub_incident.pk, dr_incident.pk]
    ) == {pub_incident.pk: pub}


# --- search ------------------------------------------------------------------------------------


def test_search_finds_words_anywhere_but_never_a_draft_for_observers(world, two):
    pub, dr = two
    assert list(selectors.postmortem_search(user=world.author, q="poison")) == [dr]
    assert list(selectors.postmortem_search(user=world.observer, q="poison")) == []
    assert list(selectors.postmortem_search(user=world.observer, q="WAL")) == [pub]
    # every word must match; case does not matter
    assert list(selectors.postmortem_search(user=world.author, q="wal VOLUME")) == [pub]
    assert list(selectors.postmortem_search(user=world.author, q="volume poison")) == []


def test_search_looks_in_timeline_items_and_action_items(world, two):
    pub, _ = two
    services.action_item_save(
        postmortem=pub,
        user=world.author,
        title="Add monitoring on server memory",
        owner=world.peer,
        due_date=date(2026, 4, 1),
        reason="Follow-up",
    )
    assert list(selectors.postmortem_search(user=world.observer, q="memory")) == [pub]
    assert list(selectors.postmortem_search(user=world.observer, q="Prometheus")) == [pub]


def test_search_filters(world, two):
    pub, dr = two
    author = world.author

    def found(**kwargs):
        return list(selectors.postmortem_search(user=author, **kwargs))

    assert found() == [dr, pub]  # newest outage first
    assert found(team=world.alpha) == [dr, pub]
    assert found(team=world.bravo.pk) == []
    assert found(service=world.api) == [dr, pub]
    assert found(service=world.bravo_service.pk) == []
    assert found(urgency="low") == [dr]
    assert found(status="published") == [pub]
    assert found(start=date(2026, 3, 3)) == [dr]
    assert found(end=date(2026, 3, 2)) == [pub]
    assert found(start=datetime(2026, 3, 2, 9, 0, tzinfo=T0.tzinfo), end=T0) == [pub]
    with pytest.raises(ValueError):
        found(status="lost")
    with pytest.raises(ValueError):
        found(urgency="urgent")


def test_the_search_runs_a_fixed_number_of_queries(world, django_assert_num_queries):
    published(world)

    def run():
        rows = list(selectors.postmortem_search(user=world.observer, q="WAL"))
        for row in rows:
            shown = ([s.name for s in row.services.all()], row.team.name, row.author.profile.name)
            assert all(shown)
        return rows

    selectors.visible_postmortems(user=world.observer).exists()  # roles cached
    with django_assert_num_queries(2):
        assert len(run()) == 1
    for day in range(1, 4):
        published(world, draft(world, resolved_incident(world, at=T0 + timedelta(days=day))))
    with django_assert_num_queries(2):
        assert len(run()) == 4


# --- action items ------------------------------------------------------------------------------


def test_open_action_items_by_due_date_never_from_a_draft_for_observers(world, two):
    pub, dr = two
    late = services.action_item_save(
        postmortem=pub,
        user=world.author,
        title="Later",
        owner=world.author,
        due_date=date(2026, 5, 1),
        reason="r",
    )
    soon = services.action_item_save(
        postmortem=pub,
        user=world.author,
        title="Soon",
        owner=world.peer,
        due_date=date(2026, 3, 10),
        reason="r",
    )
    hidden = services.action_item_save(
        postmortem=dr,
        user=world.author,
        title="Hidden",
        owner=world.peer,
        due_date=date(2026, 3, 11),
    )
    done = services.action_item_save(
        postmortem=pub,
        user=world.author,
        title="Done",
        owner=world.peer,
        due_date=date(2026, 3, 9),
        reason="r",
    )
    services.action_item_close(item=done, user=world.peer)
    assert list(selectors.open_action_items(user=world.peer)) == [soon, hidden, late]
    assert list(selectors.open_action_items(user=world.observer)) == [soon, late]
    assert list(selectors.open_action_items(user=world.peer, owner=world.peer)) == [soon, hidden]
    with time_machine.travel(date(2026, 3, 12)):
        overdue = list(selectors.action_item_list(user=world.peer, overdue=True))
        assert overdue == [soon, hidden]
        assert list(selectors.action_item_list(user=world.peer, overdue=False)) == [done, late]


def test_open_action_items_run_a_fixed_number_of_queries(world, django_assert_num_queries):
    pm = published(world)

    def add(n):
        for i in range(n):
            services.action_item_save(
                postmortem=pm,
                user=world.author,
                title=f"Task {i}",
                owner=world.peer,
                due_date=date(2026, 4, 1),
                reason="r",
            )

    def run():
        rows = list(selectors.open_action_items(user=world.observer))
        for row in rows:
            shown = (row.postmortem.title, row.postmortem.team.name, row.owner.profile.name)
            assert all(shown) and row.is_overdue in (True, False)
        return rows

    add(1)
    run()
    with django_assert_num_queries(1):
        assert len(run()) == 1
    add(5)
    with django_assert_num_queries(1):
        assert len(run()) == 6


# --- the Markdown export -----------------------------------------------------------------------


def test_the_markdown_export_has_the_fixed_format(world):
    pm = draft(
        world,
        impact="Checkout was down.",
        users_affected_percent=Decimal("12.5"),
        root_cause="The WAL volume had no alert.",
        resolution="Old segments deleted; volume grown.",
        improvements="Alert on every volume.",
    )
    services.action_item_save(
        postmortem=pm,
        user=world.author,
        title="Add monitoring on server memory",
        owner=world.peer,
        due_date=date(2026, 3, 20),
        url="https://tracker.example.com/OPS-1",
    )
    pm = published(world, pm)
    services.postmortem_amend(postmortem=pm, user=world.lead, reason="Typo", title="Disk full")
    pm = selectors.postmortem_detail_queryset(user=world.observer).get(pk=pm.pk)
    text = selectors.postmortem_markdown(pm)
    assert text.startswith("# Disk full\n")
    sections = [line for line in text.splitlines() if line.startswith("## ")]
    assert sections == [
        "## Issue summary",
        "## Timeline",
        "## Root cause and resolution",
        "## Corrective and preventative measures",
        "## Amendments",
    ]
    # times in the postmortem's zone (Paris: UTC+1 in March), with the duration
    assert "- **Start:** 2026-03-02 10:00 CET (Europe/Paris)" in text
    assert "- **End:** 2026-03-02 10:45 CET (Europe/Paris)" in text
    assert "- **Duration:** 45 min" in text
    assert "- **Affected services:** API" in text
    assert "- **Users affected:** 12.5 %" in text
    assert "Checkout was down." in text
    assert "- **2026-03-02 10:00 CET** — Detected (monitoring alert): First alert" in text
    assert (
        "- [ ] Add monitoring on server memory — owner Pat Peer, due 2026-03-20 "
        "(https://tracker.example.com/OPS-1)" in text
    )
    assert "by Olive" not in text
    assert "Typo" in text


def test_format_duration():
    assert selectors.format_duration(None) == ""
    assert selectors.format_duration(timedelta(minutes=45)) == "45 min"
    assert selectors.format_duration(timedelta(hours=2, minutes=5)) == "2 h 05 min"
    assert selectors.format_duration(timedelta(days=1, hours=3)) == "1 d 3 h 00 min"


def test_postmortem_ordering_is_newest_outage_first(world, two):
    pub, dr = two
    assert list(Postmortem.objects.all()) == [dr, pub]
