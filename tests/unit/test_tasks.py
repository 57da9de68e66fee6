"""The task tracker: scripted event lists (no sleeps, no clock) and hypothesis fuzzing."""

from __future__ import annotations

import math
from dataclasses import dataclass
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
    for lost_after in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            TaskTracker(lost_after=lost_after)
    assert TaskTracker(lost_after=0).lost_after == 0.0


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


# -- lost after a switch ----------------------------------------------------------------------


def crash_and_switch(tracker: TaskTracker) -> TaskTracker:
    """A task runs, another is sent to the old master and dies with it; switch at 110."""
    return feed(
        tracker,
        task(100.0, "sent", "early", queue="celery"),
        task(100.5, "received", "early", worker="w1"),
        task(101.0, "started", "early", worker="w1"),
        task(101.5, "succeeded", "early", worker="w1"),
        task(102.0, "sent", "doomed", queue="celery", name="app.add"),
        # the master crashes at 103 before "doomed" is replicated or fetched
    )


def test_a_task_sent_before_the_crash_and_never_received_is_lost_after_resume_and_lost_after() -> (
    None
):
    tracker = crash_and_switch(TaskTracker(lost_after=30.0))
    snap = tracker.snapshot(108.0)
    assert (snap.switched_at, snap.resumed_at, snap.lost, snap.lost_after) == (None, None, 0, 30.0)
    tracker.note_switch(110.0)
    tracker.apply(task(109.5, "started", "late-news"))  # a started event from before the switch
    tracker.apply(task(111.0, "sent", "next", queue="celery"))
    # the election is over, nothing runs yet: pending, not lost, however long it lasts
    snap = tracker.snapshot(200.0)
    assert (snap.switched_at, snap.resumed_at, snap.lost, snap.pending) == (110.0, None, 0, 2)
    assert not any(p.lost for p in snap.oldest_pending)
    feed(
        tracker,
        task(119.0, "received", "next", worker="w1"),  # "next" overtook "doomed" ...
        task(120.0, "started", "next", worker="w1"),  # ... and work resumed
    )
    snap = tracker.snapshot(149.9)  # resumed, but not lost_after yet
    assert (snap.resumed_at, snap.lost, snap.lost_tasks) == (120.0, 0, ())
    snap = tracker.snapshot(150.0)
    assert snap.lost == 1 and snap.pending == 1
    [lost] = snap.lost_tasks
    assert (lost.uuid, lost.state, lost.name, lost.queue, lost.since, lost.lost) == (
        "doomed",
        "sent",
        "app.add",
        "celery",
        102.0,
        True,
    )
    assert lost.age == 48.0
    [pending] = snap.oldest_pending
    assert pending.uuid == "doomed" and pending.lost
    # the same task, pending at the fault and lost
    snap = tracker.snapshot(150.5, fault_at=103.0)
    assert snap.lost_tasks[0].before_fault and snap.lost_tasks[0].lost


def test_a_backlog_still_draining_in_order_is_not_lost() -> None:
    tracker = TaskTracker(lost_after=5.0)
    for n in range(10):  # a long backlog on "celery", sent before the crash
        tracker.apply(task(100.0 + n, "sent", f"b{n}", queue="celery"))
    tracker.note_switch(110.0)
    feed(tracker, task(111.0, "received", "b0"), task(112.0, "started", "b0"))  # resumed at 112
    snap = tracker.snapshot(200.0)
    assert (snap.resumed_at, snap.pending, snap.lost) == (112.0, 9, 0)
    feed(tracker, task(201.0, "started", "b1"), task(202.0, "succeeded", "b1"))
    snap = tracker.snapshot(203.0)
    assert (snap.pending, snap.lost) == (8, 0)  # still in order: b2 is next in the queue
    # b5 runs ahead of b2..b4: those three were not waiting ahead of it, they are lost
    tracker.apply(task(204.0, "received", "b5"))
    snap = tracker.snapshot(205.0)
    assert snap.lost == 3
    assert [p.uuid for p in snap.lost_tasks] == ["b2", "b3", "b4"]
    assert [p.uuid for p in snap.oldest_pending if p.lost] == ["b2", "b3", "b4"]
    assert not any(p.lost for p in snap.oldest_pending if p.uuid not in ("b2", "b3", "b4"))


