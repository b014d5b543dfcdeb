from django.urls import path

from . import views

app_name = "schedules"
urlpatterns = [
    path("", views.schedule_list, name="list"),
    # Before "<int:pk>/" so that it reads as a page of its own, whatever comes after.
    path("mine/", views.my_shifts, name="mine"),
    path("mine/calendar-reset/", views.calendar_reset, name="calendar_reset"),
    path("<int:pk>/", views.schedule_detail, name="detail"),
    path("<int:pk>/overrides/", views.override_add, name="override_add"),
    path("<int:pk>/take-shift/", views.override_take, name="take_shift"),
    path(
        "<int:pk>/overrides/<int:override_pk>/delete/",
        views.override_delete,
        name="override_delete",
    ),
]
