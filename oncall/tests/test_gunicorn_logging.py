"""Integration keys in URL paths never reach the access log."""

import logging
from datetime import timedelta

from gunicorn.config import Config

from oncall.gunicorn_logging import KeyMaskingLogger, mask_keys

KEY = "0123456789abcdef0123456789abcdef"


def test_mask_keys_hides_the_key_and_keeps_the_rest():
    assert mask_keys(f"POST /integrations/alertmanager/{KEY}/ HTTP/1.1") == (
        "POST /integrations/alertmanager/[key]/ HTTP/1.1"
    )
    assert mask_keys(f"/integrations/heartbeat/{KEY}") == "/integrations/heartbeat/[key]"
    assert mask_keys("/v2/enqueue") == "/v2/enqueue"


def test_access_log_line_has_no_key():
    class Response:
        status = "202 Accepted"
        headers = []
        sent = 10
        response_length = 10

    class Request:
        headers = []

    environ = {
        "REQUEST_METHOD": "POST",
        "RAW_URI": f"/integrations/webhook/{KEY}/",
        "PATH_INFO": f"/integrations/webhook/{KEY}/",
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
    }
    config = Config()
    config.set("accesslog", "-")
    logger = KeyMaskingLogger(config)
    atoms = logger.atoms(Response(), Request(), environ, timedelta(0))
    assert KEY not in atoms["r"] and KEY not in atoms["U"]
    assert "/integrations/webhook/[key]/" in atoms["r"]
    logging.getLogger("gunicorn.access").handlers.clear()
