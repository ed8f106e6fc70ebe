"""A fleet of simulated devices, each a real update agent with its own folder tree, trusted
metadata and hub credential, talking to a real hub over HTTP: for rollout tests and the
rollout benchmark.

What is simulated is only what a laptop lacks: the kiosk (a status file, healthy or not as
told per version — say, "this release breaks the older displays"), the venv (files unpacked,
no pip) and time during the health window (each device's own clock, advanced by its sleeps).
Verification, downloads, journal, links, heartbeats and rollout decisions are the real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import requests

from porchlight.errors import HubRefused, TransportFailed
from porchlight.provisioning.heartbeat import (
    HubClient,
    check_with_hub,
    collect_inventory,
    diagnostics_bundle,
)
from porchlight.provisioning.kiosk_control import SimulatedKiosk
from porchlight.provisioning.layout import DeviceLayout
from porchlight.provisioning.release_install import SimulatedInstaller, provision
from porchlight.provisioning.tuf_client import HttpFetcher
from porchlight.provisioning.update_agent import AgentConfig, CheckResult, UpdateAgent
from porchlight.provisioning.update_policy import UpdatePolicy


@dataclass
class SimClock:
    """A device's own clock: its sleeps move it on at once."""

    now: float = 1_750_000_000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class SimDevice:
    device_id: str
    layout: DeviceLayout
    agent: UpdateAgent
    hub: HubClient
    clock: SimClock
    results: list[CheckResult] = field(default_factory=list)

    @property
    def version(self) -> str | None:
        return self.agent.current_version()

    @property
    def bytes_received(self) -> int:
        return self.agent.fetcher.bytes_received

    def run_check(self) -> CheckResult | None:
        """One check now against the hub (`porchlight update check`, a beat of the agent's
        loop with the check forced): fresh connections, and a hub it cannot reach just ends
        the run (the next one retries)."""
        session = requests.Session()
        self.agent.fetcher.session = self.hub.session = session
        try:
            result = self._check()
        except (TransportFailed, HubRefused) as exc:
            result = CheckResult("unreachable", None, str(exc))
        finally:
            session.close()
        if result is not None:
            self.results.append(result)
        return result

    def _check(self) -> CheckResult | None:
        return check_with_hub(
            self.agent,
            self.hub,
            inventory=lambda: collect_inventory(self.layout, self.agent),
            bundle=lambda: diagnostics_bundle(
                self.layout, self.agent, logs=lambda: "simulated device log\n"
            ),
        )


def build_device(
    root: Path,
    *,
    device_id: str,
    token: str,
    hub_url: str,
    bootstrap_root: bytes,
    first_release: Path,
    first_version: str,
    healthy: Callable[[str], bool] = lambda _v: True,
    policy: UpdatePolicy | None = None,
) -> SimDevice:
    """A device laid out under `root`, running `first_version`, trusting `bootstrap_root`."""
    layout = DeviceLayout(root)
    layout.update_dir.mkdir(parents=True, exist_ok=True)
    layout.bootstrap_root_path.write_bytes(bootstrap_root)
    provision(layout, SimulatedInstaller(), first_release, first_version)
    clock = SimClock()
    kiosk = SimulatedKiosk(layout, clock, healthy)
    kiosk.restart()
    session = requests.Session()
    agent = UpdateAgent(
        layout,
        AgentConfig.for_hub(hub_url, health_poll_s=5.0, policy=policy or UpdatePolicy()),
        installer=SimulatedInstaller(),
        kiosk=kiosk,
        clock=clock,
        sleep=clock.sleep,
        fetcher=HttpFetcher(session),
    )
    return SimDevice(device_id, layout, agent, HubClient(hub_url, token, session), clock)


def run_round(devices: Iterable[SimDevice], workers: int = 8) -> list[CheckResult | None]:
    """Every device runs one check, `workers` at a time (devices in a fleet overlap)."""
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda d: d.run_check(), devices))
