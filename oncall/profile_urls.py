"""The signed-in person's own profile: /profile/…"""

from django.urls import path

from . import views

app_name = "profile"
urlpatterns = [
    path("", views.profile, name="detail"),
    path("contact-methods/add/", views.contact_method_add, name="contact_method_add"),
    path(
        "contact-methods/<int:pk>/delete/",
        views.contact_method_delete,
        name="contact_method_delete",
    ),
    path(
        "contact-methods/<int:pk>/test/",
        views.contact_method_test,
        name="contact_method_test",
    ),
    path("rules/<str:urgency>/add/", views.notification_rule_add, name="rule_add"),
    path("rules/<int:pk>/delete/", views.notification_rule_delete, name="rule_delete"),
    path("api-token/", views.api_token_reset, name="api_token_reset"),
]
