"""The kiosk's side of setting up: Wi-Fi QR codes and NetworkManager files, QR codes read
from camera frames, the USB enrolment file, and the self-test (simulated hardware, real hub)."""

from __future__ import annotations

import asyncio
import fractions
import shutil
import stat
from datetime import UTC, datetime, timedelta

import av
import numpy
import pytest
import qrcode
from aiortc.mediastreams import MediaStreamTrack

from porchlight.device.config import DeviceConfig
from porchlight.device.hardware import open_device
from porchlight.errors import BadInput
from porchlight.hub.config import HubConfig
from porchlight.hub.enrolment import enrolment_uri
from porchlight.hub.server import HubServer
from porchlight.provisioning import selftest as st
from porchlight.provisioning.qr_scan import QrScanner, decode_qr
from porchlight.provisioning.usb import ENROL_FILE, UsbWatcher, read_enrol_file
from porchlight.provisioning.wifi import (
    FileWifi,
    SeenNetwork,
    WifiNetwork,
    keyfile,
    parse_nmcli_scan,
    parse_wifi_qr,
)

# -- Wi-Fi --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "network"),
    [
        ("WIFI:S:Home;T:WPA;P:correct horse;;", WifiNetwork("Home", "WPA", "correct horse")),
        (
            "wifi:T:WPA;P:pass\\;word\\:1;S:My\\,Net;H:true;;",
            WifiNetwork("My,Net", "WPA", "pass;word:1", True),
        ),
        (
            'WIFI:S:Back\\\\slash \\"quoted\\";T:SAE;P:12345678;;',
            WifiNetwork('Back\\slash "quoted"', "SAE", "12345678"),
        ),
        ("WIFI:S:Café;T:nopass;;", WifiNetwork("Café", "nopass")),
        ("WIFI:S:Guest;;", WifiNetwork("Guest", "nopass")),
    ],
)
def test_wifi_qr_codes_with_escapes(text, network):
    assert parse_wifi_qr(text) == network


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("http://example.org", "not a Wi-Fi QR code"),
        ("WIFI:T:WPA;P:12345678;;", "no network name"),
        ("WIFI:S:Home;T:WPA;P:short;;", "8 to 63 characters"),
        ("WIFI:S:Home;T:WEP;P:1234567890;;", "WEP"),
        ("WIFI:S:Home;T:WPA;P:12345678", "cut short"),
        ("WIFI:S:Ho\\me;T:WPA;P:12345678;;", "stray backslash"),
        ("WIFI:S:" + "x" * 33 + ";;", "1 to 32"),
        ("WIFI:S:Home;T:nopass;P:12345678;;", "no password"),
    ],
)
def test_bad_wifi_qr_codes_say_what_is_wrong(text, words):
    with pytest.raises(BadInput, match=words):
        parse_wifi_qr(text)


def test_a_wifi_password_never_shows_in_a_repr():
    assert "hunter22" not in repr(WifiNetwork("Home", "WPA", "hunter22"))


def test_networkmanager_keyfile_written_private(tmp_path):
    network = WifiNetwork(" Odd;Name\\", "WPA", "pa\\ss word\n"[:-1] + "x")
    backend = FileWifi(tmp_path / "nm")
    path = backend.apply(network)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert "[wifi]\nmode=infrastructure\n" in text
    # An SSID with ; or \\ is written as bytes, unambiguous for NetworkManager.
    assert "ssid=" + "".join(f"{b};" for b in b" Odd;Name\\") in text
    assert "key-mgmt=wpa-psk" in text and "psk=pa\\\\ss wordx" in text
    open_net = keyfile(WifiNetwork("Cafe", "nopass"))
    assert "[wifi-security]" not in open_net and "ssid=Cafe" in open_net
    assert "key-mgmt=sae" in keyfile(WifiNetwork("Home", "SAE", "12345678", hidden=True))


def test_nmcli_scan_output_is_read_with_its_escapes():
    output = (
        "Home:72:WPA2\nHome:40:WPA2\nCafe\\: Free:55:\n:90:WPA2\n"
        "Bad:xx:WPA2\nOffice\\\\1:30:WPA1 WPA2\n"
    )
    assert parse_nmcli_scan(output) == [
        SeenNetwork("Home", 72, True),
        SeenNetwork("Cafe: Free", 55, False),
        SeenNetwork("Office\\1", 30, True),
    ]


# -- QR codes from the camera -------------------------------------------------------------


