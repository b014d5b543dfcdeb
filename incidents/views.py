"""Pages of the paging side: home, services, incidents and the MTTA / MTTR reports."""

from datetime import datetime, time, timedelta

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone

from oncall import access
from oncall import selectors as people
from oncall.forms import DateRangeForm

from . import selectors
from .selectors import ResponseStats

REPORT_DEFAULT_DAYS = 30

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


# --- home --------------------------------------------------------------------------------------


@login_required
def home(request):
    user = request.user
    teams = selectors.team_overview(user=user)
    context = {
        "teams": teams,
        "reach": people.reachability(user=user),
    }
    return render(request, "incidents/home.html", context)


# --- services ----------------------------------------------------------------------------------


@login_required
def service_list(request):
    user = request.user
    services = selectors.service_list(team_ids=operational_team_ids(user))
    for service in services:
        service.admin_url = None
        if access.can_edit_team(user, service.team_id):
            service.admin_url = admin_url(
                "admin:incidents_service_change", service.pk
            ) or admin_url("admin:index")
    return render(request, "incidents/services.html", {"services": services})


# The incident list is in list_views.py, the incident page in incident_views.py.

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


@login_required
def reports(request):
    """MTTA and MTTR of the reader's teams over a date range in the reader's time zone. Every
    member reads them, observers included (they are the executives the reports are for)."""
    user = request.user
    today = timezone.localdate()
    default_start = today - timedelta(days=REPORT_DEFAULT_DAYS - 1)
    form = DateRangeForm(
        {
            "start": request.GET.get("start") or default_start.isoformat(),
            "end": request.GET.get("end") or today.isoformat(),
        }
    )
    context = {"form": form, "report": None, "teams": []}
    if not form.is_valid():
        return render(request, "incidents/reports.html", context, status=400)
    zone = timezone.get_current_timezone()
    start = datetime.combine(form.cleaned_data["start"], time.min, tzinfo=zone)
    end = datetime.combine(form.cleaned_data["end"] + timedelta(days=1), time.min, tzinfo=zone)
    team_ids = None if user.is_superuser else access.team_ids(user)
    report = selectors.response_report(team_ids=team_ids, start=start, end=end)
    context["report"] = report
    context["overall"] = _stats_row(report.total)
    context["teams"] = [
        {
            "name": team.name,
            "stats": _stats_row(team.stats),
            "services": [
                {"name": service.name, "stats": _stats_row(service.stats)}
                for service in team.services
            ],
        }
        for team in report.teams
    ]
    context["start"], context["end"] = form.cleaned_data["start"], form.cleaned_data["end"]
    return render(request, "incidents/reports.html", context)
