"""End to end on the lab: the event rate from real workers that hawatch keeps up with.

Starts a fast lab (master, 2 replicas, 3 sentinels), real Celery workers of the
demo app (`start_worker`: prefork, events on), and hawatch's TUI (`HawatchApp`
with the Celery side on) headless at 120x40 in this process, so the screen is
laid out and composited at its 4 Hz tick while events flow (headless skips only
writing the escape sequences to a terminal). Producer subprocesses (this script
with ``--producer``) send ``demo.add`` with ``ignore_result=True`` (the workers
store no result: the lab's CPU goes to tasks and events, not to the result
backend). A task gives four task events: sent (from the producer), received,
started and succeeded (from the worker); each worker also sends a heartbeat
every 2 s.

The run has four parts:

- idle: hawatch with the workers up and nothing sent, for its fixed cost;
- steps: the producers send at each target rate of ``--steps`` (tasks/s) for
  ``--seconds``, with ``--gap`` seconds between steps; the steps stop early once
  the lab is saturated (a backlog of more than 2 s of work: later steps would
  only measure the backlog);
- burst (``--burst N``, 0 to skip): the workers are paused (SIGSTOP, by pid),
  ``--burst-producers`` send N tasks as fast as they can ("fill": only
  task-sent events flow, from the producers), then the workers are resumed and
  drain the queue with the producers quiet ("burst": the highest rate real
  workers reach here, three events per task);
- catch-up (``--catch-up N``, 0 to skip): hawatch's own ceiling on real worker
  events. With the workers paused, N tasks are queued; then hawatch's event
  receiver is held (the benchmark's gate in its callback: it stops reading, and
  Redis buffers the events for it) while the workers run for
  ``--catch-up-seconds``; then the workers are paused again and the gate
  opened, and hawatch reads the backlog with the lab quiet and the TUI running.
  Its lag is the hold, by design; its rate is events applied over the time to
  the last one.

For each part it prints:

- tasks/s: the producers' achieved send rate (the burst row: the workers' rate,
  tasks finished per second), and the task events/s that implies;
- the task events/s the tracker applied (``TasksSnapshot.totals`` deltas);
- the queue's backlog at the end (the workers fell behind when it grows);
- the lag of task events from the sender's clock (the event's ``timestamp``,
  `TaskEvent.clock`) to the moment the core applied it: median, p99 and max,
  and the p99 of the part spent inside hawatch (from the source reading it,
  `TaskEvent.ts`, to applied); the rest is the sender's own buffering (a worker
  sends task events in batches from its event loop), Redis pub/sub and the read;
- the CPU used by hawatch (this process, split into the loop's thread: TUI,
  core and the benchmark's light bookkeeping, and the Celery event receiver's
  thread), the workers (main and pool processes), the Redis servers, the
  producers and everything else on the machine (other people's work on a
  shared machine), and what was left idle, in % of one core;
- hawatch's render tick (`refresh_view`: the core's snapshot into the widgets)
  and Textual's paints (layout and compositing of what changed), per second,
  mean and max milliseconds; the longest stall of the event loop; and Redis's
  output buffer for the busiest pub/sub client (hawatch's event receiver: what
  it has not read yet);
- events per loop wake-up: task events applied per batch the loop drained
  from the receiver's thread (`Monitor._drain`; one ``call_soon_threadsafe``
  each).

hawatch kept up when the p99 lag is under 1 s; the lab kept up when the
producers reached the target and the workers built no backlog. The summary
gives the highest rate hawatch kept up with and says which side limited it.

    .venv/bin/python benchmarks/end_to_end.py
    .venv/bin/python benchmarks/end_to_end.py --steps 100,200,400 --seconds 10 --workers 2

Every process (lab, workers, producers) is stopped by pid at the end, on an
error and on Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TARGET = 2000
"""Task events per second hawatch should keep up with on a 2-core machine (the issue's)."""
LAG_LIMIT = 1.0
"""Seconds of p99 lag under which hawatch keeps up."""
BACKLOG_LIMIT = 2.0
"""Seconds of work queued at a step's end beyond which the lab is saturated."""
HOLD_LIMIT = 16 << 20
"""Bytes Redis may buffer for the held receiver (its hard limit for pub/sub is 32 MB)."""
TICK = os.sysconf("SC_CLK_TCK")
RECEIVER_THREAD = "hawatch-celery-events"
"""The Celery event source's thread (`CeleryEventSource`, named after its `name`)."""
STATES = ("sent", "received", "started", "succeeded")


# -- the producer subprocess -------------------------------------------------------------


def produce(args: argparse.Namespace) -> None:
    """Send `demo.add`: this producer's share of every step's rate, or of a burst.

    Prints ``ready`` once connected, then waits for `--go-file` to name the start of
    the first step (wall clock), so every producer and the measuring process agree
    on the windows; prints one JSON line per step (or for the burst), then ``done``,
    and waits to be stopped (so its CPU time can be read until the end).
    """
    from hawatch.lab.demo_app import MASTER_ENV, PROFILE_ENV, SENTINELS_ENV, make_app

    env = os.environ
    app = make_app(
        [s for s in env[SENTINELS_ENV].split(",") if s],
        env[MASTER_ENV],
        profile=env[PROFILE_ENV],
        result_backend=False,
    )
    with app.producer_or_acquire() as producer:

        def send(n: int, tag: int) -> bool:
            try:
                app.send_task("demo.add", args=(n, tag), ignore_result=True, producer=producer)
            except Exception as error:  # report it and keep going
                print(f"send failed: {type(error).__name__}: {error}", flush=True)
                time.sleep(0.01)
                return False
            return True

        send(0, -1)  # warm up: connect and find the master
        print("ready", flush=True)
        go = Path(args.go_file)
        while not go.exists():
            time.sleep(0.01)
        time.sleep(0.05)
        t0 = float(go.read_text())
        while time.time() < t0:
            time.sleep(0.005)
        if args.burst:
            report("burst", args.burst // args.producers, 0.0, float("inf"), send)
        else:
            for index, target in enumerate(parse_steps(args.steps)):
                start = t0 + index * (args.seconds + args.gap)
                while time.time() < start:
                    time.sleep(min(0.01, max(0.0, start - time.time())))
                report(index, None, target / args.producers, start + args.seconds, send)
    print("done", flush=True)
    while True:  # the measuring process stops us by pid
        time.sleep(1)


def report(
    step: int | str,
    count: int | None,
    rate: float,
    end: float,
    send: Callable[[int, int], bool],
) -> None:
    """Send `count` tasks back to back, or at `rate` until `end`; print one JSON line."""
    sent = failed = 0
    cpu = time.process_time()
    began = time.time()
    tag = step if isinstance(step, int) else -2
    while count is None or sent < count:
        now = time.time()
        if now >= end:
            break
        due = count if count is not None else int((now - began) * rate) + 1
        while sent < due and time.time() < end:
            if send(sent, tag):
                sent += 1
            else:
                failed += 1
        if count is None:
            time.sleep(0.002)
    line = {
        "step": step,
        "sent": sent,
        "failed": failed,
        "start": began,
        "end": time.time(),
        "cpu": time.process_time() - cpu,
    }
    print(json.dumps(line), flush=True)


# -- measuring ---------------------------------------------------------------------------


def parse_steps(text: str) -> list[float]:
    steps = [float(part) for part in text.split(",") if part.strip()]
    if not steps or any(step <= 0 for step in steps):
        raise SystemExit("--steps takes positive task rates, e.g. 100,200,400")
    return steps


def tree_ticks(pid: int) -> int:
    """CPU clock ticks (user + system) of `pid` and its live descendants, found by pid."""
    total = 0
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as f:
            children = [int(child) for child in f.read().split()]
    except (OSError, IndexError, ValueError):
        return total
    for child in children:
        total += tree_ticks(child)
    return total


def thread_ticks(name: str) -> int:
    """CPU clock ticks of this process's thread called `name` (0 when there is none)."""
    for thread in threading.enumerate():
        if thread.name == name and thread.native_id is not None:
            try:
                with open(f"/proc/self/task/{thread.native_id}/stat", encoding="ascii") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                return 0
            return int(fields[11]) + int(fields[12])
    return 0


def machine_ticks() -> int:
    """Busy clock ticks of all cores since boot (not idle, not waiting on I/O)."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    return sum(values[:8]) - values[3] - values[4]


def self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of sorted `values`, nearest rank; nan when empty."""
    if not values:
        return float("nan")
    index = min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))
    return values[index]


