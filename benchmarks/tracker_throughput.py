"""How fast the task tracker folds Celery events, and how much memory a task costs.

Generates a stream shaped like a busy worker pool (default 1,000,000 events):
every task is sent, received, started and succeeded (2% fail), tasks overlap
(a task is received 5 slots after it is sent, started 10 after, finished 20
after), 1% of received/started pairs arrive swapped, 1 task in 1,000 completes
twice, and three workers send a heartbeat every 2 s of stream time. The same
stream is fed to hawatch's `TaskTracker` (as `TaskEvent`/`WorkerEvent`) and to
Celery's own `celery.events.state.State` (as the event dicts kombu delivers:
``type``, ``uuid``, ``hostname``, ``timestamp``, ``clock``, ``local_received``
...), both bounded to the same number of tasks. Events are built in chunks
outside the timed loop; only ``apply``/``State.event`` is timed.

Memory: tracemalloc over `--memory-tasks` tasks (fresh uuid strings and
timestamps, as from the wire), once all finished (received, started,
succeeded) and once all pending (received), divided by the task count. Last,
the cost of one `TaskTracker.snapshot` with that many tasks pending.

    .venv/bin/python benchmarks/tracker_throughput.py
    .venv/bin/python benchmarks/tracker_throughput.py --events 2000000 --max-tasks 100000
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

from celery.events.state import State

from hawatch.core.events import TaskEvent, WorkerEvent
from hawatch.core.tasks import TaskTracker

WORKERS = ("celery@w1", "celery@w2", "celery@w3")
NAMES = ("app.add", "app.mul", "app.report")
T0 = 1_700_000_000.0
STEP = 0.0005  # seconds of stream time per event: 2,000 events/s


def stream(events: int) -> Iterator[tuple[Any, ...]]:
    """The stream as plain tuples: (ts, kind, uuid-or-hostname, state, worker, n)."""
    emitted = 0
    slot = 0
    ts = T0
    next_beat = T0
    while emitted < events:
        ts += STEP
        if ts >= next_beat:
            for host in WORKERS:
                yield (ts, "worker", host, "heartbeat", None, slot)
                emitted += 1
            next_beat += 2.0
        phases = [(slot, "sent"), (slot - 5, "received"), (slot - 10, "started")]
        phases.append((slot - 20, "failed" if (slot - 20) % 50 == 0 else "succeeded"))
        if slot % 100 == 7:  # received and started of one task arrive swapped
            phases[1], phases[2] = phases[2], phases[1]
        if (slot - 21) % 1000 == 0:  # a task restored after the failover runs twice
            phases.append((slot - 21, "succeeded"))
        for n, state in phases:
            if n >= 0:
                yield (ts, "task", f"{n:08x}-7c1e-4b7a-9f3d-{n:012x}", state, WORKERS[n % 3], n)
                emitted += 1
                if emitted >= events:
                    return
        slot += 1


def hawatch_events(chunk: list[tuple[Any, ...]]) -> list[Any]:
    out: list[Any] = []
    for ts, kind, ident, state, worker, n in chunk:
        if kind == "worker":
            out.append(
                WorkerEvent(ts=ts, kind=state, hostname=ident, active=2, processed=n, freq=2.0)
            )
        else:
            out.append(
                TaskEvent(
                    ts=ts,
                    state=state,
                    uuid=ident,
                    name=NAMES[n % 3] if state in ("sent", "received") else None,
                    worker=None if state == "sent" else worker,
                    queue="celery" if state == "sent" else None,
                    retries=0 if state in ("sent", "received") else None,
                    runtime=0.012 if state == "succeeded" else None,
                    clock=ts - 0.001,
                )
            )
    return out


def celery_events(chunk: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for clock, (ts, kind, ident, state, worker, n) in enumerate(chunk):
        if kind == "worker":
            out.append(
                {
                    "type": f"worker-{state}",
                    "hostname": ident,
                    "timestamp": ts - 0.001,
                    "local_received": ts,
                    "clock": clock,
                    "freq": 2.0,
                    "active": 2,
                    "processed": n,
                    "sw_ident": "py-celery",
                    "sw_ver": "5.7.0",
                    "sw_sys": "Linux",
                }
            )
            continue
        event: dict[str, Any] = {
            "type": f"task-{state}",
            "uuid": ident,
            "hostname": "producer@h" if state == "sent" else worker,
            "timestamp": ts - 0.001,
            "local_received": ts,
            "clock": clock,
        }
        if state in ("sent", "received"):
            event.update(name=NAMES[n % 3], args="(1, 2)", kwargs="{}", retries=0)
        if state == "sent":
            event.update(queue="celery", routing_key="celery", exchange="")
        if state == "succeeded":
            event.update(result="3", runtime=0.012)
        if state == "failed":
            event.update(exception="ValueError('x')", traceback="...")
        out.append(event)
    return out


def chunks(events: int, size: int) -> Iterator[list[tuple[Any, ...]]]:
    chunk: list[tuple[Any, ...]] = []
    for item in stream(events):
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def timed(
    events: int, size: int, build: Callable[[list[Any]], list[Any]], apply: Callable[[Any], Any]
) -> float:
    """Seconds spent in `apply` over the whole stream (building the events not included)."""
    total = 0.0
    for chunk in chunks(events, size):
        built = build(chunk)
        gc.collect()
        start = time.perf_counter()
        for event in built:
            apply(event)
        total += time.perf_counter() - start
    return total


def memory_per_task(
    make: Callable[[], Any], feed: Callable[[Any, int, str], None], n: int
) -> float:
    """Bytes traced per task after `n` tasks went through `feed` (events dropped after)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    target = make()
    for i in range(n):
        feed(target, i, f"{i:08x}-7c1e-4b7a-9f3d-{i:012x}")
    gc.collect()
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    del target
    return used / n


