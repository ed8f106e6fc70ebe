"""kiosk/rtc.py: the aiortc/aioice internals it relies on, and what it promises on top.

If an aiortc or aioice upgrade moves something, these fail and name what moved.
"""

from __future__ import annotations

import asyncio
import inspect
import re

import aioice.ice
import pytest

from porchlight.errors import BadInput
from porchlight.kiosk import rtc

HOST = re.compile(r"^a=candidate:\S+ \d+ udp \d+ (\S+) \d+ typ host", re.M)


def test_aioice_still_gathers_through_module_level_get_host_addresses() -> None:
    """rtc.offer_host_addresses() wraps aioice.ice.get_host_addresses; it must still be used."""
    fn = getattr(aioice.ice, "get_host_addresses", None)
    assert callable(fn), "aioice.ice.get_host_addresses is gone: update kiosk/rtc.py"
    assert list(inspect.signature(fn).parameters)[:2] == ["use_ipv4", "use_ipv6"], (
        "aioice.ice.get_host_addresses changed its signature: update kiosk/rtc.py"
    )
    gather = aioice.ice.Connection.gather_candidates
    assert "get_host_addresses" in gather.__code__.co_names, (
        "aioice Connection.gather_candidates no longer looks up get_host_addresses at call "
        "time: kiosk/rtc.py's host-address hook has no effect any more"
    )


async def offer_hosts(addresses) -> list[str]:
    pc = rtc.new_peer_connection([])
    try:
        pc.addTransceiver("audio", direction="recvonly")
        sdp = await rtc.complete_offer(pc, addresses)
        return HOST.findall(sdp)
    finally:
        await pc.close()


async def test_chosen_host_addresses_are_offered_and_only_those() -> None:
    assert await offer_hosts(["127.0.0.1"]) == ["127.0.0.1"]


async def test_default_gathering_is_untouched_and_does_not_offer_loopback() -> None:
    hosts = await offer_hosts([])
    assert "127.0.0.1" not in hosts


async def test_choice_applies_only_to_gathering_inside_its_own_context() -> None:
    loop_only, default = await asyncio.gather(offer_hosts(["127.0.0.1"]), offer_hosts(None))
    assert loop_only == ["127.0.0.1"]
    assert "127.0.0.1" not in default
    # And nothing lingers afterwards.
    assert "127.0.0.1" not in aioice.ice.get_host_addresses(use_ipv4=True, use_ipv6=False)


async def test_offer_prefers_vp8_and_opus() -> None:
    pc = rtc.new_peer_connection([])
    try:
        for kind in ("video", "audio"):
            rtc.prefer_codecs(pc.addTransceiver(kind, direction="recvonly"))
        sdp = await rtc.complete_offer(pc, ["127.0.0.1"])
    finally:
        await pc.close()
    video = re.search(r"^m=video \d+ \S+ (.*)$", sdp, re.M).group(1).split()
    audio = re.search(r"^m=audio \d+ \S+ (.*)$", sdp, re.M).group(1).split()
    rtpmap = dict(re.findall(r"^a=rtpmap:(\d+) (\S+?)/", sdp, re.M))
    assert [rtpmap[p] for p in video] == ["VP8", "rtx"]
    assert [rtpmap[p] for p in audio] == ["opus"]


def test_ice_servers_from_hub_are_explicit_and_checked() -> None:
    servers = rtc.ice_servers_from_hub(
        [{"urls": ["turn:turn.example:3478"], "username": "u", "credential": "c"}]
    )
    assert servers[0].urls == ["turn:turn.example:3478"] and servers[0].credential == "c"
    assert rtc.ice_servers_from_hub([]) == []
    with pytest.raises(BadInput):
        rtc.ice_servers_from_hub([{"username": "u"}])
