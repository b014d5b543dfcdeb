"""Pages of the paging side: the home dashboard, services and the MTTA / MTTR reports.

The incident list is in list_views.py, the incident page in incident_views.py.
"""

import csv
from datetime import date, timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.http import require_POST

from oncall import access
from oncall import selectors as people
from oncall.forms import DateRangeForm

from . import charts, dashboard_selectors, report_selectors, services
from .models import Service
from .selectors import ResponseStats

REPORT_DEFAULT_DAYS = 30
# The longest period a report covers: a year, leap or not. Longer ones would draw hundreds of
# weeks into charts nobody can read, and cost seconds of work on every request.
REPORT_MAX_DAYS = 366

OBSERVER_REASON = (
    "Observers read their teams' reports and published postmortems. Services, incidents and "
    "schedules are for the teams' leads and responders."
)


def operational_team_ids(user) -> set[int] | None:
    """The teams whose services, incidents and schedules the reader sees (None: all).
    An observer-only reader gets the 403 page that explains why."""
    if access.is_observer_only(user):
        raise PermissionDenied(OBSERVER_REASON)
    return access.visible_team_ids(user)


def admin_url(name: str, *args) -> str | None:
    """A link into the admin, or None when that admin page is not there in this build."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def _url_or_none(name: str) -> str | None:
    """A page's address, or None while that section is not built (postmortems)."""
    try:
        return reverse(name)
    except NoReverseMatch:
        return None


# --- home --------------------------------------------------------------------------------------


@login_required
def home(request):
    """The dashboard: per team, who is on call now and next, the services' open incidents;
    the reader's own open incidents. Observers get their reading (reports, postmortems)."""
    user = request.user
    now = timezone.now()
    teams = dashboard_selectors.home_panels(user=user, now=now)
    readable = access.visible_team_ids(user)
    operational = readable is None or bool(readable)
    mine = (
        dashboard_selectors.my_open_incidents(user=user, team_ids=readable) if operational else None
    )
    context = {
        "teams": teams,
        "reach": people.reachability(user=user),
        "operational": operational,
        "mine": mine,
        "observer_only": access.is_observer_only(user),
        "reports_url": reverse("incidents:reports"),
        "postmortems_url": _url_or_none("postmortems:list"),
        "now": now,
    }
    return render(request, "incidents/home.html", context)


# --- services ----------------------------------------------------------------------------------


@login_required
def service_list(request):
    """Every service of the reader's teams: status, open incidents, how to send it alerts
    (keys only for those who may see them: the team's leads), its monitors' last results."""
    user = request.user
    services_ = dashboard_selectors.service_page(team_ids=operational_team_ids(user))
    now = timezone.now()
    for service in services_:
        lead = access.can_edit_team(user, service.team_id)
        service.can_edit = lead
        service.admin_url = None
        if lead:
            service.admin_url = admin_url(
                "admin:incidents_service_change", service.pk
            ) or admin_url("admin:index")
        for integration in service.integrations.all():
            integration.show_key = lead
            integration.endpoint = dashboard_selectors.integration_endpoint(
                integration, show_key=lead
            )
            beat = getattr(integration, "heartbeat", None)
            integration.overdue = bool(
                integration.kind == integration.Kind.HEARTBEAT
                and beat is not None
                and beat.expected_by is not None
                and beat.expected_by < now
            )
    context = {
        "services": services_,
        "any_keys": any(s.can_edit for s in services_),
        "maintenance": Service.Status.MAINTENANCE,
        "active": Service.Status.ACTIVE,
    }
    return render(request, "incidents/services.html", context)


MAINTENANCE_CHOICES = {"on": Service.Status.MAINTENANCE, "off": Service.Status.ACTIVE}


@login_required
@require_POST
def service_maintenance(request, pk: int):
    """Turn a service's maintenance mode on or off (its team's leads and superusers): while in
    maintenance its alerts are recorded but nobody is paged. Post, redirect, get."""
    user = request.user
    service = Service.objects.select_related("team", "escalation_policy").filter(pk=pk).first()
    if service is None:
        raise Http404("No such service.")
    access.require_operational(user, service.team_id)  # 403 observer, 404 another team's
    if not access.can_edit_team(user, service.team_id):
        raise PermissionDenied(
            "Only the team's leads switch a service's maintenance mode. Ask one of them."
        )
    wanted = MAINTENANCE_CHOICES.get(request.POST.get("maintenance", ""))
    if wanted is None:
        return HttpResponse(
            "Choose maintenance “on” or “off”.", status=400, content_type="text/plain"
        )
    back = reverse("incidents:services") + f"#service-{service.pk}"
    if service.status == Service.Status.DISABLED:
        messages.error(
            request,
            f"“{service.name}” is disabled: enable it in the admin before changing maintenance.",
        )
        return redirect(back)
    if service.status == wanted:
        state = "in maintenance" if wanted == Service.Status.MAINTENANCE else "active"
        messages.info(request, f"“{service.name}” is already {state}: nothing changed.")
        return redirect(back)
    try:
        services.service_update(service=service, status=wanted)
    except ValidationError as error:
        messages.error(request, f"“{service.name}” was not changed: " + " ".join(error.messages))
        return redirect(back)
    if wanted == Service.Status.MAINTENANCE:
        messages.success(
            request,
            f"“{service.name}” is in maintenance: its alerts are recorded, nobody is paged.",
        )
    else:
        messages.success(request, f"“{service.name}” is active again: its alerts page people.")
    return redirect(back)


