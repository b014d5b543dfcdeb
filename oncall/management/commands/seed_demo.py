"""Demo data for `make run`: two teams, six people on five continents, three services.

Idempotent: running it again finds what is there and adds only what is missing. It refuses to
run with DEBUG=0 unless --force is given, because the demo users share one known password.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from incidents import monitors
from incidents import services as incident_services
from incidents.models import EscalationPolicy, Integration, Service
from oncall import services
from oncall.models import ContactMethod, Role, Team, Urgency

DEMO_PASSWORD = "oncall-demo"
# The demo's HTTP check: nothing listens on port 9 (discard) here, so every check is refused and
# `make run` shows, within a minute, a real incident raised by the built-in monitor.
DEMO_CHECK_URL = "http://127.0.0.1:9/"

PEOPLE = [
    # username, display name, time zone, phone
    ("alice", "Alice Martin", "Europe/London", "+44 20 7946 0101"),
    ("bruno", "Bruno Costa", "America/Sao_Paulo", "+55 11 4000 0102"),
    ("chen", "Chen Wei", "Asia/Singapore", "+65 6000 0103"),
    ("dana", "Dana Whitfield", "America/New_York", "+1 212 555 0104"),
    ("emeka", "Emeka Okafor", "Africa/Lagos", "+234 1 700 0105"),
    ("fiona", "Fiona Hart", "Australia/Sydney", "+61 2 5550 0106"),
]
TEAMS = [
    (
        "Payments",
        [
            ("alice", Role.LEAD),
            ("bruno", Role.RESPONDER),
            ("chen", Role.RESPONDER),
            ("fiona", Role.OBSERVER),
        ],
    ),
    (
        "Platform",
        [
            ("dana", Role.LEAD),
            ("emeka", Role.RESPONDER),
            ("chen", Role.RESPONDER),
            ("fiona", Role.OBSERVER),
        ],
    ),
]


class Command(BaseCommand):
    help = "Load the demo teams, people, services and escalation policies (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--force", action="store_true", help="Seed even with DEBUG=0 (demo passwords!)."
        )

    def handle(self, *args, force: bool = False, **options):
        if not settings.DEBUG and not force:
            raise CommandError(
                "Refusing to load demo users with a known password while DEBUG=0; "
                "pass --force if this really is a demo instance."
            )
        with transaction.atomic():
            created = seed()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data ready ({created} new objects). "
                f"Sign in as alice / {DEMO_PASSWORD} (lead) or admin / {DEMO_PASSWORD}."
            )
        )


def seed() -> int:
    User = get_user_model()
    created = 0
    if not User.objects.filter(username="admin").exists():
        services.user_create(
            username="admin",
            email="admin@example.com",
            password=DEMO_PASSWORD,
            display_name="Portal admin",
            is_superuser=True,
        )
        created += 1
    people = {}
    for username, name, zone, phone in PEOPLE:
        user = User.objects.filter(username=username).first()
        if user is None:
            user = services.user_create(
                username=username,
                email=f"{username}@example.com",
                password=DEMO_PASSWORD,
                display_name=name,
                time_zone=zone,
                phone=phone,
            )
            email = services.contact_method_create(
                user=user,
                kind=ContactMethod.Kind.EMAIL,
                address=user.email,
                label="Work e-mail",
                verified=True,
            )
            sms = services.contact_method_create(
                user=user,
                kind=ContactMethod.Kind.SMS,
                address=phone,
                label="Mobile",
                verified=True,
            )
            services.notification_rule_create(
                user=user, contact_method=email, delay_minutes=0, urgency=Urgency.HIGH
            )
            services.notification_rule_create(
                user=user, contact_method=sms, delay_minutes=5, urgency=Urgency.HIGH
            )
            services.notification_rule_create(
                user=user, contact_method=email, delay_minutes=0, urgency=Urgency.LOW
            )
            created += 1
        people[username] = user

    teams = {}
    for team_name, members in TEAMS:
        team = Team.objects.filter(name=team_name).first()
        if team is None:
            team = services.team_create(
                name=team_name, members=[(people[u], role) for u, role in members]
            )
            created += 1
        teams[team_name] = team

    payments, platform = teams["Payments"], teams["Platform"]
    critical = EscalationPolicy.objects.filter(team=payments, name="Payments critical").first()
    if critical is None:
        critical = incident_services.escalation_policy_create(
            team=payments,
            name="Payments critical",
            repeat_count=2,
            description="On-call first, then the whole rotation, then the lead.",
        )
        incident_services.escalation_step_add(
            policy=critical, delay_minutes=5, schedules=payments.schedules.all()[:1]
        )
        incident_services.escalation_step_add(
            policy=critical, delay_minutes=10, users=[people["bruno"], people["chen"]]
        )
        incident_services.escalation_step_add(
            policy=critical, delay_minutes=15, users=[people["alice"]]
        )
        created += 1

    # The team's default service becomes the first demo service of each team.
    renames = [(payments, "Checkout API", critical), (platform, "Kubernetes cluster", None)]
    for team, name, policy in renames:
        default = Service.objects.filter(team=team, name=f"{team.name} default service").first()
        if default is not None:
            incident_services.service_update(service=default, name=name, escalation_policy=policy)
            created += 1
    if not Service.objects.filter(team=payments, name="Payments web").exists():
        service = incident_services.service_create(
            team=payments,
            name="Payments web",
            escalation_policy=EscalationPolicy.objects.get(team=payments, name="Default"),
            description="The customer-facing payment pages.",
        )
        incident_services.integration_create(
            service=service, name="Alertmanager", kind=Integration.Kind.ALERTMANAGER
        )
        created += 1
    web = Service.objects.get(team=payments, name="Payments web")
    if not web.integrations.filter(kind=Integration.Kind.HTTP_CHECK).exists():
        check = incident_services.integration_create(
            service=web,
            name="Home page check (demo: always fails)",
            kind=Integration.Kind.HTTP_CHECK,
        )
        # Checked every 30 s; the second failure in a row triggers the incident.
        monitors.http_check_create(
            integration=check, url=DEMO_CHECK_URL, interval_seconds=30, failures_before_alert=2
        )
        created += 1
    return created
