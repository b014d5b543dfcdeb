"""Pages of the incidents app. The home page is routed in oncall/urls.py as plain `home`
(settings.LOGIN_REDIRECT_URL) but its view lives here, with the other paging pages."""

from django.urls import path

from . import incident_views, links, list_views, views

app_name = "incidents"
urlpatterns = [
    path("incidents/", list_views.incident_list, name="list"),
    path("incidents/live/", list_views.incident_list_live, name="list_live"),
    path("incidents/<int:pk>/", incident_views.incident_detail, name="detail"),
    path("incidents/<int:pk>/live/", incident_views.incident_live, name="detail_live"),
    *[  # the incident page's action forms (POST), e.g. incidents:incident_acknowledge
        path(
            f"incidents/<int:pk>/{action}/",
            incident_views.incident_action,
            {"action": action},
            name=f"incident_{action}",
        )
        for action in incident_views.ACTIONS
    ],
    path("services/", views.service_list, name="services"),
    path("services/<int:pk>/maintenance/", views.service_maintenance, name="service_maintenance"),
    path("reports/", views.reports, name="reports"),
    path("reports/csv/", views.reports_csv, name="reports_csv"),
    # One-click acknowledge / resolve links sent in pages (signed, 24 h): incidents/links.py
    path("incidents/act/<str:token>/", links.email_action, name="email_action"),
]
