"""The TUI at 80x24, driven the way an operator drives it.

These tests feed the app scripted core events (no Redis): what the screen says
about a master, a switch, warnings and events, and how the failover key is
offered, confirmed, refused or removed. The real failover is tested against a
real cluster in ``tests/integration/test_failover_key.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Button, Static

from hawatch.core.events import (
    Event,
    IncidentUpdate,
    MasterObserved,
    NodeObserved,
    QueueDepth,
    ReplicaInfo,
    SentinelMessage,
    SentinelReachable,
    SentinelUnreachable,
    TaskEvent,
    WorkerEvent,
)
from hawatch.journal import Journal, read_journal
from hawatch.monitor import CeleryOptions
from hawatch.settings import SentinelAddress, Settings
from hawatch.views.app import HawatchApp, MasterPanel
from hawatch.views.confirm import ConfirmFailover
from hawatch.views.messages import EventArrived
from hawatch.views.pending import PendingPanel
from hawatch.views.styles import stylesheet_path

SIZE = (80, 24)
A, B, C = "127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on: bound, read, closed."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def settings(closed_port: int) -> Settings:
    return Settings(sentinels=(SentinelAddress("127.0.0.1", closed_port),))


@pytest.fixture(autouse=True)
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test writes its audit log to a temporary file, never to the real one."""
    path = tmp_path / "audit" / "audit.log"
    monkeypatch.setenv("HAWATCH_AUDIT_LOG", str(path))
    yield path


class ScriptedApp(HawatchApp):
    """The app without a sentinel source: the test is the only source of events."""

    def poll_sentinels(self) -> None:  # type: ignore[override]
        """Watch nothing; the test posts the events."""


async def wait_until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5.0):
    """Let the app run until `condition` holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def status_text(app: HawatchApp) -> str:
    return str(app.query_one("#status", Static).content)


def screen_text(app: HawatchApp) -> str:
    """What the terminal shows right now, as plain text (one line per row)."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def panel_text(app: HawatchApp, name: str = "mymaster") -> str:
    """Everything the panel of `name` shows, or "" before it exists."""
    for panel in app.query(MasterPanel):
        if panel.master == name:
            return panel.text
    return ""


def feed(app: HawatchApp, events: list[Event]) -> None:
    for event in events:
        app.post_message(EventArrived(event))


def observed(
    ts: float,
    sentinel: str,
    port: int,
    epoch: int,
    *,
    master: str = "mymaster",
    replicas: tuple[ReplicaInfo, ...] | None = None,
    ckquorum_ok: bool | None = None,
) -> MasterObserved:
    return MasterObserved(
        ts=ts,
        sentinel=sentinel,
        master=master,
        ip="127.0.0.1",
        port=port,
        epoch=epoch,
        flags=("master",),
        num_slaves=2,
        num_other_sentinels=2,
        quorum=2,
        replicas=replicas,
        ckquorum=None if ckquorum_ok is None else "OK 3 usable Sentinels",
        ckquorum_ok=ckquorum_ok,
    )


def busy_cluster(now: float, *, masters: tuple[str, ...] = ("mymaster",)) -> list[Event]:
    """Two sentinels that answer, one that does not; per master two replicas, the nodes'
    own offsets, and a failover's worth of Sentinel messages published by all three."""
    events: list[Event] = [
        SentinelReachable(ts=now - 300, sentinel=A),
        SentinelReachable(ts=now - 300, sentinel=B),
        SentinelUnreachable(ts=now - 95, sentinel=C, reason="connection refused"),
    ]
    for index, master in enumerate(masters):
        port = 6379 + 10 * index
        replicas = (
            ReplicaInfo(f"127.0.0.1:{port + 1}", ("slave",), "ok", 0, 100, 1000),
            ReplicaInfo(f"127.0.0.1:{port + 2}", ("slave",), "err", 0, 0, 900),
        )
        for sentinel in (A, B):
            events.append(
                observed(
                    now - 200, sentinel, port, 0, master=master, replicas=replicas, ckquorum_ok=True
                )
            )
        events += [
            NodeObserved(ts=now - 190, address=f"127.0.0.1:{port}", role="master", offset=5000),
            NodeObserved(ts=now - 190, address=f"127.0.0.1:{port + 1}", role="slave", offset=4000),
            NodeObserved(ts=now - 190, address=f"127.0.0.1:{port + 2}", role="slave", offset=5000),
        ]
        channels = ["+sdown", "+odown", "+try-failover", "+elected-leader", "+selected-slave"]
        channels += ["+promoted-slave", "+failover-state-reconf-slaves", "+failover-end"]
        for k, channel in enumerate(channels):
            for sentinel in (A, B, C):
                events.append(
                    SentinelMessage(
                        ts=now - 150 + k,
                        sentinel=sentinel,
                        channel=channel,
                        payload=f"master {master} 127.0.0.1 {port}",
                        master=master,
                        role="master",
                        instance=master,
                        address=f"127.0.0.1:{port}",
                    )
                )
    return events


