"""The postmortem pages: writing, review, publishing, reading, and the action items.

Every page finds its postmortem through `postmortems.selectors` (who may read what is decided
there once) and every change is one call to `postmortems.services`. A draft answers **404** to
anyone outside its team's leads and responders — observers included — exactly like a missing
postmortem, on every address (page, edit, download, version); a published postmortem's edit or
amend page answers 403 to someone who may read it but not change it. Refusals from the
services (publishing without an approval, a stale review) come back as a message on the page,
never a 500.
"""

import datetime as dt
import re
import zoneinfo
from collections import defaultdict

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import transaction
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from incidents.models import Incident, Service
from oncall import access
from oncall.models import Team

from . import selectors, services
from .forms import (
    ActionItemFilterForm,
    ActionItemFormSet,
    AmendmentReasonForm,
    CommentForm,
    DecisionForm,
    PostmortemFilterForm,
    PostmortemForm,
    PreviewForm,
    PublishForm,
    ReviewRequestForm,
    TimelineFormSet,
    add_service_error,
    day_bounds,
    person_name,
    team_people,
    zone_or_utc,
)
from .markdown import render_markdown
from .models import ActionItem, Amendment, Postmortem, ReviewComment, ReviewRequest, TimelineItem
from .services import PostmortemError, PostmortemPermissionError
from .words import check_texts, check_words, word_count

PAGE_SIZE = 20
SECTIONS = ReviewComment.Section


def _writer(user, postmortem_or_team) -> bool:
    return services.can_write(user, postmortem_or_team)


def _detail(postmortem: Postmortem) -> str:
    return reverse("postmortems:detail", args=[postmortem.pk])


def _refuse(error: PostmortemError):
    """A service said no because of who asks: the 403 page with its reason."""
    raise PermissionDenied(error.message)


# --- list --------------------------------------------------------------------------------------


