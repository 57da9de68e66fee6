"""`hawatch drill` as a user runs it (the real CLI, as a subprocess) on real clusters.

The drill's figures are checked against an independent measurement: every task the
worker runs records its own completion time (``RPUSH done``) in a standalone
redis-server outside the failing cluster. The worker gets the recorder through
Celery's own ``CELERY_LOADER`` variable, pointing at a loader written by the test
(the lab's worker inherits the drill's environment), so the lab itself is unchanged.
The drill's resume must be within 0.25 s of the first completion recorded after
the switch, and so must its gap.

Every drill's processes are checked gone afterwards: each pid the lab's ``lab.json``
named while it ran, and each process group they led (a worker's pool).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from hawatch.lab import LabCluster, ManagedProcess, find_server_binary, pid_alive, start_worker
from hawatch.lab.procs import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGREEMENT = 0.25
"""Seconds within which the drill's resume must match the recorder's."""

RECORDER_ENV = "HAWATCH_TEST_RECORDER"
RECORDER_MODULE = '''\
"""A Celery loader that records, outside the failing cluster, where each task's message
was read from (the peer of the worker's own broker socket, as the kernel sees it) and
when the task completed."""

import json
import os
import time

from celery.loaders.app import AppLoader
from celery.signals import task_postrun, task_prerun, task_received

_clients = {}


def _client():
    pid = os.getpid()  # one per process: the pool's children are forked
    if pid not in _clients:
        import redis

        _clients[pid] = redis.Redis.from_url(
            os.environ["HAWATCH_TEST_RECORDER"], socket_timeout=2, socket_connect_timeout=2
        )
    return _clients[pid]


def _received(sender=None, request=None, **kwargs):
    peer = None
    try:
        host, port = request.message.channel.client.connection._sock.getpeername()[:2]
        peer = "%s:%s" % (host, port)
    except Exception:
        pass
    _client().hset("via", request.id, json.dumps({"t": time.time(), "peer": peer}))


def _started(task_id=None, task=None, **kwargs):
    _client().rpush("started", json.dumps({"t": time.time(), "id": task_id}))


def _completed(task_id=None, task=None, **kwargs):
    done = time.time()
    _client().rpush("done", json.dumps({"t": done, "id": task_id}))


class RecorderLoader(AppLoader):
    def on_worker_init(self):
        super().on_worker_init()
        task_received.connect(_received, weak=False)
        task_prerun.connect(_started, weak=False)
        task_postrun.connect(_completed, weak=False)
'''

FIELDS = {
    "scenario",
    "master",
    "old_master",
    "new_master",
    "phases",
    "gap_s",
    "outage_s",
    "tasks",
    "split_brain_s",
    "blind_windows",
    "slo_s",
    "passed",
}
TASK_FIELDS = {"sent", "completed", "lost", "duplicated", "pending_at_switch", "results_at_risk"}
PHASES = {"fault", "detected", "elected", "switched", "resumed", "demoted", "closed"}


class Recorder:
    """A standalone redis-server on loopback where tasks record their completion."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        argv = [find_server_binary(), "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(directory)]
        self.process = ManagedProcess("recorder", argv, log_path=directory / "server.log")
        self.client = redis.Redis(port=self.port, socket_timeout=2, decode_responses=True)
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(redis.ConnectionError):
                if self.client.ping():
                    break
            assert time.monotonic() < deadline, self.process.log_tail()
            time.sleep(0.05)
        modules = directory / "modules"
        modules.mkdir()
        (modules / "hawatch_drill_recorder.py").write_text(RECORDER_MODULE)
        path = os.environ.get("PYTHONPATH")
        self.env = {
            "PYTHONPATH": str(modules) + (os.pathsep + path if path else ""),
            "CELERY_LOADER": "hawatch_drill_recorder:RecorderLoader",
            RECORDER_ENV: f"redis://127.0.0.1:{self.port}/0",
        }

    def completions(self, key: str = "done") -> list[tuple[float, str | None]]:
        """Every recorded completion (``started``: every start), in order: (time, the node
        its message was read from)."""
        via = {key: json.loads(value)["peer"] for key, value in self.client.hgetall("via").items()}
        done = [json.loads(item) for item in self.client.lrange(key, 0, -1)]
        return sorted((item["t"], via.get(item["id"])) for item in done)

    def stop(self) -> None:
        self.client.close()
        self.process.stop()


