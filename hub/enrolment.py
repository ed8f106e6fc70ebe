"""Enrolment codes and the rules around them. Pure: no clock, no I/O, no framework.

A nurse's enrolment is a one-time code of 8 characters from an alphabet without look-alikes
(no 0/O, 1/I/L, 2/Z, 5/S, 8/B, U/V), valid for 30 minutes and usable once. 23 characters to
the power 8 is about 7.8e10 codes (36 bits); with guesses limited per source and across the
hub (`enrolment_guard`), an attacker gets a few thousand guesses while codes live, which
finds a live code with a chance of about one in ten million per live code.

The hub keeps only the SHA-256 of a code. The device proves it holds the private key it
enrols with by signing `proof_message(code, public_key)`; both ends use this module, so it
imports nothing the kiosk lacks (only the standard library and `cryptography`).

The QR code and USB file carry `enrolment_uri(hub_url, code)`: `<hub>/enrol#code=<CODE>`.
The code sits in the fragment, which browsers never send, so a phone that opens the link by
mistake leaves no code in any server log.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from porchlight.errors import BadInput, NotAuthorised
from porchlight.hub.throttle import GLOBAL, Guard, Throttle

# Digits and capitals that cannot be mistaken for one another, in the order the keypad shows.
ALPHABET = "ACDEFGHJKMNPQRTWXY34679"
CODE_LENGTH = 8
CODE_TTL = timedelta(minutes=30)
# Wrong codes: per source address, and across the whole hub (a distributed guesser).
GUESSES_PER_SOURCE = 10
GUESSES_GLOBAL = 100
GUESS_WINDOW = timedelta(minutes=15)

PROOF_CONTEXT = b"porchlight-enrol-v1\n"
ENROL_FRAGMENT = "/enrol#code="
PUBLIC_KEY_BYTES = 32

_SEPARATORS = " -_.\t"


def new_code(rng: secrets.SystemRandom | None = None) -> str:
    """A fresh random code (from the OS's CSPRNG unless a generator is given)."""
    rng = rng or secrets.SystemRandom()
    return "".join(rng.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """The code in canonical form (capitals, no separators); BadInput saying what is wrong."""
    if not isinstance(text, str):
        raise BadInput("The enrolment code must be text.")
    code = "".join(c for c in text.upper() if c not in _SEPARATORS)
    wrong = sorted({c for c in code if c not in ALPHABET})
    if wrong:
        shown = " ".join(repr(c) for c in wrong[:4])
        raise BadInput(
            f"An enrolment code never contains {shown}. Check the code on the sheet "
            "and type it again."
        )
    if len(code) != CODE_LENGTH:
        raise BadInput(
            f"An enrolment code has {CODE_LENGTH} characters; this one has {len(code)}. "
            "Check the code on the sheet."
        )
    return code


def format_code(code: str) -> str:
    """`ABCDEFGH` → `ABCD-EFGH`: how sheets and screens show it."""
    half = CODE_LENGTH // 2
    return f"{code[:half]}-{code[half:]}"


def code_hash(code: str) -> str:
    return hashlib.sha256(normalise_code(code).encode()).hexdigest()


def expires_at(created: datetime) -> datetime:
    return created + CODE_TTL


@dataclass(frozen=True)
class EnrolmentState:
    """What the hub knows about one enrolment code, for `check_usable`."""

    expires: datetime
    used_at: datetime | None
    cancelled: bool = False


def check_usable(state: EnrolmentState | None, now: datetime) -> None:
    """NotAuthorised unless this code can enrol a device now.

    Unknown, used, cancelled and expired codes get the same answer: a guesser must not
    learn that a code once existed.
    """
    if state is None or state.used_at is not None or state.cancelled or now >= state.expires:
        raise NotAuthorised(
            "This enrolment code does not work: it may be mistyped, used already or "
            "expired (codes last 30 minutes). Ask the nurse for a new code."
        )


def enrolment_guard() -> Guard:
    """Throttles for wrong codes: per source address and across the hub."""
    return Guard(
        {
            "source": Throttle(GUESSES_PER_SOURCE, GUESS_WINDOW),
            GLOBAL: Throttle(GUESSES_GLOBAL, GUESS_WINDOW),
        },
        "Too many wrong enrolment codes.",
    )


def guard_keys(source: str) -> dict[str, str]:
    return {"source": source, GLOBAL: GLOBAL}


# -- what the QR code and the USB file carry ---------------------------------------------


def enrolment_uri(hub_url: str, code: str) -> str:
    return hub_url.rstrip("/") + ENROL_FRAGMENT + normalise_code(code)


@dataclass(frozen=True)
class EnrolmentTicket:
    """What the kiosk needs to enrol: where the hub is (if known) and the code."""

    code: str
    hub_url: str | None = None

    def __repr__(self) -> str:  # the code is a credential until it is used
        return f"EnrolmentTicket(hub_url={self.hub_url!r}, code=<hidden>)"


def parse_ticket(text: str) -> EnrolmentTicket:
    """A QR payload or typed text → ticket. Accepts `<hub>/enrol#code=<CODE>` or a bare code."""
    text = text.strip()
    if ENROL_FRAGMENT in text:
        hub_url, _, code = text.rpartition(ENROL_FRAGMENT)
        check_hub_url(hub_url)
        return EnrolmentTicket(normalise_code(code), hub_url.rstrip("/"))
    if "://" in text or text.upper().startswith("WIFI:"):
        raise BadInput(
            "This QR code is not a Porchlight enrolment code. Show the QR code from the "
            "nurse's enrolment sheet."
        )
    return EnrolmentTicket(normalise_code(text))


def check_hub_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BadInput(
            "The hub address in the enrolment is not an http:// or https:// address. "
            "Print a new enrolment sheet."
        )
    return url.rstrip("/")


# -- the device's key --------------------------------------------------------------------


def proof_message(code: str, public_key: bytes) -> bytes:
    """What the device signs: binds this code to this key (a replay with another key fails)."""
    return PROOF_CONTEXT + normalise_code(code).encode() + b"\n" + public_key


def b64decode(text: str, what: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise BadInput(f"The {what} is not URL-safe base64.") from None


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def verify_proof(code: str, public_key_b64: str, signature_b64: str) -> bytes:
    """The raw public key, if `signature` is its signature of the proof message."""
    public_key = b64decode(public_key_b64, "public key")
    signature = b64decode(signature_b64, "proof")
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise BadInput("The public key must be a raw Ed25519 key (32 bytes).")
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(
            signature, proof_message(code, public_key)
        )
    except (InvalidSignature, ValueError):
        raise BadInput(
            "The device's proof of its key does not check out. Restart the kiosk's setup."
        ) from None
    return public_key