def feed_tracker(finished: bool) -> Callable[[Any, int, str], None]:
    def feed(tracker: TaskTracker, i: int, uuid: str) -> None:
        ts = T0 + i * STEP
        tracker.apply(TaskEvent(ts, "received", uuid, name="app.add", worker="celery@w1"))
        if finished:
            tracker.apply(TaskEvent(ts + 0.1, "started", uuid, worker="celery@w1"))
            tracker.apply(
                TaskEvent(ts + 0.2, "succeeded", uuid, worker="celery@w1", runtime=i / 1e6)
            )

    return feed


def feed_state(finished: bool) -> Callable[[Any, int, str], None]:
    def feed(state: State, i: int, uuid: str) -> None:
        ts = T0 + i * STEP
        common = {"uuid": uuid, "hostname": "celery@w1", "local_received": ts, "clock": i}
        state.event({"type": "task-received", "timestamp": ts, "name": "app.add", **common})
        if finished:
            state.event({"type": "task-started", "timestamp": ts + 0.1, **common})
            state.event(
                {"type": "task-succeeded", "timestamp": ts + 0.2, "runtime": i / 1e6, **common}
            )

    return feed


def main() -> None:
    """Measure and print: events/s for both, memory per task for both, and what was kept."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--max-tasks", type=int, default=100_000, help="bound for both")
    parser.add_argument("--memory-tasks", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=100_000)
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"stream: {args.events:,} events, both bounded to {args.max_tasks:,} tasks")

    tracker = TaskTracker(max_tasks=args.max_tasks)
    seconds = timed(args.events, args.chunk, hawatch_events, tracker.apply)
    snap = tracker.snapshot(T0 + args.events * STEP)
    print(
        f"hawatch TaskTracker.apply        {args.events / seconds:>12,.0f} events/s"
        f"  ({seconds:.2f} s; {seconds / args.events * 1e6:.2f} µs/event)"
    )
    state = State(max_tasks_in_memory=args.max_tasks)
    seconds = timed(args.events, args.chunk, celery_events, state.event)
    print(
        f"celery events.state.State.event  {args.events / seconds:>12,.0f} events/s"
        f"  ({seconds:.2f} s; {seconds / args.events * 1e6:.2f} µs/event)"
    )
    print(
        f"tracker kept: tracked={snap.tracked:,} pending={snap.pending:,} "
        f"evicted={snap.evicted:,} (pending {snap.evicted_pending}) "
        f"duplicated={snap.duplicated:,} malformed={snap.malformed} "
        f"workers={len(snap.workers)}; celery State kept {len(state.tasks):,} tasks"
    )
    del tracker, state
    gc.collect()

    n = args.memory_tasks
    for label, finished in (("finished", True), ("pending", False)):
        ours = memory_per_task(lambda: TaskTracker(max_tasks=n), feed_tracker(finished), n)
        theirs = memory_per_task(lambda: State(max_tasks_in_memory=n), feed_state(finished), n)
        print(
            f"memory per {label:<8} task ({n:,} tasks, tracemalloc): "
            f"hawatch {ours:,.0f} B   celery State {theirs:,.0f} B"
        )
    snapshot_cost(n)


def snapshot_cost(n: int) -> None:
    """Milliseconds for one snapshot with `n` tasks pending, without and with `fault_at`."""
    tracker = TaskTracker(max_tasks=n)
    feed = feed_tracker(finished=False)
    for i in range(n):
        feed(tracker, i, f"{i:08x}-7c1e-4b7a-9f3d-{i:012x}")
    now = T0 + n * STEP
    for label, fault_at in (("", None), (", all pending at fault_at", now)):
        runs = []
        for _ in range(20):
            start = time.perf_counter()
            tracker.snapshot(now, limit=50, fault_at=fault_at)
            runs.append(time.perf_counter() - start)
        first = runs[0]  # with fault_at: counts the pending tasks once, then kept up to date
        runs.sort()
        print(
            f"snapshot(limit=50{label}) with {n:,} pending: "
            f"first {first * 1e3:.2f} ms, median {runs[10] * 1e3:.2f} ms"
        )


if __name__ == "__main__":
    main()
