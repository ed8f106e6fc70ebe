"""kiosk/credential.py: the device credential on disk."""

from __future__ import annotations

import json
import stat

import pytest

from porchlight.errors import BadInput, NotAuthorised
from porchlight.kiosk.credential import (
    CREDENTIAL_FILE,
    DeviceCredential,
    load_credential,
    save_credential,
)

CRED = DeviceCredential(
    hub_url="http://127.0.0.1:8740", device_id="dev-1", patient_id="pat-1", token="s3cr3t-token"
)


def test_round_trip_is_private_and_atomic(tmp_path) -> None:
    path = save_credential(tmp_path, CRED)
    assert path == tmp_path / CREDENTIAL_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_credential(tmp_path) == CRED
    # Atomic: no temp files left beside it.
    assert [p.name for p in tmp_path.iterdir()] == [CREDENTIAL_FILE]
    assert json.loads(path.read_text()) == CRED.to_json()


def test_token_is_never_in_repr() -> None:
    assert "s3cr3t" not in repr(CRED)
    assert "s3cr3t" not in str(CRED)


def test_missing_credential_says_to_set_up(tmp_path) -> None:
    with pytest.raises(NotAuthorised, match="not set up") as err:
        load_credential(tmp_path)
    assert "enrol" in str(err.value)


@pytest.mark.parametrize(
    "content, what",
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"hub_url": "http://h", "device_id": "d", "patient_id": "p"}', "missing token"),
        ('{"hub_url": "ftp://h", "device_id": "d", "patient_id": "p", "token": "t"}', "http"),
    ],
)
def test_damaged_credential_is_a_clear_error_without_secrets(tmp_path, content, what) -> None:
    (tmp_path / CREDENTIAL_FILE).write_text(content)
    with pytest.raises(BadInput, match=what) as err:
        load_credential(tmp_path)
    assert "enrol" in str(err.value)
    assert '"t"' not in str(err.value)


def test_saving_a_bad_credential_changes_nothing(tmp_path) -> None:
    save_credential(tmp_path, CRED)
    with pytest.raises(BadInput):
        save_credential(tmp_path, DeviceCredential("http://h", "", "p", "t"))
    assert load_credential(tmp_path) == CRED
