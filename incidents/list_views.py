"""The incident list: filters, counts per status, pages."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.utils.http import urlencode

from . import selectors
from .views import operational_team_ids

INCIDENTS_PER_PAGE = 25

STATUS_FILTER_LABELS = {
    "open": "Open",
    "triggered": "Triggered",
    "acknowledged": "Acknowledged",
    "resolved": "Resolved",
    "all": "All",
}


@login_required
def incident_list(request):
    team_ids = operational_team_ids(request.user)
    status_filter = request.GET.get("status") or selectors.DEFAULT_STATUS_FILTER
    if status_filter not in selectors.STATUS_FILTERS:
        messages.warning(
            request,
            f"“{status_filter[:50]}” is not a status filter; showing open incidents instead.",
        )
        status_filter = selectors.DEFAULT_STATUS_FILTER
    counts = selectors.incident_counts(team_ids=team_ids)
    paginator = Paginator(
        selectors.incident_list(team_ids=team_ids, status_filter=status_filter),
        INCIDENTS_PER_PAGE,
    )
    page = paginator.get_page(request.GET.get("page"))
    filters = [
        {
            "value": value,
            "label": label,
            "count": counts[value],
            "url": "?" + urlencode({"status": value}),
            "active": value == status_filter,
        }
        for value, label in STATUS_FILTER_LABELS.items()
    ]
    context = {
        "page": page,
        "filters": filters,
        "status_filter": status_filter,
        "status_label": STATUS_FILTER_LABELS[status_filter],
        "page_query": urlencode({"status": status_filter}),
    }
    return render(request, "incidents/incident_list.html", context)