def test_a_lost_task_that_is_then_received_is_no_longer_lost() -> None:
    tracker = TaskTracker(lost_after=10.0)
    for n in range(4):
        tracker.apply(task(100.0 + n, "sent", f"t{n}", queue="q"))
    tracker.note_switch(110.0)
    feed(tracker, task(111.0, "sent", "new", queue="q"), task(112.0, "started", "new"))
    snap = tracker.snapshot(122.0)
    assert [p.uuid for p in snap.lost_tasks] == ["t0", "t1", "t2", "t3"]
    # within the same second of `now`: leaving is seen at once, the walk is not redone
    tracker.apply(task(122.1, "received", "t1", worker="w1"))
    tracker.apply(task(122.2, "started", "t0", worker="w1"))
    tracker.apply(task(122.3, "retried", "t3"))  # queued again: pending, not "sent", not lost
    snap = tracker.snapshot(122.5)
    assert snap.lost == 1 and [p.uuid for p in snap.lost_tasks] == ["t2"]
    [received] = [p for p in snap.oldest_pending if p.uuid == "t1"]
    assert received.state == "received" and not received.lost
    assert tracker.snapshot(130.0).lost == 1  # and the next walk agrees


def test_an_evicted_lost_task_is_no_longer_counted() -> None:
    tracker = TaskTracker(max_tasks=3, lost_after=0.0)
    feed(tracker, task(100.0, "sent", "a", queue="q"), task(101.0, "sent", "b", queue="q"))
    tracker.note_switch(110.0)
    tracker.apply(task(111.0, "sent", "c", queue="q"))
    tracker.apply(task(112.0, "started", "c"))
    assert tracker.snapshot(112.5).lost == 2
    tracker.apply(task(112.6, "sent", "d", queue="q"))  # full: evicts c (running), keeps a, b
    tracker.apply(task(112.7, "sent", "e", queue="q"))  # all pending now: evicts a
    snap = tracker.snapshot(112.8)
    assert tracker.get("a") is None
    assert snap.lost == 1 and [p.uuid for p in snap.lost_tasks] == ["b"]


def test_a_task_becoming_lost_is_found_by_the_next_walk_at_most_a_second_later() -> None:
    tracker = TaskTracker(lost_after=0.0)
    feed(tracker, task(100.0, "sent", "a", queue="q"), task(100.0, "sent", "b", queue="q"))
    tracker.note_switch(110.0)
    tracker.apply(task(111.0, "started", "a"))  # resumed; a was sent with b, not after it
    assert tracker.snapshot(111.2).lost == 0
    feed(tracker, task(111.3, "sent", "c", queue="q"), task(111.4, "received", "c"))
    assert tracker.snapshot(111.5).lost == 0  # cached for this second of `now`
    assert tracker.snapshot(112.0).lost == 1  # a new second: walked again
    assert tracker.snapshot(112.0).lost_tasks[0].uuid == "b"


def test_nothing_is_lost_without_a_switch() -> None:
    tracker = TaskTracker(lost_after=0.0)
    feed(
        tracker,
        task(100.0, "sent", "a", queue="q"),
        task(101.0, "sent", "b", queue="q"),
        task(102.0, "received", "b"),
        task(103.0, "started", "b"),
    )
    snap = tracker.snapshot(1000.0)
    assert (snap.switched_at, snap.resumed_at, snap.lost, snap.lost_tasks) == (None, None, 0, ())
    assert not any(p.lost for p in snap.oldest_pending)


