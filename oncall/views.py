"""Pages about people: the profile page, and the error pages of the whole portal."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponseServerError
from django.shortcuts import get_object_or_404, redirect, render
from django.template import loader
from django.urls import reverse
from django.views.decorators.http import require_POST
from rest_framework.authtoken.models import Token

from . import selectors, services
from .forms import ContactMethodForm, NotificationRuleForm, ProfileForm, add_service_errors
from .models import ContactMethod, Membership, NotificationRule, Urgency

# --- profile -----------------------------------------------------------------------------------


def _render_profile(request, *, status: int = 200, **forms):
    """The profile page with its four forms; a form passed in (bound, with errors) replaces the
    blank one, so whatever the person typed is shown again next to its error."""
    user = request.user
    profile = services.profile_for(user)
    contact = selectors.contact_settings(user=user)
    profile_form = forms.get("profile_form") or ProfileForm(
        initial={
            "display_name": profile.display_name,
            "time_zone": profile.time_zone,
            "phone": profile.phone,
        }
    )
    method_form = forms.get("method_form") or ContactMethodForm(prefix="method")
    rule_sections = []
    for urgency, label in Urgency.choices:
        form = forms.get(f"rule_form_{urgency}") or NotificationRuleForm(
            prefix=urgency, user=user, methods=contact.methods
        )
        rule_sections.append(
            {
                "urgency": urgency,
                "label": label,
                "rules": contact.rules.get(urgency, []),
                "form": form,
            }
        )
    memberships = Membership.objects.filter(user=user).select_related("team")
    token_created = Token.objects.filter(user=user).values_list("created", flat=True).first()
    context = {
        "profile": profile,
        "profile_form": profile_form,
        "method_form": method_form,
        "methods": contact.methods,
        "rule_sections": rule_sections,
        "memberships": memberships,
        "token_created": token_created,
        "new_token": forms.get("new_token"),
    }
    return render(request, "oncall/profile.html", context, status=status)


@login_required
def profile(request):
    """GET: the page. POST: save display name, time zone and phone."""
    if request.method != "POST":
        return _render_profile(request)
    form = ProfileForm(request.POST)
    if form.is_valid():
        try:
            services.profile_update(user=request.user, **form.cleaned_data)
        except ValidationError as error:
            add_service_errors(form, error)
        else:
            messages.success(
                request, f"Profile saved. Times are now shown in {form.cleaned_data['time_zone']}."
            )
            return redirect("profile:detail")
    return _render_profile(request, status=400, profile_form=form)


@login_required
@require_POST
def contact_method_add(request):
    form = ContactMethodForm(request.POST, prefix="method")
    if form.is_valid():
        try:
            method = services.contact_method_create(
                user=request.user,
                kind=form.cleaned_data["kind"],
                address=form.cleaned_data["address"].strip(),
                label=form.cleaned_data["label"],
            )
        except ValidationError as error:
            add_service_errors(
                form, error, duplicate_message="You already have this address for this kind."
            )
        else:
            messages.success(request, f"Contact method added: {method}.")
            return redirect(f"{_profile_url()}#contact-methods")
    return _render_profile(request, status=400, method_form=form)


@login_required
@require_POST
def contact_method_delete(request, pk: int):
    method = get_object_or_404(ContactMethod, pk=pk, user=request.user)
    rule_count = method.notification_rules.count()
    description = str(method)
    services.contact_method_delete(method=method)
    if rule_count:
        plural = "rule" if rule_count == 1 else "rules"
        messages.success(
            request,
            f"Deleted {description} and the {rule_count} notification {plural} that used it.",
        )
    else:
        messages.success(request, f"Deleted {description}.")
    return redirect(f"{_profile_url()}#contact-methods")


@login_required
@require_POST
def contact_method_test(request, pk: int):
    """Send one test message through the contact method now; say what the provider answered."""
    method = get_object_or_404(ContactMethod, pk=pk, user=request.user)
    result = services.contact_method_send_test(method=method)
    if result.ok:
        messages.success(request, f"Test notification sent to {method} — {result.detail}")
    else:
        messages.error(request, f"The test notification to {method} failed — {result.detail}")
    return redirect(f"{_profile_url()}#contact-methods")


@login_required
@require_POST
def notification_rule_add(request, urgency: str):
    if urgency not in Urgency.values:
        raise Http404("No such urgency.")
    form = NotificationRuleForm(request.POST, prefix=urgency, user=request.user)
    if form.is_valid():
        try:
            rule = services.notification_rule_create(
                user=request.user,
                contact_method=form.cleaned_data["contact_method"],
                delay_minutes=form.cleaned_data["delay_minutes"],
                urgency=urgency,
            )
        except ValidationError as error:
            add_service_errors(form, error, duplicate_message="You already have this rule.")
        else:
            messages.success(request, f"Notification rule added — {rule}.")
            return redirect(f"{_profile_url()}#rules-{urgency}")
    return _render_profile(request, status=400, **{f"rule_form_{urgency}": form})


@login_required
@require_POST
def notification_rule_delete(request, pk: int):
    rule = get_object_or_404(
        NotificationRule.objects.select_related("contact_method"), pk=pk, user=request.user
    )
    urgency, description = rule.urgency, str(rule)
    services.notification_rule_delete(rule=rule)
    messages.success(request, f"Notification rule deleted — {description}.")
    return redirect(f"{_profile_url()}#rules-{urgency}")


@login_required
@require_POST
def api_token_reset(request):
    """Make a new API token and show it on this response only (never in a message or a log)."""
    key = services.api_token_reset(user=request.user)
    return _render_profile(request, new_token=key)


def _profile_url() -> str:
    return reverse("profile:detail")


# --- errors ------------------------------------------------------------------------------------


def not_found(request, exception=None):
    return render(request, "errors/404.html", status=404)


def forbidden(request, exception=None):
    """The 403 page; a PermissionDenied raised with a message explains itself on the page."""
    reason = str(exception) if exception is not None else ""
    return render(request, "errors/403.html", {"reason": reason}, status=403)


def server_error(request):
    """Rendered without the request: no context processor, no database, nothing that may be
    what just failed."""
    return HttpResponseServerError(loader.get_template("errors/500.html").render())
