"""Child processes of the lab: started in their own session, stopped by pid, never orphaned.

Every process the lab starts goes through `ManagedProcess`, which remembers its
pid in a registry for the life of this Python process. Stopping is always by
that pid (and, for a process that forks helpers of its own, by the process
group it leads): hawatch never looks for processes by name.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1

_registry_lock = threading.Lock()
_started: dict[int, str] = {}


class LabError(RuntimeError):
    """The lab could not do what was asked; the message says why and what to do."""


def started_pids() -> dict[int, str]:
    """Every pid the lab started in this Python process, with a label, for leak checks."""
    with _registry_lock:
        return dict(_started)


def pid_alive(pid: int) -> bool:
    """True if `pid` names a running process (a zombie counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in ("Z", "X")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on `host` that nothing listens on right now.

    Another program can still take it before we bind it; callers that start a
    server on it must notice "address in use" and try another port.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True if nothing listens on `host:port` and it can be bound."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to send SIGKILL to this child if the hawatch process dies without cleaning up."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """One child process of the lab, with its log file, stopped by pid.

    The child runs in a session of its own, so a Ctrl-C typed in hawatch's
    terminal reaches hawatch only, and hawatch stops its children in order.
    On Linux the child also dies if hawatch is killed outright (SIGKILL), so
    even that leaves no orphan behind.
    """

    def __init__(
        self,
        label: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.label = label
        self.argv = list(argv)
        self.log_path = log_path
        self.paused = False
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            try:
                self.popen = subprocess.Popen(
                    self.argv,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if os.name == "posix" else None,
                )
            except FileNotFoundError as exc:
                raise LabError(f"cannot start {label}: {self.argv[0]} was not found.") from exc
            except PermissionError as exc:
                raise LabError(f"cannot start {label}: {self.argv[0]} is not executable.") from exc
        self.pid = self.popen.pid
        with _registry_lock:
            _started[self.pid] = label

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ManagedProcess {self.label} pid={self.pid} {state}>"

    @property
    def running(self) -> bool:
        """True while the process has not exited."""
        return self.popen.poll() is None

    def log_tail(self, lines: int = 5) -> str:
        """The last lines of the process's log, for error messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])

    def send(self, sig: int) -> None:
        """Send `sig` to the process, if it still runs."""
        if self.running:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self, *, group: bool = False) -> None:
        """Kill the process at once (SIGKILL), as a crash would; it is reaped.

        With `group`, its whole process group goes too (a Celery worker and its pool).
        """
        if group:
            if self.running:
                self._signal(signal.SIGKILL, True)
        else:
            self.send(signal.SIGKILL)
        self._reap(5.0)
        self._reap_group(group)
        self.paused = False

    def pause(self) -> None:
        """Freeze the process (SIGSTOP), as a hung host would: sockets stay open and silent."""
        self.send(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        """Let a paused process run again (SIGCONT)."""
        self.send(signal.SIGCONT)
        self.paused = False

    def stop(self, timeout: float = 5.0, *, group: bool = False) -> None:
        """Stop the process: SIGTERM, then SIGKILL after `timeout` seconds.

        With `group`, the whole process group this child leads gets the
        signals (a Celery worker's pool processes, say), still found by the
        child's pid, never by name.
        """
        if self.popen.poll() is not None:
            self._reap_group(group)
            return
        if self.paused:
            self.resume()
        self._signal(signal.SIGTERM, group)
        if self._reap(timeout):
            self._reap_group(group)
            return
        self._signal(signal.SIGKILL, group)
        self._reap(5.0)
        self._reap_group(group)

    def _signal(self, sig: int, group: bool) -> None:
        try:
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self, timeout: float) -> bool:
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return False
        return True

    def _reap_group(self, group: bool) -> None:
        """After the leader is gone, make sure no member of its group lingers."""
        if not group:
            return
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            try:
                os.killpg(self.pid, 0)
            except (ProcessLookupError, PermissionError):
                return
            time.sleep(0.05)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
