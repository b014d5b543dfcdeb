"""Pages of the incidents app. The home page is routed in oncall/urls.py as plain `home`
(settings.LOGIN_REDIRECT_URL) but its view lives here, with the other paging pages."""

from django.urls import path

from . import links, list_views, views

app_name = "incidents"
urlpatterns = [
    path("incidents/", list_views.incident_list, name="list"),
    path("services/", views.service_list, name="services"),
    path("reports/", views.reports, name="reports"),
    # One-click acknowledge / resolve links sent in pages (signed, 24 h): incidents/links.py
    path("incidents/act/<str:token>/", links.email_action, name="email_action"),
]
