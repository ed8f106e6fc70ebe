"""TURN over TLS (`turns:`), what gets through clinic and home firewalls that pass only TLS.

A real coturn listens for TLS with a certificate for 127.0.0.1 signed by a CA made for the
test. The hub hands out only the `turns:` URL, relay-only. The kiosk trusts that CA through
`kiosk.turn_ca_file` (verification stays on: the certificate's chain and its name are
checked); Chromium, which has its own trust store, is told to accept exactly that server
key (`--ignore-certificate-errors-spki-list`, a pin on one key, for this test only; a clinic
uses a certificate from a CA its browsers already trust).

With the right CA the call is relay to relay and both allocations were made over TLS. With a
CA the server's certificate does not chain to, the kiosk refuses the server: no relayed
candidate, no call, one clear log line, and no token, secret or credential in any log.
"""

from __future__ import annotations

import logging
import re
import ssl
from pathlib import Path

import aioice.ice
import aioice.turn
import pytest
from playwright.async_api import async_playwright

from porchlight import chromium
from porchlight.errors import ConfigError
from porchlight.kiosk import rtc
from porchlight.kiosk.config import KioskConfig, load_kiosk_config
from porchlight.kiosk.core import KioskCore

from .turn_support import (
    Call,
    Coturn,
    TlsFiles,
    assert_relay_to_relay,
    call_through_chromium,
    candidate_types,
    make_tls,
    once_gathered,
    until,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]


def tls_sessions(log: str) -> dict[str, str]:
    """Caller kind ("kiosk", "clinic") → the TLS version coturn logged for its session."""
    found = re.findall(
        r"username=<\d+:(kiosk|clinic)-[0-9a-f]+>, lifetime=\d+, cipher=[^,]+, method=(TLSv[\d.]+)",
        log,
    )
    return dict(found)


def tls_call(tmp_path: Path, turn: Coturn, kiosk_ca: Path) -> Call:
    """The hub hands out only coturn's turns: URL; the kiosk trusts `kiosk_ca`."""
    return Call(
        tmp_path,
        turn,
        hub_secret=turn.secret,
        clock_offset_s=0,
        ice_url=turn.turns_url,
        kiosk={"turn_ca_file": kiosk_ca},
    )


def pin(tls: TlsFiles) -> str:
    """Chromium accepts exactly this server key (its own trust store knows no test CA)."""
    return f"--ignore-certificate-errors-spki-list={tls.spki_sha256}"


async def test_relay_only_call_over_turns_with_the_clinics_own_ca(tmp_path: Path) -> None:
    tls = make_tls(tmp_path / "tls")
    with Coturn(tmp_path / "turn", tls=tls) as turn:
        state = await call_through_chromium(tls_call(tmp_path, turn, tls.ca_cert), pin(tls))
        log = turn.log()

    assert_relay_to_relay(state)
    assert state["relayProtocol"] == "tls"  # Chromium reached coturn over TLS
    # Both allocations were made on TLS connections (coturn names the TLS version).
    assert set(tls_sessions(log)) == {"kiosk", "clinic"}


async def test_kiosk_refuses_a_turns_server_whose_certificate_it_does_not_trust(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    served = make_tls(tmp_path / "tls")
    other_ca = make_tls(tmp_path / "other", label="another-clinic")
    caplog.set_level(logging.DEBUG)
    with Coturn(tmp_path / "turn", tls=served) as turn:
        call = tls_call(tmp_path, turn, other_ca.ca_cert)
        try:
            async with async_playwright() as pw:
                browser = await chromium.launch(pw, pin(served))
                page = await browser.new_page()
                await call.admit(page)
                refused = await until(
                    lambda: [r for r in caplog.records if "refused the TURN server" in r.message],
                    30,
                    "the kiosk to refuse the TURN server's certificate",
                )
                # The clinic page did get its relay (so only the kiosk's side is missing).
                await until(lambda: "clinic" in tls_sessions(turn.log()), 30, "clinic relay")
                state, frames, kiosk_frames = await once_gathered(page, call)
                await browser.close()
        finally:
            await call.close()
        log = turn.log()

    message = refused[0].getMessage()
    assert refused[0].levelno == logging.ERROR
    assert f"127.0.0.1:{turn.tls_port}" in message and "turn_ca_file" in message
    assert "certificate" in message  # OpenSSL's reason: the chain does not verify
    # No relayed candidate on the kiosk's side, so nothing to connect.
    assert candidate_types(state["remoteSdp"]) == []
    assert state["connection"] != "connected" and frames == 0 and kiosk_frames == 0
    assert "kiosk" not in tls_sessions(log)
    # Nothing secret in what the kiosk (and everything else in this process) logged.
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert call.seed.device_token not in logged and turn.secret not in logged
    assert not re.search(r"\d{10}:kiosk-[0-9a-f]+", logged)  # no TURN username either


def test_the_kiosks_ca_setting_keeps_verification_on_and_a_bad_file_stops_it_starting(
    tmp_path: Path,
) -> None:
    tls = make_tls(tmp_path / "tls")
    context = rtc.turn_tls_context(tls.ca_cert)
    assert context is not None
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert rtc.turn_tls_context(None) is None  # the system's CAs, as aioice does by itself
    env = {"PORCHLIGHT_KIOSK_TURN_CA_FILE": str(tls.ca_cert)}
    assert load_kiosk_config(env=env, data_dir=tmp_path / "kiosk").turn_ca_file == tls.ca_cert

    not_pem = tmp_path / "not-a-ca.pem"
    not_pem.write_text("this is not a certificate\n")
    for bad in (tmp_path / "missing.pem", not_pem):
        with pytest.raises(ConfigError, match=r"kiosk\.turn_ca_file .* CA certificate"):
            KioskCore(KioskConfig(data_dir=tmp_path / "kiosk", turn_ca_file=bad))


async def test_the_aiortc_and_aioice_internals_the_tls_plumbing_relies_on() -> None:
    """rtc.new_peer_connection(turn_tls=...) hands its SSL context to each ICE gatherer's
    aioice Connection (turn_ssl), which aioice passes to asyncio as `ssl=`; the refusal log
    wraps aioice.turn.create_turn_endpoint, which aioice looks up at call time."""
    context = ssl.create_default_context()
    pc = rtc.new_peer_connection(
        [{"urls": ["turns:127.0.0.1:5349?transport=tcp"], "username": "u", "credential": "c"}],
        "relay",
        turn_tls=context,
    )
    try:
        pc.addTransceiver("video")
        gatherer = pc.getTransceivers()[0].sender.transport.transport.iceGatherer
        assert gatherer._connection.turn_ssl is context, "the SSL context did not reach aioice"
    finally:
        await pc.close()
    assert {"turn", "create_turn_endpoint"} <= set(aioice.ice.relayed_candidate.__code__.co_names)
    assert "ssl" in aioice.turn.create_turn_endpoint.__wrapped__.__code__.co_varnames