def test_only_a_task_sent_before_the_resume_never_received_and_overtaken_is_lost() -> None:
    tracker = TaskTracker(lost_after=0.0)
    feed(
        tracker,
        task(100.0, "sent", "sent", queue="q"),  # lost
        task(100.5, "sent", "received", queue="q"),
        task(101.0, "received", "received"),  # received, never started: pending, not lost
        task(101.5, "sent", "retried", queue="q"),
        task(102.0, "retried", "retried"),  # queued again: pending, not lost
        task(102.5, "received", "no-sent"),  # no task-sent seen: nothing to compare
    )
    tracker.note_switch(110.0)
    feed(
        tracker,
        task(111.0, "sent", "overtaker", queue="q"),
        task(112.0, "started", "overtaker"),
        task(113.0, "sent", "after-resume", queue="q"),  # sent after the resume, not lost
        task(114.0, "sent", "later", queue="q"),
        task(115.0, "received", "later"),  # overtakes after-resume too
    )
    snap = tracker.snapshot(120.0)
    assert snap.pending == 6
    assert [p.uuid for p in snap.lost_tasks] == ["sent"]
    assert {p.uuid for p in snap.oldest_pending if p.lost} == {"sent"}


def test_a_task_sent_again_after_the_resume_is_not_lost() -> None:
    # the producer's publish failed with the old master and was retried, same task id
    tracker = feed(TaskTracker(lost_after=0.0), task(100.0, "sent", "a", queue="q"))
    tracker.note_switch(110.0)
    feed(
        tracker,
        task(111.0, "sent", "x", queue="q"),
        task(112.0, "started", "x"),  # resumed
        task(113.0, "sent", "a", queue="q"),  # sent again: now in the new master's queue
        task(114.0, "sent", "y", queue="q"),
        task(115.0, "received", "y"),  # overtakes a's second sending
    )
    snap = tracker.snapshot(120.0)
    assert (snap.resumed_at, snap.pending, snap.lost) == (112.0, 2, 0)


def test_queues_are_separate_and_none_is_a_queue_of_its_own() -> None:
    tracker = TaskTracker(lost_after=0.0)
    feed(
        tracker,
        task(100.0, "sent", "a", queue="a"),
        task(100.0, "sent", "b", queue="b"),
        task(100.0, "sent", "none"),
    )
    tracker.note_switch(110.0)
    feed(tracker, task(111.0, "sent", "a2", queue="a"), task(112.0, "started", "a2"))
    assert [p.uuid for p in tracker.snapshot(113.0).lost_tasks] == ["a"]
    feed(tracker, task(113.0, "sent", "n2"), task(114.0, "received", "n2"))
    assert [p.uuid for p in tracker.snapshot(115.0).lost_tasks] == ["a", "none"]
    feed(tracker, task(115.0, "sent", "b2", queue="b"), task(116.0, "succeeded", "b2"))
    snap = tracker.snapshot(117.0)
    assert [p.uuid for p in snap.lost_tasks] == ["a", "b", "none"]


def test_a_second_switch_starts_again_and_the_same_switch_twice_is_one() -> None:
    tracker = TaskTracker(lost_after=10.0)
    feed(tracker, task(100.0, "sent", "a", queue="q"), task(101.0, "sent", "b", queue="q"))
    tracker.note_switch(110.0)
    feed(tracker, task(111.0, "received", "b"), task(112.0, "started", "b"))
    assert tracker.snapshot(122.0).lost == 1
    tracker.note_switch(110.0)  # the same switch again: nothing changes
    snap = tracker.snapshot(122.5)
    assert (snap.switched_at, snap.resumed_at, snap.lost) == (110.0, 112.0, 1)
    tracker.note_switch(105.0)  # older than the one known: stale
    assert tracker.snapshot(122.6).switched_at == 110.0
    # the new master fails too: a second switch, not resumed yet
    tracker.note_switch(130.0)
    snap = tracker.snapshot(131.0)
    assert (snap.switched_at, snap.resumed_at, snap.lost, snap.lost_tasks) == (130.0, None, 0, ())
    tracker.apply(task(129.0, "succeeded", "b"))  # before the second switch: not a resume
    assert tracker.snapshot(131.5).resumed_at is None
    feed(tracker, task(132.0, "sent", "c", queue="q"), task(133.0, "succeeded", "c"))
    snap = tracker.snapshot(140.0)
    assert (snap.resumed_at, snap.lost) == (133.0, 0)  # not lost_after after the new resume
    snap = tracker.snapshot(143.0)
    assert [p.uuid for p in snap.lost_tasks] == ["a"]


