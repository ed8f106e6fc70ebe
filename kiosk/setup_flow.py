"""The kiosk's setup screen as a pure state machine: what the nurse sees and what happens next.

No Kivy, no I/O, no clock. Inputs are methods (a key on the keypad, a QR text the camera
read, a USB file, a result of work done elsewhere); each returns the effects to carry out
(`Enrol`, `ApplyWifi`, `ScanWifi`, `RunSelfTest`, `Finish`). `view` is what to draw.
Every refusal leaves the state as it was, with an error in plain words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from porchlight.errors import BadInput
from porchlight.hub.enrolment import (
    ALPHABET,
    CODE_LENGTH,
    EnrolmentTicket,
    format_code,
    normalise_code,
    parse_ticket,
)
from porchlight.provisioning.wifi import SeenNetwork, WifiNetwork, parse_wifi_qr

MAX_PASSWORD = 63


class Step(StrEnum):
    WELCOME = "welcome"
    KEYPAD = "keypad"
    WIFI = "wifi"
    PASSWORD = "password"
    WORKING = "working"
    SELFTEST = "selftest"
    DONE = "done"


@dataclass(frozen=True)
class Enrol:
    ticket: EnrolmentTicket


@dataclass(frozen=True)
class ApplyWifi:
    network: WifiNetwork


@dataclass(frozen=True)
class ScanWifi:
    pass


@dataclass(frozen=True)
class RunSelfTest:
    pass


@dataclass(frozen=True)
class Finish:
    pass


Effect = Enrol | ApplyWifi | ScanWifi | RunSelfTest | Finish


@dataclass(frozen=True)
class ResultLine:
    words: str
    status: str  # ok | problem | not_checked


@dataclass(frozen=True)
class SetupView:
    step: Step
    headline: str
    detail: str
    error: str = ""
    code: str = ""  # as typed so far, e.g. "ACDE-FG"
    code_complete: bool = False
    networks: tuple[SeenNetwork, ...] = ()
    ssid: str = ""
    password_mask: str = ""  # one dot per character, or the password when shown
    wifi_status: str = ""  # "Wi-Fi: connected to Home", or ""
    results: tuple[ResultLine, ...] = ()


@dataclass
class SetupFlow:
    step: Step = Step.WELCOME
    code: list[str] = field(default_factory=list)
    error: str = ""
    networks: tuple[SeenNetwork, ...] = ()
    ssid: str = ""
    secured: bool = True
    password: list[str] = field(default_factory=list, repr=False)
    show_password: bool = False
    wifi_name: str = ""  # the network written last
    working_on: str = ""
    patient_name: str = ""
    results: tuple[ResultLine, ...] = ()
    return_to: Step = Step.WELCOME

    # ---------------------------------------------------------------- navigation

    def open_keypad(self) -> list[Effect]:
        self._go(Step.KEYPAD)
        return []

    def open_wifi(self) -> list[Effect]:
        self._go(Step.WIFI)
        return [ScanWifi()]

    def back(self) -> list[Effect]:
        if self.step in (Step.KEYPAD, Step.WIFI):
            self._go(Step.WELCOME)
        elif self.step is Step.PASSWORD:
            self.password.clear()
            self._go(Step.WIFI)
        return []

    # ---------------------------------------------------------------- the code

    def key(self, char: str) -> list[Effect]:
        if self.step is not Step.KEYPAD:
            return []
        char = char.upper()
        if char not in ALPHABET:
            self.error = f"{char!r} is never in a code. Use the keys shown."
            return []
        if len(self.code) >= CODE_LENGTH:
            self.error = f"The code has {CODE_LENGTH} characters. Press OK, or Del to fix it."
            return []
        self.code.append(char)
        self.error = ""
        return []

    def backspace(self) -> list[Effect]:
        if self.step is Step.KEYPAD and self.code:
            self.code.pop()
            self.error = ""
        return []

    def submit_code(self) -> list[Effect]:
        if self.step is not Step.KEYPAD:
            return []
        try:
            ticket = EnrolmentTicket(normalise_code("".join(self.code)))
        except BadInput as exc:
            self.error = str(exc)
            return []
        return self._enrol(ticket, return_to=Step.KEYPAD)

    # ---------------------------------------------------------------- camera and USB

    def qr_text(self, text: str) -> list[Effect]:
        """The camera read a QR code: an enrolment link, or a Wi-Fi QR code."""
        if self.step in (Step.WORKING, Step.SELFTEST, Step.DONE):
            return []
        try:
            if text.strip()[:5].upper() == "WIFI:":
                return self._apply_wifi(parse_wifi_qr(text))
            ticket = parse_ticket(text)
        except BadInput as exc:
            self.error = str(exc)
            return []
        if ticket.hub_url is None:
            self.error = "Show the QR code from the set-up sheet (it holds the hub's address)."
            return []
        return self._enrol(ticket, return_to=self.step)

    def usb_file(self, ticket: EnrolmentTicket, wifi: WifiNetwork | None) -> list[Effect]:
        if self.step in (Step.WORKING, Step.SELFTEST, Step.DONE):
            return []
        effects: list[Effect] = [ApplyWifi(wifi)] if wifi is not None else []
        if wifi is not None:
            self.wifi_name = wifi.ssid
        return effects + self._enrol(ticket, return_to=self.step)

    def refused(self, message: str) -> list[Effect]:
        """Something from outside could not be used (a bad USB file, a camera error)."""
        if self.step not in (Step.WORKING, Step.SELFTEST, Step.DONE):
            self.error = message
        return []

    # ---------------------------------------------------------------- Wi-Fi

    def networks_found(self, networks: list[SeenNetwork]) -> list[Effect]:
        self.networks = tuple(networks)
        return []

    def choose_network(self, ssid: str) -> list[Effect]:
        if self.step is not Step.WIFI:
            return []
        chosen = next((n for n in self.networks if n.ssid == ssid), None)
        if chosen is None:
            self.error = "That network is not in range any more. Pick another."
            return []
        self.ssid, self.secured = chosen.ssid, chosen.secured
        if not chosen.secured:
            return self._apply_wifi(WifiNetwork(chosen.ssid, "nopass"))
        self.password.clear()
        self._go(Step.PASSWORD)
        return []

    def password_key(self, char: str) -> list[Effect]:
        if self.step is Step.PASSWORD and len(char) == 1 and char.isprintable():
            if len(self.password) >= MAX_PASSWORD:
                self.error = f"A Wi-Fi password has at most {MAX_PASSWORD} characters."
                return []
            self.password.append(char)
            self.error = ""
        return []

    def password_backspace(self) -> list[Effect]:
        if self.step is Step.PASSWORD and self.password:
            self.password.pop()
        return []

    def toggle_password(self) -> list[Effect]:
        self.show_password = not self.show_password
        return []

    def submit_password(self) -> list[Effect]:
        if self.step is not Step.PASSWORD:
            return []
        try:
            network = WifiNetwork(self.ssid, "WPA", "".join(self.password))
        except BadInput as exc:
            self.error = str(exc)
            return []
        return self._apply_wifi(network)

    def wifi_done(self, ssid: str) -> list[Effect]:
        self.wifi_name = ssid
        self.password.clear()
        if self.step in (Step.WIFI, Step.PASSWORD):
            self._go(Step.WELCOME)
        return []

    def wifi_failed(self, message: str) -> list[Effect]:
        self.wifi_name = ""
        self.error = message
        return []

    # ---------------------------------------------------------------- enrolment and self-test

    def enrolled(self, patient_name: str) -> list[Effect]:
        self.patient_name = patient_name
        self.code.clear()
        self._go(Step.SELFTEST)
        self.results = ()
        return [RunSelfTest()]

    def enrol_failed(self, message: str) -> list[Effect]:
        if self.step is Step.WORKING:
            self._go(self.return_to)
        self.error = message
        return []

    def self_test_done(self, results: list[ResultLine]) -> list[Effect]:
        self.results = tuple(results)
        self._go(Step.DONE)
        return []

    def run_self_test_again(self) -> list[Effect]:
        if self.step is Step.DONE:
            self._go(Step.SELFTEST)
            self.results = ()
            return [RunSelfTest()]
        return []

    def finish(self) -> list[Effect]:
        return [Finish()] if self.step is Step.DONE else []

    # ---------------------------------------------------------------- helpers

    def _go(self, step: Step) -> None:
        self.step = step
        self.error = ""

    def _enrol(self, ticket: EnrolmentTicket, *, return_to: Step) -> list[Effect]:
        self.return_to = return_to if return_to is not Step.WORKING else Step.WELCOME
        self.working_on = "enrol"
        self._go(Step.WORKING)
        return [Enrol(ticket)]

    def _apply_wifi(self, network: WifiNetwork) -> list[Effect]:
        self.ssid = network.ssid
        self.error = ""
        return [ApplyWifi(network)]

    # ---------------------------------------------------------------- what to draw

    @property
    def view(self) -> SetupView:
        wifi = f"Wi-Fi: {self.wifi_name}" if self.wifi_name else ""
        code = "".join(self.code)
        shown_code = format_code(code) if len(code) > CODE_LENGTH // 2 else code
        common = {"error": self.error, "wifi_status": wifi}
        match self.step:
            case Step.WELCOME:
                return SetupView(
                    self.step,
                    "Set up this kiosk",
                    "Hold the QR code from the set-up sheet up to the camera, or type the code.",
                    **common,
                )
            case Step.KEYPAD:
                return SetupView(
                    self.step,
                    "Type the code from the set-up sheet",
                    "",
                    code=shown_code,
                    code_complete=len(code) == CODE_LENGTH,
                    **common,
                )
            case Step.WIFI:
                detail = (
                    "Pick the network, or hold its Wi-Fi QR code up to the camera."
                    if self.networks
                    else "Looking for networks… or hold a Wi-Fi QR code up to the camera."
                )
                return SetupView(self.step, "Wi-Fi", detail, networks=self.networks, **common)
            case Step.PASSWORD:
                password = "".join(self.password)
                mask = password if self.show_password else "•" * len(password)
                return SetupView(
                    self.step,
                    f"Password for {self.ssid}",
                    "",
                    ssid=self.ssid,
                    password_mask=mask,
                    **common,
                )
            case Step.WORKING:
                return SetupView(self.step, "Setting up…", "Talking to the clinic's hub", **common)
            case Step.SELFTEST:
                return SetupView(
                    self.step,
                    f"Set up for {self.patient_name}" if self.patient_name else "Checking",
                    "Checking the kiosk. Press the big button when it asks.",
                    **common,
                )
            case _:
                problems = sum(r.status == "problem" for r in self.results)
                detail = (
                    "Everything works."
                    if not problems
                    else f"{problems} thing{'s' if problems > 1 else ''} to look at:"
                )
                return SetupView(
                    self.step,
                    f"Set up for {self.patient_name}" if self.patient_name else "Set up",
                    detail,
                    results=self.results,
                    **common,
                )
