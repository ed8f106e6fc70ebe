"""A clinician's open clinic socket follows their care teams as an admin changes them (in
process, on the two-team world): the new team's help pushes arrive from the moment the admin's
request is answered, the old team's stop, and the room is re-sent as the new teams see it —
all on the same socket, never closed."""

from __future__ import annotations

import uuid

import pytest
from patient.hub_support import clinic, expect, expect_skipping, kiosk, post_records
from security.world import FakeClock, build_world, hub_client

from porchlight.kiosk.records import help_record

# A push that never comes blocks the socket read: fail in 30 s rather than hang.
pytestmark = pytest.mark.timeout(30)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(tmp_path_factory.mktemp("team-changes"))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(world, tmp_path, clock):
    with hub_client(world, tmp_path / "hub", clock) as c:
        yield c


def set_teams(client, world, username: str, teams: list[str]) -> None:
    world.auth(client, "admin")
    answer = client.put(f"/api/admin/people/{username}/teams", json={"teams": teams})
    assert answer.status_code == 200, answer.text


def ask_for_help(client, world, clock, device: str, patient_id: str) -> str:
    record = help_record(record_id=str(uuid.uuid4()), patient_id=patient_id, now=clock())
    (result,) = post_records(client, world, [record], actor=device)
    assert result["status"] == "stored", result
    return record.id


def room(page) -> list[str]:
    """The next waiting-room list on the page's socket: who is in it."""
    return [p["patient_id"] for p in expect(page, "waiting_room")["patients"]]


def test_pushes_and_the_room_follow_a_team_change_at_once(client, world, clock):
    with kiosk(client, world, "device_a") as alice, clinic(client, world, "clin_y") as page:
        alice.send_json({"type": "join"})
        expect(alice, "waiting")
        assert room(page) == []  # Alice (team X) waits; clin_y (team Y) does not see her

        set_teams(client, world, "clin_y", [world.team_x, world.team_y])
        assert room(page) == [world.patient_a]
        asked = ask_for_help(client, world, clock, "device_a", world.patient_a)
        assert expect_skipping(page, "help_request")["record_id"] == asked

        set_teams(client, world, "clin_y", [world.team_y])
        assert room(page) == []
        unheard = ask_for_help(client, world, clock, "device_a", world.patient_a)
        bob = ask_for_help(client, world, clock, "device_b", world.patient_b)
        # Pushes arrive in order: Bob's coming first means Alice's was never pushed.
        pushed = expect_skipping(page, "help_request")
        assert pushed["record_id"] == bob and pushed["record_id"] != unheard
