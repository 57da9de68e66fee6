"""Every key the footer or the help screen lists does what it says; the command palette
lists hawatch's actions and runs them; read-only leaves no failover entry anywhere.

The app is driven the way an operator drives it (Pilot key presses) on a scripted
scene (`scenes`): an incident in progress on ``mymaster``, a second master
``cache``, pending tasks.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from scenes import NOW, SceneApp, freeze_time_zone, healthy, incident, second_master
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot
from textual.widgets import Input

from hawatch.core.events import SentinelUnreachable
from hawatch.views.app import HawatchApp, MasterPanel
from hawatch.views.confirm import ConfirmFailover
from hawatch.views.dialogs import FilterPrompt, HelpScreen
from hawatch.views.options import ScreenOptions
from hawatch.views.pending import PendingPanel
from hawatch.views.timeline import TimelinePanel

freeze_time_zone()
SIZE = (80, 24)


@pytest.fixture(autouse=True)
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test writes to the real audit log."""
    path = tmp_path / "audit.log"
    monkeypatch.setenv("HAWATCH_AUDIT_LOG", str(path))
    return path


def busy_app(**kw: object) -> SceneApp:
    """An incident on mymaster, a healthy second master, nine tasks pending."""
    return SceneApp([*incident(), *second_master()], **kw)  # type: ignore[arg-type]


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def screen_text(app: HawatchApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


def footer_keys(app: HawatchApp) -> set[str]:
    """The keys the key bar shows (the last row), by the key as displayed."""
    footer = screen_text(app).splitlines()[-1].split("▏")[0]
    words = footer.split()
    shown = {binding.key_display or binding.key for binding in app.BINDINGS}  # type: ignore[union-attr]
    return {word for word in words if word in shown}


def shown(app: HawatchApp) -> dict[str, bool]:
    return {
        "masters": app.query_one("#masters").display,
        "timeline": app.query_one(TimelinePanel).display,
        "pending": app.query_one(PendingPanel).display,
    }


# Each check presses the key on the main screen and proves its effect.
Check = Callable[[HawatchApp, Pilot[None]], Awaitable[None]]


async def check_failover(app: HawatchApp, pilot: Pilot[None]) -> None:
    await pilot.press("f")
    await until(pilot, lambda: isinstance(app.screen, ConfirmFailover))
    assert isinstance(app.screen, ConfirmFailover)
    assert app.screen.master == app.selected_master()
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, ConfirmFailover))


async def check_help(app: HawatchApp, pilot: Pilot[None]) -> None:
    await pilot.press("question_mark")
    await until(pilot, lambda: isinstance(app.screen, HelpScreen))
    assert "?  Help" in screen_text(app)
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, HelpScreen))


async def check_next_master(app: HawatchApp, pilot: Pilot[None]) -> None:
    before = app.selected_master()
    await pilot.press("m")
    await until(pilot, lambda: app.selected_master() != before)
    after = app.selected_master()
    assert {before, after} == {"cache", "mymaster"}
    await until(pilot, lambda: f"▶ {after}" in screen_text(app))
    await pilot.press("m")
    await until(pilot, lambda: app.selected_master() == before)


async def check_filter(app: HawatchApp, pilot: Pilot[None]) -> None:
    panel = app.query_one(PendingPanel)
    await until(pilot, lambda: len(panel.pending_rows) > 0)
    rows = len(panel.pending_rows)  # 80x24 with two masters: as many as fit
    await pilot.press("slash")
    await until(pilot, lambda: isinstance(app.screen, FilterPrompt))
    await pilot.press(*"p004", "enter")
    await until(pilot, lambda: panel.pending_rows == ["p004e11a-77c1-4f0e-8a55-000000000000"])
    assert "filter: p004" in screen_text(app)
    assert "pending 9" in screen_text(app)  # the counts stay whole
    await pilot.press("slash")
    await until(pilot, lambda: isinstance(app.screen, FilterPrompt))
    app.screen.query_one(Input).value = ""
    await pilot.press("enter")
    await until(pilot, lambda: len(panel.pending_rows) == rows)
    assert panel.pending_rows[0] == "p000e11a-77c1-4f0e-8a55-000000000000"
    assert app.task_filter == ""


async def check_zoom(app: HawatchApp, pilot: Pilot[None]) -> None:
    everything = {"masters": True, "timeline": True, "pending": True}
    assert shown(app) == everything
    for part in ("masters", "timeline", "pending"):
        await pilot.press("z")
        await until(pilot, lambda part=part: shown(app) == {p: p == part for p in everything})
    await pilot.press("z")
    await until(pilot, lambda: shown(app) == everything)
    assert app.zoomed is None


