"""A postmortem from incident to executive, in a real browser (Debian's Chromium via Playwright).

The author creates the draft from the resolved incident's page, writes it (the word count
follows the typing, the Markdown preview shows the sanitised HTML, a timeline row is added),
asks a peer for a review; the peer approves; the author publishes; an observer (an executive)
reads it, issue summary first, on a desktop and on a 375 px phone. Skips (fails under
REQUIRE_SERVICES=1) when /usr/bin/chromium is missing. With SCREENSHOTS_DIR set, a full-page
screenshot of the published postmortem is saved there as postmortem.png.
"""

import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from postmortems.models import Postmortem
from postmortems.words import word_count

from .factories import make_world, resolved_incident

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 375, "height": 740}
PASSWORD = "correct-horse-battery"  # the factories' password

IMPACT = (
    "From 10:00 to 10:45 CET every payment on the web shop and in the mobile app failed with "
    "an error page (HTTP **503**). Customers could browse and fill their baskets but could not "
    "pay: about 40 % of the active users tried to pay during the outage and gave up or came "
    "back later. Payments already authorised were not lost. Support received 212 complaints, "
    "most of them in the first twenty minutes."
)
ROOT_CAUSE = (
    "The primary database writes every change to its write-ahead log (WAL) before applying it. "
    "Old WAL segments are removed only after the archiver has copied them to object storage. "
    "On the morning of the incident the storage credentials were rotated as planned, but the "
    "archiver kept the old ones: every copy failed, and no segment could be removed.\n\n"
    "The WAL volume, sized for a day of traffic, filled up in about three hours. At 10:00 the "
    "database could not write any more and refused new transactions. The checkout service "
    "treats a refused transaction as a fatal error and answered 503 to every payment.\n\n"
    "The archiver's failures were logged, but nothing alerted on them, and the disk usage "
    "alert of the database hosts only watches the data volume, not the WAL volume.\n\n"
    "Why it took 45 minutes to fix: the error rate on the load balancer looked like a network "
    "problem, and the database dashboard showed healthy CPU and memory, so the first twenty "
    "minutes went into the wrong layer. The runbook of the checkout service did not mention "
    "the WAL volume at all."
)
RESOLUTION = (
    "Ada acknowledged the page at 10:05 and first suspected the load balancer, whose error "
    "rate had jumped. At 10:20 the database logs showed the full WAL volume. We moved the "
    "oldest segments already present in the previous night's backup to a spare disk, which "
    "let the database write again at 10:32, then gave the archiver the new credentials. It "
    "caught up with the backlog by 10:41, and the checkout error rate was back to normal at "
    "10:45. The spare disk was emptied once the archive was verified the same afternoon."
)
IMPROVEMENTS = (
    "Alert on what fails silently: archiver errors and the WAL volume's free space. Make "
    "credential rotations update every consumer in one step, and let the checkout service "
    "show customers a clear message instead of an error page when the database is read-only."
)


def sign_in(browser_page, live_server, username: str, viewport=DESKTOP):
    page = browser_page(viewport=viewport, locale="en-GB")
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{live_server.url}/")
    return page