@pytest.fixture
def recorder(tmp_path: Path) -> Iterator[Recorder]:
    rec = Recorder(tmp_path / "recorder")
    try:
        yield rec
    finally:
        rec.stop()


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without the user's hawatch settings, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HAWATCH_", "REDIS_ADDR"))}
    env["XDG_CONFIG_HOME"] = "/nonexistent-hawatch-config"
    env.update(extra)
    return env


class DrillProcess:
    """`python -m hawatch drill ...` with its output in files, and the pids of every lab
    it starts (read from ``lab.json`` under `base` while it runs)."""

    def __init__(self, base: Path, *args: str, env: dict[str, str] | None = None) -> None:
        base.mkdir(parents=True, exist_ok=True)
        self.base = base
        self.stdout_path = base / "stdout"
        self.stderr_path = base / "stderr"
        self.pids: dict[int, str] = {}
        argv = [sys.executable, "-m", "hawatch", "drill", *args]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                argv, stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env or clean_env()
            )
        self._watching = True
        self._thread = threading.Thread(target=self._watch_labs, daemon=True)
        self._thread.start()

    def _watch_labs(self) -> None:
        while self._watching:
            for manifest in self.base.glob("hawatch-lab-*/lab.json"):
                with contextlib.suppress(OSError, ValueError, KeyError):
                    for label, pid in json.loads(manifest.read_text())["pids"].items():
                        self.pids[int(pid)] = label
            time.sleep(0.1)

    @property
    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.stderr:
            assert self.proc.poll() is None, f"the drill ended first: {self.stderr}"
            assert time.monotonic() < deadline, f"{needle!r} never came: {self.stderr}"
            time.sleep(0.1)

    def wait(self, timeout: float = 400) -> int:
        try:
            status = self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            self._watching = False
            self._thread.join(2)
        return status

    def left_running(self) -> list[str]:
        """The lab processes (and members of their process groups) still alive."""
        alive = []
        for pid, label in self.pids.items():
            if pid_alive(pid):
                alive.append(f"{label} (pid {pid})")
                continue
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                continue
            alive.append(f"a process of {label}'s group {pid}")
        return alive


@pytest.fixture
def cleanup() -> Iterator[list[DrillProcess]]:
    """Drills a test started; any still running at the end is killed by its pid."""
    drills: list[DrillProcess] = []
    yield drills
    for drill in drills:
        if drill.proc.poll() is None:
            drill.proc.kill()
            drill.proc.wait(10)
        for pid in drill.pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def run_drill(
    cleanup: list[DrillProcess], base: Path, *args: str, env: dict[str, str] | None = None
) -> tuple[int, DrillProcess]:
    drill = DrillProcess(base, *args, env=env)
    cleanup.append(drill)
    started = time.monotonic()
    status = drill.wait()
    print(
        f"\nhawatch drill {' '.join(args)}: status {status} in {time.monotonic() - started:.0f} s"
    )
    return status, drill


def assert_report(data: dict[str, Any], scenario: str) -> None:
    """Every field the drill promises, with the shapes it promises."""
    assert set(data) >= FIELDS, FIELDS - set(data)
    assert data["scenario"] == scenario
    assert set(data["phases"]) == PHASES
    assert set(data["tasks"]) >= TASK_FIELDS
    for address in (data["old_master"], data["new_master"]):
        host, _, port = address.rpartition(":")
        assert host == "127.0.0.1" and port.isdigit(), address
    assert data["old_master"] != data["new_master"]
    phases = data["phases"]
    assert phases["fault"] <= phases["switched"] <= phases["resumed"] <= phases["closed"]
    assert data["gap_s"] == pytest.approx(phases["resumed"] - phases["switched"])
    assert data["outage_s"] == pytest.approx(phases["resumed"] - phases["fault"])
    assert data["tasks"]["sent"] > 0 and data["tasks"]["completed"] > 0
    for window in data["blind_windows"]:
        assert {"start", "end", "source", "reason"} <= set(window)