# --- reports -----------------------------------------------------------------------------------


def human_duration(value: timedelta | None) -> str:
    """A duration as people say it: "45 s", "4 min 30 s", "2 h 5 min", "3 d 4 h"; "—" for none."""
    if value is None:
        return "—"
    seconds = round(value.total_seconds())
    sign = "−" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        parts = [(days, "d"), (hours, "h")]
    elif hours:
        parts = [(hours, "h"), (minutes, "min")]
    elif minutes:
        parts = [(minutes, "min"), (seconds, "s")]
    else:
        parts = [(seconds, "s")]
    text = " ".join(f"{n} {unit}" for n, unit in parts if n) or "0 s"
    return sign + text


def _stats_row(stats: ResponseStats) -> dict:
    return {
        "incidents": stats.incidents,
        "acknowledged": stats.acknowledged,
        "resolved": stats.resolved,
        "mtta_mean": human_duration(stats.mtta_mean),
        "mtta_median": human_duration(stats.mtta_median),
        "mttr_mean": human_duration(stats.mttr_mean),
        "mttr_median": human_duration(stats.mttr_median),
    }


def _range_form(request) -> DateRangeForm:
    today = timezone.localdate()
    default_start = today - timedelta(days=REPORT_DEFAULT_DAYS - 1)
    return DateRangeForm(
        {
            "start": request.GET.get("start") or default_start.isoformat(),
            "end": request.GET.get("end") or today.isoformat(),
        }
    )


def _range_is_valid(form: DateRangeForm) -> bool:
    """The form's own checks, and a period of at most REPORT_MAX_DAYS."""
    if not form.is_valid():
        return False
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    if (end - start).days + 1 > REPORT_MAX_DAYS:
        form.add_error(
            "end",
            f"Choose a period of at most {REPORT_MAX_DAYS} days (this one has "
            f"{(end - start).days + 1}); download several years as one CSV per year.",
        )
        return False
    return True


def _report_team_ids(user) -> set[int] | None:
    """Reports are for every member of a team, observers included; None: every team."""
    return None if user.is_superuser else access.team_ids(user)


def _seconds(value: timedelta | None) -> float | None:
    return value.total_seconds() if value is not None else None


def _seconds_text(seconds: float) -> str:
    return human_duration(timedelta(seconds=seconds))


def _day(value: date) -> str:
    return f"{value.day} {value:%B %Y}"


def _duration_chart(
    *, chart_id: str, title: str, what: str, weeks, series: list[tuple[str, list]]
) -> dict:
    """A line chart of mean durations by week (`series`: name → weekly ResponseStats, `what`
    "mtta" or "mttr"), its legend and its data table."""
    values = [
        (name, [_seconds(getattr(stats, f"{what}_mean")) for stats in weekly])
        for name, weekly in series
    ]
    known = [v for _, vs in values for v in vs if v is not None]
    scale, unit, _ = charts.duration_unit(max(known) if known else 0)
    label = "MTTA" if what == "mtta" else "MTTR"
    first, last = (weeks[0], weeks[-1]) if weeks else (None, None)
    desc = (
        f"Mean {'time to acknowledge' if what == 'mtta' else 'time to resolve'} per week, "
        f"in {unit}, for {', '.join(name for name, _ in series) or 'nobody'}"
        + (
            f", from the week of {_day(first.monday)} to that of {_day(last.monday)}"
            if first
            else ""
        )
        + ". A missing point: no incident of that week was "
        + ("acknowledged." if what == "mtta" else "resolved.")
    )
    svg = charts.line_chart(
        chart_id=chart_id,
        title=title,
        desc=desc,
        categories=[week.short_label for week in weeks],
        series=[charts.Series(name, vs) for name, vs in values],
        y_label=f"{label} mean ({unit})",
        scale=scale,
        value_text=_seconds_text,
    )
    legend = []
    for index, (name, _) in enumerate(series):
        colour, shape = charts.style_of(index)
        legend.append(
            {
                "label": name,
                "marker": mark_safe(  # noqa: S308 - charts.marker_svg writes no user text
                    '<svg class="chart-legend__marker" viewBox="0 0 16 16" width="16" '
                    'height="16" aria-hidden="true" focusable="false">'
                    + charts.marker_svg(shape, 8, 8, colour)
                    + "</svg>"
                ),
            }
        )
    rows = [
        {
            "week": week,
            "cells": [human_duration(getattr(weekly[i], f"{what}_mean")) for _, weekly in series],
        }
        for i, week in enumerate(weeks)
    ]
    return {
        "id": chart_id,
        "title": title,
        # charts.line_chart escapes every text it writes.
        "svg": mark_safe(svg),  # noqa: S308
        "legend": legend,
        "columns": [name for name, _ in series],
        "rows": rows,
        "label": label,
    }


