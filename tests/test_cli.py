"""The `porchlight` command and the README agree, and every subcommand explains itself."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import click
import pytest

from porchlight.cli import cli

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


def commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(commands(command, (*prefix, name)))
    return found


def lookup(path: tuple[str, ...]) -> click.Command:
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        command = command.get_command(click.Context(command), name)
    return command


ALL = commands(cli)


def test_there_are_commands_to_check():
    assert ("demo",) in ALL and ("hub",) in ALL and ("kiosk",) in ALL


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_every_command_has_help_text(path):
    command = lookup(path)
    assert command.help and len(command.help.strip()) > 20, f"porchlight {' '.join(path)}"


@pytest.mark.parametrize("path", ALL, ids=" ".join)
def test_every_command_answers_help_through_the_installed_script(path):
    result = subprocess.run(
        [sys.executable, "-m", "porchlight.cli", *path, "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout


@pytest.mark.parametrize("path", [p for p in ALL if len(p) == 1], ids=" ".join)
def test_every_top_level_command_is_in_the_readme(path):
    assert re.search(rf"`porchlight {path[0]}\b", README), f"README lacks porchlight {path[0]}"


def test_readme_gives_the_two_commands_and_they_exist():
    assert "./demo" in README and "./test" in README
    for script in ("demo", "test", ".ci/run"):
        assert (REPO / script).stat().st_mode & 0o111, f"{script} is not executable"
    assert "exec ./test" in (REPO / ".ci/run").read_text()


def test_a_bad_config_file_is_a_clear_error_not_a_traceback(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[hub]\nport = 'not a number'\n")
    result = subprocess.run(
        [sys.executable, "-m", "porchlight.cli", "hub", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "hub.port must be a number" in result.stderr
    assert "Traceback" not in result.stderr
