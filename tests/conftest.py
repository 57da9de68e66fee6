"""Fixtures shared by every test: a real lab cluster, and a check that no process leaks."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from hawatch.lab import LabCluster, LabConfig, pid_alive, started_pids


@pytest.fixture(autouse=True)
def _no_leaked_processes() -> Iterator[None]:
    """Fail a test that leaves a process it started (through the lab) running.

    The leftover is stopped by its pid so that one leak does not spread to
    the next tests.
    """
    before = set(started_pids())
    yield
    leaked = {
        pid: label for pid, label in started_pids().items() if pid not in before and pid_alive(pid)
    }
    for pid in leaked:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if leaked:
        pytest.fail(f"processes left running after the test: {leaked}")


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[LabCluster]:
    """A fresh, fast-failing-over cluster: master, 2 replicas, 3 sentinels (quorum 2)."""
    with LabCluster(LabConfig.fast(base_dir=tmp_path)) as cluster:
        yield cluster


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """After the whole run, no process the lab started in this process may still run."""
    alive = {pid: label for pid, label in started_pids().items() if pid_alive(pid)}
    if alive:
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        print(f"\nhawatch: processes left running after the test run: {alive}")
        session.exitstatus = 1
