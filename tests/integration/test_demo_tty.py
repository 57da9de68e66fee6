"""`hawatch demo` driven from a real terminal (tmux): it shows the master live, follows a
failover, and leaves no process behind when stopped with Ctrl-C, SIGTERM or a hang-up."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hawatch.lab import pid_alive

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


class Tmux:
    """A private tmux server (its own socket) running one command in an 80x24 window."""

    def __init__(self, tmp: Path) -> None:
        self.socket = f"hawatch-test-{uuid.uuid4().hex[:8]}"
        self.tmp = tmp

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", "/dev/null", *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout

    def start(self, command: str) -> None:
        env = {"TERM": "xterm-256color", **os.environ}
        subprocess.run(
            [
                "tmux",
                "-L",
                self.socket,
                "-f",
                "/dev/null",
                "new-session",
                "-d",
                "-x",
                "80",
                "-y",
                "24",
                "-s",
                "demo",
                command,
            ],
            check=True,
            timeout=30,
            env=env,
        )

    def screen(self) -> str:
        try:
            return self.tmux("capture-pane", "-p", "-t", "demo")
        except subprocess.CalledProcessError:
            return ""

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if needle in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError(f"{needle!r} never appeared on screen:\n{screen}")

    def pane_pid(self) -> int:
        return int(self.tmux("display-message", "-p", "-t", "demo", "#{pane_pid}").strip())

    def kill_server(self) -> None:
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)
        # A killed server leaves its socket file behind.
        path = Path(os.environ.get("TMUX_TMPDIR", "/tmp")) / f"tmux-{os.getuid()}" / self.socket
        path.unlink(missing_ok=True)


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Tmux]:
    t = Tmux(tmp_path)
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


def _start_demo(tmux: Tmux, tmp_path: Path) -> tuple[Path, dict]:
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


def test_demo_follows_a_failover_and_ctrl_c_stops_everything(tmux: Tmux, tmp_path: Path) -> None:
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
    tmux.tmux("send-keys", "-t", "demo", "C-c")
    assert _exit_status(tmp_path) == 0
    assert _wait_gone(pids, 30) == []
    assert not directory.exists()


@pytest.mark.parametrize("how", ["SIGTERM", "hang-up"])
def test_demo_stopped_by_a_signal_leaves_nothing_behind(
    tmux: Tmux, tmp_path: Path, how: str
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