@dataclass
class Timing:
    """How often something ran on the loop's thread, and how long it took."""

    count: int = 0
    seconds: float = 0.0
    longest: float = 0.0

    def add(self, spent: float) -> None:
        self.count += 1
        self.seconds += spent
        self.longest = max(self.longest, spent)

    def mean_ms(self) -> float:
        return self.seconds / self.count * 1e3 if self.count else 0.0


@dataclass
class Probe:
    """What the benchmark observes inside the hawatch process (on the loop's thread)."""

    applied: list[tuple[float, float, float]] = field(default_factory=list)
    """(applied at, clock → applied, arrival → applied) for every task event with a clock."""
    disconnects: int = 0
    update: Timing = field(default_factory=Timing)
    """hawatch's render tick (`HawatchApp.refresh_view`: the core's snapshot into widgets)."""
    paint: Timing = field(default_factory=Timing)
    """Textual's screen updates (layout and compositing of what changed)."""
    stall: float = 0.0
    """The longest the loop took to wake a 20 ms sleep, beyond the 20 ms."""
    drains: int = 0
    """Batches of events from the threads drained on the loop (one loop wake-up each)."""
    gate: threading.Event = field(default_factory=threading.Event)
    """Cleared: the Celery event receiver waits before handing on its next event."""

    def reset(self) -> tuple[Timing, Timing, float]:
        out = (self.update, self.paint, self.stall)
        self.update, self.paint, self.stall = Timing(), Timing(), 0.0
        return out


