"""The sync policy, pure: batching, backoff with jitter, probing, per-record outcomes."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from porchlight.kiosk.sync_policy import (
    Action,
    Entry,
    EntryStatus,
    LinkState,
    Outcome,
    SyncMachine,
    SyncPolicyConfig,
    backoff_delay,
    choose_batch,
    record_outcome,
)

CFG = SyncPolicyConfig(batch_max_records=5, batch_max_bytes=1000, backoff_cap_s=60)


@given(attempt=st.integers(1, 200), rand=st.floats(0, 1))
def test_property_backoff_is_bounded_grows_and_never_zero(attempt, rand):
    d = backoff_delay(attempt, rand, CFG)
    full = min(CFG.backoff_cap_s, CFG.backoff_base_s * 2 ** (attempt - 1))
    assert full / 2 <= d <= full
    assert d >= CFG.backoff_base_s / 2


def test_backoff_jitter_spreads_a_fleet():
    delays = {round(backoff_delay(6, r / 10, CFG), 3) for r in range(10)}
    assert len(delays) == 10


entries_st = st.lists(
    st.builds(
        Entry,
        seq=st.integers(0, 10_000),
        record_id=st.uuids().map(str),
        patient_id=st.sampled_from(["a", "b", "c"]),
        size=st.integers(1, 600),
        attempts=st.integers(0, 5),
        next_try_at=st.floats(0, 100),
        status=st.sampled_from(list(EntryStatus)),
    ),
    unique_by=lambda e: e.seq,
    max_size=40,
)


@given(entries=entries_st, now=st.floats(0, 100))
def test_property_batches_are_the_oldest_due_within_limits(entries, now):
    batch = choose_batch(entries, now, CFG.batch_max_records, CFG.batch_max_bytes)
    due = sorted(
        (e for e in entries if e.status is EntryStatus.PENDING and e.next_try_at <= now),
        key=lambda e: e.seq,
    )
    assert batch == due[: len(batch)]  # a prefix of the due entries, in order
    if due:
        assert batch, "a due entry is never stranded"
    assert len(batch) <= CFG.batch_max_records
    assert len(batch) == 1 or sum(e.size for e in batch) <= CFG.batch_max_bytes
    for patient in "abc":
        seqs = [e.seq for e in batch if e.patient_id == patient]
        assert seqs == sorted(seqs)


def test_record_outcomes():
    assert record_outcome("stored") is Outcome.ACK
    assert record_outcome("duplicate") is Outcome.ACK
    for held in ("conflict", "invalid", "forbidden"):
        assert record_outcome(held) is Outcome.HOLD
    for unclear in ("error", "", None, 3, "STORED"):
        assert record_outcome(unclear) is Outcome.RETRY


def test_unreachable_hub_is_probed_and_the_next_try_follows_at_once():
    m = SyncMachine(CFG)
    assert m.decide(0, 0) == (Action.SEND, 0)
    m.failed(0, 0.5, reachable=False)
    assert m.state is LinkState.UNREACHABLE and m.next_try_at == 0.75
    assert m.decide(0.1, 0)[0] is Action.PROBE
    m.probed(0.1, reachable=False)
    action, wait = m.decide(0.2, 0)
    assert action is Action.WAIT and 0 < wait <= CFG.probe_interval_s
    for _ in range(6):  # a long outage: the backoff grows to its cap (60 s here)
        m.failed(10, 1.0, reachable=False)
    assert m.failures == 7 and m.next_try_at == 10 + 60
    assert m.decide(11.5, 0)[0] is Action.PROBE
    m.probed(11.5, reachable=True)  # hub is back: send now, not in 30 s
    assert m.decide(11.5, 0) == (Action.SEND, 0)


def test_a_failing_but_reachable_hub_is_not_hammered_by_probes():
    m = SyncMachine(CFG)
    m.failed(0, 0.0, reachable=True)
    action, wait = m.decide(0.1, 0)
    assert action is Action.WAIT and wait > 0.3


def test_a_kick_sends_at_once_and_nothing_due_means_idle():
    m = SyncMachine(CFG)
    for _ in range(5):
        m.failed(0, 0.0, reachable=True)
    m.kicked(1.0)
    assert m.decide(1.0, 0) == (Action.SEND, 0)
    assert m.decide(1.0, None) == (Action.WAIT, CFG.idle_wake_s)
    assert m.decide(1.0, 50.0) == (Action.WAIT, CFG.idle_wake_s)  # a retry due later


def test_a_whole_batch_refused_is_halved_until_the_bad_record_is_alone():
    m = SyncMachine(CFG)
    assert m.batch_limit == 5
    assert not m.refused_whole(5) and m.batch_limit == 2
    assert not m.refused_whole(2) and m.batch_limit == 1
    assert m.refused_whole(1)
    m.sent(0)
    m.sent(0)
    m.sent(0)
    assert m.batch_limit == 5


class OutboxModel(RuleBasedStateMachine):
    """The policy driving a model outbox against a model hub that may fail in every way.

    Invariants: an entry is acked only after the hub stored it; the hub never holds a record
    twice; each patient's records reach the hub in creation order, except around records
    that failed on their own; when the link is good for long enough, everything drains."""

    @initialize()
    def setup(self):
        self.m = SyncMachine(CFG)
        self.now = 0.0
        self.seq = 0
        self.entries: dict[str, Entry] = {}
        self.hub: list[str] = []  # ids in arrival order
        self.hub_set: set[str] = set()
        self.isolated: set[str] = set()
        self.link_up = True
        self.rand = 0.5

    @rule(patient=st.sampled_from("ab"), size=st.integers(1, 400))
    def record(self, patient, size):
        self.seq += 1
        rid = f"r{self.seq}"
        self.entries[rid] = Entry(self.seq, rid, patient, size)

    @rule(up=st.booleans())
    def set_link(self, up):
        self.link_up = up

    @rule(dt=st.floats(0, 120), rand=st.floats(0, 1))
    def tick(self, dt, rand):
        self.now += dt
        self.rand = rand
        pending = [e for e in self.entries.values() if e.status is EntryStatus.PENDING]
        next_due = min((e.next_try_at for e in pending), default=None)
        action, _ = self.m.decide(self.now, next_due)
        if action is Action.PROBE:
            self.m.probed(self.now, reachable=self.link_up)
        elif action is Action.SEND:
            self._send(fail_record=None)

    @rule(which=st.integers(0, 4))
    def send_with_one_record_failing(self, which):
        if self.m.decide(self.now, 0)[0] is Action.SEND:
            self._send(fail_record=which)

    def _send(self, fail_record):
        batch = choose_batch(
            self.entries.values(), self.now, self.m.batch_limit, CFG.batch_max_bytes
        )
        if not batch:
            return
        if not self.link_up:
            self.m.failed(self.now, self.rand, reachable=False)
            return
        for i, e in enumerate(batch):
            if i == fail_record:  # the hub could not store this one: it alone retries
                self.isolated.add(e.record_id)
                delay = backoff_delay(e.attempts + 1, self.rand, CFG)
                self.entries[e.record_id] = Entry(
                    e.seq, e.record_id, e.patient_id, e.size, e.attempts + 1, self.now + delay
                )
                continue
            if e.record_id not in self.hub_set:
                self.hub.append(e.record_id)
                self.hub_set.add(e.record_id)
            self.entries[e.record_id] = Entry(
                e.seq, e.record_id, e.patient_id, e.size, status=EntryStatus.ACKED
            )
        self.m.sent(self.now)

    @invariant()
    def acked_only_if_stored_and_stored_once(self):
        if not hasattr(self, "m"):
            return
        for rid, e in self.entries.items():
            if e.status is EntryStatus.ACKED:
                assert rid in self.hub_set
        assert len(self.hub) == len(self.hub_set)

    @invariant()
    def per_patient_order(self):
        if not hasattr(self, "m"):
            return
        for patient in "ab":
            seqs = [
                self.entries[r].seq
                for r in self.hub
                if self.entries[r].patient_id == patient and r not in self.isolated
            ]
            assert seqs == sorted(seqs)

    def teardown(self):
        if not hasattr(self, "m"):
            return
        # A good link for long enough drains everything.
        self.link_up = True
        for _ in range(200):
            self.now += CFG.backoff_cap_s + 1
            self.m.kicked(self.now)
            self._send(fail_record=None)
        assert all(e.status is EntryStatus.ACKED for e in self.entries.values())


TestOutboxModel = OutboxModel.TestCase
TestOutboxModel.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
