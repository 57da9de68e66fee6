"""The Celery event source against a real cluster and a real worker, through failovers."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from celery import Celery

from hawatch.core.events import BrokerConnected, BrokerDisconnected, Event, TaskEvent, WorkerEvent
from hawatch.lab import LabCluster, start_worker
from hawatch.lab.demo_app import make_app
from hawatch.settings import Secret, SentinelAddress, Settings
from hawatch.sources.celery_events import (
    CeleryEventSource,
    broker_from_app,
    broker_from_settings,
    convert_event,
)

pytestmark = pytest.mark.integration


class Recorder:
    """Collects emitted events (thread-safe) and waits for conditions with a deadline."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append((time.monotonic(), event))

    def snapshot(self) -> list[tuple[float, Event]]:
        with self._lock:
            return list(self.events)

    def wait_for(
        self, what: str, match: Callable[[Event], bool], *, after: float = 0.0, timeout: float = 20
    ) -> tuple[float, Event]:
        """The first event (with its monotonic arrival time) at or after `after` matching."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, event in self.snapshot():
                if at >= after and match(event):
                    return at, event
            time.sleep(0.02)
        raise AssertionError(f"no {what} within {timeout} s: {[e for _, e in self.snapshot()]}")


@pytest.fixture
def source(lab: LabCluster) -> Iterator[tuple[CeleryEventSource, Recorder]]:
    """A started source on the lab (through Sentinel), stopped after the test."""
    url, options = broker_from_settings(lab.settings(), lab.master_name)
    recorder = Recorder()
    src = CeleryEventSource(url, options, recorder)
    src.start()
    try:
        yield src, recorder
    finally:
        src.stop()
        assert not src.running


@pytest.fixture
def producer(lab: LabCluster) -> Iterator[Celery]:
    """The demo app, to send tasks from the test."""
    app = make_app([str(a) for a in lab.sentinel_addresses], lab.master_name, result_backend=False)
    try:
        yield app
    finally:
        app.close()


def send(app: Celery, x: int, timeout: float = 20.0) -> str:
    """Send demo.add, retrying while the cluster is switching; the task id."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(app.send_task("demo.add", args=[x, 1]).id)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def task_state(uuid: str, state: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, TaskEvent) and e.uuid == uuid and e.state == state


def is_connected(e: Event) -> bool:
    return isinstance(e, BrokerConnected)


def is_disconnected(e: Event) -> bool:
    return isinstance(e, BrokerDisconnected)


def test_task_and_worker_events_arrive(
    lab: LabCluster, source: tuple[CeleryEventSource, Recorder], producer: Celery
) -> None:
    worker = start_worker(lab)
    src, rec = source
    _, up = rec.wait_for("connection", is_connected)
    assert isinstance(up, BrokerConnected)
    assert up.address == str(lab.current_master().address)
    # The wakeup (or the worker's own beat) makes the worker show itself at once.
    _, beat = rec.wait_for("worker event", lambda e: isinstance(e, WorkerEvent), timeout=5)
    assert isinstance(beat, WorkerEvent) and beat.hostname and beat.hostname.startswith("demo@")

    uuid = send(producer, 41)
    for state in ("sent", "received", "started", "succeeded"):
        _, event = rec.wait_for(f"task-{state}", task_state(uuid, state), timeout=10)
        assert isinstance(event, TaskEvent)
        assert event.name in ("demo.add", None) and event.clock is not None
    sent = next(e for _, e in rec.snapshot() if task_state(uuid, "sent")(e))
    done = next(e for _, e in rec.snapshot() if task_state(uuid, "succeeded")(e))
    assert isinstance(sent, TaskEvent) and sent.queue == "celery" and sent.worker is None
    assert isinstance(done, TaskEvent) and done.worker == beat.hostname and done.runtime
    assert src.malformed == 0
    assert worker.running


