"""A gunicorn access logger that never writes an integration key.

Alertmanager, webhook and heartbeat integrations carry their secret key in the URL path
(`/integrations/<kind>/<key>/`), and access logs print paths. Use it with
`gunicorn --logger-class oncall.gunicorn_logging.KeyMaskingLogger`.
"""

import re

from gunicorn.glogging import Logger

KEY_IN_PATH = re.compile(r"(/integrations/[A-Za-z0-9_-]+/)[^/?\s]+")


def mask_keys(text: str | None) -> str | None:
    """`/integrations/webhook/0123…cdef/` → `/integrations/webhook/[key]/`."""
    if not text:
        return text
    return KEY_IN_PATH.sub(r"\1[key]", text)


class KeyMaskingLogger(Logger):
    def atoms(self, resp, req, environ, request_time):
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("r", "U"):
            atoms[name] = mask_keys(atoms.get(name))
        return atoms