# --------------------------------------------------------------------------- basics


def test_stylesheet_is_found() -> None:
    assert stylesheet_path().is_file()
    assert str(stylesheet_path()) in HawatchApp.CSS_PATH


async def test_unreachable_sentinel_is_reported_and_app_keeps_running(
    settings: Settings, closed_port: int
) -> None:
    app = HawatchApp(settings, topology_interval=0.1)
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


# --------------------------------------------------------------------------- the panel


async def test_scripted_events_show_the_master_and_a_switch(settings: Settings) -> None:
    app = ScriptedApp(settings, subtitle="scripted")
    async with app.run_test(size=SIZE) as pilot:
        now = time.time()
        feed(
            app,
            [
                SentinelReachable(ts=now - 12, sentinel=A),
                SentinelReachable(ts=now - 12, sentinel=B),
                observed(now - 12, A, 6379, 0),
                observed(now - 12, B, 6379, 0),
            ],
        )
        await wait_until(pilot, lambda: "6379" in panel_text(app))
        text = panel_text(app)
        assert text.splitlines()[0] == "mymaster   master 127.0.0.1:6379   OK"
        assert "held ≥ 12s" in text  # 80x24: the compact panel
        assert "sentinels 2/2 agree" in text
        assert not app.query_one("#waiting").display
        assert not app.query_one(MasterPanel).has_class("warning")

        # One sentinel moves on to a new epoch: the master moves, the other disagrees.
        feed(app, [observed(time.time(), A, 6380, 1)])
        await wait_until(pilot, lambda: "6380" in panel_text(app))
        text = panel_text(app)
        assert text.splitlines()[0] == "mymaster   master 127.0.0.1:6380   WARNING"
        assert "held 0s, was 127.0.0.1:6379" in text
        assert "sentinels 1/2 agree" in text
        assert f"WARNING: sentinels disagree: {B} names 127.0.0.1:6379" in text
        assert app.query_one(MasterPanel).has_class("warning")

        feed(app, [observed(time.time(), B, 6380, 1)])
        await wait_until(pilot, lambda: "sentinels 2/2 agree" in panel_text(app))
        assert "disagree" not in panel_text(app)
        assert not app.query_one(MasterPanel).has_class("warning")
        assert len(app.query(MasterPanel)) == 1
        assert app.sub_title == "scripted"


async def test_panel_at_80x24_shows_the_essentials_without_scrolling(
    settings: Settings,
) -> None:
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        feed(app, busy_cluster(time.time()))
        await wait_until(pilot, lambda: "+failover-end" in panel_text(app))
        await pilot.pause(0.3)
        shown = screen_text(app)
        lines = shown.splitlines()
        assert len(lines) == 24
        # The master, its health in words, the sentinels and the quorum.
        assert "mymaster   master 127.0.0.1:6379   WARNING" in shown
        assert "sentinels 2/2 agree, 3 known, 1 not answering, quorum 2 OK" in shown
        # The unreachable sentinel: since when and why, as a warning in words.
        assert f"WARNING: {C} unreachable since " in shown
        assert ": connection refused" in shown
        # Replicas on one line: address, link and lag (from the nodes' own offsets).
        assert "replicas 127.0.0.1:6380 ok lag 1000 B · 127.0.0.1:6381 err never promoted" in shown
        # The newest event first, collapsed over the three sentinels that sent it.
        assert "+failover-end master mymaster 127.0.0.1:6379  ×3" in shown
        newest = next(i for i, line in enumerate(lines) if "+failover-end" in line)
        older = next(i for i, line in enumerate(lines) if "+promoted-slave" in line)
        assert newest < older
        # The status line and the key bar are on screen too.
        assert "1 of 3 sentinels unreachable" in lines[-2]
        assert "f Fail over" in lines[-1]


