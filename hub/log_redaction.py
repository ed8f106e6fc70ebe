"""Keep identifiers out of the hub's access log.

Paths such as `/api/patients/<id>/today` and `/fhir/Observation?patient=<id>` carry patient,
device and enrolment ids. The access log keeps the route's shape (what was asked, how it
went), with every id-like path segment and every query value replaced by `…`.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl, urlsplit

REDACTED = "…"
# A UUID, or any segment long or random-looking enough to be an id or a token.
_ID_LIKE = re.compile(
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|[A-Za-z0-9_\-.~%]{20,}|.*\d.*\d.*\d.*)$"
)


def redact_path(full_path: str) -> str:
    """`/api/patients/<uuid>/today?x=1` → `/api/patients/…/today?x=…`."""
    parts = urlsplit(full_path)
    segments = [REDACTED if _ID_LIKE.match(s) else s for s in parts.path.split("/")]
    path = "/".join(segments)
    if parts.query:
        keys = [k for k, _ in parse_qsl(parts.query, keep_blank_values=True)]
        path += "?" + "&".join(f"{k}={REDACTED}" for k in keys) if keys else "?" + REDACTED
    return path


class AccessLogRedaction(logging.Filter):
    """For uvicorn's access logger: its args are (client, method, path, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, AccessLogRedaction) for f in logger.filters):
        logger.addFilter(AccessLogRedaction())
