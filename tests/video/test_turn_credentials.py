"""TURN credentials in coturn's shared-secret scheme: the maths (against OpenSSL), a real
coturn that accepts a fresh one and refuses an expired or wrongly signed one, the hub's
settings, and what the hub hands kiosks and clinic pages (minted per request, opaque names)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import re
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests
import websockets
from aioice import stun
from aioice import turn as aioice_turn

from porchlight.errors import BadInput, ConfigError
from porchlight.hub import turn
from porchlight.hub.config import TURN_TTL_S, HubConfig, load_config
from porchlight.hub.seed import seed_demo
from porchlight.hub.server import HubServer
from porchlight.kiosk import rtc
from porchlight.protocol import DEVICE_WS_PATH

from .turn_support import Coturn, coturn  # noqa: F401 (the fixture)

SECRET = "f3b1c0ffee" * 4


def openssl_hmac_sha1_base64(secret: str, text: str) -> str:
    """The same HMAC computed by another implementation (the OpenSSL command line)."""
    out = subprocess.run(
        ["openssl", "dgst", "-sha1", "-hmac", secret, "-binary"],
        input=text.encode(),
        capture_output=True,
        check=True,
    ).stdout
    return base64.b64encode(out).decode()


def test_credential_is_expiry_colon_label_signed_with_hmac_sha1() -> None:
    minted = turn.rest_credential(SECRET, now=1_700_000_000.7, ttl_s=3600, label="kiosk-1a2b")
    assert minted.username == "1700003600:kiosk-1a2b"
    assert minted.expires_at == 1_700_003_600
    assert minted.credential == openssl_hmac_sha1_base64(SECRET, minted.username)
    other = turn.rest_credential(SECRET + "x", now=1_700_000_000, ttl_s=3600, label="kiosk-1a2b")
    assert other.credential != minted.credential
    with pytest.raises(ValueError):
        turn.rest_credential(SECRET, now=0, ttl_s=60, label="has:colon")
    with pytest.raises(ValueError):
        turn.rest_credential("", now=0, ttl_s=60, label="x")


def test_labels_are_random_and_name_no_one() -> None:
    labels = {turn.new_label("kiosk") for _ in range(100)}
    assert len(labels) == 100
    assert all(label.startswith("kiosk-") and ":" not in label for label in labels)


# ------------------------------------------------------------------ a real coturn


async def allocate(server: Coturn, username: str, password: str) -> tuple[str, int]:
    """Ask coturn for a relay allocation (aioice's TURN client); return the relayed address."""
    transport, _ = await asyncio.wait_for(
        aioice_turn.create_turn_endpoint(
            asyncio.DatagramProtocol,
            server_addr=("127.0.0.1", server.port),
            username=username,
            password=password,
        ),
        10,
    )
    try:
        return transport.get_extra_info("sockname")
    finally:
        transport.close()


async def refused_code(server: Coturn, username: str, password: str) -> int:
    with pytest.raises(stun.TransactionFailed) as failed:
        await allocate(server, username, password)
    code, _reason = failed.value.response.attributes["ERROR-CODE"]
    return code


async def test_coturn_relays_for_a_fresh_credential_and_refuses_expired_or_forged(
    coturn: Coturn,  # noqa: F811 (the fixture imported above)
) -> None:
    now = time.time()
    fresh = turn.rest_credential(coturn.secret, now=now, ttl_s=600, label="kiosk-fresh")
    host, port = await allocate(coturn, fresh.username, fresh.credential)
    assert host == "127.0.0.1" and port > 0

    # Expired a minute ago (minted 11 minutes ago for 10): coturn says 401 Unauthorized.
    old = turn.rest_credential(coturn.secret, now=now - 660, ttl_s=600, label="kiosk-old")
    assert await refused_code(coturn, old.username, old.credential) == 401
    # Signed with another secret: refused the same way.
    forged = turn.rest_credential("0" * 64, now=now, ttl_s=600, label="kiosk-forged")
    assert await refused_code(coturn, forged.username, forged.credential) == 401
    # The same username with a tampered expiry no longer matches its signature.
    later = fresh.username.replace(str(fresh.expires_at), str(fresh.expires_at + 86400))
    assert await refused_code(coturn, later, fresh.credential) == 401

    log = coturn.log()
    assert f"username=<{fresh.username}>" in log  # what coturn writes: hence opaque labels
    assert "Cannot find credentials of user <" + old.username in log
    assert coturn.secret not in log


# ------------------------------------------------------------------ the hub's settings


def test_config_errors_say_what_to_do(tmp_path) -> None:
    turn_url = "turn:turn.clinic.example:3478?transport=udp"
    cases = {
        "not a stun:, stuns:, turn: or turns: URL": {"ice_servers": ["http://x"]},
        "set hub.turn_secret": {"ice_servers": [turn_url]},
        "not both": {
            "ice_servers": [turn_url],
            "turn_secret": SECRET,
            "turn_username": "u",
            "turn_credential": "c",
        },
        "openssl rand -hex 32": {"ice_servers": [turn_url], "turn_secret": "short"},
        "lists no turn: or turns: URL": {"ice_servers": ["stun:s.example"], "turn_secret": SECRET},
        "between 60 and 86400": {"ice_servers": [turn_url], "turn_secret": SECRET, "turn_ttl_s": 5},
        "'all' or 'relay'": {"ice_transport_policy": "turn-only"},
        "no call could connect": {"ice_servers": ["stun:s"], "ice_transport_policy": "relay"},
    }  # fmt: skip
    for words, settings in cases.items():
        with pytest.raises(ConfigError, match=words) as raised:
            HubConfig(data_dir=tmp_path, **settings)
        assert SECRET not in str(raised.value)


def test_secret_from_the_environment_is_never_in_the_config_repr(tmp_path) -> None:
    env = {
        "PORCHLIGHT_HUB_DATA_DIR": str(tmp_path),
        "PORCHLIGHT_HUB_ICE_SERVERS": "stun:stun.example:3478,turn:127.0.0.1:3478?transport=udp",
        "PORCHLIGHT_HUB_TURN_SECRET": SECRET,
        "PORCHLIGHT_HUB_ICE_TRANSPORT_POLICY": "relay",
    }
    config = load_config(env=env)
    assert config.turn_secret == SECRET and config.turn_ttl_s == TURN_TTL_S
    assert SECRET not in repr(config)
    servers = config.ice_server_dicts(now=1_000_000, label="clinic-abc")
    assert servers[0] == {"urls": ["stun:stun.example:3478"]}
    assert servers[1]["username"] == f"{1_000_000 + int(TURN_TTL_S)}:clinic-abc"
    assert servers[1]["credential"] == openssl_hmac_sha1_base64(SECRET, servers[1]["username"])
    assert config.rtc_configuration(now=1_000_000, label="x")["ice_transport_policy"] == "relay"
    with pytest.raises(ValueError, match="time"):
        config.ice_server_dicts()  # minting needs the time: never a silent default


def test_static_credentials_still_work_for_other_turn_servers(tmp_path) -> None:
    config = HubConfig(
        data_dir=tmp_path,
        ice_servers=["turns:turn.example:443?transport=tcp"],
        turn_username="porchlight",
        turn_credential="s3cret",
    )
    assert config.ice_server_dicts(now=0) == [
        {"urls": ["turns:turn.example:443?transport=tcp"], "username": "porchlight",
         "credential": "s3cret"}
    ]  # fmt: skip
    assert "s3cret" not in repr(config)


async def test_hub_mints_for_each_request_and_each_kiosk_message(tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    moment = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
    config = HubConfig(
        host="127.0.0.1",
        data_dir=tmp_path / "hub",
        ice_servers=["turn:127.0.0.1:3478?transport=udp"],
        turn_secret=SECRET,
        turn_ttl_s=1800,
        ice_transport_policy="relay",
    )
    server = HubServer(config, port=0, clock=lambda: moment, log_level="debug").start()
    try:
        assert server.store is not None
        seed = seed_demo(server.store)
        device = {"Authorization": f"Bearer {seed.device_token}"}

        def get(headers=None, cookies=None):
            reply = requests.get(
                server.url + "/api/ice-servers", headers=headers, cookies=cookies, timeout=10
            )
            reply.raise_for_status()
            return reply.json()

        first, second = await asyncio.to_thread(get, device), await asyncio.to_thread(get, device)
        assert first["ice_transport_policy"] == "relay"
        users = [body["ice_servers"][0]["username"] for body in (first, second)]
        expiry = int(moment.timestamp()) + 1800
        assert all(u.startswith(f"{expiry}:kiosk-") for u in users)
        assert users[0] != users[1]  # a fresh credential for every request
        for body in (first, second):
            entry = body["ice_servers"][0]
            assert entry["credential"] == openssl_hmac_sha1_base64(SECRET, entry["username"])

        login = await asyncio.to_thread(
            requests.post,
            server.url + "/api/login",
            json={"username": seed.username, "password": seed.password},
            timeout=10,
        )
        clinic = await asyncio.to_thread(get, None, login.cookies)
        assert clinic["ice_servers"][0]["username"].startswith(f"{expiry}:clinic-")

        me = await asyncio.to_thread(
            requests.get, server.url + "/api/device/me", headers=device, timeout=10
        )
        assert me.json()["ice_servers"][0]["username"].startswith(f"{expiry}:kiosk-")

        # The kiosk's socket: welcome carries its own freshly minted servers and the policy.
        async with websockets.connect(
            server.ws_url + DEVICE_WS_PATH, additional_headers=device
        ) as ws:
            await ws.send(json.dumps({"type": "hello", "state": "idle"}))
            hello = json.loads(await asyncio.wait_for(ws.recv(), 5))
        assert hello["type"] == "welcome" and hello["ice_transport_policy"] == "relay"
        username = hello["ice_servers"][0]["username"]
        assert username.startswith(f"{expiry}:kiosk-") and username not in users
        # Nothing identifying the patient in the name coturn logs.
        assert seed.patient_id not in username and seed.patient_name not in username
        minted = [b["ice_servers"][0]["credential"] for b in (first, second, clinic, hello)]
    finally:
        server.stop()
    # Hub and libraries at DEBUG: neither the secret nor a minted password is ever logged.
    assert caplog.records and SECRET not in caplog.text
    assert not [c for c in minted if c in caplog.text]


def test_the_hub_settings_in_docs_turn_md_load(tmp_path) -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "turn.md").read_text()
    example = re.search(r"```toml\n(.*?)```", text, re.S).group(1)
    config_file = tmp_path / "hub.toml"
    config_file.write_text(example.replace("<the same secret as static-auth-secret>", SECRET))
    config = load_config(file=config_file, env={"PORCHLIGHT_HUB_DATA_DIR": str(tmp_path)})
    servers = config.ice_server_dicts(now=0, label="clinic-1")
    user = f"{int(TURN_TTL_S)}:clinic-1"
    assert [s.get("username") for s in servers] == [None, user, user]
    # The coturn example turns on the same scheme the hub speaks.
    for line in ("use-auth-secret", "static-auth-secret=", "realm=", "no-cli"):
        assert f"\n{line}" in text


def test_the_kiosk_refuses_a_transport_policy_it_does_not_know() -> None:
    with pytest.raises(BadInput, match="'all' or 'relay'"):
        rtc.new_peer_connection([], "turn-only")
