"""Factories that build people and teams through the services, as the portal does."""

import factory

from oncall import services
from oncall.models import ContactMethod, Role


class UserFactory(factory.Factory):
    class Meta:
        model = dict  # built by user_create below

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda o: f"{o.username}@example.com")
    password = "correct-horse-battery"
    display_name = factory.LazyAttribute(lambda o: o.username.title())
    time_zone = "Europe/London"
    phone = ""

    @classmethod
    def _create(cls, model_class, **kwargs):
        return services.user_create(**kwargs)

    @classmethod
    def _build(cls, model_class, **kwargs):
        return services.user_create(**kwargs)


class TeamFactory(factory.Factory):
    """A team with one lead (made unless `lead=None` is passed), set up with its defaults."""

    class Meta:
        model = dict

    name = factory.Sequence(lambda n: f"Team {n}")
    lead = factory.SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class, name, lead=None, members=(), **kwargs):
        everyone = [(lead, Role.LEAD)] if lead is not None else []
        everyone += list(members)
        return services.team_create(name=name, members=everyone, **kwargs)

    _build = _create


def contact_method(user, kind=ContactMethod.Kind.EMAIL, address=None, **kwargs):
    return services.contact_method_create(
        user=user, kind=kind, address=address or user.email, **kwargs
    )