@dataclass
class Sample:
    at: float
    applied: int
    totals: dict[str, int]
    hawatch: float
    loop: int
    """Ticks of the main thread: the event loop, the TUI and the core."""
    receiver: int
    """Ticks of the Celery event source's thread."""
    workers: int
    redis: int
    producers: int
    machine: int
    backlog: int
    omem: int


@dataclass
class Step:
    name: str
    """The target rate in tasks/s, ``idle``, ``fill`` or ``burst``."""
    target: float
    """Tasks/s the producers were asked for (0 for idle, fill and burst)."""
    seconds: float
    applied_rate: float
    backlog: int
    lags: list[float]
    inside: list[float]
    cpu: dict[str, float]
    update: Timing
    paint: Timing
    stall: float
    omem: int
    disconnects: int
    events: int
    """Task events the tracker applied in the window."""
    drains: int
    """Loop wake-ups that drained events from the threads in the window."""
    task_rate: float = 0.0
    """Tasks/s sent (the burst: finished)."""
    events_per_task: int = 4
    failed: int = 0

    @property
    def expected_rate(self) -> float:
        return self.task_rate * self.events_per_task

    @property
    def p99(self) -> float:
        return percentile(self.lags, 0.99)

    @property
    def hawatch_kept_up(self) -> bool:
        return bool(self.lags) and self.p99 < LAG_LIMIT and not self.disconnects

    @property
    def producers_kept_up(self) -> bool:
        return self.task_rate >= 0.95 * self.target

    @property
    def workers_kept_up(self) -> bool:
        return self.backlog <= max(50, BACKLOG_LIMIT * self.target) and (
            self.applied_rate >= 0.95 * self.expected_rate
        )


def broker_readings(lab: Any) -> tuple[int, int]:
    """(messages waiting in the `celery` queue, largest pub/sub client output buffer)."""
    try:
        master = lab.current_master()
        backlog = int(master.call("LLEN", "celery"))
        clients = master.call("CLIENT", "LIST", "TYPE", "pubsub")
    except Exception:
        return -1, -1
    omem = 0
    for line in str(clients).splitlines():
        for part in line.split():
            if part.startswith("omem="):
                omem = max(omem, int(part[5:]))
    return backlog, omem


def instrument(app: Any, probe: Probe) -> None:
    """Wrap the monitor's `feed` and the app's render tick, in this process only."""
    from textual.screen import Screen

    from hawatch.core.events import BrokerDisconnected, TaskEvent

    monitor = app.monitor
    feed: Callable[[Any], None] = monitor.feed
    applied = probe.applied

    def timed_feed(event: Any) -> None:
        feed(event)
        if type(event) is TaskEvent:
            clock = event.clock
            if clock is not None:
                now = time.time()
                applied.append((now, now - clock, now - event.ts))
        elif isinstance(event, BrokerDisconnected):
            probe.disconnects += 1

    monitor.feed = timed_feed  # the sources look it up when the monitor starts them
    from_thread: Callable[[Any], None] = monitor._from_thread
    gate = probe.gate
    gate.set()

    def gated(event: Any) -> None:
        gate.wait()
        from_thread(event)

    monitor._from_thread = gated  # the Celery source is given it when the monitor starts it
    drain: Callable[[], None] = monitor._drain

    def counted_drain() -> None:
        probe.drains += 1
        drain()

    monitor._drain = counted_drain  # looked up at each wake-up
    refresh: Callable[[], None] = app.refresh_view

    def timed_refresh() -> None:
        start = time.perf_counter()
        refresh()
        probe.update.add(time.perf_counter() - start)

    app.refresh_view = timed_refresh  # on_mount sets the 4 Hz interval with this

    # Textual's screen update: the screen's timer holds the bound method, so wrap it in
    # the class, before the app makes its screen (this process only; private API).
    on_timer_update = getattr(Screen, "_on_timer_update", None)
    if on_timer_update is not None:

        def timed_update(screen: Any) -> None:
            start = time.perf_counter()
            on_timer_update(screen)
            probe.paint.add(time.perf_counter() - start)

        Screen._on_timer_update = timed_update  # type: ignore[method-assign, assignment]


