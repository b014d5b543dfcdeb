"""Routes of the integration endpoints, under /integrations/ (oncall/urls.py). Each answers with
or without the trailing slash: monitoring tools are configured by hand and a redirect would turn
a POST into a GET."""

from django.urls import path, re_path

from . import ingest_views as views

app_name = "ingest"
urlpatterns = [
    path("alertmanager/<str:key>/", views.alertmanager, name="alertmanager"),
    path("alertmanager/<str:key>", views.alertmanager),
    path("webhook/<str:key>/", views.webhook, name="webhook"),
    path("webhook/<str:key>", views.webhook),
    path("heartbeat/<str:key>/", views.heartbeat, name="heartbeat"),
    path("heartbeat/<str:key>", views.heartbeat),
    re_path(r"^(?P<rest>.*)$", views.not_found),
]
