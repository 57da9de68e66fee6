"""`hawatch events` on a real lab: JSON lines as they happen, and a quiet end however it stops."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from hawatch.lab import LabCluster, start_worker
from hawatch.sources import sentinel as sentinel_source

pytestmark = pytest.mark.integration


class EventsProcess:
    """`python -m hawatch events` on the lab, its output read line by line in a thread."""

    def __init__(self, lab: LabCluster, *extra: str, reader: bool = True) -> None:
        args = [sys.executable, "-m", "hawatch", "events", "--master", lab.master_name, *extra]
        for address in lab.sentinel_addresses:
            args += ["--sentinel", str(address)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HAWATCH_", "REDIS_"))}
        env["XDG_CONFIG_HOME"] = "/nonexistent-hawatch-config"
        self.proc = subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        self.lines: queue.Queue[bytes] = queue.Queue()
        assert self.proc.stdout is not None
        if reader:
            thread = threading.Thread(target=self._read, args=(self.proc.stdout,), daemon=True)
            thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        for line in stream:
            self.lines.put(line)

    def next_line(self, timeout: float = 15.0) -> bytes:
        """The next line, or fail after `timeout` seconds."""
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no line from `hawatch events` in {timeout} s")

    def until(
        self, wanted: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> list[dict[str, Any]]:
        """Every line (decoded) up to and including the first that `wanted` accepts."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"not seen in {timeout} s; types: {[o['type'] for o in seen]}"
            obj = json.loads(self.next_line(left))
            seen.append(obj)
            if wanted(obj):
                return seen

    def stop(self) -> None:
        """Stop the process by its pid if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)


@pytest.fixture
def events(lab: LabCluster) -> Iterator[EventsProcess]:
    process = EventsProcess(lab)
    try:
        yield process
    finally:
        process.stop()


def assert_event_line(obj: dict[str, Any]) -> None:
    assert isinstance(obj["type"], str) and obj["type"]
    assert isinstance(obj["at"], float)
    assert abs(obj["at"] - time.time()) < 120


@pytest.mark.skipif(
    not hasattr(sentinel_source, "SentinelWatcher"),
    reason="Sentinel messages need the pub/sub watcher (SentinelWatcher)",
)
def test_a_failover_arrives_as_json_lines(lab: LabCluster, events: EventsProcess) -> None:
    events.until(lambda obj: obj["type"] == "master")  # connected and reading the topology
    old = lab.current_master()
    assert lab.failover() == "OK"
    new = lab.wait_for_new_master(old.port)
    seen = events.until(lambda obj: obj.get("channel") == "+switch-master")
    for obj in seen:
        assert_event_line(obj)
    switch = seen[-1]
    assert switch["type"] == "sentinel"
    assert switch["master"] == lab.master_name
    assert switch["old"] == f"127.0.0.1:{old.port}"
    assert switch["new"] == f"127.0.0.1:{new.port}"
    assert switch["sentinel"] in {str(a) for a in lab.sentinel_addresses}
    assert switch["payload"] == f"{lab.master_name} 127.0.0.1 {old.port} 127.0.0.1 {new.port}"
    assert not any(obj["type"] == "sentinel-unparsed" for obj in seen)
    # Then the topology catches up: a sentinel names the new master with a higher epoch.
    events.until(lambda obj: obj["type"] == "master" and obj["port"] == new.port)


def test_a_reader_that_goes_away_ends_it_quietly(lab: LabCluster) -> None:
    """As `hawatch events | head -1`: read one line, close the pipe."""
    events = EventsProcess(lab, reader=False)
    try:
        assert events.proc.stdout is not None and events.proc.stderr is not None
        assert_event_line(json.loads(events.proc.stdout.readline()))
        events.proc.stdout.close()
        assert events.proc.wait(timeout=20) == 0
        assert events.proc.stderr.read() == b""
    finally:
        events.stop()


@pytest.mark.parametrize(
    ("sig", "status"),
    [(signal.SIGTERM, 0), (signal.SIGHUP, 0), (signal.SIGINT, 130)],
)
def test_a_signal_ends_it_quietly(events: EventsProcess, sig: signal.Signals, status: int) -> None:
    events.next_line()
    events.proc.send_signal(sig)
    assert events.proc.wait(timeout=20) == status
    assert events.proc.stderr is not None
    assert events.proc.stderr.read() == b""


def test_the_shell_pipeline_to_head(lab: LabCluster) -> None:
    """The real thing: a shell pipe into `head -1`, with hawatch's own status checked."""
    sentinels = " ".join(f"--sentinel {a}" for a in lab.sentinel_addresses)
    script = (
        f"{sys.executable} -m hawatch events {sentinels} 2>stderr.txt | head -1; "
        'echo "status=${PIPESTATUS[0]}"'
    )
    cwd = lab.directory
    result = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, cwd=cwd
    )
    first, status = result.stdout.splitlines()
    assert_event_line(json.loads(first))
    assert status == "status=0"
    assert cwd is not None and (cwd / "stderr.txt").read_text() == ""