async def watch_loop(probe: Probe) -> None:
    """Record the longest time the event loop took to wake a 20 ms sleep, beyond 20 ms."""
    while True:
        start = time.perf_counter()
        await asyncio.sleep(0.02)
        probe.stall = max(probe.stall, time.perf_counter() - start - 0.02)


class Bench:
    """The lab, the app under test and the producers, and how to measure a window."""

    def __init__(self, lab: Any, app: Any, workers: Sequence[Any], args: argparse.Namespace):
        self.lab = lab
        self.app = app
        self.args = args
        self.workers = list(workers)
        self.probe = Probe()
        self.producers: list[Any] = []
        self.redis = [node.pid for node in [*lab.data_nodes, *lab.sentinel_nodes] if node.pid]
        self.tasks_sent = 0
        """Every task the producers reported sent, warm-ups included."""
        self._disconnects = 0
        self._drains = 0
        self._starts = 0

    def totals(self) -> dict[str, int]:
        return dict(self.app.monitor.tasks.snapshot(time.time(), limit=0).totals)

    async def sample(self) -> Sample:
        backlog, omem = await asyncio.to_thread(broker_readings, self.lab)
        totals = self.totals()
        return Sample(
            at=time.time(),
            applied=sum(totals.values()),
            totals=totals,
            hawatch=self_cpu(),
            loop=thread_ticks("MainThread"),
            receiver=thread_ticks(RECEIVER_THREAD),
            workers=sum(tree_ticks(proc.pid) for proc in self.workers),
            redis=sum(tree_ticks(pid) for pid in self.redis),
            producers=sum(tree_ticks(proc.pid) for proc in self.producers),
            machine=machine_ticks(),
            backlog=backlog,
            omem=omem,
        )

    async def begin(self) -> Sample:
        sample = await self.sample()
        self.probe.reset()
        self._disconnects = self.probe.disconnects
        self._drains = self.probe.drains
        return sample

    async def end(self, name: str, target: float, before: Sample) -> Step:
        """A window's figures from the samples at its ends and what the probe saw."""
        after = await self.sample()
        seconds = after.at - before.at
        window = [row for row in self.probe.applied if before.at <= row[0] < after.at]
        busy = (after.machine - before.machine) / TICK
        parts = {
            "hawatch": after.hawatch - before.hawatch,
            "workers": (after.workers - before.workers) / TICK,
            "redis": (after.redis - before.redis) / TICK,
            "producers": (after.producers - before.producers) / TICK,
        }
        parts["other"] = max(0.0, busy - sum(parts.values()))
        parts["idle"] = max(0.0, (os.cpu_count() or 1) * seconds - busy)
        parts["loop"] = (after.loop - before.loop) / TICK
        parts["receiver"] = (after.receiver - before.receiver) / TICK
        update, paint, stall = self.probe.reset()
        return Step(
            name=name,
            target=target,
            seconds=seconds,
            applied_rate=(after.applied - before.applied) / seconds,
            backlog=after.backlog,
            lags=sorted(row[1] for row in window),
            inside=sorted(row[2] for row in window),
            cpu={key: value / seconds * 100 for key, value in parts.items()},
            update=update,
            paint=paint,
            stall=stall,
            omem=after.omem,
            disconnects=self.probe.disconnects - self._disconnects,
            events=after.applied - before.applied,
            drains=self.probe.drains - self._drains,
        )

    async def sleep_until(self, when: float) -> None:
        while True:
            left = when - time.time()
            if left <= 0:
                return
            if self.app.return_code is not None:
                raise KeyboardInterrupt  # the app was told to quit (SIGTERM, SIGHUP)
            await asyncio.sleep(min(0.1, left))

    async def wait_for(self, what: str, check: Callable[[], bool], timeout: float) -> bool:
        """Wait until `check()`; False after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        while not check():
            if time.monotonic() > deadline:
                return False
            if self.app.return_code is not None:
                raise KeyboardInterrupt
            await asyncio.sleep(0.05)
        return True

    async def must(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        if not await self.wait_for(what, check, timeout):
            raise RuntimeError(f"timed out after {timeout:g} s waiting for {what}")

    async def start_producers(self, burst: int = 0) -> float:
        """Start the producers of the steps (or of a burst), wait until they are connected,
        and give them the start time (returned)."""
        from hawatch.lab import ManagedProcess
        from hawatch.lab.worker import lab_env

        args, lab = self.args, self.lab
        count = args.burst_producers if burst else args.producers
        assert lab.directory is not None
        self._starts += 1
        tag = f"{self._starts}-{'burst' if burst else 'steps'}"
        go_file = lab.directory / f"go-{tag}"
        argv = [sys.executable, str(Path(__file__).resolve()), "--producer"]
        argv += ["--steps", args.steps, "--seconds", str(args.seconds), "--gap", str(args.gap)]
        argv += ["--producers", str(count), "--go-file", str(go_file)]
        argv += ["--burst", str(burst)]
        self.producers = [
            lab.register(
                ManagedProcess(
                    f"producer-{tag}-{index}",
                    argv,
                    log_path=lab.directory / f"producer-{tag}-{index}" / "producer.log",
                    cwd=REPO,
                    env=lab_env(lab, args.profile),
                )
            )
            for index in range(count)
        ]

        def ready() -> bool:
            for proc in self.producers:
                if not proc.running:
                    raise RuntimeError(f"a producer exited: {proc.log_tail(3)}")
            return all("ready" in proc.log_tail(5) for proc in self.producers)

        await self.must("the producers to connect", ready, 60)
        self.tasks_sent += len(self.producers)  # the warm-ups
        t0 = time.time() + 1.0  # the warm-ups' events arrive meanwhile
        go_file.write_text(repr(t0))
        return t0

    def producer_lines(self) -> list[dict[str, Any]]:
        lines: list[dict[str, Any]] = []
        for proc in self.producers:
            try:
                text = proc.log_path.read_text(errors="replace")
            except OSError:
                continue
            lines.extend(json.loads(line) for line in text.splitlines() if line.startswith("{"))
        return lines

    def set_sent(self, step: Step, key: int | str) -> None:
        """The producers' achieved rate for `key`, from the lines they printed."""
        mine = [line for line in self.producer_lines() if line["step"] == key]
        span = max((line["end"] - line["start"] for line in mine), default=0.0)
        sent = sum(line["sent"] for line in mine)
        self.tasks_sent += sent
        step.task_rate = sent / span if span > 0 else 0.0
        step.failed = sum(line["failed"] for line in mine)

    def stop_producers(self) -> None:
        for proc in self.producers:
            proc.stop(timeout=5.0)

    def all_done(self) -> bool:
        totals = self.totals()
        return min(totals.get(state, 0) for state in STATES) >= self.tasks_sent

    async def drain(self, timeout: float = 120.0) -> bool:
        """Wait until the tracker saw every task sent so far finish (False after `timeout`)."""
        return await self.wait_for("every task to finish", self.all_done, timeout)


