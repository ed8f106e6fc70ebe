"""Two hub processes on one PostgreSQL deciding one rollout: heartbeats, reports, support's
hand actions and new rollouts hit both at the same moment (threads released by a barrier), and
every decision still follows from the one before it.

The hubs cannot be asked what they decided in between, so the database is: a trigger on the
rollouts table (the test's, installed beside the hub's schema) writes every change of status or
stage to a history table, and each change must be one the policy can make from the state it
replaced. Two instances that decided from the same old state and both wrote show up there as a
change from a state the writer never saw (a halt overwritten by an advance, a stage going back).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import httpx
import pg_support
import psycopg
import pytest
from scale.conftest import HubProcess, launch_hub, wait_ready

from porchlight.hub import auth
from porchlight.hub.seed import DEMO_PASSWORD, ensure_person
from porchlight.hub.store import Role, Store

CANARIES = [f"canary-{i}" for i in range(5)]
OTHERS = [f"device-{i}" for i in range(7)]
ROUNDS = 12
# The pause lands inside the other instance's read-decide-write in only some rounds.
PAUSE_ROUNDS = 36

HISTORY = """
CREATE TABLE rollout_history (
    seq bigserial PRIMARY KEY,
    rollout_id text NOT NULL,
    old_status text NOT NULL,
    old_stage integer NOT NULL,
    new_status text NOT NULL,
    new_stage integer NOT NULL
);
CREATE FUNCTION record_rollout_change() RETURNS trigger AS $$
BEGIN
    INSERT INTO rollout_history (rollout_id, old_status, old_stage, new_status, new_stage)
    VALUES (OLD.id, OLD.status, OLD.stage, NEW.status, NEW.stage);
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER rollout_history AFTER UPDATE ON rollouts FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status OR OLD.stage IS DISTINCT FROM NEW.stage)
    EXECUTE FUNCTION record_rollout_change();
