"""systemd notifications over a real AF_UNIX datagram socket standing in for systemd."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid

import pytest

from porchlight.device.watchdog import Watchdog, notify, watchdog_interval


@pytest.fixture
def systemd(tmp_path):
    """A bound datagram socket, as systemd's NOTIFY_SOCKET is; yields (socket, env)."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(5)
    yield sock, {"NOTIFY_SOCKET": str(path)}
    sock.close()


def test_ready_and_status_arrive_as_one_datagram(systemd):
    sock, env = systemd
    assert notify(ready=True, status="Waiting for\nthe hub", env=env)
    assert sock.recv(4096) == b"READY=1\nSTATUS=Waiting for the hub"


def test_abstract_socket_addresses_are_supported():
    name = f"porchlight-test-{uuid.uuid4().hex}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert notify(watchdog=True, stopping=True, env={"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(4096) == b"STOPPING=1\nWATCHDOG=1"


def test_without_systemd_nothing_is_sent_and_nothing_fails(tmp_path):
    assert notify(ready=True, env={}) is False
    # A socket that has gone away is logged, not raised.
    assert notify(ready=True, env={"NOTIFY_SOCKET": str(tmp_path / "gone")}) is False


def test_watchdog_interval_is_half_of_watchdog_usec():
    env = {"NOTIFY_SOCKET": "/run/x", "WATCHDOG_USEC": "30000000"}
    assert watchdog_interval(env) == 15.0
    assert watchdog_interval({**env, "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval({**env, "WATCHDOG_PID": str(os.getpid() + 1)}) is None
    assert watchdog_interval({"NOTIFY_SOCKET": "/run/x"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "30000000"}) is None
    assert watchdog_interval({**env, "WATCHDOG_USEC": "soon"}) is None
    assert not Watchdog(env={}).enabled


async def test_watchdog_pings_from_the_loop_while_healthy(systemd):
    sock, env = systemd
    sock.setblocking(False)
    answers = iter([True, False, True, False, True, True])
    checked = asyncio.Event()
    calls = 0

    def healthy() -> bool:
        nonlocal calls
        calls += 1
        if calls == 6:
            checked.set()
        return next(answers, True)

    dog = Watchdog(env={**env, "WATCHDOG_USEC": "20000"}, healthy=healthy)
    assert dog.interval == pytest.approx(0.01)
    dog.start()
    await asyncio.wait_for(checked.wait(), 5)
    await dog.stop()
    received = []
    while True:
        try:
            received.append(sock.recv(4096))
        except BlockingIOError:
            break
    # One ping per healthy answer, none for the unhealthy ones.
    assert received == [b"WATCHDOG=1"] * dog.pings
    assert dog.pings == calls - 2
