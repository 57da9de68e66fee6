"""`hawatch serve` in a real browser: headless Chromium loads the page, the screen shows
the lab's master, the failover key is offered only with --allow-failover, a URL password
reaches the screen without being on its command line, and every process the server
started is gone when the browser leaves and when the server stops.

Chromium is driven over the DevTools protocol with aiohttp's websocket client. The
page's terminal is xterm.js drawing on a canvas (WebGL, else 2D), so the DOM holds no
text: a script run before the page's own catches the xterm `Terminal` object as
textual-serve's page stores it (``this.terminal = new Terminal(...)``), and the test
reads the screen's rows from its buffer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hawatch.lab import LabCluster, LabConfig, pid_alive

CHROMIUM = "/usr/bin/chromium"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    pytest.mark.skipif(
        not os.access(CHROMIUM, os.X_OK),
        reason=f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does)",
    ),
]

PASSWORD = "w3b-serve-pw-4c1d"

# Run in the page before its own scripts: keep every xterm Terminal that an object
# stores in a property named `terminal` (textual-serve's page does).
CATCH_TERMINAL = r"""
(() => {
  window.__hawatchTerminals = [];
  Object.defineProperty(Object.prototype, "terminal", {
    configurable: true,
    set(value) {
      Object.defineProperty(this, "terminal", {
        value, writable: true, configurable: true, enumerable: true,
      });
      if (value && value.buffer) window.__hawatchTerminals.push(value);
    },
  });
})();
"""

READ_SCREEN = r"""
(() => {
  const terminal = window.__hawatchTerminals && window.__hawatchTerminals[0];
  if (!terminal) return null;
  const buffer = terminal.buffer.active, rows = [];
  for (let y = 0; y < terminal.rows; y++) {
    const line = buffer.getLine(buffer.viewportY + y);
    rows.push(line ? line.translateToString(true) : "");
  }
  return rows.join("\n");
})()
"""

# Textual shows the key bar only while the app has the focus; the page's first focus
# can arrive before the app's own start-up blur, so blur and focus again.
FOCUS = r"""
(() => {
  const terminal = window.__hawatchTerminals && window.__hawatchTerminals[0];
  if (terminal) { terminal.blur(); terminal.focus(); }
  return Boolean(terminal);
})()
"""


# --------------------------------------------------------------------------- processes


def children(pid: int) -> set[int]:
    """The direct children of `pid` (empty once it is gone)."""
    found: set[int] = set()
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(OSError):
                found.update(int(c) for c in (task / "children").read_text().split())
    return found


def session_members(sid: int) -> set[int]:
    """Every process whose session is `sid` (what a process started in a new session
    and its descendants share)."""
    members: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            stat = (entry / "stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            if int(fields[3]) == sid and fields[0] != "Z":
                members.add(int(entry.name))
    return members


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    """The pids among `pids` still alive after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = {pid for pid in pids if pid_alive(pid)}
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {pid for pid in alive if pid_alive(pid)}
    return alive


def kill_all(pids: set[int]) -> None:
    """SIGKILL each of `pids`, by pid."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The first line `proc` writes to standard output, within `timeout` seconds."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    deadline = time.monotonic() + timeout
    while b"\n" not in data:
        left = deadline - time.monotonic()
        assert left > 0, f"no line from the server in {timeout} s: {data!r}"
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"the server ended before saying where: {data!r}"
            data += chunk
    return data.decode().splitlines()[0]


class Served:
    """A running `hawatch serve` subprocess, in a session of its own."""

    def __init__(self, args: list[str], tmp_path: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HAWATCH_", "REDIS_ADDR"))}
        env["XDG_CONFIG_HOME"] = str(tmp_path / "no-config")
        self.stderr_path = tmp_path / "serve.err"
        self.stderr_file = self.stderr_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hawatch", "serve", "--port", "0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self.stderr_file,
            env=env,
            start_new_session=True,
        )
        self.viewers_seen: set[int] = set()
        self.line = read_line(self.proc, timeout=60)
        match = re.fullmatch(r"serving hawatch at (http://127\.0\.0\.1:\d+) \((.*)\)", self.line)
        assert match, self.line
        self.url = match.group(1)
        self.note = match.group(2)

    def viewers(self) -> set[int]:
        """The screens running now (the server's children)."""
        now = children(self.proc.pid)
        self.viewers_seen |= now
        return now

    def wait_viewers(self, count: int, timeout: float = 20) -> set[int]:
        deadline = time.monotonic() + timeout
        while len(self.viewers()) != count:
            assert time.monotonic() < deadline, f"{self.viewers()} != {count} screens"
            time.sleep(0.1)
        return self.viewers()

    def stop(self, sig: signal.Signals, timeout: float = 30) -> int:
        """Send `sig` to the server (by pid) and return its exit status."""
        self.viewers()
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=timeout)

    def output(self) -> str:
        assert self.proc.stdout is not None
        rest = self.proc.stdout.read().decode() if self.proc.poll() is not None else ""
        return self.line + "\n" + rest + self.stderr_path.read_text()

    def close(self) -> set[int]:
        """Stop the server if it still runs, then any screen it left; returns the leftovers."""
        self.viewers()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        leftovers = wait_gone(self.viewers_seen, timeout=10)
        kill_all(leftovers)
        assert self.proc.stdout is not None
        self.proc.stdout.close()
        self.stderr_file.close()
        return leftovers


