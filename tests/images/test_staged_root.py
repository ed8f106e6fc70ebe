"""The root file system as assemble-root leaves it: users, permissions, enabled units,
watchdog, boot configuration and the release layout."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from porchlight.provisioning.layout import KIOSK_GROUPS, KIOSK_USER, DeviceLayout

from .staging import (
    STOCK_CMDLINE,
    StagedRoot,
    assemble,
    make_base_root,
    passwd_entries,
    read_unit,
    run,
    unit_value,
)


def _ids(root: Path) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    return passwd_entries(root / "etc/passwd"), passwd_entries(root / "etc/group")


def test_kiosk_user_has_no_login_no_password_and_no_root(staged: StagedRoot) -> None:
    users, groups = _ids(staged.root)
    name, _, uid, gid, _, home, shell = users[KIOSK_USER]
    assert 0 < int(uid) < 1000, "a system user"
    assert shell == "/usr/sbin/nologin"
    assert home == str(DeviceLayout().kiosk_data_dir)
    assert groups[KIOSK_USER][2] == gid
    shadow = passwd_entries(staged.root / "etc/shadow")
    assert shadow[KIOSK_USER][1].startswith("!"), "password locked"
    for admin in ("root", "sudo", "adm", "disk"):
        members = groups[admin][3].split(",") if admin in groups else []
        assert name not in members


def test_kiosk_user_is_in_the_hardware_groups(staged: StagedRoot) -> None:
    _, groups = _ids(staged.root)
    for group in KIOSK_GROUPS:
        assert KIOSK_USER in groups[group][3].split(","), f"not in {group}"


def _owner_names(root: Path, path: Path) -> tuple[str, str, int]:
    users, groups = _ids(root)
    by_uid = {int(v[2]): k for k, v in users.items()}
    by_gid = {int(v[2]): k for k, v in groups.items()}
    info = path.lstat()
    return by_uid[info.st_uid], by_gid[info.st_gid], stat.S_IMODE(info.st_mode)


def test_fixed_paths_have_the_layouts_owner_and_mode(staged: StagedRoot) -> None:
    for rule in staged.layout.permission_rules():
        if rule.kind == "file":
            continue  # made later by the kiosk; see the credential test below
        assert rule.path.is_dir(), f"{rule.path} missing"
        assert _owner_names(staged.root, rule.path) == (rule.owner, rule.group, rule.mode), (
            rule.path
        )


def test_boot_repairs_the_credentials_owner_and_mode(
    tmp_path: Path, wheels: Path, tuf_root: Path
) -> None:
    """A credential left readable by others (a restore, a hand copy) is made 0600 again, and
    the kiosk's folder 0700, by the tmpfiles rules systemd applies at every boot."""
    root = tmp_path / "root"
    root.mkdir()
    make_base_root(root)
    assert assemble(root, "1.0.0", wheels, tuf_root).returncode == 0
    layout = DeviceLayout(root)
    users, _ = _ids(root)
    uid, gid = int(users[KIOSK_USER][2]), int(users[KIOSK_USER][3])
    layout.credential_path.write_text('{"token": "x"}')
    os.chown(layout.credential_path, uid, gid)
    layout.credential_path.chmod(0o644)
    layout.kiosk_data_dir.chmod(0o755)
    run(["systemd-tmpfiles", f"--root={root}", "--create"])
    assert _owner_names(root, layout.credential_path) == (KIOSK_USER, KIOSK_USER, 0o600)
    assert _owner_names(root, layout.kiosk_data_dir) == (KIOSK_USER, KIOSK_USER, 0o700)


@pytest.mark.parametrize(
    ("target", "unit"),
    [
        ("multi-user.target", "porchlight-kiosk.service"),
        ("multi-user.target", "porchlight-firstboot.service"),
        ("multi-user.target", "porchlight-update.service"),
        ("local-fs.target", "opt-porchlight.mount"),
        ("local-fs.target", "var-lib-porchlight.mount"),
        ("local-fs.target", "var-log-journal.mount"),
    ],
)
def test_units_are_enabled(staged: StagedRoot, target: str, unit: str) -> None:
    link = staged.root / "etc/systemd/system" / f"{target}.wants" / unit
    assert link.is_symlink()
    assert os.readlink(link) == f"/usr/lib/systemd/system/{unit}"
    result = run(["systemctl", f"--root={staged.root}", "is-enabled", unit])
    assert result.stdout.strip() == "enabled"


def test_console_login_is_masked(staged: StagedRoot) -> None:
    assert os.readlink(staged.root / "etc/systemd/system/getty@tty1.service") == "/dev/null"


def test_hardware_watchdog_is_on_and_within_the_pis_limit(staged: StagedRoot) -> None:
    conf = read_unit(staged.root / "etc/systemd/system.conf.d/50-porchlight-watchdog.conf")
    runtime = unit_value(conf, "Manager", "RuntimeWatchdogSec")
    assert runtime.endswith("s") and 0 < int(runtime[:-1]) <= 15
    config_txt = (staged.root / "boot/firmware/config.txt").read_text().splitlines()
    assert "dtparam=watchdog=on" in config_txt
    kiosk = read_unit(staged.root / "usr/lib/systemd/system/porchlight-kiosk.service")
    assert int(unit_value(kiosk, "Service", "WatchdogSec")) > int(runtime[:-1])


