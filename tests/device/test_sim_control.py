"""The simulated device's control socket: a real Unix socket, requests from the sync client."""

from __future__ import annotations

import asyncio
import json
import socket
import stat

import pytest

from porchlight.device.sim_control import SimControl, sim_request
from porchlight.errors import BadInput, DeviceFault


@pytest.fixture
def sock_path(tmp_path):
    return tmp_path / "sim.sock"


def make_handlers(log: list):
    async def press():
        log.append("press")

    async def hold(seconds: float):
        log.append(("hold", seconds))
        return {"held": seconds}

    async def status():
        return {"state": "idle", "light": "steady"}

    async def broken():
        raise RuntimeError("the light is unplugged")

    return {"press": press, "hold": hold, "status": status, "broken": broken}


async def request(path, cmd, **args):
    return await asyncio.to_thread(sim_request, path, cmd, **args)


async def test_round_trip_with_the_sync_client(sock_path):
    log: list = []
    async with SimControl(sock_path, make_handlers(log)):
        assert stat.S_IMODE(sock_path.stat().st_mode) == 0o600
        assert await request(sock_path, "press") == {}
        assert await request(sock_path, "hold", seconds=2.5) == {"held": 2.5}
        assert await request(sock_path, "status") == {"state": "idle", "light": "steady"}
        help_ = await request(sock_path, "help")
        assert help_["commands"] == ["broken", "help", "hold", "press", "status"]
    assert log == ["press", ("hold", 2.5)]
    assert not sock_path.exists()  # removed on stop


async def test_errors_are_clear_and_the_server_keeps_going(sock_path):
    log: list = []
    async with SimControl(sock_path, make_handlers(log)):
        with pytest.raises(BadInput, match=r"unknown command 'jump'.*press"):
            await request(sock_path, "jump")
        with pytest.raises(BadInput, match="bad arguments for hold"):
            await request(sock_path, "hold", minutes=3)
        with pytest.raises(BadInput, match="broken failed: the light is unplugged"):
            await request(sock_path, "broken")
        assert await request(sock_path, "status") == {"state": "idle", "light": "steady"}
    assert log == []


async def test_malformed_lines_get_an_error_reply_on_the_same_connection(sock_path):
    async with SimControl(sock_path, make_handlers([])):
        reader, writer = await asyncio.open_unix_connection(str(sock_path))
        replies = []
        for line in (b"not json\n", b"[1, 2]\n", b'{"cmd": "status"}\n'):
            writer.write(line)
            replies.append(await asyncio.wait_for(reader.readline(), 5))
        writer.close()
        await writer.wait_closed()
    replies = [json.loads(r) for r in replies]
    assert replies[0] == {"ok": False, "error": ANY_WITH("not JSON")}
    assert replies[1] == {"ok": False, "error": ANY_WITH('"cmd"')}
    assert replies[2] == {"ok": True, "result": {"state": "idle", "light": "steady"}}


class ANY_WITH(str):
    """Equal to any string containing this one."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and str(self) in other

    __hash__ = str.__hash__


async def test_a_stale_socket_is_replaced_but_a_regular_file_is_not(sock_path, tmp_path):
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(sock_path))
    stale.close()  # the file stays behind, as after a crash
    async with SimControl(sock_path, make_handlers([])):
        assert await request(sock_path, "status") == {"state": "idle", "light": "steady"}

    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    with pytest.raises(BadInput, match="not a socket"):
        await SimControl(precious, {}).start()
    assert precious.read_text() == "keep me"


def test_no_kiosk_listening_is_a_device_fault(sock_path):
    with pytest.raises(DeviceFault, match="is a simulated kiosk running"):
        sim_request(sock_path, "status")


async def test_stopping_ends_connections_still_open(sock_path):
    control = SimControl(sock_path, make_handlers([]))
    await control.start()
    reader, writer = await asyncio.open_unix_connection(str(sock_path))
    writer.write(b'{"cmd": "status"}\n')
    assert json.loads(await asyncio.wait_for(reader.readline(), 5))["ok"]
    await asyncio.wait_for(control.stop(), 5)
    assert await asyncio.wait_for(reader.read(), 5) == b""  # the kiosk hung up
    writer.close()