async def test_a_taller_terminal_shows_more_events(settings: Settings) -> None:
    async def events_shown(size: tuple[int, int]) -> int:
        app = ScriptedApp(settings)
        async with app.run_test(size=size) as pilot:
            feed(app, busy_cluster(time.time(), masters=("mymaster", "other")))
            await wait_until(pilot, lambda: "+failover-end" in panel_text(app))
            await pilot.pause(0.3)
            return sum("  ×3" in line for line in panel_text(app).splitlines())

    small, tall = await events_shown((80, 20)), await events_shown((80, 60))
    assert 2 <= small < tall == 8


async def test_no_color_says_every_state_in_words(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = ScriptedApp(settings)
    assert app.no_color
    async with app.run_test(size=SIZE) as pilot:
        now = time.time()
        feed(app, busy_cluster(now))
        feed(app, [observed(now, B, 6390, 1)])  # B now names another master
        await wait_until(pilot, lambda: "+failover-end" in panel_text(app))
        await wait_until(pilot, lambda: "6390" in panel_text(app))
        await pilot.pause(0.3)
        shown = screen_text(app)
        assert "mymaster   master 127.0.0.1:6390   WARNING" in shown
        assert "was 127.0.0.1:6379" in panel_text(app)  # cut short at 80 columns
        assert f"WARNING: sentinels disagree: {A} names 127.0.0.1:6379" in shown
        assert f"WARNING: {C} unreachable since" in shown
        assert "1 of 3 sentinels unreachable" in shown
        assert "f Fail over" in shown


async def test_panel_is_updated_in_place(settings: Settings) -> None:
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        now = time.time()
        feed(app, [SentinelReachable(ts=now, sentinel=A), observed(now, A, 6379, 0)])
        await wait_until(pilot, lambda: "6379" in panel_text(app))
        panel = app.query_one(MasterPanel)
        parts = list(panel.children)
        feed(app, [observed(time.time(), A, 6380, 1)])
        await wait_until(pilot, lambda: "6380" in panel_text(app))
        await pilot.pause(0.6)  # a few ticks
        assert app.query_one(MasterPanel) is panel
        assert list(panel.children) == parts


# --------------------------------------------------------------------------- failover key


def healthy(now: float) -> list[Event]:
    return [
        SentinelReachable(ts=now - 60, sentinel=A),
        SentinelReachable(ts=now - 60, sentinel=B),
        observed(now - 60, A, 6379, 0),
        observed(now - 60, B, 6379, 0),
    ]


async def test_f_opens_a_modal_that_names_master_address_and_one_sentinel(
    settings: Settings, audit_log: Path
) -> None:
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        feed(app, healthy(time.time()))
        await wait_until(pilot, lambda: "6379" in panel_text(app))
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmFailover))
        modal = app.screen
        assert isinstance(modal, ConfirmFailover)
        assert (modal.master, modal.address, modal.sentinel) == ("mymaster", "127.0.0.1:6379", A)
        shown = screen_text(app)
        assert "Fail over mymaster?" in shown
        assert "now at    127.0.0.1:6379" in shown
        assert f"ask       sentinel {A} (this one only)" in shown
        assert "esc Cancel" in shown
        # Focus is on Cancel: Enter by habit cancels.
        assert isinstance(app.focused, Button) and app.focused.id == "cancel"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmFailover))
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmFailover))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmFailover))
        await pilot.pause(0.3)
        assert not app.workers or all(w.group != "failover" for w in app.workers)
        assert app.notice_text == ""
        assert not audit_log.exists()


