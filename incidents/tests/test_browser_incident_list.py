"""The incident list in a real browser: Debian's Chromium driven by Playwright.

With the list open, an incident raised by the workflow (as ingest does) appears without a
reload, is announced and leaves the focus where it was; with desktop notifications allowed, an
incident paged to the reader shows one notification (the browser's `Notification` is wrapped
to record what the page asks for); on a 375 px phone the filters fold under "Filters" and
nothing scrolls sideways; the filter form works with the keyboard alone. Skips (fails under
REQUIRE_SERVICES=1) when /usr/bin/chromium is missing; no browser is ever downloaded.
"""

import pytest
from django.utils import timezone

from incidents import workflow
from incidents.models import Incident, Service
from incidents.services import escalation_policy_create, escalation_step_add, service_create
from oncall import services
from oncall.models import Role, Urgency
from oncall.tests.factories import contact_method

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 375, "height": 740}
PASSWORD = "correct-horse-battery"

# Records every notification the page creates, keeping the real class's permission.
RECORD_NOTIFICATIONS = """
(() => {
  const Real = window.Notification;
  if (!Real) return;
  window.__notifications = [];
  window.__notificationObjects = [];
  class Recorded {
    constructor(title, options) {
      window.__notifications.push({ title, body: options.body, tag: options.tag });
      window.__notificationObjects.push(this);
      this.title = title;
      this.closed = false;
    }
    close() { this.closed = true; }
    static get permission() { return Real.permission; }
    static requestPermission() { return Real.requestPermission(); }
  }
  window.Notification = Recorded;
})();
"""


@pytest.fixture
def team():
    """Rafa responds in Payments; its Checkout service pages him first."""
    rafa = services.user_create(
        username="rafa", password=PASSWORD, display_name="Rafa", time_zone="Europe/London"
    )
    contact_method(rafa, address="rafa@example.com")
    lena = services.user_create(username="lena", password=PASSWORD, display_name="Lena")
    payments = services.team_create(
        name="Payments", members=[(lena, Role.LEAD), (rafa, Role.RESPONDER)]
    )
    policy = escalation_policy_create(team=payments, name="Rafa first")
    escalation_step_add(policy=policy, delay_minutes=10, users=[rafa])
    checkout = service_create(team=payments, name="Checkout", escalation_policy=policy)
    quiet = Service.objects.get(team=payments, name__contains="default")
    return {"rafa": rafa, "lena": lena, "checkout": checkout, "quiet": quiet}


def sign_in(page, live_server, username="rafa"):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


