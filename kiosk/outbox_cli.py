"""`porchlight outbox …`: look at the kiosk's outbox, or record readings from a script or a
peripheral daemon through exactly the validation the check-in screen uses.

    porchlight outbox status
    porchlight outbox add vitals spo2=97 pulse=72
    porchlight outbox add vitals spo2=89 --confirm        # unusual: confirmed by the patient
    porchlight outbox add answers breathing=same pain=no medicines=yes feeling=well

Impossible values are refused (non-zero exit) with what is wrong and the range expected; unusual
ones are refused unless --confirm is given, and are then flagged for the clinician.
The kiosk's sync worker sends what is added here; this command never talks to the hub.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import click

from porchlight.config import default_data_dir
from porchlight.errors import BadInput
from porchlight.kiosk.outbox import OUTBOX_FILE, Outbox, OutboxConfig, new_record_id
from porchlight.kiosk.records import VITALS, NeedsCheck, Record, answers_record, vitals_record
from porchlight.kiosk.sync import current_questionnaire

DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The kiosk's data folder (env: PORCHLIGHT_DATA_DIR).",
)


def _open(data_dir: Path | None) -> tuple[Outbox, Path]:
    folder = data_dir or default_data_dir()
    # Not resuming: the kiosk's own worker owns entries in flight.
    return Outbox.open(OutboxConfig(path=folder / OUTBOX_FILE), now=time.time()), folder


def _patient(folder: Path, patient: str | None) -> str:
    if patient:
        return patient
    from porchlight.kiosk.credential import load_credential

    return load_credential(folder).patient_id


def _pairs(pairs: tuple[str, ...]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise BadInput(f"'{pair}' is not name=value (e.g. pulse=72)")
        out.append((key.strip(), value.strip()))
    if not out:
        raise BadInput("give at least one name=value")
    return out


def _fail(exc: BadInput) -> None:
    findings = getattr(exc, "findings", None)
    lines = [f.message for f in findings] if findings else [str(exc)]
    if isinstance(exc, NeedsCheck):
        lines.append("If the reading is right, run the command again with --confirm.")
    raise click.ClickException("\n".join(lines))


def _save(box: Outbox, record: Record) -> None:
    box.add(record, now=time.time())
    flags = f" (flagged for the clinician: {', '.join(record.flags)})" if record.flags else ""
    click.echo(f"saved {record.kind.value} record {record.id}{flags}")
    if not box.durable:
        click.echo("warning: the outbox is in memory only; this record will not survive", err=True)


@click.group("outbox")
def outbox() -> None:
    """The kiosk's outbox: records kept on the device until the hub has them."""


@outbox.command()
@DATA_DIR
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(data_dir: Path | None, as_json: bool) -> None:
    """Counts by state, the age of the oldest unsent record, and stills still going up."""
    box, _folder = _open(data_dir)
    try:
        st = box.status(time.time())
    finally:
        box.close()
    if as_json:
        click.echo(json.dumps({**st.__dict__, "unsent": st.unsent}, sort_keys=True))
        return
    for state, n in st.counts.items():
        click.echo(f"{state:>8}: {n}")
    age = st.oldest_unsent_age_s
    click.echo("oldest unsent: " + ("none" if age is None else _age(age)))
    if st.stills_pending:
        click.echo(
            f"stills pending: {st.stills_pending} ({_bytes(st.still_bytes_left)} left to upload)"
        )
    if st.faults_waiting:
        click.echo(f"faults waiting to be reported: {st.faults_waiting}")
    if not st.durable:
        click.echo("warning: the outbox file could not be opened; see the kiosk log", err=True)


def _bytes(n: int) -> str:
    for unit, size in (("MB", 1_000_000), ("kB", 1000)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit} ago"
    return f"{seconds:.0f} s ago"


@outbox.group()
def add() -> None:
    """Record vitals or check-in answers (validated like the check-in screen)."""


def _add_options(fn: Callable[..., None]) -> Callable[..., None]:
    for option in reversed(
        (
            click.option(
                "--confirm", is_flag=True, help="Unusual values were checked and are right."
            ),
            click.option(
                "--patient", default=None, help="Patient id (default: the kiosk's credential)."
            ),
            DATA_DIR,
        )
    ):
        fn = option(fn)
    return fn


def _add(data_dir: Path | None, patient: str | None, make: Callable[[Outbox, str], Record]) -> None:
    """Validate with `make(outbox, patient_id)` and save the record, or say what is wrong."""
    box, folder = _open(data_dir)
    try:
        try:
            record = make(box, _patient(folder, patient))
        except BadInput as exc:
            _fail(exc)
        _save(box, record)
    finally:
        box.close()


def _vital_values(readings: tuple[str, ...]) -> dict[str, int | float]:
    values = {}
    for key, text in _pairs(readings):
        if key not in VITALS:
            raise BadInput(f"'{key}' is not a vital sign we record (known: {', '.join(VITALS)})")
        values[key] = VITALS[key].item.parse(text)
    return values


@add.command("vitals")
@click.argument("readings", nargs=-1)
@_add_options
def add_vitals(
    readings: tuple[str, ...], confirm: bool, patient: str | None, data_dir: Path | None
) -> None:
    """READINGS: name=value, names: spo2 pulse systolic diastolic temperature weight resp_rate."""
    _add(
        data_dir,
        patient,
        lambda _box, patient_id: vitals_record(
            _vital_values(readings),
            record_id=new_record_id(),
            patient_id=patient_id,
            now=datetime.now(UTC),
            confirmed=confirm,
        ),
    )


@add.command("answers")
@click.argument("answers", nargs=-1)
@_add_options
def add_answers(
    answers: tuple[str, ...], confirm: bool, patient: str | None, data_dir: Path | None
) -> None:
    """ANSWERS: linkId=value for the patient's check-in (yes/no, a choice code, a number)."""

    def make(box: Outbox, patient_id: str) -> Record:
        questionnaire = current_questionnaire(box)
        values = {key: questionnaire.item(key).parse(text) for key, text in _pairs(answers)}
        return answers_record(
            questionnaire,
            values,
            record_id=new_record_id(),
            patient_id=patient_id,
            now=datetime.now(UTC),
            confirmed=confirm,
        )

    _add(data_dir, patient, make)
