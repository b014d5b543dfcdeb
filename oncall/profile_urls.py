from django.urls import path

app_name = "profile"
urlpatterns: list = []
