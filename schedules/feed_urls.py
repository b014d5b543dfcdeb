from django.urls import path

from . import feeds

app_name = "calendar"
urlpatterns = [
    path("<str:token>/schedules/<int:pk>.ics", feeds.schedule_feed, name="schedule"),
    path("<str:token>/my-shifts.ics", feeds.my_shifts_feed, name="my_shifts"),
]
