"""Runs one real update agent check in its own process, as the device's timer would:
a venv per release, pip from the release's wheels, the simulated app as the kiosk.

    python agent_driver.py ROOT URL WANTED [--kill-at STEP] [--kill-after-s S] [--window S]

--kill-at STEP: SIGKILL this process the moment the agent reaches STEP (a power cut there).
--kill-after-s S: SIGKILL this process S seconds after the install starts (mid-pip).
Prints the check's outcome as JSON when it gets that far.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path

from porchlight.provisioning.kiosk_control import ProcessKiosk
from porchlight.provisioning.layout import DeviceLayout
from porchlight.provisioning.release_install import VenvInstaller
from porchlight.provisioning.update_agent import AgentConfig, UpdateAgent
from porchlight.provisioning.update_policy import UpdatePolicy


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("root", type=Path)
    parser.add_argument("url")
    parser.add_argument("wanted")
    parser.add_argument("--kill-at")
    parser.add_argument("--kill-after-s", type=float)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()

    def power_cut() -> None:
        os.kill(os.getpid(), signal.SIGKILL)

    def on_step(step: str) -> None:
        if step == args.kill_at:
            power_cut()
        if step == "installing" and args.kill_after_s is not None:
            threading.Timer(args.kill_after_s, power_cut).start()

    layout = DeviceLayout(args.root)
    agent = UpdateAgent(
        layout,
        AgentConfig.for_hub(
            args.url, health_poll_s=0.05, policy=UpdatePolicy(health_window_s=args.window)
        ),
        installer=VenvInstaller(sys.executable),
        kiosk=ProcessKiosk(layout),
        on_step=on_step,
    )
    result = agent.check(args.wanted)
    print(json.dumps(result.__dict__))


if __name__ == "__main__":
    main()
