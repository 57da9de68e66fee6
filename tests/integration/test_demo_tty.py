"""`hawatch demo` driven from a real terminal (tmux): it shows the master live, follows a
failover, and leaves no process behind when stopped with Ctrl-C, SIGTERM or a hang-up."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from terminal import Terminal

from hawatch.lab import pid_alive

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Terminal]:
    t = Terminal(tmp_path)
    try:
        yield t
    finally:
        t.kill_server()


def _manifest(base: Path, timeout: float = 60) -> tuple[Path, dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in base.glob("hawatch-lab-*"):
            m = d / "lab.json"
            if m.exists():
                data = json.loads(m.read_text())
                if {"worker-demo", "loadgen"} <= data["pids"].keys():
                    return d, data
        time.sleep(0.2)
    raise AssertionError("the demo never wrote a complete lab.json")


def _wait_gone(pids: dict[str, int], timeout: float) -> list[str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [name for name, pid in pids.items() if pid_alive(pid)]
        if not alive:
            return []
        time.sleep(0.2)
    return alive


def _start_demo(tmux: Terminal, tmp_path: Path) -> tuple[Path, dict]:
    status = tmp_path / "status"
    command = " ".join(
        shlex.quote(a)
        for a in [
            sys.executable,
            "-m",
            "hawatch",
            "demo",
            "--dir",
            str(tmp_path / "labs"),
            "--down-after",
            "1000",
        ]
    )
    tmux.start(f"{command}; echo $? > {shlex.quote(str(status))}; sleep 60")
    tmux.wait_for("master 127.0.0.1:", timeout=90)
    return _manifest(tmp_path / "labs")


def _exit_status(tmp_path: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    status = tmp_path / "status"
    while time.monotonic() < deadline:
        if status.exists() and status.read_text().strip():
            return int(status.read_text())
        time.sleep(0.2)
    raise AssertionError("hawatch demo did not exit")


def test_demo_follows_a_failover_and_ctrl_c_stops_everything(
    tmux: Terminal, tmp_path: Path
) -> None:
    directory, lab = _start_demo(tmux, tmp_path)
    pids = lab["pids"]
    assert all(pid_alive(p) for p in pids.values())
    host, port = lab["sentinels"][0].rsplit(":", 1)
    sentinel = redis.Redis(host=host, port=int(port), decode_responses=True)
    old = sentinel.sentinel_get_master_addr_by_name(lab["master_name"])
    screen = tmux.wait_for(f"master {old[0]}:{old[1]}", timeout=10)
    assert sentinel.execute_command("SENTINEL", "FAILOVER", lab["master_name"])
    deadline = time.monotonic() + 30
    new = old
    while new == old and time.monotonic() < deadline:
        new = sentinel.sentinel_get_master_addr_by_name(lab["master_name"])
        time.sleep(0.1)
    sentinel.close()
    assert new != old
    screen = tmux.wait_for(f"master {new[0]}:{new[1]}", timeout=15)
    assert "Traceback" not in screen
    tmux.tmux("send-keys", "-t", tmux.session, "C-c")
    assert _exit_status(tmp_path) == 0
    assert _wait_gone(pids, 30) == []
    assert not directory.exists()


@pytest.mark.parametrize("how", ["SIGTERM", "hang-up"])
def test_demo_stopped_by_a_signal_leaves_nothing_behind(
    tmux: Terminal, tmp_path: Path, how: str
) -> None:
    directory, lab = _start_demo(tmux, tmp_path)
    pids = lab["pids"]
    if how == "SIGTERM":
        demo_pid = _demo_pid(tmux.pane_pid())
        os.kill(demo_pid, 15)
        assert _exit_status(tmp_path) == 0
    else:  # the terminal goes away, as when an SSH session dies
        tmux.kill_server()
    assert _wait_gone(pids, 40) == []
    deadline = time.monotonic() + 20
    while directory.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not directory.exists()


def _demo_pid(shell_pid: int) -> int:
    """The `hawatch demo` process: the child of the pane's shell."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        children = Path(f"/proc/{shell_pid}/task/{shell_pid}/children").read_text().split()
        for child in children:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
            if b"demo" in cmdline:
                return int(child)
        time.sleep(0.1)
    raise AssertionError("could not find the hawatch demo process")