async def test_confirmed_failover_to_a_dead_sentinel_says_why_and_is_audited(
    closed_port: int, audit_log: Path
) -> None:
    dead = f"127.0.0.1:{closed_port}"
    settings = Settings(sentinels=(SentinelAddress("127.0.0.1", closed_port),))
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        now = time.time()
        feed(app, [SentinelReachable(ts=now, sentinel=dead), observed(now, dead, 6379, 0)])
        await wait_until(pilot, lambda: "6379" in panel_text(app))
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmFailover))
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: "could not ask" in app.notice_text)
        assert (
            f"WARNING: could not ask sentinel {dead} to fail over mymaster: connection refused"
            in app.notice_text
        )
        assert "could not ask sentinel" in screen_text(app)
        await wait_until(pilot, lambda: "operator failover" in panel_text(app))
        assert f"operator failover via {dead}: refused (ERROR connection refused)" in (
            panel_text(app)
        )
        (line,) = audit_log.read_text().splitlines()
        record = json.loads(line)
        assert record["master"] == "mymaster" and record["sentinel"] == dead
        assert record["reply"] == "ERROR connection refused" and record["accepted"] is False


async def test_an_unwritable_audit_log_is_a_warning_not_a_crash(
    closed_port: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    monkeypatch.setenv("HAWATCH_AUDIT_LOG", str(blocker / "audit.log"))
    dead = f"127.0.0.1:{closed_port}"
    app = ScriptedApp(Settings(sentinels=(SentinelAddress("127.0.0.1", closed_port),)))
    async with app.run_test(size=SIZE) as pilot:
        now = time.time()
        feed(app, [SentinelReachable(ts=now, sentinel=dead), observed(now, dead, 6379, 0)])
        await wait_until(pilot, lambda: "6379" in panel_text(app))
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmFailover))
        await pilot.press("tab", "enter")
        await wait_until(pilot, lambda: "audit log" in app.notice_text)
        assert "could not ask sentinel" in app.notice_text
        assert f"WARNING: could not write the audit log {blocker / 'audit.log'}: " in (
            app.notice_text
        )
        assert app.is_running


async def test_a_sentinel_that_never_answers_times_out_after_3_s(
    settings: Settings, audit_log: Path
) -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # read forever, answer nothing
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    hung = f"127.0.0.1:{port}"
    app = ScriptedApp(Settings(sentinels=(SentinelAddress("127.0.0.1", port),)))
    try:
        async with app.run_test(size=SIZE) as pilot:
            now = time.time()
            feed(app, [SentinelReachable(ts=now, sentinel=hung), observed(now, hung, 6379, 0)])
            await wait_until(pilot, lambda: "6379" in panel_text(app))
            await pilot.press("f")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmFailover))
            started = time.monotonic()
            await pilot.press("tab", "enter")
            await wait_until(pilot, lambda: "asking sentinel" in app.notice_text, timeout=1)
            # A second f while the request is on its way opens nothing.
            await pilot.press("f")
            await pilot.pause(0.1)
            assert not isinstance(app.screen, ConfirmFailover)
            assert "already on its way" in app.notice_text
            await wait_until(pilot, lambda: "did not answer" in app.notice_text, timeout=6)
            assert 2.5 < time.monotonic() - started < 5
            assert f"sentinel {hung} did not answer within 3 s" in app.notice_text
            record = json.loads(audit_log.read_text())
            assert record["reply"] == "TIMEOUT no answer within 3 s"
    finally:
        server.close()
        await server.wait_closed()


async def test_no_reachable_sentinel_means_no_modal(settings: Settings) -> None:
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("f")
        await pilot.pause(0.1)
        assert "no master is known yet" in app.notice_text
        now = time.time()
        feed(app, healthy(now))
        await wait_until(pilot, lambda: "6379" in panel_text(app))
        feed(
            app,
            [
                SentinelUnreachable(ts=now, sentinel=A, reason="connection refused"),
                SentinelUnreachable(ts=now, sentinel=B, reason="timed out after 1.0 s"),
            ],
        )
        await wait_until(pilot, lambda: "2 of 2 sentinels unreachable" in status_text(app))
        await pilot.press("f")
        await pilot.pause(0.1)
        assert not isinstance(app.screen, ConfirmFailover)
        assert "no sentinel is reachable: cannot ask for a failover of mymaster" in app.notice_text
        assert "no sentinel is reachable" in screen_text(app)


