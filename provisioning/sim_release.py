"""A stand-in app for update simulations: a tiny wheel whose `porchlight` command behaves as
told (healthy, crashes at start, or starts but fails its health check).

Built by hand (a wheel is a zip with a dist-info folder), so making one takes milliseconds,
needs no network and no build backend. Its `porchlight kiosk --data-dir D` writes the same
status file the real kiosk writes (`porchlight.provisioning.kiosk_status`), without importing
Porchlight: the release's venv holds only this wheel.
"""

from __future__ import annotations

import base64
import hashlib
import os
import zipfile
from pathlib import Path

from porchlight.errors import BadInput

BEHAVIOURS = ("healthy", "crash", "unhealthy")
DIST = "porchlight_simapp"

_MAIN = """\
import json, os, signal, sys, time

VERSION = {version!r}
BEHAVIOUR = {behaviour!r}


def _write_status(folder, now):
    ok = BEHAVIOUR == "healthy"
    status = {{
        "version": VERSION, "pid": os.getpid(), "started_at": now, "updated_at": now,
        "screen_drawn": True, "button_ok": ok, "light_ok": True, "hub": "offline",
        "activity": "idle", "last_touch_at": None, "outbox_depth": 0,
        "last_call_quality": None,
    }}
    tmp = os.path.join(folder, ".status.json.tmp")
    with open(tmp, "w") as handle:
        json.dump(status, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, os.path.join(folder, "status.json"))


def main():
    args = sys.argv[1:]
    if args[:1] == ["version"]:
        print("porchlight", VERSION)
        return 0
    if args[:1] != ["kiosk"]:
        print("usage: porchlight kiosk --data-dir DIR | porchlight version", file=sys.stderr)
        return 2
    if BEHAVIOUR == "crash":
        print("simulated crash at start", file=sys.stderr)
        return 3
    folder = args[args.index("--data-dir") + 1]
    os.makedirs(folder, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _write_status(folder, time.time())
    # A simulated kiosk never outlives its test by long.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(0.5)
    return 0
"""


def _record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def build_sim_wheel(version: str, behaviour: str, out_dir: Path, *, padding: int = 0) -> Path:
    """Write `porchlight_simapp-<version>-py3-none-any.whl` into `out_dir`; `padding` adds
    that many random (incompressible) bytes, to stand in for a release of realistic size."""
    if behaviour not in BEHAVIOURS:
        raise BadInput(f"behaviour must be one of {', '.join(BEHAVIOURS)}")
    dist_info = f"{DIST}-{version}.dist-info"
    files = {
        f"{DIST}/__init__.py": _MAIN.format(version=version, behaviour=behaviour).encode(),
        f"{dist_info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {DIST}\nVersion: {version}\n"
            "Summary: Porchlight update simulation app\n"
        ).encode(),
        f"{dist_info}/WHEEL": (
            b"Wheel-Version: 1.0\nGenerator: porchlight\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
        f"{dist_info}/entry_points.txt": (
            f"[console_scripts]\nporchlight = {DIST}:main\n"
        ).encode(),
    }
    if padding:
        files[f"{DIST}/padding.bin"] = os.urandom(padding)
    record = [_record_line(name, data) for name, data in files.items()]
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = ("\n".join(record) + "\n").encode()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{DIST}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    return path


def sim_requirement(version: str) -> str:
    return f"{DIST}=={version}"
