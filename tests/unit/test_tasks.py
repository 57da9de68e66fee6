"""The task tracker: scripted event lists (no sleeps, no clock) and hypothesis fuzzing."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hawatch.core.events import (
    BrokerConnected,
    BrokerDisconnected,
    SentinelMessage,
    TaskEvent,
    WorkerEvent,
)
from hawatch.core.tasks import (
    FINAL_STATES,
    PENDING_STATES,
    TASK_STATES,
    TasksSnapshot,
    TaskTracker,
)


def task(ts: Any, state: Any, uuid: Any = "t1", **fields: Any) -> TaskEvent:
    return TaskEvent(ts=ts, state=state, uuid=uuid, **fields)


def worker(ts: Any, kind: Any, hostname: Any = "w1", **fields: Any) -> WorkerEvent:
    return WorkerEvent(ts=ts, kind=kind, hostname=hostname, **fields)


def feed(tracker: TaskTracker, *events: Any) -> TaskTracker:
    for event in events:
        tracker.apply(event)
    return tracker


def state_of(tracker: TaskTracker, uuid: str = "t1") -> str | None:
    view = tracker.get(uuid)
    return view.state if view else None


# -- the life of a task ------------------------------------------------------------


def test_a_task_is_pending_until_it_starts_and_records_each_phase() -> None:
    tracker = TaskTracker()
    tracker.apply(task(100.0, "sent", name="app.add", queue="celery"))
    snap = tracker.snapshot(101.0)
    assert snap.pending == 1
    [pending] = snap.oldest_pending
    assert (pending.uuid, pending.name, pending.state, pending.queue) == (
        "t1",
        "app.add",
        "sent",
        "celery",
    )
    assert pending.worker is None
    assert pending.age == 1.0
    tracker.apply(task(102.0, "received", worker="w1"))
    [pending] = tracker.snapshot(103.0).oldest_pending
    assert (pending.state, pending.worker, pending.since, pending.age) == (
        "received",
        "w1",
        100.0,
        3.0,
    )
    feed(tracker, task(104.0, "started", worker="w1"), task(105.0, "succeeded", runtime=0.9))
    snap = tracker.snapshot(106.0)
    assert snap.pending == 0
    assert snap.counts["succeeded"] == 1
    assert snap.tracked == 1
    view = tracker.get("t1")
    assert view is not None
    assert (view.sent_at, view.received_at, view.started_at, view.finished_at) == (
        100.0,
        102.0,
        104.0,
        105.0,
    )
    assert (view.name, view.worker, view.queue, view.runtime) == ("app.add", "w1", "celery", 0.9)
    assert view.pending_since is None
    assert view.completions == 1
    assert snap.totals["sent"] == snap.totals["started"] == 1


def test_counts_by_state_follow_the_tasks() -> None:
    tracker = feed(
        TaskTracker(),
        task(1, "sent", "a"),
        task(1, "received", "b"),
        task(1, "started", "c"),
        task(1, "failed", "d", exception="ValueError('x')"),
        task(1, "revoked", "e"),
        task(1, "rejected", "f"),
    )
    snap = tracker.snapshot(2)
    expected = dict.fromkeys(TASK_STATES, 0)
    expected.update(sent=1, received=1, started=1, failed=1, revoked=1, rejected=1)
    assert dict(snap.counts) == expected
    assert snap.pending == 2
    assert snap.tracked == 6
    d = tracker.get("d")
    assert d is not None and d.exception == "ValueError('x')"


# -- out of order ---------------------------------------------------------------------


def test_started_before_received_does_not_go_back_to_received() -> None:
    tracker = feed(TaskTracker(), task(1, "started", worker="w1"), task(2, "received"))
    assert state_of(tracker) == "started"
    view = tracker.get("t1")
    assert view is not None and view.received_at == 2
    assert tracker.snapshot(3).pending == 0


def test_a_late_received_after_succeeded_is_recorded_but_the_task_stays_finished() -> None:
    tracker = feed(TaskTracker(), task(1, "succeeded"), task(2, "received"), task(3, "started"))
    assert state_of(tracker) == "succeeded"
    snap = tracker.snapshot(4)
    assert snap.pending == 0
    assert snap.counts["succeeded"] == 1 and snap.counts["received"] == 0


def test_a_late_sent_keeps_the_queue_and_the_state() -> None:
    tracker = feed(TaskTracker(), task(1, "received", worker="w1"), task(2, "sent", queue="q"))
    view = tracker.get("t1")
    assert view is not None
    assert (view.state, view.queue, view.worker, view.sent_at) == ("received", "q", "w1", 2)


@pytest.mark.parametrize("final", sorted(FINAL_STATES))
@pytest.mark.parametrize("late", ["sent", "received", "started", "retried"])
def test_no_event_leaves_a_final_state(final: str, late: str) -> None:
    tracker = feed(TaskTracker(), task(1, final), task(2, late))
    assert state_of(tracker) == final


def test_a_completion_replaces_revoked_but_not_the_other_way_round() -> None:
    tracker = feed(TaskTracker(), task(1, "revoked"), task(2, "succeeded"))
    assert state_of(tracker) == "succeeded"
    tracker = feed(TaskTracker(), task(1, "succeeded"), task(2, "revoked"))
    assert state_of(tracker) == "succeeded"
    tracker = feed(TaskTracker(), task(1, "rejected"), task(2, "failed"))
    assert state_of(tracker) == "failed"


def test_retried_makes_the_task_pending_again_until_the_next_attempt_starts() -> None:
    tracker = feed(
        TaskTracker(),
        task(1, "received", retries=0),
        task(2, "started"),
        task(3, "retried", exception="Retry"),
    )
    snap = tracker.snapshot(4)
    assert state_of(tracker) == "retried"
    assert snap.pending == 1
    [pending] = snap.oldest_pending
    assert pending.since == 3 and pending.state == "retried"
    tracker.apply(task(5, "received", retries=1))
    assert state_of(tracker) == "received"
    tracker.apply(task(6, "started"))
    assert state_of(tracker) == "started"
    tracker.apply(task(7, "succeeded"))
    assert tracker.snapshot(8).duplicated == 0


def test_a_late_event_of_an_earlier_attempt_is_ignored_for_the_state() -> None:
    tracker = feed(
        TaskTracker(),
        task(1, "received", retries=1),
        task(2, "started"),
        task(3, "received", retries=0),
    )
    assert state_of(tracker) == "started"
    tracker = feed(TaskTracker(), task(1, "retried"), task(2, "received", retries=2))
    tracker.apply(task(3, "sent", retries=1))
    view = tracker.get("t1")
    assert view is not None and (view.state, view.retries) == ("received", 2)


def test_a_retried_task_goes_to_the_back_of_the_pending_line() -> None:
    tracker = feed(
        TaskTracker(), task(1, "received", "a"), task(2, "received", "b"), task(3, "retried", "a")
    )
    assert [p.uuid for p in tracker.snapshot(4).oldest_pending] == ["b", "a"]


# -- duplicates -----------------------------------------------------------------------


def test_a_task_that_completes_twice_is_duplicated_once() -> None:
    tracker = feed(
        TaskTracker(),
        task(1, "succeeded", "a", worker="w1"),
        task(2, "succeeded", "a", worker="w2"),
        task(3, "succeeded", "a", worker="w1"),
        task(4, "succeeded", "b"),
        task(5, "failed", "c"),
        task(6, "succeeded", "c"),
    )
    snap = tracker.snapshot(7)
    assert snap.duplicated == 2
    assert snap.duplicated_ids == ("a", "c")
    assert (snap.counts["succeeded"], snap.counts["failed"]) == (2, 1)  # the first completion
    a = tracker.get("a")
    assert a is not None and a.completions == 3


def test_revoked_then_succeeded_is_not_a_duplicate() -> None:
    snap = feed(TaskTracker(), task(1, "revoked"), task(2, "succeeded")).snapshot(3)
    assert snap.duplicated == 0


# -- malformed ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "event",
    [
        task(1, "received", uuid=None),
        task(1, "received", uuid=""),
        task(1, "received", uuid=42),
        task(1, "exploded"),
        task(1, ["started"]),  # unhashable
        task("yesterday", "received"),
        task(float("nan"), "received"),
        task(float("inf"), "received"),
        task(True, "received"),
        task(10**400, "received"),
        task(1, "received", name=3),
        task(1, "received", worker=b"w1"),
        task(1, "succeeded", runtime="fast"),
        task(1, "succeeded", runtime=float("nan")),
        task(1, "received", retries="1"),
        task(1, "received", retries=True),
        task(1, "received", clock={}),
        task(1, "succeeded", runtime=10**400),
        worker(1, "online", hostname=None),
        worker(1, "dancing"),
        worker(1, "heartbeat", freq=0),
        worker(1, "heartbeat", freq="2"),
        worker(1, "heartbeat", active=1.5),
        worker(None, "heartbeat"),
        BrokerDisconnected(ts="x", source="celery-events", reason="r"),  # type: ignore[arg-type]
        {"type": "task-received", "uuid": "t1"},
        None,
        "task-received",
    ],
)
def test_malformed_input_is_counted_and_ignored_never_raised(event: Any) -> None:
    tracker = TaskTracker()
    tracker.apply(event)
    snap = tracker.snapshot(10)
    assert snap.malformed == 1
    assert snap.tracked == 0 and snap.workers == () and sum(snap.totals.values()) == 0


def test_other_events_are_ignored_without_being_malformed() -> None:
    tracker = TaskTracker()
    tracker.apply(SentinelMessage(ts=1, sentinel="s:1", channel="+sdown", payload="x"))
    assert tracker.snapshot(2).malformed == 0


# -- bounds and eviction --------------------------------------------------------------------


def test_the_oldest_finished_tasks_are_evicted_first_then_running_then_pending() -> None:
    tracker = TaskTracker(max_tasks=3)
    feed(
        tracker,
        task(1, "received", "p1"),
        task(2, "succeeded", "f1"),
        task(3, "started", "r1"),
        task(4, "received", "p2"),  # evicts f1
    )
    snap = tracker.snapshot(5)
    assert tracker.get("f1") is None
    assert (snap.tracked, snap.evicted, snap.evicted_pending) == (3, 1, 0)
    tracker.apply(task(5, "received", "p3"))  # evicts r1 (the only non-pending)
    assert tracker.get("r1") is None
    tracker.apply(task(6, "received", "p4"))  # all pending: evicts the oldest, p1
    snap = tracker.snapshot(7)
    assert tracker.get("p1") is None
    assert [p.uuid for p in snap.oldest_pending] == ["p2", "p3", "p4"]
    assert (snap.tracked, snap.evicted, snap.evicted_pending) == (3, 3, 1)
    assert snap.tasks_seen == 6
    assert sum(snap.counts.values()) == 3


def test_an_update_to_a_tracked_task_evicts_nothing() -> None:
    tracker = feed(TaskTracker(max_tasks=2), task(1, "received", "a"), task(1, "received", "b"))
    feed(tracker, task(2, "started", "a"), task(3, "succeeded", "a"), task(3, "succeeded", "b"))
    assert tracker.snapshot(4).evicted == 0


def test_pending_tasks_survive_a_flood_of_finished_ones() -> None:
    tracker = TaskTracker(max_tasks=10)
    tracker.apply(task(0, "sent", "stuck"))
    for n in range(1000):
        tracker.apply(task(1 + n, "succeeded", f"done-{n}"))
    snap = tracker.snapshot(2000)
    assert [p.uuid for p in snap.oldest_pending] == ["stuck"]
    assert snap.tracked == 10 and snap.evicted == 991 and snap.evicted_pending == 0


def test_bad_bounds_are_refused() -> None:
    with pytest.raises(ValueError):
        TaskTracker(max_tasks=0)
    with pytest.raises(ValueError):
        TaskTracker(window=0.5)


# -- snapshot: oldest pending, the fault ---------------------------------------------------


def test_the_oldest_pending_come_first_and_limit_bounds_the_list() -> None:
    tracker = TaskTracker()
    for n in range(100):
        tracker.apply(task(float(n), "sent", f"t{n}"))
    snap = tracker.snapshot(200.0, limit=5)
    assert [p.uuid for p in snap.oldest_pending] == ["t0", "t1", "t2", "t3", "t4"]
    assert snap.pending == 100
    assert snap.pending_at_fault is None
    assert not any(p.before_fault for p in snap.oldest_pending)


def test_tasks_pending_when_the_fault_began_are_marked_and_counted() -> None:
    tracker = TaskTracker()
    for n in range(10):
        tracker.apply(task(float(n), "received", f"t{n}", worker="w1"))
    tracker.apply(task(10, "started", "t2"))  # t2 was pending at the fault but started since
    tracker.apply(task(11, "retried", "t3"))  # pending again, but only since 11
    snap = tracker.snapshot(20.0, limit=3, fault_at=4.5)
    # pending at 4.5 and still pending: t0, t1, t4 (not t2: started; not t3: pending since 11)
    assert snap.pending_at_fault == 3
    assert [(p.uuid, p.before_fault) for p in snap.oldest_pending] == [
        ("t0", True),
        ("t1", True),
        ("t4", True),
    ]
    snap = tracker.snapshot(20.0, limit=10, fault_at=4.5)
    assert [p.uuid for p in snap.oldest_pending if p.before_fault] == ["t0", "t1", "t4"]
    assert [p.uuid for p in snap.oldest_pending][3:] == ["t5", "t6", "t7", "t8", "t9", "t3"]


def test_the_count_pending_at_the_fault_follows_events_and_a_new_fault_time() -> None:
    tracker = TaskTracker(max_tasks=4)
    for n in range(4):
        tracker.apply(task(float(n), "sent", f"t{n}"))
    assert tracker.snapshot(10, fault_at=1.5).pending_at_fault == 2  # t0, t1
    tracker.apply(task(11, "started", "t0"))
    assert tracker.snapshot(12, fault_at=1.5).pending_at_fault == 1
    tracker.apply(task(12, "retried", "t0"))  # pending again, but since 12
    tracker.apply(task(13, "retried", "t1"))  # t1 pending since 13 now
    assert tracker.snapshot(14, fault_at=1.5).pending_at_fault == 0
    tracker.apply(task(14, "received", "t4"))  # full, all pending: evicts t2
    snap = tracker.snapshot(15, fault_at=3.0)
    assert snap.pending_at_fault == 1  # t3
    assert snap.oldest_pending[0].uuid == "t3" and snap.oldest_pending[0].before_fault
    assert tracker.snapshot(15).pending_at_fault is None


def test_the_snapshot_is_frozen_and_does_not_change_with_the_tracker() -> None:
    tracker = feed(TaskTracker(), task(1, "received"))
    snap = tracker.snapshot(2)
    tracker.apply(task(3, "started"))
    assert snap.counts["received"] == 1 and snap.pending == 1
    with pytest.raises(AttributeError):
        snap.pending = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        snap.counts["received"] = 0  # type: ignore[index]


# -- throughput ---------------------------------------------------------------------------


def test_throughput_counts_started_and_succeeded_over_the_window() -> None:
    tracker = TaskTracker(window=10.0)
    for n in range(50):  # 5 per second from t=100 to t=109.8
        tracker.apply(task(100 + n * 0.2, "started", f"t{n}"))
        tracker.apply(task(100 + n * 0.2 + 0.1, "succeeded", f"t{n}"))
    snap = tracker.snapshot(109.9)
    assert snap.started_per_s == 5.0 and snap.succeeded_per_s == 5.0
    snap = tracker.snapshot(114.5)  # seconds 105..114: half of them
    assert snap.started_per_s == 2.5
    snap = tracker.snapshot(200)
    assert snap.started_per_s == 0.0 and snap.succeeded_per_s == 0.0
    assert snap.window == 10.0


def test_throughput_memory_is_a_fixed_ring() -> None:
    tracker = TaskTracker(window=3.0)
    for n in range(10_000):
        tracker.apply(task(float(n), "started", f"t{n}"))
    assert len(tracker._sec) == 5
    assert tracker.snapshot(9999.5).started_per_s == 1.0


def test_an_event_older_than_the_ring_does_not_clobber_newer_buckets() -> None:
    tracker = feed(TaskTracker(window=2.0), task(100, "started", "a"), task(96, "started", "b"))
    assert tracker.snapshot(100.5).started_per_s == 0.5


# -- workers --------------------------------------------------------------------------------


def test_a_worker_is_online_until_its_heartbeats_stop_for_2_freq_plus_1() -> None:
    tracker = feed(
        TaskTracker(),
        worker(100, "online", freq=2.0, active=0, processed=0),
        worker(102, "heartbeat", freq=2.0, active=3, processed=7),
    )
    [view] = tracker.snapshot(107.0).workers
    assert (view.hostname, view.online, view.reason) == ("w1", True, "ok")
    assert (view.last_heartbeat, view.heartbeat_age, view.active, view.processed) == (
        102,
        5.0,
        3,
        7,
    )
    [view] = tracker.snapshot(107.01).workers
    assert (view.online, view.reason) == (False, "heartbeat lost")
    tracker.apply(worker(108, "heartbeat"))
    [view] = tracker.snapshot(108.5).workers
    assert view.online and view.freq == 2.0 and view.processed == 7


def test_worker_offline_event_and_back() -> None:
    tracker = feed(TaskTracker(), worker(1, "online", freq=5.0), worker(2, "offline"))
    [view] = tracker.snapshot(2.5).workers
    assert (view.online, view.reason) == (False, "worker-offline")
    tracker.apply(worker(3, "online"))
    assert tracker.snapshot(3.5).workers[0].online


def test_task_events_from_a_worker_keep_it_alive_but_are_not_heartbeats() -> None:
    tracker = feed(
        TaskTracker(), worker(100, "online", freq=2.0), task(110, "started", worker="w1")
    )
    [view] = tracker.snapshot(112).workers
    assert view.online and view.last_heartbeat == 100 and view.last_seen == 110
    assert tracker.snapshot(116).workers[0].reason == "heartbeat lost"


def test_a_worker_without_freq_is_assumed_to_beat_every_2_s() -> None:
    tracker = feed(TaskTracker(), worker(0, "heartbeat"))
    assert tracker.snapshot(5.0).workers[0].online
    assert not tracker.snapshot(5.1).workers[0].online


def test_workers_are_listed_by_hostname() -> None:
    tracker = feed(TaskTracker(), worker(1, "online", "b"), worker(1, "online", "a"))
    assert [w.hostname for w in tracker.snapshot(2).workers] == ["a", "b"]


# -- blind windows --------------------------------------------------------------------------


def test_blind_windows_are_recorded() -> None:
    tracker = feed(
        TaskTracker(),
        BrokerDisconnected(ts=10, source="celery-events", reason="connection refused"),
        BrokerDisconnected(ts=11, source="celery-events", reason="again"),
        BrokerDisconnected(ts=12, source="queues", reason="timeout"),
        BrokerConnected(ts=15, source="celery-events", address="127.0.0.1:6380"),
        BrokerConnected(ts=16, source="canary"),  # was never down: nothing
    )
    windows = tracker.snapshot(20).blind_windows
    assert [(w.source, w.start, w.end, w.reason) for w in windows] == [
        ("celery-events", 10, 15, "connection refused"),
        ("queues", 12, None, "timeout"),
    ]


# -- fuzzing ----------------------------------------------------------------------------------

_UUIDS = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h"])
_ANY = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.integers(),
    st.just(10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=1),
)
# Small whole seconds mostly, so that times collide and compare with the fault time.
_TIME = st.one_of(st.integers(0, 40).map(float), st.floats(0, 1000))

_good_task = st.builds(
    TaskEvent,
    ts=_TIME,
    state=st.sampled_from(TASK_STATES),
    uuid=_UUIDS,
    name=st.sampled_from([None, "app.add", "app.mul"]),
    worker=st.sampled_from([None, "w1", "w2"]),
    queue=st.sampled_from([None, "celery"]),
    retries=st.one_of(st.none(), st.integers(0, 3)),
    runtime=st.one_of(st.none(), st.floats(0, 10)),
)
_bad_task = st.builds(
    TaskEvent,
    ts=st.one_of(_TIME, _ANY),
    state=st.one_of(st.sampled_from(TASK_STATES), _ANY),
    uuid=st.one_of(_UUIDS, _ANY),
    name=_ANY,
    worker=_ANY,
    queue=_ANY,
    retries=_ANY,
    runtime=_ANY,
    exception=_ANY,
    clock=_ANY,
)
_good_worker = st.builds(
    WorkerEvent,
    ts=_TIME,
    kind=st.sampled_from(["online", "heartbeat", "offline"]),
    hostname=st.sampled_from(["w1", "w2"]),
    freq=st.one_of(st.none(), st.floats(0.5, 5)),
    active=st.one_of(st.none(), st.integers(0, 4)),
)
_bad_worker = st.builds(
    WorkerEvent,
    ts=st.one_of(_TIME, _ANY),
    kind=st.one_of(st.sampled_from(["online", "heartbeat", "offline"]), _ANY),
    hostname=st.one_of(st.sampled_from(["w1", "w2"]), _ANY),
    active=_ANY,
    processed=_ANY,
    freq=_ANY,
    clock=_ANY,
)
_broker = st.one_of(
    st.builds(BrokerDisconnected, ts=_TIME, source=st.sampled_from(["a", "b"]), reason=st.text()),
    st.builds(BrokerConnected, ts=_TIME, source=st.sampled_from(["a", "b"])),
)
_events = st.lists(
    st.one_of(
        _good_task, _good_task, _good_task, _bad_task, _good_worker, _bad_worker, _broker, _ANY
    ),
    max_size=100,
)


def check_consistent(
    tracker: TaskTracker, snap: TasksSnapshot, max_tasks: int, fault_at: float | None = None
) -> None:
    assert all(count >= 0 for count in snap.counts.values())
    assert sum(snap.counts.values()) == snap.tracked == len(tracker) <= max_tasks
    assert snap.pending == sum(snap.counts[s] for s in PENDING_STATES)
    assert all(p.state in PENDING_STATES for p in snap.oldest_pending)
    for pending in snap.oldest_pending:
        view = tracker.get(pending.uuid)
        assert view is not None and view.state not in FINAL_STATES
    assert len({p.uuid for p in snap.oldest_pending}) == len(snap.oldest_pending)
    assert snap.tasks_seen == snap.tracked + snap.evicted
    assert 0 <= snap.evicted_pending <= snap.evicted
    assert snap.duplicated >= len(snap.duplicated_ids)
    assert snap.started_per_s >= 0 and snap.succeeded_per_s >= 0
    assert all(w.heartbeat_age is None or w.heartbeat_age >= 0 for w in snap.workers)
    marks = [p.before_fault for p in snap.oldest_pending]
    assert marks == sorted(marks, reverse=True)  # pending at the fault first
    if snap.pending_at_fault is not None:
        assert sum(marks) <= snap.pending_at_fault <= snap.pending
        assert fault_at is not None
        # the oracle: count them all (the tracker keeps the count up to date instead)
        expected = sum(
            1
            for task in tracker._tiers[0].values()
            if task.pending_since is not None and task.pending_since <= fault_at
        )
        assert snap.pending_at_fault == expected


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events=_events, max_tasks=st.integers(1, 6), now=_TIME, fault_at=st.one_of(st.none(), _TIME))
def test_fuzz_never_raises_and_stays_consistent(
    events: list[Any], max_tasks: int, now: float, fault_at: float | None
) -> None:
    tracker = TaskTracker(max_tasks=max_tasks, window=3.0)
    for event in events:
        tracker.apply(event)
        snap = tracker.snapshot(now, limit=3, fault_at=fault_at)
        check_consistent(tracker, snap, max_tasks, fault_at)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(st.one_of(_good_task, _good_worker), min_size=20, max_size=150),
    max_tasks=st.integers(1, 8),
    fault_at=st.integers(0, 40).map(float),
)
def test_fuzz_long_valid_streams_stay_consistent(
    events: list[Any], max_tasks: int, fault_at: float
) -> None:
    tracker = TaskTracker(max_tasks=max_tasks, window=3.0)
    for event in events:
        tracker.apply(event)
        snap = tracker.snapshot(50.0, limit=4, fault_at=fault_at)
        check_consistent(tracker, snap, max_tasks, fault_at)
    assert snap.malformed == 0


@settings(max_examples=200, deadline=None)
@given(data=st.data(), n=st.integers(1, 6))
def test_fuzz_any_order_of_one_task_never_leaves_a_final_state(data: Any, n: int) -> None:
    states = data.draw(st.lists(st.sampled_from(TASK_STATES), min_size=1, max_size=n))
    order = data.draw(st.permutations(states))
    tracker = TaskTracker()
    seen_final = False
    for index, state in enumerate(order):
        tracker.apply(task(float(index), state))
        current = state_of(tracker)
        seen_final = seen_final or state in FINAL_STATES
        if seen_final:
            assert current in FINAL_STATES
    completions = sum(1 for s in order if s in ("succeeded", "failed"))
    assert tracker.snapshot(100).duplicated == (1 if completions >= 2 else 0)


@settings(max_examples=100, deadline=None)
@given(
    lifecycles=st.lists(
        st.lists(st.sampled_from(["sent", "received", "started", "succeeded"]), max_size=4),
        max_size=20,
    ),
    seed=st.randoms(use_true_random=False),
)
def test_fuzz_interleaved_tasks_match_a_reference_count(
    lifecycles: list[list[str]], seed: Any
) -> None:
    events = [(uuid, state) for uuid, states in enumerate(lifecycles) for state in states]
    seed.shuffle(events)
    tracker = TaskTracker()
    for index, (uuid, state) in enumerate(events):
        tracker.apply(task(float(index), state, f"t{uuid}"))
    rank = {"sent": 0, "received": 1, "started": 2, "succeeded": 3}
    expected: dict[str, int] = dict.fromkeys(TASK_STATES, 0)
    for states in lifecycles:
        if not states:
            continue
        # the furthest state seen wins, whatever the order
        expected[max(states, key=rank.__getitem__)] += 1
    snap = tracker.snapshot(1000)
    assert dict(snap.counts) == expected
