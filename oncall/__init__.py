"""The Oncall project package and core app (teams, people, contact methods, notification rules)."""

from .celery import app as celery_app

__all__ = ["celery_app"]
