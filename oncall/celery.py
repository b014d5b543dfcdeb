"""The Celery application: the worker and beat of `make run` and docker-compose load this."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "oncall.settings")

app = Celery("oncall")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
