"""The incident list: filters, counts per status, pages, and its live updates.

One request parser (`_read_list_request`) serves the page and the live endpoint, so both show
the same incidents for the same query string. Unknown menu values (a status, team, service,
urgency or sort the reader can't pick, a page that isn't a number) fall back with a warning on
the page; dates that aren't dates, or a range that ends before it starts, answer 400 with the
form's error summary: the reader typed those and must fix them.
"""

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Page, Paginator
from django.http import JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from oncall.models import Urgency

from . import list_selectors as selectors
from .list_selectors import ListFilters, TeamChoice
from .selectors import DEFAULT_STATUS_FILTER, STATUS_FILTERS
from .views import operational_team_ids

INCIDENTS_PER_PAGE = 25
LIVE_INTERVAL_SECONDS = 5

STATUS_FILTER_LABELS = {
    "open": "Open",
    "triggered": "Triggered",
    "acknowledged": "Acknowledged",
    "resolved": "Resolved",
    "all": "All",
}
URGENCY_LABELS = {Urgency.HIGH.value: "High", Urgency.LOW.value: "Low"}
CHECKED = {"1", "on", "true", "yes"}
UNCHECKED = {"", "0", "off", "false", "no"}
EARLIEST_YEAR, LATEST_YEAR = 1970, 2999


def _quoted(value: str) -> str:
    """A value the reader sent, shortened for a message (the template escapes it)."""
    value = value.strip()
    return f"“{value[:50]}{'…' if len(value) > 50 else ''}”"


