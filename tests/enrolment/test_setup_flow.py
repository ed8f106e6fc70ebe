"""The setup screen's pure flow, and the SetupSession that runs it against a real hub with
simulated hardware: keypad, QR code from camera frames, USB file, Wi-Fi, each bad input."""

from __future__ import annotations

import asyncio
import shutil
import stat

import pytest
from security.world import PASSWORD

from porchlight.device.config import DeviceConfig
from porchlight.device.hardware import open_device
from porchlight.hub.config import HubConfig
from porchlight.hub.enrolment import EnrolmentTicket, enrolment_uri
from porchlight.hub.server import HubServer
from porchlight.kiosk.config import KioskConfig
from porchlight.kiosk.credential import credential_path, load_credential
from porchlight.kiosk.setup_flow import (
    ApplyWifi,
    Enrol,
    Finish,
    ResultLine,
    RunSelfTest,
    ScanWifi,
    SetupFlow,
    Step,
)
from porchlight.kiosk.setup_session import SetupSession
from porchlight.provisioning.usb import ENROL_FILE
from porchlight.provisioning.wifi import FileWifi, SeenNetwork, WifiNetwork

from .test_device_side import PictureTrack, qr_picture

HUB = "http://hub.example:8740"

# -- the pure flow ------------------------------------------------------------------------


def typed(flow: SetupFlow, text: str) -> None:
    for char in text:
        flow.key(char)


def test_keypad_builds_the_code_and_enrols():
    flow = SetupFlow()
    flow.open_keypad()
    typed(flow, "acde")
    assert flow.view.code == "ACDE" and not flow.view.code_complete
    typed(flow, "FGHJ")
    assert flow.view.code == "ACDE-FGHJ" and flow.view.code_complete
    assert flow.submit_code() == [Enrol(EnrolmentTicket("ACDEFGHJ"))]
    assert flow.step is Step.WORKING


@pytest.mark.parametrize(
    ("keys", "words"),
    [
        ("ACD0", "'0' is never in a code"),
        ("ACDEFGHJK", "The code has 8 characters"),
    ],
)
def test_keypad_refuses_bad_keys_and_changes_nothing(keys, words):
    flow = SetupFlow()
    flow.open_keypad()
    typed(flow, keys)
    assert words in flow.view.error
    assert "0" not in flow.view.code and len(flow.code) <= 8


def test_a_short_code_is_not_sent_and_del_fixes_mistakes():
    flow = SetupFlow()
    flow.open_keypad()
    typed(flow, "ACDEFGH")
    assert flow.submit_code() == []
    assert "has 8 characters; this one has 7" in flow.view.error
    flow.backspace()
    assert flow.view.code == "ACDE-FG" and flow.view.error == ""


def test_a_refused_code_returns_to_the_keypad_with_the_hubs_words():
    flow = SetupFlow()
    flow.open_keypad()
    typed(flow, "ACDEFGHJ")
    flow.submit_code()
    flow.enrol_failed("This enrolment code does not work.")
    assert flow.step is Step.KEYPAD and flow.view.error == "This enrolment code does not work."


def test_qr_codes_enrol_or_set_wifi_and_others_are_explained():
    flow = SetupFlow()
    assert flow.qr_text("https://example.org") == []
    assert "not a Porchlight enrolment code" in flow.view.error
    assert flow.qr_text("ACDEFGHJ") == []  # a bare code has no hub address
    assert "set-up sheet" in flow.view.error
    wifi = flow.qr_text("WIFI:S:Home;T:WPA;P:12345678;;")
    assert wifi == [ApplyWifi(WifiNetwork("Home", "WPA", "12345678"))]
    flow.wifi_done("Home")
    assert flow.view.wifi_status == "Wi-Fi: Home"
    assert flow.qr_text(enrolment_uri(HUB, "ACDEFGHJ")) == [Enrol(EnrolmentTicket("ACDEFGHJ", HUB))]
    # While enrolling, more QR codes are ignored.
    assert flow.qr_text(enrolment_uri(HUB, "ACDEFGHK")) == []


def test_wifi_pick_and_password():
    flow = SetupFlow()
    assert flow.open_wifi() == [ScanWifi()]
    flow.networks_found([SeenNetwork("Home", 80, True), SeenNetwork("Cafe", 50, False)])
    assert flow.choose_network("Gone") == [] and "not in range" in flow.view.error
    flow.choose_network("Home")
    assert flow.step is Step.PASSWORD
    for char in "short":
        flow.password_key(char)
    assert flow.view.password_mask == "•••••"
    assert flow.submit_password() == [] and "8 to 63 characters" in flow.view.error
    for char in " horse":
        flow.password_key(char)
    flow.toggle_password()
    assert flow.view.password_mask == "short horse"
    assert flow.submit_password() == [ApplyWifi(WifiNetwork("Home", "WPA", "short horse"))]
    flow.wifi_failed("NetworkManager refused: no such network")
    assert flow.step is Step.PASSWORD and "refused" in flow.view.error
    flow.wifi_done("Home")
    assert flow.step is Step.WELCOME and flow.password == []
    flow.open_wifi()
    assert flow.choose_network("Cafe") == [ApplyWifi(WifiNetwork("Cafe", "nopass"))]


def test_enrolled_then_self_test_then_finish():
    flow = SetupFlow()
    flow.qr_text(enrolment_uri(HUB, "ACDEFGHJ"))
    assert flow.enrolled("Alice Able") == [RunSelfTest()]
    assert flow.view.headline == "Set up for Alice Able"
    assert flow.finish() == []  # not before the self-test has finished
    flow.self_test_done(
        [ResultLine("The camera shows a picture.", "ok"), ResultLine("No.", "problem")]
    )
    assert flow.view.detail == "1 thing to look at:"
    assert flow.run_self_test_again() == [RunSelfTest()]
    flow.self_test_done([ResultLine("The camera shows a picture.", "ok")])
    assert flow.view.detail == "Everything works."
    assert flow.finish() == [Finish()]


