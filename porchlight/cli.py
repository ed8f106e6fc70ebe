"""The `porchlight` command: one entry point, a subcommand per job.

Heavy imports (Kivy, aiortc, FastAPI) happen inside the subcommands so `porchlight --help`
is instant and the hub side does not need the kiosk's dependencies, or the reverse.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import ClassVar

import click

from porchlight import __version__
from porchlight.errors import PorchlightError

CONFIG_OPTION = click.option(
    "--config",
    "config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="PORCHLIGHT_CONFIG",
    help="TOML file with [hub], [kiosk] and [device] tables (env: PORCHLIGHT_CONFIG).",
)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # aioice/aiortc log every STUN check at INFO; that drowns what matters.
    for noisy in ("aioice", "aiortc", "kivy", "websockets", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _headless() -> bool:
    return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _prepare_kivy_env(offscreen: bool, data_dir: Path) -> None:
    """Kivy reads its environment at import: set it before anything imports kivy."""
    if offscreen:
        os.environ.setdefault("SDL_VIDEODRIVER", "offscreen")
    os.environ.setdefault("KIVY_NO_ARGS", "1")
    os.environ.setdefault("KIVY_NO_CONSOLELOG", "1")
    os.environ.setdefault("KIVY_NO_FILELOG", "1")
    os.environ.setdefault("KIVY_NO_CONFIG", "1")
    kivy_home = data_dir / "kivy"
    kivy_home.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("KIVY_HOME", str(kivy_home))


class LazyGroup(click.Group):
    """Command groups that live with their component, imported only when used.

    A hub-only install has no kiosk dependencies (and the reverse), and `porchlight --help`
    stays instant. The pattern is click's own ("lazily loading subcommands").
    """

    lazy: ClassVar[dict[str, str]] = {
        "outbox": "porchlight.kiosk.outbox_cli:outbox",
        "release": "porchlight.provisioning.update_cli:release",
        "update": "porchlight.provisioning.update_cli:update",
    }

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            import importlib

            module, _, attr = self.lazy[cmd_name].partition(":")
            try:
                return getattr(importlib.import_module(module), attr)
            except ImportError as exc:
                raise click.ClickException(
                    f"'porchlight {cmd_name}' needs a part of Porchlight that is not installed "
                    f"here ({exc.name}); install the matching extra, e.g. porchlight[kiosk]"
                ) from None
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="porchlight")
@click.option("-v", "--verbose", is_flag=True, help="Log debugging detail (never patient data).")
@click.pass_context
def cli(ctx: click.Context, verbose: bool) -> None:
    """Porchlight: a one-button video-consultation kiosk and the clinic hub it talks to."""
    _setup_logging(verbose)
    ctx.ensure_object(dict)


@cli.command()
@click.option("--host", default=None, help="Address to listen on (default 127.0.0.1).")
@click.option("--port", type=int, default=None, help="TCP port (default 8740).")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the hub keeps its database (env: PORCHLIGHT_DATA_DIR).",
)
@CONFIG_OPTION
def hub(
    host: str | None, port: int | None, data_dir: Path | None, config_file: Path | None
) -> None:
    """Run the clinic hub: waiting room, call set-up, records, clinic web page."""
    from porchlight.hub.config import load_config
    from porchlight.hub.server import serve

    serve(load_config(file=config_file, host=host, port=port, data_dir=data_dir))


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the kiosk keeps its credential and outbox (env: PORCHLIGHT_DATA_DIR).",
)
@click.option("--hub-url", default=None, help="Override the hub address from the credential.")
@click.option(
    "--offscreen/--window",
    default=None,
    help="Render without a display (default: offscreen when no display is set).",
)
@CONFIG_OPTION
def kiosk(
    data_dir: Path | None, hub_url: str | None, offscreen: bool | None, config_file: Path | None
) -> None:
    """Run the patient's kiosk app (simulated hardware when not on a Raspberry Pi)."""
    from porchlight import config

    resolved = data_dir or config.default_data_dir()
    _prepare_kivy_env(_headless() if offscreen is None else offscreen, resolved)
    from porchlight.kiosk.config import load_kiosk_config
    from porchlight.kiosk.runner import main as run_kiosk_main

    run_kiosk_main(load_kiosk_config(config_file, data_dir=data_dir, hub_url=hub_url))


@cli.command()
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder for the demo's hub database and kiosk files "
    "(default: <PORCHLIGHT_DATA_DIR>/demo).",
)
@click.option("--port", type=int, default=8740, show_default=True, help="Hub port on 127.0.0.1.")
@click.option(
    "--offscreen/--window",
    default=None,
    help="Kiosk window offscreen (default: offscreen when no display is set).",
)
@click.option("--no-kiosk", is_flag=True, help="Run only the hub with its demo data.")
def demo(data_dir: Path | None, port: int, offscreen: bool | None, no_kiosk: bool) -> None:
    """Run the whole system on this machine: hub, demo accounts, and a simulated kiosk."""
    from porchlight import config
    from porchlight.demo import run_demo

    root = data_dir or (config.default_data_dir() / "demo")
    if not no_kiosk:
        _prepare_kivy_env(_headless() if offscreen is None else offscreen, root)
    run_demo(root, port=port, with_kiosk=not no_kiosk)


@cli.command()
@click.argument("action", type=click.Choice(["press", "release", "hold", "status"]))
@click.option(
    "--seconds",
    type=float,
    default=2.5,
    show_default=True,
    help="How long `hold` keeps the button down.",
)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The kiosk's data folder (default: the demo's kiosk).",
)
def sim(action: str, seconds: float, data_dir: Path | None) -> None:
    """Act on a running simulated kiosk: press or hold its button, or read its status."""
    import json

    from porchlight import config
    from porchlight.device.sim_control import sim_request

    folder = data_dir or (config.default_data_dir() / "demo" / "kiosk")
    sock = folder / "sim.sock"
    if not sock.exists():
        raise click.ClickException(
            f"no simulated kiosk is running with data folder {folder} "
            "(start one with ./demo, or pass --data-dir)"
        )
    if action == "press":
        reply = sim_request(sock, "press")
        reply = sim_request(sock, "release")
    elif action == "hold":
        reply = sim_request(sock, "hold", seconds=seconds)
    else:
        reply = sim_request(sock, action)
    click.echo(json.dumps(reply, indent=2, sort_keys=True))


def main(argv: list[str] | None = None) -> None:
    try:
        cli.main(args=argv, prog_name="porchlight", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except PorchlightError as exc:
        click.echo(f"porchlight: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
