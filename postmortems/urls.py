"""The postmortem pages (mounted at /postmortems/ in oncall/urls.py)."""

from django.urls import path

from . import views

app_name = "postmortems"
urlpatterns = [
    path("", views.postmortem_list, name="list"),
    path("new/", views.postmortem_create, name="create"),
    path("preview/", views.markdown_preview, name="preview"),
    path("action-items/", views.action_items, name="action_items"),
    path("action-items/<int:pk>/close/", views.action_item_close, name="action_item_close"),
    path("<int:pk>/", views.postmortem_detail, name="detail"),
    path("<int:pk>/edit/", views.postmortem_edit, name="edit"),
    path("<int:pk>/amend/", views.postmortem_amend, name="amend"),
    path("<int:pk>/review/", views.review_request, name="review"),
    path("<int:pk>/decide/", views.review_decide, name="decide"),
    path("<int:pk>/comments/", views.comment_add, name="comment"),
    path(
        "<int:pk>/comments/<int:comment_pk>/resolve/",
        views.comment_resolve,
        name="comment_resolve",
    ),
    path("<int:pk>/publish/", views.postmortem_publish, name="publish"),
    path("<int:pk>/download/", views.postmortem_download, name="download"),
    path("<int:pk>/versions/<int:number>/", views.postmortem_version, name="version"),
]