def test_kernel_command_line_has_the_overlay_and_not_the_stock_resizer(staged: StagedRoot) -> None:
    text = (staged.root / "boot/firmware/cmdline.txt").read_text()
    assert text.count("\n") == 1 and text.endswith("\n"), "cmdline.txt must be one line"
    args = text.split()
    # recurse=0: only / gets the RAM overlay; the app and data partitions stay writable.
    assert "overlayroot=tmpfs:recurse=0" in args
    assert "init=/usr/lib/raspberrypi-sys-mods/firstboot" not in args
    for stock in STOCK_CMDLINE.split():
        if not stock.startswith("init="):
            assert stock in args


def test_assembling_twice_changes_no_boot_file(staged: StagedRoot, tmp_path: Path) -> None:
    """The pi-gen stage can be re-run (CONTINUE=1): boot edits must not pile up."""
    boot = staged.root / "boot/firmware"
    before = {p.name: p.read_text() for p in boot.iterdir()}
    copy = tmp_path / "again"
    copy.mkdir()
    make_base_root(copy)
    for name, text in before.items():
        (copy / "boot/firmware" / name).write_text(text)
    assert assemble(copy, "9.9.9", staged.wheels, staged.tuf_root).returncode == 0
    assert {p.name: p.read_text() for p in (copy / "boot/firmware").iterdir()} == before


def test_release_is_installed_in_the_layout(staged: StagedRoot) -> None:
    layout = staged.layout
    target = os.readlink(layout.current_link)
    assert target == DeviceLayout.link_target(staged.release)
    assert DeviceLayout.version_of_target(target) == staged.release
    assert not layout.temporary_link(layout.current_link).exists()
    manifest = json.loads(layout.release_manifest(staged.release).read_text())
    assert manifest["version"] == staged.release
    entry = layout.current_entry_point
    assert entry.resolve() == layout.release_entry_point(staged.release).resolve()
    assert os.access(entry, os.X_OK)
    # The release's own porchlight, not this machine's (-I: no current folder on sys.path).
    python = layout.release_venv(staged.release) / "bin/python"
    out = run([str(python), "-I", "-c", "import porchlight; print(porchlight.__file__)"])
    assert Path(out.stdout.strip()).is_relative_to(layout.release_venv(staged.release))
    version = run([str(entry), "--version"]).stdout
    assert staged.release in version


def test_config_file_parses_for_every_component(staged: StagedRoot) -> None:
    import tomllib

    config = tomllib.loads(staged.layout.config_file.read_text())
    assert set(config) == {"kiosk", "device"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--release", "1/../../etc"], "may use only letters"),
        (["--release", ".x"], "must start with a letter or digit"),
        ([], "no --release VERSION given"),
        (["--release", "1.0.0"], "no --tuf-root given"),
        (["--release", "1.0.0", "--tuf-root", "/nonexistent/root.json"], "is not a file"),
        (["--release", "1.0.0", "--tuf-root", "{targets}"], "is not TUF root metadata"),
        (["--release", "1.0.0", "--tuf-root", "{garbage}"], "is not TUF root metadata"),
    ],
)
def test_assemble_root_refuses_bad_input(
    tmp_path: Path, tuf_root: Path, args: list[str], message: str
) -> None:
    from .staging import IMAGES

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    garbage = scratch / "root.json"
    garbage.write_text("not json")
    # Signed metadata of another role from the same repository: right format, wrong file.
    files = {"{targets}": str(tuf_root.with_name("1.targets.json")), "{garbage}": str(garbage)}
    args = [files.get(arg, arg) for arg in args]
    target = tmp_path / "root"
    target.mkdir()
    result = subprocess.run(
        [str(IMAGES / "assemble-root"), *args, str(target)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert message in result.stderr
    assert list(target.iterdir()) == [], "nothing written"


def test_assemble_root_will_not_overwrite_an_installed_release(staged: StagedRoot) -> None:
    before = os.readlink(staged.layout.current_link)
    result = assemble(staged.root, staged.release, staged.wheels, staged.tuf_root)
    assert result.returncode != 0
    assert "already installed" in result.stderr
    assert os.readlink(staged.layout.current_link) == before


def test_the_update_agent_trusts_the_repositorys_root(staged: StagedRoot, tmp_path: Path) -> None:
    """The image installs `porchlight release init`'s metadata/root.json where the agent
    reads its bootstrap root, byte for byte, owned by root and not writable by anyone else;
    python-tuf accepts it as a root signed by its own keys."""
    from tuf.ngclient import Updater

    installed = staged.layout.bootstrap_root_path
    assert installed.read_bytes() == staged.tuf_root.read_bytes()
    assert _owner_names(staged.root, installed) == ("root", "root", 0o644)
    rule = {r.path: r for r in staged.layout.permission_rules()}[installed]
    assert (rule.owner, rule.group, rule.mode) == ("root", "root", 0o644)
    assert _owner_names(staged.root, installed.parent) == ("root", "root", 0o700)
    Updater(
        metadata_dir=str(tmp_path / "tuf"),
        metadata_base_url="http://127.0.0.1:9/",
        bootstrap=installed.read_bytes(),
    )
    tmpfiles = (staged.root / "usr/lib/tmpfiles.d/porchlight.conf").read_text().split("\n")
    line = next(x.split() for x in tmpfiles if str(DeviceLayout().bootstrap_root_path) in x)
    assert line[0] == "z" and line[2:5] == ["0644", "root", "root"], "repaired at every boot"