class DayField(forms.DateField):
    """A day typed as YYYY-MM-DD (what a date picker sends), and only that: 03/04/2026 means
    different days to different readers. The error repeats what was typed."""

    def __init__(self, **kwargs):
        kwargs.setdefault("input_formats", ["%Y-%m-%d"])
        kwargs.setdefault("widget", forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"))
        super().__init__(**kwargs)

    def to_python(self, value):
        try:
            return super().to_python(value)
        except ValidationError:
            raise ValidationError(
                f"{_quoted(str(value))} is not a date: enter one such as 2025-01-31.",
                code="invalid",
            ) from None


class IncidentFilterForm(forms.Form):
    """The filter form of the list (a GET form). Menus only offer the reader's teams and
    services; the view replaces values outside them before binding, so the only errors left
    are the dates'."""

    team = forms.ChoiceField(label="Team", required=False)
    service = forms.ChoiceField(label="Service", required=False)
    urgency = forms.ChoiceField(
        label="Urgency",
        required=False,
        choices=[("", "Any urgency"), *URGENCY_LABELS.items()],
    )
    mine = forms.BooleanField(label="Assigned to me", required=False)
    triggered_from = DayField(label="Triggered from", required=False)
    triggered_to = DayField(label="Triggered to (included)", required=False)
    sort = forms.ChoiceField(label="Sort by", required=False, choices=selectors.SORTS.items())

    def __init__(self, *args, teams: list[TeamChoice], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [("", "All my teams")] + [
            (str(team.id), team.name) for team in teams
        ]
        self.fields["service"].choices = [("", "All services")] + [
            (team.name, [(str(service.id), service.name) for service in team.services])
            for team in teams
            if team.services
        ]

    def _check_year(self, name: str) -> date | None:
        value = self.cleaned_data.get(name)
        if value is not None and not EARLIEST_YEAR <= value.year <= LATEST_YEAR:
            raise ValidationError(f"Choose a date between {EARLIEST_YEAR} and {LATEST_YEAR}.")
        return value

    def clean_triggered_from(self):
        return self._check_year("triggered_from")

    def clean_triggered_to(self):
        return self._check_year("triggered_to")

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("triggered_from"), cleaned.get("triggered_to")
        if start and end and end < start:
            self.add_error(
                "triggered_to",
                f"The range ends ({end:%Y-%m-%d}) before it starts ({start:%Y-%m-%d}): "
                "choose an end on or after the start.",
            )
        return cleaned


@dataclass
class ListRequest:
    """The list request, read: the filters to apply (None when the form has errors), the bound
    form to show, the warnings about values that were replaced, and the canonical query (the
    filters as a query string, without the page) that links and the live poll reuse."""

    form: IncidentFilterForm
    teams: list[TeamChoice]
    filters: ListFilters | None
    query: dict[str, str]
    page_number: int = 1
    warnings: list[str] = field(default_factory=list)


def _read_list_request(request, team_ids) -> ListRequest:  # noqa: C901 - one check per filter
    teams = selectors.list_filter_choices(team_ids=team_ids)
    params = request.GET
    warnings: list[str] = []

    status = params.get("status", "").strip().lower() or DEFAULT_STATUS_FILTER
    if status not in STATUS_FILTERS:
        warnings.append(
            f"{_quoted(status)} is not a status filter; showing open incidents instead."
        )
        status = DEFAULT_STATUS_FILTER

    team = None
    raw_team = params.get("team", "").strip()
    if raw_team:
        team = next((t for t in teams if str(t.id) == raw_team or t.slug == raw_team), None)
        if team is None:
            warnings.append(
                f"{_quoted(raw_team)} is not one of your teams; showing all your teams instead."
            )

    service_id = None
    raw_service = params.get("service", "").strip()
    if raw_service:
        owner = next((t for t in teams for s in t.services if str(s.id) == raw_service), None)
        if owner is None:
            warnings.append(
                f"{_quoted(raw_service)} is not a service of your teams; "
                "showing all services instead."
            )
        elif team is not None and owner.id != team.id:
            warnings.append(
                f"That service belongs to {owner.name}, not {team.name}; "
                f"showing all of {team.name}’s services instead."
            )
        else:
            service_id = int(raw_service)

    urgency = params.get("urgency", "").strip().lower()
    if urgency and urgency not in URGENCY_LABELS:
        warnings.append(
            f"{_quoted(urgency)} is not an urgency (high or low); showing any urgency instead."
        )
        urgency = ""

    sort = params.get("sort", "").strip().lower() or selectors.DEFAULT_SORT
    if sort not in selectors.SORTS:
        warnings.append(f"{_quoted(sort)} is not a sort order; showing newest first instead.")
        sort = selectors.DEFAULT_SORT

    raw_mine = params.get("mine", "").strip().lower()
    mine = raw_mine in CHECKED
    if raw_mine not in CHECKED | UNCHECKED:
        warnings.append(
            f"{_quoted(raw_mine)} is not a yes or no for “Assigned to me”; "
            "showing everybody’s incidents instead."
        )

    page_number = 1
    raw_page = params.get("page", "").strip()
    if raw_page:
        if raw_page.isascii() and raw_page.isdigit() and len(raw_page) <= 9 and int(raw_page) > 0:
            page_number = int(raw_page)
        else:
            warnings.append(f"{_quoted(raw_page)} is not a page number; showing page 1.")

    form = IncidentFilterForm(
        {
            "team": str(team.id) if team else "",
            "service": str(service_id or ""),
            "urgency": urgency,
            "mine": "on" if mine else "",
            "triggered_from": params.get("triggered_from", "").strip(),
            "triggered_to": params.get("triggered_to", "").strip(),
            "sort": sort,
        },
        teams=teams,
    )
    query = {"status": status}
    filters = None
    if form.is_valid():
        data = form.cleaned_data
        zone = timezone.get_current_timezone()
        since = until = None
        if data["triggered_from"]:
            since = datetime.combine(data["triggered_from"], time.min, tzinfo=zone)
        if data["triggered_to"]:
            next_day = data["triggered_to"] + timedelta(days=1)
            until = datetime.combine(next_day, time.min, tzinfo=zone)
        filters = ListFilters(
            service_ids=selectors.list_scope(
                teams=teams,
                every_team=team_ids is None,
                team_id=team.id if team else None,
                service_id=service_id,
            ),
            status=status,
            urgency=urgency or None,
            assigned_to=request.user.pk if mine else None,
            since=since,
            until=until,
            sort=sort,
        )
        for name, value in (
            ("team", str(team.id) if team else ""),
            ("service", str(service_id or "")),
            ("urgency", urgency),
            ("mine", "1" if mine else ""),
            ("triggered_from", data["triggered_from"] and data["triggered_from"].isoformat()),
            ("triggered_to", data["triggered_to"] and data["triggered_to"].isoformat()),
            ("sort", "" if sort == selectors.DEFAULT_SORT else sort),
        ):
            if value:
                query[name] = value
    return ListRequest(
        form=form,
        teams=teams,
        filters=filters,
        query=query,
        page_number=page_number,
        warnings=warnings,
    )


# --- what a row shows ---------------------------------------------------------------------------


def age_text(seconds: float) -> str:
    """A duration to the minute, as the list's age column says it: "under a minute", "12 min",
    "2 h 5 min", "3 d 4 h". incident_list.js says it the same way when it refreshes the ages."""
    minutes = int(max(seconds, 0) // 60)
    if minutes < 1:
        return "under a minute"
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


def _decorate(incidents, now: datetime) -> list:
    rows = list(incidents)
    for incident in rows:
        incident.urgency_label = URGENCY_LABELS.get(incident.urgency, incident.urgency)
        if incident.resolved_at is not None:
            lasted = (incident.resolved_at - incident.triggered_at).total_seconds()
            incident.age = f"resolved after {age_text(lasted)}"
        else:
            incident.age = f"{age_text((now - incident.triggered_at).total_seconds())} ago"
    return rows


# --- the page and the live answer share their context -------------------------------------------


def _url(name: str, query: dict[str, str]) -> str:
    return reverse(name) + ("?" + urlencode(query) if query else "")


def _page_number(read: ListRequest, count: int) -> int:
    """The page asked for, or the last page when it asks beyond it (with a warning)."""
    last = max(1, -(-count // INCIDENTS_PER_PAGE))
    if read.page_number > last:
        if count:
            read.warnings.append(
                f"There is no page {read.page_number}; showing the last page, {last}."
            )
        return last
    return read.page_number


def _results_context(read: ListRequest, counts: dict[str, int]) -> dict:
    """Everything the counts and the results partials need, given the counts: two queries (the
    page of incidents, their assignees)."""
    filters = read.filters
    # The counts query has counted the incidents already: no COUNT(*) of the paginator's own.
    paginator = Paginator((), INCIDENTS_PER_PAGE)
    paginator.count = counts[filters.status]
    number = _page_number(read, paginator.count)
    incidents = selectors.incident_list_page(
        filters=filters, offset=(number - 1) * INCIDENTS_PER_PAGE, limit=INCIDENTS_PER_PAGE
    )
    rows = _decorate(incidents, timezone.now())
    page = Page(rows, number, paginator)
    status_links = [
        {
            "value": value,
            "label": label,
            "count": counts[value],
            "url": _url("incidents:list", {**read.query, "status": value}),
            "active": value == filters.status,
        }
        for value, label in STATUS_FILTER_LABELS.items()
    ]
    status_label = STATUS_FILTER_LABELS[filters.status]
    if set(read.query) - {"status", "sort"}:
        empty_text = f"No {status_label.lower()} incidents match these filters."
    elif filters.status == "open":
        empty_text = "No open incidents — all quiet."
    else:
        empty_text = f"No {status_label.lower()} incidents."
    return {
        "counts": counts,
        "version": selectors.list_version(
            counts=counts, stamps=[(row.pk, row.updated_at) for row in rows]
        ),
        "filters": status_links,
        "status_filter": filters.status,
        "status_label": status_label,
        "sort_label": selectors.SORTS[filters.sort],
        "page": page,
        "rows": rows,
        "empty_text": empty_text,
        "previous_url": (
            _url("incidents:list", {**read.query, "page": page.previous_page_number()})
            if page.has_previous()
            else None
        ),
        "next_url": (
            _url("incidents:list", {**read.query, "page": page.next_page_number()})
            if page.has_next()
            else None
        ),
        "page_title": (
            f"({counts['open']} open) {status_label} incidents"
            if counts["open"]
            else f"{status_label} incidents"
        ),
    }


@login_required
@never_cache
def incident_list(request):
    """The incidents of the reader's teams, filtered, counted per status, 25 a page."""
    team_ids = operational_team_ids(request.user)
    read = _read_list_request(request, team_ids)
    context = {
        "form": read.form,
        "warnings": read.warnings,
        "query": read.query,
        "clear_url": _url("incidents:list", {"status": read.query["status"]}),
        "active_filters": len(set(read.query) - {"status", "sort"}),
    }
    if read.filters is None:
        for name in ("triggered_from", "triggered_to"):
            if name in read.form.errors:
                # A date picker can't show what isn't a date: show the text typed, to correct.
                widget = read.form.fields[name].widget
                widget.input_type = "text"
                widget.attrs.update(placeholder="YYYY-MM-DD", inputmode="numeric")
        context.update(
            status_label=STATUS_FILTER_LABELS[read.query["status"]],
            page_title="Incidents: check the filters",
        )
        return render(request, "incidents/incident_list.html", context, status=400)
    counts = selectors.incident_list_counts(filters=read.filters)
    context.update(_results_context(read, counts))
    context["live"] = {
        "url": _url("incidents:list_live", {**read.query, "page": context["page"].number}),
        "interval_ms": LIVE_INTERVAL_SECONDS * 1000,
        "assigned_after": selectors.assignment_marker(user=request.user),
        "now": timezone.now(),
    }
    return render(request, "incidents/incident_list.html", context)


@require_GET
@never_cache
def incident_list_live(request):
    """The live poll of the list page: the same query string as the page plus `v`, the version
    the page shows. Unchanged → a tiny answer; changed → the rendered counts and results to swap
    in. With `assigned_after` (the page's assignment marker, sent once desktop notifications are
    allowed) the answer also lists the open incidents assigned to the reader since then."""
    if not request.user.is_authenticated:
        return JsonResponse({"error": "Sign in again to see live updates."}, status=401)
    team_ids = operational_team_ids(request.user)
    read = _read_list_request(request, team_ids)
    if read.filters is None:
        errors = [str(error) for errors in read.form.errors.values() for error in errors]
        return JsonResponse({"error": " ".join(errors)}, status=400)

    answer: dict = {"now": timezone.now().isoformat()}
    raw_after = request.GET.get("assigned_after", "").strip()
    if raw_after.isascii() and raw_after.isdigit() and len(raw_after) <= 18:
        found = selectors.incidents_newly_assigned(
            user=request.user, team_ids=team_ids, after=int(raw_after)
        )
        answer["assigned_after"] = found.marker
        answer["assigned"] = [
            {
                "id": incident.pk,
                "title": f"#{incident.pk} {incident.title}"[:200],
                "body": f"{incident.service.name} · "
                f"{URGENCY_LABELS.get(incident.urgency, incident.urgency).lower()} urgency",
                "url": reverse("incidents:detail", args=[incident.pk]),
            }
            for incident in found.incidents
        ]

    counts = selectors.incident_list_counts(filters=read.filters)
    number = _page_number(read, counts[read.filters.status])
    stamps = selectors.incident_list_stamps(
        filters=read.filters,
        offset=(number - 1) * INCIDENTS_PER_PAGE,
        limit=INCIDENTS_PER_PAGE,
    )
    version = selectors.list_version(counts=counts, stamps=stamps)
    if request.GET.get("v") == version:
        return JsonResponse({"changed": False, "version": version, **answer})

    context = _results_context(read, counts)
    return JsonResponse(
        {
            "changed": True,
            "version": context["version"],
            "counts": counts,
            "title": context["page_title"],
            "counts_html": render_to_string(
                "incidents/_list_counts.html", context, request=request
            ),
            "results_html": render_to_string(
                "incidents/_list_results.html", context, request=request
            ),
            **answer,
        }
    )