def test_a_bad_switch_time_is_malformed_and_ignored() -> None:
    tracker = TaskTracker()
    for bad in (float("nan"), float("inf"), "110", None, True):
        tracker.note_switch(bad)  # type: ignore[arg-type]
    snap = tracker.snapshot(200.0)
    assert (snap.malformed, snap.switched_at) == (5, None)


def test_lost_tasks_are_counted_exactly_and_listed_oldest_first_up_to_limit() -> None:
    tracker = TaskTracker(lost_after=1.0)
    for n in range(1000):
        tracker.apply(task(100.0 + n * 0.001, "sent", f"t{n:04}", queue="q"))
    tracker.note_switch(110.0)
    feed(tracker, task(111.0, "sent", "x", queue="q"), task(111.5, "started", "x"))
    snap = tracker.snapshot(112.5, limit=3)
    assert snap.lost == 1000
    assert [p.uuid for p in snap.lost_tasks] == ["t0000", "t0001", "t0002"]
    assert [p.uuid for p in snap.oldest_pending] == ["t0000", "t0001", "t0002"]


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


@dataclass(frozen=True)
class Switch:
    """In a fuzzed stream: call `TaskTracker.note_switch` with `ts` instead of `apply`."""

    ts: Any


_switch = st.builds(Switch, ts=st.one_of(_TIME, _TIME, _ANY))
_events = st.lists(
    st.one_of(
        _good_task,
        _good_task,
        _good_task,
        _bad_task,
        _good_worker,
        _bad_worker,
        _broker,
        _switch,
        _ANY,
    ),
    max_size=100,
)


def play(tracker: TaskTracker, event: Any) -> None:
    if isinstance(event, Switch):
        tracker.note_switch(event.ts)
    else:
        tracker.apply(event)


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
    check_lost(tracker, snap)


def check_lost(tracker: TaskTracker, snap: TasksSnapshot) -> None:
    """Whatever the stream, a task listed lost is lost (the walk may miss some, never add)."""
    assert 0 <= snap.lost <= snap.pending
    assert len(snap.lost_tasks) <= snap.lost
    assert len({p.uuid for p in snap.lost_tasks}) == len(snap.lost_tasks)
    marked = {p.uuid for p in snap.oldest_pending if p.lost}
    assert marked <= {p.uuid for p in snap.lost_tasks}  # both the oldest lost ones
    if snap.lost:
        assert snap.switched_at is not None and snap.resumed_at is not None
        assert snap.resumed_at >= snap.switched_at
        assert snap.now >= snap.resumed_at + snap.lost_after
    else:
        assert snap.lost_tasks == () and not marked
    for lost in snap.lost_tasks:
        assert lost.lost and lost.state == "sent" and lost.worker is None
        view = tracker.get(lost.uuid)
        assert view is not None and view.state == "sent"  # not received, started or finished
        assert view.sent_at is not None and snap.resumed_at is not None
        assert view.sent_at < snap.resumed_at
        assert tracker._overtaken[view.queue] > view.sent_at


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=_events,
    max_tasks=st.integers(1, 6),
    now=_TIME,
    fault_at=st.one_of(st.none(), _TIME),
    lost_after=st.sampled_from([0.0, 2.0, 30.0]),
)
def test_fuzz_never_raises_and_stays_consistent(
    events: list[Any], max_tasks: int, now: float, fault_at: float | None, lost_after: float
) -> None:
    tracker = TaskTracker(max_tasks=max_tasks, window=3.0, lost_after=lost_after)
    for event in events:
        play(tracker, event)
        snap = tracker.snapshot(now, limit=3, fault_at=fault_at)
        check_consistent(tracker, snap, max_tasks, fault_at)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    events=st.lists(
        st.one_of(_good_task, _good_task, _good_task, _good_worker, st.builds(Switch, ts=_TIME)),
        min_size=20,
        max_size=150,
    ),
    max_tasks=st.integers(1, 8),
    fault_at=st.integers(0, 40).map(float),
)
def test_fuzz_long_valid_streams_stay_consistent(
    events: list[Any], max_tasks: int, fault_at: float
) -> None:
    tracker = TaskTracker(max_tasks=max_tasks, window=3.0, lost_after=1.0)
    for event in events:
        play(tracker, event)
        snap = tracker.snapshot(50.0, limit=4, fault_at=fault_at)
        check_consistent(tracker, snap, max_tasks, fault_at)
    assert snap.malformed == 0