async def test_m_chooses_the_master_the_failover_key_acts_on(settings: Settings) -> None:
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        feed(app, busy_cluster(time.time(), masters=("mymaster", "other")))
        await wait_until(pilot, lambda: "6379" in panel_text(app))
        await pilot.pause(0.3)
        assert app.selected_master() == "mymaster"
        # 80x24: the list of both masters, the chosen one marked, only it in full.
        shown = screen_text(app)
        assert "▶ mymaster  127.0.0.1:6379  WARNING" in shown
        assert "  other  127.0.0.1:6389  WARNING" in shown
        assert "m Master" in shown.splitlines()[-1]
        await pilot.press("m")
        await wait_until(pilot, lambda: "6389" in panel_text(app, "other"))
        assert app.selected_master() == "other"
        await wait_until(pilot, lambda: "▶ other  127.0.0.1:6389" in screen_text(app))
        panels = {panel.master: panel for panel in app.query(MasterPanel)}
        assert panels["other"].display and not panels["mymaster"].display
        await pilot.press("f")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmFailover))
        assert isinstance(app.screen, ConfirmFailover)
        assert (app.screen.master, app.screen.address) == ("other", "127.0.0.1:6389")
        await pilot.press("escape")


# --------------------------------------------------------------------------- read-only


async def palette_commands(app: HawatchApp, pilot: Pilot[None], query: str = "") -> list[str]:
    """The commands the command palette lists (for `query`), by their text."""
    await pilot.press("ctrl+p")
    await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
    if query:
        await pilot.press(*query)
    await pilot.pause(0.5)
    commands = app.screen.query_one(CommandList)
    listed = [
        str(getattr(option.prompt, "plain", option.prompt)).splitlines()[0]
        for option in commands.options
    ]
    await pilot.press("escape")
    await wait_until(pilot, lambda: not isinstance(app.screen, CommandPalette))
    return listed


def key_panel_text(app: HawatchApp) -> str:
    """The keys the help panel lists (what Textual's "Keys" command shows)."""
    from rich.console import Console
    from textual.widgets import HelpPanel
    from textual.widgets._key_panel import BindingsTable

    panel = app.screen.query_one(HelpPanel)
    table = panel.query_one(BindingsTable).render_bindings_table()
    console = Console(width=60, record=True, file=io.StringIO())
    console.print(table)
    return console.export_text()


async def test_writable_mode_offers_the_failover_key(settings: Settings) -> None:
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.3)
        assert "f Fail over" in screen_text(app).splitlines()[-1]
        bindings = app.screen.active_bindings
        assert "f" in bindings and bindings["f"].binding.action == "failover"
        listed = await palette_commands(app, pilot)
        assert "Quit" in listed and "Keys" in listed
        await app.run_action("show_help_panel")
        await pilot.pause(0.2)
        assert "Fail over" in key_panel_text(app)


async def test_read_only_removes_the_failover_action_everywhere(
    closed_port: int, audit_log: Path
) -> None:
    settings = Settings(sentinels=(SentinelAddress("127.0.0.1", closed_port),), read_only=True)
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        feed(app, healthy(time.time()))
        await wait_until(pilot, lambda: "6379" in panel_text(app))
        await pilot.pause(0.3)
        # Not in the key bar, not among the active keys.
        footer = screen_text(app).splitlines()[-1]
        assert "q Quit" in footer and "Fail" not in footer and "f " not in footer
        assert "f" not in app.screen.active_bindings
        assert app.check_action("failover", ()) is False
        # Not in the command palette, listed or searched.
        listed = await palette_commands(app, pilot)
        assert listed and "Quit" in listed
        assert not [c for c in listed if "fail" in c.lower()]
        assert not [c for c in await palette_commands(app, pilot, "fail") if "fail" in c.lower()]
        # Not in the keys panel either.
        await app.run_action("show_help_panel")
        await pilot.pause(0.2)
        keys = key_panel_text(app)
        assert "Quit" in keys and "Fail" not in keys
        await app.run_action("hide_help_panel")
        # Pressing f does nothing; neither does calling the action.
        await pilot.press("f")
        await pilot.pause(0.2)
        app.action_failover()
        await pilot.pause(0.2)
        assert not isinstance(app.screen, ConfirmFailover)
        assert len(app.screen_stack) == 1
        assert app.notice_text == ""
        assert not audit_log.exists()
        assert "read-only: failover disabled" in status_text(app)


# --------------------------------------------------------------------------- the Celery side


