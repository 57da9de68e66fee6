"""The TUI at 80x24, driven the way an operator drives it."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from hawatch.core.events import MasterObserved, SentinelReachable
from hawatch.settings import SentinelAddress, Settings
from hawatch.views.app import HawatchApp, MasterPanel
from hawatch.views.messages import EventArrived
from hawatch.views.styles import stylesheet_path

SIZE = (80, 24)


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: bound, read, closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def settings(closed_port: int) -> Settings:
    return Settings(sentinels=(SentinelAddress("127.0.0.1", closed_port),))


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5.0):
    """Let the app run until `condition` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def status_text(app: HawatchApp) -> str:
    return str(app.query_one("#status", Static).content)


def test_stylesheet_is_found() -> None:
    assert stylesheet_path().is_file()
    assert str(stylesheet_path()) == HawatchApp.CSS_PATH


async def test_unreachable_sentinel_is_reported_and_app_keeps_running(
    settings: Settings, closed_port: int
) -> None:
    app = HawatchApp(settings, poll_interval=0.1)
    async with app.run_test(size=SIZE) as pilot:
        waiting = str(app.query_one("#waiting", Static).content)
        assert waiting.startswith("Asking the sentinels …")
        await wait_until(pilot, lambda: "unreachable" in status_text(app))
        assert f"127.0.0.1:{closed_port} connection refused" in status_text(app)
        # Several more polls fail; the app is still up and still says so.
        await pilot.pause(0.5)
        assert app.is_running
        assert "1 of 1 sentinels unreachable" in status_text(app)
        assert "none has answered yet" in str(app.query_one("#waiting", Static).content)


async def test_stylesheet_rule_is_applied(settings: Settings) -> None:
    app = HawatchApp(settings)
    async with app.run_test(size=SIZE):
        masters = app.query_one("#masters")
        assert masters.styles.border_top[0] == "round"
        assert masters.border_title == "masters"


async def test_q_quits(settings: Settings) -> None:
    app = HawatchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_ctrl_c_quits(settings: Settings) -> None:
    app = HawatchApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert not app.is_running


def observed(ts: float, sentinel: str, port: int, epoch: int) -> MasterObserved:
    return MasterObserved(
        ts=ts,
        sentinel=sentinel,
        master="mymaster",
        ip="127.0.0.1",
        port=port,
        epoch=epoch,
        flags=("master",),
        num_slaves=1,
        num_other_sentinels=1,
        quorum=2,
    )


def panel_text(app: HawatchApp) -> str:
    """Everything the only master panel shows, or "" before it exists."""
    panels = list(app.query(MasterPanel))
    return panels[0].text if panels else ""


async def test_scripted_events_show_the_master_and_a_switch(settings: Settings) -> None:
    app = HawatchApp(settings, subtitle="scripted")
    a, b = "10.9.9.1:26379", "10.9.9.2:26379"
    async with app.run_test(size=SIZE) as pilot:
        now = time.time()
        for event in (
            SentinelReachable(ts=now - 12, sentinel=a),
            SentinelReachable(ts=now - 12, sentinel=b),
            observed(now - 12, a, 6379, 0),
            observed(now - 12, b, 6379, 0),
        ):
            app.post_message(EventArrived(event))
        await wait_until(pilot, lambda: "6379" in panel_text(app))
        text = panel_text(app)
        assert text.splitlines()[0] == "mymaster"
        assert "master 127.0.0.1:6379" in text
        assert "held for at least 12s" in text
        assert "sentinels 2/2 agree" in text
        assert not app.query_one("#waiting").display

        # One sentinel moves on to a new epoch: the master moves, the other disagrees.
        app.post_message(EventArrived(observed(time.time(), a, 6380, 1)))
        await wait_until(pilot, lambda: "6380" in panel_text(app))
        text = panel_text(app)
        assert "master 127.0.0.1:6380" in text
        assert "held for 0s (was 127.0.0.1:6379)" in text
        assert f"WARNING: sentinels disagree: 1/2 agree; {b} says 127.0.0.1:6379" in text
        assert app.query_one(MasterPanel).has_class("warning")

        app.post_message(EventArrived(observed(time.time(), b, 6380, 1)))
        await wait_until(pilot, lambda: "sentinels 2/2 agree" in panel_text(app))
        assert not app.query_one(MasterPanel).has_class("warning")
        assert len(app.query(MasterPanel)) == 1
        assert app.sub_title == "scripted"
