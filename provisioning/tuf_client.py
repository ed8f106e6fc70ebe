"""Verified release downloads: python-tuf's ngclient `Updater`, plus resumable target fetches.

`ReleaseClient.refresh()` runs the TUF client workflow (root → timestamp → snapshot →
targets) against the metadata kept from last time, so rollback, freeze and mix-and-match are
caught; `download(version)` fetches the release file with HTTP ranges (a cut download goes on
where it stopped), never reads more than the signed length, and checks the signed hash before
anything uses it. Every refusal becomes one `UpdateRejected` that says which attack it looks
like; a link failure is `TransportFailed` (try again later).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests
from tuf.api import exceptions as tuf_errors
from tuf.api.metadata import Metadata, TargetFile, Targets
from tuf.ngclient import Updater, UpdaterConfig
from tuf.ngclient.fetcher import FetcherInterface

from porchlight.errors import TransportFailed, UpdateRejected
from porchlight.provisioning.release import target_name
from porchlight.provisioning.repository import CUSTOM_KEY

CHUNK = 64 * 1024


class HttpFetcher(FetcherInterface):
    """python-tuf's one private hook, over a requests session; counts bytes received."""

    def __init__(self, session: requests.Session | None = None, timeout_s: float = 30.0) -> None:
        self.session = session or requests.Session()
        self.timeout_s = timeout_s
        self.bytes_received = 0

    def _fetch(self, url: str) -> Iterator[bytes]:
        try:
            response = self.session.get(url, stream=True, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise tuf_errors.DownloadError(f"cannot reach {url}: {type(exc).__name__}") from None
        if response.status_code != 200:
            response.close()
            raise tuf_errors.DownloadHTTPError(
                f"{url} answered HTTP {response.status_code}", response.status_code
            )
        return self._chunks(response)

    def _chunks(self, response: requests.Response) -> Iterator[bytes]:
        with response:
            for chunk in response.iter_content(CHUNK):
                self.bytes_received += len(chunk)
                yield chunk

    def open_range(self, url: str, start: int) -> requests.Response:
        headers = {"Range": f"bytes={start}-"} if start else {}
        try:
            return self.session.get(url, stream=True, timeout=self.timeout_s, headers=headers)
        except requests.RequestException as exc:
            raise TransportFailed(
                f"cannot download the release ({type(exc).__name__}); will try again later"
            ) from None


def _rejected(exc: Exception, stage: str) -> Exception:
    """One place that says what a python-tuf error means for us."""
    if isinstance(exc, tuf_errors.ExpiredMetadataError):
        why = "its signed metadata has expired (a frozen or stale repository)"
    elif isinstance(exc, tuf_errors.BadVersionNumberError):
        why = "it offered older metadata than the device already trusts (a rollback attack)"
    elif isinstance(exc, tuf_errors.UnsignedMetadataError):
        why = "its metadata is not signed by the keys the device trusts (wrong key)"
    elif isinstance(exc, tuf_errors.LengthOrHashMismatchError):
        why = (
            "a metadata file does not match what the signed snapshot lists (mix-and-match)"
            if stage == "metadata"
            else "the file does not match its signed hash (tampered)"
        )
    elif isinstance(exc, tuf_errors.DownloadLengthMismatchError):
        why = "a file is larger than allowed (oversize download)"
    elif isinstance(exc, tuf_errors.RepositoryError):
        why = f"its metadata failed verification ({type(exc).__name__})"
    elif isinstance(exc, tuf_errors.DownloadHTTPError):
        return TransportFailed(
            f"the release server answered HTTP {exc.status_code}; will try again later"
        )
    else:
        return TransportFailed(f"cannot reach the release server ({exc}); will try again later")
    return UpdateRejected(f"update refused: {why}; nothing installed")


@dataclass(frozen=True)
class RepositoryView:
    min_version: str | None
    versions: tuple[str, ...]


class ReleaseClient:
    """One check's worth of TUF: build a new one per check (an Updater refreshes once)."""

    def __init__(
        self,
        *,
        metadata_dir: Path,
        metadata_url: str,
        targets_url: str,
        bootstrap_root: bytes,
        downloads_dir: Path,
        max_release_bytes: int,
        fetcher: HttpFetcher | None = None,
    ) -> None:
        self.fetcher = fetcher or HttpFetcher()
        self.downloads_dir = Path(downloads_dir)
        self.max_release_bytes = max_release_bytes
        self.targets_url = targets_url.rstrip("/") + "/"
        self.metadata_dir = Path(metadata_dir)
        Path(metadata_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self.updater = Updater(
                str(metadata_dir),
                metadata_url,
                str(self.downloads_dir),
                self.targets_url,
                fetcher=self.fetcher,
                config=UpdaterConfig(),
                bootstrap=bootstrap_root,
            )
        except (tuf_errors.RepositoryError, ValueError) as exc:
            raise UpdateRejected(
                f"the device's trusted root is not valid ({type(exc).__name__}); "
                "re-provision the device's bootstrap root"
            ) from None

    def refresh(self) -> RepositoryView:
        try:
            self.updater.refresh()
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            raise _rejected(exc, "metadata") from None
        # refresh() has just verified and persisted it: read the trusted copy back.
        targets = Metadata[Targets].from_file(str(self.metadata_dir / "targets.json")).signed
        custom = targets.unrecognized_fields.get(CUSTOM_KEY, {})
        versions = tuple(
            str(t.unrecognized_fields.get("custom", {}).get("version"))
            for t in targets.targets.values()
        )
        return RepositoryView(custom.get("min_version"), versions)

    def target_info(self, version: str) -> TargetFile:
        try:
            info = self.updater.get_targetinfo(target_name(version))
        except (tuf_errors.RepositoryError, tuf_errors.DownloadError) as exc:
            raise _rejected(exc, "metadata") from None
        if info is None:
            raise UpdateRejected(
                f"release {version} is not in the signed repository; nothing installed"
            )
        if info.length > self.max_release_bytes:
            raise UpdateRejected(
                f"update refused: release {version} is {info.length} bytes, more than the "
                f"{self.max_release_bytes} allowed (oversize download); nothing installed"
            )
        return info

    def download(self, info: TargetFile) -> Path:
        """The verified release file (resuming a partial download if one is there)."""
        digest = info.hashes["sha256"]
        final = self.downloads_dir / f"{digest}.{info.path}"
        if final.exists():
            if self._verified(info, final):
                return final
            final.unlink()
        part = final.with_name(final.name + ".part")
        have = part.stat().st_size if part.exists() else 0
        if have > info.length:
            part.unlink()
            have = 0
        url = f"{self.targets_url}{digest}.{info.path}"
        response = self.fetcher.open_range(url, have)
        with response:
            if response.status_code == 200:
                have = 0  # the server ignored the range: start again
            elif response.status_code == 416 and have == info.length:
                pass  # already all here
            elif response.status_code != 206:
                raise TransportFailed(
                    f"the release server answered HTTP {response.status_code} for release "
                    f"{info.path}; will try again later"
                )
            self.downloads_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            with open(part, "r+b" if have else "wb") as out:
                out.seek(have)
                out.truncate()
                if response.status_code in (200, 206):
                    try:
                        for chunk in response.iter_content(CHUNK):
                            self.fetcher.bytes_received += len(chunk)
                            if have + len(chunk) > info.length:
                                out.close()
                                part.unlink()
                                raise UpdateRejected(
                                    f"update refused: the server sent more than the signed "
                                    f"{info.length} bytes of {info.path} (oversize download); "
                                    "nothing installed"
                                )
                            out.write(chunk)
                            have += len(chunk)
                    except requests.RequestException as exc:
                        raise TransportFailed(
                            f"the release download was cut ({type(exc).__name__}); it resumes "
                            "at the next check"
                        ) from None
                out.flush()
                os.fsync(out.fileno())
        if have < info.length:
            raise TransportFailed(
                f"the release download stopped at {have} of {info.length} bytes; it resumes "
                "at the next check"
            )
        if not self._verified(info, part):
            part.unlink()
            raise UpdateRejected(
                "update refused: the file does not match its signed hash (tampered); "
                "nothing installed"
            )
        os.replace(part, final)
        return final

    @staticmethod
    def _verified(info: TargetFile, path: Path) -> bool:
        try:
            with open(path, "rb") as handle:
                info.verify_length_and_hashes(handle)
        except (OSError, tuf_errors.LengthOrHashMismatchError):
            return False
        return True

    def discard_downloads(self, keep: Path | None = None) -> None:
        for path in self.downloads_dir.glob("*"):
            if path != keep and path.is_file():
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
