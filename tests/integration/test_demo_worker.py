"""The lab's real Celery worker runs the demo app's tasks before and after a failover."""

from __future__ import annotations

import time

import pytest
from celery import Celery

from hawatch.lab import LabCluster, pid_alive, start_loadgen, start_worker
from hawatch.lab.demo_app import make_app

pytestmark = pytest.mark.integration


def _run_task(app: Celery, x: int, timeout: float = 60.0) -> int:
    """Send demo.add and wait for its result, retrying while the cluster is switching."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return int(app.send_task("demo.add", args=[x, 1]).get(timeout=10))
        except Exception as exc:  # broker or backend still reconnecting
            last = exc
            time.sleep(0.5)
    raise AssertionError(f"no result within {timeout} s: {last!r}")


def test_demo_worker_runs_tasks_before_and_after_a_failover(lab: LabCluster) -> None:
    worker = start_worker(lab)
    app = make_app([str(a) for a in lab.sentinel_addresses], lab.master_name)
    try:
        assert _run_task(app, 41) == 42
        old = lab.current_master()
        assert lab.failover() == "OK"
        lab.wait_for_new_master(old.port)
        lab.wait_for_role(old, "slave")  # the old master can no longer take the task
        assert _run_task(app, 99) == 100
        assert worker.running
        assert "succeeded" in worker.log_path.read_text()
    finally:
        app.close()


def test_load_generator_feeds_the_worker_and_both_stop_with_the_lab(lab: LabCluster) -> None:
    worker = start_worker(lab)
    loadgen = start_loadgen(lab, rate=20)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if worker.log_path.read_text().count("succeeded") >= 10:
            break
        time.sleep(0.2)
    assert worker.log_path.read_text().count("succeeded") >= 10
    pids = [worker.pid, loadgen.pid]
    lab.stop()
    assert not any(pid_alive(p) for p in pids)
