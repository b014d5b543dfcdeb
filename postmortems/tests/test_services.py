"""The postmortem workflow through its services: the draft filled from incidents, editing and
its validation, review, publishing and its refusals, amendments, action items."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
import time_machine

from incidents import workflow
from incidents.models import Channel
from postmortems import services
from postmortems.models import ActionItem, Amendment, Postmortem, ReviewRequest, TimelineItem
from postmortems.services import PostmortemError, PostmortemPermissionError

from .factories import T0, approved, draft, make_world, published, resolved_incident

pytestmark = pytest.mark.django_db


@pytest.fixture
def world():
    return make_world()


# --- the draft from incidents ------------------------------------------------------------------


def test_draft_is_filled_from_the_incident(world):
    incident = resolved_incident(world, minutes=45)
    pm = services.postmortem_create_from_incidents(user=world.author, incidents=[incident])

    assert pm.status == Postmortem.Status.DRAFT
    assert pm.team == world.alpha
    assert pm.author == world.author
    assert pm.title == "Disk full on db-1"
    assert pm.started_at == T0
    assert pm.ended_at == T0 + timedelta(minutes=45)
    assert pm.duration == timedelta(minutes=45)
    assert pm.time_zone == "Europe/Paris"  # the author's profile zone
    assert pm.urgency == "high"
    assert list(pm.services.all()) == [world.api]
    assert list(pm.incidents.all()) == [incident]
    # who was paged and who acknowledged
    assert "Affected services: API." in pm.impact
    assert "Paged: Ada Author." in pm.impact
    assert "Acknowledged by: Ada Author (2026-03-02 09:05 UTC)." in pm.impact

    items = list(pm.timeline_items.all())
    kinds = [i.kind for i in items]
    assert kinds[0] == TimelineItem.Kind.DETECTED
    first = items[0]
    assert first.at == T0
    assert first.detection == TimelineItem.Detection.MONITORING
    assert "Prometheus" in first.text and "Alertmanager" in first.text
    assert TimelineItem.Kind.ESCALATED in kinds  # the page to the author
    ack = next(i for i in items if i.text.startswith("Acknowledged"))
    assert ack.kind == TimelineItem.Kind.ACTION and ack.at == T0 + timedelta(minutes=5)
    note = next(i for i in items if i.text.startswith("Note"))
    assert "Deleted old WAL segments" in note.text
    assert items[-1].kind == TimelineItem.Kind.RESOLVED
    assert items[-1].at == T0 + timedelta(minutes=45)


def test_draft_from_several_incidents_spans_them_all(world):
    first = resolved_incident(world, at=T0, urgency="low", minutes=10)
    second = resolved_incident(
        world, at=T0 + timedelta(minutes=30), title="API slow", urgency="high", minutes=60
    )
    pm = services.postmortem_create_from_incidents(user=world.author, incidents=[second, first])
    assert pm.started_at == T0
    assert pm.ended_at == T0 + timedelta(minutes=90)
    assert pm.urgency == "high"  # one high-urgency incident makes it high
    assert pm.title == "Disk full on db-1"  # the first incident's
    texts = [i.text for i in pm.timeline_items.all()]
    assert any(t.startswith(f"Incident #{first.pk}:") for t in texts)
    assert any(t.startswith(f"Incident #{second.pk}:") for t in texts)


def test_low_urgency_incidents_give_a_low_urgency_postmortem(world):
    pm = services.postmortem_create_from_incidents(
        user=world.author, incidents=[resolved_incident(world, urgency="low")]
    )
    assert pm.urgency == "low"


def test_an_incident_gets_one_postmortem_only(world):
    incident = resolved_incident(world)
    first = services.postmortem_create_from_incidents(user=world.author, incidents=[incident])
    again = services.postmortem_create_from_incidents(user=world.peer, incidents=[incident])
    assert again == first
    assert Postmortem.objects.count() == 1


def test_an_open_incident_is_refused(world):
    incident = workflow.incident_trigger(service=world.api, title="Still burning", at=T0)
    with pytest.raises(PostmortemError, match="still triggered: resolve it"):
        services.postmortem_create_from_incidents(user=world.author, incidents=[incident])
    assert not Postmortem.objects.exists()


def test_incidents_of_two_teams_are_refused(world):
    mine = resolved_incident(world)
    theirs = resolved_incident(world, service=world.bravo_service, by=world.outsider)
    with pytest.raises(PostmortemError, match="one team only"):
        services.postmortem_create_from_incidents(user=world.root, incidents=[mine, theirs])


@pytest.mark.parametrize("who", ["observer", "outsider"])
def test_observers_and_outsiders_cannot_create(world, who):
    incident = resolved_incident(world)
    with pytest.raises(PostmortemPermissionError):
        services.postmortem_create_from_incidents(user=getattr(world, who), incidents=[incident])


def test_the_detected_item_names_the_monitor(world):
    from incidents.monitors import heartbeat_create, http_check_create
    from incidents.services import integration_create

    check = integration_create(service=world.api, name="Shop health", kind="http_check")
    http_check_create(integration=check, url="https://shop.example.com/health")
    beat = integration_create(service=world.api, name="Nightly backup", kind="heartbeat")
    heartbeat_create(integration=beat, interval_minutes=90, now=T0)
    texts = []
    for n, integration in enumerate((check, beat)):
        incident = workflow.incident_trigger(
            service=world.api, title=f"Down {n}", at=T0, integration=integration
        )
        workflow.incident_resolve(
            incident=incident, by=None, via=Channel.INTEGRATION, at=T0 + timedelta(minutes=5)
        )
        pm = services.postmortem_create_from_incidents(user=world.author, incidents=[incident])
        texts.append(pm.timeline_items.first().text)
    assert texts == [
        "First alert on API: Down 0. Detected by the HTTP check integration “Shop health”, "
        "checking https://shop.example.com/health for HTTP 200.",
        "First alert on API: Down 1. Detected by the Heartbeat integration “Nightly backup”: "
        "no heartbeat within 90 min.",
    ]


def test_a_manually_opened_incident_is_detected_by_an_engineer(world):
    incident = workflow.incident_trigger(
        service=world.api, title="Checkout errors", at=T0, actor=world.peer, channel=Channel.WEB
    )
    workflow.incident_resolve(
        incident=incident, by=world.peer, via=Channel.WEB, at=T0 + timedelta(minutes=3)
    )
    pm = services.postmortem_create_from_incidents(user=world.peer, incidents=[incident])
    first = pm.timeline_items.first()
    assert first.detection == TimelineItem.Detection.ENGINEER
    assert "Pat Peer" in first.text
    assert "Acknowledged by: nobody acknowledged." in pm.impact


# --- editing -----------------------------------------------------------------------------------


def test_any_lead_or_responder_of_the_team_edits_a_draft(world):
    pm = draft(world)
    services.postmortem_update(
        postmortem=pm,
        user=world.peer,
        impact="Checkout was down.",
        users_affected_percent=Decimal("12.5"),
    )
    pm.refresh_from_db()
    assert pm.impact == "Checkout was down."
    assert pm.users_affected_percent == Decimal("12.50")


@pytest.mark.parametrize("who", ["observer", "outsider"])
def test_observers_and_outsiders_cannot_edit(world, who):
    pm = draft(world)
    with pytest.raises(PostmortemPermissionError, match="leads and responders"):
        services.postmortem_update(postmortem=pm, user=getattr(world, who), title="Mine now")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"title": "   "}, "Give the postmortem a title"),
        ({"users_affected_percent": Decimal("120")}, "less than or equal to 100"),
        ({"time_zone": "Mars/Olympus"}, "not a known IANA time zone"),
        ({"ended_at": T0 - timedelta(hours=1)}, "ends before it starts"),
        ({"status": "published"}, "Unknown field"),
    ],
)
def test_bad_edits_are_refused_with_a_clear_message(world, fields, message):
    pm = draft(world)
    with pytest.raises(PostmortemError, match=message):
        services.postmortem_update(postmortem=pm, user=world.author, **fields)
    pm.refresh_from_db()
    assert pm.title == "Disk full on db-1"
    assert pm.status == Postmortem.Status.DRAFT


def test_services_of_another_team_are_refused(world):
    pm = draft(world)
    with pytest.raises(PostmortemError, match="team's own services"):
        services.postmortem_update(
            postmortem=pm, user=world.author, services=[world.api, world.bravo_service]
        )
    assert list(pm.services.all()) == [world.api]


def test_a_published_postmortem_is_not_edited_but_amended(world):
    pm = published(world)
    with pytest.raises(PostmortemError, match="amendment"):
        services.postmortem_update(postmortem=pm, user=world.author, impact="Quietly changed")
    pm.refresh_from_db()
    assert pm.impact != "Quietly changed"


# --- timeline items ----------------------------------------------------------------------------


def test_timeline_items_are_added_edited_and_deleted(world):
    pm = draft(world)
    count = pm.timeline_items.count()
    item = services.timeline_item_save(
        postmortem=pm,
        user=world.author,
        at=T0 + timedelta(minutes=12),
        kind="misleading",
        text="We suspected the load balancer first.",
    )
    assert pm.timeline_items.count() == count + 1
    services.timeline_item_save(
        postmortem=pm,
        user=world.peer,
        item=item,
        at=item.at,
        kind="misleading",
        text="We suspected the load balancer.",
    )
    item.refresh_from_db()
    assert item.text == "We suspected the load balancer."
    services.timeline_item_delete(item=item, user=world.author)
    assert pm.timeline_items.count() == count


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"at": T0 + timedelta(days=400)}, "more than a year away from the outage"),
        ({"at": T0 - timedelta(days=366)}, "more than a year away from the outage"),
        ({"text": "  "}, "one or two sentences"),
        ({"text": "x" * 2001}, "at most 2,000 characters"),
        ({"kind": "panic"}, "Kind must be one of"),
        ({"kind": "action", "detection": "customer"}, "“detected” item only"),
        ({"kind": "detected", "detection": "psychic"}, "How it was detected must be"),
    ],
)
def test_bad_timeline_items_are_refused(world, kwargs, message):
    pm = draft(world)
    count = pm.timeline_items.count()
    args = {"at": T0 + timedelta(minutes=1), "text": "Something happened.", "kind": "action"}
    args.update(kwargs)
    with pytest.raises(PostmortemError, match=message):
        services.timeline_item_save(postmortem=pm, user=world.author, **args)
    assert pm.timeline_items.count() == count


def test_a_customer_complaint_is_a_detection(world):
    pm = draft(world)
    item = services.timeline_item_save(
        postmortem=pm,
        user=world.author,
        at=T0 - timedelta(minutes=10),
        kind="detected",
        detection="customer",
        text="A customer wrote to support: checkout hangs.",
    )
    assert pm.timeline_items.first() == item  # ordered by time


# --- action items ------------------------------------------------------------------------------


def test_action_items_get_an_owner_from_the_team_and_a_due_date(world):
    pm = draft(world)
    item = services.action_item_save(
        postmortem=pm,
        user=world.author,
        title="Add monitoring on server memory",
        owner=world.peer,
        due_date=date(2026, 3, 20),
        url="https://tracker.example.com/OPS-1",
    )
    assert item.status == ActionItem.Status.OPEN
    assert item.url == "https://tracker.example.com/OPS-1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"due_date": date(2026, 3, 1)}, "before the incident started"),
        ({"title": " "}, "Say what is to be done"),
        ({"owner": "observer"}, "not a lead or responder of Alpha"),
        ({"owner": "outsider"}, "not a lead or responder of Alpha"),
        ({"url": "javascript:alert(1)"}, "valid URL"),
    ],
)
def test_bad_action_items_are_refused(world, kwargs, message):
    pm = draft(world)
    args = {"title": "Patch the Nginx server", "owner": world.peer, "due_date": date(2026, 4, 1)}
    if isinstance(kwargs.get("owner"), str):
        kwargs = {**kwargs, "owner": getattr(world, kwargs["owner"])}
    args.update(kwargs)
    with pytest.raises(PostmortemError, match=message):
        services.action_item_save(postmortem=pm, user=world.author, **args)
    assert not pm.action_items.exists()


def test_the_due_date_is_judged_in_the_postmortems_time_zone(world):
    # Started 2026-03-01 23:30 UTC = 2026-03-02 00:30 in Paris: due on 03-02 is allowed there.
    incident = resolved_incident(world, at=T0 - timedelta(hours=9, minutes=30))
    pm = draft(world, incident)
    assert pm.time_zone == "Europe/Paris"
    services.action_item_save(
        postmortem=pm,
        user=world.author,
        title="Alert earlier",
        owner=world.author,
        due_date=date(2026, 3, 2),
    )
    with pytest.raises(PostmortemError, match="before the incident started"):
        services.action_item_save(
            postmortem=pm,
            user=world.author,
            title="Alert earlier",
            owner=world.author,
            due_date=date(2026, 3, 1),
        )


def test_the_owner_or_a_lead_closes_an_action_item_even_after_publishing(world):
    pm = draft(world)
    item = services.action_item_save(
        postmortem=pm, user=world.author, title="Patch", owner=world.peer, due_date=date(2026, 4, 1)
    )
    published(world, pm)
    with pytest.raises(PostmortemPermissionError, match="owner or a lead"):
        services.action_item_close(item=item, user=world.author)
    with pytest.raises(PostmortemPermissionError):
        services.action_item_close(item=item, user=world.observer)
    with time_machine.travel(T0 + timedelta(days=3), tick=False):
        item = services.action_item_close(item=item, user=world.peer)
    assert item.status == ActionItem.Status.DONE
    assert item.done_by == world.peer
    assert item.done_at == T0 + timedelta(days=3)
    with pytest.raises(PostmortemError, match="already done"):
        services.action_item_close(item=item, user=world.peer)
    item = services.action_item_reopen(item=item, user=world.lead)
    assert item.status == ActionItem.Status.OPEN and item.done_at is None
    assert not Amendment.objects.exists()  # closing is progress, not a change of the report


def test_is_overdue(world):
    pm = draft(world)
    item = services.action_item_save(
        postmortem=pm, user=world.author, title="Patch", owner=world.peer, due_date=date(2026, 3, 9)
    )
    with time_machine.travel(date(2026, 3, 9)):
        assert not item.is_overdue
    with time_machine.travel(date(2026, 3, 10)):
        assert item.is_overdue
        item = services.action_item_close(item=item, user=world.peer)
        assert not item.is_overdue


# --- review ------------------------------------------------------------------------------------


def test_review_request_then_approval_then_publish(world):
    pm = draft(world)
    [review] = services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.IN_REVIEW
    assert review.state == ReviewRequest.State.PENDING
    services.review_decide(postmortem=pm, user=world.peer, decision="approved", note="Clear.")
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.APPROVED
    with time_machine.travel(T0 + timedelta(days=2), tick=False):
        pm = services.postmortem_publish(postmortem=pm, user=world.author)
    assert pm.status == Postmortem.Status.PUBLISHED
    assert pm.published_at == T0 + timedelta(days=2)
    assert pm.published_by == world.author
    assert pm.publish_override_reason == ""


def test_changes_requested_then_a_new_round(world):
    pm = draft(world)
    services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer, world.lead])
    services.review_decide(postmortem=pm, user=world.lead, decision="approved")
    services.review_decide(
        postmortem=pm, user=world.peer, decision="changes_requested", note="Timeline is thin."
    )
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.CHANGES_REQUESTED  # any request for changes wins
    with pytest.raises(PostmortemError, match="asked for changes"):
        services.postmortem_publish(postmortem=pm, user=world.author)
    services.postmortem_update(postmortem=pm, user=world.author, resolution="More detail.")
    services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    pm.refresh_from_db()
    review = pm.reviews.get(reviewer=world.peer)
    assert review.state == ReviewRequest.State.PENDING and review.decided_at is None
    assert pm.reviews.count() == 2  # reopened, not duplicated
    assert pm.status == Postmortem.Status.APPROVED  # the lead's approval still stands
    services.review_decide(postmortem=pm, user=world.peer, decision="approved")
    pm = services.postmortem_publish(postmortem=pm, user=world.author)
    assert pm.status == Postmortem.Status.PUBLISHED


@pytest.mark.parametrize(
    ("reviewer", "message"),
    [
        ("author", "can't review their own postmortem"),
        ("observer", "not a lead or responder of Alpha"),
        ("outsider", "not a lead or responder of Alpha"),
    ],
)
def test_bad_reviewers_are_refused(world, reviewer, message):
    pm = draft(world)
    with pytest.raises(PostmortemError, match=message):
        services.review_request(
            postmortem=pm, user=world.author, reviewers=[getattr(world, reviewer)]
        )
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.DRAFT


def test_no_reviewers_is_refused(world):
    with pytest.raises(PostmortemError, match="at least one reviewer"):
        services.review_request(postmortem=draft(world), user=world.author, reviewers=[])


def test_only_the_author_or_a_lead_asks_for_review(world):
    pm = draft(world)
    with pytest.raises(PostmortemPermissionError, match="author or a lead"):
        services.review_request(postmortem=pm, user=world.peer, reviewers=[world.lead])
    services.review_request(postmortem=pm, user=world.lead, reviewers=[world.peer])


def test_the_author_cannot_approve_their_own_postmortem(world):
    pm = draft(world)
    services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    with pytest.raises(PostmortemPermissionError, match="not its author"):
        services.review_decide(postmortem=pm, user=world.author, decision="approved")
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.IN_REVIEW


def test_someone_not_asked_cannot_decide(world):
    pm = draft(world)
    services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    with pytest.raises(PostmortemPermissionError, match="not asked"):
        services.review_decide(postmortem=pm, user=world.lead, decision="approved")
    with pytest.raises(PostmortemError, match="Decide"):
        services.review_decide(postmortem=pm, user=world.peer, decision="lgtm")


def test_comments_per_section_and_resolving_them(world):
    pm = draft(world)
    services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    comment = services.review_comment_add(
        postmortem=pm, user=world.peer, section="timeline", body="When was the DBA paged?"
    )
    assert comment.get_section_display() == "Timeline"
    with pytest.raises(PostmortemError, match="Section must be one of"):
        services.review_comment_add(postmortem=pm, user=world.peer, section="intro", body="x")
    with pytest.raises(PostmortemError, match="Write the comment"):
        services.review_comment_add(postmortem=pm, user=world.peer, section="summary", body=" ")
    with pytest.raises(PostmortemPermissionError):
        services.review_comment_add(
            postmortem=pm, user=world.observer, section="summary", body="Looks bad"
        )
    comment = services.review_comment_resolve(comment=comment, user=world.author)
    assert comment.resolved and comment.resolved_by == world.author
    services.review_decide(postmortem=pm, user=world.peer, decision="approved")
    services.postmortem_publish(postmortem=pm, user=world.author)
    with pytest.raises(PostmortemError, match="its review is over"):
        services.review_comment_add(postmortem=pm, user=world.peer, section="summary", body="x")


# --- publishing --------------------------------------------------------------------------------


def test_publishing_without_an_approval_is_refused(world):
    pm = draft(world)
    with pytest.raises(PostmortemError, match="at least one approval from someone other"):
        services.postmortem_publish(postmortem=pm, user=world.author)
    services.review_request(postmortem=pm, user=world.author, reviewers=[world.peer])
    with pytest.raises(PostmortemError, match="at least one approval from someone other"):
        services.postmortem_publish(postmortem=pm, user=world.author)
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.IN_REVIEW
    assert pm.published_at is None


def test_a_lead_publishes_without_approval_only_with_a_reason(world):
    pm = draft(world)
    with pytest.raises(PostmortemError, match="giving the reason") as refused:
        services.postmortem_publish(postmortem=pm, user=world.lead)
    assert refused.value.field == "reason"
    pm = services.postmortem_publish(
        postmortem=pm, user=world.lead, reason="The reviewer is on leave; customers asked."
    )
    assert pm.status == Postmortem.Status.PUBLISHED
    assert pm.publish_override_reason == "The reviewer is on leave; customers asked."
    assert pm.published_by == world.lead


def test_a_responder_who_is_not_the_author_cannot_publish(world):
    pm = approved(world)
    with pytest.raises(PostmortemPermissionError, match="author or a lead"):
        services.postmortem_publish(postmortem=pm, user=world.peer)
    with pytest.raises(PostmortemPermissionError):
        services.postmortem_publish(postmortem=pm, user=world.observer, reason="Because")


def test_an_incomplete_summary_is_not_published(world):
    pm = approved(world, draft(world, summary_root_cause="", impact=""))
    with pytest.raises(PostmortemError, match="fill in the impact, root cause"):
        services.postmortem_publish(postmortem=pm, user=world.author)


def test_publishing_twice_is_refused(world):
    pm = published(world)
    with pytest.raises(PostmortemError, match="already published"):
        services.postmortem_publish(postmortem=pm, user=world.lead, reason="again")


def test_approved_postmortems_may_still_be_edited(world):
    pm = approved(world)
    services.postmortem_update(postmortem=pm, user=world.author, resolution="Typo fixed.")
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.APPROVED


# --- amendments --------------------------------------------------------------------------------


def test_an_amendment_records_who_when_why_before_and_after(world):
    pm = published(world)
    old_impact = pm.impact
    with time_machine.travel(T0 + timedelta(days=10), tick=False):
        amendment = services.postmortem_amend(
            postmortem=pm,
            user=world.peer,
            reason="Support found more affected customers.",
            impact="Checkout was down for 30% of users.",
            users_affected_percent=Decimal("30"),
        )
    assert amendment.author == world.peer
    assert amendment.at == T0 + timedelta(days=10)
    assert amendment.reason == "Support found more affected customers."
    assert amendment.before == {"impact": old_impact, "users_affected_percent": None}
    assert amendment.after == {
        "impact": "Checkout was down for 30% of users.",
        "users_affected_percent": "30",
    }
    assert amendment.changed_fields == ["impact", "users_affected_percent"]
    pm.refresh_from_db()
    assert pm.impact == "Checkout was down for 30% of users."
    assert pm.status == Postmortem.Status.PUBLISHED
    services.postmortem_amend(postmortem=pm, user=world.lead, reason="Title", title="New title")
    assert [a.reason for a in pm.amendments.all()] == [
        "Support found more affected customers.",
        "Title",
    ]  # history kept, oldest first


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reason": "  ", "title": "x"}, "Say why"),
        ({"reason": "No-op"}, "Nothing changed"),
        ({"reason": "Same", "title": "Disk full on db-1"}, "Nothing changed"),
    ],
)
def test_bad_amendments_are_refused(world, kwargs, message):
    pm = published(world)
    with pytest.raises(PostmortemError, match=message):
        services.postmortem_amend(postmortem=pm, user=world.author, **kwargs)
    assert not pm.amendments.exists()


def test_drafts_are_not_amended_and_observers_never_amend(world):
    with pytest.raises(PostmortemError, match="Only a published postmortem"):
        services.postmortem_amend(
            postmortem=draft(world), user=world.author, reason="why", title="x"
        )
    pm = published(world, draft(world, resolved_incident(world, at=T0 + timedelta(days=1))))
    with pytest.raises(PostmortemPermissionError):
        services.postmortem_amend(postmortem=pm, user=world.observer, reason="why", title="x")


def test_item_changes_on_a_published_postmortem_need_a_reason_and_are_recorded(world):
    pm = published(world)
    with pytest.raises(PostmortemError, match="give a reason") as refused:
        services.action_item_save(
            postmortem=pm,
            user=world.author,
            title="Patch",
            owner=world.peer,
            due_date=date(2026, 4, 1),
        )
    assert refused.value.field == "reason"
    item = services.action_item_save(
        postmortem=pm,
        user=world.author,
        title="Patch the Nginx server",
        owner=world.peer,
        due_date=date(2026, 4, 1),
        reason="Found in the follow-up meeting.",
    )
    amendment = pm.amendments.get()
    assert amendment.before == {"action_items": []}
    assert amendment.after["action_items"][0]["title"] == "Patch the Nginx server"
    assert amendment.after["action_items"][0]["owner"] == "peer"
    first = pm.timeline_items.first()
    services.timeline_item_delete(item=first, user=world.author, reason="Duplicate line.")
    last = pm.amendments.order_by("-id").first()
    assert len(last.before["timeline_items"]) == len(last.after["timeline_items"]) + 1
    assert item.pk  # the item itself was saved


# --- concurrency (PostgreSQL) ------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_two_people_creating_at_once_get_one_postmortem(postgres_required):
    """Both click "Create postmortem" on the same incident at the same moment: the incident row
    lock makes the second wait and then find the first one's postmortem."""
    import threading

    from django.db import connection

    world = make_world()
    incident = resolved_incident(world)
    barrier = threading.Barrier(2, timeout=10)
    made, errors = [], []

    def worker(user):
        try:
            barrier.wait()
            made.append(
                services.postmortem_create_from_incidents(user=user, incidents=[incident]).pk
            )
        except Exception as error:  # reported below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(u,)) for u in (world.author, world.peer)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert not errors, errors
    assert Postmortem.objects.count() == 1
    assert made == [Postmortem.objects.get().pk] * 2
