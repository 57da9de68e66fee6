"""How long a `+switch-master` takes from the sentinel to hawatch's core state.

Runs real forced failovers (`SENTINEL FAILOVER`) on a fast lab, one after the
other, with hawatch's Sentinel source (`SentinelWatcher`) feeding a
`ClusterState`. A sentinel refuses `PUBLISH` from clients ("Only HELLO messages
are accepted by Sentinel instances"), so messages cannot be injected: every
sample is a real failover. For each one it prints, in milliseconds:

- sentinel log → applied: from the leader's log line for `+switch-master`
  (Sentinel logs each event just before publishing it; the log has 1 ms
  resolution, truncated, so this overstates by 0-1 ms) to the moment
  `ClusterState.apply` returned;
- raw subscriber → applied: from the arrival of the same message at a minimal
  blocking-socket subscriber in another process (the best stand-in for "the
  moment it was published") to applied;
- sentinel log → raw subscriber: Sentinel's own delay between logging the
  event and writing it to subscribers (it rewrites and fsyncs its config
  file in between), plus the loopback hop;
- hawatch arrival → applied: from the source reading the message (the event's
  `ts`) to applied, i.e. parsing, emitting and applying.

    .venv/bin/python benchmarks/switch_latency.py --runs 20
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hawatch.core.cluster import ClusterState
from hawatch.core.events import Event, SentinelMessage
from hawatch.lab import LabCluster, LabConfig, LabNode
from hawatch.sources.sentinel import SentinelWatcher

RAW_SUBSCRIBER = r"""
import socket, sys, time
sock = socket.create_connection((sys.argv[1], int(sys.argv[2])))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sock.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$14\r\n+switch-master\r\n")
out = open(sys.argv[3], "w", buffering=1)
while True:
    data = sock.recv(65536)
    now = time.time()
    if not data:
        break
    if b"message\r\n" in data:
        payload = data.rstrip(b"\r\n").rsplit(b"\r\n", 1)[-1].decode()
        out.write(f"{now!r}\t{payload}\n")
"""
"""A subscriber with no client library: it stamps each message the moment recv returns."""

LOG_LINE = re.compile(
    r"^\d+:X (?P<when>\d{1,2} \w{3} \d{4} \d{2}:\d{2}:\d{2})\.(?P<ms>\d{3}) . "
    r"\+switch-master (?P<payload>.*)$"
)


@dataclass
class Applied:
    """One `+switch-master` from the leader as hawatch saw it."""

    payload: str
    arrived: float
    """The event's `ts`: when the source read it."""
    applied: float
    """When `ClusterState.apply` returned."""


class Recorder:
    """The consumer of the source: applies every event and times the leader's switches."""

    def __init__(self, leader: str, master: str) -> None:
        self.state = ClusterState()
        self.leader = leader
        self.master = master
        self.switches: list[Applied] = []
        self.ready = False

    def switched(self, count: int) -> Callable[[], bool]:
        """A check that holds once `count` switches from the leader were applied."""
        return lambda: len(self.switches) >= count

    def emit(self, event: Event) -> None:
        """Apply `event`; note when a `+switch-master` from the leader is applied."""
        self.state.apply(event)
        applied = time.time()
        if (
            isinstance(event, SentinelMessage)
            and event.channel == "+switch-master"
            and event.sentinel == self.leader
        ):
            self.switches.append(Applied(event.payload, event.ts, applied))
            view = self.state.snapshot(applied).master(self.master)
            assert view is not None and view.address == event.new, "the switch was not applied"
        elif not self.ready:
            self.ready = self.state.snapshot(applied).master(self.master) is not None


