"""`porchlight release ...` (support staff) and `porchlight update ...` (the device's timer).

porchlight release init    --repo DIR --keys DIR --root-keys DIR   new keys + empty repository
porchlight release build   --version V --out DIR [--wheel-dir DIR] [--project DIR]
porchlight release publish FILE --version V --repo DIR --keys DIR [--min-version V]
porchlight release refresh --repo DIR --keys DIR                   re-sign the timestamp
porchlight update run      [--root /]                              the agent's service (loop)
porchlight update check    [--root /]                              one check, now
porchlight update status   [--root /]
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from porchlight.errors import BadInput

DIR = click.Path(file_okay=False, path_type=Path)
FILE = click.Path(dir_okay=False, exists=True, path_type=Path)


def _now() -> datetime:
    return datetime.now(UTC)


def _repo_config(repo: Path, keys: Path, root_keys: Path | None, **extra: Any) -> Any:
    from porchlight import config
    from porchlight.provisioning.repository import RepositoryConfig

    return config.load(
        RepositoryConfig, "release", path=repo, keys_dir=keys, root_keys_dir=root_keys, **extra
    )


def _echo_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


@click.group()
def release() -> None:
    """Build, sign and publish releases (support staff)."""


@release.command("init")
@click.option("--repo", type=DIR, required=True, help="Where the published tree goes.")
@click.option("--keys", type=DIR, required=True, help="Online keys: targets, snapshot, timestamp.")
@click.option("--root-keys", type=DIR, required=True, help="Offline root keys (keep it offline).")
@click.option("--root-threshold", type=int, default=1, show_default=True)
@click.option("--targets-threshold", type=int, default=1, show_default=True)
def release_init(
    repo: Path, keys: Path, root_keys: Path, root_threshold: int, targets_threshold: int
) -> None:
    """Make new ed25519 keys and an empty, signed repository. Prints where root.json is:
    every device needs it as /var/lib/porchlight/update/bootstrap-root.json."""
    from porchlight.provisioning.repository import init_repository

    cfg = _repo_config(
        repo,
        keys,
        root_keys,
        root_threshold=root_threshold,
        targets_threshold=targets_threshold,
    )
    init_repository(cfg, now=_now())
    click.echo(f"repository ready; devices trust {cfg.metadata_dir / 'root.json'}")


@release.command("build")
@click.option("--version", "version", required=True, help="Release version, e.g. 1.4.0.")
@click.option("--out", type=DIR, required=True, help="Folder for porchlight-<version>.tar.")
@click.option(
    "--wheel-dir",
    type=DIR,
    help="Wheels of every dependency for the device's platform (pip download --platform ...).",
)
@click.option("--project", type=DIR, help="Build the app's own wheel from this source tree.")
@click.option(
    "--requirement",
    default="porchlight[kiosk]",
    show_default=True,
    help="What the device installs from the release's wheels.",
)
def release_build(
    version: str, out: Path, wheel_dir: Path | None, project: Path | None, requirement: str
) -> None:
    """Pack the app's wheels and a manifest into one release file."""
    from porchlight.provisioning.release import build_project_wheel, build_release

    wheels = sorted(wheel_dir.glob("*.whl")) if wheel_dir else []
    if project is not None:
        wheels.append(build_project_wheel(project, out / "wheels"))
    path = build_release(version, wheels, out, requirement=requirement, now=_now())
    click.echo(str(path))


@release.command("publish")
@click.argument("release_file", type=FILE)
@click.option("--version", "version", required=True)
@click.option("--repo", type=DIR, required=True, help="The published tree (the hub serves it).")
@click.option("--keys", type=DIR, required=True, help="Online keys.")
@click.option("--min-version", help="Devices refuse anything older than this from now on.")
def release_publish(
    release_file: Path, version: str, repo: Path, keys: Path, min_version: str | None
) -> None:
    """Sign a built release into the repository (targets, snapshot, timestamp)."""
    from porchlight.provisioning.repository import Repository

    repository = Repository.open(_repo_config(repo, keys, None))
    target = repository.add_release(release_file, version)
    if min_version:
        repository.set_min_version(min_version)
    repository.publish(now=_now())
    click.echo(f"published {target.path} ({target.length} bytes)")


@release.command("refresh")
@click.option("--repo", type=DIR, required=True)
@click.option("--keys", type=DIR, required=True)
def release_refresh(repo: Path, keys: Path) -> None:
    """Re-sign the timestamp (daily, from cron: devices refuse a stale one)."""
    from porchlight.provisioning.repository import Repository

    Repository.open(_repo_config(repo, keys, None)).refresh_timestamp(now=_now())
    click.echo("timestamp re-signed")