def qr_picture(text: str, size: int = 480) -> numpy.ndarray:
    """A camera-like RGB picture: the QR code, smaller than the frame, on a grey wall."""
    qr = qrcode.QRCode(border=4)
    qr.add_data(text)
    qr.make(fit=True)
    modules = numpy.array(qr.get_matrix(), dtype=numpy.uint8)
    scale = (size // 2) // len(modules)
    code = numpy.where(numpy.kron(modules, numpy.ones((scale, scale), numpy.uint8)), 20, 235)
    frame = numpy.full((size, size * 4 // 3, 3), 128, numpy.uint8)
    y, x = 60, 150
    frame[y : y + code.shape[0], x : x + code.shape[1]] = code[..., None].astype(numpy.uint8)
    return frame


class PictureTrack(MediaStreamTrack):
    """A test camera: blank frames, then frames showing `picture` (as a nurse holds it up)."""

    kind = "video"

    def __init__(self, picture: numpy.ndarray, blank_frames: int = 5) -> None:
        super().__init__()
        self.picture = picture
        self.blank_frames = blank_frames
        self.sent = 0

    async def recv(self) -> av.VideoFrame:
        await asyncio.sleep(0)  # a real camera yields to the loop between frames too
        show = self.sent >= self.blank_frames
        image = self.picture if show else numpy.full_like(self.picture, 128)
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = self.sent, fractions.Fraction(1, 30)
        self.sent += 1
        return frame


def test_decode_qr_reads_a_picture():
    uri = enrolment_uri("http://hub.example:8740", "ACDEFGHJ")
    assert decode_qr(qr_picture(uri)) == [uri]
    assert decode_qr(numpy.full((240, 320), 128, numpy.uint8)) == []


async def test_the_scanner_finds_the_code_held_up_to_the_camera():
    uri = enrolment_uri("http://hub.example:8740", "ACDEFGHJ")
    found: asyncio.Queue[str] = asyncio.Queue()
    track = PictureTrack(qr_picture(uri))
    scanner = QrScanner(track, found.put_nowait, scans_per_second=1000)
    scanner.start()
    try:
        assert await asyncio.wait_for(found.get(), 10) == uri
    finally:
        await scanner.stop()
    assert scanner.frames_scanned > track.blank_frames  # blank frames gave nothing
    assert found.empty()  # the same code held up is reported once
    assert track.readyState == "ended"


# -- USB stick ----------------------------------------------------------------------------


def test_a_usb_enrolment_file_is_found_and_read(tmp_path):
    stick = tmp_path / "media" / "nurse" / "STICK"
    stick.mkdir(parents=True)
    uri = enrolment_uri("http://hub.example:8740", "ACDEFGHJ")
    (stick / ENROL_FILE).write_text(f"# Porchlight\n{uri}\nWIFI:S:Home;T:WPA;P:12345678;;\n")
    found, errors = [], []
    watcher = UsbWatcher(found.append, errors.append, roots=[tmp_path / "media"])
    outcomes = watcher.poll()
    assert len(outcomes) == 1
    usb = outcomes[0]
    assert usb.ticket.code == "ACDEFGHJ" and usb.ticket.hub_url == "http://hub.example:8740"
    assert usb.wifi == WifiNetwork("Home", "WPA", "12345678")
    assert watcher.poll() == []  # read once while it stays plugged in


async def test_the_usb_watcher_reports_on_the_loop(tmp_path):
    stick = tmp_path / "media" / "STICK"
    stick.mkdir(parents=True)
    found: asyncio.Queue = asyncio.Queue()
    watcher = UsbWatcher(
        found.put_nowait, found.put_nowait, roots=[tmp_path / "media"], interval_s=0.01
    )
    watcher.start()
    try:
        (stick / ENROL_FILE).write_text("not a link\n")
        error = await asyncio.wait_for(found.get(), 5)
        assert isinstance(error, BadInput) and "never contains" in str(error)
    finally:
        await watcher.stop()


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"ACDEFGHJ\n", "no enrolment link"),
        (b"\xff\xfe\x00", "not a text file"),
        (b"x" * 5000, "too big"),
        (b"WIFI:S:Home;T:WPA;P:12345678;;\n", "no enrolment link"),
    ],
)
def test_bad_usb_files_say_what_is_wrong(tmp_path, content, words):
    path = tmp_path / ENROL_FILE
    path.write_bytes(content)
    with pytest.raises(BadInput, match=words):
        read_enrol_file(path)


# -- self-test ----------------------------------------------------------------------------

SIMULATED = DeviceConfig(simulate=True, speech=False)
CHECKS = ("camera", "speaker", "microphone", "light", "button", "link", "clock")


