"""Close-look test fixtures: the real hub on 127.0.0.1 and its demo seed (tests/kiosk's)."""

from __future__ import annotations

from kiosk.conftest import hub  # noqa: F401  (a fixture, used by name)
