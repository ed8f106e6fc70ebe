"""A real hub whose clock a test can move on, and a kiosk whose link to it goes through a TCP
relay the test can cut (bench/netlab.py's TcpProxy): the kiosk's socket drops and comes back
while the call's media, peer to peer, carries on."""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from kiosk.conftest import Hub, free_port, listed, wait_until

from porchlight.clinician_peer import ClinicianPeer
from porchlight.device.config import DeviceConfig
from porchlight.hub.config import HubConfig
from porchlight.hub.seed import seed_demo
from porchlight.hub.server import HubServer
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.core import KioskCore
from porchlight.kiosk.credential import save_credential
from porchlight.kiosk.hub_link import LinkTimings

ROOT = Path(__file__).resolve().parents[2]
# Reconnect soon after the relay is back (the default backs off up to 5 s).
QUICK_LINK = LinkTimings(backoff_first_s=0.05, backoff_cap_s=0.3)


def tcp_proxy_class() -> Any:
    """bench/netlab.py's TcpProxy (bench/ is a folder of scripts, not a package)."""
    name = "bench_netlab"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / "netlab.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name].TcpProxy


@dataclass
class MovableClock:
    """The hub's clock: now, plus however far the test has moved it on."""

    ahead: timedelta = field(default_factory=timedelta)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


@contextlib.contextmanager
def hub_with_clock(tmp_path: Path, clock: MovableClock, **settings: Any) -> Iterator[Hub]:
    config = HubConfig(host="127.0.0.1", port=free_port(), data_dir=tmp_path / "hub", **settings)
    server = HubServer(config, port=config.port, clock=clock).start()
    assert server.store is not None
    try:
        yield Hub(config, server, seed_demo(server.store))
    finally:
        server.stop()


async def kiosk_through(hub: Hub, proxy: Any, data_dir: Path, camera: dict[str, int]) -> KioskCore:
    """A started KioskCore (simulated device) whose hub link and HTTP go through `proxy`."""
    config = KioskConfig(
        data_dir=data_dir,
        hub_url=proxy.url,
        ending_s=0.0,
        ice_host_addresses=["127.0.0.1"],
        device=DeviceConfig(simulate=True, speaker="sim", **camera),
    )
    save_credential(config.data_dir, hub.credential())
    core = KioskCore(config, link_timings=QUICK_LINK)
    await core.start()
    return core


async def kiosk_away(core: KioskCore, proxy: Any, clinician: ClinicianPeer, patient_id: str):
    """Cut the kiosk's link; return once the hub has noticed (the page shows it offline)."""
    proxy.cut()
    await listed(clinician, patient_id, state="in_call", online=False)
    await wait_until(lambda: not core.status()["hub_connected"], 10, "the kiosk to notice")


async def kiosk_back(core: KioskCore, proxy: Any, clinician: ClinicianPeer, patient_id: str):
    proxy.restore()
    await listed(clinician, patient_id, state="in_call", online=True)
    await wait_until(lambda: core.status()["hub_connected"], 10, "the kiosk's link back")


async def handled(clinician: ClinicianPeer) -> None:
    """Return once the hub has acted on everything the page sent so far: it handles a page's
    messages in order, and answers a request for a call that does not exist."""
    clinician.last_error = None
    await clinician.request({"type": "prompt", "prompt": None, "call_id": "no-such-call"})
    await clinician.wait_for(
        lambda: (getattr(clinician, "last_error", None) or {}).get("code") == "unknown_call", 10
    )


async def in_a_call(core: KioskCore, clinician: ClinicianPeer, patient_id: str) -> Any:
    """Press, be admitted, and wait for the call's picture at the kiosk."""
    await wait_until(lambda: core.status()["state"] == "idle", 15, "the kiosk at home")
    core.device.button.press()
    core.device.button.release()
    await listed(clinician, patient_id)
    call = await clinician.admit(patient_id)
    await wait_until(lambda: core.view.show_video, 30, "the call's picture")
    return call