def no_horizontal_scroll(page) -> bool:
    return page.evaluate(
        "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    )


@pytest.mark.screenshots
@pytest.mark.django_db(transaction=True)
def test_from_resolved_incident_to_the_executive_reading_it(live_server, browser_page):
    from playwright.sync_api import expect

    world = make_world()
    incident = resolved_incident(world, title="Checkout down: database full")

    # --- the author creates the draft from the incident's page
    page = sign_in(browser_page, live_server, "author")
    page.goto(f"{live_server.url}/incidents/{incident.pk}/")
    page.get_by_role("button", name="Create postmortem").click()
    pm = Postmortem.objects.get()
    page.wait_for_url(f"{live_server.url}/postmortems/{pm.pk}/edit/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Edit postmortem")
    expect(page.get_by_text("Draft created from the incident")).to_be_visible()
    expect(page.get_by_label("Title")).to_have_value("Checkout down: database full")
    expect(page.locator("#pm-duration")).to_have_text("45 min")

    # --- writing: the word count follows the typing
    count = page.locator("#pm-word-count")
    expect(count).to_have_attribute("aria-live", "polite")
    expect(count).to_contain_text("below the 400-word target")
    page.get_by_label("Impact", exact=True).fill(IMPACT)
    page.get_by_label("Users affected (%)").fill("40")
    page.get_by_label("Root cause in brief").fill(
        "The database's WAL volume filled up after a credentials rotation broke archiving."
    )
    page.get_by_label("Root cause", exact=True).fill(ROOT_CAUSE)
    page.get_by_label("Resolution", exact=True).fill(RESOLUTION)
    page.get_by_label("What can be improved").fill(IMPROVEMENTS)
    expect(count).to_contain_text("within the 400–600 target")
    expect(count).to_have_class(re.compile(r"pm-wordcount--within"))
    page.get_by_label("Resolution", exact=True).fill(RESOLUTION * 3)
    expect(count).to_contain_text("above the 600-word target")
    page.get_by_label("Resolution", exact=True).fill(RESOLUTION)
    expect(count).to_contain_text("within the 400–600 target")

    # --- the Markdown preview, sanitised by the server
    impact = page.locator("[data-md-field]").filter(has=page.get_by_label("Impact", exact=True))
    page.get_by_label("Impact", exact=True).fill(
        "Payments failed (HTTP **503**). <script>alert(1)</script>"
    )
    toggle = impact.get_by_role("button", name="Preview")
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "true")
    preview = impact.locator("[data-md-preview]")
    expect(preview.locator("strong")).to_have_text("503")
    expect(preview).to_contain_text("<script>alert(1)</script>")  # shown as text, not run
    expect(page.get_by_label("Impact", exact=True)).to_be_hidden()
    toggle.click()
    expect(toggle).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_label("Impact", exact=True)).to_be_focused()
    page.get_by_label("Impact", exact=True).fill(IMPACT)

    # --- rows removed with their "Remove" box: the paging rows, noise in this postmortem
    rows = page.locator("#timeline-rows [data-row]")
    for index in range(rows.count()):
        row = rows.nth(index)
        if row.get_by_label("Kind").input_value() == "escalated":
            row.get_by_label("Remove this row").check()
            expect(row).to_have_class(re.compile(r"pm-row--removed"))

    # --- a timeline row added with the button, and an action item
    rows_before = page.locator("#timeline-rows [data-row]").count()
    page.get_by_role("button", name="Add a timeline row").click()
    new_row = page.locator("#timeline-rows [data-row]").nth(rows_before)
    expect(new_row.get_by_label("Time")).to_be_focused()
    new_row.get_by_label("Time").fill("2026-03-02T10:20")
    new_row.get_by_label("Kind").select_option("misleading")
    new_row.get_by_label("What happened").fill("We first suspected the load balancer.")
    action = page.locator("#actions-rows [data-row]").first
    action.get_by_label("Task").fill("Add monitoring on the WAL volume")
    action.get_by_label("Owner").select_option(label="Pat Peer")
    due = timezone.localdate() + timedelta(days=30)
    action.get_by_label("Due").fill(due.isoformat())
    shown = int(count.get_attribute("data-count") or "0")
    page.get_by_role("button", name="Save", exact=True).click()
    expect(page.get_by_text("Postmortem saved.")).to_be_visible()
    pm.refresh_from_db()
    assert pm.timeline_items.filter(kind="misleading").exists()
    assert not pm.timeline_items.filter(kind="escalated").exists()
    assert pm.action_items.get().title == "Add monitoring on the WAL volume"
    # The browser counted the way the server counts.
    assert shown == word_count(pm)
    expect(page.locator("#pm-word-count")).to_contain_text(f"{shown} words — within")

    # --- review requested from a peer
    page.get_by_role("link", name="View the postmortem and its review").click()
    page.get_by_label("Pat Peer").check()
    page.get_by_role("button", name="Request review").click()
    expect(page.get_by_text("Review requested from Pat Peer.")).to_be_visible()
    page.context.close()

    # --- the peer approves
    reviewer = sign_in(browser_page, live_server, "peer")
    reviewer.goto(f"{live_server.url}/postmortems/{pm.pk}/")
    # With the keyboard alone: type the note, Tab to "Approve", Enter.
    reviewer.get_by_label("Note").focus()
    reviewer.keyboard.type("Clear and complete.")
    reviewer.keyboard.press("Tab")
    expect(reviewer.get_by_role("button", name="Approve")).to_be_focused()
    reviewer.keyboard.press("Enter")
    expect(reviewer.get_by_text("You approved this postmortem.")).to_be_visible()
    reviewer.context.close()

    # --- the author publishes
    page = sign_in(browser_page, live_server, "author")
    page.goto(f"{live_server.url}/postmortems/{pm.pk}/")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.get_by_text("Published: everyone in the company can read it now.")).to_be_visible()
    page.context.close()

    # --- the executive reads it: issue summary first
    reader = sign_in(browser_page, live_server, "observer")
    reader.get_by_role("navigation", name="Main").get_by_role("link", name="Postmortems").click()
    reader.get_by_role("link", name="Checkout down: database full").click()
    reader.wait_for_url(f"{live_server.url}/postmortems/{pm.pk}/")
    headings = reader.locator("article h2").all_inner_texts()
    assert [h.split(maxsplit=1)[-1] for h in headings[:4]] == [
        "Issue summary",
        "Timeline",
        "Root cause and resolution",
        "Corrective and preventative measures",
    ]
    summary = reader.locator("#section-summary")
    expect(summary).to_contain_text("45 min — from Mon 2 Mar 2026, 10:00 CET")
    expect(summary).to_contain_text("(Europe/Paris)")
    expect(summary).to_contain_text("40 %")
    expect(reader.get_by_role("button", name="Approve")).to_have_count(0)
    expect(reader.get_by_role("link", name="Edit")).to_have_count(0)
    expect(reader.get_by_role("button", name="Print")).to_be_visible()
    assert no_horizontal_scroll(reader)
    if os.environ.get("SCREENSHOTS_DIR"):
        target = Path(os.environ["SCREENSHOTS_DIR"])
        target.mkdir(parents=True, exist_ok=True)
        # The README's picture (make screenshots): the top of the page, under 300 KB.
        top = {"x": 0, "y": 0, "width": DESKTOP["width"], "height": 1500}
        reader.screenshot(path=target / "postmortem.png", full_page=True, clip=top)

    # --- printed: no navigation, no buttons
    reader.emulate_media(media="print")
    expect(reader.locator(".site-header")).to_be_hidden()
    expect(reader.locator(".pm-toolbar")).to_be_hidden()
    expect(reader.locator("#section-summary")).to_be_visible()
    reader.context.close()

    # --- on a phone: no sideways scrolling, for the reader and for the writer
    phone = sign_in(browser_page, live_server, "observer", viewport=PHONE)
    phone.goto(f"{live_server.url}/postmortems/{pm.pk}/")
    expect(phone.locator("#section-summary")).to_be_visible()
    assert no_horizontal_scroll(phone)
    phone.goto(f"{live_server.url}/postmortems/")
    assert no_horizontal_scroll(phone)
    phone.context.close()
    writer = sign_in(browser_page, live_server, "author", viewport=PHONE)
    writer.goto(f"{live_server.url}/postmortems/{pm.pk}/amend/")
    expect(writer.get_by_label("Why does the published postmortem change?")).to_be_visible()
    assert no_horizontal_scroll(writer)
    writer.goto(f"{live_server.url}/postmortems/action-items/")
    assert no_horizontal_scroll(writer)
