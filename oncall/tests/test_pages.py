"""The base layout, signing in and out, and the error pages."""

import re

import pytest
from django.contrib.auth import get_user_model
from django.test import RequestFactory
from django.urls import path, reverse

from oncall import services, views
from oncall.models import Role
from oncall.tests.factories import TeamFactory, UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def lead():
    user = UserFactory(username="ada", display_name="Ada Lovelace", time_zone="Europe/Paris")
    TeamFactory(name="Payments", lead=user)
    return user


# --- signing in and out -----------------------------------------------------------------------


def test_login_page_has_labelled_fields(client):
    response = client.get(reverse("login"))
    assert response.status_code == 200
    html = response.content.decode()
    assert '<label for="id_username">Username</label>' in html
    assert '<label for="id_password">Password</label>' in html
    assert 'autocomplete="current-password"' in html


def test_login_with_a_wrong_password_shows_the_error(client, lead):
    response = client.post(reverse("login"), {"username": "ada", "password": "nope"})
    assert response.status_code == 200
    html = response.content.decode()
    assert 'role="alert"' in html
    assert "Please enter a correct username and password" in html
    assert "_auth_user_id" not in client.session


def test_login_lands_on_home(client, lead):
    response = client.post(reverse("login"), {"username": "ada", "password": PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("home") == "/"
    assert client.get("/").status_code == 200


def test_login_goes_to_next(client, lead):
    response = client.post(
        reverse("login"), {"username": "ada", "password": PASSWORD, "next": "/reports/"}
    )
    assert response["Location"] == "/reports/"


def test_logout_is_a_post_and_signs_out(client, lead):
    client.force_login(lead)
    html = client.get("/").content.decode()
    assert re.search(
        r'<form class="account__logout" method="post" action="/accounts/logout/">', html
    )
    assert client.get(reverse("logout")).status_code == 405  # GET does not sign out
    assert "_auth_user_id" in client.session
    response = client.post(reverse("logout"))
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert "_auth_user_id" not in client.session
    assert client.get("/").status_code == 302


# --- the base layout --------------------------------------------------------------------------


def test_layout_landmarks_skip_link_viewport_and_zone(client, lead):
    client.force_login(lead)
    html = client.get("/").content.decode()
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert '<a class="skip-link" href="#main">Skip to main content</a>' in html
    assert '<main id="main"' in html
    assert '<nav class="main-nav" aria-label="Main">' in html
    assert "<header" in html and "<footer" in html
    assert '<a class="brand" href="/">Oncall</a>' in html
    assert "Ada Lovelace" in html
    assert f'href="{reverse("profile:detail")}"' in html
    assert 'Times are shown in <span class="zone">Europe/Paris</span>' in html
    assert 'href="/static/oncall/site.css"' in html


def test_nav_marks_the_current_section(client, lead):
    client.force_login(lead)
    html = client.get("/incidents/").content.decode()
    assert '<a href="/incidents/" aria-current="page">Incidents</a>' in html
    assert '<a href="/schedules/">Schedules</a>' in html
    assert '<a href="/services/">Services</a>' in html
    assert '<a href="/reports/">Reports</a>' in html
    profile_html = client.get(reverse("profile:detail")).content.decode()
    assert '<a href="/profile/" aria-current="page">Profile</a>' in profile_html


def test_nav_admin_link_for_leads_only(client, lead):
    responder = UserFactory()
    services.membership_set(team=lead.teams.get(), user=responder, role=Role.RESPONDER)
    client.force_login(lead)
    assert '<a href="/admin/">Admin</a>' in client.get("/").content.decode()
    client.force_login(responder)
    assert '<a href="/admin/">Admin</a>' not in client.get("/").content.decode()


def test_nav_hides_sections_that_do_not_exist_yet(client, lead, monkeypatch):
    from oncall import context_processors

    sections = [*context_processors.SECTIONS, ("Runbooks", "runbooks:list", True)]
    monkeypatch.setattr(context_processors, "SECTIONS", sections)
    client.force_login(lead)
    html = client.get("/").content.decode()
    assert "Runbooks" not in html
    assert '<a href="/postmortems/">Postmortems</a>' in html  # routed since issue #6


def test_phone_menu_is_a_details_toggle_before_the_nav(client, lead):
    client.force_login(lead)
    html = client.get("/").content.decode()
    toggle = html.index('<details class="menu-toggle">')
    assert toggle < html.index('<div class="site-nav" id="site-nav">')
    assert "<script" not in html.split("</head>")[1]  # nothing inline; the menu needs no JS


def test_messages_are_shown(client, lead):
    client.force_login(lead)
    response = client.post(
        reverse("profile:detail"),
        {"display_name": "Ada", "time_zone": "Europe/Paris", "phone": ""},
        follow=True,
    )
    assert 'class="message message--success" role="status"' in response.content.decode()


def test_user_without_profile_still_gets_pages(client):
    bare = get_user_model().objects.create_user(username="bare", password=PASSWORD)
    client.force_login(bare)
    response = client.get("/")
    assert response.status_code == 200
    assert "bare" in response.content.decode()


# --- error pages --------------------------------------------------------------------------------


def test_404_page(client, lead):
    client.force_login(lead)
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    assert '<nav class="main-nav" aria-label="Main">' in html


def test_404_page_for_anonymous(client):
    response = client.get("/no/such/page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()


def test_403_page_explains(client):
    observer = UserFactory()
    TeamFactory(members=[(observer, Role.OBSERVER)])
    client.force_login(observer)
    response = client.get("/incidents/")
    assert response.status_code == 403
    html = response.content.decode()
    assert "You can’t open this page" in html
    assert "Observers read their teams" in html


def test_500_page_needs_no_database_nor_context_processors(django_assert_num_queries):
    request = RequestFactory().get("/")
    with django_assert_num_queries(0):
        response = views.server_error(request)
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong" in html
    assert "{%" not in html and "csrf" not in html


def _boom(request):
    raise RuntimeError("boom")


# A URLconf of this module, for the test below: a view that fails, and the portal's 500 handler.
urlpatterns = [path("boom/", _boom)]
handler500 = views.server_error


def test_500_page_on_a_real_error(client, settings):
    settings.ROOT_URLCONF = __name__
    client.raise_request_exception = False
    response = client.get("/boom/")
    assert response.status_code == 500
    assert "Something went wrong" in response.content.decode()


def test_observers_are_not_offered_the_operational_sections(client):
    executive = UserFactory()
    TeamFactory(lead=None, members=[(executive, Role.OBSERVER)])
    client.force_login(executive)
    labels = [item["label"] for item in client.get("/").context["nav_items"]]
    assert "Reports" in labels
    assert not {"Incidents", "Schedules", "Services"} & set(labels)
