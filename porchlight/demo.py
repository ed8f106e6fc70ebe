"""`porchlight demo`: the whole system on one machine, with embedded defaults.

A hub on 127.0.0.1 (SQLite in the demo folder), demo accounts, one demo patient whose simulated
kiosk is enrolled by writing its credential exactly where enrolment would, and the kiosk app.
"""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from pathlib import Path

log = logging.getLogger(__name__)

# The demo's peers are on this machine; loopback keeps its media off every real network.
DEMO_ICE_HOST_ADDRESSES = ("127.0.0.1",)


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def banner(clinic_url: str, username: str, password: str, patient: str, kiosk_dir: Path) -> str:
    return "\n".join(
        [
            "",
            "Porchlight demo is running.",
            f"  Clinician page: {clinic_url}",
            f"  Login: {username} / {password}",
            f"  Patient: {patient}, on a simulated kiosk.",
            "  Press the kiosk's button: click the big button or press the space bar in its",
            f"  window, or run: porchlight sim press --data-dir {kiosk_dir}",
            "  Rehearse on the practice patient: Practice call on the clinic page.",
            "  Stop with Ctrl+C.",
            "",
        ]
    )


def run_demo(root: Path, *, port: int = 8740, with_kiosk: bool = True) -> None:
    from porchlight.hub.config import load_config
    from porchlight.hub.practice import ensure_all
    from porchlight.hub.seed import seed_demo
    from porchlight.hub.server import HubServer
    from porchlight.kiosk.credential import DeviceCredential, save_credential

    root = Path(root)
    kiosk_dir = root / "kiosk"
    hub_config = load_config(data_dir=root / "hub", host="127.0.0.1", port=port)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    server = HubServer(hub_config, port=port, log_level="warning").start()
    try:
        assert server.store is not None
        seed = seed_demo(server.store)
        if hub_config.practice_patient:
            ensure_all(server.store, datetime.now(UTC))  # the demo team's practice patient
        save_credential(
            kiosk_dir,
            DeviceCredential(
                hub_url=server.url,
                device_id=seed.device_id,
                patient_id=seed.patient_id,
                token=seed.device_token,
            ),
        )
        print(
            banner(
                f"{server.url}/clinic", seed.username, seed.password, seed.patient_name, kiosk_dir
            ),
            flush=True,
        )
        if with_kiosk:
            from porchlight.kiosk.config import load_kiosk_config
            from porchlight.kiosk.runner import main as run_kiosk

            run_kiosk(
                load_kiosk_config(
                    data_dir=kiosk_dir, ice_host_addresses=list(DEMO_ICE_HOST_ADDRESSES)
                )
            )
        else:
            threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        print("Stopping the Porchlight demo…", flush=True)
        server.stop()