def assert_agrees(data: dict[str, Any], recorder: Recorder) -> float:
    """The drill's resume and gap are within `AGREEMENT` of the recorder's; its gap.

    The resume is the first task, after the switch, whose message the worker read from
    the new master: tasks read from the old master during a split brain ran, but their
    queue and results are discarded when it resyncs (they are the results at risk).
    The resume is a task *started* or succeeded (DESIGN.md), so the recorder's start
    times are the measure: a task's end can wait on its result write (a paused old
    master holds the result backend's connection in a hang).
    """
    switched, resumed = data["phases"]["switched"], data["phases"]["resumed"]
    assert recorder.completions(), "the recorder saw no task complete"
    done = recorder.completions("started")
    assert done, "the recorder saw no task complete"
    assert all(peer is not None for _, peer in done), "the recorder could not tell the node"
    after = [t for t, peer in done if t >= switched and peer == data["new_master"]]
    assert after, "the recorder saw no task from the new master complete after the switch"
    independent_gap = after[0] - switched
    anywhere = next((t for t, _ in done if t >= switched), None)
    split = "" if anywhere is None else f"; any task: +{anywhere - switched:.3f} s"
    print(
        f"{data['scenario']}: drill gap {data['gap_s']:.3f} s, recorder gap "
        f"{independent_gap:.3f} s, outage {data['outage_s']:.3f} s{split}"
    )
    around = [
        (round(t - switched, 3), peer) for t, peer in done if resumed - 1 <= t <= after[0] + 0.5
    ]
    assert abs(resumed - after[0]) <= AGREEMENT, (resumed - switched, around)
    assert abs(data["gap_s"] - independent_gap) <= AGREEMENT
    return independent_gap


LAB = ["--lab", "--down-after", "1000", "--canary", "10", "--warmup", "2"]


@pytest.mark.parametrize(
    ("scenario", "extra"),
    [
        ("failover", ["--profile", "default"]),
        ("crash", ["--profile", "tuned"]),
        ("hang", ["--profile", "tuned", "--hang-for", "6"]),
    ],
)
def test_lab_drill_passes_and_agrees_with_an_independent_recorder(
    tmp_path: Path,
    recorder: Recorder,
    cleanup: list[DrillProcess],
    scenario: str,
    extra: list[str],
) -> None:
    base = tmp_path / "drill"
    args = [*LAB, "--scenario", scenario, *extra, "--slo", "30", "--json", "--dir", str(base)]
    status, drill = run_drill(cleanup, base, *args, env=clean_env(**recorder.env))
    assert status == 0, drill.stderr
    assert "Traceback" not in drill.stderr
    data = json.loads(drill.stdout)
    assert_report(data, scenario)
    assert data["slo_s"] == 30 and data["passed"] is True and data["status"] == "closed"
    assert data["settings"]["down_after_ms"] == 1000
    assert_agrees(data, recorder)
    phases = data["phases"]
    if scenario == "failover":
        assert phases["detected"] is None  # a forced failover: no +odown
        assert data["settings"]["fault"] == "SENTINEL FAILOVER mymaster sent to one sentinel"
        assert data["settings"]["fault_target"].startswith("127.0.0.1:")
        assert phases["demoted"] is not None and data["split_brain_s"] >= 0
    elif scenario == "crash":
        assert phases["detected"] is not None
        assert phases["switched"] - phases["fault"] > 1.0  # down-after 1000 ms, then the vote
        assert phases["demoted"] is None  # a dead node is never seen demoted
        assert data["settings"]["fault"] == "SIGKILL of the master's redis-server"
        assert data["settings"]["fault_target"] == data["old_master"]
    else:
        assert data["settings"]["fault"] == "CLIENT PAUSE 6000 ALL on the master"
        assert data["settings"]["fault_target"] == data["old_master"]
        assert phases["detected"] is not None
        # The paused master came back and was demoted within the incident.
        assert phases["demoted"] is not None and phases["demoted"] >= phases["fault"] + 6.0
    assert not drill.left_running()
    assert drill.pids, "the drill never wrote its lab's pids"