async def run(lab: Any, workers: Sequence[Any], args: argparse.Namespace) -> list[Step]:
    from hawatch.monitor import CeleryOptions
    from hawatch.views.app import HawatchApp

    app = HawatchApp(lab.settings(masters=(lab.master_name,)), celery=CeleryOptions())
    bench = Bench(lab, app, workers, args)
    instrument(app, bench.probe)
    results: list[Step] = []
    async with app.run_test(size=(120, 40)):
        watcher = asyncio.create_task(watch_loop(bench.probe))
        try:
            monitor = app.monitor
            await bench.must("hawatch's Celery side", lambda: monitor.celery_started, 30)

            def heartbeats() -> bool:
                seen = monitor.tasks.snapshot(time.time(), limit=0).workers
                return len(seen) >= len(workers)

            await bench.must("every worker's heartbeat", heartbeats, 30)
            before = await bench.begin()
            await bench.sleep_until(time.time() + min(5.0, args.seconds))
            results.append(await bench.end("idle", 0, before))
            print_step(results[-1])
            await run_steps(bench, results)
            if args.burst:
                await run_burst(bench, results)
            if args.catch_up:
                await run_catch_up(bench, results)
            drained = await bench.drain(30)
            counts = ", ".join(f"{state} {bench.totals().get(state, 0):,}" for state in STATES)
            print(
                f"after the run: {bench.tasks_sent:,} tasks sent; the tracker saw {counts}"
                + ("" if drained else " (NOT ALL)")
            )
        finally:
            watcher.cancel()
    return results


