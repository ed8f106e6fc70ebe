"""The on-device folder layout (porchlight.provisioning.layout): pure path arithmetic."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from porchlight.errors import BadInput
from porchlight.provisioning.layout import DeviceLayout, check_version


def test_device_paths_on_a_real_kiosk() -> None:
    layout = DeviceLayout()
    assert layout.release_dir("1.4.0") == Path("/opt/porchlight/releases/1.4.0")
    assert layout.release_venv("1.4.0") == Path("/opt/porchlight/releases/1.4.0/venv")
    assert layout.release_manifest("1.4.0") == Path("/opt/porchlight/releases/1.4.0/manifest.json")
    assert layout.release_entry_point("1.4.0") == Path(
        "/opt/porchlight/releases/1.4.0/venv/bin/porchlight"
    )
    assert layout.current_link == Path("/opt/porchlight/current")
    assert layout.previous_link == Path("/opt/porchlight/previous")
    assert layout.current_entry_point == Path("/opt/porchlight/current/venv/bin/porchlight")
    assert layout.data_dir == Path("/var/lib/porchlight")
    assert layout.kiosk_data_dir == Path("/var/lib/porchlight/kiosk")
    assert layout.credential_path == Path("/var/lib/porchlight/kiosk/credential.json")
    assert layout.tuf_metadata_dir == Path("/var/lib/porchlight/update/tuf")
    assert layout.downloads_dir == Path("/var/lib/porchlight/update/downloads")
    assert layout.journal_dir == Path("/var/lib/porchlight/journal")
    assert layout.config_file == Path("/etc/porchlight/porchlight.toml")


def test_a_staging_root_moves_every_path_under_it(tmp_path: Path) -> None:
    layout = DeviceLayout(tmp_path)
    device = DeviceLayout()
    for name in ("current_link", "kiosk_data_dir", "credential_path", "config_file"):
        staged = getattr(layout, name)
        assert staged.is_relative_to(tmp_path)
        assert layout.on_device(staged) == PurePosixPath(getattr(device, name))
    for rule in layout.permission_rules():
        assert rule.path.is_relative_to(tmp_path)


def test_root_may_be_given_as_a_string(tmp_path: Path) -> None:
    assert DeviceLayout(str(tmp_path)).app_dir == tmp_path / "opt" / "porchlight"


def test_links_are_relative_and_read_back() -> None:
    target = DeviceLayout.link_target("2.0.1+pi5")
    assert target == "releases/2.0.1+pi5"
    assert not target.startswith("/")
    assert DeviceLayout.version_of_target(target) == "2.0.1+pi5"


@pytest.mark.parametrize(
    "target", ["/opt/porchlight/releases/1.0", "releases", "other/1.0", "releases/1.0/venv"]
)
def test_foreign_link_targets_are_refused(target: str) -> None:
    with pytest.raises(BadInput, match="releases/<version>"):
        DeviceLayout.version_of_target(target)


def test_temporary_link_sits_beside_the_link_it_replaces() -> None:
    layout = DeviceLayout()
    temp = layout.temporary_link(layout.current_link)
    # Same folder: the rename that switches releases is atomic only within one file system.
    assert temp.parent == layout.current_link.parent
    assert temp != layout.current_link
    assert temp.name.startswith(".")


@pytest.mark.parametrize(
    "version", ["", ".", "..", "../etc", "1.0/../../x", "a/b", ".hidden", "1 0", "-1", "1..2"]
)
def test_versions_that_would_escape_releases_are_refused(version: str) -> None:
    with pytest.raises(BadInput, match="not usable as a folder name"):
        DeviceLayout().release_dir(version)


@given(st.text(min_size=1, max_size=40))
def test_any_accepted_version_stays_one_level_under_releases(version: str) -> None:
    layout = DeviceLayout()
    try:
        release = layout.release_dir(version)
    except BadInput:
        return
    assert release.parent == layout.releases_dir
    assert release.name == version
    assert check_version(version) == version


def test_kiosk_files_are_private_and_update_state_is_root_only() -> None:
    rules = {rule.path: rule for rule in DeviceLayout().permission_rules()}
    kiosk = rules[Path("/var/lib/porchlight/kiosk")]
    assert (kiosk.owner, kiosk.mode) == ("porchlight", 0o700)
    credential = rules[Path("/var/lib/porchlight/kiosk/credential.json")]
    assert (credential.owner, credential.kind, credential.mode) == ("porchlight", "file", 0o600)
    # The kiosk user must not own the folder that holds the agent's trust anchors.
    for path in (Path("/var/lib/porchlight"), Path("/var/lib/porchlight/update/tuf")):
        assert rules[path].owner == "root"
    assert rules[Path("/var/lib/porchlight/update/tuf")].mode == 0o700
