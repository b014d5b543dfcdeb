from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from incidents import ingest_views
from incidents import views as incident_views

from . import health, views

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", include("oncall.profile_urls")),
    path("schedules/", include("schedules.urls")),
    path("calendar/", include("schedules.feed_urls")),
    path("postmortems/", include("postmortems.urls")),
    path("api/v1/", include("oncall.api_urls")),
    # Alerts in: the PagerDuty Events API v2 and the integration endpoints (JSON only).
    path("v2/enqueue", ingest_views.enqueue, name="events-v2-enqueue"),
    path("v2/enqueue/", ingest_views.enqueue),
    path("integrations/", include("incidents.ingest_urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    # Un-namespaced: settings.LOGIN_REDIRECT_URL and the layout's brand link use "home".
    path("", incident_views.home, name="home"),
    path("", include("incidents.urls")),
]

handler404 = views.not_found
handler403 = views.forbidden
handler500 = views.server_error