async def run_steps(bench: Bench, results: list[Step]) -> None:
    args = bench.args
    steps = parse_steps(args.steps)
    t0 = await bench.start_producers()
    for index, target in enumerate(steps):
        start = t0 + index * (args.seconds + args.gap)
        await bench.sleep_until(start)
        before = await bench.begin()
        await bench.sleep_until(start + args.seconds)
        step = await bench.end(f"{target:,.0f}", target, before)
        await bench.sleep_until(start + args.seconds + 0.5)  # the producers' lines
        bench.set_sent(step, index)
        results.append(step)
        print_step(step)
        saturated = step.backlog > BACKLOG_LIMIT * step.target or step.p99 > 5.0
        if saturated and not args.all_steps and index < len(steps) - 1:
            print("  the lab is saturated: later steps would only measure the backlog")
            break
    bench.stop_producers()
    if not await bench.drain():
        print("  the backlog did not drain within 120 s")


async def fill(bench: Bench, tasks: int) -> Step:
    """With the workers paused: the producers send `tasks` as fast as they can."""
    t0 = await bench.start_producers(burst=tasks)
    await bench.sleep_until(t0)
    before = await bench.begin()
    lines = bench.producer_lines
    await bench.must("the tasks to be sent", lambda: len(lines()) >= len(bench.producers), 600)
    step = await bench.end("fill", 0, before)
    bench.set_sent(step, "burst")
    step.events_per_task = 1
    sent = bench.tasks_sent

    def sent_seen() -> bool:
        return bench.totals().get("sent", 0) >= sent

    await bench.wait_for("every task-sent event", sent_seen, 30)
    bench.stop_producers()
    return step


def pause(workers: Sequence[Any], paused: bool) -> None:
    for worker in workers:
        if paused:
            worker.pause()
        else:
            worker.resume()


async def run_burst(bench: Bench, results: list[Step]) -> None:
    """Fill the queue with the workers paused, then time the workers draining it."""
    pause(bench.workers, True)
    try:
        step = await fill(bench, bench.args.burst)
        results.append(step)
        print_step(step)
        first = bench.totals().get("succeeded", 0)
        before = await bench.begin()
    finally:
        pause(bench.workers, False)
    drained = await bench.drain(600)
    burst = await bench.end("burst", 0, before)
    burst.task_rate = (bench.totals().get("succeeded", 0) - first) / burst.seconds
    burst.events_per_task = 3
    results.append(burst)
    print_step(burst)
    if not drained:
        print("  the workers did not drain the burst within 600 s")


async def buffered(bench: Bench) -> int:
    """Bytes Redis holds for its busiest pub/sub client (hawatch's receiver)."""
    return (await asyncio.to_thread(broker_readings, bench.lab))[1]


async def run_catch_up(bench: Bench, results: list[Step]) -> None:
    """hawatch's own ceiling on real worker events: let them pile up in Redis, then time
    hawatch reading them with the lab paused.

    With the workers paused, the producers queue ``--catch-up`` tasks; then hawatch's
    event receiver is held (its callback waits on a gate, so it stops reading and Redis
    buffers the events for it) while the workers run for ``--catch-up-seconds`` (or
    until Redis holds 16 MB for it); then the workers are paused again and the gate
    opened: hawatch reads the backlog with the machine to itself, TUI running.
    """
    args, gate = bench.args, bench.probe.gate
    pause(bench.workers, True)
    before: Sample | None = None
    try:
        await fill(bench, args.catch_up)
        gate.clear()
        pause(bench.workers, False)
        held = time.time()
        omem = 0
        while time.time() - held < args.catch_up_seconds and omem < HOLD_LIMIT:
            await asyncio.sleep(0.25)
            omem = await buffered(bench)
        pause(bench.workers, True)
        await asyncio.sleep(0.5)  # what the workers had on the wire reaches Redis
        before = await bench.begin()
    finally:
        gate.set()
    try:
        quiet = 0.0
        last = -1
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            applied = sum(bench.totals().values())
            if applied != last:
                last, quiet = applied, time.monotonic()
            elif time.monotonic() - quiet > 0.5 and await buffered(bench) == 0:
                break
            await asyncio.sleep(0.05)
        step = await bench.end("catch-up", 0, before)
        rows = [row[0] for row in bench.probe.applied if row[0] >= before.at]
        if rows:  # up to the last event, not to when the quiet was noticed
            step.applied_rate = step.events / (rows[-1] - before.at)
        step.omem = omem
        results.append(step)
        print_step(step)
    finally:
        pause(bench.workers, False)
    if not await bench.drain(600):
        print("  the workers did not finish the catch-up tasks within 600 s")


# -- printing ----------------------------------------------------------------------------


def ms(value: float) -> str:
    return "-" if value != value else f"{value * 1e3:,.0f}"


