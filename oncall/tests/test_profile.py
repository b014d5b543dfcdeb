"""The profile page: time zone, phone, contact methods and notification rules, each person's own."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from oncall import services
from oncall.models import ContactMethod, NotificationRule, Profile, Urgency
from oncall.tests.factories import UserFactory, contact_method

pytestmark = pytest.mark.django_db

PROFILE = "/profile/"
ADD_METHOD = "/profile/contact-methods/add/"


@pytest.fixture
def ada(client):
    user = UserFactory(username="ada", display_name="Ada", time_zone="Europe/London")
    client.force_login(user)
    return user


def profile_data(**overrides):
    data = {"display_name": "Ada L.", "time_zone": "Europe/London", "phone": ""}
    data.update(overrides)
    return data


def method_data(kind, address, label=""):
    return {"method-kind": kind, "method-address": address, "method-label": label}


def rule_data(urgency, method, delay=0):
    return {f"{urgency}-delay_minutes": str(delay), f"{urgency}-contact_method": str(method.pk)}


def test_url_names():
    assert reverse("profile:detail") == PROFILE
    assert reverse("profile:contact_method_add") == ADD_METHOD
    assert (
        reverse("profile:contact_method_delete", args=[3]) == "/profile/contact-methods/3/delete/"
    )
    assert reverse("profile:rule_add", args=["high"]) == "/profile/rules/high/add/"
    assert reverse("profile:rule_delete", args=[3]) == "/profile/rules/3/delete/"


@pytest.mark.parametrize(
    "url", [PROFILE, ADD_METHOD, "/profile/rules/high/add/", "/profile/rules/1/delete/"]
)
def test_anonymous_is_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_profile_page_shows_current_settings(client, ada):
    response = client.get(PROFILE)
    assert response.status_code == 200
    html = response.content.decode()
    assert '<option value="Europe/London" selected>Europe/London</option>' in html
    assert '<optgroup label="Europe">' in html
    assert '<label for="id_time_zone">Time zone</label>' in html
    assert "You have no contact method yet" in html


def test_profile_page_queries_do_not_grow(client, ada, django_assert_num_queries):
    def grow():
        for n in range(3):
            method = contact_method(ada, address=f"ada{n}-{ContactMethod.objects.count()}@x.org")
            for urgency in Urgency.values:
                services.notification_rule_create(
                    user=ada, contact_method=method, delay_minutes=n, urgency=urgency
                )

    grow()
    # session, user, profile, roles; methods, rules, memberships
    with django_assert_num_queries(8):
        client.get(PROFILE)
    grow()
    with django_assert_num_queries(8):
        client.get(PROFILE)


# --- display name, time zone, phone -----------------------------------------------------------


def test_edit_time_zone(client, ada):
    response = client.post(PROFILE, profile_data(time_zone="America/Sao_Paulo"))
    assert response.status_code == 302
    assert response["Location"] == PROFILE
    profile = Profile.objects.get(user=ada)
    assert profile.time_zone == "America/Sao_Paulo"
    assert profile.display_name == "Ada L."
    page = client.get(PROFILE).content.decode()
    assert "Profile saved. Times are now shown in America/Sao_Paulo." in page
    assert '<span class="zone">America/Sao_Paulo</span>' in page


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "", "europe/london", "Europe/London "])
def test_unknown_time_zone_is_a_400_and_nothing_is_saved(client, ada, zone):
    response = client.post(PROFILE, profile_data(time_zone=zone, display_name="Changed"))
    assert response.status_code == 400
    html = response.content.decode()
    assert 'aria-invalid="true"' in html
    assert "There is a problem" in html
    if zone:
        assert "is not a known IANA time zone" in html
    else:
        assert "Choose your time zone." in html
    assert 'value="Changed"' in html  # what was typed is kept on the page
    assert Profile.objects.get(user=ada).time_zone == "Europe/London"
    assert Profile.objects.get(user=ada).display_name == "Ada"


def test_phone_is_validated_and_normalized(client, ada):
    bad = client.post(PROFILE, profile_data(phone="020 7946 0958"))
    assert bad.status_code == 400
    assert "international format" in bad.content.decode()
    assert Profile.objects.get(user=ada).phone == ""

    good = client.post(PROFILE, profile_data(phone="+44 (20) 7946-0958"))
    assert good.status_code == 302
    assert Profile.objects.get(user=ada).phone == "+442079460958"


def test_profile_is_created_for_a_user_who_has_none(client):
    bare = get_user_model().objects.create_user(username="bare", password="x")
    client.force_login(bare)
    assert client.get(PROFILE).status_code == 200
    assert Profile.objects.filter(user=bare, time_zone="UTC").exists()


# --- contact methods --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "address", "stored"),
    [
        ("email", "ada@example.com", "ada@example.com"),
        ("sms", "+44 7700 900123", "+447700900123"),
        ("voice", "+1 (212) 555-0104", "+12125550104"),
        ("slack", "https://hooks.slack.com/services/T000/B000/XXXX", None),
        ("webhook", "https://example.com/hooks/oncall", None),
    ],
)
def test_add_contact_method_of_each_kind(client, ada, kind, address, stored):
    response = client.post(ADD_METHOD, method_data(kind, address, label="Mine"))
    assert response.status_code == 302
    assert response["Location"] == f"{PROFILE}#contact-methods"
    method = ContactMethod.objects.get(user=ada)
    assert (method.kind, method.address, method.label) == (kind, stored or address, "Mine")
    page = client.get(PROFILE).content.decode()
    assert "Contact method added" in page
    assert method.address in page


@pytest.mark.parametrize(
    ("kind", "address", "message"),
    [
        ("email", "ada-at-example.com", "Enter a valid e-mail address"),
        ("sms", "07700 900123", "international format"),
        ("voice", "+12", "international format"),
        ("slack", "hooks.slack.com/services/T000", "full http:// or https:// URL"),
        ("webhook", "ftp://example.com/hook", "full http:// or https:// URL"),
        ("email", "", "This field is required."),
        ("pigeon", "ada@example.com", "Select a valid choice"),
    ],
)
def test_invalid_contact_address_is_a_400_next_to_the_field(client, ada, kind, address, message):
    response = client.post(ADD_METHOD, method_data(kind, address))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert 'aria-invalid="true"' in html
    if address:
        assert f'value="{address}"' in html
    assert not ContactMethod.objects.filter(user=ada).exists()


def test_duplicate_contact_method_is_a_400(client, ada):
    contact_method(ada, address="ada@example.com")
    response = client.post(ADD_METHOD, method_data("email", "ada@example.com"))
    assert response.status_code == 400
    assert "You already have this address for this kind." in response.content.decode()
    assert ContactMethod.objects.filter(user=ada).count() == 1


def test_invalid_method_keeps_what_is_saved(client, ada):
    """A failed add re-renders the page with the methods and rules already saved."""
    method = contact_method(ada, address="ada@example.com")
    services.notification_rule_create(
        user=ada, contact_method=method, delay_minutes=5, urgency=Urgency.HIGH
    )
    response = client.post(ADD_METHOD, method_data("sms", "nope"))
    assert response.status_code == 400
    html = response.content.decode()
    assert "ada@example.com" in html
    assert "5 minutes after I am paged" in html


def test_delete_own_contact_method_and_its_rules(client, ada):
    method = contact_method(ada)
    services.notification_rule_create(
        user=ada, contact_method=method, delay_minutes=0, urgency=Urgency.HIGH
    )
    response = client.post(reverse("profile:contact_method_delete", args=[method.pk]))
    assert response.status_code == 302
    assert not ContactMethod.objects.filter(pk=method.pk).exists()
    assert not NotificationRule.objects.filter(user=ada).exists()
    assert "and the 1 notification rule that used it" in client.get(PROFILE).content.decode()


def test_cannot_delete_someone_elses_contact_method(client, ada):
    other = UserFactory()
    theirs = contact_method(other)
    response = client.post(reverse("profile:contact_method_delete", args=[theirs.pk]))
    assert response.status_code == 404
    assert ContactMethod.objects.filter(pk=theirs.pk).exists()


def test_delete_needs_a_post(client, ada):
    method = contact_method(ada)
    response = client.get(reverse("profile:contact_method_delete", args=[method.pk]))
    assert response.status_code == 405
    assert ContactMethod.objects.filter(pk=method.pk).exists()


# --- notification rules -----------------------------------------------------------------------


@pytest.mark.parametrize("urgency", ["high", "low"])
def test_add_and_delete_rules_per_urgency(client, ada, urgency):
    other_urgency = "low" if urgency == "high" else "high"
    email = contact_method(ada, address="ada@example.com")
    sms = contact_method(ada, kind="sms", address="+447700900123", label="Mobile")

    for method, delay in [(sms, 10), (email, 0), (sms, 3)]:
        response = client.post(
            reverse("profile:rule_add", args=[urgency]), rule_data(urgency, method, delay)
        )
        assert response.status_code == 302
        assert response["Location"] == f"{PROFILE}#rules-{urgency}"

    rules = NotificationRule.objects.filter(user=ada)
    assert {r.urgency for r in rules} == {urgency}
    page = client.get(PROFILE)
    section = next(s for s in page.context["rule_sections"] if s["urgency"] == urgency)
    assert [r.delay_minutes for r in section["rules"]] == [0, 3, 10]  # ordered by delay
    other = next(s for s in page.context["rule_sections"] if s["urgency"] == other_urgency)
    assert other["rules"] == []

    first = section["rules"][0]
    response = client.post(reverse("profile:rule_delete", args=[first.pk]))
    assert response.status_code == 302
    assert response["Location"] == f"{PROFILE}#rules-{urgency}"
    assert list(rules.order_by("delay_minutes").values_list("delay_minutes", flat=True)) == [3, 10]


@pytest.mark.parametrize(
    ("delay", "message"),
    [
        ("-1", "greater than or equal to 0"),
        ("abc", "Enter a whole number."),
        ("", "This field is required."),
        ("100000", "less than or equal to 1440"),
    ],
)
def test_invalid_rule_delay_is_a_400(client, ada, delay, message):
    method = contact_method(ada)
    data = rule_data("high", method)
    data["high-delay_minutes"] = delay
    response = client.post(reverse("profile:rule_add", args=["high"]), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not NotificationRule.objects.exists()


def test_rule_with_someone_elses_contact_method_is_refused(client, ada):
    contact_method(ada)
    theirs = contact_method(UserFactory())
    response = client.post(reverse("profile:rule_add", args=["high"]), rule_data("high", theirs))
    assert response.status_code == 400
    assert "Choose one of your own contact methods." in response.content.decode()
    assert not NotificationRule.objects.exists()


def test_duplicate_rule_is_a_400(client, ada):
    method = contact_method(ada)
    url = reverse("profile:rule_add", args=["low"])
    assert client.post(url, rule_data("low", method, 5)).status_code == 302
    response = client.post(url, rule_data("low", method, 5))
    assert response.status_code == 400
    assert "You already have this rule." in response.content.decode()
    assert NotificationRule.objects.count() == 1


def test_unknown_urgency_is_a_404(client, ada):
    method = contact_method(ada)
    response = client.post("/profile/rules/medium/add/", rule_data("medium", method))
    assert response.status_code == 404


def test_cannot_delete_someone_elses_rule(client, ada):
    other = UserFactory()
    rule = services.notification_rule_create(
        user=other, contact_method=contact_method(other), delay_minutes=0, urgency=Urgency.HIGH
    )
    response = client.post(reverse("profile:rule_delete", args=[rule.pk]))
    assert response.status_code == 404
    assert NotificationRule.objects.filter(pk=rule.pk).exists()


def test_rule_form_waits_for_a_contact_method(client, ada):
    html = client.get(PROFILE).content.decode()
    assert "Add a contact method above first" in html
    assert "Add high urgency rule" not in html


def test_api_token_is_shown_once_and_a_new_one_replaces_it(client):
    from rest_framework.authtoken.models import Token

    user = UserFactory()
    client.force_login(user)
    response = client.post("/profile/api-token/")
    assert response.status_code == 200
    first = Token.objects.get(user=user).key
    assert first in response.content.decode()
    page = client.get("/profile/").content.decode()
    assert first not in page and "You have a token" in page

    response = client.post("/profile/api-token/")
    second = Token.objects.get(user=user).key
    assert second != first and second in response.content.decode()
    api = client.__class__()
    assert api.get("/api/v1/oncall/", HTTP_AUTHORIZATION=f"Token {first}").status_code == 401
    assert api.get("/api/v1/oncall/", HTTP_AUTHORIZATION=f"Token {second}").status_code == 200
