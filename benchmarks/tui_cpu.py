"""TUI CPU: what `hawatch watch` costs in a real terminal, on a quiet cluster and under load.

Starts a lab (master, 2 replicas, 3 sentinels, with Sentinel's default periods
unless ``--fast``), real Celery workers of the demo app (`start_worker`:
prefork, events on), and the real command, ``hawatch watch --sentinel ...
--master mymaster --canary 0 --no-journal`` (``--journal`` records to a file in
the lab's directory instead), run with ``exec`` in a private tmux server (its
own ``-L`` socket, no config of the user's, an 80x24 pane with no status line,
``TERM=xterm-256color``), so the process is the pane's and its whole output is
drawn by a terminal, as over SSH. Nothing is injected into hawatch: its CPU is
read from ``/proc/<pid>/stat`` (utime + stime, every thread).

Once the pane first shows the master's address, and a warm-up, it measures:

- quiet: the workers up, nothing sent (canary off), for ``--seconds``;
- loaded: `start_loadgen` processes (``--loadgens``, the lab's own load
  generator, ``--slow-every 0``: two thirds `demo.checkout`, 20-80 ms asleep,
  one third `demo.add`) at ``--rate`` tasks/s in all, each task giving four
  task events (sent by the producer; received, started, succeeded by a
  worker), so 250 tasks/s is about 1,000 task events/s; after a warm-up at
  that rate, for ``--seconds``.

Per part it prints a sample every ``--every`` seconds and a summary: hawatch's
CPU in % of one core (its main thread, which runs the event loop, the TUI and
the core, and its other threads, which read the Celery events and the terminal),
from the start to the end of the window; the tmux server's (the terminal drawing
what hawatch writes), the workers' (main and pool processes), the load
generators', the Redis servers' (data nodes and sentinels) and this script's,
what else ran on the machine and what was left idle, so the reader sees the
machine was shared; hawatch's resident memory. The event rate is what reached
the broker's pub/sub: this script subscribes to the lab master's Celery event
channels (``/0.celeryev/*``, as hawatch's receiver does) and counts the task
events and worker heartbeats published there; it also reads the largest
output buffer Redis holds for a pub/sub client (a receiver that falls behind
shows there) and the ``celery`` queue's backlog. That counting costs this
script's CPU, not hawatch's.

    .venv/bin/python benchmarks/tui_cpu.py                     # about 2.5 min
    .venv/bin/python benchmarks/tui_cpu.py --seconds 10 --warm-up 3
    .venv/bin/python benchmarks/tui_cpu.py --parts quiet --journal

Every process (the lab, the workers, the load generators, tmux and hawatch) is
stopped by pid at the end, on an error and on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
TARGET_QUIET = 2.0
"""% of one core the TUI may use on a quiet cluster (the issue's target)."""
TASK_EVENTS_PER_TASK = 4
TMUX_CONFIG = """\
set -g default-terminal "xterm-256color"
set -g default-size 80x24
set -g status off
set -g remain-on-exit on
set -g history-limit 100
"""
"""A private tmux server: an 80x24 pane (no status line), TERM=xterm-256color; a pane
whose command exits stays (dead), so its window and the server stay until killed."""


# -- the terminal --------------------------------------------------------------------------


def hawatch_executable() -> str:
    """The installed console script next to this Python (the venv's), else ``-m hawatch``."""
    script = Path(sys.executable).with_name("hawatch")
    return str(script) if script.exists() else f"{shlex.quote(sys.executable)} -m hawatch"


def watch_command(lab: Any, *extra: str) -> str:
    """The shell command that runs `hawatch watch` on `lab` as the pane's own process."""
    sentinels = " ".join(f"--sentinel {a}" for a in lab.sentinel_addresses)
    words = " ".join(shlex.quote(word) for word in extra)
    return f"exec {hawatch_executable()} watch {sentinels} --master {lab.master_name} {words}"


class Tmux:
    """A private tmux server (its own ``-L`` socket and config), stopped by kill-server and
    then, if it still runs, by its pid."""

    def __init__(self, directory: Path) -> None:
        self.socket = f"hawatch-bench-{uuid.uuid4().hex[:8]}"
        self.config = directory / "tmux.conf"
        self.config.write_text(TMUX_CONFIG)
        self.server_pid: int | None = None
        self.socket_path: Path | None = None

    def run(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, "-f", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=check,
            env={**os.environ, "TERM": "xterm-256color"},
        )
        return done.stdout

    def new_session(self, command: str, name: str = "bench") -> int:
        """Start the server with one 80x24 window running `command`; the pane's pid."""
        out = self.run(
            *("new-session", "-d", "-x", "80", "-y", "24", "-s", name),
            *("-P", "-F", "#{pid} #{pane_pid} #{socket_path}", command),
        )
        server, pane, socket_path = out.split(" ", 2)
        self.server_pid = int(server)
        self.socket_path = Path(socket_path.strip())
        return int(pane)

    def new_window(self, command: str, name: str) -> int:
        """Another 80x24 window running `command`; the pane's pid."""
        return int(self.run("new-window", "-d", "-n", name, "-P", "-F", "#{pane_pid}", command))

    def screen(self, target: str) -> str:
        """The pane's text as shown now ("" when it cannot be read)."""
        try:
            return self.run("capture-pane", "-p", "-t", target)
        except subprocess.CalledProcessError:
            return ""

    def kill_window(self, target: str) -> None:
        self.run("kill-window", "-t", target, check=False)

    def kill_server(self) -> None:
        from hawatch.lab import pid_alive

        with contextlib.suppress(OSError, subprocess.SubprocessError):
            self.run("kill-server", check=False)
        if self.server_pid is not None and not wait_gone([self.server_pid], 5):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.server_pid, signal.SIGKILL)
        if self.socket_path is not None and not pid_alive(self.server_pid or 0):
            self.socket_path.unlink(missing_ok=True)  # a killed server leaves its socket


