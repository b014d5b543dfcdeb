"""The real services the portal runs on: the configured database and the Celery broker."""

import os
import uuid

from django.db import connection
from kombu import Connection


def test_database_is_the_one_database_url_names():
    url = os.environ.get("DATABASE_URL", "sqlite")
    expected = "postgresql" if url.startswith(("postgres", "pgsql")) else "sqlite"
    assert connection.vendor == expected


def test_redis_broker_carries_a_message(redis_url):
    """What the Celery worker relies on: a message put on the Redis broker comes back out."""
    queue_name = f"oncall-test-{uuid.uuid4().hex}"
    with Connection(redis_url, connect_timeout=3) as conn:
        conn.ensure_connection(max_retries=1)
        queue = conn.SimpleQueue(queue_name)
        try:
            queue.put({"hello": "pager"})
            message = queue.get(block=True, timeout=5)
            message.ack()
            assert message.payload == {"hello": "pager"}
        finally:
            queue.clear()
            queue.close()