# -- the session against a real hub -------------------------------------------------------


@pytest.fixture
def hub(world, tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    shutil.copy(world.db_file, folder / "hub.db")
    with HubServer(HubConfig(data_dir=folder, host="127.0.0.1"), port=0) as server:
        yield server


def new_code(hub, world) -> str:
    import requests

    with requests.Session() as nurse:
        nurse.post(hub.url + "/api/login", json={"username": "nurse_x", "password": PASSWORD})
        made = nurse.post(f"{hub.url}/api/nurse/patients/{world.patient_a}/enrolments")
        return made.json()["code"]


async def until(predicate, timeout: float = 15.0) -> None:
    """Wait for a condition the session reaches by itself (checked each loop turn)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@pytest.fixture
async def hardware():
    device = open_device(DeviceConfig(simulate=True, speech=False), loop=asyncio.get_running_loop())
    yield device
    await device.close()


async def finish_setup(session: SetupSession, hardware) -> None:
    """Press the button when the self-test asks, then Finish."""
    await until(lambda: session.flow.step is Step.SELFTEST)
    await until(lambda: hardware.button.on_pressed is not None)  # the test is listening
    hardware.button.press()
    hardware.button.release()
    await until(lambda: session.flow.step is Step.DONE)
    session.act("finish")
    await asyncio.wait_for(session.done.wait(), 5)


async def test_qr_code_held_up_to_the_camera_enrols_the_kiosk(hub, world, hardware, tmp_path):
    ticket_text = enrolment_uri(hub.url, new_code(hub, world))
    data_dir = tmp_path / "kiosk"
    session = SetupSession(
        KioskConfig(data_dir=data_dir),
        hardware,
        wifi=FileWifi(tmp_path / "nm"),
        usb_roots=[tmp_path / "media"],
        open_camera=lambda: PictureTrack(qr_picture(ticket_text)),
        button_wait_s=10,
    )
    await session.start()
    try:
        await finish_setup(session, hardware)
    finally:
        await session.stop()
    assert session.flow.patient_name == "Alice Able"
    assert all(r.status != "problem" for r in session.flow.results), session.flow.results
    credential = load_credential(data_dir)
    assert credential.hub_url == hub.url and credential.patient_id == world.patient_a
    assert stat.S_IMODE(credential_path(data_dir).stat().st_mode) == 0o600
    stored = hub.store.latest_self_test(credential.device_id)
    assert stored is not None and stored.trigger == "setup"


async def test_typed_code_uses_the_configured_hub_and_bad_codes_are_explained(
    hub, world, hardware, tmp_path
):
    data_dir = tmp_path / "kiosk"
    session = SetupSession(
        KioskConfig(data_dir=data_dir, hub_url=hub.url),
        hardware,
        wifi=FileWifi(tmp_path / "nm"),
        usb_roots=[tmp_path / "media"],
        button_wait_s=10,
    )
    await session.start()
    try:
        session.act("open_keypad")
        for char in "ACDEFGHJ":
            session.act("key", char)
        session.act("submit_code")
        await until(lambda: session.view.error != "")
        assert session.flow.step is Step.KEYPAD
        assert "does not work" in session.view.error
        assert not credential_path(data_dir).exists()
        for _ in range(8):
            session.act("backspace")
        for char in new_code(hub, world):
            session.act("key", char)
        session.act("submit_code")
        await finish_setup(session, hardware)
    finally:
        await session.stop()
    assert load_credential(data_dir).patient_id == world.patient_a


async def test_usb_stick_with_wifi_and_enrolment(hub, world, hardware, tmp_path):
    stick = tmp_path / "media" / "STICK"
    stick.mkdir(parents=True)
    data_dir = tmp_path / "kiosk"
    session = SetupSession(
        KioskConfig(data_dir=data_dir),
        hardware,
        wifi=FileWifi(tmp_path / "nm"),
        usb_roots=[tmp_path / "media"],
        button_wait_s=10,
        usb_interval_s=0.02,
    )
    await session.start()
    try:
        (stick / ENROL_FILE).write_text("not a link at all\n")
        await until(lambda: "never contains" in session.view.error)
        (stick / ENROL_FILE).write_text(
            f"{enrolment_uri(hub.url, new_code(hub, world))}\nWIFI:S:Home;T:WPA;P:12345678;;\n"
        )
        await finish_setup(session, hardware)
    finally:
        await session.stop()
    assert (tmp_path / "nm" / "porchlight-wifi.nmconnection").exists()
    assert session.view.wifi_status == "Wi-Fi: Home"
    assert load_credential(data_dir).patient_id == world.patient_a


async def test_wifi_by_pick_and_password_writes_the_connection(hardware, tmp_path):
    wifi = FileWifi(tmp_path / "nm", [SeenNetwork("Home", 70, True)])
    session = SetupSession(
        KioskConfig(data_dir=tmp_path / "kiosk"),
        hardware,
        wifi=wifi,
        usb_roots=[tmp_path / "media"],
    )
    await session.start()
    try:
        session.act("open_wifi")
        await until(lambda: session.view.networks)
        session.act("choose_network", "Home")
        for char in "correct horse":
            session.act("password_key", char)
        session.act("submit_password")
        await until(lambda: session.flow.step is Step.WELCOME)
    finally:
        await session.stop()
    text = (tmp_path / "nm" / "porchlight-wifi.nmconnection").read_text()
    assert "ssid=Home" in text and "psk=correct horse" in text