@pytest.mark.parametrize(
    ("result", "status", "words"),
    [
        (st.judge_camera(120, 40), st.Status.OK, "shows a picture"),
        (st.judge_camera(3, 1), st.Status.PROBLEM, "black"),
        (st.judge_camera(128, 0.5), st.Status.PROBLEM, "blank"),
        (st.judge_camera(None, None, "DeviceFault"), st.Status.PROBLEM, "no picture (DeviceFault)"),
        (st.judge_microphone(-25), st.Status.OK, "hears sound (-25 dB)"),
        (st.judge_microphone(-90), st.Status.PROBLEM, "hears nothing"),
        (st.judge_button(None), st.Status.NOT_CHECKED, "nurse runs the test"),
        (st.judge_button(False), st.Status.PROBLEM, "No button press"),
        (
            st.judge_link(20, 5000, 2000),
            st.Status.OK,
            "good (delay 20 ms, down 5.0 Mbit/s, up 2.0 Mbit/s)",
        ),
        (st.judge_link(400, 5000, 2000), st.Status.OK, "usable"),
        (st.judge_link(40, 2000, 200), st.Status.PROBLEM, "too slow for video"),
        (st.judge_link(None, None, None, "no answer"), st.Status.PROBLEM, "cannot reach"),
        (st.judge_clock(1.2), st.Status.OK, "clock is right"),
        (st.judge_clock(-90), st.Status.PROBLEM, "90 seconds behind"),
    ],
)
def test_results_in_plain_words(result, status, words):
    assert result.status is status
    assert words in result.words


def test_the_daily_run_is_due_after_a_day():
    t = datetime(2025, 3, 4, 9, 0, tzinfo=UTC)
    assert st.daily_due(None, t)
    assert not st.daily_due(t, t.replace(hour=20))
    assert st.daily_due(t, t.replace(day=5))


async def test_self_test_on_simulated_hardware_reaches_the_nurse_page(world, tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    shutil.copy(world.db_file, folder / "hub.db")
    hardware = open_device(
        DeviceConfig(simulate=True, speech=False), loop=asyncio.get_running_loop()
    )
    try:
        with HubServer(HubConfig(data_dir=folder, host="127.0.0.1"), port=0) as hub:
            probe = st.HubProbe(hub.url, world.tokens["device_a"])

            waiter = st.press_waiter(hardware.button, 5.0)

            async def nurse_presses_when_asked() -> bool:
                asked = asyncio.ensure_future(waiter())
                await asyncio.sleep(0)  # one loop turn: the waiter now listens to the button
                hardware.button.press()
                hardware.button.release()
                return await asked

            report = await st.run_self_test(
                hardware, probe, trigger="setup", wait_for_press=nurse_presses_when_asked
            )
            by_check = {r.check: r for r in report.results}
            assert set(by_check) == {
                "camera",
                "microphone",
                "speaker",
                "light",
                "button",
                "link",
                "clock",
            }
            assert not report.problems, [r.words for r in report.problems]
            assert hardware.speaker.beeps  # the tone was played
            assert hardware.light.pattern == "off"  # put back as it was
            await asyncio.to_thread(probe.send_report, report)
            probe.close()
            stored = hub.store.latest_self_test(world.device_a)
            assert stored is not None and stored.trigger == "setup"
            assert [r["check"] for r in stored.results] == [r.check for r in report.results]
    finally:
        await hardware.close()


async def test_self_test_without_a_button_press_or_hub(world):
    hardware = open_device(
        DeviceConfig(simulate=True, speech=False), loop=asyncio.get_running_loop()
    )
    try:
        report = await st.run_self_test(
            hardware, None, trigger="setup", wait_for_press=st.press_waiter(hardware.button, 0.05)
        )
    finally:
        await hardware.close()
    by_check = {r.check: r.status for r in report.results}
    assert by_check["button"] is st.Status.PROBLEM
    assert by_check["link"] is st.Status.PROBLEM
    assert by_check["clock"] is st.Status.NOT_CHECKED
    assert by_check["camera"] is st.Status.OK


async def test_the_daily_self_test_runs_once_a_day_and_only_when_idle(world, tmp_path):
    folder = tmp_path / "hub"
    folder.mkdir()
    shutil.copy(world.db_file, folder / "hub.db")
    clock = [datetime(2025, 3, 4, 9, 0, tzinfo=UTC)]
    idle = [False]
    hardware = open_device(SIMULATED, loop=asyncio.get_running_loop())
    try:
        with HubServer(HubConfig(data_dir=folder, host="127.0.0.1"), port=0) as hub:
            daily = st.DailySelfTest(
                hardware,
                lambda: st.HubProbe(hub.url, world.tokens["device_a"]),
                data_dir=tmp_path / "kiosk",
                is_idle=lambda: idle[0],
                now=lambda: clock[0],
            )
            assert await daily.run_if_due() is None  # in a call: not now
            idle[0] = True
            report = await daily.run_if_due()
            assert report is not None and report.trigger == "daily"
            assert {r.check: r.status for r in report.results}["button"] is st.Status.NOT_CHECKED
            assert hub.store.latest_self_test(world.device_a).trigger == "daily"
            clock[0] += timedelta(hours=23)
            assert await daily.run_if_due() is None  # once a day
            clock[0] += timedelta(hours=1)
            assert await daily.run_if_due() is not None
            assert daily.last_ran_at() == clock[0]
    finally:
        await hardware.close()