_STEP = st.sampled_from([0.0, 0.0, 0.3, 1.0, 2.5])
# Mostly sends, receives and starts, a switch now and then: lost tasks are common.
_LOST_STEP = st.one_of(
    *[st.tuples(st.just(s), _UUIDS) for s in ("sent", "sent", "sent", "received", "started")],
    st.tuples(st.sampled_from(TASK_STATES), _UUIDS),
    st.just(("switch", None)),
)


_LOST_STEPS = st.lists(st.tuples(_STEP, _LOST_STEP, _STEP), max_size=40)
_SWITCH_STEP = st.tuples(_STEP, st.just(("switch", None)), _STEP)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.builds(lambda a, b, c: [*a, b, *c], _LOST_STEPS, _SWITCH_STEP, _LOST_STEPS),
    lost_after=st.sampled_from([0.0, 1.0, 4.0]),
    limit=st.integers(1, 4),
)
def test_fuzz_lost_matches_a_full_scan_when_time_goes_forward(
    steps: list[tuple[float, tuple[str, str | None], float]], lost_after: float, limit: int
) -> None:
    """Time goes forward, nothing is evicted, each task keeps its queue: the tracker's
    lost tasks are exactly a full scan's at each walk (a new second of `now`), and
    between walks a subset of it (those that were lost at the walk and still are)."""
    tracker = TaskTracker(lost_after=lost_after)
    ts = now = 0.0
    switched_at = resumed_at = None
    last_second = None
    for before, (state, uuid), after in steps:
        ts += before
        if state == "switch":
            if switched_at is None or ts > switched_at:
                switched_at, resumed_at = ts, None
            tracker.note_switch(ts)
        else:
            assert uuid is not None
            queue = "q" if uuid < "e" else None
            tracker.apply(task(ts, state, uuid, queue=queue))
            if (
                state in ("started", "succeeded")
                and switched_at is not None
                and resumed_at is None
                and ts >= switched_at
            ):
                resumed_at = ts
        now = max(now, ts) + after
        snap = tracker.snapshot(now, limit=limit)
        check_lost(tracker, snap)
        assert (snap.switched_at, snap.resumed_at) == (switched_at, resumed_at)
        # the oracle: every tracked task, in pending order
        tasks = [tracker.get(u) for u in "abcdefgh"]
        views = [v for v in tasks if v is not None]
        marks: dict[str | None, float] = {}
        for v in views:
            reached = v.received_at is not None or v.started_at is not None
            if v.sent_at is not None and (reached or v.finished_at is not None):
                marks[v.queue] = max(marks.get(v.queue, v.sent_at), v.sent_at)
        expected: set[str] = set()
        if resumed_at is not None and now >= resumed_at + lost_after:
            expected = {
                v.uuid
                for v in views
                if v.state == "sent"
                and v.sent_at is not None
                and v.sent_at < resumed_at
                and marks.get(v.queue, -1.0) > v.sent_at
            }
        listed = {p.uuid for p in snap.lost_tasks}
        if math.floor(now) != last_second:
            assert snap.lost == len(expected)
            order = [u for u in tracker._tiers[0] if u in expected]  # pending order
            assert [p.uuid for p in snap.lost_tasks] == order[:limit]
        else:
            assert snap.lost <= len(expected) and listed <= expected
        last_second = math.floor(now)


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