@contextlib.contextmanager
def served(args: list[str], tmp_path: Path) -> Iterator[Served]:
    """`hawatch serve ARGS` on a free loopback port; stopped, with its screens, at the end."""
    server = Served(args, tmp_path)
    failed = True
    try:
        yield server
        failed = False
    finally:
        leftovers = server.close()
        if not failed:
            assert not leftovers, f"screens left running after the server stopped: {leftovers}"


# --------------------------------------------------------------------------- the browser


class Page:
    """One browser tab, driven over the DevTools protocol."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._next_id = 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self._next_id += 1
        number = self._next_id
        await self.ws.send_json({"id": number, "method": method, "params": params})
        while True:
            message = await asyncio.wait_for(self.ws.receive_json(), timeout=30)
            if message.get("id") == number:
                assert "error" not in message, message
                result: dict[str, Any] = message["result"]
                return result

    async def evaluate(self, expression: str) -> Any:
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return result["result"].get("value")

    async def screen(self) -> str:
        """The terminal's rows as text ("" before the page made its terminal)."""
        return await self.evaluate(READ_SCREEN) or ""

    async def wait_for(
        self, check: Callable[[str], bool], what: str, timeout: float = 60, focus: bool = False
    ) -> str:
        """Poll the screen until `check` holds; fail with the last screen after `timeout`."""
        deadline = time.monotonic() + timeout
        text = ""
        focused_at = 0.0
        while time.monotonic() < deadline:
            if focus and time.monotonic() - focused_at > 2:
                await self.evaluate(FOCUS)
                focused_at = time.monotonic()
                await asyncio.sleep(0.3)
            text = await self.screen()
            if check(text):
                return text
            await asyncio.sleep(0.25)
        raise AssertionError(f"{what} never appeared in the browser; last screen:\n{text}")

    async def goto(self, url: str) -> None:
        await self.call("Page.navigate", url=url)


