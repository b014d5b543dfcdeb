"""Liveness of the web process for docker-compose and load balancers: `GET /healthz`.

Answers 200 `{"status": "ok"}` once the database answers a `SELECT 1`, and 503 otherwise, so a
web container that cannot reach PostgreSQL is reported unhealthy instead of serving errors. It
needs no login and says nothing about the database beyond up or down.
"""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

logger = logging.getLogger(__name__)


@never_cache
@require_safe
def healthz(request):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except DatabaseError:
        logger.warning("health check: the database does not answer", exc_info=True)
        return JsonResponse({"status": "error", "database": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