def wait_for_text(
    screen: Callable[[], str], needle: str, timeout: float, poll: float = 0.02
) -> float | None:
    """Poll `screen` every `poll` seconds; the monotonic time `needle` first showed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if needle in screen():
            return time.monotonic()
        time.sleep(poll)
    return None


def stop_pid(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM `pid`, then SIGKILL after `timeout` seconds if it still runs."""
    from hawatch.lab import pid_alive

    if not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not wait_gone([pid], timeout):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        wait_gone([pid], 5)


def wait_gone(pids: Sequence[int], timeout: float) -> bool:
    """True once none of `pids` runs (a zombie counts as gone)."""
    from hawatch.lab import pid_alive

    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


# -- CPU from /proc ------------------------------------------------------------------------


def stat_ticks(path: str) -> int:
    """utime + stime, in clock ticks, from a /proc stat file (0 when it is gone)."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0
    return int(fields[11]) + int(fields[12])


def children(pid: int) -> list[int]:
    """The live children of `pid`, from every one of its threads."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tasks:
        with (
            contextlib.suppress(OSError, ValueError),
            open(f"/proc/{pid}/task/{tid}/children", encoding="ascii") as f,
        ):
            found += [int(child) for child in f.read().split()]
    return found


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    for child in children(pid):
        out += [child, *descendants(child)]
    return out


def tree_ticks(pid: int) -> int:
    """CPU ticks of `pid` and its live descendants (a worker and its pool)."""
    return stat_ticks(f"/proc/{pid}/stat") + sum(
        stat_ticks(f"/proc/{child}/stat") for child in descendants(pid)
    )