async def check_toggle_timeline(app: HawatchApp, pilot: Pilot[None]) -> None:
    await pilot.press("t")
    await until(pilot, lambda: not shown(app)["timeline"])
    assert "F──D──S" not in screen_text(app)  # the phase bar is gone
    await pilot.press("t")
    await until(pilot, lambda: shown(app)["timeline"])
    assert "gap 12.0s and counting" in screen_text(app)


async def check_toggle_pending(app: HawatchApp, pilot: Pilot[None]) -> None:
    await pilot.press("p")
    await until(pilot, lambda: not shown(app)["pending"])
    assert "pending 9" not in screen_text(app)
    await pilot.press("p")
    await until(pilot, lambda: "pending 9" in screen_text(app))


async def check_clear(app: HawatchApp, pilot: Pilot[None]) -> None:
    app.choose_master("mymaster")
    await until(pilot, lambda: "+switch-master" in screen_text(app))
    await pilot.press("c")
    await until(pilot, lambda: "+switch-master" not in screen_text(app))
    assert "no Sentinel event seen yet" in screen_text(app)
    assert "the journal keeps them" in app.notice_text
    # The core forgot nothing: the open incident is still measured.
    assert "gap 12.0s and counting" in screen_text(app)
    app.cleared_at = None


async def check_export(app: HawatchApp, pilot: Pilot[None]) -> None:
    await pilot.press("e")
    await until(pilot, lambda: "incident written to" in app.notice_text)
    markdown = Path(app.notice_text.split("incident written to ")[1].split(";")[0])
    assert markdown.read_text(encoding="utf-8").startswith("#")


async def check_quit(app: HawatchApp, pilot: Pilot[None]) -> None:
    """Tested on its own app below: it ends the run."""


CHECKS: dict[str, Check] = {
    "f": check_failover,
    "?": check_help,
    "m": check_next_master,
    "/": check_filter,
    "z": check_zoom,
    "t": check_toggle_timeline,
    "p": check_toggle_pending,
    "c": check_clear,
    "e": check_export,
    "q": check_quit,
}


async def test_every_key_in_the_footer_and_the_help_does_what_it_says() -> None:
    app = busy_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "▶ mymaster" in screen_text(app))
        await pilot.pause(0.3)
        listed = footer_keys(app) | {key for key, _, _ in app.key_help()}
        # Nothing listed goes unchecked, nothing checked is unlisted.
        assert listed == set(CHECKS), listed
        for key, check in CHECKS.items():
            await check(app, pilot)
            assert len(app.screen_stack) == 1, key
    assert app.return_code is None or app.return_code == 0


async def test_q_quits_at_once() -> None:
    app = busy_app()
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        await pilot.press("q")
        await until(pilot, lambda: not app.is_running)


async def palette(app: HawatchApp, pilot: Pilot[None], query: str = "") -> list[str]:
    """The commands the palette lists for `query`, then closes it."""
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette))
    if query:
        await pilot.press(*query)
    await pilot.pause(0.5)
    options = app.screen.query_one(CommandList).options
    listed = [str(getattr(o.prompt, "plain", o.prompt)).splitlines()[0] for o in options]
    await pilot.press("escape")
    await until(pilot, lambda: not isinstance(app.screen, CommandPalette))
    return listed


async def run_command(app: HawatchApp, pilot: Pilot[None], title: str) -> None:
    """Search the palette for `title` and run the first command found."""
    await pilot.press("ctrl+p")
    await until(pilot, lambda: isinstance(app.screen, CommandPalette))
    await pilot.press(*title)
    await pilot.pause(0.5)
    listed = app.screen.query_one(CommandList).options
    first = str(getattr(listed[0].prompt, "plain", listed[0].prompt)).splitlines()[0]
    assert first == title
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(app.screen, CommandPalette))


