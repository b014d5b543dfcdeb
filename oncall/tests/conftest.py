"""Fixtures for tests that send: local recording HTTP and SMTP servers (see servers.py)."""

import pytest

from .servers import RecordingHTTPServer, RecordingSMTPServer, closed_port


@pytest.fixture
def http_server():
    """A local HTTP server recording every request; answers 200 unless told otherwise."""
    with RecordingHTTPServer() as server:
        yield server


@pytest.fixture
def smtp_server():
    """A local SMTP server recording every message."""
    with RecordingSMTPServer() as server:
        yield server


@pytest.fixture
def refused_port():
    """A local port on which connections are refused."""
    with closed_port() as port:
        yield port
