"""The postmortem pages through the Django test client: creating a draft from an incident, the
edit form (sections, times in the postmortem's zone, rows, preview, word warning, refusals), the
review and publishing buttons, amendments and earlier versions, what observers may read, the
list's filters and search, the Markdown download, the action items page, and query counts that
do not grow with the data."""

import datetime as dt
import re
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.urls import reverse

from incidents import workflow
from postmortems import services
from postmortems.models import ActionItem, Amendment, Postmortem, ReviewComment, TimelineItem

from .factories import T0, draft, make_world, published, resolved_incident

pytestmark = pytest.mark.django_db

PARIS = ZoneInfo("Europe/Paris")
NOW = T0 + timedelta(days=3)


@pytest.fixture(autouse=True)
def _clock():
    with time_machine.travel(NOW, tick=False):
        yield


@pytest.fixture
def world():
    return make_world()


def as_user(client, user):
    client.force_login(user)
    return client


def url(name, *args):
    return reverse(f"postmortems:{name}", args=args)


def text_of(response) -> str:
    """The page's visible text, roughly: tags removed, white space squeezed."""
    html = response.content.decode()
    html = re.sub(r"<(script|style|template)\b.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]] if response.context else []


def edit_data(client, pm, page: str = "edit", **overrides) -> dict:
    """What the edit (or amend) form sends back untouched, with `overrides` applied: the POST
    a browser makes."""
    response = client.get(url(page, pm.pk))
    assert response.status_code == 200
    forms = response.context["forms"]
    data = {"shown_zone": pm.time_zone}
    parts = [forms.main, forms.timeline.management_form, forms.actions.management_form]
    parts += forms.timeline.forms + forms.actions.forms
    for form in parts:
        for field in form:
            value = field.value()
            if field.name == "shown_zone" or value is None or value == "":
                continue
            if isinstance(value, bool):
                if value:
                    data[field.html_name] = "on"
            elif isinstance(value, dt.datetime):
                data[field.html_name] = value.strftime("%Y-%m-%dT%H:%M")
            elif isinstance(value, dt.date):
                data[field.html_name] = value.isoformat()
            elif isinstance(value, list):
                data[field.html_name] = [str(v) for v in value]
            else:
                data[field.html_name] = str(value)
    data.update(overrides)
    return data


WORDS_450 = " ".join(["word"] * 450)


# --- the incident page's box and creating a draft ----------------------------------------------


def test_a_resolved_incident_offers_create_postmortem_and_it_makes_a_filled_draft(client, world):
    incident = resolved_incident(world)
    as_user(client, world.author)
    page = client.get(reverse("incidents:detail", args=[incident.pk]))
    assert "Create postmortem" in text_of(page)

    response = client.post(url("create"), {"incident": incident.pk}, follow=True)
    pm = Postmortem.objects.get()
    assert response.redirect_chain[-1][0] == url("edit", pm.pk)
    assert pm.status == Postmortem.Status.DRAFT
    assert list(pm.incidents.all()) == [incident]
    assert any("Draft created" in m for m in messages_of(response))
    # The draft's times are shown in its own zone (the author's, Paris: UTC+1 in March).
    html = response.content.decode()
    assert 'name="started_at" value="2026-03-02T10:00"' in html
    assert 'name="ended_at" value="2026-03-02T10:45"' in html
    assert "45 min" in text_of(response)

    page = client.get(reverse("incidents:detail", args=[incident.pk]))
    assert f"Postmortem: {pm.title}" in text_of(page)
    assert "Create postmortem" not in text_of(page)

    # A second click gives the same postmortem, not a new one.
    response = client.post(url("create"), {"incident": incident.pk}, follow=True)
    assert Postmortem.objects.count() == 1
    assert any("already has a postmortem" in m for m in messages_of(response))


def test_an_open_incident_is_refused_with_a_message(client, world):
    incident = workflow.incident_trigger(service=world.api, title="Still burning", at=T0)
    as_user(client, world.author)
    page = client.get(reverse("incidents:detail", args=[incident.pk]))
    assert "Create postmortem" not in text_of(page)
    assert "once the incident is resolved" in text_of(page)

    response = client.post(url("create"), {"incident": incident.pk}, follow=True)
    assert Postmortem.objects.count() == 0
    assert any("resolve it before writing its postmortem" in m for m in messages_of(response))
    assert response.redirect_chain[-1][0] == reverse("incidents:detail", args=[incident.pk])


def test_create_refuses_other_teams_and_bad_input(client, world):
    incident = resolved_incident(world)
    as_user(client, world.outsider)
    assert client.post(url("create"), {"incident": incident.pk}).status_code == 404
    as_user(client, world.observer)
    assert client.post(url("create"), {"incident": incident.pk}).status_code == 403
    as_user(client, world.author)
    assert client.post(url("create"), {"incident": 99999}).status_code == 404
    response = client.post(url("create"), {"incident": "abc"}, follow=True)
    assert any("not an incident number" in m for m in messages_of(response))
    assert client.get(url("create")).status_code == 405
    assert Postmortem.objects.count() == 0


# --- the edit page -----------------------------------------------------------------------------


def test_the_edit_page_has_the_fixed_sections_in_order(client, world):
    pm = draft(world)
    response = as_user(client, world.author).get(url("edit", pm.pk))
    headings = re.findall(
        r"<h2[^>]*>(?:<span[^>]*>\d</span>)?\s*([^<]+)</h2>", response.content.decode()
    )
    assert headings == [
        "Issue summary",
        "Timeline",
        "Root cause and resolution",
        "Corrective and preventative measures",
    ]
    page = text_of(response)
    for label in (
        "Time zone",
        "Start",
        "End",
        "Duration",
        "Impact",
        "Users affected (%)",
        "Root cause in brief",
        "Root cause",
        "Resolution",
        "What can be improved",
        "Task",
        "Owner",
        "Due",
        "Tracker link",
        "How it was detected",
    ):
        assert label in page
    assert 'aria-live="polite"' in response.content.decode()
    assert "words — below the 400-word target" in page


def test_saving_the_form_writes_every_section_in_the_postmortems_zone(client, world):
    pm = draft(world)
    as_user(client, world.author)
    data = edit_data(
        client,
        pm,
        title="Checkout down: WAL volume full",
        impact="Checkout returned **503** for every customer.",
        users_affected_percent="37.5",
        root_cause="The WAL volume had no alert.",
        resolution="Deleted old segments, grew the volume.",
        improvements="Alert on disk usage.",
        started_at="2026-03-02T09:58",
    )
    rows = int(data["timeline-TOTAL_FORMS"])
    blank = rows - 1  # the empty row at the end
    data[f"timeline-{blank}-at"] = "2026-03-02T10:30"
    data[f"timeline-{blank}-kind"] = "misleading"
    data[f"timeline-{blank}-text"] = "We suspected the load balancer first."
    data["actions-0-title"] = "Add monitoring on the WAL volume"
    data["actions-0-owner"] = str(world.peer.pk)
    data["actions-0-due_date"] = "2026-04-01"
    data["actions-0-status"] = "open"
    data["actions-0-url"] = "https://tracker.example.com/OPS-12"

    response = client.post(url("edit", pm.pk), data, follow=True)
    assert response.redirect_chain[-1][0] == url("edit", pm.pk)
    messages = messages_of(response)
    assert "Postmortem saved." in messages
    # Outside the word target: saved anyway, with a warning.
    assert any("below the 400-word target. It is saved; reviewers" in m for m in messages)

    pm.refresh_from_db()
    assert pm.title == "Checkout down: WAL volume full"
    assert pm.started_at == dt.datetime(2026, 3, 2, 9, 58, tzinfo=PARIS)  # typed in Paris time
    assert str(pm.users_affected_percent) == "37.50"
    misleading = pm.timeline_items.get(kind=TimelineItem.Kind.MISLEADING)
    assert misleading.at == dt.datetime(2026, 3, 2, 10, 30, tzinfo=PARIS)
    item = pm.action_items.get()
    assert (item.title, item.owner, item.due_date) == (
        "Add monitoring on the WAL volume",
        world.peer,
        dt.date(2026, 4, 1),
    )
    # Untouched timeline rows keep their exact times (seconds included).
    assert pm.timeline_items.count() == rows


def test_changing_the_time_zone_keeps_the_moments(client, world):
    pm = draft(world)
    before = (pm.started_at, pm.ended_at, list(pm.timeline_items.values_list("at", flat=True)))
    as_user(client, world.author)
    data = edit_data(client, pm, time_zone="America/New_York")
    client.post(url("edit", pm.pk), data)
    pm.refresh_from_db()
    assert pm.time_zone == "America/New_York"
    assert (pm.started_at, pm.ended_at) == before[:2]
    assert list(pm.timeline_items.values_list("at", flat=True)) == before[2]
    html = client.get(url("edit", pm.pk)).content.decode()
    assert 'name="started_at" value="2026-03-02T04:00"' in html  # 09:00 UTC in New York


def test_removing_a_timeline_row(client, world):
    pm = draft(world)
    count = pm.timeline_items.count()
    as_user(client, world.author)
    data = edit_data(client, pm, **{"timeline-0-DELETE": "on"})
    client.post(url("edit", pm.pk), data)
    assert pm.timeline_items.count() == count - 1


def test_an_action_item_due_before_the_incident_is_refused_and_nothing_is_saved(client, world):
    pm = draft(world)
    as_user(client, world.author)
    data = edit_data(
        client,
        pm,
        title="A new title that must not be saved",
        **{
            "actions-0-title": "Patch the Nginx server",
            "actions-0-owner": str(world.peer.pk),
            "actions-0-due_date": "2026-02-01",
            "actions-0-status": "open",
        },
    )
    response = client.post(url("edit", pm.pk), data)
    assert response.status_code == 400
    page = text_of(response)
    assert "nothing was saved" in page
    assert "is before the incident started" in page
    pm.refresh_from_db()
    assert pm.title != "A new title that must not be saved"
    assert not pm.action_items.exists()


def test_a_timeline_row_a_year_off_is_refused(client, world):
    pm = draft(world)
    as_user(client, world.author)
    data = edit_data(client, pm, **{"timeline-0-at": "2028-03-02T10:00"})
    response = client.post(url("edit", pm.pk), data)
    assert response.status_code == 400
    assert "more than a year away from the outage" in text_of(response)


def test_bad_input_comes_back_with_errors_not_a_500(client, world):
    pm = draft(world)
    as_user(client, world.author)
    data = edit_data(
        client,
        pm,
        started_at="not a date",
        time_zone="Mars/Olympus",
        users_affected_percent="140",
        **{"actions-0-title": "Owner from elsewhere", "actions-0-owner": str(world.outsider.pk)},
    )
    response = client.post(url("edit", pm.pk), data)
    assert response.status_code == 400
    page = text_of(response)
    assert "Enter a date and time" in page
    assert "Mars/Olympus is not a known IANA time zone" in page
    assert "less than or equal to 100" in page
    assert "Choose an owner from the team" in page


def test_preview_without_javascript_renders_sanitised_markdown_and_saves_nothing(client, world):
    pm = draft(world)
    as_user(client, world.author)
    data = edit_data(
        client,
        pm,
        impact="**Bold** <script>alert(1)</script> [x](javascript:alert(1))",
        preview="1",
    )
    response = client.post(url("edit", pm.pk), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert "<strong>Bold</strong> &lt;script&gt;" in html
    assert "<script>alert(1)</script>" not in html
    assert 'href="javascript' not in html
    pm.refresh_from_db()
    assert "Bold" not in pm.impact


def test_the_preview_endpoint_answers_sanitised_html(client, world):
    as_user(client, world.author)
    response = client.post(url("preview"), {"text": "# Head\n\n<img src=x onerror=alert(1)>"})
    assert response.status_code == 200
    assert response.json()["html"] == "<h3>Head</h3>\n<p>&lt;img src=x onerror=alert(1)&gt;</p>"
    assert client.get(url("preview")).status_code == 405
    as_user(client, world.observer)
    assert client.post(url("preview"), {"text": "x"}).status_code == 403


def test_a_published_postmortem_is_edited_only_through_an_amendment(client, world):
    pm = published(world)
    as_user(client, world.author)
    response = client.get(url("edit", pm.pk))
    assert response.status_code == 302 and response["Location"] == url("amend", pm.pk)

    data = edit_data(client, pm, "amend", root_cause="The volume alert was muted.")
    response = client.post(url("amend", pm.pk), data)
    assert response.status_code == 400
    assert "Say why the published postmortem changes" in text_of(response)
    assert not Amendment.objects.exists()

    data["reason"] = "The alert was muted, not missing."
    response = client.post(url("amend", pm.pk), data, follow=True)
    assert response.redirect_chain[-1][0] == url("detail", pm.pk)
    amendment = Amendment.objects.get(postmortem=pm)
    assert amendment.reason == "The alert was muted, not missing."
    assert amendment.after == {"root_cause": "The volume alert was muted."}
    page = text_of(response)
    assert "Amendments" in page and "The alert was muted, not missing." in page
    assert "Changed: root_cause" in page

    # The version before the amendment still reads as it was.
    old = client.get(url("version", pm.pk, 1))
    assert old.status_code == 200
    assert "Version 1 of 2" in text_of(old)
    assert "The volume alert was muted." not in text_of(old)
    assert client.get(url("version", pm.pk, 3)).status_code == 404

    # Nothing changed → nothing to amend.
    # …even when the browser sends the multi-line texts back with CRLF line ends.
    data = edit_data(client, pm, "amend", reason="No reason")
    assert "\n" in data["impact"]
    data["impact"] = data["impact"].replace("\n", "\r\n")
    response = client.post(url("amend", pm.pk), data)
    assert response.status_code == 400
    assert "Nothing changed" in text_of(response)


# --- review and publishing ---------------------------------------------------------------------


def test_review_comments_approval_and_publishing_through_the_page(client, world):
    pm = draft(world, impact="Checkout was down.", root_cause="WAL full.")
    as_user(client, world.author)
    page = client.get(url("detail", pm.pk))
    assert "Ask for a review" in text_of(page)
    assert "Approve" not in text_of(page)  # the author can't approve

    response = client.post(url("review", pm.pk), {"reviewers": [world.peer.pk]}, follow=True)
    assert "Review requested from Pat Peer." in messages_of(response)
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.IN_REVIEW

    # The reviewer sees the length warning, comments on a section and asks for changes.
    as_user(client, world.peer)
    page = client.get(url("detail", pm.pk))
    assert "Warning: " in text_of(page) and "below the 400-word target" in text_of(page)
    response = client.post(
        url("comment", pm.pk),
        {"section": "timeline", "body": "Say when the customer first complained."},
        follow=True,
    )
    assert response.redirect_chain[-1][0].endswith("#section-timeline")
    response = client.post(
        url("decide", pm.pk),
        {"decision": "changes_requested", "note": "Timeline is thin."},
        follow=True,
    )
    assert "You asked for changes: the author sees your note." in messages_of(response)
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.CHANGES_REQUESTED

    # The author sees the comment (on the page and while editing) and marks it resolved.
    as_user(client, world.author)
    page = text_of(client.get(url("detail", pm.pk)))
    assert "Say when the customer first complained." in page
    assert "Timeline is thin." in page
    assert "Say when the customer first complained." in text_of(client.get(url("edit", pm.pk)))
    comment = ReviewComment.objects.get()
    client.post(url("comment_resolve", pm.pk, comment.pk), {"resolved": "1"})
    comment.refresh_from_db()
    assert comment.resolved and comment.resolved_by == world.author

    # Publishing now is refused with the reason, not a 500.
    response = client.post(url("publish", pm.pk), follow=True)
    assert any("A reviewer asked for changes" in m for m in messages_of(response))

    client.post(url("review", pm.pk), {"reviewers": [world.peer.pk]})
    as_user(client, world.peer)
    response = client.post(url("decide", pm.pk), {"decision": "approved"}, follow=True)
    assert "You approved this postmortem." in messages_of(response)

    as_user(client, world.author)
    page = client.get(url("detail", pm.pk))
    assert "Approved by a peer" in text_of(page)
    response = client.post(url("publish", pm.pk), follow=True)
    assert "Published: everyone in the company can read it now." in messages_of(response)
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.PUBLISHED and pm.published_by == world.author
    assert "Amend" in text_of(response)


def test_publishing_without_approval_is_refused_and_a_lead_must_give_a_reason(client, world):
    pm = draft(world)
    as_user(client, world.author)
    page = text_of(client.get(url("detail", pm.pk)))
    assert "Publishing needs an approval from a peer" in page
    response = client.post(url("publish", pm.pk), follow=True)
    assert any("needs at least one approval from someone other" in m for m in messages_of(response))

    as_user(client, world.lead)
    page = text_of(client.get(url("detail", pm.pk)))
    assert "Publish without approval" in page
    response = client.post(url("publish", pm.pk), {"reason": "  "}, follow=True)
    assert any("giving the reason" in m for m in messages_of(response))
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.DRAFT

    response = client.post(
        url("publish", pm.pk), {"reason": "Customers are waiting for it."}, follow=True
    )
    pm.refresh_from_db()
    assert pm.status == Postmortem.Status.PUBLISHED
    assert "Reason: Customers are waiting for it." in text_of(response)


def test_review_requests_refuse_bad_reviewers_with_a_message(client, world):
    pm = draft(world)
    as_user(client, world.author)
    for reviewers in ([], [world.author.pk], [world.outsider.pk], ["x"]):
        response = client.post(url("review", pm.pk), {"reviewers": reviewers}, follow=True)
        assert response.status_code == 200
        assert any(m for m in messages_of(response)), reviewers
    assert not pm.reviews.exists()
    as_user(client, world.peer)  # not asked to review: deciding is refused
    response = client.post(url("decide", pm.pk), {"decision": "approved"}, follow=True)
    assert "You were not asked to review this postmortem." in messages_of(response)


# --- readers: observers and other teams --------------------------------------------------------


def test_observers_read_published_postmortems_only(client, world):
    secret = draft(world, title="Secret draft about the database")
    public = published(
        world, draft(world, resolved_incident(world, title="Public outage"), title="Public outage")
    )
    as_user(client, world.observer)

    listing = client.get(url("list"))
    assert "Public outage" in text_of(listing)
    assert "Secret draft" not in text_of(listing)
    assert "Status" not in [f for f in listing.context["form"].fields]
    search = client.get(url("list"), {"q": "database"})
    assert "Secret draft" not in text_of(search)
    assert search.context["page"].paginator.count == 0

    for name in ("detail", "edit", "download", "amend"):
        assert client.get(url(name, secret.pk)).status_code == 404, name
    assert client.post(url("publish", secret.pk)).status_code == 404
    assert client.post(url("review", secret.pk), {"reviewers": [world.peer.pk]}).status_code == 404

    page = client.get(url("detail", public.pk))
    assert page.status_code == 200
    text = text_of(page)
    # Led by the issue summary: duration with start, end and zone, then the other sections.
    summary = text.index("Issue summary")
    assert summary < text.index("Timeline") < text.index("Root cause and resolution")
    assert (
        "45 min — from Mon 2 Mar 2026, 10:00 CET to Mon 2 Mar 2026, 10:45 CET (Europe/Paris)"
        in text
    )
    # Nothing to act with, and no review internals.
    for absent in ("Edit", "Amend", "Request review", "Comments on", "Approve"):
        assert absent not in text, absent
    assert client.get(url("amend", public.pk)).status_code == 403
    assert client.get(url("download", public.pk)).status_code == 200
    nav = [item["label"] for item in page.context["nav_items"]]
    assert "Postmortems" in nav


def test_members_see_their_drafts_marked_and_can_filter_by_status(client, world):
    draft(world, title="Work in progress")
    published(world, draft(world, resolved_incident(world, title="Done one"), title="Done one"))
    as_user(client, world.peer)
    listing = text_of(client.get(url("list")))
    assert "Work in progress Draft" in listing
    only = client.get(url("list"), {"status": "published"})
    assert [pm.title for pm in only.context["page"].object_list] == ["Done one"]
    as_user(client, world.outsider)  # another team: published only
    titles = [pm.title for pm in client.get(url("list")).context["page"].object_list]
    assert titles == ["Done one"]


def test_list_filters_and_search(client, world):
    early = published(
        world,
        draft(
            world,
            resolved_incident(world, title="Disk full", urgency="low"),
            title="Disk full",
            root_cause="The WAL volume filled up.",
        ),
    )
    later = published(
        world,
        draft(
            world,
            resolved_incident(world, at=T0 + timedelta(days=2), title="TLS expired"),
            title="TLS expired",
            root_cause="Nobody renewed the certificate.",
        ),
    )
    as_user(client, world.observer)

    def titles(**params):
        response = client.get(url("list"), params)
        assert response.status_code == 200, text_of(response)
        return [pm.title for pm in response.context["page"].object_list]

    assert titles() == ["TLS expired", "Disk full"]
    assert titles(q="certificate") == ["TLS expired"]
    assert titles(urgency="low") == ["Disk full"]
    assert titles(team=world.alpha.pk, service=world.api.pk) == ["TLS expired", "Disk full"]
    assert titles(start="2026-03-03", end="2026-03-10") == ["TLS expired"]
    assert titles(end="2026-03-02") == ["Disk full"]
    assert early.pk != later.pk

    response = client.get(url("list"), {"start": "2026-03-10", "end": "2026-03-01"})
    assert response.status_code == 400
    assert "swap the dates" in text_of(response)
    response = client.get(url("list"), {"team": world.bravo.pk, "urgency": "urgent"})
    assert response.status_code == 400
    assert "That team is not one you can see." in text_of(response)


def test_markdown_download(client, world):
    pm = published(world)
    response = as_user(client, world.observer).get(url("download", pm.pk))
    assert response["Content-Type"] == "text/markdown; charset=utf-8"
    assert response["Content-Disposition"] == (
        f'attachment; filename="postmortem-{pm.pk}-disk-full-on-db-1.md"'
    )
    body = response.content.decode()
    assert body.startswith("# Disk full on db-1\n")
    assert body.index("## Issue summary") < body.index("## Timeline")


def test_the_print_stylesheet_hides_navigation_and_buttons(client, world):
    from django.contrib.staticfiles import finders

    css = open(finders.find("oncall/postmortems.css"), encoding="utf-8").read()
    printed = css[css.index("@media print") :]
    for selector in (".pm-toolbar", ".pm-side", "form", "button", ".breadcrumb"):
        assert selector in printed
    pm = published(world)
    page = as_user(client, world.observer).get(url("detail", pm.pk)).content.decode()
    assert 'class="actions pm-toolbar no-print"' in page
    assert "oncall/postmortems.css" in page


# --- action items ------------------------------------------------------------------------------


def _items(world, pm, specs):
    for title, owner, due in specs:
        services.action_item_save(
            postmortem=pm,
            user=world.author,
            title=title,
            owner=owner,
            due_date=due,
            reason="Follow-up from the review",
        )


def test_action_items_page_groups_by_owner_marks_overdue_and_owners_close_them(client, world):
    pm = published(world)
    today = NOW.date()
    _items(
        world,
        pm,
        [
            ("Add disk alert", world.peer, today - timedelta(days=1)),
            ("Grow the volume", world.peer, today + timedelta(days=5)),
            ("Write the runbook", world.author, today + timedelta(days=2)),
        ],
    )
    as_user(client, world.peer)
    response = client.get(url("action_items"))
    page = text_of(response)
    assert "3 open action items, 1 overdue" in page
    assert page.index("Pat Peer (you)") < page.index("Ada Author")  # your own first
    assert page.index("Add disk alert") < page.index("Grow the volume")
    assert "Add disk alert 4 Mar 2026 Overdue" in page
    assert "Grow the volume 10 Mar 2026 Overdue" not in page
    html = response.content.decode()
    assert html.count('class="pm-overdue"') == 1
    assert html.count("Mark done") == 2  # own items only

    mine = text_of(client.get(url("action_items"), {"mine": "on"}))
    assert "Write the runbook" not in mine and "Add disk alert" in mine

    item = ActionItem.objects.get(title="Add disk alert")
    response = client.post(
        url("action_item_close", item.pk), {"next": url("action_items")}, follow=True
    )
    assert "“Add disk alert” marked done." in messages_of(response)
    item.refresh_from_db()
    assert item.status == ActionItem.Status.DONE and item.done_by == world.peer

    other = ActionItem.objects.get(title="Write the runbook")
    response = client.post(url("action_item_close", other.pk), follow=True)
    assert any("Only the action item's owner or a lead" in m for m in messages_of(response))
    other.refresh_from_db()
    assert other.status == ActionItem.Status.OPEN

    # An offsite "next" is not followed.
    response = client.post(
        url("action_item_close", other.pk), {"next": "https://evil.example.com/"}
    )
    assert response["Location"] == url("action_items")


def test_observers_see_action_items_of_published_postmortems_only(client, world):
    pub = published(world)
    hidden = draft(world, resolved_incident(world, title="Draft one"))
    _items(world, pub, [("Public task", world.peer, NOW.date())])
    _items(world, hidden, [("Hidden task", world.peer, NOW.date())])
    page = text_of(as_user(client, world.observer).get(url("action_items")))
    assert "Public task" in page and "Hidden task" not in page
    assert "Mark done" not in page


# --- queries do not grow with the data ---------------------------------------------------------


def _grow(world, n: int, start: int = 0):
    for i in range(start, start + n):
        incident = resolved_incident(world, at=T0 + timedelta(hours=i), title=f"Outage {i}")
        pm = published(world, draft(world, incident, title=f"Outage {i}"))
        _items(world, pm, [(f"Task {i}", world.peer, NOW.date() + timedelta(days=i - 1))])


@pytest.mark.parametrize("who", ["observer", "peer"])
def test_list_detail_and_action_items_run_a_fixed_number_of_queries(
    client, world, who, django_assert_num_queries
):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    _grow(world, 2)
    first = Postmortem.objects.order_by("id").first()
    as_user(client, getattr(world, who))
    paths = (url("list"), url("detail", first.pk), url("action_items"))
    small = []
    for path in paths:
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200
        small.append(len(queries))

    _grow_more(world, first)
    for path, expected in zip(paths, small, strict=True):
        with django_assert_num_queries(expected):
            response = client.get(path)
        assert response.status_code == 200
    # The bigger data really is on the pages.
    assert "Outage 6" in text_of(client.get(paths[0]))
    assert "Extra task 5" in text_of(client.get(paths[1]))


def _grow_more(world, pm):
    """More of everything: postmortems in the list, and on one postmortem more timeline rows,
    action items, reviewers' comments and services."""
    _grow(world, 5, start=2)
    services.review_comment_add(
        postmortem=draft(world, resolved_incident(world, title="Draft")),
        user=world.peer,
        section="summary",
        body="A comment",
    )
    for i in range(6):
        services.action_item_save(
            postmortem=pm,
            user=world.author,
            title=f"Extra task {i}",
            owner=world.author,
            due_date=NOW.date() + timedelta(days=i),
            reason="More tasks",
        )
        services.timeline_item_save(
            postmortem=pm,
            user=world.author,
            at=T0 + timedelta(minutes=i),
            text=f"Step {i}",
            reason="More detail",
        )


def test_stale_actions_on_a_published_postmortem_answer_with_a_message(client, world):
    pm = published(world)
    as_user(client, world.peer)
    response = client.post(url("decide", pm.pk), {"decision": "changes_requested"}, follow=True)
    assert "This postmortem is already published." in messages_of(response)
    response = client.post(
        url("comment", pm.pk), {"section": "summary", "body": "Late"}, follow=True
    )
    assert any("published" in m for m in messages_of(response))
    as_user(client, world.author)
    response = client.post(url("publish", pm.pk), follow=True)
    assert "This postmortem is already published." in messages_of(response)
    response = client.post(url("review", pm.pk), {"reviewers": [world.peer.pk]}, follow=True)
    assert any("published" in m for m in messages_of(response))
    assert not ReviewComment.objects.exists()


def test_another_teams_member_reads_published_postmortems_but_never_drafts(client, world):
    secret = draft(world)
    public = published(world, draft(world, resolved_incident(world, title="Public")))
    as_user(client, world.outsider)
    assert client.get(url("detail", secret.pk)).status_code == 404
    assert client.get(url("edit", secret.pk)).status_code == 404
    assert client.get(url("detail", public.pk)).status_code == 200
    assert client.get(url("amend", public.pk)).status_code == 403
    page = text_of(client.get(url("detail", public.pk)))
    assert "Comments on" not in page and "Request review" not in page and "Amend" not in page


def test_amending_a_timeline_row_keeps_the_old_row_in_the_earlier_version(client, world):
    pm = published(world)
    first = pm.timeline_items.order_by("at", "position", "id").first()
    as_user(client, world.author)
    data = edit_data(
        client,
        pm,
        "amend",
        reason="The first alert came from the synthetic check.",
        **{"timeline-0-text": "The synthetic checkout check alerted first."},
    )
    response = client.post(url("amend", pm.pk), data, follow=True)
    assert response.redirect_chain[-1][0] == url("detail", pm.pk)
    first.refresh_from_db()
    assert first.text == "The synthetic checkout check alerted first."
    assert "The synthetic checkout check alerted first." in text_of(response)
    old = text_of(client.get(url("version", pm.pk, 1)))
    assert "First alert on API: Disk full on db-1." in old
    assert "The synthetic checkout check alerted first." not in old


def test_a_lead_closes_anyones_action_item(client, world):
    pm = published(world)
    _items(world, pm, [("Rotate the credentials", world.peer, NOW.date())])
    item = ActionItem.objects.get()
    as_user(client, world.lead)
    assert "Mark done" in text_of(client.get(url("action_items")))
    client.post(url("action_item_close", item.pk))
    item.refresh_from_db()
    assert item.status == ActionItem.Status.DONE and item.done_by == world.lead
    assert "0 open action items." in text_of(client.get(url("action_items")))


def test_after_an_error_the_times_are_redrawn_in_the_newly_chosen_zone(client, world):
    pm = draft(world)
    as_user(client, world.author)
    data = edit_data(client, pm, time_zone="Asia/Tokyo", title="")
    response = client.post(url("edit", pm.pk), data)
    assert response.status_code == 400
    html = response.content.decode()
    # 10:00 in Paris is 18:00 in Tokyo; the hidden marker says which zone the page shows.
    assert 'name="started_at" value="2026-03-02T18:00"' in html
    assert 'name="shown_zone" value="Asia/Tokyo"' in html
    # Sending that page again (title fixed) stores the same moments.
    data = edit_data(client, pm, time_zone="Asia/Tokyo", title="Fixed")
    data.update({"shown_zone": "Asia/Tokyo", "started_at": "2026-03-02T18:00"})
    data["ended_at"] = "2026-03-02T18:45"
    data = {k: v for k, v in data.items() if not k.startswith("timeline-")}
    data.update({"timeline-TOTAL_FORMS": "0", "timeline-INITIAL_FORMS": "0"})
    client.post(url("edit", pm.pk), data)
    pm.refresh_from_db()
    assert pm.started_at == T0 and pm.time_zone == "Asia/Tokyo"


def test_one_amend_save_touching_sections_and_rows_is_one_amendment(client, world):
    """Changing the root cause and a timeline row in one save records one amendment with both
    changes, and the earlier version still reads as it was before that save."""
    pm = published(world)
    first = pm.timeline_items.order_by("at", "position", "id").first()
    old_root_cause = pm.root_cause
    as_user(client, world.author)
    data = edit_data(
        client,
        pm,
        "amend",
        reason="Corrected after the vendor's report.",
        root_cause="The vendor's disk firmware reported free space wrongly.",
        **{"timeline-0-text": "The vendor's status page confirmed the firmware fault."},
    )
    response = client.post(url("amend", pm.pk), data, follow=True)
    assert response.redirect_chain[-1][0] == url("detail", pm.pk)

    amendment = Amendment.objects.get(postmortem=pm)
    assert amendment.reason == "Corrected after the vendor's report."
    assert amendment.author == world.author
    assert set(amendment.after) == {"root_cause", "timeline_items"}
    assert amendment.before["root_cause"] == old_root_cause
    old = text_of(client.get(url("version", pm.pk, 1)))
    assert first.text in old
    assert "The vendor's status page confirmed the firmware fault." not in old