def test_repeat_reports_median_min_max_and_a_missed_slo_exits_1(
    tmp_path: Path, recorder: Recorder, cleanup: list[DrillProcess]
) -> None:
    base = tmp_path / "drill"
    args = [*LAB, "--scenario", "crash", "--profile", "tuned", "--repeat", "2"]
    args += ["--slo", "0.001", "--json", "--dir", str(base)]
    status, drill = run_drill(cleanup, base, *args, env=clean_env(**recorder.env))
    assert status == 1, drill.stderr
    assert "Traceback" not in drill.stderr
    data = json.loads(drill.stdout)
    assert data["runs"] == 2 and data["slo_s"] == 0.001 and data["passed"] is False
    gaps = [report["gap_s"] for report in data["reports"]]
    assert all(gap > 0.001 for gap in gaps)
    for report in data["reports"]:
        assert_report(report, "crash")
        assert report["passed"] is False and report["work_resumed"] is True
    summary = data["summary"]["gap_s"]
    assert summary["runs"] == 2
    assert summary["min"] == min(gaps) and summary["max"] == max(gaps)
    assert summary["median"] == pytest.approx(sum(gaps) / 2)
    # The summary's settings are those every run shared: not each run's own master.
    assert data["settings"]["fault"] == "SIGKILL of the master's redis-server"
    assert "fault_target" not in data["settings"]
    assert [r["settings"]["fault_target"] for r in data["reports"]] == [
        r["old_master"] for r in data["reports"]
    ]
    outages = data["summary"]["outage_s"]
    assert outages["min"] <= outages["median"] <= outages["max"]
    # Two fresh labs, one after the other, both gone.
    assert sum(1 for label in drill.pids.values() if label == "worker-demo") == 2
    assert not drill.left_running()


