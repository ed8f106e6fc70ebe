"""`porchlight release init/build/publish/refresh` and `porchlight update status`, through click."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.testing import CliRunner

from porchlight.provisioning.release import target_name
from porchlight.provisioning.repository import Repository, RepositoryConfig
from porchlight.provisioning.sim_release import build_sim_wheel, sim_requirement
from porchlight.provisioning.update_cli import release, update

from .conftest import Repo, make_device


def cli() -> click.Group:
    group = click.Group("porchlight")
    group.add_command(release)
    group.add_command(update)
    return group


def test_release_init_build_publish_refresh(tmp_path: Path) -> None:
    runner = CliRunner()
    repo, keys, root_keys = tmp_path / "repo", tmp_path / "keys", tmp_path / "root-keys"
    made = runner.invoke(
        cli(),
        [
            "release",
            "init",
            "--repo",
            str(repo),
            "--keys",
            str(keys),
            "--root-keys",
            str(root_keys),
            "--root-threshold",
            "2",
        ],
    )
    assert made.exit_code == 0, made.output
    assert len(list((root_keys / "root").glob("*.pem"))) == 2
    assert not list(keys.glob("root/*"))  # the root keys are kept apart from the online ones

    wheels = tmp_path / "wheels"
    build_sim_wheel("2.0.0", "healthy", wheels)
    built = runner.invoke(
        cli(),
        [
            "release",
            "build",
            "--version",
            "2.0.0",
            "--out",
            str(tmp_path / "out"),
            "--wheel-dir",
            str(wheels),
            "--requirement",
            sim_requirement("2.0.0"),
        ],
    )
    assert built.exit_code == 0, built.output
    release_file = Path(built.output.strip())
    assert release_file.name == target_name("2.0.0")

    published = runner.invoke(
        cli(),
        [
            "release",
            "publish",
            str(release_file),
            "--version",
            "2.0.0",
            "--repo",
            str(repo),
            "--keys",
            str(keys),
            "--min-version",
            "2.0.0",
        ],
    )
    assert published.exit_code == 0, published.output
    repository = Repository.open(RepositoryConfig(path=repo, keys_dir=keys))
    assert set(repository.releases()) == {"2.0.0"}
    assert repository.min_version == "2.0.0"
    before = repository.timestamp.signed.version
    refresh = ["release", "refresh", "--repo", str(repo), "--keys", str(keys)]
    refreshed = runner.invoke(cli(), refresh)
    assert refreshed.exit_code == 0, refreshed.output
    after = Repository.open(RepositoryConfig(path=repo, keys_dir=keys)).timestamp.signed.version
    assert after == before + 1

    again = runner.invoke(
        cli(),
        [
            "release",
            "publish",
            str(release_file),
            "--version",
            "2.0.0",
            "--repo",
            str(repo),
            "--keys",
            str(keys),
        ],
    )
    assert again.exit_code != 0
    assert "already published" in str(again.exception)


def test_update_status_reports_the_device(tmp_path: Path, repo: Repo) -> None:
    layout = make_device(tmp_path / "device", repo, "http://127.0.0.1:9")
    shown = CliRunner().invoke(cli(), ["update", "status", "--root", str(layout.root)])
    assert shown.exit_code == 0, shown.output
    status = json.loads(shown.output)
    assert status["current"] == "1.0.0" and status["phase"] == "idle"
    missing = CliRunner().invoke(cli(), ["update", "status", "--root", str(tmp_path / "nothing")])
    assert missing.exit_code != 0
