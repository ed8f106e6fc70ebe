"""Enrolment from a USB stick: watch the mount folders for `porchlight-enrol.txt`.

The nurse page offers the file for download; it holds the enrolment link (as in the QR
code) and, optionally, a Wi-Fi QR text on its own line. `read_enrol_file` is plain parsing;
`UsbWatcher` polls the mount folders once a second (cheap, and works for any automounter).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from porchlight.errors import BadInput
from porchlight.hub.enrolment import EnrolmentTicket, parse_ticket
from porchlight.provisioning.wifi import WifiNetwork, parse_wifi_qr

log = logging.getLogger(__name__)

ENROL_FILE = "porchlight-enrol.txt"
MAX_FILE_BYTES = 4096
# Where Raspberry Pi OS (udisks2) and plain systemd automounts put USB sticks.
MOUNT_ROOTS = (Path("/media"), Path("/run/media"), Path("/mnt"))


@dataclass(frozen=True)
class UsbEnrolment:
    ticket: EnrolmentTicket
    wifi: WifiNetwork | None
    path: Path


def parse_enrol_text(text: str) -> tuple[EnrolmentTicket, WifiNetwork | None]:
    ticket, wifi = None, None
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line[:5].upper() == "WIFI:":
            wifi = parse_wifi_qr(line)
        elif ticket is None:
            ticket = parse_ticket(line)
    if ticket is None or ticket.hub_url is None:
        raise BadInput(
            f"The file {ENROL_FILE} on the USB stick has no enrolment link. "
            "Download a new one from the nurse page."
        )
    return ticket, wifi


def read_enrol_file(path: Path) -> UsbEnrolment:
    try:
        data = Path(path).read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError:
        raise BadInput(
            f"Cannot read {ENROL_FILE} from the USB stick. Try the stick again."
        ) from None
    if len(data) > MAX_FILE_BYTES:
        raise BadInput(f"{ENROL_FILE} on the USB stick is too big to be an enrolment file.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{ENROL_FILE} on the USB stick is not a text file.") from None
    ticket, wifi = parse_enrol_text(text)
    return UsbEnrolment(ticket, wifi, Path(path))


def find_enrol_files(roots: Iterable[Path]) -> list[Path]:
    """`porchlight-enrol.txt` at the top of any stick mounted up to two levels below a root
    (/media/<user>/<stick>/ or /media/<stick>/)."""
    found = []
    for root in roots:
        for pattern in (ENROL_FILE, f"*/{ENROL_FILE}", f"*/*/{ENROL_FILE}"):
            with contextlib.suppress(OSError):
                found.extend(p for p in Path(root).glob(pattern) if p.is_file())
    return sorted(set(found))


class UsbWatcher:
    """Calls `on_found(UsbEnrolment)` or `on_error(BadInput)` once per new file found."""

    def __init__(
        self,
        on_found: Callable[[UsbEnrolment], None],
        on_error: Callable[[BadInput], None],
        *,
        roots: Iterable[Path] = MOUNT_ROOTS,
        interval_s: float = 1.0,
    ) -> None:
        self.roots = [Path(r) for r in roots]
        self.on_found = on_found
        self.on_error = on_error
        self.interval_s = interval_s
        self._seen: dict[Path, float] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="usb-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            # File system work in a worker thread; the callbacks run here, on the loop.
            for outcome in await asyncio.to_thread(self.poll):
                if isinstance(outcome, BadInput):
                    self.on_error(outcome)
                else:
                    self.on_found(outcome)
            await asyncio.sleep(self.interval_s)

    def poll(self) -> list[UsbEnrolment | BadInput]:
        """Look once (blocking): what each new or changed file holds, or what is wrong."""
        outcomes: list[UsbEnrolment | BadInput] = []
        present = find_enrol_files(self.roots)
        for path in present:
            with contextlib.suppress(OSError):
                stamp = path.stat().st_mtime
                if self._seen.get(path) == stamp:
                    continue
                self._seen[path] = stamp
                try:
                    outcomes.append(read_enrol_file(path))
                except BadInput as exc:
                    outcomes.append(exc)
        for gone in set(self._seen) - set(present):
            del self._seen[gone]  # a stick plugged in again is read again
        return outcomes
