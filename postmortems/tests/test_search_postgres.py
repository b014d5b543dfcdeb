"""Full-text search of postmortems on PostgreSQL: stemmed English words, web-search syntax, best
match first, timeline and action items included — and still never a draft for an observer.

Run with DATABASE_URL pointing at PostgreSQL (CI does); skipped on SQLite elsewhere."""

from datetime import date, timedelta

import pytest

from postmortems import selectors, services

from .factories import T0, draft, make_world, published, resolved_incident

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("postgres_required")]


@pytest.fixture
def world():
    return make_world()


@pytest.fixture
def library(world):
    """Three published postmortems and a draft, with distinct words."""
    memory = published(
        world,
        draft(
            world,
            resolved_incident(world, at=T0, title="Memory leak in the checkout service"),
            summary_root_cause="A cache grew without bound.",
            root_cause="The session cache kept every cart.",
        ),
    )
    disk = published(
        world,
        draft(
            world,
            resolved_incident(world, at=T0 + timedelta(days=1), title="Database stopped"),
            summary_root_cause="The disks filled with logs.",
            root_cause="Log rotation was switched off; memory was fine.",
        ),
    )
    dns = published(
        world,
        draft(
            world,
            resolved_incident(world, at=T0 + timedelta(days=2), title="Name resolution failing"),
            summary_root_cause="An expired DNS zone.",
            root_cause="Nobody renewed the domain.",
        ),
    )
    secret = draft(
        world,
        resolved_incident(world, at=T0 + timedelta(days=3), title="Memory pressure on workers"),
        summary_root_cause="Workers leaked memory.",
    )
    return memory, disk, dns, secret


def search(user, q, **kwargs):
    return list(selectors.postmortem_search(user=user, q=q, **kwargs))


def test_words_are_stemmed(world, library):
    memory, disk, dns, _ = library
    assert search(world.observer, "filling") == [disk]  # "filled"
    assert search(world.observer, "renewing domains") == [dns]


def test_the_best_match_comes_first(world, library):
    memory, disk, _, _ = library
    # both mention memory; the one with it in the title ranks first
    assert search(world.observer, "memory") == [memory, disk]


def test_web_search_syntax(world, library):
    memory, disk, dns, _ = library
    assert search(world.observer, "memory -rotation") == [memory]
    assert search(world.observer, '"session cache"') == [memory]
    assert set(search(world.observer, "memory or dns")) == {memory, disk, dns}


def test_drafts_are_found_by_their_team_only(world, library):
    memory, disk, _, secret = library
    assert secret not in search(world.observer, "memory")
    assert secret not in search(world.outsider, "workers")
    assert secret in search(world.author, "workers")


def test_timeline_and_action_items_are_searched(world, library):
    memory, _, dns, _ = library
    services.action_item_save(
        postmortem=dns,
        user=world.author,
        title="Automate certificate renewal",
        owner=world.peer,
        due_date=date(2026, 4, 1),
        reason="Follow-up",
    )
    assert search(world.observer, "certificates") == [dns]
    # the incident timeline: "Detected by the Prometheus Alertmanager integration"
    assert len(search(world.observer, "alertmanager")) == 3


def test_filters_combine_with_search(world, library):
    memory, disk, _, _ = library
    assert search(world.observer, "memory", start=date(2026, 3, 3)) == [disk]
    assert search(world.observer, "memory", team=world.bravo) == []
    assert search(world.observer, "memory", status="draft") == []


def test_nonsense_queries_are_harmless(world, library):
    for q in ["&&&", "!!", "'", '"', "-", "a & | b", "\\", "or", "x" * 300]:
        assert isinstance(search(world.observer, q), list)


def test_the_search_runs_a_fixed_number_of_queries(world, library, django_assert_num_queries):
    selectors.visible_postmortems(user=world.observer).exists()

    def run():
        rows = search(world.observer, "memory")
        for row in rows:
            shown = ([s.name for s in row.services.all()], row.team.name, row.author.profile.name)
            assert all(shown)
        return rows

    with django_assert_num_queries(2):
        assert len(run()) == 2
    for day in range(4, 8):
        published(
            world,
            draft(
                world,
                resolved_incident(world, at=T0 + timedelta(days=day), title=f"Memory {day}"),
            ),
        )
    with django_assert_num_queries(2):
        assert len(run()) == 6
