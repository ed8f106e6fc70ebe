"""How signalling keeps its waiting room consistent with other hub instances.

Signalling changes its `WaitingRoom` only inside `async with sync.transaction(patient_id):`.
With one hub (`NotShared`, the default) that does nothing. With several hubs on PostgreSQL,
`SharedRoom` (hub/shared_room.py) takes a lock shared by all instances, brings the room up to
date from the database first and writes what changed back before letting go; messages
published inside the block reach every instance in the order the room changed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Protocol


class RoomSync(Protocol):
    # The shared room's version as of the current transaction (None: not shared). Lists sent
    # to clinic pages carry it, so a page never shows an older list after a newer one.
    @property
    def version(self) -> int | None: ...

    def transaction(
        self, patient_id: str | None = None
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold the room for one change; `patient_id`: the kiosk whose socket is acting."""


class NotShared:
    """One hub instance: its in-memory room is the only one."""

    version = None

    @contextlib.asynccontextmanager
    async def transaction(self, patient_id: str | None = None) -> AsyncIterator[None]:
        yield
