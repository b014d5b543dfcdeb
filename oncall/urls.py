from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from . import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("profile/", include("oncall.profile_urls")),
    path("schedules/", include("schedules.urls")),
    path("", include("incidents.urls")),
]

handler404 = views.not_found
handler403 = views.forbidden
handler500 = views.server_error