# -- started history (the timeline's throughput) ------------------------------------------


def test_started_history_counts_started_tasks_per_second_oldest_first() -> None:
    from hawatch.core.tasks import HISTORY_SECONDS

    tracker = feed(
        TaskTracker(),
        task(100.0, "started", "a"),
        task(100.9, "started", "b"),
        task(100.95, "succeeded", "b"),  # a completion is not a start
        task(102.5, "started", "c"),
        task(102.6, "started", "c"),  # started twice: counted twice
        task(103.0, "sent", "d"),
        task(103.1, "received", "d"),
        task(105.0, "started", "e"),  # after `now` below: not included
    )
    assert tracker.started_history(104.99, seconds=6) == (0, 2, 0, 2, 0, 0)
    assert tracker.started_history(105.0, seconds=3) == (0, 0, 1)
    assert tracker.started_history(103.0, seconds=3) == (0, 2, 0)
    assert tracker.started_history(104.0, seconds=1) == (0,)
    assert len(tracker.started_history(105.0)) == 180
    assert tracker.started_history(105.0)[-6:] == (2, 0, 2, 0, 0, 1)
    assert tracker.started_history(float("nan"), seconds=4) == (0, 0, 0, 0)
    for bad in (0, -1, HISTORY_SECONDS + 1, 2.5, True):
        with pytest.raises(ValueError):
            tracker.started_history(105.0, seconds=bad)  # type: ignore[arg-type]


def test_started_history_is_a_fixed_ring_of_the_last_minutes() -> None:
    from hawatch.core.tasks import HISTORY_SECONDS

    tracker = TaskTracker()
    for n in range(2_000):  # one start a second for 2,000 s
        tracker.apply(task(float(n), "started", f"t{n}"))
    assert len(tracker._hist_sec) == HISTORY_SECONDS == len(tracker._hist_started)
    assert tracker.started_history(1999.5, seconds=HISTORY_SECONDS) == (1,) * HISTORY_SECONDS
    # Seconds that fell out of the ring read 0, never a newer second's count.
    assert tracker.started_history(2399.0, seconds=HISTORY_SECONDS) == (1,) * 200 + (0,) * 400
    # An event older than the ring holds does not clobber the newer second in its bucket.
    tracker.apply(task(1999.0 - HISTORY_SECONDS, "started", "late"))
    assert tracker.started_history(1999.0, seconds=1) == (1,)
    # The hole a failover leaves: nothing started for 5 s, then work resumes.
    holed = feed(
        TaskTracker(),
        *(task(10.0 + s, "started", f"x{s}") for s in range(10) if not 3 <= s < 8),
    )
    assert holed.started_history(19.5, seconds=10) == (1, 1, 1, 0, 0, 0, 0, 0, 1, 1)


def test_a_filter_lists_only_matching_pending_tasks_and_keeps_the_counts() -> None:
    tracker = TaskTracker()
    for n, (name, queue) in enumerate(
        [("shop.checkout", "celery"), ("mail.send", "mail"), ("shop.refund", "celery")]
    ):
        tracker.apply(
            TaskEvent(ts=1000.0 + n, state="sent", uuid=f"id-{n}", name=name, queue=queue)
        )
    everything = tracker.snapshot(1000.0 + 10)
    assert [task.uuid for task in everything.oldest_pending] == ["id-0", "id-1", "id-2"]
    shop = tracker.snapshot(1000.0 + 10, match="SHOP")
    assert [task.uuid for task in shop.oldest_pending] == ["id-0", "id-2"]
    assert shop.pending == 3  # the counts stay the whole truth
    assert [t.uuid for t in tracker.snapshot(1000.0 + 10, match="mail").oldest_pending] == ["id-1"]
    assert [t.uuid for t in tracker.snapshot(1000.0 + 10, match="id-2").oldest_pending] == ["id-2"]
    assert tracker.snapshot(1000.0 + 10, match="nothing-like-it").oldest_pending == ()
    assert len(tracker.snapshot(1000.0 + 10, match="  ").oldest_pending) == 3