@click.group()
def update() -> None:
    """The device's update agent (porchlight-update.service runs `update run`)."""


ROOT_OPTION = click.option(
    "--root", type=DIR, default=Path("/"), show_default=True, help="Device root (tests: a folder)."
)


KIOSK_OPTION = click.option(
    "--kiosk",
    type=click.Choice(["systemd", "process"]),
    default="systemd",
    show_default=True,
    help="How the kiosk is restarted: systemd (a device), or a process of the agent's own "
    "(a laptop, tests).",
)
HUB_URL_OPTION = click.option("--hub-url", help="Override the hub address from the credential.")
WINDOW_OPTION = click.option(
    "--window", type=float, default=900.0, show_default=True, help="Health-check window, s."
)


def _device(root: Path, hub_url: str | None, window: float, kiosk: str) -> Any:
    """The agent and the loop around it, wired for the device under `root`."""
    from porchlight.kiosk.credential import load_credential
    from porchlight.provisioning.heartbeat import (
        HubClient,
        UpdateLoop,
        collect_inventory,
        diagnostics_bundle,
    )
    from porchlight.provisioning.kiosk_control import ProcessKiosk, SystemdKiosk
    from porchlight.provisioning.layout import DeviceLayout
    from porchlight.provisioning.release_install import VenvInstaller
    from porchlight.provisioning.update_agent import AgentConfig, UpdateAgent
    from porchlight.provisioning.update_policy import UpdatePolicy

    layout = DeviceLayout(root)
    credential = load_credential(layout.kiosk_data_dir)
    url = hub_url or credential.hub_url
    if url.startswith("ws"):
        url = "http" + url[2:]
    python = getattr(sys, "_base_executable", sys.executable)
    agent = UpdateAgent(
        layout,
        AgentConfig.for_hub(url, python=python, policy=UpdatePolicy(health_window_s=window)),
        installer=VenvInstaller(python),
        kiosk=SystemdKiosk() if kiosk == "systemd" else ProcessKiosk(layout),
    )
    return lambda **kwargs: UpdateLoop(
        agent,
        HubClient(url, credential.token),
        inventory=lambda: collect_inventory(layout, agent),
        bundle=lambda: diagnostics_bundle(layout, agent),
        **kwargs,
    )


@update.command("run")
@ROOT_OPTION
@HUB_URL_OPTION
@WINDOW_OPTION
@KIOSK_OPTION
@click.option(
    "--heartbeat-interval",
    type=float,
    default=60.0,
    show_default=True,
    help="Seconds between heartbeats: how soon a 'check now' from support is seen.",
)
def update_run(
    root: Path, hub_url: str | None, window: float, kiosk: str, heartbeat_interval: float
) -> None:
    """The update agent's service: heartbeat every minute; check every 30 minutes (with
    jitter) or at once when support asks; exits after installing a release so systemd starts
    it again from the new one."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if heartbeat_interval <= 0:
        raise BadInput("--heartbeat-interval must be more than 0 seconds")
    loop = _device(root, hub_url, window, kiosk)(interval_s=heartbeat_interval)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    result = loop.run(stop)
    _echo_json(result.__dict__ if result else {"outcome": "stopped"})


@update.command("check")
@ROOT_OPTION
@HUB_URL_OPTION
@WINDOW_OPTION
@KIOSK_OPTION
def update_check(root: Path, hub_url: str | None, window: float, kiosk: str) -> None:
    """Once, now: heartbeat to the hub, install the release it names (verify, install beside,
    switch, health-check, commit or roll back), and report back."""
    result = _device(root, hub_url, window, kiosk)().beat(force=True)
    _echo_json(result.__dict__ if result else {"outcome": "nothing to do"})


@update.command("status")
@ROOT_OPTION
def update_status(root: Path) -> None:
    """What is installed, what runs, and how the last update went."""
    from porchlight.provisioning.layout import DeviceLayout
    from porchlight.provisioning.release_install import installed_versions, link_version
    from porchlight.provisioning.update_agent import Journal

    layout = DeviceLayout(root)
    if not layout.app_dir.exists():
        raise BadInput(f"no Porchlight releases under {root}; is this a kiosk?")
    journal = Journal.load(layout.update_state_path)
    _echo_json(
        {
            "current": link_version(layout, layout.current_link),
            "previous": link_version(layout, layout.previous_link),
            "installed": installed_versions(layout),
            "phase": journal.phase,
            "target": journal.target,
            "failed": journal.failed,
            "last_result": journal.last_result,
        }
    )
