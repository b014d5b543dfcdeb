"""The pages in a real browser on a phone-sized screen: Debian's Chromium driven by Playwright.

Signs in through the login page, checks that nothing scrolls sideways at 375 px, that the folded
navigation opens and every link in it is reachable with the keyboard alone, and saves a profile
change. Skips (fails under REQUIRE_SERVICES=1) when /usr/bin/chromium is missing; no browser is
ever downloaded.
"""

import pytest

from oncall import services
from oncall.models import ContactMethod, NotificationRule, Profile, Role

PHONE = {"width": 375, "height": 740}
PASSWORD = "correct-horse-battery"


@pytest.fixture
def phone_page(browser_page):
    return browser_page(viewport=PHONE)


def no_horizontal_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]


def focused(page) -> dict:
    return page.evaluate(
        """() => {
            const el = document.activeElement;
            return {tag: el.tagName, text: (el.innerText || '').trim(),
                    href: el.getAttribute('href')};
        }"""
    )


def tab_until(page, predicate, limit=40) -> dict:
    for _ in range(limit):
        page.keyboard.press("Tab")
        current = focused(page)
        if predicate(current):
            return current
    raise AssertionError("never reached with the Tab key")


@pytest.mark.django_db(transaction=True)
def test_phone_sign_in_navigate_by_keyboard_and_save_profile(live_server, phone_page):
    from playwright.sync_api import expect

    user = services.user_create(
        username="ada", password=PASSWORD, display_name="Ada", time_zone="Europe/London"
    )
    services.team_create(name="Payments", members=[(user, Role.LEAD)])
    page = phone_page

    # Sign in through the login page; land on home.
    page.goto(f"{live_server.url}/accounts/login/")
    assert no_horizontal_scroll(page)
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Your teams")
    expect(page.get_by_role("link", name="Add a way to reach you")).to_be_visible()
    assert no_horizontal_scroll(page)

    # The navigation is folded behind "Menu" on a phone.
    nav = page.get_by_role("navigation", name="Main")
    menu = page.locator("summary", has_text="Menu")
    expect(menu).to_be_visible()
    expect(nav).to_be_hidden()

    # Keyboard only: the skip link comes first and shows itself, then the menu opens with Enter.
    page.keyboard.press("Tab")
    assert focused(page)["text"] == "Skip to main content"
    expect(page.get_by_role("link", name="Skip to main content")).to_be_in_viewport()
    tab_until(page, lambda el: el["tag"] == "SUMMARY")
    page.keyboard.press("Enter")
    expect(nav).to_be_visible()
    links = nav.get_by_role("link")
    names = [links.nth(i).inner_text() for i in range(links.count())]
    assert names == ["Incidents", "Schedules", "Services", "Postmortems", "Reports", "Admin"]
    reached = []
    for _ in range(len(names) + 1):
        page.keyboard.press("Tab")
        current = focused(page)
        reached.append(current["text"])
        expect(page.locator(":focus")).to_be_visible()
    assert reached == [*names, "Profile"]
    assert no_horizontal_scroll(page)

    # Escape folds the menu again and gives focus back to its button.
    page.keyboard.press("Escape")
    expect(nav).to_be_hidden()
    assert focused(page)["tag"] == "SUMMARY"

    # Open the profile from the menu, with the keyboard.
    page.keyboard.press("Enter")
    tab_until(page, lambda el: el["text"] == "Profile")
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/profile/")
    assert no_horizontal_scroll(page)

    # Save a profile change.
    page.get_by_label("Display name").fill("Ada Lovelace")
    page.get_by_label("Time zone").select_option("Asia/Tokyo")
    page.get_by_role("button", name="Save profile").click()
    expect(page.get_by_text("Profile saved. Times are now shown in Asia/Tokyo.")).to_be_visible()
    expect(page.locator(".site-footer .zone")).to_have_text("Asia/Tokyo")
    profile = Profile.objects.get(user=user)
    assert (profile.display_name, profile.time_zone) == ("Ada Lovelace", "Asia/Tokyo")

    # An invalid address comes back next to its field; then a good one and a rule.
    page.get_by_label("Kind").select_option("sms")
    page.get_by_label("Address").fill("12345")
    page.get_by_role("button", name="Add contact method").click()
    expect(page.get_by_text("There is a problem")).to_be_visible()
    expect(page.get_by_label("Address")).to_have_attribute("aria-invalid", "true")
    assert no_horizontal_scroll(page)
    page.get_by_label("Address").fill("+44 7700 900123")
    page.get_by_role("button", name="Add contact method").click()
    expect(page.get_by_text("Contact method added")).to_be_visible()
    high = page.get_by_role("form", name="Add a high urgency rule")
    high.get_by_label("Minutes after I am paged").fill("0")
    high.get_by_role("button", name="Add high urgency rule").click()
    expect(page.get_by_text("Notification rule added")).to_be_visible()
    assert ContactMethod.objects.filter(user=user, address="+447700900123").exists()
    assert NotificationRule.objects.filter(user=user, urgency="high").exists()

    # Home no longer nudges.
    page.get_by_role("link", name="Oncall").click()
    page.wait_for_url(f"{live_server.url}/")
    expect(page.get_by_text("The portal cannot page you yet")).to_have_count(0)
    assert no_horizontal_scroll(page)