async def until(check: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    """Wait on the event loop until `check()` holds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.01)


async def failovers(lab: LabCluster, leader: LabNode, recorder: Recorder, runs: int) -> None:
    """Fail over `runs` times through `leader`, waiting for a healthy cluster between runs."""
    for run in range(runs):
        old = await asyncio.to_thread(lab.current_master)
        await asyncio.to_thread(lab.failover, leader)
        # Nothing else runs in this process while the switch is awaited.
        await until(recorder.switched(run + 1), "the +switch-master")
        await asyncio.to_thread(lab.wait_for_new_master, old.port)
        await asyncio.to_thread(lab.wait_ready)


async def measure(lab: LabCluster, runs: int, raw_file: Path) -> Recorder:
    """Start the source and the raw subscriber, run the failovers, stop both."""
    leader = lab.sentinel_nodes[0]
    raw = subprocess.Popen(
        [sys.executable, "-c", RAW_SUBSCRIBER, leader.host, str(leader.port), str(raw_file)]
    )
    recorder = Recorder(str(leader.address), lab.master_name)
    task = asyncio.create_task(SentinelWatcher(lab.settings(), recorder.emit).run())
    try:
        await until(lambda: recorder.ready, "the first topology report")
        await failovers(lab, leader, recorder, runs)
        await asyncio.sleep(0.5)  # let the raw subscriber write its last line
    finally:
        task.cancel()
        await asyncio.wait({task})
        raw.terminate()
        raw.wait(timeout=10)
    return recorder


def logged_switches(log: Path) -> list[tuple[str, float]]:
    """(payload, Unix time) of every `+switch-master` line in a sentinel's log."""
    found = []
    for line in log.read_text(errors="replace").splitlines():
        match = LOG_LINE.match(line)
        if match:
            when = time.mktime(time.strptime(match["when"], "%d %b %Y %H:%M:%S"))
            found.append((match["payload"], when + int(match["ms"]) / 1000))
    return found


def raw_switches(path: Path) -> list[tuple[str, float]]:
    """(payload, Unix time) of every message the raw subscriber stamped."""
    found = []
    for line in path.read_text().splitlines():
        stamp, payload = line.split("\t", 1)
        found.append((payload, float(stamp)))
    return found


def summary(label: str, seconds: list[float]) -> None:
    """Print median, p99 and max of `seconds`, in milliseconds."""
    ms = sorted(s * 1000 for s in seconds)
    p99 = statistics.quantiles(ms, n=100, method="inclusive")[98] if len(ms) > 1 else ms[0]
    print(
        f"{label:<31} runs={len(ms)}  median={statistics.median(ms):.2f}ms  "
        f"p99={p99:.2f}ms  max={ms[-1]:.2f}ms"
    )


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    with LabCluster(LabConfig.fast()) as lab:
        assert lab.directory is not None
        started = time.perf_counter()
        recorder = asyncio.run(measure(lab, args.runs, lab.directory / "raw.tsv"))
        elapsed = time.perf_counter() - started
        logged = logged_switches(lab.sentinel_nodes[0].directory / "server.log")
        raw = raw_switches(lab.directory / "raw.tsv")
    applied = recorder.switches
    print(f"{len(applied)} forced failovers in {elapsed:.0f} s")
    if not len(logged) == len(raw) == len(applied):
        raise SystemExit(f"unmatched: {len(logged)} logged, {len(raw)} raw, {len(applied)} applied")
    for (log_payload, _), (raw_payload, _), switch in zip(logged, raw, applied, strict=True):
        if not log_payload == raw_payload == switch.payload:
            raise SystemExit(f"out of step: {log_payload!r} {raw_payload!r} {switch.payload!r}")
    report(logged, raw, applied)


def report(
    logged: list[tuple[str, float]], raw: list[tuple[str, float]], applied: list[Applied]
) -> None:
    """Print the four figures, from matched lists (one entry per failover, in order)."""
    logged_at = [t for _, t in logged]
    raw_at = [t for _, t in raw]
    applied_at = [s.applied for s in applied]
    summary("sentinel log → applied", [a - t for t, a in zip(logged_at, applied_at, strict=True)])
    summary(
        "sentinel log → raw subscriber", [r - t for t, r in zip(logged_at, raw_at, strict=True)]
    )
    summary("raw subscriber → applied", [a - r for r, a in zip(raw_at, applied_at, strict=True)])
    summary("hawatch arrival → applied", [s.applied - s.arrived for s in applied])


if __name__ == "__main__":
    main()
