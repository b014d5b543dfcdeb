"""The REST API, version 1 (token or session auth; OpenAPI at /api/schema/)."""

from django.urls import path

from incidents import api as incidents_api
from postmortems import api as postmortems_api
from schedules import api as schedules_api

app_name = "api"
urlpatterns = [
    path("oncall/", schedules_api.OnCallView.as_view(), name="oncall"),
    path(
        "schedules/<int:pk>/shifts/",
        schedules_api.ScheduleShiftsView.as_view(),
        name="schedule-shifts",
    ),
    # incidents, services, escalation policies, metrics/response-times (incidents/api.py)
    *incidents_api.urlpatterns,
    # postmortems, action items (postmortems/api.py)
    *postmortems_api.urlpatterns,
]