async def test_pending_count_and_oldest_pending_task_are_visible_at_80x24(
    settings: Settings,
) -> None:
    now = time.time()
    app = ScriptedApp(settings, celery=CeleryOptions())
    async with app.run_test(size=SIZE) as pilot:
        events: list[Event] = busy_cluster(now)
        events.append(WorkerEvent(ts=now - 2, kind="heartbeat", hostname="demo@web1", freq=2.0))
        for n in range(12):
            events.append(
                TaskEvent(
                    ts=now - 60 + n,
                    state="sent",
                    uuid=f"{n:02d}oldest-task-0000-{n:04d}",
                    name="shop.checkout",
                    queue="celery",
                )
            )
        events.append(QueueDepth(ts=now - 1, queue="celery", length=12, unacked=0))
        feed(app, events)
        await wait_until(
            pilot, lambda: "pending 12" in screen_text(app) and "6379" in screen_text(app)
        )
        screen = screen_text(app)
        assert "00oldest" in screen, screen  # the oldest pending task, first row
        assert "shop.checkout" in screen
        assert "queue celery 12" in screen
        assert "… and 9 more pending" in screen
        assert "mymaster" in screen and "127.0.0.1:6379" in screen  # the master stays visible
        # Tasks start: the count drops and the oldest row leaves, in place.
        feed(app, [TaskEvent(ts=now, state="started", uuid="00oldest-task-0000-0000")])
        await wait_until(pilot, lambda: "pending 11" in screen_text(app))
        assert "00oldest" not in screen_text(app)
        assert "01oldest" in screen_text(app)


async def test_the_pending_panel_is_hidden_without_the_celery_side(settings: Settings) -> None:
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE):
        assert not app.query_one(PendingPanel).display


async def test_a_celery_app_that_cannot_be_loaded_is_a_sentence_and_the_app_runs_on(
    closed_port: int,
) -> None:
    settings = Settings(
        sentinels=(SentinelAddress("127.0.0.1", closed_port),), masters=("mymaster",)
    )
    app = HawatchApp(settings, celery=CeleryOptions(app="no_such_module_for_hawatch:app"))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: "Celery side is off" in status_text(app))
        assert status_text(app).startswith(
            "WARNING: the Celery side is off: cannot load a Celery app from "
            "'no_such_module_for_hawatch:app'"
        )
        assert app.is_running


async def test_every_event_is_journaled_and_a_failing_journal_is_a_warning(
    settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "journal.jsonl"
    journal = Journal(path)
    app = ScriptedApp(settings, journal=journal)
    async with app.run_test(size=SIZE) as pilot:
        assert f"recording every event to {path}" in app.notice_text
        now = time.time()
        events = busy_cluster(now)
        feed(app, events)

        def recorded() -> list[Event]:
            lines = [line.event for line in read_journal(path) if line.event is not None]
            return [e for e in lines if not isinstance(e, IncidentUpdate)]

        await wait_until(pilot, lambda: len(recorded()) == len(events))
        assert recorded() == events
        # The incident the scripted failover opened is journaled with them.
        assert any(line.event.TYPE == "incident" for line in read_journal(path) if line.event)
        journal.close()  # the file goes away underneath: the next write fails
        feed(app, [SentinelReachable(ts=now, sentinel=A)])
        await wait_until(pilot, lambda: "the journal stopped" in status_text(app))
        assert app.is_running


async def test_e_exports_the_incident_as_markdown_and_the_screen_as_svg(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    app = ScriptedApp(settings)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.press("e")
        await wait_until(pilot, lambda: "no incident yet" in app.notice_text)
        now = time.time()
        feed(app, busy_cluster(now))  # a failover's worth of Sentinel messages
        await wait_until(pilot, lambda: bool(app.monitor.incidents.reports()))
        await wait_until(pilot, lambda: "6379" in screen_text(app))
        await pilot.press("e")
        await wait_until(pilot, lambda: "incident written to" in app.notice_text)
    exports = tmp_path / "hawatch" / "exports"
    [markdown] = list(exports.glob("hawatch-mymaster-1-*.md"))
    assert str(markdown) in app.notice_text
    assert "mymaster" in markdown.read_text()
    svgs = sorted(exports.glob("*.svg"))
    assert len(svgs) == 2 and all(p.read_text().lstrip().startswith("<svg") for p in svgs)
    assert "6379" in svgs[-1].read_text()  # the master panel is in the picture
