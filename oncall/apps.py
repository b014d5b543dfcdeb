from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig


class OncallConfig(AppConfig):
    name = "oncall"
    verbose_name = "People and teams"


class OncallAdminConfig(AdminConfig):
    """The admin, on a site that lets team leads in (see docs/permissions.md)."""

    default_site = "oncall.admin_site.OncallAdminSite"
