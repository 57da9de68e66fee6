"""A load generator for the lab: sends the demo app's tasks at a steady rate.

It keeps sending through a failover, logging each failure to send in one
line, so the demo shows what producers meet while the master changes. Run by
the lab as `python -m hawatch.lab.loadgen --rate 5`; SIGTERM or Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import itertools
import os
import signal
import sys
import time
from types import FrameType

from hawatch.lab.demo_app import MASTER_ENV, PROFILE_ENV, SENTINELS_ENV, make_app

_stop = False


def _request_stop(signum: int, frame: FrameType | None) -> None:
    global _stop
    _stop = True


def _say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} loadgen: {text}", flush=True)


def run(rate: float, slow_every: int, limit: int | None, env: dict[str, str]) -> int:
    """Send tasks at `rate` per second until stopped; returns how many failed to send."""
    sentinels = [s for s in env.get(SENTINELS_ENV, "127.0.0.1:26379").split(",") if s]
    app = make_app(
        sentinels,
        env.get(MASTER_ENV, "mymaster"),
        profile=env.get(PROFILE_ENV, "default"),
        result_backend=False,
    )
    period = 1.0 / rate
    sent = failed = 0
    next_at = time.monotonic()
    last_report = time.monotonic()
    for n in itertools.count(1):
        if _stop or (limit is not None and sent + failed >= limit):
            break
        if slow_every and n % slow_every == 0:
            name, args = "demo.report", [2.0]
        elif n % 3 == 0:
            name, args = "demo.add", [n, n]
        else:
            name, args = "demo.checkout", [n]
        try:
            app.send_task(name, args=args)
            sent += 1
        except Exception as exc:  # any broker error: report it and keep going
            failed += 1
            _say(f"could not send {name}: {type(exc).__name__}: {exc}")
        now = time.monotonic()
        if now - last_report >= 10:
            _say(f"sent {sent}, failed {failed}")
            last_report = now
        next_at += period
        if next_at < now:  # fell behind (a blocked send): keep the rate, do not burst
            next_at = now
        while not _stop and time.monotonic() < next_at:
            time.sleep(min(0.1, max(0.0, next_at - time.monotonic())))
    _say(f"stopped: sent {sent}, failed {failed}")
    return failed


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(prog="python -m hawatch.lab.loadgen", description=__doc__)
    parser.add_argument("--rate", type=float, default=5.0, help="tasks per second (default 5)")
    parser.add_argument(
        "--slow-every", type=int, default=50, help="every Nth task is the slow one (0: never)"
    )
    parser.add_argument("--limit", type=int, default=None, help="stop after this many tasks")
    args = parser.parse_args(argv)
    if args.rate <= 0:
        parser.error("--rate must be above 0")
    signal.signal(signal.SIGTERM, _request_stop)
    signal.signal(signal.SIGINT, _request_stop)
    run(args.rate, args.slow_every, args.limit, dict(os.environ))
    return 0


if __name__ == "__main__":
    sys.exit(main())
