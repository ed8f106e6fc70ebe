"""A release: the app's wheels and a manifest, packed into one file the update agent installs.

    porchlight-<version>.tar
        manifest.json        {"name", "version", "requirement", "created", "wheels": [...]}
        wheels/<file>.whl    every wheel the release needs (the app and its dependencies)

One file per release, so one TUF target (one length, one hash) covers all of it. The tar is
uncompressed (wheels are already zip files) and deterministic: sorted members, zero times and
owners, so building the same wheels twice gives the same bytes and the same hash.

The device installs it with `pip install --no-index --find-links wheels/ <requirement>` into
the release's own virtual environment: nothing is fetched from anywhere else.
"""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from porchlight.errors import BadInput, UpdateRejected
from porchlight.provisioning.layout import MANIFEST_FILE, check_version

RELEASE_NAME = "porchlight"
WHEELS_DIR = "wheels"
# A manifest is a few kB; anything much bigger is not one of ours.
MAX_MANIFEST_BYTES = 256 * 1024


def target_name(version: str) -> str:
    """The TUF target (and file) name of a release."""
    return f"{RELEASE_NAME}-{check_version(version)}.tar"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class WheelEntry:
    file: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    name: str
    version: str
    requirement: str  # what pip installs, e.g. "porchlight[kiosk]==1.4.0"
    created: str  # ISO 8601, UTC
    wheels: tuple[WheelEntry, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "requirement": self.requirement,
            "created": self.created,
            "wheels": [w.__dict__ for w in self.wheels],
        }

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        """Parse a manifest; BadInput when anything is missing or of the wrong kind."""
        try:
            wheels = tuple(
                WheelEntry(str(w["file"]), str(w["sha256"]), int(w["size"])) for w in data["wheels"]
            )
            manifest = cls(
                name=str(data["name"]),
                version=check_version(data["version"]),
                requirement=str(data["requirement"]),
                created=str(data["created"]),
                wheels=wheels,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise BadInput(
                f"the release manifest is not valid ({exc}); rebuild the release"
            ) from None
        for wheel in wheels:
            name = PurePosixPath(wheel.file)
            if len(name.parts) != 1 or not wheel.file.endswith(".whl") or wheel.file[0] == ".":
                raise BadInput(f"the release manifest names an unsafe wheel file {wheel.file!r}")
        if not wheels:
            raise BadInput("the release manifest lists no wheels; rebuild the release")
        return manifest


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    info.mtime = 0
    tar.addfile(info, io.BytesIO(data))


def build_release(
    version: str,
    wheels: Iterable[Path],
    out_dir: Path,
    *,
    requirement: str,
    now: datetime,
) -> Path:
    """Pack `wheels` and a manifest into `out_dir/porchlight-<version>.tar`; returns its path."""
    check_version(version)
    if now.tzinfo is None:
        raise BadInput("the release time must carry a time zone")
    paths = sorted({Path(p) for p in wheels}, key=lambda p: p.name)
    if not paths:
        raise BadInput("a release needs at least one wheel: build the app's wheel first")
    for path in paths:
        if path.suffix != ".whl" or not path.is_file():
            raise BadInput(f"{path} is not a wheel file")
    if len({p.name for p in paths}) != len(paths):
        raise BadInput("two wheels share one file name; keep one of them")
    if not requirement.strip():
        raise BadInput("say what to install (the requirement), e.g. 'porchlight[kiosk]'")
    manifest = Manifest(
        name=RELEASE_NAME,
        version=version,
        requirement=requirement.strip(),
        created=now.isoformat(),
        wheels=tuple(WheelEntry(p.name, sha256_file(p), p.stat().st_size) for p in paths),
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / target_name(version)
    tmp = target.with_name(f".{target.name}.partial")
    with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(
            tar, MANIFEST_FILE, json.dumps(manifest.to_json(), indent=2, sort_keys=True).encode()
        )
        for path in paths:
            _add_bytes(tar, f"{WHEELS_DIR}/{path.name}", path.read_bytes())
    tmp.replace(target)
    return target


def build_project_wheel(project_dir: Path, out_dir: Path) -> Path:
    """Build the app's own wheel from its source tree, offline (no build isolation)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_dir) as tmp:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--no-deps",
                "--no-build-isolation",
                "--no-index",
                "-q",
                "-w",
                tmp,
                str(project_dir),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        built = sorted(Path(tmp).glob("*.whl"))
        if result.returncode != 0 or len(built) != 1:
            raise BadInput(
                f"could not build a wheel from {project_dir}: {result.stderr.strip()[-400:]}"
            )
        final = out_dir / built[0].name
        built[0].replace(final)
        return final


def read_release(tar_path: Path, expected_version: str) -> Manifest:
    """Check a release file's shape and manifest without unpacking it.

    UpdateRejected if it is not what it says: wrong version, unexpected members, a wheel whose
    hash or size differs from the manifest.
    """
    try:
        with tarfile.open(tar_path, "r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if MANIFEST_FILE not in members or members[MANIFEST_FILE].size > MAX_MANIFEST_BYTES:
                raise UpdateRejected("the release has no readable manifest; nothing installed")
            handle = tar.extractfile(members[MANIFEST_FILE])
            manifest = Manifest.from_json(json.loads(handle.read() if handle else b""))
            expected = {MANIFEST_FILE} | {f"{WHEELS_DIR}/{w.file}" for w in manifest.wheels}
            if set(members) != expected:
                raise UpdateRejected(
                    "the release holds files its manifest does not list; nothing installed"
                )
            for wheel in manifest.wheels:
                member = members[f"{WHEELS_DIR}/{wheel.file}"]
                data = tar.extractfile(member)
                if not member.isfile() or data is None or member.size != wheel.size:
                    raise UpdateRejected(f"wheel {wheel.file} does not match the manifest")
                if hashlib.sha256(data.read()).hexdigest() != wheel.sha256:
                    raise UpdateRejected(f"wheel {wheel.file} does not match its hash")
    except (tarfile.TarError, OSError, json.JSONDecodeError, BadInput) as exc:
        raise UpdateRejected(f"the release file is unreadable ({exc}); nothing installed") from None
    if manifest.version != expected_version:
        raise UpdateRejected(
            f"the release file says version {manifest.version}, expected {expected_version}; "
            "nothing installed"
        )
    return manifest


def unpack_wheels(tar_path: Path, manifest: Manifest, dest: Path) -> None:
    """Extract the (already checked) wheels and manifest into `dest`."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(tar_path, "r:") as tar:
        # The "data" filter refuses links, devices, absolute paths and `..` on top of our check.
        tar.extractall(dest, filter="data")
