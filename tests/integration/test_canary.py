"""The canary against a real cluster and the real demo worker: round trips, through a forced
failover and a crash, read-only mode, and a prompt stop while nothing answers."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from hawatch.core.events import (
    BrokerConnected,
    BrokerDisconnected,
    Event,
    ProbeResult,
    TaskEvent,
    to_json,
)
from hawatch.lab import LabCluster, start_worker
from hawatch.sources.canary import (
    CANARY_PREFIX,
    CANARY_TASK,
    MAX_REMEMBERED,
    Canary,
    is_canary,
)
from hawatch.sources.celery_events import BrokerSpec, CeleryEventSource, broker_spec

pytestmark = pytest.mark.integration


class Stream:
    """One event stream, as the monitor runs it: sources emit from their threads, one
    consumer thread records every event and hands each to `canary.observe`."""

    def __init__(self) -> None:
        self.canary: Canary | None = None
        self.events: list[Event] = []
        self._inbox: queue.Queue[Event | None] = queue.Queue()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._consume, daemon=True)
        self._thread.start()

    def emit(self, event: Event) -> None:
        self._inbox.put(event)

    def _consume(self) -> None:
        while (event := self._inbox.get()) is not None:
            pending = [event]
            while pending:
                current = pending.pop()
                with self._lock:
                    self.events.append(current)
                result = self.canary.observe(current) if self.canary is not None else None
                if result is not None:
                    pending.append(result)

    def close(self) -> None:
        self._inbox.put(None)
        self._thread.join(5)

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def probes(self, phase: str | None = None) -> list[ProbeResult]:
        return [
            e
            for e in self.snapshot()
            if isinstance(e, ProbeResult) and (phase is None or e.phase == phase)
        ]

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 20.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"no {what} within {timeout} s: {self.snapshot()[-40:]}")
            time.sleep(0.05)


class Running:
    """A started event source and canary on a lab, over one `Stream`."""

    def __init__(self, spec: BrokerSpec, stream: Stream, source: CeleryEventSource) -> None:
        self.spec, self.stream, self.source = spec, stream, source
        self.canary: Canary | None = None

    def start_canary(self, rate: float) -> Canary:
        canary = Canary(self.spec.url, self.spec.transport_options, self.stream.emit, rate=rate)
        self.stream.canary = self.canary = canary
        canary.start()
        return canary


@pytest.fixture
def running(lab: LabCluster) -> Iterator[Running]:
    """The Celery event source on `lab` (through Sentinel), feeding a `Stream`."""
    spec = broker_spec(lab.settings(), lab.master_name)
    stream = Stream()
    source = CeleryEventSource(spec.url, spec.transport_options, stream.emit)
    source.start()
    run = Running(spec, stream, source)
    try:
        stream.wait_for(
            "connection",
            lambda: [e for e in stream.snapshot() if isinstance(e, BrokerConnected)],
        )
        yield run
    finally:
        if run.canary is not None:
            run.canary.stop()
            assert not run.canary.running
        source.stop()
        stream.close()


def succeeded_after(stream: Stream, since: float) -> list[ProbeResult]:
    """Succeeded round trips of canary tasks sent at or after `since` (wall clock)."""
    sent_at = {p.task_id: p.ts for p in stream.probes("sent")}
    return [p for p in stream.probes("succeeded") if sent_at.get(p.task_id, -1.0) >= since]


def test_round_trips_arrive(lab: LabCluster, running: Running) -> None:
    start_worker(lab)
    stream = running.stream
    started = time.monotonic()
    canary = running.start_canary(rate=5)
    done = stream.wait_for(
        "five round trips", lambda: (r := stream.probes("succeeded"))[4:] and r, timeout=30
    )
    elapsed, sent_count = time.monotonic() - started, canary.sent
    first = done[0]
    assert first.ok and first.probe == "canary" and is_canary(first.task_id)
    assert first.task_id.startswith(CANARY_PREFIX)
    # Sources emit from their own threads, so a quick worker's events can overtake the
    # canary's own "sent" (the first publish declares the queue): order by time instead.
    steps = sorted((p for p in stream.probes() if p.task_id == first.task_id), key=lambda p: p.ts)
    assert [p.phase for p in steps] == ["sent", "started", "succeeded"]
    sent, began, ended = steps
    assert sent.ok and sent.latency is None
    assert began.latency is not None and ended.latency is not None
    assert 0 <= began.latency <= ended.latency < 5
    assert all(p.latency is not None for p in done)
    # The worker really ran Celery's built-in task, and the tracker sees the canary's task-sent.
    events = stream.snapshot()
    names = {e.name for e in events if isinstance(e, TaskEvent) and e.uuid == first.task_id}
    assert CANARY_TASK in names
    assert any(
        isinstance(e, TaskEvent) and e.uuid == first.task_id and e.state == "sent" for e in events
    )
    # A steady 5 per second, and the canary's own broker state.
    assert canary.send_failures == 0
    assert 5 * elapsed - 3 <= sent_count <= 5 * elapsed + 2
    ups = [e for e in events if isinstance(e, BrokerConnected) and e.source == "canary"]
    assert len(ups) == 1 and ups[0].address == str(lab.current_master().address)


def _through_fault(
    lab: LabCluster, running: Running, fault: Callable[[LabCluster], Any], label: str
) -> tuple[list[ProbeResult], set[str]]:
    """Round trips resume after `fault` and the switch; returns the send failures and the
    ids of tasks sent around the fault that never came back (the interruption)."""
    start_worker(lab)
    stream = running.stream
    running.start_canary(rate=10)
    stream.wait_for("a round trip", lambda: stream.probes("succeeded"), timeout=30)
    old = lab.current_master()
    t_fault = time.time()
    fault(lab)
    lab.wait_for_new_master(old.port)
    t_switch = time.time()
    resumed = stream.wait_for(
        "a round trip of a task sent after the switch",
        lambda: succeeded_after(stream, t_switch),
        timeout=60,
    )[0]
    time.sleep(1.0)  # let the round trips in flight at the switch arrive
    sent = {p.task_id: p.ts for p in stream.probes("sent")}
    resumed_sent = sent[resumed.task_id]
    done = {p.task_id for p in stream.probes("succeeded")}
    missing = {
        task_id
        for task_id, ts in sent.items()
        if t_fault - 1.0 <= ts < resumed_sent and task_id not in done
    }
    failed = [p for p in stream.probes("send-failed") if p.ts >= t_fault]
    assert running.canary is not None and running.canary.running
    assert all(not p.ok and p.detail and "\n" not in p.detail for p in failed)
    print(
        f"\n{label}: switch {t_switch - t_fault:.2f} s after the fault; "
        f"{len(failed)} send failures, {len(missing)} tasks sent that never came back; "
        f"first task sent after the switch done {resumed.ts - t_fault:.2f} s after the fault "
        f"(round trip {resumed.latency:.2f} s)"
    )
    return failed, missing


@pytest.mark.slow
def test_round_trips_resume_after_a_forced_failover(lab: LabCluster, running: Running) -> None:
    # A graceful SENTINEL FAILOVER often costs the canary nothing at all (the failover
    # reference: no stall); when it does, it is a task or two written to the old master
    # while it still took writes. Either way the round trips must go on after the switch.
    _through_fault(lab, running, lambda lab: lab.failover(), "forced failover")


@pytest.mark.slow
def test_round_trips_resume_after_a_crash(lab: LabCluster, running: Running) -> None:
    failed, _ = _through_fault(lab, running, lambda lab: lab.kill(lab.current_master()), "crash")
    # A dead master refuses every publish until Sentinel names another.
    assert failed
    events = running.stream.snapshot()
    canary = [e for e in events if isinstance(e, BrokerConnected | BrokerDisconnected)]
    canary = [e for e in canary if e.source == "canary"]
    kinds = [type(e).__name__ for e in canary]
    assert kinds == ["BrokerConnected", "BrokerDisconnected", "BrokerConnected"], canary
    down = canary[1]
    assert isinstance(down, BrokerDisconnected) and down.reason == failed[0].detail


def test_read_only_sends_nothing(lab: LabCluster, running: Running) -> None:
    stream = running.stream
    with pytest.raises(ValueError, match="read-only"):
        Canary(
            running.spec.url,
            running.spec.transport_options,
            stream.emit,
            rate=5,
            read_only=True,
        )
    time.sleep(1.0)
    master = lab.current_master()
    assert int(master.call("LLEN", "celery")) == 0
    assert not [e for e in stream.snapshot() if isinstance(e, TaskEvent | ProbeResult)]
    # The same checks do see a canary that is allowed to send (no worker takes its tasks).
    canary = running.start_canary(rate=5)
    stream.wait_for(
        "a task-sent", lambda: [e for e in stream.snapshot() if isinstance(e, TaskEvent)]
    )
    canary.stop()
    assert int(master.call("LLEN", "celery")) == canary.sent > 0


def test_stop_is_prompt_while_nothing_answers(lab: LabCluster, running: Running) -> None:
    stream = running.stream
    canary = running.start_canary(rate=5)
    stream.wait_for("a send", lambda: stream.probes("sent"))
    master = lab.current_master()
    for sentinel in lab.sentinel_nodes:
        lab.pause(sentinel)  # silent: every discovery waits for its timeouts
    try:
        lab.kill(master)
        first = stream.wait_for("a send failure", lambda: stream.probes("send-failed"), 5)[0]
        failures_then, t_failed = canary.send_failures, time.monotonic()
        time.sleep(2.0)  # it keeps trying, never dies
        assert canary.running
        # Each try waits on the silent sentinels: missed slots are skipped, not made up.
        tries = canary.send_failures - failures_then
        assert 1 <= tries <= (time.monotonic() - t_failed) * 2 + 1
        started = time.monotonic()
        canary.stop(timeout=2.0)
        stopped_in = time.monotonic() - started
        assert stopped_in < 1.5, stopped_in
        assert not canary.running
        downs = [
            e
            for e in stream.snapshot()
            if isinstance(e, BrokerDisconnected) and e.source == "canary"
        ]
        assert len(downs) == 1 and downs[0].reason == first.detail
        assert first.detail and "\n" not in first.detail and "Traceback" not in first.detail
        print(f"\nstop took {stopped_in:.2f} s; {tries} tries in 2 s; reason: {first.detail}")
    finally:
        for sentinel in lab.sentinel_nodes:
            lab.resume(sentinel)


# --------------------------------------------------------------------------- observe


def test_observe_turns_task_events_into_round_trips() -> None:
    canary = Canary("redis://127.0.0.1:1/0", {}, lambda e: None, rate=1)
    task_id = f"{CANARY_PREFIX}abc"
    sent = ProbeResult(ts=100.0, probe="canary", phase="sent", ok=True, task_id=task_id)
    assert canary.observe(sent) is None
    started = canary.observe(TaskEvent(ts=100.5, state="started", uuid=task_id))
    assert isinstance(started, ProbeResult) and started.phase == "started" and started.ok
    assert started.latency == pytest.approx(0.5)
    done = canary.observe(TaskEvent(ts=101.25, state="succeeded", uuid=task_id))
    assert isinstance(done, ProbeResult) and done.latency == pytest.approx(1.25)
    assert (done.phase, done.ok, done.task_id) == ("succeeded", True, task_id)
    failed = canary.observe(
        TaskEvent(ts=102.0, state="failed", uuid=f"{CANARY_PREFIX}x", exception="Boom()")
    )
    assert isinstance(failed, ProbeResult) and not failed.ok and failed.latency is None
    assert failed.detail == "Boom()"
    # Not canary tasks, other states, other events: nothing.
    assert canary.observe(TaskEvent(ts=1.0, state="succeeded", uuid="user-task")) is None
    assert canary.observe(TaskEvent(ts=1.0, state="received", uuid=task_id)) is None
    assert canary.observe(BrokerConnected(ts=1.0, source="canary")) is None
    assert canary.observe(done) is None  # its own results are not observed twice
    # Bounded memory: the oldest send times go first.
    for i in range(MAX_REMEMBERED + 5):
        canary.observe(
            ProbeResult(ts=float(i), probe="canary", phase="sent", ok=True, task_id=f"{i}")
        )
    assert len(canary._sent_at) == MAX_REMEMBERED
    assert "0" not in canary._sent_at and f"{MAX_REMEMBERED + 4}" in canary._sent_at
    json_line = to_json(done)
    assert '"probe":"canary"' in json_line and '"phase":"succeeded"' in json_line


def test_bad_rates_are_refused_in_a_sentence() -> None:
    for rate in (0, -1, float("nan"), float("inf"), 10_000):
        with pytest.raises(ValueError, match="rate"):
            Canary("redis://127.0.0.1:1/0", {}, lambda e: None, rate=rate)
