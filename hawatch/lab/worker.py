"""The lab's Celery worker, load generator and demo web endpoint, as subprocesses tied to
a lab cluster."""

from __future__ import annotations

import os
import re
import sys
import time
from dataclasses import dataclass

from hawatch.lab.cluster import LabCluster
from hawatch.lab.demo_app import MASTER_ENV, PROFILE_ENV, PROFILES, SENTINELS_ENV
from hawatch.lab.procs import LabError, ManagedProcess


def lab_env(lab: LabCluster, profile: str = "default") -> dict[str, str]:
    """The environment that points the demo app at `lab`."""
    if profile not in PROFILES:
        raise LabError(f"unknown lab profile {profile!r}; use one of {', '.join(PROFILES)}.")
    env = dict(os.environ)
    env[SENTINELS_ENV] = ",".join(str(a) for a in lab.sentinel_addresses)
    env[MASTER_ENV] = lab.master_name
    env[PROFILE_ENV] = profile
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


_WITHOUT_TASK_EVENTS = (
    "import sys; from hawatch.lab.demo_app import app; "
    "app.conf.worker_send_task_events = False; "
    "app.worker_main(['worker', *sys.argv[1:]])"
)
"""`celery -A hawatch.lab.demo_app worker` with the app's task events off (no -E)."""


def start_worker(
    lab: LabCluster,
    *,
    name: str = "demo",
    concurrency: int = 2,
    profile: str = "default",
    ready_timeout: float = 60.0,
    task_events: bool = True,
    heartbeat: bool = True,
) -> ManagedProcess:
    """Start a real `celery worker` (with events on) on the lab and wait until it is ready.

    `task_events` False starts it as a worker whose task events were never enabled:
    without ``-E`` and with the demo app's ``worker_send_task_events`` off, so it sends
    worker events only (online, heartbeats, offline) until someone runs ``celery
    control enable_events``. `heartbeat` False adds ``--without-heartbeat``: without
    task events too (gossip is always off here), it then sends no event at all.
    """
    assert lab.directory is not None, "start the lab first"
    directory = lab.directory / f"worker-{name}"
    directory.mkdir(exist_ok=True)
    if task_events:
        main = ["-m", "celery", "-A", "hawatch.lab.demo_app", "worker", "-E"]
    else:
        main = ["-c", _WITHOUT_TASK_EVENTS]
    argv = [
        sys.executable,
        *main,
        *([] if heartbeat else ["--without-heartbeat"]),
        "--loglevel",
        "INFO",
        "--pool",
        "prefork",
        "--concurrency",
        str(concurrency),
        "--hostname",
        f"{name}@%h",
        "--without-mingle",
        "--without-gossip",
    ]
    log = directory / "worker.log"
    proc = lab.register(
        ManagedProcess(
            f"worker-{name}", argv, log_path=log, cwd=directory, env=lab_env(lab, profile)
        )
    )
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if not proc.running:
            raise LabError(
                f"the Celery worker exited at start with status {proc.popen.returncode}: "
                f"{proc.log_tail(1) or 'no output'}."
            )
        try:
            text = log.read_text(errors="replace")
        except OSError:
            text = ""
        if " ready." in text:
            return proc
        time.sleep(0.1)
    proc.stop(group=True)
    raise LabError(
        f"the Celery worker was not ready within {ready_timeout:.0f} s; see {log}: "
        f"{proc.log_tail(1)}"
    )


def start_loadgen(
    lab: LabCluster, *, rate: float = 5.0, slow_every: int = 50, profile: str = "default"
) -> ManagedProcess:
    """Start the load generator, sending the demo app's tasks at `rate` per second."""
    assert lab.directory is not None, "start the lab first"
    if rate <= 0:
        raise LabError("the load generator's rate must be above 0 tasks per second.")
    directory = lab.directory / "loadgen"
    directory.mkdir(exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "hawatch.lab.loadgen",
        "--rate",
        str(rate),
        "--slow-every",
        str(slow_every),
    ]
    return lab.register(
        ManagedProcess(
            "loadgen",
            argv,
            log_path=directory / "loadgen.log",
            cwd=directory,
            env=lab_env(lab, profile),
        )
    )


@dataclass(frozen=True)
class DemoWeb:
    """The demo web endpoint, running: its process (stopped with the lab) and its URL."""

    process: ManagedProcess
    url: str
    """``http://127.0.0.1:PORT/health``: what an HTTP probe polls."""


_LISTENING = re.compile(r"demo web: listening on (http://\S+)")


def start_demo_web(
    lab: LabCluster, *, port: int = 0, timeout: float = 0.5, ready_timeout: float = 20.0
) -> DemoWeb:
    """Start the demo web endpoint (`hawatch.lab.demo_web`) on a loopback `port` (0: any
    free one) and wait until it listens; its `DemoWeb.url` is what to probe, e.g.
    ``Monitor(settings, probes=[HttpProbeOptions(web.url)])``.

    Every request writes and reads a key through the lab's sentinels, as a Django cache
    would (`timeout`: seconds per Redis call): 200 while that works, 503 and the error
    otherwise. It is stopped, by its pid, with the lab (or by ``web.process.stop()``).
    """
    assert lab.directory is not None, "start the lab first"
    if not 0 <= port <= 65535:
        raise LabError(f"the demo web endpoint's port must be between 0 and 65535, not {port}.")
    directory = lab.directory / "demo-web"
    directory.mkdir(exist_ok=True)
    env = lab_env(lab)
    from hawatch.lab.demo_web import PASSWORD_ENV, SENTINEL_PASSWORD_ENV

    if lab.config.password:
        env[PASSWORD_ENV] = lab.config.password
    if lab.config.sentinel_password:
        env[SENTINEL_PASSWORD_ENV] = lab.config.sentinel_password
    argv = [
        sys.executable,
        "-m",
        "hawatch.lab.demo_web",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--timeout",
        str(timeout),
    ]
    log = directory / "demo-web.log"
    proc = lab.register(ManagedProcess("demo-web", argv, log_path=log, cwd=directory, env=env))
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        try:
            text = log.read_text(errors="replace")
        except OSError:
            text = ""
        found = _LISTENING.search(text)
        if found:
            return DemoWeb(proc, found.group(1))
        if not proc.running:
            raise LabError(
                f"the demo web endpoint exited at start with status {proc.popen.returncode}: "
                f"{proc.log_tail(1) or 'no output'}"
            )
        time.sleep(0.05)
    proc.stop()
    raise LabError(
        f"the demo web endpoint did not listen within {ready_timeout:.0f} s; see {log}: "
        f"{proc.log_tail(1)}"
    )
