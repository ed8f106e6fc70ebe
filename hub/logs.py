"""Structured logs: one JSON object per line, with ids and secrets masked.

`porchlight hub` uses it when hub.log_format is "json" (PORCHLIGHT_HUB_LOG_FORMAT=json). The
hub's own messages carry no patient data by rule; as a second line of defence the formatter
masks anything shaped like an id (UUIDs: patients, devices, calls) or a token (long URL-safe
base64), which also covers paths in uvicorn's access lines. Tracebacks are reduced to the
exception's type: their text can quote values.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

_UUID = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
)
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{32,}")


def redact(text: str) -> str:
    return _TOKEN.sub("<secret>", _UUID.sub("<id>", text))


class JsonFormatter(logging.Formatter):
    def __init__(self, instance: str | None = None) -> None:
        super().__init__()
        self._instance = instance

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        if self._instance:
            entry["instance"] = self._instance
        if record.exc_info and record.exc_info[0] is not None:
            entry["error"] = record.exc_info[0].__name__
        return json.dumps(entry, ensure_ascii=False)


def use_json_logs(instance: str | None = None) -> None:
    """Make every handler on the root logger write JSON lines (adding one if there is none)."""
    root = logging.getLogger()
    if not root.handlers:
        root.addHandler(logging.StreamHandler())
        root.setLevel(logging.INFO)
    for handler in root.handlers:
        handler.setFormatter(JsonFormatter(instance))
