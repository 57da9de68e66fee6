"""The replay screen at 80x24: a journal played into the TUI, read-only, paused and stepped.

The player's clock is a fake wall clock the test moves by hand, so "paused" and
"one step" are exact: no waiting for time to pass.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static

from hawatch.core.events import (
    Event,
    MasterObserved,
    SentinelMessage,
    SentinelReachable,
    SessionStarted,
    to_json,
)
from hawatch.replay import replay_file
from hawatch.views.app import MasterPanel
from hawatch.views.confirm import ConfirmFailover
from hawatch.views.replay_app import ReplayApp

SIZE = (80, 24)
T0 = 1_700_000_000.0
M = "mymaster"
SENTINELS = ("127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381")


class Wall:
    """A wall clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def observed(at: float, sentinel: str, port: int, epoch: int) -> MasterObserved:
    return MasterObserved(
        ts=T0 + at,
        sentinel=sentinel,
        master=M,
        ip="127.0.0.1",
        port=port,
        epoch=epoch,
        flags=("master",),
        num_slaves=2,
        num_other_sentinels=2,
        quorum=2,
    )


def down(at: float, sentinel: str, channel: str) -> SentinelMessage:
    return SentinelMessage(
        ts=T0 + at,
        sentinel=sentinel,
        channel=channel,
        payload=f"master {M} 127.0.0.1 6379",
        master=M,
        role="master",
        instance=M,
        address="127.0.0.1:6379",
    )


def failover() -> list[Event]:
    """A crash failover without a Celery side: 6379 fails, 6380 takes over at +6 s."""
    events: list[Event] = [
        SessionStarted(ts=T0, broker_master=None, celery=False, lost_after=30.0, max_tasks=100_000),
        *(SentinelReachable(ts=T0 + 0.1, sentinel=s) for s in SENTINELS),
        *(observed(0.5, s, 6379, 0) for s in SENTINELS),
        *(observed(2.5, s, 6379, 0) for s in SENTINELS),
        *(down(4.0 + 0.1 * k, s, "+sdown") for k, s in enumerate(SENTINELS)),
        down(4.5, SENTINELS[0], "+odown"),
    ]
    events += [
        SentinelMessage(
            ts=T0 + 6.0 + 0.05 * k,
            sentinel=s,
            channel="+switch-master",
            payload=f"{M} 127.0.0.1 6379 127.0.0.1 6380",
            master=M,
            old="127.0.0.1:6379",
            new="127.0.0.1:6380",
        )
        for k, s in enumerate(SENTINELS)
    ]
    events += [observed(6.5, s, 6380, 1) for s in SENTINELS]
    return events


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "drill.jsonl"
    path.write_text("".join(to_json(event) + "\n" for event in failover()))
    return path