class Browser:
    """Headless Chromium with a fresh profile in `tmp_path`, in a session of its own."""

    def __init__(self, tmp_path: Path) -> None:
        self.profile = tmp_path / "chromium-profile"
        self.profile.mkdir()
        self.log = (tmp_path / "chromium.log").open("wb")
        self.proc = subprocess.Popen(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={self.profile}",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=self.log,
            start_new_session=True,
        )

    def devtools_port(self, timeout: float = 60) -> int:
        active = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "chromium exited at start-up"
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(active.read_text().splitlines()[0])
            time.sleep(0.1)
        raise AssertionError("chromium never wrote DevToolsActivePort")

    @contextlib.asynccontextmanager
    async def page(self) -> AsyncIterator[Page]:
        """The first tab, with the terminal catcher installed for every page it loads."""
        port = self.devtools_port()
        async with aiohttp.ClientSession() as session:
            deadline = time.monotonic() + 30
            targets: list[dict[str, Any]] = []
            while not any(t.get("type") == "page" for t in targets):
                assert time.monotonic() < deadline, f"no page target: {targets}"
                async with session.get(f"http://127.0.0.1:{port}/json/list") as response:
                    targets = json.loads(await response.text())
                await asyncio.sleep(0.1)
            target = next(t for t in targets if t.get("type") == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
                page = Page(ws)
                await page.call("Page.enable")
                # A headless tab never has the focus unless told to act as if it had.
                await page.call("Emulation.setFocusEmulationEnabled", enabled=True)
                await page.call("Page.addScriptToEvaluateOnNewDocument", source=CATCH_TERMINAL)
                yield page

    def stop(self) -> set[int]:
        """Stop Chromium by its pid, then any process of its session by pid; the leftovers."""
        members = session_members(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        members |= session_members(self.proc.pid)
        leftovers = wait_gone(members, timeout=10)
        kill_all(leftovers)
        self.log.close()
        return leftovers


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    chromium = Browser(tmp_path)
    try:
        yield chromium
    finally:
        leftovers = chromium.stop()
        assert not wait_gone(leftovers, timeout=5), "chromium processes survived SIGKILL"


def key_bar(screen: str) -> str:
    """The screen's last non-blank row: Textual's key bar."""
    rows = [row for row in screen.splitlines() if row.strip()]
    return rows[-1] if rows else ""


# --------------------------------------------------------------------------- tests


async def test_the_browser_shows_the_master_with_no_failover_key_and_no_password_in_argv(
    browser: Browser, tmp_path: Path
) -> None:
    config = LabConfig.fast(base_dir=tmp_path, password=PASSWORD, sentinel_password=PASSWORD)
    with LabCluster(config) as cluster:
        sentinel = cluster.sentinel_addresses[0]
        master = cluster.current_master().address
        args = ["--url", f"redis://:{PASSWORD}@{sentinel}", "--master", cluster.master_name]
        with served([*args, "--no-celery"], tmp_path) as server:
            assert server.note == "failover off in the browser; --allow-failover turns it on"
            async with browser.page() as page:
                await page.goto(server.url)
                # The sentinels need the password: seeing the master proves it arrived.
                await page.wait_for(lambda s: f"master {master}" in s, f"master {master}")
                screen = await page.wait_for(
                    lambda s: "Quit" in key_bar(s), "the key bar", focus=True
                )
                assert "Fail over" not in screen
                assert "Traceback" not in screen

                (viewer,) = server.wait_viewers(1)
                argv = Path(f"/proc/{viewer}/cmdline").read_bytes().split(b"\0")
                assert PASSWORD.encode() not in b" ".join(argv)
                assert b"--no-failover" in argv and b"--no-journal" in argv
                assert b"watch" in argv
                environ = Path(f"/proc/{viewer}/environ").read_bytes().split(b"\0")
                assert f"HAWATCH_PASSWORD={PASSWORD}".encode() in environ

                # The browser leaves: its screen stops.
                await page.goto("about:blank")
                assert not wait_gone({viewer}, timeout=15), "the screen outlived its browser"

                # Back again, then Ctrl-C on the server: it stops the screen it started.
                await page.goto(server.url)
                await page.wait_for(lambda s: f"master {master}" in s, f"master {master}")
                (viewer,) = server.wait_viewers(1)
                assert server.stop(signal.SIGINT) == 130
                assert not wait_gone({viewer}, timeout=1), "Ctrl-C left a screen running"
            output = server.output()
            assert PASSWORD not in output
            assert "Traceback" not in output
            assert "stopped the web server and every screen it started" in output


async def test_allow_failover_offers_the_key_in_the_browser(
    browser: Browser, lab: LabCluster, tmp_path: Path
) -> None:
    sentinels = [word for a in lab.sentinel_addresses for word in ("--sentinel", str(a))]
    master = lab.current_master().address
    with served([*sentinels, "--master", lab.master_name, "--allow-failover"], tmp_path) as server:
        assert server.note.startswith("failover on in the browser")
        async with browser.page() as page:
            await page.goto(server.url)
            await page.wait_for(lambda s: f"master {master}" in s, f"master {master}")
            await page.wait_for(lambda s: "Fail over" in key_bar(s), "the failover key", focus=True)
            (viewer,) = server.wait_viewers(1)
            argv = Path(f"/proc/{viewer}/cmdline").read_bytes().split(b"\0")
            assert b"--no-failover" not in argv
            assert server.stop(signal.SIGTERM) == 0
            assert not wait_gone({viewer}, timeout=1), "SIGTERM left a screen running"
