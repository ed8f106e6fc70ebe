"""Helpers for the pages' Chromium tests against a real hub on the two-team world of
tests/security: a served copy of the world, logging in on a page, a socket's next message of
a type, and where screenshots go."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from security.world import PASSWORD, World

from porchlight.hub.config import HubConfig
from porchlight.hub.server import HubServer
from porchlight.hub.store import Store


@contextmanager
def served_world(
    world: World, folder: Path, prepare: Callable[[Store], None] | None = None
) -> Iterator[HubServer]:
    """A hub on 127.0.0.1 serving a fresh copy of the world (`prepare` may add to it first)."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(world.db_file, folder / "hub.db")
    if prepare is not None:
        store = Store.open(f"sqlite:///{folder / 'hub.db'}")
        try:
            prepare(store)
        finally:
            store.close()
    with HubServer(HubConfig(data_dir=folder, host="127.0.0.1"), port=0) as server:
        yield server


def log_in(page, url: str, path: str, username: str) -> None:
    page.goto(url + path)
    page.get_by_test_id("login-username").fill(username)
    page.get_by_test_id("login-password").fill(PASSWORD)
    page.get_by_test_id("login-submit").click()


def receive(ws, type_: str) -> dict:
    """The next message of `type_` on a websockets client socket (others passed over)."""
    for _ in range(20):
        message = json.loads(ws.recv(timeout=10))
        if message["type"] == type_:
            return message
    raise AssertionError(f"no {type_}")


def screenshot_dir(tmp_path: Path) -> Path:
    """PORCHLIGHT_SCREENSHOT_DIR (docs/screenshots refreshes the committed ones), else tmp."""
    folder = Path(os.environ.get("PORCHLIGHT_SCREENSHOT_DIR") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