@pytest.mark.slow
def test_the_celery_side_arrives_as_json_lines(lab: LabCluster) -> None:
    start_worker(lab, profile="tuned")
    events = EventsProcess(lab, "--canary", "4", "--queue", "extra")
    try:
        sent: set[str] = set()

        def whole_round_trip(obj: dict[str, Any]) -> bool:
            """A canary round trip whose task-sent was seen (the first canaries may have
            been sent before the event receiver had subscribed)."""
            if obj["type"] == "task" and obj["state"] == "sent":
                sent.add(obj["uuid"])
            return obj["type"] == "probe" and obj["phase"] == "succeeded" and obj["task_id"] in sent

        seen = events.until(whole_round_trip, timeout=40)
        seen += events.until(lambda obj: obj["type"] == "queue" and obj["queue"] == "extra")
        by_type: dict[str, list[dict[str, Any]]] = {}
        for obj in seen:
            assert_event_line(obj)
            by_type.setdefault(obj["type"], []).append(obj)
        up = [o for o in by_type["broker-up"] if o["source"] == "celery-events"]
        assert up and up[0]["address"] == str(lab.current_master().address)
        assert any(o["kind"] in ("online", "heartbeat") for o in by_type["worker"])
        done = next(
            o for o in by_type["probe"] if o["phase"] == "succeeded" and o["task_id"] in sent
        )
        assert done["ok"] is True and done["task_id"].startswith("hawatch-canary-")
        assert done["latency"] is not None and 0 <= done["latency"] < 10
        states = {o["state"] for o in by_type["task"] if o["uuid"] == done["task_id"]}
        assert {"sent", "received", "started", "succeeded"} <= states
        sent = next(
            o for o in by_type["task"] if o["uuid"] == done["task_id"] and o["state"] == "sent"
        )
        assert sent["name"] == "celery.accumulate" and sent["queue"] == "celery"
        assert {o["queue"] for o in by_type["queue"]} == {"celery", "extra"}
    finally:
        events.stop()


def test_the_canary_is_refused_in_read_only_mode(lab: LabCluster) -> None:
    args = [sys.executable, "-m", "hawatch", "events", "--canary", "1"]
    args += ["--sentinel", str(lab.sentinel_addresses[0])]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAWATCH_", "REDIS_"))}
    env["HAWATCH_READ_ONLY"] = "1"
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=30)
    assert result.returncode == 2
    assert "--canary sends tasks and read-only mode forbids" in result.stderr
    assert result.stdout == ""
    assert lab.current_master().call("LLEN", "celery") == 0


def test_an_app_that_cannot_be_loaded_is_one_warning_and_sentinel_events_go_on(
    lab: LabCluster,
) -> None:
    events = EventsProcess(lab, "--app", "no_such_module_for_hawatch.celery:app")
    try:
        events.until(lambda obj: obj["type"] == "master")
        time.sleep(0.5)
        events.proc.send_signal(signal.SIGTERM)
        assert events.proc.wait(timeout=20) == 0
        assert events.proc.stderr is not None
        stderr = events.proc.stderr.read().decode()
        assert stderr.splitlines() == [
            "hawatch: warning: the Celery side is off: cannot load a Celery app from "
            "'no_such_module_for_hawatch.celery:app': no module named "
            "'no_such_module_for_hawatch'; check --app, and run hawatch from the project's "
            "directory or set PYTHONPATH."
        ], stderr
    finally:
        events.stop()


def test_the_journal_holds_the_lines_printed(lab: LabCluster, tmp_path: Path) -> None:
    path = tmp_path / "journal.jsonl"
    events = EventsProcess(lab, "--journal", str(path), "--no-celery")
    try:
        printed = events.until(lambda obj: obj["type"] == "master")
        events.proc.send_signal(signal.SIGTERM)
        assert events.proc.wait(timeout=20) == 0
        while True:  # the rest of what it printed before it stopped
            try:
                printed.append(json.loads(events.lines.get(timeout=1)))
            except queue.Empty:
                break
    finally:
        events.stop()
    journal = [json.loads(line) for line in path.read_text().splitlines()]
    assert journal == printed
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@pytest.mark.slow
def test_incidents_are_followed_live_as_json_lines(lab: LabCluster) -> None:
    start_worker(lab, profile="tuned")
    events = EventsProcess(lab, "--canary", "4")
    try:
        seen = events.until(lambda obj: obj["type"] == "probe" and obj["phase"] == "succeeded", 40)
        old = lab.current_master()
        assert lab.failover() == "OK"
        new = lab.wait_for_new_master(old.port)
        seen += events.until(
            lambda obj: obj["type"] == "incident" and obj["status"] == "closed", timeout=90
        )
    finally:
        events.stop()
    updates = [obj for obj in seen if obj["type"] == "incident"]
    reached = [obj["reached"] for obj in updates]
    assert reached[0] == "fault" and reached[-1] == "closed"
    assert {"switched", "resumed"} <= set(reached)
    assert len({obj["id"] for obj in updates}) == 1
    closed = updates[-1]
    assert closed["master"] == lab.master_name
    assert closed["old_master"] == str(old.address) and closed["new_master"] == str(new.address)
    assert closed["gap_s"] == pytest.approx(closed["resumed"] - closed["switched"], abs=1e-6)
    assert closed["detected"] is None  # a forced failover has no +odown
    session = next(obj for obj in seen if obj["type"] == "session")
    assert session["broker_master"] == lab.master_name and session["celery"] is True