def _incidents_chart(report: report_selectors.WeeklyReport) -> dict:
    rows = [
        (f"{team.name} / {service.name}", service, team)
        for team in report.teams
        for service in team.services
    ]
    rows.sort(key=lambda row: (-row[1].stats.incidents, row[0].lower()))
    drawn = [charts.BarRow(label, service.stats.incidents) for label, service, _ in rows]
    svg = charts.bar_chart(
        chart_id="chart-incidents-per-service",
        title="Incidents per service",
        desc=(
            "Number of incidents triggered in the period, per service, most first: "
            + "; ".join(f"{row.label}: {row.value:g}" for row in drawn[:20])
            + ("…" if len(drawn) > 20 else ".")
        ),
        rows=[row for row in drawn if row.value],
        x_label="Incidents",
    )
    return {
        "svg": mark_safe(svg),  # noqa: S308 - charts.bar_chart escapes every text it writes
        "rows": [
            {"team": team.name, "service": service.name, "stats": service.stats}
            for _, service, team in rows
        ],
    }


def _report_context(report: report_selectors.WeeklyReport) -> dict:
    weeks = report.weeks
    team_series = [(team.name, team.weekly) for team in report.teams]
    context = {
        "overall": _stats_row(report.total),
        "teams": [
            {
                "id": team.team_id,
                "name": team.name,
                "stats": _stats_row(team.stats),
                "services": [
                    {"name": service.name, "stats": _stats_row(service.stats)}
                    for service in team.services
                ],
                "charts": [
                    _duration_chart(
                        chart_id=f"chart-{what}-team-{team.team_id}",
                        title=f"{what.upper()} by week, per service of {team.name}",
                        what=what,
                        weeks=weeks,
                        series=[(service.name, service.weekly) for service in team.services],
                    )
                    for what in ("mtta", "mttr")
                ]
                if team.stats.incidents
                else [],
            }
            for team in report.teams
        ],
        "team_charts": [
            _duration_chart(
                chart_id=f"chart-{what}-teams",
                title=f"{what.upper()} by week, per team",
                what=what,
                weeks=weeks,
                series=team_series,
            )
            for what in ("mtta", "mttr")
        ]
        if report.total.incidents
        else [],
        "incidents_chart": _incidents_chart(report) if report.total.incidents else None,
    }
    return context


@login_required
def reports(request):
    """MTTA and MTTR of the reader's teams over a date range in the reader's time zone, by
    ISO week as charts and tables, incidents per service and the noisiest alert sources.
    Every member reads them, observers included (they are the executives reports are for)."""
    user = request.user
    form = _range_form(request)
    context = {"form": form, "report": None, "teams": []}
    if not _range_is_valid(form):
        return render(request, "incidents/reports.html", context, status=400)
    zone = timezone.get_current_timezone()
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    team_ids = _report_team_ids(user)
    report = report_selectors.weekly_report(team_ids=team_ids, start=start, end=end, zone=zone)
    begin, finish = report_selectors.day_bounds(start, end, zone)
    context.update(_report_context(report))
    context.update(
        {
            "report": report,
            "start": start,
            "end": end,
            "sources": report_selectors.noisy_sources(team_ids=team_ids, start=begin, end=finish),
            "csv_kinds": [
                (kind, label, f"{reverse('incidents:reports_csv')}?{_query(start, end, kind)}")
                for kind, label in CSV_KINDS.items()
            ],
        }
    )
    return render(request, "incidents/reports.html", context)


# --- reports as CSV ------------------------------------------------------------------------------

