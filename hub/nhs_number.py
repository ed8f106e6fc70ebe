"""NHS numbers: ten digits whose last is a modulus-11 check digit. Pure."""

from __future__ import annotations

from porchlight.errors import BadInput

_WEIGHTS = (10, 9, 8, 7, 6, 5, 4, 3, 2)


def check_digit(first_nine: str) -> int | None:
    """The check digit for nine digits, or None when no valid number starts with them."""
    total = sum(int(d) * w for d, w in zip(first_nine, _WEIGHTS, strict=True))
    digit = 11 - total % 11
    if digit == 11:
        return 0
    return None if digit == 10 else digit


def normalise_nhs_number(text: str) -> str:
    """Ten digits (spaces and dashes allowed as typed: 943 476 5919); BadInput if not valid."""
    digits = "".join(c for c in text if c not in " -")
    if len(digits) != 10 or not digits.isascii() or not digits.isdigit():
        raise BadInput(
            "An NHS number has 10 digits, like 943 476 5919. Check it and type it again."
        )
    if check_digit(digits[:9]) != int(digits[9]):
        raise BadInput(
            "This is not a valid NHS number (its last digit does not match). "
            "Check it on the patient's letter or record."
        )
    return digits


def format_nhs_number(digits: str) -> str:
    return f"{digits[:3]} {digits[3:6]} {digits[6:]}"
