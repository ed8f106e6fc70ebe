"""Helpers for the image checks: a staging root assembled by images/assemble-root.

The staging root starts as a stand-in for what pi-gen's stage2 leaves (this machine's systemd
units and base users, Raspberry Pi OS's stock config.txt and cmdline.txt), then the real
assemble-root lays Porchlight into it exactly as the image build does inside its chroot.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from porchlight.provisioning.layout import DeviceLayout

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "images"
FILES = IMAGES / "files"
UNIT_DIR = FILES / "usr" / "lib" / "systemd" / "system"

# What pi-gen's stage1/stage2 put on the boot partition (bookworm, 64-bit).
STOCK_CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=2c5d1f53-02 rootfstype=ext4 "
    "fsck.repair=yes rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n"
)
STOCK_CONFIG = (
    "dtparam=audio=on\ncamera_auto_detect=1\ndisplay_auto_detect=1\nauto_initramfs=1\n"
    "dtoverlay=vc4-kms-v3d\nmax_framebuffers=2\ndisable_fw_kms_setup=1\narm_64bit=1\n"
    "disable_overscan=1\narm_boost=1\n"
)
# Raspberry Pi OS ships NetworkManager; this machine need not. A stand-in unit lets
# systemd-analyze check our drop-in against something.
NETWORK_MANAGER_STUB = """[Unit]
Description=Network Manager (stand-in for the image checks)

[Service]
Type=dbus
BusName=org.freedesktop.NetworkManager
ExecStart=/usr/sbin/NetworkManager --no-daemon

[Install]
WantedBy=multi-user.target
"""

SOURCE_PARTS = (
    "pyproject.toml",
    "README.md",
    "porchlight",
    "kiosk",
    "device",
    "hub",
    "provisioning",
)


@dataclass(frozen=True)
class StagedRoot:
    root: Path
    layout: DeviceLayout
    release: str
    wheels: Path
    tuf_root: Path


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    """Run a command, failing the test with its output if it fails."""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(map(str, cmd))} exited {result.returncode}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
    return result


def make_base_root(root: Path) -> None:
    """What pi-gen's Lite stages leave behind, as far as assemble-root cares."""
    host_units = Path("/usr/lib/systemd/system")
    if not host_units.is_dir():
        host_units = Path("/lib/systemd/system")
    shutil.copytree(host_units, root / "usr/lib/systemd/system", symlinks=True)
    sysusers = root / "usr/lib/sysusers.d"
    sysusers.mkdir(parents=True)
    for name in ("basic.conf", "systemd-journal.conf"):
        if (Path("/usr/lib/sysusers.d") / name).exists():
            shutil.copy(Path("/usr/lib/sysusers.d") / name, sysusers / name)
    (root / "usr/lib/systemd/system/NetworkManager.service").write_text(NETWORK_MANAGER_STUB)
    nm = root / "usr/sbin/NetworkManager"
    nm.parent.mkdir(parents=True, exist_ok=True)
    nm.write_text("#!/bin/sh\nexit 0\n")
    nm.chmod(0o755)
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc/machine-id").write_text("")
    boot = root / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "cmdline.txt").write_text(STOCK_CMDLINE)
    (boot / "config.txt").write_text(STOCK_CONFIG)


def build_wheel(dest: Path, scratch: Path) -> Path:
    """The porchlight wheel, built offline from a copy of the source (the tree stays clean)."""
    src = scratch / "src"
    src.mkdir()
    for part in SOURCE_PARTS:
        path = REPO / part
        if path.is_dir():
            shutil.copytree(path, src / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(path, src / part)
    dest.mkdir()
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(dest),
            str(src),
        ]
    )
    return dest


def make_tuf_root(folder: Path) -> Path:
    """A release repository made as `porchlight release init` makes it; returns its
    metadata/root.json, the file the image installs as the agent's trust anchor."""
    from datetime import UTC, datetime

    from porchlight.provisioning.repository import RepositoryConfig, init_repository

    config = RepositoryConfig(
        path=folder / "repo", keys_dir=folder / "keys", root_keys_dir=folder / "root-keys"
    )
    init_repository(config, now=datetime.now(UTC))
    return config.metadata_dir / "root.json"


def assemble(
    root: Path, release: str, wheels: Path, tuf_root: Path | None
) -> subprocess.CompletedProcess[str]:
    """Run images/assemble-root on `root`; `tuf_root` None leaves out --tuf-root."""
    # Offline: the release venv gets this checkout's porchlight; its dependencies come from
    # this machine's site-packages (the venv sees them, as on the Pi it sees lgpio/picamera2).
    env = dict(os.environ)
    env.update(
        {
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(wheels),
            "PIP_NO_DEPS": "1",
            "PIP_NO_CACHE_DIR": "1",
        }
    )
    return subprocess.run(
        [
            str(IMAGES / "assemble-root"),
            "--release",
            release,
            "--python",
            sys.executable,
            *(["--tuf-root", str(tuf_root)] if tuf_root is not None else []),
            str(root),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )


def read_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """A systemd unit file as {section: [(key, value), ...]}, keys repeated as written."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        key, _, value = line.partition("=")
        assert current is not None, f"{path}: {line!r} is outside any section"
        current.append((key.strip(), value.strip()))
    return sections


def unit_value(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> str:
    values = [v for k, v in unit.get(section, []) if k == key]
    assert values, f"[{section}] {key}= is not set"
    return values[-1]


def unit_values(unit: dict[str, list[tuple[str, str]]], section: str, key: str) -> list[str]:
    return [v for k, v in unit.get(section, []) if k == key]


def passwd_entries(path: Path) -> dict[str, list[str]]:
    """/etc/passwd or /etc/group of the staged root, by name (never this machine's)."""
    return {
        line.split(":")[0]: line.split(":")
        for line in path.read_text().splitlines()
        if line and not line.startswith("#")
    }
