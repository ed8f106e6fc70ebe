"""Each attack on the release path is refused with a clear error, and nothing is installed:
the device stays on its release, with no new release folder and no switch."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from porchlight.provisioning.kiosk_status import KioskStatus, write_status
from porchlight.provisioning.release_install import installed_versions, link_version
from porchlight.provisioning.repository import RepositoryConfig, init_repository
from porchlight.provisioning.update_agent import UpdateAgent

from .conftest import Repo, days_ago, make_device, simulated_agent


def assert_untouched(agent: UpdateAgent, version: str = "1.0.0") -> None:
    layout = agent.layout
    assert link_version(layout, layout.current_link) == version
    assert installed_versions(layout) == [version]
    assert sorted(p.name for p in layout.releases_dir.iterdir()) == [version]
    assert agent.journal().phase == "idle"


@pytest.fixture
def device(tmp_path: Path, repo: Repo, release_server) -> UpdateAgent:
    layout = make_device(tmp_path / "device", repo, release_server.url)
    return simulated_agent(layout, release_server.url)


def test_an_honest_update_installs(device: UpdateAgent, repo: Repo) -> None:
    repo.publish("1.1.0")
    result = device.check("1.1.0")
    assert (result.outcome, result.version) == ("installed", "1.1.0")
    assert link_version(device.layout, device.layout.current_link) == "1.1.0"
    assert link_version(device.layout, device.layout.previous_link) == "1.0.0"


def test_tampered_target_is_refused(device: UpdateAgent, repo: Repo) -> None:
    repo.publish("1.1.0")
    target = repo.target_path("1.1.0")
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same length, one byte changed
    target.write_bytes(bytes(data))
    result = device.check("1.1.0")
    assert result.outcome == "rejected"
    assert "tampered" in result.reason and "nothing installed" in result.reason
    assert device.journal().last_result["reason"] == result.reason  # for the heartbeat
    assert_untouched(device)
    assert not list(device.layout.downloads_dir.glob("*"))  # the bad bytes are gone too


def test_rollback_to_older_metadata_is_refused(device: UpdateAgent, repo: Repo) -> None:
    old = repo.snapshot_files()
    repo.publish("1.1.0")
    assert device.check(None).outcome == "up_to_date"  # nothing asked: no metadata fetched
    # The device learns the newer metadata (but is busy elsewhere: nothing asked to install).
    now = time.time()
    in_call = KioskStatus("1.0.0", 1, now, now, True, True, True, "reached", "call")
    write_status(device.layout.kiosk_data_dir, in_call)
    assert device.check("1.1.0").outcome == "deferred"
    # A mirror now replays the older (validly signed) repository.
    repo.restore(old)
    result = device.check("1.1.0")
    assert result.outcome == "rejected"
    assert "rollback attack" in result.reason
    assert_untouched(device)


def test_release_below_the_signed_minimum_is_refused(
    tmp_path: Path, repo: Repo, release_server
) -> None:
    repo.publish("1.1.0")
    repo.publish("1.4.0", min_version="1.1.0")
    layout = make_device(tmp_path / "dev", repo, release_server.url, first="1.1.0")
    agent = simulated_agent(layout, release_server.url)
    # A compromised hub asks for a signed, but withdrawn, older release.
    repo_files = repo.open().releases()
    assert "1.0.0" not in repo_files
    result = agent.check("1.0.0")
    assert result.outcome == "refused"
    assert "older than the signed minimum 1.1.0" in result.reason
    assert_untouched(agent, "1.1.0")


def test_frozen_expired_timestamp_is_refused(device: UpdateAgent, repo: Repo) -> None:
    # The repository stopped re-signing its timestamp three days ago; a mirror keeps serving it.
    repo.publish("1.1.0", now=days_ago(3))
    result = device.check("1.1.0")
    assert result.outcome == "rejected"
    assert "expired" in result.reason and "frozen" in result.reason
    assert_untouched(device)


def test_mix_and_match_metadata_is_refused(device: UpdateAgent, repo: Repo) -> None:
    first = repo.publish("1.1.0")
    old_targets = (
        repo.config.metadata_dir / f"{first.targets.signed.version}.targets.json"
    ).read_bytes()
    second = repo.publish("1.4.0")
    # New timestamp and snapshot, but the targets file they name swapped for the older one.
    (repo.config.metadata_dir / f"{second.targets.signed.version}.targets.json").write_bytes(
        old_targets
    )
    result = device.check("1.4.0")
    assert result.outcome == "rejected"
    assert "mix-and-match" in result.reason
    assert_untouched(device)


def test_metadata_signed_with_the_wrong_key_is_refused(
    device: UpdateAgent, repo: Repo, tmp_path: Path
) -> None:
    # An attacker builds a look-alike repository with keys of their own, holding a release,
    # and puts it where the device looks.
    fake = RepositoryConfig(
        path=tmp_path / "fake", keys_dir=tmp_path / "fk", root_keys_dir=tmp_path / "fr"
    )
    init_repository(fake, now=days_ago(0))
    fake_repo = Repo(fake, b"", repo.files)
    fake_repo.publish("1.1.0")
    for name in ("timestamp.json",):
        (repo.config.metadata_dir / name).write_bytes((fake.metadata_dir / name).read_bytes())
    result = device.check("1.1.0")
    assert result.outcome == "rejected"
    assert "wrong key" in result.reason
    assert_untouched(device)


def test_release_larger_than_the_device_allows_is_refused(
    tmp_path: Path, repo: Repo, release_server
) -> None:
    repo.publish("1.1.0")
    layout = make_device(tmp_path / "dev", repo, release_server.url)
    size = repo.files["1.1.0"].stat().st_size
    agent = simulated_agent(layout, release_server.url, max_release_bytes=size - 1)
    result = agent.check("1.1.0")
    assert result.outcome == "rejected"
    assert "oversize" in result.reason
    assert agent.fetcher.bytes_received < size  # refused before downloading it
    assert_untouched(agent)


def test_server_sending_more_than_the_signed_length_is_refused(
    device: UpdateAgent, repo: Repo
) -> None:
    repo.publish("1.1.0")
    target = repo.target_path("1.1.0")
    size = target.stat().st_size
    target.write_bytes(target.read_bytes() + b"\0" * (4 * 1024 * 1024))  # endless data, say
    result = device.check("1.1.0")
    assert result.outcome == "rejected"
    assert "oversize" in result.reason
    assert device.fetcher.bytes_received < size + 256 * 1024  # stopped reading early
    assert_untouched(device)


def test_a_cut_download_resumes_where_it_stopped(device: UpdateAgent, repo: Repo) -> None:
    repo.publish("1.1.0")
    info_target = repo.target_path("1.1.0")
    data = info_target.read_bytes()
    device.layout.downloads_dir.mkdir(parents=True)
    part = device.layout.downloads_dir / f"{info_target.name}.part"
    part.write_bytes(data[: len(data) // 2])
    before = device.fetcher.bytes_received
    result = device.check("1.1.0")
    assert result.outcome == "installed"
    fetched_target = device.fetcher.bytes_received - before
    # Metadata is a few kB; the release itself came only from the middle onwards.
    assert len(data) > 1024 * 1024
    assert fetched_target < len(data) - len(data) // 2 + 64 * 1024