def test_given_cluster_failover_with_yes(
    lab: LabCluster,
    tmp_path: Path,
    recorder: Recorder,
    cleanup: list[DrillProcess],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name, value in recorder.env.items():
        monkeypatch.setenv(name, value)
    start_worker(lab, profile="default")
    old = lab.current_master()
    sentinels = [arg for a in lab.sentinel_addresses for arg in ("--sentinel", str(a))]
    args = [*sentinels, "--master", lab.master_name, "--scenario", "failover", "--yes"]
    args += ["--slo", "30", "--warmup", "1", "--canary", "10"]
    status, drill = run_drill(cleanup, tmp_path / "drill", *args, env=clean_env(**recorder.env))
    assert status == 0, drill.stderr
    text = drill.stdout
    assert text.startswith("Failover drill: failover of mymaster\n")
    assert f"{old.address} → {lab.current_master().address}" in text
    assert "result      PASSED: gap " in text and "within the SLO of 30 s" in text
    assert lab.current_master() is not old
    # A change to a real cluster is on the record.
    audit = Path(os.environ["XDG_STATE_HOME"]) / "hawatch" / "audit.log"
    record = json.loads(audit.read_text().splitlines()[-1])
    assert record["master"] == lab.master_name and record["accepted"] is True


def test_given_cluster_needs_yes_and_refuses_crash_and_read_only(
    lab: LabCluster, tmp_path: Path
) -> None:
    sentinels = [arg for a in lab.sentinel_addresses for arg in ("--sentinel", str(a))]
    master = lab.current_master()
    labs = set(tmp_path.glob("hawatch-lab-*"))  # the fixture's own
    cases = [
        ([*sentinels, "--scenario", "failover"], {}, "add --yes"),
        ([*sentinels, "--scenario", "hang", "--hang-for", "5"], {}, "add --yes"),
        ([*sentinels, "--scenario", "crash", "--yes"], {}, "only do on its own lab"),
        ([*sentinels, "--scenario", "failover", "--yes", "--read-only"], {}, "--read-only"),
        ([*sentinels, "--scenario", "failover", "--yes"], {"HAWATCH_READ_ONLY": "1"}, "read-only"),
        ([*sentinels, "--scenario", "failover", "--yes", "--profile", "tuned"], {}, "--lab"),
        (["--lab", "--scenario", "failover", *sentinels], {}, "drop --sentinel"),
        ([*sentinels, "--scenario", "failover", "--hang-for", "3", "--yes"], {}, "--hang-for"),
    ]
    for args, extra, needle in cases:
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-m", "hawatch", "drill", *args],
            capture_output=True,
            text=True,
            env=clean_env(**extra),
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert result.returncode == 2, (args, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("hawatch: error: "), result.stderr
        assert needle in lines[0], (needle, lines[0])
        assert result.stdout == ""
        assert time.monotonic() - started < 15  # refused before anything was started
    # Nothing was done to the cluster, nothing was recorded.
    assert lab.current_master() is master and lab.role(master) == "master"
    assert not (Path(os.environ["XDG_STATE_HOME"]) / "hawatch" / "audit.log").exists()
    assert set(tmp_path.glob("hawatch-lab-*")) == labs


def test_an_unreachable_cluster_exits_2(tmp_path: Path) -> None:
    port = free_port()
    result = subprocess.run(
        [
            *(sys.executable, "-m", "hawatch", "drill", "--sentinel", f"127.0.0.1:{port}"),
            *("--master", "mymaster", "--scenario", "failover", "--yes"),
        ],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=90,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("hawatch: error: no sentinel answered within 20 s")
    assert f"127.0.0.1:{port}: connection refused" in lines[-1]
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_ctrl_c_mid_drill_stops_everything(tmp_path: Path, cleanup: list[DrillProcess]) -> None:
    base = tmp_path / "drill"
    drill = DrillProcess(
        base,
        *LAB,
        "--scenario",
        "hang",
        "--hang-for",
        "60",
        "--profile",
        "tuned",
        "--dir",
        str(base),
    )
    cleanup.append(drill)
    drill.wait_for("fault: CLIENT PAUSE 60000 ALL on the master", timeout=120)
    time.sleep(1.0)
    assert {"node-0", "sentinel-0", "worker-demo"} <= set(drill.pids.values())
    assert all(pid_alive(pid) for pid in drill.pids)
    drill.proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    status = drill.wait(timeout=60)
    assert status == 130, drill.stderr
    assert time.monotonic() - started < 30
    assert "interrupted; everything hawatch started has been stopped." in drill.stderr
    assert "Traceback" not in drill.stderr and drill.stdout == ""
    assert not drill.left_running()
    assert not list(base.glob("hawatch-lab-*"))


def test_a_journal_of_a_live_drill_replays_to_the_same_gap(
    tmp_path: Path, cleanup: list[DrillProcess]
) -> None:
    journal = tmp_path / "drill.jsonl"
    base = tmp_path / "drill"
    args = [*LAB, "--scenario", "crash", "--profile", "tuned", "--json"]
    status, drill = run_drill(cleanup, base, *args, "--dir", str(base), "--journal", str(journal))
    assert status == 0, drill.stderr
    live = json.loads(drill.stdout)
    assert live["gap_s"] is not None and live["gap_s"] > 0
    replay = subprocess.run(
        [sys.executable, "-m", "hawatch", "replay", str(journal), "--report", "--json"],
        capture_output=True,
        text=True,
        env=clean_env(),
        timeout=120,
    )
    assert replay.returncode == 0, replay.stderr
    [replayed] = [json.loads(line) for line in replay.stdout.splitlines() if line.strip()]
    assert round(replayed["gap_s"], 3) == round(live["gap_s"], 3)
    assert replayed["phases"]["switched"] == live["phases"]["switched"]
    assert replayed["phases"]["resumed"] == live["phases"]["resumed"]
    assert not drill.left_running()
