"""Serving the release repository: TUF metadata and release files, as plain static files.

`porchlight release publish --repo <hub data dir>/releases` writes the repository there; the
hub serves it under `/releases/metadata/...` and `/releases/targets/...`. Nothing here needs
to be trusted: devices verify every byte with TUF, so any static file server (a CDN, nginx)
can serve the same tree instead. Range requests are answered (Starlette's FileResponse), so
a cut download resumes where it stopped.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from porchlight.hub.config import HubConfig

MOUNT_PATH = "/releases"


def releases_dir(config: HubConfig) -> Path:
    return Path(config.data_dir) / "releases"


def release_files(folder: Path) -> StaticFiles:
    """Static files from `folder`, made empty if nothing is published yet (so a device asking
    early gets 404, not an error)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return StaticFiles(directory=folder)


def mount(app: FastAPI, config: HubConfig) -> None:
    app.mount(MOUNT_PATH, release_files(releases_dir(config)), name="releases")
