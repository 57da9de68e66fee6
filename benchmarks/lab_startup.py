"""How long the lab takes from the command to a ready cluster.

Prints one line per run and a summary. "ready" means what the tests and the
demo wait for: replicas linked, every sentinel knows the others and the
replicas. Two figures: `LabCluster.start()` in this process, and the whole
`hawatch lab` command (Python start-up included) until it prints its ready line.

    .venv/bin/python benchmarks/lab_startup.py --runs 5
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time

from hawatch.lab import LabCluster, LabConfig


def in_process(runs: int, replicas: int, sentinels: int) -> list[float]:
    """Seconds for `LabCluster.start()` to return a ready cluster, per run."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        cluster = LabCluster(LabConfig.fast(replicas=replicas, sentinels=sentinels))
        cluster.start()
        times.append(time.perf_counter() - start)
        cluster.stop()
    return times


def command(runs: int) -> list[float]:
    """Seconds from running `hawatch lab` to its "ready" line, per run."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            proc = subprocess.Popen(
                [sys.executable, "-m", "hawatch", "lab", "--dir", tmp],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            assert proc.stdout is not None
            try:
                for line in proc.stdout:
                    if line.startswith("ready;"):
                        times.append(time.perf_counter() - start)
                        break
            finally:
                proc.send_signal(signal.SIGINT)
                proc.wait(timeout=30)
    return times


def summary(label: str, times: list[float]) -> None:
    """Print min, median and max of `times`."""
    print(
        f"{label:<34} runs={len(times)}  min={min(times):.2f}s  "
        f"median={statistics.median(times):.2f}s  max={max(times):.2f}s"
    )


def main() -> None:
    """Measure and print."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--sentinels", type=int, default=3)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, python {sys.version.split()[0]}")
    summary(
        f"LabCluster.start() {args.replicas}r+{args.sentinels}s",
        in_process(args.runs, args.replicas, args.sentinels),
    )
    summary("`hawatch lab` to its ready line", command(args.runs))


if __name__ == "__main__":
    main()
