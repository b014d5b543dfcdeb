"""The escalation engine: who is paged, when, and that nothing is paged twice."""

from datetime import UTC, datetime, timedelta

import pytest

from incidents import workflow
from incidents.models import Channel, Incident, Notification, Page, Service, TimelineEntry
from incidents.services import escalation_policy_create, escalation_step_add, service_create
from oncall import services as people
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory, contact_method

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


@pytest.fixture
def setup():
    lead, first, second = UserFactory(), UserFactory(), UserFactory()
    for user in (lead, first, second):
        method = contact_method(user)
        people.notification_rule_create(
            user=user, contact_method=method, delay_minutes=0, urgency="high"
        )
    team = TeamFactory(lead=lead, members=[(first, Role.RESPONDER), (second, Role.RESPONDER)])
    policy = escalation_policy_create(team=team, name="Two steps", repeat_count=1)
    escalation_step_add(policy=policy, delay_minutes=10, users=[first])
    escalation_step_add(policy=policy, delay_minutes=10, users=[second])
    service = service_create(team=team, name="API", escalation_policy=policy)
    return service, lead, first, second


def trigger(service, at=T0):
    return workflow.incident_trigger(service=service, title="Disk full", at=at)


def paged(incident):
    return list(Page.objects.filter(incident=incident).values_list("user_id", "step", "loop"))


def test_trigger_pages_step_one_then_step_two_after_its_delay(setup):
    service, _, first, second = setup
    incident = trigger(service)
    workflow.incident_advance(incident=incident, now=T0)
    assert paged(incident) == [(first.pk, 0, 0)]
    assert Notification.objects.filter(incident=incident, user=first).count() == 1
    # Not due yet: nothing happens, however often it is asked.
    assert workflow.incident_advance(incident=incident, now=T0 + timedelta(minutes=9)) is None
    workflow.incident_advance(incident=incident, now=T0 + timedelta(minutes=10))
    assert paged(incident) == [(first.pk, 0, 0), (second.pk, 1, 0)]


def test_loops_repeat_then_stop(setup):
    service, _, first, second = setup
    incident = trigger(service)
    for minutes in range(0, 60, 10):
        workflow.incident_advance(incident=incident, now=T0 + timedelta(minutes=minutes))
    assert paged(incident) == [
        (first.pk, 0, 0),
        (second.pk, 1, 0),
        (first.pk, 0, 1),
        (second.pk, 1, 1),
    ]
    incident.refresh_from_db()
    assert incident.next_escalation_at is None
    assert incident.status == Incident.Status.TRIGGERED


def test_acknowledge_stops_escalation_and_skips_pending_pages(setup):
    service, _, first, _ = setup
    incident = trigger(service)
    workflow.incident_advance(incident=incident, now=T0)
    Notification.objects.update(due_at=T0 + timedelta(minutes=5))  # not sent yet
    workflow.incident_acknowledge(
        incident=incident, by=first, via=Channel.WEB, at=T0 + timedelta(minutes=1)
    )
    assert workflow.incident_advance(incident=incident, now=T0 + timedelta(minutes=30)) is None
    assert paged(incident) == [(first.pk, 0, 0)]
    assert set(Notification.objects.values_list("status", flat=True)) == {"skipped"}
    incident.refresh_from_db()
    assert incident.acknowledged_at == T0 + timedelta(minutes=1)
    with pytest.raises(workflow.IncidentStateError):
        workflow.incident_acknowledge(incident=incident, by=first, via=Channel.WEB, at=T0)


def test_step_reaching_nobody_moves_on_at_once(setup):
    service, _, first, second = setup
    first.contact_methods.all().delete()
    incident = trigger(service)
    workflow.incident_advance(incident=incident, now=T0)
    assert paged(incident) == [(second.pk, 1, 0)]
    assert TimelineEntry.objects.filter(incident=incident, kind="warning").exists()


def test_no_step_reaches_anybody_then_the_leads_are_paged(setup):
    service, lead, first, second = setup
    for user in (first, second):
        user.contact_methods.all().delete()
    incident = trigger(service)
    workflow.incident_advance(incident=incident, now=T0)
    assert paged(incident) == [(lead.pk, workflow.LEADS_FALLBACK_STEP, 0)]


def test_policy_edits_do_not_change_a_running_escalation(setup):
    service, _, first, second = setup
    incident = trigger(service)
    service.escalation_policy.steps.all().delete()
    workflow.incident_advance(incident=incident, now=T0)
    assert paged(incident) == [(first.pk, 0, 0)]


def test_maintenance_records_but_pages_nobody(setup):
    service, _, _, _ = setup
    Service.objects.filter(pk=service.pk).update(status=Service.Status.MAINTENANCE)
    service.refresh_from_db()
    incident = trigger(service)
    workflow.incident_advance(incident=incident, now=T0 + timedelta(hours=1))
    assert paged(incident) == []


def test_manual_escalation_jumps_to_a_chosen_step(setup):
    service, _, first, second = setup
    incident = trigger(service)
    workflow.incident_advance(incident=incident, now=T0)
    workflow.incident_escalate(
        incident=incident, by=first, via=Channel.WEB, at=T0 + timedelta(minutes=1), to_step=1
    )
    workflow.incident_advance(incident=incident, now=T0 + timedelta(minutes=1))
    assert paged(incident) == [(first.pk, 0, 0), (second.pk, 1, 0)]


def test_ack_timeout_triggers_again_from_step_one(setup):
    service, _, first, _ = setup
    Service.objects.filter(pk=service.pk).update(ack_timeout_minutes=30)
    service.refresh_from_db()
    incident = trigger(service)
    workflow.incident_advance(incident=incident, now=T0)
    workflow.incident_acknowledge(
        incident=incident, by=first, via=Channel.WEB, at=T0 + timedelta(minutes=2)
    )
    assert (
        workflow.incident_unacknowledge_if_due(incident=incident, now=T0 + timedelta(minutes=20))
        is None
    )
    again = workflow.incident_unacknowledge_if_due(
        incident=incident, now=T0 + timedelta(minutes=32)
    )
    assert again.status == Incident.Status.TRIGGERED
    assert again.acknowledged_at == T0 + timedelta(minutes=2)  # the milestone stays
    assert again.pk in workflow.incidents_due(T0 + timedelta(minutes=32))
