"""The admin site: team leads get in without being staff (docs/permissions.md)."""

from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.core.exceptions import ValidationError

from . import access


class AdminLoginForm(AdminAuthenticationForm):
    """The admin's sign-in, open to whoever `OncallAdminSite.has_permission` lets in (leads are
    not staff, and Django's own admin form would turn them away)."""

    error_messages = {
        **AdminAuthenticationForm.error_messages,
        "invalid_login": (
            "Please enter the correct %(username)s and password of a team lead or administrator "
            "account. Note that both fields may be case-sensitive."
        ),
    }

    def confirm_login_allowed(self, user):
        if not user.is_active or not access.can_administer(user):
            raise ValidationError(
                self.error_messages["invalid_login"],
                code="invalid_login",
                params={"username": self.username_field.verbose_name},
            )


class OncallAdminSite(admin.AdminSite):
    site_header = "Oncall admin"
    site_title = "Oncall admin"
    index_title = "Teams, schedules, services and escalation policies"
    login_form = AdminLoginForm

    def has_permission(self, request) -> bool:
        return access.can_administer(request.user)