def focused_label(page) -> str:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            const label = el && el.labels && el.labels[0];
            return label ? label.textContent.trim() : (el ? el.textContent.trim() : '');
        }"""
    )


def tab_to(page, label: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if focused_label(page).startswith(label):
            return
    raise AssertionError(f"{label!r} never reached with the Tab key")


@pytest.mark.django_db(transaction=True)
def test_a_new_incident_appears_without_a_reload(live_server, browser_page, team):
    from playwright.sync_api import expect

    first = workflow.incident_trigger(
        service=team["quiet"], title="Queue backlog", at=timezone.now(), urgency=Urgency.LOW
    )
    page = browser_page(viewport=DESKTOP, locale="en-GB")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/incidents/")
    expect(page.get_by_role("link", name="Queue backlog")).to_be_visible()
    expect(page.get_by_text("This list updates by itself")).to_be_visible()
    # Remember this document, and put the keyboard focus on the first incident's link.
    page.evaluate("window.__sameDocument = true")
    page.get_by_role("link", name="Queue backlog").focus()

    raised = workflow.incident_trigger(
        service=team["checkout"], title="Card payments failing", at=timezone.now()
    )

    row = page.locator(f'tr[data-incident-id="{raised.pk}"]')
    expect(row).to_contain_text("Card payments failing", timeout=20_000)
    expect(row).to_contain_text("Checkout")
    expect(row).to_have_class("is-new")
    expect(page.locator("#live-status")).to_have_text("1 new incident")
    expect(page.locator("#status-open .count")).to_have_text("2")
    assert page.evaluate("window.__sameDocument") is True
    assert page.evaluate("document.activeElement.id") == f"incident-link-{first.pk}"
    # The engine paged Rafa meanwhile: the row says so after the next change at the latest.
    expect(row).to_contain_text("Rafa", timeout=20_000)
    expect(page).to_have_title("(2 open) Open incidents · Oncall")


@pytest.mark.django_db(transaction=True)
def test_a_desktop_notification_for_an_incident_paged_to_me(live_server, browser_page, team):
    from playwright.sync_api import expect

    page = browser_page(viewport=DESKTOP, locale="en-GB")
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    page.add_init_script(RECORD_NOTIFICATIONS)
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/incidents/")
    assert page.evaluate("Notification.permission") == "granted"
    # Already allowed: nothing to turn on.
    expect(page.get_by_role("button", name="Turn on desktop notifications")).to_be_hidden()

    # Lena's incident on the quiet service pages nobody (no contact method): no notification.
    workflow.incident_trigger(service=team["quiet"], title="Nobody's", at=timezone.now())
    incident = workflow.incident_trigger(
        service=team["checkout"], title="Disk full", at=timezone.now()
    )
    assert Incident.objects.get(pk=incident.pk).assignees.get() == team["rafa"]

    page.wait_for_function("window.__notifications.length > 0", timeout=20_000)
    assert page.evaluate("window.__notifications") == [
        {
            "title": f"#{incident.pk} Disk full",
            "body": "Checkout · high urgency",
            "tag": f"incident-{incident.pk}",
        }
    ]
    # Paged again (a second round): the same incident is not announced twice.
    workflow.incident_escalate(incident=incident, by=team["lena"], via="web", at=timezone.now())
    for _ in range(2):
        with page.expect_response(lambda response: "/incidents/live/" in response.url):
            pass
    assert len(page.evaluate("window.__notifications")) == 1
    assert page.evaluate("JSON.parse(sessionStorage.getItem('oncall.incidentList.notified'))") == [
        incident.pk
    ]
    # A click on the notification opens the incident.
    page.evaluate("setTimeout(() => window.__notificationObjects[0].onclick(), 0)")
    page.wait_for_url(f"{live_server.url}/incidents/{incident.pk}/")


@pytest.mark.django_db(transaction=True)
def test_the_button_asks_for_permission_once(live_server, browser_page, team):
    from playwright.sync_api import expect

    page = browser_page(viewport=DESKTOP, locale="en-GB")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/incidents/")
    button = page.get_by_role("button", name="Turn on desktop notifications")
    # Chromium on http://localhost (a secure context) has not asked yet: "default".
    assert page.evaluate("Notification.permission") == "default"
    expect(button).to_be_visible()
    page.context.grant_permissions(["notifications"], origin=live_server.url)
    button.click()
    expect(button).to_be_hidden()
    expect(page.locator("#live-status")).to_have_text(
        "Desktop notifications are on for incidents assigned to you."
    )
    assert page.evaluate("document.activeElement.tagName") == "H1"


@pytest.mark.django_db(transaction=True)
def test_phone_filters_fold_and_nothing_scrolls_sideways(live_server, browser_page, team):
    from playwright.sync_api import expect

    for n in range(3):
        workflow.incident_trigger(
            service=team["checkout"],
            title=f"A rather long incident title that wraps on a phone, number {n}",
            at=timezone.now(),
        )
    page = browser_page(viewport=PHONE, locale="en-GB")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/incidents/")
    filters = page.locator("#incident-filters")
    expect(filters).to_be_hidden()
    assert no_horizontal_scroll(page)
    page.get_by_text("Filters", exact=True).click()
    expect(filters).to_be_visible()
    expect(page.get_by_label("Team")).to_be_visible()
    assert no_horizontal_scroll(page)
    expect(page.get_by_role("link", name="number 2")).to_be_visible()
    assert no_horizontal_scroll(page)


@pytest.mark.django_db(transaction=True)
def test_the_filter_form_with_the_keyboard_alone(live_server, browser_page, team):
    from playwright.sync_api import expect

    rafa = team["rafa"]
    workflow.incident_trigger(
        service=team["quiet"], title="Quiet and low", at=timezone.now(), urgency=Urgency.LOW
    )
    mine = workflow.incident_trigger(
        service=team["checkout"], title="Checkout is mine", at=timezone.now()
    )
    assert mine.assignees.get() == rafa
    page = browser_page(viewport=DESKTOP, locale="en-GB")
    sign_in(page, live_server)
    page.goto(f"{live_server.url}/incidents/")
    expect(page.get_by_role("link", name="Quiet and low")).to_be_visible()

    page.locator("#main").focus()
    tab_to(page, "Service")
    page.keyboard.press("ArrowDown")  # the first service of the first team: Checkout
    expect(page.get_by_label("Service")).to_have_value(str(team["checkout"].pk))
    tab_to(page, "Urgency")
    page.keyboard.press("ArrowDown")  # High
    tab_to(page, "Assigned to me")
    page.keyboard.press("Space")
    expect(page.get_by_label("Assigned to me")).to_be_checked()
    tab_to(page, "Apply filters")
    page.keyboard.press("Enter")

    page.wait_for_url(lambda url: "mine=on" in url)
    expect(page.get_by_role("link", name="Checkout is mine")).to_be_visible()
    expect(page.get_by_role("link", name="Quiet and low")).to_have_count(0)
    expect(page.locator("#status-open .count")).to_have_text("1")
    expect(page.get_by_label("Urgency")).to_have_value("high")
    expect(page.get_by_role("link", name="Clear filters")).to_be_visible()


SET_HIDDEN = """hidden => {
    Object.defineProperty(document, "hidden", { configurable: true, get: () => hidden });
    document.dispatchEvent(new Event("visibilitychange"));
}"""


# Counts the live polls in the page itself, as the timers fire them.
COUNT_POLLS = """
(() => {
  window.__polls = 0;
  const realFetch = window.fetch;
  window.fetch = (url, options) => {
    if (String(url).includes("/incidents/live/")) window.__polls += 1;
    return realFetch(url, options);
  };
})();
"""


@pytest.mark.django_db(transaction=True)
def test_polling_pauses_while_the_tab_is_hidden(live_server, browser_page, team):
    page = browser_page(viewport=DESKTOP, locale="en-GB")
    sign_in(page, live_server)
    page.clock.install()  # the page's timers run when the test says so
    page.add_init_script(COUNT_POLLS)
    page.goto(f"{live_server.url}/incidents/")

    def is_poll(response):
        return "/incidents/live/" in response.url

    with page.expect_response(is_poll):
        page.clock.run_for(5_100)
    assert page.evaluate("window.__polls") == 1
    page.evaluate(SET_HIDDEN, True)
    page.clock.run_for(120_000)  # two minutes in a hidden tab: not one poll
    assert page.evaluate("window.__polls") == 1
    with page.expect_response(is_poll):  # shown again: it catches up at once
        page.evaluate(SET_HIDDEN, False)
    assert page.evaluate("window.__polls") == 2
    with page.expect_response(is_poll):  # and goes on polling
        page.clock.run_for(5_100)
    assert page.evaluate("window.__polls") == 3
