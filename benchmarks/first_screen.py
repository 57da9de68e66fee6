"""First screen: time from the command to the first screen with data, in a real terminal.

Starts a lab (master, 2 replicas, 3 sentinels, with Sentinel's default periods
unless ``--fast``; optionally a Celery worker, ``--worker``) and a private tmux
server (its own ``-L`` socket, an 80x24 pane with no status line,
``TERM=xterm-256color``; see `tui_cpu.py`, whose terminal helper this shares),
both before any timer starts. Then, ``--runs`` times, it starts the timer, asks
tmux for a new window running ``exec hawatch watch --sentinel ... --master
mymaster --canary 0 --no-journal`` (the installed console script), and reads the
pane (``capture-pane``) every ``--poll`` seconds (20 ms) until it shows the lab
master's address (``master HOST:PORT``): Python starting, hawatch's imports,
Textual's start-up and first paint, the sentinels asked and their answer drawn.
It also notes when the pane first showed anything at all (Textual's first
paint, the header and empty panels). hawatch is then stopped by its pid
(SIGTERM) and the window closed before the next run.

The figure includes tmux starting the command (a few milliseconds) and up to
one poll interval plus one ``capture-pane`` of lateness; the first run may
also pay for a cold file cache. Prints each run, then min, median and max.

    .venv/bin/python benchmarks/first_screen.py                # about 15 s
    .venv/bin/python benchmarks/first_screen.py --runs 10 --worker

Every process (the lab, the worker, tmux and hawatch) is stopped by pid at the
end, on an error and on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

from tui_cpu import Tmux, stop_pid, watch_command

TARGET = 1.5
"""Seconds from the command to the first screen with data (the issue's target)."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.02, help="seconds between reads")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to give up a run")
    parser.add_argument("--worker", action="store_true", help="also run a Celery worker")
    parser.add_argument(
        "--fast", action="store_true", help="the lab with short Sentinel periods (as the demo's)"
    )
    parser.add_argument("--base-dir", type=Path, default=None, help="where the lab's files go")
    args = parser.parse_args()
    if args.runs < 1:
        raise SystemExit("--runs must be at least 1")

    from hawatch.lab import LabCluster, LabConfig, pid_alive, signals_raise_interrupt, started_pids
    from hawatch.lab.worker import start_worker

    print(f"machine: {os.cpu_count()} cores, python {platform.python_version()}")
    config = LabConfig.fast if args.fast else LabConfig
    started = time.monotonic()
    interrupted = False
    shown: list[float] = []
    painted: list[float] = []
    tmux: Tmux | None = None
    pane: int | None = None
    try:
        with (
            signals_raise_interrupt(),
            LabCluster(config(base_dir=args.base_dir)) as lab,
        ):
            assert lab.directory is not None
            if args.worker:
                start_worker(lab, name="bench")
            needle = f"master {lab.current_master().address}"
            command = watch_command(lab, "--canary", "0", "--no-journal")
            print(
                f"lab: 1 master, 2 replicas, 3 sentinels ({'fast' if args.fast else 'default'} "
                f"Sentinel periods){', a Celery worker' if args.worker else ''}; started "
                "before the timer"
            )
            print(f"command: {command.removeprefix('exec ')}")
            print(
                "terminal: a private tmux server (started before the timer), 80x24 pane, "
                f"TERM=xterm-256color; waiting for {needle!r}, read every {args.poll * 1e3:.0f} ms"
            )
            tmux = Tmux(lab.directory)
            tmux.new_session("true", name="bench")  # the server, with a dead pane kept
            for run in range(1, args.runs + 1):
                window = f"run{run}"
                target = f"bench:{window}"
                began = time.monotonic()
                pane = tmux.new_window(command, window)
                spawned = time.monotonic() - began
                first_paint: float | None = None
                found: float | None = None
                deadline = began + args.timeout
                while time.monotonic() < deadline:
                    screen = tmux.screen(target)
                    now = time.monotonic()
                    if first_paint is None and screen.strip():
                        first_paint = now - began
                    if needle in screen:
                        found = now - began
                        break
                    time.sleep(args.poll)
                stop_pid(pane)
                pane = None
                tmux.kill_window(target)
                if found is None or first_paint is None:
                    raise SystemExit(
                        f"run {run}: the master's address did not show within {args.timeout:g} s"
                    )
                shown.append(found)
                painted.append(first_paint)
                print(
                    f"  run {run}: master shown after {found:.3f} s "
                    f"(first paint {first_paint:.3f} s; tmux started the command in "
                    f"{spawned * 1e3:.0f} ms)",
                    flush=True,
                )
    except KeyboardInterrupt:
        interrupted = True
    finally:
        if pane is not None:
            stop_pid(pane)
        if tmux is not None:
            tmux.kill_server()
    left = [pid for pid in started_pids() if pid_alive(pid)]
    print(
        f"{'interrupted after' if interrupted else 'ran'} {time.monotonic() - started:.0f} s; "
        + (f"STILL RUNNING: pids {left}" if left else "every process stopped")
    )
    if interrupted:
        raise SystemExit(130)
    print()
    for label, values in (("first screen with data", shown), ("first paint", painted)):
        print(
            f"{label:<24} runs={len(values)}  min={min(values):.2f}s  "
            f"median={statistics.median(values):.2f}s  max={max(values):.2f}s"
        )
    median = statistics.median(shown)
    verdict = "meets" if median < TARGET else "MISSES"
    print(f"the median {verdict} the target of under {TARGET:g} s")


if __name__ == "__main__":
    main()