def _through_fault(
    lab: LabCluster,
    source: tuple[CeleryEventSource, Recorder],
    producer: Celery,
    fault: Callable[[LabCluster], Any],
    label: str,
) -> None:
    start_worker(lab)
    _, rec = source
    rec.wait_for("connection", is_connected)
    old = lab.current_master()
    t_fault = time.monotonic()
    fault(lab)
    new = lab.wait_for_new_master(old.port)
    t_switch = time.monotonic()
    t_down, down = rec.wait_for("disconnect", is_disconnected, after=t_fault)
    t_up, up = rec.wait_for("reconnect", is_connected, after=t_down)
    assert isinstance(down, BrokerDisconnected) and down.reason
    assert isinstance(up, BrokerConnected) and up.address == str(new.address)
    downs = [e for at, e in rec.snapshot() if at >= t_fault and is_disconnected(e)]
    assert len(downs) == 1, downs  # once per outage
    uuid = send(producer, 7)
    rec.wait_for("task after the switch", task_state(uuid, "succeeded"), timeout=30)
    print(
        f"\n{label}: disconnected {t_down - t_fault:.2f} s after the fault "
        f"({down.reason}); switch at {t_switch - t_fault:.2f} s; reconnected "
        f"{t_up - t_fault:.2f} s after the fault, blind for {t_up - t_down:.2f} s, "
        f"{t_up - t_switch:+.2f} s from the switch"
    )


@pytest.mark.slow
def test_survives_a_forced_failover(
    lab: LabCluster, source: tuple[CeleryEventSource, Recorder], producer: Celery
) -> None:
    _through_fault(lab, source, producer, lambda lab: lab.failover(), "forced failover")


@pytest.mark.slow
def test_survives_a_master_crash(
    lab: LabCluster, source: tuple[CeleryEventSource, Recorder], producer: Celery
) -> None:
    _through_fault(lab, source, producer, lambda lab: lab.kill(lab.current_master()), "crash")


def test_stop_is_prompt_while_no_sentinel_answers(
    lab: LabCluster, source: tuple[CeleryEventSource, Recorder]
) -> None:
    src, rec = source
    rec.wait_for("connection", is_connected)
    master = lab.current_master()
    for sentinel in lab.sentinel_nodes:
        lab.pause(sentinel)  # silent: every discovery waits for its timeouts
    try:
        lab.kill(master)
        t_down, down = rec.wait_for("disconnect", is_disconnected, timeout=5)
        # It keeps retrying (never gives up, never dies); stop it in the middle of that.
        while time.monotonic() < t_down + 1.0:
            assert src.running
            time.sleep(0.05)
        started = time.monotonic()
        src.stop(timeout=2.0)
        assert time.monotonic() - started < 2.0
        assert not src.running
        assert [e for _, e in rec.snapshot() if is_disconnected(e)] == [down]
    finally:
        for sentinel in lab.sentinel_nodes:
            lab.resume(sentinel)


def test_malformed_events_are_counted_not_raised() -> None:
    events: queue.Queue[Event] = queue.Queue()
    src = CeleryEventSource("redis://127.0.0.1:1//", {}, events.put)
    for bad in (
        "not a dict",
        {},
        {"type": 3},
        {"type": "task-started"},
        {"type": "task-started", "uuid": "u", "retries": "x"},
        {"type": "worker-heartbeat", "hostname": 5},
    ):
        src._on_event(bad)
    src._on_event({"type": "worker-ready", "hostname": "w"})  # a type hawatch ignores
    assert src.malformed == 6 and events.empty()
    good = convert_event(
        {"type": "task-sent", "uuid": "u", "name": "n", "routing_key": "q", "timestamp": 5}
    )
    assert isinstance(good, TaskEvent) and (good.state, good.queue, good.clock) == ("sent", "q", 5)


def test_broker_from_settings_and_from_app() -> None:
    settings = Settings(
        sentinels=(SentinelAddress("127.0.0.1", 26379), SentinelAddress("127.0.0.1", 26380)),
        password=Secret("s3cret/pw"),
    )
    url, options = broker_from_settings(settings, "mymaster")
    assert url == "sentinel://:s3cret%2Fpw@127.0.0.1:26379;sentinel://127.0.0.1:26380"
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"]["password"] == "s3cret/pw"
    assert options["socket_timeout"] and options["sentinel_kwargs"]["socket_timeout"]

    url, options = broker_from_app("hawatch.lab.demo_app")
    assert url.startswith("sentinel://") and options["master_name"] == "mymaster"
    with pytest.raises(ValueError, match="cannot load a Celery app"):
        broker_from_app("no_such_module_here.celery")