def print_step(step: Step) -> None:
    if step.name == "idle":
        print(f"  idle: hawatch cpu {step.cpu['hawatch']:.0f}%", flush=True)
        return
    print(
        f"  {step.name:>5}: tasks {step.task_rate:,.0f}/s, applied {step.applied_rate:,.0f} "
        f"ev/s, backlog {step.backlog:,}, lag p50 {ms(percentile(step.lags, 0.5))} ms "
        f"p99 {ms(step.p99)} ms, hawatch cpu {step.cpu['hawatch']:.0f}%, "
        f"broker disconnects {step.disconnects}",
        flush=True,
    )


def print_tables(results: Sequence[Step]) -> None:
    print()
    print(
        "step      tasks/s  expected  applied  backlog  lag from the sender's clock  "
        "in hawatch  kept up      events per"
    )
    print(
        "task/s             ev/s      ev/s     tasks    p50 ms  p99 ms  max ms       "
        "p99 ms      hawatch/lab  wake-up"
    )
    for s in results:
        if s.name == "idle":
            continue
        lab = "-" if not s.target else "yes" if s.producers_kept_up and s.workers_kept_up else "no"
        kept = "yes" if s.hawatch_kept_up else "no"
        if s.name == "catch-up":
            kept = "-"  # the lag is the hold, by design
        print(
            f"{s.name:>8}  {s.task_rate:>7,.0f}  {s.expected_rate:>8,.0f}  "
            f"{s.applied_rate:>7,.0f}  {s.backlog:>7,}  {ms(percentile(s.lags, 0.5)):>6}  "
            f"{ms(s.p99):>6}  {ms(s.lags[-1] if s.lags else float('nan')):>6}       "
            f"{ms(percentile(s.inside, 0.99)):>6}      "
            f"{kept + '/' + lab:<11}  {s.events / max(1, s.drains):>7.1f}"
        )
    print()
    print(
        "step      cpu, % of one core                                     "
        "|hawatch's tick   |Textual's paint  |loop   pubsub"
    )
    print(
        "task/s    hawatch (loop+receiver) workers redis producers other idle  "
        "|/s  mean ms max ms|/s  mean ms max ms|max ms omem B"
    )
    for s in results:
        c = s.cpu
        split = f"({c['loop']:.0f}+{c['receiver']:.0f})"
        update, paint = s.update, s.paint
        print(
            f"{s.name:>8}  {c['hawatch']:>7.0f} {split:<15} {c['workers']:>7.0f} "
            f"{c['redis']:>5.0f} {c['producers']:>9.0f} {c['other']:>5.0f} {c['idle']:>4.0f}  "
            f"{update.count / s.seconds:>3.1f} {update.mean_ms():>7.1f} "
            f"{update.longest * 1e3:>6.1f} "
            f"{paint.count / s.seconds:>3.0f} {paint.mean_ms():>7.1f} "
            f"{paint.longest * 1e3:>6.1f} {s.stall * 1e3:>6.0f} {s.omem:>6,}"
        )


