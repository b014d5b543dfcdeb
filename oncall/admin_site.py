"""The admin site: team leads get in without being staff (docs/permissions.md)."""

from django.contrib import admin

from . import access


class OncallAdminSite(admin.AdminSite):
    site_header = "Oncall admin"
    site_title = "Oncall admin"
    index_title = "Teams, schedules, services and escalation policies"

    def has_permission(self, request) -> bool:
        return access.can_administer(request.user)
