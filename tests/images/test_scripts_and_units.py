"""Static checks of the image recipe: shellcheck on every script, systemd-analyze verify on
every unit (in the staging root, so ExecStart binaries and dependencies really resolve), and
the settings the kiosk's survival depends on."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from porchlight.provisioning.layout import DeviceLayout

from .staging import IMAGES, UNIT_DIR, StagedRoot, read_unit, run, unit_value, unit_values


def _is_shell_script(path: Path) -> bool:
    if not path.is_file():
        return False
    if path.suffix == ".sh":
        return True
    with path.open("rb") as handle:
        first = handle.readline()
    return first.startswith(b"#!") and (b"sh" in first.split(b"/")[-1])


SCRIPTS = sorted(p for p in IMAGES.rglob("*") if _is_shell_script(p) and "out" not in p.parts)
UNITS = sorted(p for p in UNIT_DIR.iterdir() if p.suffix in (".service", ".timer", ".mount"))


def _id(path: Path) -> str:
    return str(path.relative_to(IMAGES))


def test_the_recipe_has_its_scripts_and_units() -> None:
    names = {_id(p) for p in SCRIPTS}
    for expected in (
        "assemble-root",
        "append-partitions",
        "build",
        "files/usr/lib/porchlight/firstboot",
        "stage-porchlight/01-porchlight/00-run.sh",
    ):
        assert expected in names
    assert {p.name for p in UNITS} >= {
        "porchlight-kiosk.service",
        "porchlight-update.service",
        "porchlight-firstboot.service",
        "opt-porchlight.mount",
        "var-lib-porchlight.mount",
        "var-log-journal.mount",
    }


@pytest.mark.parametrize("script", SCRIPTS, ids=_id)
def test_shellcheck(script: Path) -> None:
    run(["shellcheck", "--external-sources", "--severity=style", str(script)])


@pytest.mark.parametrize("script", SCRIPTS, ids=_id)
def test_scripts_stop_on_errors_and_unset_variables(script: Path) -> None:
    text = script.read_text()
    assert re.search(r"^set -eu(o pipefail)?$", text, re.MULTILINE), f"{script} lacks set -eu"
    if not script.name.endswith("-chroot.sh"):
        # pi-gen runs *-run-chroot.sh by piping it into the chroot's shell; the rest run as is.
        assert script.stat().st_mode & 0o111, f"{script} is not executable"


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_analyze_verify(staged: StagedRoot, unit: Path) -> None:
    result = run(
        ["systemd-analyze", "verify", "--man=no", f"--root={staged.root}", unit.name],
    )
    # verify only warns (exit 0) about unknown keys and unparsable values: any output is a fault.
    assert result.stdout.strip() == ""
    assert result.stderr.strip() == ""


def test_verify_catches_a_broken_unit(staged: StagedRoot, tmp_path: Path) -> None:
    """The check above can fail: a typo and a missing ExecStart binary are both reported."""
    broken = staged.root / "etc/systemd/system/porchlight-broken.service"
    text = (UNIT_DIR / "porchlight-kiosk.service").read_text()
    text = text.replace("WatchdogSec=30", "WatchdogSec=thirty")
    text = text.replace("/opt/porchlight/current/", "/opt/porchlight/missing/")
    broken.write_text(text)
    try:
        result = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", f"--root={staged.root}", broken.name],
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        broken.unlink()
    assert result.returncode != 0
    assert "thirty" in result.stderr
    assert "/opt/porchlight/missing/venv/bin/porchlight is not executable" in result.stderr


def test_network_manager_drop_in_verifies(staged: StagedRoot) -> None:
    result = run(
        ["systemd-analyze", "verify", "--man=no", f"--root={staged.root}", "NetworkManager.service"]
    )
    assert result.stdout.strip() == "" and result.stderr.strip() == ""
    drop_in = staged.root / "etc/systemd/system/NetworkManager.service.d/50-porchlight.conf"
    assert "After=var-lib-porchlight.mount" in drop_in.read_text()


@pytest.mark.parametrize(
    ("unit", "ceiling"),
    [("porchlight-kiosk.service", 4.5), ("porchlight-update.service", 3.0)],
)
def test_services_are_sandboxed(staged: StagedRoot, unit: str, ceiling: float) -> None:
    result = run(
        ["systemd-analyze", "security", "--offline=yes", f"--root={staged.root}", unit],
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout[-500:]
    assert float(match.group(1)) <= ceiling


def test_kiosk_unit_is_watched_and_always_restarted() -> None:
    unit = read_unit(UNIT_DIR / "porchlight-kiosk.service")
    layout = DeviceLayout()
    assert unit_value(unit, "Service", "Type") == "notify"
    assert unit_value(unit, "Service", "NotifyAccess") == "main"
    assert unit_value(unit, "Service", "WatchdogSec") == "30"
    assert unit_value(unit, "Service", "Restart") == "always"
    assert unit_value(unit, "Service", "RestartSec") == "2"
    assert unit_value(unit, "Unit", "StartLimitIntervalSec") == "0"
    assert unit_value(unit, "Service", "User") == "porchlight"
    exec_start = unit_value(unit, "Service", "ExecStart").split()
    assert exec_start == [str(layout.current_entry_point), "kiosk"]
    env = dict(e.split("=", 1) for e in unit_values(unit, "Service", "Environment"))
    assert env["PORCHLIGHT_DATA_DIR"] == str(layout.kiosk_data_dir)
    assert env["PORCHLIGHT_CONFIG"] == str(layout.config_file)
    assert env["SDL_VIDEODRIVER"] == "kmsdrm"
    assert unit_value(unit, "Service", "ReadWritePaths") == str(layout.kiosk_data_dir)
    for hardening in ("NoNewPrivileges", "PrivateTmp", "ProtectHome"):
        assert unit_value(unit, "Service", hardening) == "yes"
    assert unit_value(unit, "Service", "ProtectSystem") == "strict"
    # These would hide the GPIO chips, DRM, cameras and sound from the kiosk.
    for absent in ("PrivateDevices", "DevicePolicy", "DeviceAllow", "ProtectClock"):
        assert not unit_values(unit, "Service", absent)
    requires = unit_value(unit, "Unit", "RequiresMountsFor").split()
    assert requires == [str(layout.app_dir), str(layout.data_dir)]


def test_update_agent_runs_as_a_service_that_always_comes_back() -> None:
    """The agent's loop heartbeats every minute (so "check now" lands within a minute) and
    checks every 30 min with jitter (tests/updates); systemd keeps it running for ever."""
    assert not (UNIT_DIR / "porchlight-update.timer").exists()
    service = read_unit(UNIT_DIR / "porchlight-update.service")
    assert unit_value(service, "Service", "ExecStart").split() == [
        str(DeviceLayout().current_entry_point),
        "update",
        "run",
    ]
    assert unit_value(service, "Service", "Type") == "exec"
    assert unit_value(service, "Service", "Restart") == "always"
    assert unit_value(service, "Unit", "StartLimitIntervalSec") == "0"
    assert unit_value(service, "Install", "WantedBy") == "multi-user.target"


def test_update_agent_may_restart_the_kiosk() -> None:
    """What `systemctl restart porchlight-kiosk.service` needs from the agent's sandbox: root
    (systemd's private socket admits uid 0 without polkit), AF_UNIX, /run not hidden. The
    restart itself needs systemd as PID 1, which the CI machines lack (see docs/updates.md)."""
    from porchlight.provisioning.kiosk_control import KIOSK_UNIT

    assert (UNIT_DIR / KIOSK_UNIT).exists()
    service = read_unit(UNIT_DIR / "porchlight-update.service")
    assert not unit_values(service, "Service", "User")
    assert "AF_UNIX" in unit_value(service, "Service", "RestrictAddressFamilies").split()
    for hiding in ("InaccessiblePaths", "TemporaryFileSystem", "PrivateUsers"):
        assert not unit_values(service, "Service", hiding)
    # The kiosk user has no say over the agent (polkit: Wi-Fi only).
    rules = (IMAGES / "files/etc/polkit-1/rules.d/50-porchlight.rules").read_text()
    assert "systemd1" not in rules


@pytest.mark.parametrize(
    ("unit", "label", "where"),
    [
        ("opt-porchlight.mount", "PORCHAPP", DeviceLayout().app_dir),
        ("var-lib-porchlight.mount", "PORCHDATA", DeviceLayout().data_dir),
    ],
)
def test_partitions_mount_where_the_layout_says(unit: str, label: str, where: Path) -> None:
    mount = read_unit(UNIT_DIR / unit)
    assert unit_value(mount, "Mount", "What") == f"/dev/disk/by-label/{label}"
    assert unit_value(mount, "Mount", "Where") == str(where)
    # Checked at boot before mounting, as fstab's pass number would do.
    assert f"systemd-fsck@dev-disk-by\\x2dlabel-{label}.service" in unit_value(
        mount, "Unit", "Requires"
    )


def test_journal_is_capped_and_kept_on_the_data_partition() -> None:
    conf = read_unit(IMAGES / "files/etc/systemd/journald.conf.d/50-porchlight.conf")
    assert unit_value(conf, "Journal", "SystemMaxUse") == "64M"
    assert unit_value(conf, "Journal", "Storage") == "persistent"
    bind = read_unit(UNIT_DIR / "var-log-journal.mount")
    assert unit_value(bind, "Mount", "What") == str(DeviceLayout().journal_dir)
    assert unit_value(bind, "Mount", "Where") == "/var/log/journal"