@login_required
def postmortem_list(request):
    """Published postmortems for everyone; the team's drafts too (marked) for its leads and
    responders, with a status filter. Filters: team, service, date range, urgency, and words."""
    user = request.user
    visible = selectors.visible_postmortems(user=user)
    sees_drafts = user.is_superuser or bool(access.acting_team_ids(user))
    teams = list(Team.objects.filter(postmortems__in=visible).distinct().order_by("name"))
    service_rows = list(
        Service.objects.filter(postmortems__in=visible)
        .select_related("team")
        .distinct()
        .order_by("team__name", "name")
    )
    form = PostmortemFilterForm(
        request.GET or None, teams=teams, services=service_rows, drafts=sees_drafts
    )
    context = {"form": form, "page": None, "filtered": False, "sees_drafts": sees_drafts}
    if form.is_bound and not form.is_valid():
        return render(request, "postmortems/postmortem_list.html", context, status=400)
    filters = form.cleaned_data if form.is_bound else {}
    zone = timezone.get_current_timezone()
    start, end = filters.get("start"), filters.get("end")
    results = selectors.postmortem_search(
        user=user,
        q=filters.get("q", ""),
        team=filters.get("team"),
        service=filters.get("service"),
        urgency=filters.get("urgency") or None,
        status=filters.get("status") or None,
        start=day_bounds(start, zone) if start else None,
        end=day_bounds(end, zone, end=True) - dt.timedelta(microseconds=1) if end else None,
    )
    page = Paginator(results, PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context.update(
        page=page,
        filtered=any(v not in (None, "") for v in filters.values()),
        query=query.urlencode(),
    )
    return render(request, "postmortems/postmortem_list.html", context)


# --- the page of one postmortem ----------------------------------------------------------------


def _reviews_state(postmortem: Postmortem, user) -> dict:
    """What the page shows of the review, from the prefetched rows (no further query)."""
    reviews = list(postmortem.reviews.all())
    approved = [
        r
        for r in reviews
        if r.state == ReviewRequest.State.APPROVED and r.reviewer_id != postmortem.author_id
    ]
    mine = next((r for r in reviews if r.reviewer_id == user.pk), None)
    return {"reviews": reviews, "approved": bool(approved), "my_review": mine}


def _comments_by_section(postmortem: Postmortem) -> dict:
    grouped = defaultdict(list)
    for comment in postmortem.comments.all():
        grouped[comment.section].append(comment)
    return grouped


def _sections(postmortem: Postmortem, comments: dict) -> list[dict]:
    return [
        {"key": key, "label": label, "comments": comments.get(key, [])}
        for key, label in SECTIONS.choices
    ]


@login_required
def postmortem_detail(request, pk: int):
    """The reading page, led by the issue summary; for the team it is also the review page:
    per-section comments, the reviewers' decisions, request review, publish."""
    user = request.user
    postmortem = get_object_or_404(selectors.postmortem_detail_queryset(user=user), pk=pk)
    writer = _writer(user, postmortem)
    review = _reviews_state(postmortem, user)
    editable = postmortem.is_editable
    comments = _comments_by_section(postmortem) if writer else {}
    is_author = postmortem.author_id == user.pk
    can_publish = writer and not postmortem.is_published and services.can_publish(user, postmortem)
    is_lead = services.can_lead(user, postmortem)
    context = {
        "pm": postmortem,
        "writer": writer,
        "editable": editable,
        "is_author": is_author,
        "is_lead": is_lead,
        "words": check_words(word_count(postmortem)),
        "sections": _sections(postmortem, comments),
        "open_comments": sum(1 for c in postmortem.comments.all() if not c.resolved)
        if writer
        else 0,
        "timeline": list(postmortem.timeline_items.all()),
        "action_items": list(postmortem.action_items.all()),
        "incidents": list(postmortem.incidents.all()),
        "amendments": list(postmortem.amendments.all()),
        "can_publish": can_publish,
        "can_decide": bool(
            writer and editable and review["my_review"] is not None and not is_author
        ),
        "can_request_review": bool(writer and editable and (is_author or is_lead)),
        "can_comment": bool(writer and editable),
        "can_resolve": bool(writer and (is_author or is_lead)),
        "can_amend": bool(writer and postmortem.is_published),
        **review,
    }
    if context["can_request_review"]:
        context["review_form"] = ReviewRequestForm(
            people=team_people(postmortem.team_id), author_id=postmortem.author_id
        )
    if can_publish:
        context["publish_form"] = PublishForm()
    context["decision_form"] = DecisionForm() if context["can_decide"] else None
    return render(request, "postmortems/postmortem_detail.html", context)


# --- create ------------------------------------------------------------------------------------


@login_required
@require_POST
def postmortem_create(request):
    """ "Create postmortem" on a resolved incident's page (or several incidents at once): a
    draft filled from the incidents, or the one that already covers them."""
    user = request.user
    ids = []
    for value in request.POST.getlist("incident"):
        if not value.isdigit():
            messages.error(request, f"“{value}” is not an incident number.")
            return redirect("incidents:list")
        ids.append(int(value))
    if not ids:
        messages.error(request, "Choose the incident the postmortem is about.")
        return redirect("incidents:list")
    incidents = list(Incident.objects.filter(pk__in=ids).select_related("service"))
    back = reverse("incidents:detail", args=[ids[0]]) if incidents else reverse("incidents:list")
    if len(incidents) != len(set(ids)):
        raise Http404("No such incident.")
    for incident in incidents:
        access.require_operational(user, incident.service.team_id)
    existing = selectors.incident_postmortems(user=user, incidents=incidents)
    try:
        postmortem = services.postmortem_create_from_incidents(user=user, incidents=incidents)
    except PostmortemPermissionError as error:
        _refuse(error)
    except PostmortemError as error:
        messages.error(request, error.message)
        return redirect(back)
    if existing:
        messages.info(request, f"This incident already has a postmortem: “{postmortem.title}”.")
        if not postmortem.is_editable:
            return redirect(_detail(postmortem))
    else:
        messages.success(
            request,
            "Draft created from the incident: check the times, fill in the impact and the "
            "root cause, then ask a peer to review it.",
        )
    return redirect("postmortems:edit", pk=postmortem.pk)


# --- edit and amend ----------------------------------------------------------------------------


class _Rejected(Exception):
    """A service refused one of the changes: the whole save is rolled back."""


def _timeline_initial(items: list[TimelineItem]) -> list[dict]:
    return [
        {"item_id": i.pk, "at": i.at, "kind": i.kind, "detection": i.detection, "text": i.text}
        for i in items
    ]


def _action_initial(items: list[ActionItem]) -> list[dict]:
    return [
        {
            "item_id": i.pk,
            "title": i.title,
            "owner": i.owner_id,
            "due_date": i.due_date,
            "status": i.status,
            "url": i.url,
        }
        for i in items
    ]


class EditForms:
    """The edit page's forms together: the postmortem, its timeline rows, its action items and,
    when amending a published postmortem, the reason."""

    def __init__(self, request, postmortem: Postmortem, *, amending: bool):
        # A copy: the page may redraw the submitted times in another zone (show_in_chosen_zone).
        data = request.POST.copy() if request.method == "POST" else None
        self.postmortem = postmortem
        self.amending = amending
        self.team_services = list(Service.objects.filter(team_id=postmortem.team_id))
        self.people = team_people(postmortem.team_id)
        self.people_by_id = {u.pk: u for u in self.people}
        self.timeline_items = {
            i.pk: i for i in postmortem.timeline_items.order_by("at", "position", "id")
        }
        self.action_items = {
            i.pk: i
            for i in postmortem.action_items.select_related("owner__profile").order_by(
                "due_date", "id"
            )
        }
        self.main = PostmortemForm(data, postmortem=postmortem, services=self.team_services)
        zone = self.main.zone
        self.timeline = TimelineFormSet(
            data,
            prefix="timeline",
            initial=_timeline_initial(list(self.timeline_items.values())),
            form_kwargs={"zone": zone},
        )
        self.actions = ActionItemFormSet(
            data,
            prefix="actions",
            initial=_action_initial(list(self.action_items.values())),
            form_kwargs={"people": self.people},
        )
        self.reason = AmendmentReasonForm(data) if amending else None

    def show_in_chosen_zone(self) -> None:
        """The page comes back with errors after the zone was changed: redraw the typed times
        in the newly chosen zone (the same moments), so what is shown matches the select."""
        main = self.main
        if not main.is_bound:
            return
        main.is_valid()  # cleaned_data then holds every field that is valid
        chosen = main.cleaned_data.get("time_zone")
        if not chosen or chosen == getattr(main.zone, "key", ""):
            return
        zone = zone_or_utc(chosen)
        data = main.data
        for form, name in [(main, "started_at"), (main, "ended_at")] + [
            (form, "at") for form in self.timeline.forms
        ]:
            value = (getattr(form, "cleaned_data", None) or {}).get(name)
            if value:
                data[form.add_prefix(name)] = value.astimezone(zone).strftime("%Y-%m-%dT%H:%M")
        data[main.add_prefix("shown_zone")] = chosen

    def all_valid(self) -> bool:
        valid = [self.main.is_valid(), self.timeline.is_valid(), self.actions.is_valid()]
        if self.reason is not None:
            valid.append(self.reason.is_valid())
        return all(valid)

    def word_check(self):
        """The word count of what is on the page (submitted or saved)."""
        if self.main.is_bound:
            texts = [self.main.data.get(name, "") for name in PostmortemForm.MARKDOWN_FIELDS]
            for formset, field in ((self.timeline, "text"), (self.actions, "title")):
                for form in formset.forms:
                    if form.data.get(form.add_prefix("DELETE")):
                        continue
                    texts.append(form.data.get(form.add_prefix(field), ""))
            return check_texts(texts)
        return check_words(word_count(self.postmortem))

    def error_items(self) -> list[tuple[str, str]]:
        """Every problem on the page as (link to the field, text), for the summary on top."""
        items = []
        named = [(self.main, "")]
        if self.reason is not None:
            named.insert(0, (self.reason, ""))
        for formset, label in ((self.timeline, "Timeline row"), (self.actions, "Action item")):
            for error in formset.non_form_errors():
                items.append(("", error))
            for number, form in enumerate(formset.forms, start=1):
                named.append((form, f"{label} {number}"))
        for form, prefix in named:
            if not form.is_bound or not form.errors:
                continue
            for error in form.non_field_errors():
                items.append(("", f"{prefix}: {error}" if prefix else error))
            for field in form:
                for error in field.errors:
                    text = f"{field.label}: {error}"
                    items.append(
                        (f"#{field.id_for_label}", f"{prefix}, {text}" if prefix else text)
                    )
        return items

    def previews(self) -> dict:
        if not self.main.is_bound:
            return {}
        return {
            name: render_markdown(self.main.data.get(name, ""))
            for name in PostmortemForm.MARKDOWN_FIELDS
        }

    # -- saving --

    def save(self, user) -> int:
        """Apply every change through the services in one transaction; returns how many
        things changed. A refusal is shown next to its field and nothing is saved."""
        reason = self.reason.cleaned_data["reason"] if self.reason is not None else ""
        changes = 0
        if self.amending:
            # One save, one amendment, however many sections and rows it touches.
            recording = services.amendment_recorded(
                postmortem=self.postmortem, user=user, reason=reason
            )
        else:
            recording = transaction.atomic()
        try:
            with recording:
                changes += self._save_main(user, reason)
                changes += self._save_timeline(user, reason)
                changes += self._save_actions(user, reason)
                if self.amending and not changes:
                    self.main.add_error(None, "Nothing changed: there is nothing to amend.")
                    raise _Rejected
        except _Rejected:
            return -1
        return changes

    def _save_main(self, user, reason: str) -> int:
        try:
            if self.amending:
                changed = self.main.changed_fields()
                if not changed:
                    return 0
                services.postmortem_amend(
                    postmortem=self.postmortem, user=user, reason=reason, **changed
                )
                return 1
            changed = self.main.changed_fields()
            if changed:
                services.postmortem_update(postmortem=self.postmortem, user=user, **changed)
            return 1 if changed else 0
        except PostmortemPermissionError as error:
            _refuse(error)
        except PostmortemError as error:
            add_service_error(self.main, error)
            raise _Rejected from error

    def _item_error(self, form, error: PostmortemError):
        if error.field == "reason" and self.reason is not None:
            add_service_error(self.reason, error)
        else:
            add_service_error(form, error)
        raise _Rejected from error

    def _save_timeline(self, user, reason: str) -> int:
        changes = 0
        for form in self.timeline.forms:
            data = form.cleaned_data
            if not data:
                continue  # the untouched blank row
            item = self.timeline_items.get(data.get("item_id"))
            if data.get("item_id") is not None and item is None:
                form.add_error(None, "This row was removed meanwhile: reload the page.")
                raise _Rejected
            try:
                if data.get("DELETE"):
                    if item is not None:
                        services.timeline_item_delete(item=item, user=user, reason=reason)
                        changes += 1
                    continue
                at = data["at"]
                if item is not None:
                    if item.at.replace(second=0, microsecond=0) == at:
                        at = item.at  # the page shows minutes: keep the stored seconds
                    if (item.at, item.kind, item.detection, item.text) == (
                        at,
                        data["kind"],
                        data["detection"],
                        data["text"].strip(),
                    ):
                        continue
                services.timeline_item_save(
                    postmortem=self.postmortem,
                    user=user,
                    at=at,
                    text=data["text"],
                    kind=data["kind"],
                    detection=data["detection"],
                    item=item,
                    reason=reason,
                )
                changes += 1
            except PostmortemPermissionError as error:
                _refuse(error)
            except PostmortemError as error:
                self._item_error(form, error)
        return changes

    def _save_actions(self, user, reason: str) -> int:
        changes = 0
        for form in self.actions.forms:
            data = form.cleaned_data
            if not data:
                continue
            item = self.action_items.get(data.get("item_id"))
            if data.get("item_id") is not None and item is None:
                form.add_error(None, "This action item was removed meanwhile: reload the page.")
                raise _Rejected
            try:
                if data.get("DELETE"):
                    if item is not None:
                        services.action_item_delete(item=item, user=user, reason=reason)
                        changes += 1
                    continue
                owner = self.people_by_id.get(data["owner"])
                if item is None or (item.title, item.owner_id, item.due_date, item.url) != (
                    data["title"].strip(),
                    data["owner"],
                    data["due_date"],
                    data["url"],
                ):
                    item = services.action_item_save(
                        postmortem=self.postmortem,
                        user=user,
                        title=data["title"],
                        owner=owner,
                        due_date=data["due_date"],
                        url=data["url"],
                        item=item,
                        reason=reason,
                    )
                    changes += 1
                if data["status"] != item.status:
                    if data["status"] == ActionItem.Status.DONE:
                        services.action_item_close(item=item, user=user)
                    else:
                        services.action_item_reopen(item=item, user=user)
                    changes += 1
            except PostmortemPermissionError as error:
                add_service_error(form, PostmortemError(error.message, field="status"))
                raise _Rejected from error
            except PostmortemError as error:
                self._item_error(form, error)
        return changes


def _edit_page(request, pk: int, *, amending: bool):
    user = request.user
    postmortem = selectors.postmortem_for_user(user=user, pk=pk, for_write=True)
    if amending and not postmortem.is_published:
        messages.info(request, "This postmortem is not published yet: edit it directly.")
        return redirect("postmortems:edit", pk=pk)
    if not amending and postmortem.is_published:
        messages.info(
            request, "This postmortem is published: changes are amendments, with a reason."
        )
        return redirect("postmortems:amend", pk=pk)
    forms = EditForms(request, postmortem, amending=amending)
    status = 200
    previewing = request.method == "POST" and "preview" in request.POST
    if request.method == "POST" and not previewing:
        if forms.all_valid():
            changes = forms.save(user)
            if changes >= 0:
                words = forms.word_check()
                if amending:
                    messages.success(
                        request, "Amendment recorded: readers see what changed and why."
                    )
                elif changes:
                    messages.success(request, "Postmortem saved.")
                else:
                    messages.info(request, "Nothing changed.")
                if not words.within:
                    messages.warning(
                        request,
                        f"{words.message}. It is saved; reviewers will see this warning.",
                    )
                if amending:
                    return redirect(_detail(postmortem))
                return redirect("postmortems:edit", pk=pk)
        status = 400
        forms.show_in_chosen_zone()
    context = {
        "pm": postmortem,
        "forms": forms,
        "form": forms.main,
        "amending": amending,
        "words": forms.word_check(),
        "previews": forms.previews() if previewing else {},
        "previewing": previewing,
        "error_items": forms.error_items() if status == 400 else [],
        "comments": _comments_by_section(
            Postmortem.objects.prefetch_related("comments__author__profile").get(pk=pk)
        ),
        "duration": postmortem.duration,
    }
    return render(request, "postmortems/postmortem_edit.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def postmortem_edit(request, pk: int):
    return _edit_page(request, pk, amending=False)


@login_required
@require_http_methods(["GET", "POST"])
def postmortem_amend(request, pk: int):
    return _edit_page(request, pk, amending=True)


@login_required
@require_POST
def markdown_preview(request):
    """The sanitised HTML of some Markdown, for the edit page's Preview tabs."""
    if not (request.user.is_superuser or access.acting_team_ids(request.user)):
        raise PermissionDenied("Only leads and responders write postmortems.")
    form = PreviewForm(request.POST)
    if not form.is_valid():
        return JsonResponse({"error": "The text is too long to preview."}, status=400)
    text = form.cleaned_data["text"]
    html = str(render_markdown(text))
    return JsonResponse({"html": html, "empty": not text.strip()})


# --- review ------------------------------------------------------------------------------------


def _writer_postmortem(request, pk: int) -> Postmortem:
    return selectors.postmortem_for_user(user=request.user, pk=pk, for_write=True)


@login_required
@require_POST
def review_request(request, pk: int):
    """The author (or a lead) asks peers to review."""
    postmortem = _writer_postmortem(request, pk)
    form = ReviewRequestForm(
        request.POST, people=team_people(postmortem.team_id), author_id=postmortem.author_id
    )
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect(_detail(postmortem) + "#review")
    try:
        requests = services.review_request(
            postmortem=postmortem, user=request.user, reviewers=form.chosen()
        )
    except PostmortemError as error:
        messages.error(request, error.message)
    else:
        names = ", ".join(person_name(r.reviewer) for r in requests)
        messages.success(request, f"Review requested from {names}.")
    return redirect(_detail(postmortem) + "#review")


@login_required
@require_POST
def review_decide(request, pk: int):
    """A reviewer approves or requests changes, with an optional note."""
    postmortem = _writer_postmortem(request, pk)
    form = DecisionForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Approve or request changes.")
        return redirect(_detail(postmortem) + "#review")
    try:
        services.review_decide(
            postmortem=postmortem,
            user=request.user,
            decision=form.cleaned_data["decision"],
            note=form.cleaned_data["note"],
        )
    except PostmortemError as error:
        messages.error(request, error.message)
    else:
        if form.cleaned_data["decision"] == ReviewRequest.State.APPROVED:
            messages.success(request, "You approved this postmortem.")
        else:
            messages.success(request, "You asked for changes: the author sees your note.")
    return redirect(_detail(postmortem) + "#review")


@login_required
@require_POST
def comment_add(request, pk: int):
    postmortem = _writer_postmortem(request, pk)
    form = CommentForm(request.POST)
    section = request.POST.get("section", "")
    anchor = f"#section-{section}" if section in SECTIONS.values else ""
    if not form.is_valid():
        messages.error(request, "Write the comment (at most 5,000 characters).")
        return redirect(_detail(postmortem) + anchor)
    try:
        services.review_comment_add(
            postmortem=postmortem,
            user=request.user,
            section=form.cleaned_data["section"],
            body=form.cleaned_data["body"],
        )
    except PostmortemError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Comment added.")
    return redirect(_detail(postmortem) + anchor)


@login_required
@require_POST
def comment_resolve(request, pk: int, comment_pk: int):
    postmortem = _writer_postmortem(request, pk)
    comment = get_object_or_404(
        ReviewComment.objects.select_related("postmortem"), pk=comment_pk, postmortem=postmortem
    )
    resolved = request.POST.get("resolved", "1") != "0"
    try:
        services.review_comment_resolve(comment=comment, user=request.user, resolved=resolved)
    except PostmortemError as error:
        messages.error(request, error.message)
    else:
        messages.success(request, "Comment marked resolved." if resolved else "Comment reopened.")
    return redirect(_detail(postmortem) + f"#section-{comment.section}")


# --- publish -----------------------------------------------------------------------------------


@login_required
@require_POST
def postmortem_publish(request, pk: int):
    postmortem = _writer_postmortem(request, pk)
    form = PublishForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        services.postmortem_publish(postmortem=postmortem, user=request.user, reason=reason)
    except PostmortemError as error:
        messages.error(request, error.message)
        return redirect(_detail(postmortem) + "#publish")
    messages.success(request, "Published: everyone in the company can read it now.")
    return redirect(_detail(postmortem))


# --- download and earlier versions -------------------------------------------------------------


@login_required
def postmortem_download(request, pk: int):
    """The postmortem as a Markdown file."""
    postmortem = get_object_or_404(selectors.postmortem_detail_queryset(user=request.user), pk=pk)
    text = selectors.postmortem_markdown(postmortem)
    slug = re.sub(r"[^a-z0-9]+", "-", postmortem.title.lower()).strip("-")[:60] or "postmortem"
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="postmortem-{postmortem.pk}-{slug}.md"'
    return response


# What an amendment records: the fields a person writes, then the timeline and action items.
CONTENT_FIELDS = (*services.EDITABLE_FIELDS, "timeline_items", "action_items")


def _current_state(postmortem: Postmortem) -> dict:
    """The postmortem's content in the shape amendments record it (`before` / `after`)."""
    state = {
        name: getattr(postmortem, name) for name in services.EDITABLE_FIELDS if name != "services"
    }
    for name in ("started_at", "ended_at"):
        state[name] = state[name].isoformat() if state[name] else None
    if state["users_affected_percent"] is not None:
        state["users_affected_percent"] = str(state["users_affected_percent"])
    state["services"] = sorted(s.name for s in postmortem.services.all())
    state["timeline_items"] = [
        {"at": i.at.isoformat(), "kind": i.kind, "detection": i.detection, "text": i.text}
        for i in postmortem.timeline_items.all()
    ]
    state["action_items"] = [
        {
            "title": i.title,
            "owner": i.owner.get_username(),
            "due_date": i.due_date.isoformat(),
            "status": i.status,
            "url": i.url,
        }
        for i in postmortem.action_items.all()
    ]
    return state


def version_state(postmortem: Postmortem, amendments: list[Amendment], number: int) -> dict:
    """Version `number` of a published postmortem: 1 is as first published, n + 1 is after the
    n-th amendment. Found by undoing the later amendments, newest first, from today's text."""
    state = _current_state(postmortem)
    for amendment in reversed(amendments[number - 1 :]):
        state.update(amendment.before)
    return state


KIND_LABELS = dict(TimelineItem.Kind.choices)
DETECTION_LABELS = dict(TimelineItem.Detection.choices)


@login_required
def postmortem_version(request, pk: int, number: int):
    """An earlier version of a published postmortem, as it read before an amendment."""
    postmortem = get_object_or_404(selectors.postmortem_detail_queryset(user=request.user), pk=pk)
    amendments = list(postmortem.amendments.all())
    if not postmortem.is_published or not 1 <= number <= len(amendments) + 1:
        raise Http404("No such version.")
    state = version_state(postmortem, amendments, number)
    zone = _zone(state.get("time_zone"))
    timeline = []
    for item in state.get("timeline_items") or []:
        when = parse_datetime(item.get("at") or "")
        timeline.append(
            {
                "at": when.astimezone(zone) if when else None,
                "kind": KIND_LABELS.get(item.get("kind"), item.get("kind")),
                "detection": DETECTION_LABELS.get(item.get("detection"), ""),
                "text": item.get("text", ""),
            }
        )
    started = parse_datetime(state.get("started_at") or "")
    ended = parse_datetime(state.get("ended_at") or "")
    context = {
        "pm": postmortem,
        "number": number,
        "latest": len(amendments) + 1,
        "amendment": amendments[number - 1] if number <= len(amendments) else None,
        "state": state,
        "started": started.astimezone(zone) if started else None,
        "ended": ended.astimezone(zone) if ended else None,
        "duration": (ended - started) if started and ended else None,
        "timeline": timeline,
        "versions": range(1, len(amendments) + 2),
    }
    return render(request, "postmortems/postmortem_version.html", context)


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    return zone_or_utc(name)


# --- action items ------------------------------------------------------------------------------


@login_required
def action_items(request):
    """Open action items across the postmortems the reader sees, grouped by owner, soonest due
    first; overdue ones marked. "Only mine" narrows to the reader's own."""
    user = request.user
    form = ActionItemFilterForm(request.GET or None)
    mine = bool(form.is_valid() and form.cleaned_data["mine"])
    items = list(selectors.open_action_items(user=user, owner=user if mine else None))
    lead_teams = access.lead_team_ids(user)
    today = timezone.localdate()
    groups: dict[int, dict] = {}
    for item in items:
        item.overdue = item.due_date < today
        item.can_close = (
            user.is_superuser or item.owner_id == user.pk or (item.postmortem.team_id in lead_teams)
        )
        group = groups.setdefault(
            item.owner_id,
            {"owner": item.owner, "name": person_name(item.owner), "items": [], "overdue": 0},
        )
        group["items"].append(item)
        group["overdue"] += item.overdue
    ordered = sorted(
        groups.values(),
        key=lambda g: (g["owner"].pk != user.pk, g["items"][0].due_date, g["name"].lower()),
    )
    context = {
        "form": form,
        "mine": mine,
        "groups": ordered,
        "total": len(items),
        "overdue": sum(g["overdue"] for g in ordered),
        "today": today,
    }
    return render(request, "postmortems/action_items.html", context)


def _back(request, default: str) -> str:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return default


@login_required
@require_POST
def action_item_close(request, pk: int):
    """The owner (or a lead of the team) marks an action item done; `reopen=1` opens it again."""
    item = get_object_or_404(
        selectors.action_item_list(user=request.user).select_related("postmortem"), pk=pk
    )
    back = _back(request, reverse("postmortems:action_items"))
    reopen = request.POST.get("reopen") == "1"
    try:
        if reopen:
            services.action_item_reopen(item=item, user=request.user)
        else:
            services.action_item_close(item=item, user=request.user)
    except PostmortemError as error:
        messages.error(request, error.message)
    else:
        verb = "reopened" if reopen else "marked done"
        messages.success(request, f"“{item.title}” {verb}.")
    return redirect(back)
