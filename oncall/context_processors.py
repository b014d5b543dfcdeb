"""The navigation of the base layout: the sections a user can open."""

from django.urls import NoReverseMatch, reverse

from . import access

SECTIONS = [
    ("Incidents", "incidents:list"),
    ("Schedules", "schedules:list"),
    ("Services", "incidents:services"),
    ("Postmortems", "postmortems:list"),
    ("Reports", "incidents:reports"),
]


def navigation(request) -> dict:
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return {"nav_items": []}
    items = []
    for label, name in SECTIONS:
        try:
            url = reverse(name)
        except NoReverseMatch:  # a section whose app is not installed in this build
            continue
        items.append({"label": label, "url": url, "active": request.path.startswith(url)})
    if access.can_administer(user):
        items.append({"label": "Admin", "url": reverse("admin:index"), "active": False})
    return {"nav_items": items}