async def test_the_palette_lists_hawatch_actions_and_runs_them() -> None:
    app = busy_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "▶ mymaster" in screen_text(app))
        listed = await palette(app, pilot)
        for title in (
            "Fail over mymaster",
            "Export the incident",
            "Choose master cache",
            "Choose master mymaster",
            "Filter pending tasks",
            "Toggle the timeline",
            "Toggle the pending tasks",
            "Zoom: masters",
            "Zoom: timeline",
            "Zoom: pending",
            "Clear history",
            "Help: all keys",
        ):
            assert title in listed, title
        await run_command(app, pilot, "Choose master cache")
        assert app.selected_master() == "cache"
        await run_command(app, pilot, "Choose master mymaster")
        assert app.selected_master() == "mymaster"
        await run_command(app, pilot, "Zoom: timeline")
        await until(
            pilot, lambda: shown(app) == {"masters": False, "timeline": True, "pending": False}
        )
        await run_command(app, pilot, "Zoom: none")
        await until(pilot, lambda: all(shown(app).values()))
        await run_command(app, pilot, "Toggle the pending tasks")
        await until(pilot, lambda: not shown(app)["pending"])
        await run_command(app, pilot, "Clear history")
        await until(pilot, lambda: "+switch-master" not in screen_text(app))
        await run_command(app, pilot, "Help: all keys")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        await pilot.press("escape")
        await run_command(app, pilot, "Filter pending tasks")
        await until(pilot, lambda: isinstance(app.screen, FilterPrompt))
        await pilot.press("escape")
        await run_command(app, pilot, "Fail over mymaster")
        await until(pilot, lambda: isinstance(app.screen, ConfirmFailover))
        assert app.screen.master == "mymaster"  # type: ignore[attr-defined]
        await pilot.press("escape")


@pytest.mark.parametrize("how", ["read-only", "no-failover"])
async def test_no_failover_entry_anywhere(how: str, audit_log: Path) -> None:
    if how == "read-only":
        app = busy_app(read_only=True)
    else:
        app = busy_app(screen=ScreenOptions(allow_failover=False))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "▶ mymaster" in screen_text(app))
        await pilot.pause(0.3)
        assert "Fail" not in screen_text(app).splitlines()[-1]
        assert "f" not in app.screen.active_bindings
        assert not [key for key in app.key_help() if "fail" in key[1].lower()]
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Fail" not in screen_text(app)
        await pilot.press("escape")
        assert not [c for c in await palette(app, pilot) if "fail" in c.lower()]
        assert not [c for c in await palette(app, pilot, "fail over") if "fail" in c.lower()]
        await pilot.press("f")
        await pilot.pause(0.2)
        app.action_failover()
        await pilot.pause(0.2)
        assert len(app.screen_stack) == 1
        assert not audit_log.exists()


async def test_notifications_and_bell_on_a_new_unreachable_sentinel() -> None:
    rings: list[float] = []

    class Counted(SceneApp):
        def bell(self) -> None:
            rings.append(time.monotonic())

    async def run(bell: bool) -> None:
        rings.clear()
        app = Counted(healthy(), screen=ScreenOptions(bell=bell))
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await pilot.pause(0.5)
            assert not app._notifications  # what is known at start is not news
            app.monitor.feed(
                SentinelUnreachable(ts=NOW, sentinel="127.0.0.1:26381", reason="connection refused")
            )
            await until(pilot, lambda: bool(app._notifications))
            [note] = list(app._notifications)
            assert note.message == "sentinel 127.0.0.1:26381 does not answer: connection refused."
            assert note.severity == "warning"
            await until(pilot, lambda: "sentinel unreachable" in screen_text(app))  # the toast
            assert len(rings) == (1 if bell else 0)

    await run(bell=True)
    await run(bell=False)


async def test_refresh_bounds_how_often_the_screen_is_rendered() -> None:
    renders: list[float] = []

    class Counted(SceneApp):
        def refresh_view(self) -> None:
            renders.append(time.monotonic())
            super().refresh_view()

    app = Counted(healthy(), screen=ScreenOptions(refresh=1.0))
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause(0.2)
        renders.clear()
        await pilot.pause(3.0)
    assert 1 <= len(renders) <= 4  # one a second, never the default four


async def test_the_selected_master_is_chosen_by_a_click() -> None:
    app = busy_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "▶ mymaster" in screen_text(app))
        row = next(i for i, line in enumerate(screen_text(app).splitlines()) if "  cache  " in line)
        listing = app.query_one("#masters-list")
        await pilot.click("#masters-list", offset=(4, row - listing.region.y))
        await until(pilot, lambda: app.selected_master() == "cache")
        panels = {panel.master: panel.display for panel in app.query(MasterPanel)}
        assert panels == {"mymaster": False, "cache": True}


async def test_the_master_with_an_open_incident_is_chosen_until_the_operator_chooses() -> None:
    app = busy_app()
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: "▶ mymaster" in screen_text(app))
        shown = screen_text(app)
        assert "▶ mymaster  127.0.0.1:6380  OK  INCIDENT: gap 12.0s and counting" in shown
        assert "  cache  127.0.0.1:6479  OK" in shown
        assert app.selected_master() == "mymaster"  # not "cache", the first by name
        await pilot.press("m")
        await until(pilot, lambda: app.selected_master() == "cache")
