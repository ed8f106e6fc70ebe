"""The CI chaos run: ≥ 200 SIGKILLs of a kiosk process (outbox writer + sync worker) with
hub restarts and link cuts in between; every record acknowledged to the writer ends up on
the hub exactly once, with the content the kiosk made. See bench/outbox_chaos.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "outbox_chaos.py"


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_sigkill_chaos_loses_and_duplicates_nothing():
    done = subprocess.run(
        [sys.executable, str(BENCH), "--kills", "200", "--json"],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    # The run really was chaotic...
    assert result["kills"] >= 200
    assert result["hub_restarts"] >= 5 and result["hub_sigkills"] >= 1
    assert result["link_cuts"] >= 20
    assert result["acknowledged"] >= 1000
    # ...and nothing acknowledged was lost or stored twice.
    assert result["lost"] == 0, result
    assert result["duplicated"] == 0, result
    assert result["content_mismatches"] == 0, result
    assert result["held"] == 0, result
    # Everything the kiosk made (including records committed just before a kill, which the
    # writer never heard about) reached the hub once the link was good.
    assert result["on_hub"] == result["made"], result