@pytest.fixture(autouse=True)
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nothing may be audited: a replay never fails anything over."""
    path = tmp_path / "audit" / "audit.log"
    monkeypatch.setenv("HAWATCH_AUDIT_LOG", str(path))
    return path


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def screen_text(app: ReplayApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def panel_text(app: ReplayApp) -> str:
    for panel in app.query(MasterPanel):
        if panel.master == M:
            return panel.text
    return ""


async def test_a_replay_shows_the_master_and_then_the_switch(journal: Path) -> None:
    wall = Wall()
    app = ReplayApp(journal, paused=True, wall=wall)
    async with app.run_test(size=SIZE) as pilot:
        assert app.sub_title.startswith(f"replay of {journal.name} at 1x (paused)")
        for _ in range(4):  # the session, then the three sentinels answering
            await pilot.press("n")
        assert panel_text(app) == ""
        for _ in range(3):  # each sentinel's view of the master
            await pilot.press("n")
        await wait_until(pilot, lambda: "127.0.0.1:6379" in panel_text(app))
        assert panel_text(app).splitlines()[0] == "mymaster   master 127.0.0.1:6379   OK"
        assert app.monitor.clock() == T0 + 0.5

        await pilot.press("space")  # play on; 10 s of wall time cover the journal
        wall.now += 10.0
        await wait_until(pilot, lambda: app.ended)
        await wait_until(pilot, lambda: "127.0.0.1:6380" in panel_text(app))
        assert panel_text(app).splitlines()[0].startswith("mymaster   master 127.0.0.1:6380")
        assert "was 127.0.0.1:6379" in panel_text(app)
        assert "(end of journal)" in app.sub_title
        assert "end of journal" in app.notice_text
        assert app.monitor.clock() == T0 + 6.5  # the clock stops at the last line
        assert app.is_running
        # The screen computed what the report computes.
        assert app.replayer.reports() == replay_file(journal).reports


async def test_space_stops_the_clock_and_n_steps_one_event(journal: Path) -> None:
    wall = Wall()
    app = ReplayApp(journal, speed=1.0, wall=wall)
    async with app.run_test(size=SIZE) as pilot:
        wall.now += 0.3
        await wait_until(pilot, lambda: app.replayer.fed == 4)  # up to +0.1 s
        assert app.monitor.clock() == pytest.approx(T0 + 0.3)
        await pilot.press("space")
        assert "(paused)" in app.sub_title
        stopped = app.monitor.clock()
        wall.now += 60.0
        await pilot.pause(0.2)
        assert app.monitor.clock() == stopped
        assert app.replayer.fed == 4

        await pilot.press("n")
        assert app.replayer.fed == 5
        assert app.monitor.clock() == T0 + 0.5  # at the event stepped to
        wall.now += 60.0
        await pilot.pause(0.2)
        assert app.replayer.fed == 5 and app.monitor.clock() == T0 + 0.5

        await pilot.press("space")
        assert "(paused)" not in app.sub_title
        wall.now += 1.0
        await wait_until(pilot, lambda: app.replayer.fed == 7)  # the rest of +0.5 s
        assert app.monitor.clock() == pytest.approx(T0 + 1.5)


async def test_plus_and_minus_change_the_speed(journal: Path) -> None:
    wall = Wall()
    app = ReplayApp(journal, speed=4.0, paused=True, wall=wall)
    async with app.run_test(size=SIZE) as pilot:
        assert " at 4x (paused)" in app.sub_title
        await pilot.press("plus")
        assert " at 8x (paused)" in app.sub_title
        for _ in range(4):
            await pilot.press("minus")
        assert " at 0.5x (paused)" in app.sub_title
        await pilot.press("space")
        wall.now += 1.0
        await wait_until(pilot, lambda: app.monitor.clock() == T0 + 0.5)  # 1 s at 0.5x


async def test_the_failover_key_does_not_exist_in_a_replay(journal: Path, audit_log: Path) -> None:
    app = ReplayApp(journal, wall=Wall(), paused=True)
    async with app.run_test(size=SIZE) as pilot:
        for _ in range(7):
            await pilot.press("n")
        await wait_until(pilot, lambda: "127.0.0.1:6379" in panel_text(app))
        footer = screen_text(app).splitlines()[-1]
        for key in ("q Quit", "space Pause", "n Step", "+ Faster", "- Slower"):
            assert key in footer, footer
        assert "Fail" not in footer and "f " not in footer
        assert "f" not in app.screen.active_bindings
        assert app.check_action("failover", ()) is False
        await pilot.press("f")
        await pilot.pause(0.2)
        app.action_failover()
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmFailover)
        assert len(app.screen_stack) == 1
        assert not audit_log.exists()
        assert "read-only" in str(app.query_one("#status", Static).content)


async def test_unreadable_lines_are_said_once_at_the_end(journal: Path) -> None:
    text = journal.read_text().splitlines()
    journal.write_text("\n".join([text[0], "garbage", *text[1:], '{"type":"x"']) + "\n")
    wall = Wall()
    app = ReplayApp(journal, speed=64.0, wall=wall)
    async with app.run_test(size=SIZE) as pilot:
        wall.now += 1.0
        await wait_until(pilot, lambda: app.ended)
        assert app.notice_text.endswith(
            f"end of journal; 2 lines of {journal.name} could not be read and were skipped; "
            "the first, line 2: an event line is not valid JSON: Expecting value: "
            "line 1 column 1 (char 0)"
        )
        assert "127.0.0.1:6380" in panel_text(app)
