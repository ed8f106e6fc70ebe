"""The store over SQLite, the hub config and the demo seed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from porchlight.errors import BadInput, ConfigError
from porchlight.hub import auth
from porchlight.hub.config import HubConfig, load_config
from porchlight.hub.seed import (
    DEMO_PASSWORD,
    create_device_credential,
    ensure_person,
    seed_demo,
)
from porchlight.hub.store import Role, Store

from .conftest import dump

NOW = datetime(2025, 3, 4, 9, 30, tzinfo=UTC)


@pytest.fixture
def empty_store(empty_database_url):
    store = Store.open(empty_database_url)
    yield store
    store.close()


def test_sqlite_runs_in_wal_with_foreign_keys(empty_store):
    with empty_store.engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
        assert conn.execute(text("PRAGMA busy_timeout")).scalar() == 5000


def test_patients_and_devices_round_trip_with_utc_times(empty_store):
    local = datetime(2025, 3, 4, 10, 30, tzinfo=UTC).astimezone(timezone(timedelta(hours=1)))
    patient = empty_store.add_patient("  Edith Crawley ", now=local)
    assert empty_store.get_patient(patient.id).display_name == "Edith Crawley"
    assert empty_store.get_patient(patient.id).created == local
    assert empty_store.get_patient(patient.id).created.tzinfo is not None

    token_hash = auth.hash_token("token")
    device = empty_store.add_device(patient.id, token_hash, now=NOW)
    found_device, found_patient = empty_store.device_by_token_hash(token_hash)
    assert found_device == device and found_patient.id == patient.id
    assert empty_store.devices_for_patient(patient.id) == [device]


def test_device_needs_a_real_patient_and_a_unique_token(empty_store):
    with pytest.raises(BadInput):
        empty_store.add_device("no-such-patient", auth.hash_token("a"), now=NOW)
    patient = empty_store.add_patient("P", now=NOW)
    empty_store.add_device(patient.id, auth.hash_token("a"), now=NOW)
    with pytest.raises(BadInput):
        empty_store.add_device(patient.id, auth.hash_token("a"), now=NOW)
    with pytest.raises(BadInput):
        empty_store.add_device(patient.id, "not a hash", now=NOW)


def test_touch_device_writes_at_most_once_a_minute(empty_store):
    patient = empty_store.add_patient("P", now=NOW)
    device = empty_store.add_device(patient.id, auth.hash_token("a"), now=NOW)
    empty_store.touch_device(device.id, now=NOW)
    empty_store.touch_device(device.id, now=NOW + timedelta(seconds=30))
    assert empty_store.get_device(device.id).last_seen == NOW
    empty_store.touch_device(device.id, now=NOW + timedelta(seconds=61))
    assert empty_store.get_device(device.id).last_seen == NOW + timedelta(seconds=61)


def test_people_validation(empty_store):
    empty_store.add_person("amy", "Amy", Role.NURSE, "hash", now=NOW)
    for args in (
        ("amy", "Amy again", Role.NURSE),
        ("with space", "X", Role.NURSE),
        ("bob", "   ", Role.NURSE),
        ("bob", "Bob", "surgeon"),
    ):
        before = dump(empty_store)
        with pytest.raises(BadInput):
            empty_store.add_person(*args, "hash", now=NOW)
        assert dump(empty_store) == before


def test_sessions_expire_and_go_with_their_person(empty_store):
    empty_store.add_person("amy", "Amy", Role.CLINICIAN, "hash", now=NOW)
    empty_store.add_session("a" * 64, "amy", now=NOW, expires=NOW + timedelta(hours=1))
    empty_store.add_session("b" * 64, "amy", now=NOW, expires=NOW + timedelta(hours=3))
    session, person = empty_store.get_session("a" * 64)
    assert (session.username, person.role) == ("amy", Role.CLINICIAN)
    assert empty_store.delete_expired_sessions(now=NOW + timedelta(hours=2)) == 1
    assert empty_store.get_session("a" * 64) is None
    assert empty_store.delete_sessions_of("amy") == 1


def test_password_login_and_wrong_password(empty_store):
    ensure_person(empty_store, "amy", "Amy", Role.CLINICIAN, "correct horse")
    token, person = auth.login(empty_store, "amy", "correct horse", now=NOW, ttl_s=60)
    assert person.username == "amy"
    assert auth.authenticate_session(empty_store, token, NOW).username == "amy"
    with pytest.raises(auth.NotAuthorised):
        auth.authenticate_session(empty_store, token, NOW + timedelta(seconds=60))
    with pytest.raises(auth.NotAuthorised):
        auth.login(empty_store, "amy", "wrong horse", now=NOW, ttl_s=60)
    assert "correct horse" not in str(dump(empty_store))


def test_seed_demo_is_idempotent_and_rotates_the_device_token(empty_store):
    first = seed_demo(empty_store)
    before = dump(empty_store)
    second = seed_demo(empty_store)
    assert (first.patient_id, first.device_id) == (second.patient_id, second.device_id)
    assert first.device_token != second.device_token
    after = dump(empty_store)
    assert after["people"] == before["people"] and after["patients"] == before["patients"]
    assert len(after["devices"]) == 1
    with pytest.raises(auth.NotAuthorised):
        auth.authenticate_device(empty_store, f"Bearer {first.device_token}", NOW)
    device = auth.authenticate_device(empty_store, f"Bearer {second.device_token}", NOW)
    assert device.patient_id == second.patient_id and device.display_name == "Margaret Jones"
    roles = {empty_store.get_person(u).role for u in ("clinician", "nurse", "support", "admin")}
    assert roles == set(Role)
    assert second.password == DEMO_PASSWORD
    assert second.device_credential("http://127.0.0.1:8740") == {
        "hub_url": "http://127.0.0.1:8740",
        "device_id": second.device_id,
        "patient_id": second.patient_id,
        "token": second.device_token,
    }


def test_seed_demo_puts_back_a_changed_demo_password(empty_store):
    seed_demo(empty_store)
    empty_store.update_person("clinician", password_hash=auth.hash_password("changed it"))
    seed_demo(empty_store)
    token, _ = auth.login(empty_store, "clinician", DEMO_PASSWORD, now=NOW, ttl_s=60)
    assert token


def test_create_device_credential(empty_store):
    patient = empty_store.add_patient("P", now=NOW)
    device_id, token = create_device_credential(empty_store, patient.id)
    assert auth.authenticate_device(empty_store, f"Bearer {token}", NOW).device_id == device_id
    assert token not in str(dump(empty_store))
    with pytest.raises(BadInput):
        create_device_credential(empty_store, "no-such-patient")


def test_config_defaults_env_and_validation(tmp_path):
    env = {"PORCHLIGHT_DATA_DIR": str(tmp_path), "PORCHLIGHT_HUB_PORT": "9000"}
    config = load_config(env=env)
    assert (config.host, config.port, config.ice_servers) == ("127.0.0.1", 9000, [])
    assert config.data_dir == tmp_path / "hub"
    assert config.resolved_database_url() == f"sqlite:///{tmp_path / 'hub' / 'hub.db'}"
    assert config.ice_server_dicts() == []
    explicit = load_config(env={**env, "PORCHLIGHT_HUB_DATA_DIR": str(tmp_path / "x")})
    assert explicit.data_dir == tmp_path / "x"
    listed = load_config(env={"PORCHLIGHT_HUB_ICE_SERVERS": "stun:a.example:3478,stun:b.example"})
    assert listed.ice_server_dicts() == [
        {"urls": ["stun:a.example:3478"]},
        {"urls": ["stun:b.example"]},
    ]
    for bad in (
        {"ice_servers": ["http://not-ice"]},
        {"ice_servers": ["turn:t.example"]},  # TURN without credentials
        {"port": 70000},
        {"session_ttl_s": 0},
        {"public_url": "ftp://x"},
    ):
        with pytest.raises(ConfigError):
            HubConfig(data_dir=tmp_path, **bad)
