"""`hawatch watch` in a real terminal (tmux, 80x24): it shows the master, and it exits, leaving
no process behind, when its terminal goes away, as when an SSH session drops, whether or not
a SIGHUP reaches it."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from terminal import Terminal, wait_gone

from hawatch.lab import LabCluster, pid_alive

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]

EXIT_WITHIN = 5.0
"""Seconds hawatch may take to exit once its terminal is gone."""

BLOCK_SIGHUP_AND_EXEC = (
    "import os, signal, sys; "
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP}); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)
"""Run argv[1:] in this process with SIGHUP blocked. A blocked signal stays blocked across
exec and in every thread, whatever handler the program installs (unlike `trap '' HUP`,
which asyncio's `add_signal_handler` would override): the hang-up stays pending, never
delivered."""


@pytest.fixture
def terminal(tmp_path: Path) -> Iterator[Terminal]:
    t = Terminal(tmp_path)
    try:
        yield t
    finally:
        t.kill_server()


def _children(pid: int) -> list[int]:
    """The children of `pid`, from every one of its threads."""
    found: list[int] = []
    with contextlib.suppress(OSError):
        for tid in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError):
                text = Path(f"/proc/{pid}/task/{tid}/children").read_text()
                found += [int(child) for child in text.split()]
    return found


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for child in _children(pid):
        out += [child, *_descendants(child)]
    return out


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _hawatch_argv() -> list[str]:
    """The installed console script next to this Python, else `python -m hawatch`."""
    script = Path(sys.executable).with_name("hawatch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hawatch"]


def _sighup_blocked(pid: int) -> bool:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigBlk:"):
            return bool(int(line.split()[1], 16) & (1 << (signal.SIGHUP - 1)))
    return False


@contextlib.contextmanager
def _watching(terminal: Terminal, lab: LabCluster, *, block_sighup: bool) -> Iterator[int]:
    """`hawatch watch` on `lab` as the pane's own process, until the master shows; its pid.

    Whatever the test finds, hawatch and its children are killed by pid afterwards.
    """
    argv = [*_hawatch_argv(), "watch", "--master", lab.master_name, "--no-journal"]
    for address in lab.sentinel_addresses:
        argv += ["--sentinel", str(address)]
    if block_sighup:
        argv = [sys.executable, "-c", BLOCK_SIGHUP_AND_EXEC, *argv]
    pid = terminal.start("exec " + shlex.join(argv))
    tree = [pid]
    try:
        screen = terminal.wait_for(f"master {lab.current_master().address}", timeout=60)
        assert "Traceback" not in screen
        assert "watch" in Path(f"/proc/{pid}/cmdline").read_text(), "the pane is not hawatch"
        assert _sighup_blocked(pid) == block_sighup
        tree += _descendants(pid)
        yield pid
    finally:
        tree += _descendants(pid)
        for leftover in tree:
            if pid_alive(leftover):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(leftover, signal.SIGKILL)
        wait_gone(tree, 5)


def _check_exits_with_its_terminal(terminal: Terminal, pid: int, how: str) -> None:
    """Kill the terminal; hawatch and every child it had must be gone within EXIT_WITHIN s."""
    children = _descendants(pid)  # before the kill: once hawatch is gone they are orphans
    assert all(pid_alive(child) for child in children)
    killed = time.monotonic()
    terminal.kill_server()
    gone = wait_gone([pid], EXIT_WITHIN)
    took = time.monotonic() - killed
    if not gone:
        cpu = _cpu_seconds(pid)
        time.sleep(1)
        busy = (_cpu_seconds(pid) - cpu) * 100
        raise AssertionError(
            f"hawatch (pid {pid}) still runs {took:.1f} s after its terminal went away "
            f"({how}); it uses {busy:.0f}% of a core meanwhile"
        )
    left = [child for child in children if pid_alive(child)]
    assert wait_gone(children, 2), f"hawatch exited but left children running: {left}"


def test_watch_shows_the_master_and_exits_when_its_terminal_hangs_up(
    terminal: Terminal, lab: LabCluster
) -> None:
    with _watching(terminal, lab, block_sighup=False) as pid:
        _check_exits_with_its_terminal(terminal, pid, "the hang-up sends it SIGHUP")


def test_watch_exits_when_its_terminal_goes_away_without_a_sighup(
    terminal: Terminal, lab: LabCluster
) -> None:
    """No SIGHUP reaches hawatch (blocked: it stays pending), as when the hang-up goes to
    another process group or is ignored: it must notice by itself that its terminal is gone."""
    with _watching(terminal, lab, block_sighup=True) as pid:
        _check_exits_with_its_terminal(terminal, pid, "with SIGHUP blocked, so none arrives")