"""


@dataclass
class Instance:
    hub: HubProcess
    support: httpx.Client  # logged in as support
    devices: httpx.Client  # heartbeats (each carries its device's token)


@dataclass
class Cluster:
    a: Instance
    b: Instance
    dsn: str
    tokens: dict[str, str]

    def beat(self, on: Instance, device: str, report: dict[str, Any] | None = None) -> Any:
        """A heartbeat from `device` through `on`; `report` is its last update result."""
        update: dict[str, Any] = {"current": "1.0", "phase": "idle"}
        if report is not None:
            update.update(current=report["version"], last_result=report)
        answer = on.devices.post(
            "/api/fleet/heartbeat",
            json={"update": update},
            headers={"Authorization": f"Bearer {self.tokens[device]}"},
        )
        assert answer.status_code == 200, answer.text
        return answer.json()

    def create(self, on: Instance, version: str, **plan: Any) -> httpx.Response:
        body = {"version": version, "canaries": CANARIES, "stages": [100], **plan}
        return on.support.post("/api/fleet/rollouts", json=body)

    def rows(self) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(
                "SELECT id, status, stage FROM rollouts ORDER BY created, id"
            ).fetchall()

    def open_rollouts(self) -> list[str]:
        return [r[0] for r in self.rows() if r[1] != "superseded"]

    def state(self, rollout_id: str) -> tuple[str, int]:
        return next((status, stage) for rid, status, stage in self.rows() if rid == rollout_id)

    def history(self, rollout_id: str) -> list[tuple[str, int, str, int]]:
        with psycopg.connect(self.dsn) as conn:
            return conn.execute(
                "SELECT old_status, old_stage, new_status, new_stage FROM rollout_history "
                "WHERE rollout_id = %s ORDER BY seq",
                (rollout_id,),
            ).fetchall()


def installed(rollout: dict[str, Any]) -> dict[str, Any]:
    return {"version": rollout["version"], "outcome": "installed", "rollout_id": rollout["id"]}


def rolled_back(rollout: dict[str, Any]) -> dict[str, Any]:
    return {
        "version": rollout["version"],
        "outcome": "rolled_back",
        "reason": "the kiosk did not start",
        "rollout_id": rollout["id"],
    }


def legal(old_status: str, old_stage: int, new_status: str, new_stage: int) -> bool:
    """A change the policy or support (pause, a new rollout) can make from the old state."""
    if new_status == "superseded":
        return new_stage == old_stage
    # Nothing in these tests resumes or rolls back: a stopped rollout stays stopped.
    if old_status != "running":
        return False
    if new_status == "paused":
        return new_stage == old_stage
    return new_stage >= old_stage  # advance (maybe several stages), then halt or finish


def assert_history_legal(cluster: Cluster, rollout_id: str) -> None:
    history = cluster.history(rollout_id)
    wrong = [change for change in history if not legal(*change)]
    assert not wrong, f"changes no decision could make from the state before: {history}"


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run `calls` in threads released together; their results in order (errors re-raised)."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait(timeout=30)
        try:
            results[index] = calls[index]()
        except BaseException as error:  # handed to the test's thread below
            results[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


@pytest.fixture(scope="module")
def cluster(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    url = pg_support.new_database(request)
    store = Store.open(url)
    now = datetime.now(UTC)
    ensure_person(store, "support", "Support Sam", Role.SUPPORT, DEMO_PASSWORD)
    tokens = {}
    for device_id in CANARIES + OTHERS:
        patient = store.add_patient(f"Patient of {device_id}", now=now)
        tokens[device_id] = auth.new_token()
        store.add_device(
            patient.id, auth.hash_token(tokens[device_id]), now=now, device_id=device_id
        )
    store.close()
    name = url.rsplit("/", 1)[1]
    dsn = pg_support.server(request).dsn(name)
    with psycopg.connect(dsn) as conn:
        conn.execute(HISTORY)

    folder = tmp_path_factory.mktemp("hubs")
    hubs = [launch_hub(url, folder), launch_hub(url, folder)]  # both start at once
    with contextlib.ExitStack() as stack:
        for hub in hubs:
            stack.callback(lambda h=hub: h.process.poll() is None and h.kill())
        instances = []
        for hub in hubs:
            wait_ready(hub)
            support = stack.enter_context(httpx.Client(base_url=hub.url, timeout=30))
            login = support.post(
                "/api/login", json={"username": "support", "password": DEMO_PASSWORD}
            )
            assert login.status_code == 200, login.text
            devices = stack.enter_context(httpx.Client(base_url=hub.url, timeout=30))
            instances.append(Instance(hub, support, devices))
        yield Cluster(instances[0], instances[1], dsn, tokens)


# -- heartbeats on both instances ------------------------------------------------------------


@pytest.mark.parametrize("boundary", ["canaries", "last stage"])
def test_a_halt_and_an_advance_decided_at_once_on_two_instances_follow_one_another(
    cluster: Cluster, boundary: str
) -> None:
    """The report that completes a stage goes to one instance while the report that halts it
    goes to the other. Either may win, but the loser decides from the winner's state: a halt is
    never overwritten by the advance, an advance never taken back by a halt at the stage before.
    """
    for round_number in range(ROUNDS):
        if boundary == "canaries":
            # 4 of 5 healthy canaries open the fleet; one failed canary halts.
            plan: dict[str, Any] = {}
            healthy_first, completes, fails = CANARIES[:3], CANARIES[3], CANARIES[4]
        else:
            # The last stage (the 7 others, canaries done): 6 healthy finish the rollout;
            # 1 failure of 6 or 7 reports passes the 10 % threshold.
            plan = {"max_failure_rate": 0.1}
            healthy_first, completes, fails = CANARIES + OTHERS[:5], OTHERS[5], OTHERS[6]
        made = cluster.create(cluster.a, f"2.{round_number}", **plan)
        assert made.status_code == 201, made.text
        rollout = made.json()
        for index, device in enumerate(healthy_first):
            cluster.beat((cluster.a, cluster.b)[index % 2], device, installed(rollout))
        before = cluster.state(rollout["id"])
        assert before == ("running", 0 if boundary == "canaries" else 1)

        at_once(
            partial(cluster.beat, cluster.a, completes, installed(rollout)),
            partial(cluster.beat, cluster.b, fails, rolled_back(rollout)),
        )

        assert_history_legal(cluster, rollout["id"])
        # The failure decided first: halted where it was. The advance: the next stage open,
        # or (from the last stage) done.
        advanced = ("running", 1) if boundary == "canaries" else ("done", 1)
        assert cluster.state(rollout["id"]) in {("halted", before[1]), advanced}


# -- support's hand against automatic evaluation ------------------------------------------------


def test_a_pause_on_one_instance_while_the_other_advances_ends_paused(cluster: Cluster) -> None:
    """Support pauses through instance A while the report that opens the next stage arrives at
    instance B: whichever goes first, the rollout ends paused, at the stage the pause saw."""
    for round_number in range(PAUSE_ROUNDS):
        made = cluster.create(cluster.a, f"3.{round_number}")
        assert made.status_code == 201, made.text
        rollout = made.json()
        for index, device in enumerate(CANARIES[:3]):
            cluster.beat((cluster.a, cluster.b)[index % 2], device, installed(rollout))
        assert cluster.state(rollout["id"]) == ("running", 0)

        paused, _ = at_once(
            partial(cluster.a.support.post, f"/api/fleet/rollouts/{rollout['id']}/pause"),
            partial(cluster.beat, cluster.b, CANARIES[3], installed(rollout)),
        )

        assert paused.status_code == 200, paused.text
        assert paused.json()["status"] == "paused"
        # Nothing moved it after the pause: it is exactly what the pause answered.
        assert cluster.state(rollout["id"]) == ("paused", paused.json()["stage"])
        assert_history_legal(cluster, rollout["id"])


# -- new rollouts ---------------------------------------------------------------------------


def test_two_rollouts_started_at_once_on_two_instances_leave_one_and_refuse_the_other(
    cluster: Cluster,
) -> None:
    """Two support staff start a rollout at the same moment, each on a different instance, each
    replacing the rollout their page showed (or none): one starts, the other is refused with a
    409 that says why, and exactly one rollout is open."""
    with psycopg.connect(cluster.dsn) as conn:
        conn.execute("UPDATE rollouts SET status = 'superseded'")  # start from none open
    seen = None
    for round_number in range(ROUNDS):
        answers = at_once(
            partial(cluster.create, cluster.a, f"4.{round_number}.1", replaces=seen),
            partial(cluster.create, cluster.b, f"4.{round_number}.2", replaces=seen),
        )

        assert sorted(a.status_code for a in answers) == [201, 409], [a.text for a in answers]
        started = next(a for a in answers if a.status_code == 201).json()
        refused = next(a for a in answers if a.status_code == 409).json()
        assert refused["error"] == "conflict"
        assert refused["message"].startswith("Another rollout was started meanwhile")
        assert started["version"] in refused["message"]
        assert cluster.open_rollouts() == [started["id"]]
        seen = started["id"]


def test_two_rollouts_started_at_once_without_saying_what_they_replace_leave_one_open(
    cluster: Cluster,
) -> None:
    """Without `replaces` a new rollout replaces whatever is open, as before: two at once both
    start, one after the other, and the earlier is superseded by the later."""
    for round_number in range(ROUNDS):
        answers = at_once(
            partial(cluster.create, cluster.a, f"5.{round_number}.1"),
            partial(cluster.create, cluster.b, f"5.{round_number}.2"),
        )

        assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
        ids = {a.json()["id"] for a in answers}
        assert len(ids) == 2  # each answered with the rollout it started
        assert len(cluster.open_rollouts()) == 1
        assert set(cluster.open_rollouts()) < ids
