"""Building blocks for postmortem tests, made through the services as the portal makes them:
a team with a lead, two responders and an observer, a resolved incident, a draft, a published
postmortem."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.contrib.auth.models import AbstractUser

from incidents import workflow
from incidents.models import Channel, Incident, Integration, Service
from incidents.services import (
    escalation_policy_create,
    escalation_step_add,
    integration_create,
    service_create,
)
from oncall import services as people
from oncall.models import Role, Team
from oncall.tests.factories import TeamFactory, UserFactory, contact_method
from postmortems import services
from postmortems.models import Postmortem

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@dataclass
class World:
    lead: AbstractUser
    author: AbstractUser  # a responder of Alpha, who acknowledges and resolves
    peer: AbstractUser  # another responder of Alpha, the reviewer
    observer: AbstractUser  # an executive: observer of Alpha
    outsider: AbstractUser  # lead of Bravo
    root: AbstractUser
    alpha: Team
    bravo: Team
    api: Service
    events: Integration
    bravo_service: Service


def make_world() -> World:
    lead = UserFactory(username="lead")
    author = UserFactory(username="author", display_name="Ada Author", time_zone="Europe/Paris")
    peer = UserFactory(username="peer", display_name="Pat Peer")
    observer = UserFactory(username="observer", display_name="Olive Exec")
    outsider = UserFactory(username="outsider")
    root = UserFactory(username="root", is_superuser=True)
    for user in (lead, author, peer):
        method = contact_method(user)
        people.notification_rule_create(
            user=user, contact_method=method, delay_minutes=0, urgency="high"
        )
    alpha = TeamFactory(
        name="Alpha",
        lead=lead,
        members=[(author, Role.RESPONDER), (peer, Role.RESPONDER), (observer, Role.OBSERVER)],
    )
    bravo = TeamFactory(name="Bravo", lead=outsider)
    policy = escalation_policy_create(team=alpha, name="Author first")
    escalation_step_add(policy=policy, delay_minutes=10, users=[author])
    api = service_create(team=alpha, name="API", escalation_policy=policy)
    events = integration_create(service=api, name="Prometheus", kind="alertmanager")
    return World(
        lead=lead,
        author=author,
        peer=peer,
        observer=observer,
        outsider=outsider,
        root=root,
        alpha=alpha,
        bravo=bravo,
        api=api,
        events=events,
        bravo_service=Service.objects.get(team=bravo),
    )


def resolved_incident(
    world: World,
    *,
    at: datetime = T0,
    title: str = "Disk full on db-1",
    urgency: str = "high",
    service: Service | None = None,
    minutes: int = 45,
    note: str = "Deleted old WAL segments",
    by: AbstractUser | None = None,
) -> Incident:
    """An incident detected by the Prometheus integration, paged to the author, acknowledged
    after 5 minutes, a note, resolved after `minutes`."""
    service = service or world.api
    integration = world.events if service == world.api else None
    by = by or world.author
    incident = workflow.incident_trigger(
        service=service,
        title=title,
        at=at,
        integration=integration,
        urgency=urgency,
        dedup_key=f"{title}-{at.isoformat()}",
    )
    workflow.incident_advance(incident=incident, now=at)
    workflow.incident_acknowledge(
        incident=incident, by=by, via=Channel.WEB, at=at + timedelta(minutes=5)
    )
    if note:
        workflow.incident_add_note(
            incident=incident, by=by, via=Channel.WEB, at=at + timedelta(minutes=20), text=note
        )
    workflow.incident_resolve(
        incident=incident, by=by, via=Channel.WEB, at=at + timedelta(minutes=minutes)
    )
    incident.refresh_from_db()
    return incident


def draft(world: World, incident: Incident | None = None, **fields) -> Postmortem:
    """A draft from a resolved incident, with the summary's root cause filled in."""
    incident = incident or resolved_incident(world)
    postmortem = services.postmortem_create_from_incidents(user=world.author, incidents=[incident])
    fields.setdefault("summary_root_cause", "The WAL volume filled up.")
    return services.postmortem_update(postmortem=postmortem, user=world.author, **fields)


def approved(world: World, postmortem: Postmortem | None = None) -> Postmortem:
    postmortem = postmortem or draft(world)
    services.review_request(postmortem=postmortem, user=world.author, reviewers=[world.peer])
    services.review_decide(postmortem=postmortem, user=world.peer, decision="approved")
    postmortem.refresh_from_db()
    return postmortem


def published(world: World, postmortem: Postmortem | None = None) -> Postmortem:
    postmortem = approved(world, postmortem)
    return services.postmortem_publish(postmortem=postmortem, user=world.author)
