"""The TUF repository support staff publish releases into (python-tuf Metadata API).

Roles: root (who may sign what), targets (which releases exist: name, length, hashes,
version), snapshot (which targets metadata is current) and timestamp (which snapshot is
current; short expiry, so a frozen mirror is noticed within a day). Keys are ed25519
(securesystemslib CryptoSigner), one PEM file each, kept in separate folders:

    <root_keys_dir>/root/<keyid>.pem        offline: needed only to create or re-sign root
    <keys_dir>/targets/<keyid>.pem          online: needed to publish
    <keys_dir>/snapshot/<keyid>.pem
    <keys_dir>/timestamp/<keyid>.pem

so the root keys can live on a USB stick in a safe and publishing never touches them.

The published tree (serve it as static files; the hub does, see `porchlight.hub.releases`):

    <path>/metadata/root.json, 1.root.json, ... N.root.json
    <path>/metadata/<v>.targets.json, <v>.snapshot.json, timestamp.json
    <path>/targets/<sha256>.porchlight-<version>.tar

Consistent snapshots: every targets/snapshot version and every target file has its own name,
and `timestamp.json` is written last, so a device reading during a publish sees the old
repository or the new one, never a mix.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import load_pem_private_key
from securesystemslib.signer import CryptoSigner, Signer
from tuf.api.metadata import (
    Metadata,
    MetaFile,
    Root,
    Snapshot,
    TargetFile,
    Targets,
    Timestamp,
)
from tuf.api.serialization.json import JSONSerializer

from porchlight import atomic
from porchlight.errors import BadInput, ConfigError
from porchlight.provisioning.layout import check_version
from porchlight.provisioning.release import read_release, sha256_file, target_name

ONLINE_ROLES = (Targets.type, Snapshot.type, Timestamp.type)
ALL_ROLES = (Root.type, *ONLINE_ROLES)
# Signed, repository-wide Porchlight settings live under this key in targets metadata.
CUSTOM_KEY = "x-porchlight"


@dataclass
class RepositoryConfig:
    """Where the repository and its keys are, and its thresholds and expiry periods."""

    path: Path
    keys_dir: Path
    root_keys_dir: Path | None = None
    root_threshold: int = 1
    targets_threshold: int = 1
    snapshot_threshold: int = 1
    timestamp_threshold: int = 1
    root_expiry_days: float = 365.0
    targets_expiry_days: float = 90.0
    snapshot_expiry_days: float = 7.0
    timestamp_expiry_days: float = 1.0

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        self.keys_dir = Path(self.keys_dir)
        if self.root_keys_dir is not None:
            self.root_keys_dir = Path(self.root_keys_dir)
        for role in ALL_ROLES:
            if int(self.threshold(role)) < 1:
                raise ConfigError(f"the {role} threshold must be at least 1")
            if float(self.expiry(role).total_seconds()) <= 0:
                raise ConfigError(f"the {role} expiry must be a positive number of days")

    def threshold(self, role: str) -> int:
        return int(getattr(self, f"{role}_threshold"))

    def expiry(self, role: str) -> timedelta:
        return timedelta(days=float(getattr(self, f"{role}_expiry_days")))

    def key_dir(self, role: str) -> Path:
        if role == Root.type:
            if self.root_keys_dir is None:
                raise ConfigError(
                    "this needs the offline root keys: pass the folder that holds root/*.pem"
                )
            return self.root_keys_dir / role
        return self.keys_dir / role

    @property
    def metadata_dir(self) -> Path:
        return self.path / "metadata"

    @property
    def targets_dir(self) -> Path:
        return self.path / "targets"


def _serializer() -> JSONSerializer:
    return JSONSerializer(compact=False)


def _write_key(folder: Path, signer: CryptoSigner) -> None:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    atomic.write_bytes(folder / f"{signer.public_key.keyid}.pem", signer.private_bytes, mode=0o600)


def load_signers(folder: Path) -> list[Signer]:
    """Every key in `folder` (one PEM file each)."""
    signers: list[Signer] = []
    for pem in sorted(Path(folder).glob("*.pem")):
        try:
            private = load_pem_private_key(pem.read_bytes(), None)
        except (ValueError, TypeError, OSError):
            raise ConfigError(f"{pem} is not an unencrypted PEM private key") from None
        signers.append(CryptoSigner(private))  # type: ignore[arg-type]
    return signers


def _expires(now: datetime, period: timedelta) -> datetime:
    if now.tzinfo is None:
        raise BadInput("times given to the repository must carry a time zone")
    return (now + period).replace(microsecond=0)


def init_repository(
    config: RepositoryConfig,
    *,
    now: datetime,
    keys_per_role: dict[str, int] | None = None,
) -> bytes:
    """Make new keys and an empty, signed repository; returns root.json (the devices'
    trust anchor: install it on each device as the agent's bootstrap root).

    `keys_per_role` defaults to the threshold of each role (n-of-n)."""
    if (config.metadata_dir / "root.json").exists():
        raise BadInput(f"{config.path} already holds a repository; publish into it instead")
    counts = {role: config.threshold(role) for role in ALL_ROLES} | (keys_per_role or {})
    root = Metadata(Root(expires=_expires(now, config.expiry(Root.type))))
    root.signed.consistent_snapshot = True
    signers: dict[str, list[CryptoSigner]] = {}
    for role in ALL_ROLES:
        if counts[role] < config.threshold(role):
            raise BadInput(f"{role} needs at least {config.threshold(role)} keys")
        signers[role] = [CryptoSigner.generate_ed25519() for _ in range(counts[role])]
        for signer in signers[role]:
            root.signed.add_key(signer.public_key, role)
            _write_key(config.key_dir(role), signer)
        root.signed.roles[role].threshold = config.threshold(role)
    for signer in signers[Root.type]:
        root.sign(signer, append=True)
    root_bytes = root.to_bytes(_serializer())
    config.metadata_dir.mkdir(parents=True, exist_ok=True)
    config.targets_dir.mkdir(parents=True, exist_ok=True)
    atomic.write_bytes(config.metadata_dir / "1.root.json", root_bytes, mode=0o644)
    atomic.write_bytes(config.metadata_dir / "root.json", root_bytes, mode=0o644)
    repo = Repository(
        config,
        root,
        Metadata(Targets(expires=_expires(now, config.expiry(Targets.type)))),
        Metadata(Snapshot(expires=_expires(now, config.expiry(Snapshot.type)))),
        Metadata(Timestamp(expires=_expires(now, config.expiry(Timestamp.type)))),
    )
    repo._publish(now, bump=False)
    return root_bytes


class Repository:
    """The repository's current metadata, and the operations support staff perform on it."""

    def __init__(
        self,
        config: RepositoryConfig,
        root: Metadata[Root],
        targets: Metadata[Targets],
        snapshot: Metadata[Snapshot],
        timestamp: Metadata[Timestamp],
    ) -> None:
        self.config = config
        self.root = root
        self.targets = targets
        self.snapshot = snapshot
        self.timestamp = timestamp

    @classmethod
    def open(cls, config: RepositoryConfig) -> Repository:
        folder = config.metadata_dir
        try:
            root = Metadata[Root].from_file(str(folder / "root.json"))
            timestamp = Metadata[Timestamp].from_file(str(folder / "timestamp.json"))
            snap_version = timestamp.signed.snapshot_meta.version
            snapshot = Metadata[Snapshot].from_file(str(folder / f"{snap_version}.snapshot.json"))
            targets_version = snapshot.signed.meta["targets.json"].version
            targets = Metadata[Targets].from_file(str(folder / f"{targets_version}.targets.json"))
        except (OSError, KeyError, ValueError) as exc:
            raise BadInput(
                f"{config.path} is not a readable repository ({type(exc).__name__}); "
                "create one with `porchlight release init`"
            ) from None
        return cls(config, root, targets, snapshot, timestamp)

    # -- reading -------------------------------------------------------------------------

    @property
    def root_bytes(self) -> bytes:
        return (self.config.metadata_dir / "root.json").read_bytes()

    def releases(self) -> dict[str, TargetFile]:
        """Published releases by version."""
        return {
            str(t.unrecognized_fields.get("custom", {}).get("version")): t
            for t in self.targets.signed.targets.values()
        }

    @property
    def min_version(self) -> str | None:
        return self.targets.signed.unrecognized_fields.get(CUSTOM_KEY, {}).get("min_version")

    # -- changing ------------------------------------------------------------------------

    def add_release(self, tar_path: Path, version: str) -> TargetFile:
        """Copy a built release into targets/ (by hash) and list it; call publish() after."""
        check_version(version)
        read_release(Path(tar_path), version)  # refuse to sign something malformed
        name = target_name(version)
        if name in self.targets.signed.targets:
            raise BadInput(f"release {version} is already published; give it a new version")
        target = TargetFile.from_file(name, str(tar_path), ["sha256"])
        target.unrecognized_fields["custom"] = {"version": version}
        self.config.targets_dir.mkdir(parents=True, exist_ok=True)
        digest = target.hashes["sha256"]
        final = self.config.targets_dir / f"{digest}.{name}"
        tmp = final.with_name(f".{final.name}.partial")
        shutil.copyfile(tar_path, tmp)
        if sha256_file(tmp) != digest:
            tmp.unlink()
            raise BadInput(f"{tar_path} changed while it was being copied; publish it again")
        tmp.replace(final)
        self.targets.signed.targets[name] = target
        return target

    def set_min_version(self, version: str | None) -> None:
        """Devices refuse any release older than this, whatever the hub asks (a signed floor
        against a compromised hub rolling the fleet back to a release with a known flaw)."""
        custom: dict[str, Any] = dict(self.targets.signed.unrecognized_fields.get(CUSTOM_KEY, {}))
        if version is None:
            custom.pop("min_version", None)
        else:
            custom["min_version"] = check_version(version)
        self.targets.signed.unrecognized_fields[CUSTOM_KEY] = custom

    def _sign(self, md: Metadata[Any], role: str) -> None:
        allowed = set(self.root.signed.roles[role].keyids)
        signers = [
            s for s in load_signers(self.config.key_dir(role)) if s.public_key.keyid in allowed
        ]
        needed = self.root.signed.roles[role].threshold
        if len(signers) < needed:
            raise ConfigError(
                f"found {len(signers)} of the {needed} {role} keys needed in "
                f"{self.config.key_dir(role)}; bring the missing key files"
            )
        md.signatures.clear()
        for signer in signers:
            md.sign(signer, append=True)

    def _write(self, filename: str, md: Metadata[Any]) -> bytes:
        data = md.to_bytes(_serializer())
        atomic.write_bytes(self.config.metadata_dir / filename, data, mode=0o644)
        return data

    def publish(self, *, now: datetime) -> None:
        """Sign and write new targets, snapshot and timestamp (timestamp last)."""
        self._publish(now, bump=True)

    def _publish(self, now: datetime, *, bump: bool) -> None:
        cfg = self.config
        self.targets.signed.version += int(bump)
        self.targets.signed.expires = _expires(now, cfg.expiry(Targets.type))
        self._sign(self.targets, Targets.type)
        data = self._write(f"{self.targets.signed.version}.targets.json", self.targets)
        self.snapshot.signed.meta["targets.json"] = MetaFile.from_data(
            self.targets.signed.version, data, ["sha256"]
        )
        self.snapshot.signed.version += int(bump)
        self.snapshot.signed.expires = _expires(now, cfg.expiry(Snapshot.type))
        self._sign(self.snapshot, Snapshot.type)
        data = self._write(f"{self.snapshot.signed.version}.snapshot.json", self.snapshot)
        self._publish_timestamp(now, data, bump=bump)

    def refresh_timestamp(self, *, now: datetime) -> None:
        """Re-sign only the timestamp (run at least daily, or devices see a frozen repository)."""
        snap = self.config.metadata_dir / f"{self.snapshot.signed.version}.snapshot.json"
        self._publish_timestamp(now, snap.read_bytes(), bump=True)

    def _publish_timestamp(self, now: datetime, snapshot_bytes: bytes, *, bump: bool) -> None:
        self.timestamp.signed.snapshot_meta = MetaFile.from_data(
            self.snapshot.signed.version, snapshot_bytes, ["sha256"]
        )
        self.timestamp.signed.version += int(bump)
        self.timestamp.signed.expires = _expires(now, self.config.expiry(Timestamp.type))
        self._sign(self.timestamp, Timestamp.type)
        self._write("timestamp.json", self.timestamp)

    def resign_root(self, *, now: datetime) -> bytes:
        """New root version with a fresh expiry, signed with the offline root keys."""
        self.root.signed.version += 1
        self.root.signed.expires = _expires(now, self.config.expiry(Root.type))
        self._sign(self.root, Root.type)
        data = self._write(f"{self.root.signed.version}.root.json", self.root)
        self._write("root.json", self.root)
        return data
