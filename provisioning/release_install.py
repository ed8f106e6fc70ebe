"""Putting a verified release into `releases/<version>/`, and switching `current` between them.

A release folder counts only once it holds a `.complete` marker, written (atomically) after
everything else: a power cut mid-install leaves a folder without it, which the agent removes.
`current` only ever points at a complete folder, so whatever is cut when, the kiosk's unit
starts a release that was fully installed.

Two installers, one interface: `VenvInstaller` (the device: a virtual environment and
`pip install --no-index` from the release's own wheels) and `SimulatedInstaller` (fleet
simulations and benchmarks: unpacks and writes a stand-in entry point, no venv, no pip).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from porchlight import atomic
from porchlight.errors import DeviceFault, UpdateRejected
from porchlight.provisioning.layout import DeviceLayout
from porchlight.provisioning.release import WHEELS_DIR, Manifest, read_release, unpack_wheels

COMPLETE_MARKER = ".complete"


class Installer(Protocol):
    def install(self, folder: Path, tar_path: Path, manifest: Manifest) -> None:
        """Fill `folder` (already created, empty) from the checked release file."""


class VenvInstaller:
    """A virtual environment per release, filled only from the release's wheels."""

    def __init__(self, python: str, *, timeout_s: float = 900.0) -> None:
        self.python = python
        self.timeout_s = timeout_s

    def install(self, folder: Path, tar_path: Path, manifest: Manifest) -> None:
        unpack_wheels(tar_path, manifest, folder)
        env_dir = folder / "venv"
        # The venv's own scripts carry its absolute path: it is made where it will live.
        subprocess.run(
            [self.python, "-m", "venv", "--without-pip", str(env_dir)],
            check=True,
            capture_output=True,
            timeout=self.timeout_s,
        )
        result = subprocess.run(
            [
                self.python,
                "-m",
                "pip",
                "--python",
                str(env_dir / "bin" / "python"),
                "install",
                "--no-index",
                "--find-links",
                str(folder / WHEELS_DIR),
                "--no-cache-dir",
                "--disable-pip-version-check",
                "-q",
                manifest.requirement,
            ],
            capture_output=True,
            text=True,
            timeout=self.timeout_s,
            check=False,
        )
        if result.returncode != 0:
            raise UpdateRejected(
                f"release {manifest.version} did not install: pip said "
                f"{result.stderr.strip()[-300:]!r}; the running version is unchanged"
            )


class SimulatedInstaller:
    """Unpacks the release and writes a stand-in entry point (fleet simulations)."""

    def install(self, folder: Path, tar_path: Path, manifest: Manifest) -> None:
        unpack_wheels(tar_path, manifest, folder)
        entry = folder / "venv" / "bin" / "porchlight"
        entry.parent.mkdir(parents=True, exist_ok=True)
        entry.write_text(f"#!/bin/sh\necho porchlight {manifest.version}\n")
        entry.chmod(0o755)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_complete(layout: DeviceLayout, version: str) -> bool:
    return (layout.release_dir(version) / COMPLETE_MARKER).is_file()


def mark_complete(layout: DeviceLayout, version: str) -> None:
    folder = layout.release_dir(version)
    # Everything under the folder must be on disk before the marker says so.
    subprocess.run(["sync", "-f", str(folder)], check=False, capture_output=True)
    atomic.write_bytes(folder / COMPLETE_MARKER, b"", mode=0o644)


def write_manifest(layout: DeviceLayout, manifest: Manifest) -> None:
    data = json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode()
    atomic.write_bytes(layout.release_manifest(manifest.version), data, mode=0o644)


def link_version(layout: DeviceLayout, link: Path) -> str | None:
    """The version `current` or `previous` points at, or None if missing or not ours."""
    try:
        return layout.version_of_target(os.readlink(link))
    except (OSError, ValueError):
        return None


def point(layout: DeviceLayout, link: Path, version: str) -> None:
    """Make `link` point at releases/<version> in one rename (never missing, never half)."""
    if not is_complete(layout, version):
        raise DeviceFault(f"release {version} is not completely installed; not switching to it")
    tmp = layout.temporary_link(link)
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(layout.link_target(version), tmp)
    os.replace(tmp, link)
    fsync_dir(link.parent)


def remove_release(layout: DeviceLayout, version: str) -> None:
    """Delete a release folder; never the one `current` or `previous` points at."""
    if version in (
        link_version(layout, layout.current_link),
        link_version(layout, layout.previous_link),
    ):
        raise DeviceFault(f"release {version} is in use; not removing it")
    folder = layout.release_dir(version)
    if not folder.exists():
        return
    # Unmark first: a cut mid-delete leaves an incomplete folder, which is cleaned up later.
    with contextlib.suppress(FileNotFoundError):
        (folder / COMPLETE_MARKER).unlink()
    shutil.rmtree(folder, ignore_errors=True)


def installed_versions(layout: DeviceLayout) -> list[str]:
    if not layout.releases_dir.is_dir():
        return []
    return sorted(p.name for p in layout.releases_dir.iterdir() if (p / COMPLETE_MARKER).is_file())


def remove_incomplete(layout: DeviceLayout) -> list[str]:
    """Remove folders a cut install left behind (no marker, not linked)."""
    removed = []
    if not layout.releases_dir.is_dir():
        return removed
    linked = {link_version(layout, layout.current_link), link_version(layout, layout.previous_link)}
    for folder in layout.releases_dir.iterdir():
        if folder.name in linked or (folder / COMPLETE_MARKER).is_file():
            continue
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
    return removed


def install_release(
    layout: DeviceLayout,
    installer: Installer,
    tar_path: Path,
    manifest: Manifest,
) -> None:
    """Install into releases/<version>/ from scratch and mark it complete."""
    version = manifest.version
    folder = layout.release_dir(version)
    if folder.exists():
        remove_release(layout, version)
    folder.mkdir(parents=True)
    try:
        installer.install(folder, tar_path, manifest)
        write_manifest(layout, manifest)
        if not layout.release_entry_point(version).is_file():
            raise UpdateRejected(
                f"release {version} installed no `porchlight` command; nothing switched"
            )
        mark_complete(layout, version)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def provision(layout: DeviceLayout, installer: Installer, tar_path: Path, version: str) -> None:
    """Lay down a first release as `current` (what the image build does): for simulations
    and tests."""
    manifest = read_release(tar_path, version)
    layout.releases_dir.mkdir(parents=True, exist_ok=True)
    install_release(layout, installer, tar_path, manifest)
    point(layout, layout.current_link, version)
