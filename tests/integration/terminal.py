"""A real terminal for tests: a private tmux server (its own socket, no user config) with
one 80x24 pane, and a wait for processes to be gone."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
import uuid
from pathlib import Path

from hawatch.lab import pid_alive

TMUX_CONFIG = """\
set -g default-terminal "xterm-256color"
set -g default-size 80x24
set -g status off
"""
"""An 80x24 pane (no status line taking a row), TERM=xterm-256color inside it."""


class Terminal:
    """A private tmux server (its own socket, no user config) with one 80x24 pane."""

    session = "term"

    def __init__(self, tmp: Path) -> None:
        self.socket = f"hawatch-test-{uuid.uuid4().hex[:8]}"
        self.config = tmp / "tmux.conf"
        self.config.write_text(TMUX_CONFIG)
        self.server_pid: int | None = None
        self.socket_path: Path | None = None

    def tmux(self, *args: str) -> str:
        return subprocess.run(
            ["tmux", "-L", self.socket, "-f", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
            env={**os.environ, "TERM": "xterm-256color"},
        ).stdout

    def start(self, command: str) -> int:
        """Run `command` in the pane; the pane's pid (the command itself, with `exec`)."""
        out = self.tmux(
            *("new-session", "-d", "-x", "80", "-y", "24", "-s", self.session),
            *("-P", "-F", "#{pid} #{pane_pid} #{socket_path}", command),
        )
        server, pane, socket_path = out.split(" ", 2)
        self.server_pid = int(server)
        self.socket_path = Path(socket_path.strip())
        return int(pane)

    def screen(self) -> str:
        try:
            return self.tmux("capture-pane", "-p", "-t", self.session)
        except subprocess.CalledProcessError:
            return ""

    def wait_for(self, needle: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if needle in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{needle!r} never appeared on screen:\n{screen}")

    def pane_pid(self) -> int:
        """The pid of the pane's process."""
        return int(self.tmux("display-message", "-p", "-t", self.session, "#{pane_pid}").strip())

    def kill_server(self) -> None:
        """Kill the terminal: tmux closes the pane's pty, which hangs it up (an SSH drop)."""
        subprocess.run(["tmux", "-L", self.socket, "kill-server"], capture_output=True, timeout=30)
        if self.server_pid is not None and not wait_gone([self.server_pid], 5):
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.server_pid, signal.SIGKILL)
        if self.socket_path is not None and not pid_alive(self.server_pid or 0):
            self.socket_path.unlink(missing_ok=True)  # a killed server leaves its socket


def wait_gone(pids: list[int], timeout: float) -> bool:
    """True once none of `pids` runs (a zombie counts as gone)."""
    deadline = time.monotonic() + timeout
    while any(pid_alive(pid) for pid in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True
