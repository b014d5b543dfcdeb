"""What the database itself guarantees about postmortems, whatever code writes to it, and the
small derived properties."""

from datetime import date, timedelta

import pytest
from django.db import IntegrityError, transaction

from postmortems import services
from postmortems.models import (
    ActionItem,
    Amendment,
    Postmortem,
    PostmortemReminder,
    ReviewRequest,
    TimelineItem,
)

from .factories import T0, draft, make_world, published

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


def refused(update) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        update()


def test_the_database_refuses_impossible_postmortems(world):
    pm = draft(world)
    rows = Postmortem.objects.filter(pk=pm.pk)
    refused(lambda: rows.update(ended_at=T0 - timedelta(minutes=1)))
    refused(lambda: rows.update(status="lost"))
    refused(lambda: rows.update(status="published"))  # published needs published_at
    refused(lambda: rows.update(users_affected_percent=101))
    refused(lambda: rows.update(users_affected_percent=-1))


def test_one_review_request_per_reviewer(world):
    pm = draft(world)
    services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    refused(
        lambda: ReviewRequest.objects.create(postmortem=pm, reviewer=world.peer, requested_at=T0)
    )


def test_an_amendment_needs_a_reason(world):
    pm = published(world)
    refused(lambda: Amendment.objects.create(postmortem=pm, author=world.lead, at=T0, reason=""))


def test_a_done_action_item_has_its_time_and_statuses_are_known(world):
    pm = draft(world)
    item = services.action_item_save(
        postmortem=pm,
        user=world.author,
        title="Patch",
        owner=world.peer,
        due_date=date(2026, 4, 1),
    )
    rows = ActionItem.objects.filter(pk=item.pk)
    refused(lambda: rows.update(status="done"))
    refused(lambda: rows.update(status="later"))


def test_timeline_item_kinds_and_detections_are_known(world):
    pm = draft(world)
    rows = TimelineItem.objects.filter(postmortem=pm)
    refused(lambda: rows.update(kind="panic"))
    refused(lambda: rows.update(detection="psychic"))


def test_a_reminder_is_stored_once_per_thing_person_and_day(world):
    PostmortemReminder.objects.create(
        kind="review", object_id=1, recipient=world.peer, sent_on=T0.date(), sent_at=T0
    )
    refused(
        lambda: PostmortemReminder.objects.create(
            kind="review", object_id=1, recipient=world.peer, sent_on=T0.date(), sent_at=T0
        )
    )
    PostmortemReminder.objects.create(
        kind="review",
        object_id=1,
        recipient=world.peer,
        sent_on=T0.date() + timedelta(days=1),
        sent_at=T0,
    )


def test_duration_and_flags(world):
    pm = draft(world)
    assert pm.duration == timedelta(minutes=45)
    assert pm.is_editable and not pm.is_published
    pm.ended_at = None
    assert pm.duration is None
    pub = published(world)
    assert pub.is_published and not pub.is_editable
    assert str(pub) == "Disk full on db-1"