def print_summary(results: Sequence[Step]) -> None:
    print()
    idle = next((s for s in results if s.name == "idle"), None)
    steps = [s for s in results if s.target]
    worked = [s for s in results if s.name not in ("idle", "fill", "catch-up")]
    best = max((s for s in worked if s.hawatch_kept_up), key=lambda s: s.applied_rate, default=None)
    if best is None:
        print(f"hawatch kept the p99 lag under {LAG_LIMIT:g} s with no load from workers")
    else:
        verdict = "meets" if best.applied_rate >= TARGET else "is below"
        where = "the burst" if best.name == "burst" else f"the {best.name} tasks/s step"
        print(
            f"highest rate from real workers hawatch kept up with: {best.applied_rate:,.0f} "
            f"task events/s ({where}; lag p50 {ms(percentile(best.lags, 0.5))} ms, "
            f"p99 {ms(best.p99)} ms; hawatch {best.cpu['hawatch']:.0f}% of one core); "
            f"it {verdict} the target of {TARGET:,} events/s"
        )
    lost = [s for s in steps if not s.hawatch_kept_up]
    short = [s for s in steps if not (s.producers_kept_up and s.workers_kept_up)]
    if lost and (not short or steps.index(lost[0]) <= steps.index(short[0])):
        first = lost[0]
        print(
            f"limit: hawatch: at {first.name} tasks/s its p99 lag was {ms(first.p99)} ms "
            f"({first.disconnects} broker disconnects) while the lab kept up"
        )
    elif short:
        first = short[0]
        who = "the producers" if not first.producers_kept_up else "the workers"
        print(
            f"limit: the lab, not hawatch: from {first.name} tasks/s {who} fell short "
            f"(sent {first.task_rate:,.0f} tasks/s, backlog {first.backlog:,} tasks, "
            f"{first.cpu['idle']:.0f}% of one core left idle on the machine), while hawatch's "
            f"p99 lag was {ms(first.p99)} ms"
        )
    elif steps:
        print("limit: none reached, every step was kept up; try higher --steps")
    fill = next((s for s in results if s.name == "fill"), None)
    if fill is not None:
        print(
            f"task-sent events alone (the fill, from the producers): {fill.applied_rate:,.0f} "
            f"ev/s applied, p99 lag {ms(fill.p99)} ms"
        )
    catch_up = next((s for s in results if s.name == "catch-up"), None)
    if catch_up is not None:
        print(
            f"hawatch's own ceiling (the catch-up: real worker events buffered in Redis, read "
            f"with the lab paused and the TUI running): {catch_up.applied_rate:,.0f} ev/s "
            f"({catch_up.events:,} events, {catch_up.events / catch_up.drains:,.0f} per loop "
            "wake-up), "
            f"hawatch {catch_up.cpu['hawatch']:.0f}% of one core "
            f"(loop {catch_up.cpu['loop']:.0f}%, receiver {catch_up.cpu['receiver']:.0f}%), "
            f"{catch_up.cpu['hawatch'] / 100 * catch_up.seconds / catch_up.events * 1e6:,.0f} "
            "µs of CPU per event"
        )
    if idle is not None and best is not None and best.applied_rate > 0:
        per_event = (best.cpu["hawatch"] - idle.cpu["hawatch"]) / 100 / best.applied_rate
        if per_event > 0:
            ceiling = (1 - idle.cpu["hawatch"] / 100) / per_event
            print(
                f"hawatch's CPU: {idle.cpu['hawatch']:.0f}% of one core idle, about "
                f"{per_event * 1e6:,.0f} µs more per event at {best.applied_rate:,.0f} ev/s; "
                f"a core of its own would last to roughly {ceiling:,.0f} ev/s "
                "(a linear extrapolation, not a measurement)"
            )


# -- main --------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--steps", default="100,200,300,400,500,600,800")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of a step")
    parser.add_argument("--gap", type=float, default=3.0, help="seconds between steps")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers")
    parser.add_argument("--concurrency", type=int, default=2, help="pool processes per worker")
    parser.add_argument("--producers", type=int, default=1, help="producer processes")
    parser.add_argument(
        "--burst", type=int, default=20_000, help="tasks for the burst (0: no burst)"
    )
    parser.add_argument(
        "--burst-producers", type=int, default=2, help="producer processes for the burst"
    )
    parser.add_argument(
        "--catch-up", type=int, default=10_000, help="tasks for the catch-up (0: none)"
    )
    parser.add_argument(
        "--catch-up-seconds", type=float, default=6.0, help="how long hawatch is held"
    )
    parser.add_argument("--profile", default="default", choices=("default", "tuned"))
    parser.add_argument("--all-steps", action="store_true", help="do not stop when saturated")
    parser.add_argument("--base-dir", type=Path, default=None, help="where the lab's files go")
    parser.add_argument("--producer", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--go-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.producer:
        produce(args)
        return
    parse_steps(args.steps)

    from hawatch.lab import LabCluster, LabConfig, pid_alive, signals_raise_interrupt, started_pids
    from hawatch.lab.worker import start_worker

    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}")
    print(
        f"lab: 1 master, 2 replicas, 3 sentinels; {args.workers} worker(s) x "
        f"{args.concurrency} prefork process(es), profile {args.profile}; "
        f"{args.producers} producer(s); steps of {args.seconds:g} s every "
        f"{args.seconds + args.gap:g} s; burst of {args.burst:,} tasks from "
        f"{args.burst_producers} producer(s)"
    )
    started = time.monotonic()
    interrupted = False
    results: list[Step] = []
    try:
        with (
            signals_raise_interrupt(),
            LabCluster(LabConfig.fast(base_dir=args.base_dir)) as lab,
        ):
            workers = [
                start_worker(
                    lab, name=f"bench{index}", concurrency=args.concurrency, profile=args.profile
                )
                for index in range(args.workers)
            ]
            results = asyncio.run(run(lab, workers, args))
    except KeyboardInterrupt:
        interrupted = True
    left = [pid for pid in started_pids() if pid_alive(pid)]
    print(
        f"{'interrupted after' if interrupted else 'ran'} {time.monotonic() - started:.0f} s; "
        + (f"STILL RUNNING: pids {left}" if left else "every lab process stopped")
    )
    if interrupted:
        raise SystemExit(130)
    print_tables(results)
    print_summary(results)


if __name__ == "__main__":
    main()
