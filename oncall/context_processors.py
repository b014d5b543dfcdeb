"""The navigation of the base layout: the sections a user can open."""

from django.urls import NoReverseMatch, reverse

from . import access

# (label, URL name, open to observers) — observers read postmortems and reports only.
SECTIONS = [
    ("Incidents", "incidents:list", False),
    ("Schedules", "schedules:list", False),
    ("Services", "incidents:services", False),
    ("Postmortems", "postmortems:list", True),
    ("Reports", "incidents:reports", True),
]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    observer = access.is_observer_only(user)
    for label, name, for_observers in SECTIONS:
        if observer and not for_observers:
            continue
        try:
            url = reverse(name)
        except NoReverseMatch:  # a section not built yet (postmortems come with their issue)
            continue
        items.append({"label": label, "url": url, "active": request.path.startswith(url)})
    if access.can_administer(user):
        items.append({"label": "Admin", "url": reverse("admin:index"), "active": False})
    return {"nav_items": items}
