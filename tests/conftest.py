"""Fixtures shared by every test: a real lab cluster, and a check that no process leaks."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from hawatch.core.events import Event, MasterObserved, SentinelUnreachable
from hawatch.lab import LabCluster, LabConfig, pid_alive, started_pids
from hawatch.settings import Settings
from hawatch.sources.sentinel import SentinelWatcher


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


@pytest.fixture(autouse=True)
def _private_state_directory(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Journals and audit logs written by a test (or its subprocesses) go to a temporary
    state directory, never to the user's own."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path_factory.mktemp("state")))


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


Survey = Callable[..., Awaitable[list[Event]]]


@pytest.fixture
def survey() -> Survey:
    """Run the real Sentinel source until every seed sentinel has given a verdict.

    A verdict is a report of its masters (it answers) or a `SentinelUnreachable`
    (with the reason hawatch would show). Returns every event seen by then.
    """

    async def run(settings: Settings, timeout: float = 15.0) -> list[Event]:
        events: list[Event] = []
        seeds = {str(a) for a in settings.sentinels}

        def decided() -> bool:
            answered = {e.sentinel for e in events if isinstance(e, MasterObserved)}
            failed = {e.sentinel for e in events if isinstance(e, SentinelUnreachable)}
            return seeds <= answered | failed

        watcher = SentinelWatcher(settings, events.append)
        task = asyncio.create_task(watcher.run())
        try:
            deadline = time.monotonic() + timeout
            while not decided():
                assert time.monotonic() < deadline, f"no verdict from every sentinel: {events}"
                await asyncio.sleep(0.05)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        return events

    return run


@pytest.fixture
def lab_with_prometheus(tmp_path: Path) -> Iterator[LabCluster]:
    """A fresh fast lab (as `lab`) with redis_exporter and a real Prometheus scraping every
    node and sentinel every second; Prometheus is ready and has scraped them all once.
    Its URL is ``lab.prometheus.url``; everything stops by pid with the lab."""
    with LabCluster(LabConfig.fast(base_dir=tmp_path, with_prometheus=True)) as cluster:
        yield cluster