def machine_ticks() -> tuple[int, int]:
    """(busy, idle) clock ticks of all cores since boot; waiting on I/O counts as idle."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values[:8]) - idle, idle


def rss_mib(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


# -- the event counter ---------------------------------------------------------------------


class EventCounter:
    """Counts the Celery events published on the lab master's pub/sub, in a thread.

    It subscribes to ``/0.celeryev/*``, the channels Celery's events travel on
    with kombu's Redis transport (the receiver hawatch runs reads the same), so it
    counts what reached hawatch's side of the broker, not what hawatch applied.
    """

    def __init__(self, lab: Any) -> None:
        node = lab.current_master()
        self.client = node.client(timeout=5.0)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        self.pubsub.psubscribe("/0.celeryev/*")
        self.task_events = 0
        self.heartbeats = 0
        self.succeeded = 0
        self.messages = 0
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="event-counter", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                message = self.pubsub.get_message(timeout=0.5)
            except Exception:  # the lab is stopping
                return
            if message is not None:
                self.messages += 1
                for event in decode_events(message["data"]):
                    kind = str(event.get("type", ""))
                    if kind.startswith("task-"):
                        self.task_events += 1
                        self.succeeded += kind == "task-succeeded"
                    elif kind == "worker-heartbeat":
                        self.heartbeats += 1

    def counts(self) -> tuple[int, int, int, int]:
        return self.task_events, self.succeeded, self.heartbeats, self.messages

    def close(self) -> None:
        self._stop.set()
        self.thread.join(2)
        with contextlib.suppress(Exception):
            self.pubsub.close()
            self.client.close()


def decode_events(data: str | bytes) -> list[dict[str, Any]]:
    """The Celery events in one pub/sub message: one, or a worker's ``task.multi`` batch."""
    try:
        envelope = json.loads(data)
        body = envelope["body"]
        if envelope.get("properties", {}).get("body_encoding") == "base64":
            body = base64.b64decode(body)
        payload = json.loads(body)
    except (ValueError, KeyError, TypeError):
        return []
    events = payload if isinstance(payload, list) else [payload]
    return [event for event in events if isinstance(event, dict)]


def broker_readings(lab: Any) -> tuple[int, int]:
    """(messages in the `celery` queue, largest output buffer of a pub/sub client), or -1s."""
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


# -- measuring ------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float
    hawatch: int
    main: int
    """Ticks of hawatch's main thread (the event loop: TUI and core)."""
    tmux: int
    workers: int
    loadgens: int
    redis: int
    script: int
    busy: int
    idle: int
    task_events: int
    succeeded: int
    heartbeats: int
    messages: int


@dataclass
class Part:
    name: str
    seconds: float = 0.0
    cpu: dict[str, float] = field(default_factory=dict)
    samples: list[float] = field(default_factory=list)
    """hawatch's % of one core in each ``--every`` slice of the window."""
    task_rate: float = 0.0
    succeeded_rate: float = 0.0
    heartbeat_rate: float = 0.0
    message_rate: float = 0.0
    """Pub/sub messages carrying events (a worker batches its task events)."""
    backlog: tuple[int, int] = (0, 0)
    omem: int = 0
    rss: float = 0.0
    journal_rate: float | None = None
    """Bytes/s hawatch appended to its journal (None: no journal)."""


class Bench:
    """The processes whose CPU is read, found by the pids the script started."""

    def __init__(self, lab: Any, tmux: Tmux, hawatch: int, counter: EventCounter) -> None:
        self.lab = lab
        self.tmux = tmux
        self.hawatch = hawatch
        self.counter = counter
        self.workers: list[int] = []
        self.loadgens: list[int] = []
        self.journal: Path | None = None

    def sample(self) -> Sample:
        busy, idle = machine_ticks()
        task_events, succeeded, heartbeats, messages = self.counter.counts()
        redis = [n.pid for n in [*self.lab.data_nodes, *self.lab.sentinel_nodes] if n.pid]
        return Sample(
            at=time.monotonic(),
            hawatch=stat_ticks(f"/proc/{self.hawatch}/stat"),
            main=stat_ticks(f"/proc/{self.hawatch}/task/{self.hawatch}/stat"),
            tmux=stat_ticks(f"/proc/{self.tmux.server_pid}/stat"),
            workers=sum(tree_ticks(pid) for pid in self.workers),
            loadgens=sum(tree_ticks(pid) for pid in self.loadgens),
            redis=sum(stat_ticks(f"/proc/{pid}/stat") for pid in redis),
            script=stat_ticks("/proc/self/stat"),
            busy=busy,
            idle=idle,
            task_events=task_events,
            succeeded=succeeded,
            heartbeats=heartbeats,
            messages=messages,
        )

    def journal_size(self) -> int:
        """Bytes in the journal's files (it rotates to numbered siblings)."""
        if self.journal is None:
            return 0
        return sum(
            path.stat().st_size
            for path in self.journal.parent.glob(self.journal.name + "*")
            if path.is_file()
        )

    def measure(self, name: str, seconds: float, every: float) -> Part:
        """Read everything at the start and the end of a `seconds` window, and hawatch's
        CPU every `every` seconds in between (printed as it goes)."""
        from hawatch.lab import pid_alive

        part = Part(name)
        journal0 = self.journal_size()
        first = self.sample()
        backlog0, omem = broker_readings(self.lab)
        last = first
        print(f"  {name}: measuring for {seconds:g} s", flush=True)
        while last.at - first.at < seconds - 1e-3:
            time.sleep(max(0.0, min(every, seconds - (time.monotonic() - first.at))))
            if not pid_alive(self.hawatch):
                raise SystemExit("hawatch exited during the measurement")
            now = self.sample()
            backlog, buffered = broker_readings(self.lab)
            omem = max(omem, buffered)
            pct = cpu(now.hawatch - last.hawatch, now.at - last.at)
            part.samples.append(pct)
            events = (now.task_events - last.task_events) / (now.at - last.at)
            print(
                f"    +{now.at - first.at:4.0f} s  hawatch {pct:5.1f}%  "
                f"(main thread {cpu(now.main - last.main, now.at - last.at):4.1f}%)  "
                f"task events {events:6,.0f}/s  backlog {backlog:,}",
                flush=True,
            )
            last = now
        span = last.at - first.at
        part.seconds = span

        def share(attr: str) -> float:
            return cpu(getattr(last, attr) - getattr(first, attr), span)

        part.cpu = {
            attr: share(attr)
            for attr in ("hawatch", "main", "tmux", "workers", "loadgens", "redis", "script")
        }
        part.cpu["others"] = part.cpu["hawatch"] - part.cpu["main"]
        known = sum(part.cpu[k] for k in ("hawatch", "tmux", "workers", "loadgens", "redis"))
        part.cpu["other"] = max(0.0, share("busy") - known - part.cpu["script"])
        part.cpu["idle"] = share("idle")
        part.task_rate = (last.task_events - first.task_events) / span
        part.succeeded_rate = (last.succeeded - first.succeeded) / span
        part.heartbeat_rate = (last.heartbeats - first.heartbeats) / span
        part.message_rate = (last.messages - first.messages) / span
        part.backlog = (backlog0, broker_readings(self.lab)[0])
        part.omem = omem
        part.rss = rss_mib(self.hawatch)
        if self.journal is not None:
            part.journal_rate = (self.journal_size() - journal0) / span
        return part


def cpu(ticks: int, seconds: float) -> float:
    """Clock ticks over `seconds` as % of one core."""
    return ticks / TICK / seconds * 100 if seconds > 0 else float("nan")


def print_part(part: Part) -> None:
    c = part.cpu
    samples = part.samples
    spread = (
        f"min {min(samples):.1f}  median {statistics.median(samples):.1f}  max {max(samples):.1f}"
        if samples
        else "-"
    )
    print(
        f"  {part.name}: hawatch {c['hawatch']:.1f}% of one core over {part.seconds:.0f} s "
        f"(main thread {c['main']:.1f}%, other threads {c['others']:.1f}%; "
        f"{len(samples)} samples: {spread}); RSS {part.rss:.0f} MiB"
        + ("" if part.journal_rate is None else f"; journal {part.journal_rate / 1e3:,.1f} kB/s"),
        flush=True,
    )


def print_table(parts: Sequence[Part]) -> None:
    print()
    print(
        "part      hawatch  (main+other)  tmux  workers  loadgen  redis  script  other  idle"
        "   task ev/s  in msgs/s  succeeded/s  heartbeats/s  backlog   omem B"
    )
    for p in parts:
        c = p.cpu
        split = f"({c['main']:.1f}+{c['others']:.1f})"
        print(
            f"{p.name:<8} {c['hawatch']:>7.1f}  {split:<12} {c['tmux']:>5.1f} "
            f"{c['workers']:>8.1f} {c['loadgens']:>8.1f} {c['redis']:>6.1f} "
            f"{c['script']:>7.1f} {c['other']:>6.1f} {c['idle']:>5.0f}"
            f"   {p.task_rate:>9,.0f}  {p.message_rate:>9,.0f}  {p.succeeded_rate:>11,.0f}"
            f"  {p.heartbeat_rate:>12.1f}  {p.backlog[0]:,}→{p.backlog[1]:,}  {p.omem:>9,}"
        )
    print(
        "(cpu in % of one core over the window; the machine has "
        f"{os.cpu_count()} cores, so 100% is half of it on 2 cores)"
    )


def print_summary(parts: Sequence[Part], first_screen: float) -> None:
    print()
    print(f"first screen with the master's address: {first_screen:.2f} s after the command")
    for p in parts:
        c = p.cpu
        if p.name == "quiet":
            verdict = "meets" if c["hawatch"] < TARGET_QUIET else "MISSES"
            print(
                f"quiet cluster: hawatch {c['hawatch']:.1f}% of one core "
                f"(tmux drawing it {c['tmux']:.1f}%); it {verdict} the target of "
                f"under {TARGET_QUIET:g}%"
            )
        else:
            print(
                f"loaded: {p.task_rate:,.0f} task events/s published "
                f"({p.succeeded_rate:,.0f} tasks/s succeeded, backlog "
                f"{p.backlog[0]:,}→{p.backlog[1]:,}): hawatch {c['hawatch']:.1f}% of one core "
                f"(main thread {c['main']:.1f}%, other threads {c['others']:.1f}%), tmux "
                f"{c['tmux']:.1f}%, workers {c['workers']:.0f}%, load generators "
                f"{c['loadgens']:.0f}%, redis {c['redis']:.0f}%, idle {c['idle']:.0f}%"
            )


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--seconds", type=float, default=60.0, help="length of each window")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warm-up", type=float, default=10.0, help="seconds before each window")
    parser.add_argument("--parts", default="quiet,loaded", help="quiet, loaded or both")
    parser.add_argument("--rate", type=float, default=250.0, help="tasks/s when loaded")
    parser.add_argument("--loadgens", type=int, default=2, help="load generator processes")
    parser.add_argument("--workers", type=int, default=2, help="Celery workers")
    parser.add_argument("--concurrency", type=int, default=8, help="prefork processes per worker")
    parser.add_argument(
        "--journal", action="store_true", help="record a journal (in the lab's directory)"
    )
    parser.add_argument(
        "--fast", action="store_true", help="the lab with short Sentinel periods (as the demo's)"
    )
    parser.add_argument("--base-dir", type=Path, default=None, help="where the lab's files go")
    args = parser.parse_args()
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    if not parts or set(parts) - {"quiet", "loaded"}:
        raise SystemExit("--parts takes quiet, loaded or quiet,loaded")

    from hawatch.lab import LabCluster, LabConfig, pid_alive, signals_raise_interrupt, started_pids
    from hawatch.lab.worker import start_loadgen, start_worker

    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}")
    config = LabConfig.fast if args.fast else LabConfig
    started = time.monotonic()
    interrupted = False
    results: list[Part] = []
    first_screen = float("nan")
    hawatch_pid: int | None = None
    tmux: Tmux | None = None
    try:
        with (
            signals_raise_interrupt(),
            LabCluster(config(base_dir=args.base_dir)) as lab,
        ):
            assert lab.directory is not None
            workers = [
                start_worker(lab, name=f"bench{i}", concurrency=args.concurrency)
                for i in range(args.workers)
            ]
            master = str(lab.current_master().address)
            journal = lab.directory / "journal.jsonl" if args.journal else None
            extra = ["--canary", "0"]
            extra += ["--journal", str(journal)] if journal is not None else ["--no-journal"]
            command = watch_command(lab, *extra)
            print(
                f"lab: 1 master, 2 replicas, 3 sentinels ({'fast' if args.fast else 'default'} "
                f"Sentinel periods); {args.workers} worker(s) x {args.concurrency} prefork "
                f"process(es)"
            )
            print(f"command: {command.removeprefix('exec ')}")
            print("terminal: a private tmux server, 80x24 pane, TERM=xterm-256color")
            counter = EventCounter(lab)
            tmux = Tmux(lab.directory)
            began = time.monotonic()
            hawatch_pid = tmux.new_session(command)
            shown = wait_for_text(lambda: tmux.screen("bench"), f"master {master}", 60)
            if shown is None:
                raise SystemExit(f"the master's address never showed:\n{tmux.screen('bench')}")
            first_screen = shown - began
            print(f"hawatch pid {hawatch_pid}; first screen with data after {first_screen:.2f} s")
            bench = Bench(lab, tmux, hawatch_pid, counter)
            bench.workers = [w.pid for w in workers]
            bench.journal = journal
            try:
                for name in parts:
                    if name == "loaded":
                        share = args.rate / args.loadgens
                        bench.loadgens = [
                            start_loadgen(lab, rate=share, slow_every=0).pid
                            for _ in range(args.loadgens)
                        ]
                        print(
                            f"  loaded: {args.loadgens} load generator(s) at {share:g} tasks/s "
                            f"each ({args.rate:g} tasks/s, about "
                            f"{args.rate * TASK_EVENTS_PER_TASK:,.0f} task events/s)"
                        )
                    print(f"  {name}: warm-up {args.warm_up:g} s", flush=True)
                    time.sleep(args.warm_up)
                    part = bench.measure(name, args.seconds, args.every)
                    print_part(part)
                    results.append(part)
            finally:
                counter.close()
                stop_pid(hawatch_pid)
                tmux.kill_server()
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if hawatch_pid is not None:
            stop_pid(hawatch_pid)
        if tmux is not None:
            tmux.kill_server()
    pids = [pid for pid in started_pids() if pid_alive(pid)]
    if hawatch_pid is not None and pid_alive(hawatch_pid):
        pids.append(hawatch_pid)
    print(
        f"{'interrupted after' if interrupted else 'ran'} {time.monotonic() - started:.0f} s; "
        + (f"STILL RUNNING: pids {pids}" if pids else "every process stopped")
    )
    if interrupted:
        raise SystemExit(130)
    print_table(results)
    print_summary(results, first_screen)


if __name__ == "__main__":
    main()
