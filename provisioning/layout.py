"""Where everything lives on a kiosk: the one folder layout the image, the kiosk and the update
agent share.

Pure: paths are computed from `root`, nothing touches the disk. On a device `root` is "/";
tests and the image build pass a staging folder instead.

    /opt/porchlight/                 app partition (PORCHAPP), root-owned, written only by the agent
        releases/<version>/          one self-contained release
            venv/                    its own virtual environment (bin/porchlight is the entry point)
            manifest.json            what the release is
        current  -> releases/<v>     the release systemd starts (relative symlink)
        previous -> releases/<v>     the release to roll back to
    /var/lib/porchlight/             data partition (PORCHDATA), root-owned mount point
        kiosk/                       the kiosk's PORCHLIGHT_DATA_DIR, porchlight-owned, 0700
            credential.json          device credential, 0600
        update/                      the update agent's state, root-only 0700
            bootstrap-root.json      the release repository's TUF root (from the image), 0644
            tuf/                     last trusted TUF metadata
            downloads/               partial and finished downloads
        journal/                     persistent journal (bind-mounted on /var/log/journal)
        network/                     NetworkManager connection profiles (Wi-Fi set at enrolment)
    /etc/porchlight/porchlight.toml  device configuration (read-only root)

Why the kiosk's files sit one level down rather than in the mount point itself: the kiosk user
must not own a folder that also holds root's trust anchors, or it could rename the agent's TUF
metadata away and plant its own.

Switching releases is atomic: make a new symlink under a temporary name next to `current`, then
rename it over `current` (rename(2) replaces a symlink in one step, even across a power cut).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from porchlight.errors import BadInput

# A release folder name: a version such as 1.4.0, 1.4.0rc1 or 1.4.0+pi5. No separators, no
# leading dot, so a version can never name a path outside releases/.
_VERSION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")

KIOSK_USER = "porchlight"
KIOSK_GROUPS = ("gpio", "video", "audio", "input", "render")
CREDENTIAL_FILE = "credential.json"
MANIFEST_FILE = "manifest.json"
ENTRY_POINT = PurePosixPath("venv/bin/porchlight")
APP_PARTITION_LABEL = "PORCHAPP"
DATA_PARTITION_LABEL = "PORCHDATA"


def check_version(version: str) -> str:
    """Return `version` if it is a safe release folder name, else raise BadInput."""
    if not isinstance(version, str) or not _VERSION.match(version) or ".." in version:
        raise BadInput(
            f"release version {version!r} is not usable as a folder name: use letters, digits "
            "and . _ + - only, starting with a letter or digit (for example 1.4.0)"
        )
    return version


@dataclass(frozen=True)
class PathRule:
    """How one path must look on a device: owner, group and permission bits."""

    path: Path
    kind: str  # "dir" or "file"
    owner: str
    group: str
    mode: int


@dataclass(frozen=True)
class DeviceLayout:
    """Every on-device path Porchlight uses, under `root` ("/" on a real kiosk)."""

    root: Path = Path("/")

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    # --- app partition: releases ---------------------------------------------------------

    @property
    def app_dir(self) -> Path:
        return self.root / "opt" / "porchlight"

    @property
    def releases_dir(self) -> Path:
        return self.app_dir / "releases"

    def release_dir(self, version: str) -> Path:
        return self.releases_dir / check_version(version)

    def release_venv(self, version: str) -> Path:
        return self.release_dir(version) / "venv"

    def release_manifest(self, version: str) -> Path:
        return self.release_dir(version) / MANIFEST_FILE

    def release_entry_point(self, version: str) -> Path:
        return self.release_dir(version) / ENTRY_POINT

    @property
    def current_link(self) -> Path:
        return self.app_dir / "current"

    @property
    def previous_link(self) -> Path:
        return self.app_dir / "previous"

    @property
    def current_entry_point(self) -> Path:
        """What systemd runs: through `current`, so a switch needs no unit change."""
        return self.current_link / ENTRY_POINT

    @staticmethod
    def link_target(version: str) -> str:
        """The relative target `current`/`previous` point at, so the tree can be moved or
        staged under another root and still resolve."""
        return f"releases/{check_version(version)}"

    @staticmethod
    def version_of_target(target: str) -> str:
        """The version a `current`/`previous` link target names; BadInput if it is not one of
        ours (absolute, outside releases/, or not a release folder name)."""
        parts = PurePosixPath(target).parts
        if len(parts) != 2 or parts[0] != "releases":
            raise BadInput(
                f"release link target {target!r} is not of the form releases/<version>; "
                "repair the link or reinstall the release"
            )
        return check_version(parts[1])

    def temporary_link(self, link: Path) -> Path:
        """Name for the new symlink that is renamed over `link` to switch atomically."""
        return link.with_name(f".{link.name}.new")

    # --- data partition ------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        """Mount point of the writable data partition."""
        return self.root / "var" / "lib" / "porchlight"

    @property
    def kiosk_data_dir(self) -> Path:
        """The kiosk's PORCHLIGHT_DATA_DIR: outbox, credential, Kivy home."""
        return self.data_dir / "kiosk"

    @property
    def credential_path(self) -> Path:
        return self.kiosk_data_dir / CREDENTIAL_FILE

    @property
    def update_dir(self) -> Path:
        return self.data_dir / "update"

    @property
    def tuf_metadata_dir(self) -> Path:
        return self.update_dir / "tuf"

    @property
    def downloads_dir(self) -> Path:
        return self.update_dir / "downloads"

    @property
    def update_state_path(self) -> Path:
        return self.update_dir / "state.json"

    @property
    def bootstrap_root_path(self) -> Path:
        """The TUF root the device was given (image or enrolment): the agent's trust anchor."""
        return self.update_dir / "bootstrap-root.json"

    @property
    def journal_dir(self) -> Path:
        return self.data_dir / "journal"

    @property
    def network_dir(self) -> Path:
        return self.data_dir / "network"

    @property
    def firstboot_marker(self) -> Path:
        return self.data_dir / ".firstboot-done"

    # --- read-only root -------------------------------------------------------------------

    @property
    def config_file(self) -> Path:
        return self.root / "etc" / "porchlight" / "porchlight.toml"

    # --- helpers ----------------------------------------------------------------------------

    def on_device(self, path: Path) -> PurePosixPath:
        """The absolute path `path` (under this layout's root) has on the device itself."""
        relative = Path(path).relative_to(self.root)
        return PurePosixPath("/") / PurePosixPath(relative.as_posix())

    def permission_rules(self) -> tuple[PathRule, ...]:
        """Owner and mode every fixed path must have; the image's tmpfiles.d rules enforce
        them at each boot and the image tests check the staged tree against this list."""
        user = KIOSK_USER
        return (
            PathRule(self.app_dir, "dir", "root", "root", 0o755),
            PathRule(self.releases_dir, "dir", "root", "root", 0o755),
            PathRule(self.data_dir, "dir", "root", "root", 0o755),
            PathRule(self.kiosk_data_dir, "dir", user, user, 0o700),
            PathRule(self.credential_path, "file", user, user, 0o600),
            PathRule(self.update_dir, "dir", "root", "root", 0o700),
            # Public metadata, but only root may replace the device's trust anchor.
            PathRule(self.bootstrap_root_path, "file", "root", "root", 0o644),
            PathRule(self.tuf_metadata_dir, "dir", "root", "root", 0o700),
            PathRule(self.downloads_dir, "dir", "root", "root", 0o700),
            PathRule(self.journal_dir, "dir", "root", "systemd-journal", 0o2755),
            PathRule(self.network_dir, "dir", "root", "root", 0o700),
            PathRule(self.config_file.parent, "dir", "root", "root", 0o755),
        )