CSV_KINDS = {
    "weekly": "Response times by week",
    "services": "Response times and incidents per service",
    "sources": "Noisiest alert sources",
}


def _query(start: date, end: date, kind: str) -> str:
    return f"start={start.isoformat()}&end={end.isoformat()}&kind={kind}"


def _csv_seconds(value: timedelta | None) -> str:
    """Whole seconds, or empty where there is nothing to measure."""
    return "" if value is None else str(round(value.total_seconds()))


def _csv_text(value: str) -> str:
    """Text that a spreadsheet will not run as a formula (alert titles come from outside)."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


STATS_HEADER = [
    "incidents",
    "acknowledged",
    "resolved",
    "mtta_mean_seconds",
    "mtta_median_seconds",
    "mttr_mean_seconds",
    "mttr_median_seconds",
]


def _stats_cells(stats: ResponseStats) -> list:
    return [
        stats.incidents,
        stats.acknowledged,
        stats.resolved,
        _csv_seconds(stats.mtta_mean),
        _csv_seconds(stats.mtta_median),
        _csv_seconds(stats.mttr_mean),
        _csv_seconds(stats.mttr_median),
    ]


def _csv_rows(kind: str, *, team_ids, start: date, end: date, zone) -> list[list]:
    period = [start.isoformat(), end.isoformat()]
    if kind == "sources":
        begin, finish = report_selectors.day_bounds(start, end, zone)
        sources = report_selectors.noisy_sources(team_ids=team_ids, start=begin, end=finish)
        rows = [
            [
                "period_start",
                "period_end",
                "source",
                "rank",
                "team",
                "service",
                "integration",
                "integration_kind",
                "key",
                "title",
                "alerts",
            ]
        ]
        for rank, one in enumerate(sources.integrations, start=1):
            rows.append(
                [
                    *period,
                    "integration",
                    rank,
                    _csv_text(one.team_name),
                    _csv_text(one.service_name),
                    _csv_text(one.name),
                    one.kind,
                    "",
                    "",
                    one.alerts,
                ]
            )
        for rank, one in enumerate(sources.keys, start=1):
            rows.append(
                [
                    *period,
                    "dedup_key" if one.is_dedup_key else "summary",
                    rank,
                    _csv_text(one.team_name),
                    _csv_text(one.service_name),
                    "",
                    "",
                    _csv_text(one.key),
                    _csv_text(one.title),
                    one.alerts,
                ]
            )
        return rows
    report = report_selectors.weekly_report(team_ids=team_ids, start=start, end=end, zone=zone)
    if kind == "services":
        rows = [["period_start", "period_end", "team", "service", *STATS_HEADER]]
        for team in report.teams:
            rows.append([*period, _csv_text(team.name), "", *_stats_cells(team.stats)])
            for service in team.services:
                rows.append(
                    [
                        *period,
                        _csv_text(team.name),
                        _csv_text(service.name),
                        *_stats_cells(service.stats),
                    ]
                )
        return rows
    rows = [["week", "week_start", "week_end", "team", "service", *STATS_HEADER]]
    for i, week in enumerate(report.weeks):
        when = [week.label, week.monday.isoformat(), week.sunday.isoformat()]
        for team in report.teams:
            rows.append([*when, _csv_text(team.name), "", *_stats_cells(team.weekly[i])])
            for service in team.services:
                rows.append(
                    [
                        *when,
                        _csv_text(team.name),
                        _csv_text(service.name),
                        *_stats_cells(service.weekly[i]),
                    ]
                )
    return rows


@login_required
def reports_csv(request):
    """The reports' numbers as CSV for a spreadsheet: `kind` = weekly (per ISO week, per team
    and service), services (per service over the range) or sources (noisiest alert sources).
    Durations in whole seconds, dates in ISO 8601. Bad input: the reports page, with a 400."""
    form = _range_form(request)
    kind = request.GET.get("kind") or "weekly"
    valid = _range_is_valid(form)
    if kind not in CSV_KINDS:
        form.add_error(
            None,
            f"Unknown CSV download “{kind}”: choose one of {', '.join(CSV_KINDS)}.",
        )
        valid = False
    if not valid:
        return render(
            request,
            "incidents/reports.html",
            {"form": form, "report": None, "teams": []},
            status=400,
        )
    start, end = form.cleaned_data["start"], form.cleaned_data["end"]
    rows = _csv_rows(
        kind,
        team_ids=_report_team_ids(request.user),
        start=start,
        end=end,
        zone=timezone.get_current_timezone(),
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    filename = f"oncall-{kind}-{start.isoformat()}-to-{end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    writer = csv.writer(response, lineterminator="\r\n")
    writer.writerows(rows)
    return response
