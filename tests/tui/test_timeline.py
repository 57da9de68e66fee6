"""The timeline panel: its text from real incident reports, and the widget at 80x24.

Reports come from a real `IncidentModel` (with a real `TaskTracker`) fed scripted
Sentinel and Celery events, so the tests follow the model: no report is built by
hand, no sleep, no clock (every time is a number in the script). The widget tests
mount the panel alone in a tiny app at 80x24 and read what the terminal shows.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable, Digits

from hawatch.core.events import Event, ProbeResult, SentinelMessage, TaskEvent
from hawatch.core.incidents import IncidentModel, IncidentReport, IncidentsSnapshot
from hawatch.core.tasks import TaskTracker
from hawatch.views.panel import format_clock
from hawatch.views.styles import stylesheet_path
from hawatch.views.timeline import (
    GAP_FILL,
    HEALTHY,
    STYLESHEET,
    TimelinePanel,
    compact_line,
    figures_line,
    format_gap,
    gap_figure,
    gap_text,
    healthy_line,
    history_rows,
    move_text,
    phase_bar,
    phase_columns,
    phase_legend,
    sparkline,
    switch_index,
    throughput_caption,
    users_text,
)

SIZE = (80, 24)
T0 = 1_700_000_000.0
"""The script's time zero (epoch seconds)."""
M = "mymaster"
A = "127.0.0.1:6380"
B = "127.0.0.1:6381"
S1 = "127.0.0.1:26379"


def t(seconds: float) -> float:
    return T0 + seconds


def msg(at: float, channel: str, *, address: str = A, role: str = "master") -> SentinelMessage:
    ip, port = address.rsplit(":", 1)
    instance = M if role == "master" else address
    payload = f"{role} {instance} {ip} {port}"
    if role != "master":
        payload += f" @ {M} 127.0.0.1 6381"
    return SentinelMessage(
        ts=t(at),
        sentinel=S1,
        channel=channel,
        payload=payload,
        master=M,
        role=role,
        instance=instance,
        address=address,
    )


def switch(at: float, old: str = A, new: str = B) -> SentinelMessage:
    o_ip, o_port = old.rsplit(":", 1)
    n_ip, n_port = new.rsplit(":", 1)
    return SentinelMessage(
        ts=t(at),
        sentinel=S1,
        channel="+switch-master",
        payload=f"{M} {o_ip} {o_port} {n_ip} {n_port}",
        master=M,
        old=old,
        new=new,
    )


def task(at: float, state: str, uuid: str, **fields: Any) -> TaskEvent:
    return TaskEvent(ts=t(at), state=state, uuid=uuid, **fields)


class Script:
    """The core as the monitor runs it: the tracker first, then the incident model."""

    def __init__(self) -> None:
        self.tracker = TaskTracker(lost_after=30.0)
        self.model = IncidentModel(tracker=self.tracker, stable_after=10.0)
        self.tasks = 0

    def feed(self, *events: Event) -> Script:
        for event in events:
            self.tracker.apply(event)
            self.model.apply(event)
            if isinstance(event, SentinelMessage) and event.channel == "+switch-master":
                self.tracker.note_switch(event.ts)
        return self

    def work(self, start: float, stop: float, per_second: int = 4) -> Script:
        """`per_second` tasks sent and started each second from `start` to `stop`."""
        for second in range(int(start), int(stop)):
            for k in range(per_second):
                self.tasks += 1
                uuid = f"task-{self.tasks:05d}"
                at = second + k / per_second
                self.feed(
                    task(at - 0.02, "sent", uuid, queue="celery"),
                    task(at - 0.01, "received", uuid, worker="celery@w1"),
                    task(at, "started", uuid, worker="celery@w1"),
                )
        return self

    def snapshot(self, at: float) -> IncidentsSnapshot:
        self.model.tick(t(at))
        return self.model.snapshot(t(at))

    def report(self, at: float) -> IncidentReport:
        snap = self.snapshot(at)
        [report] = snap.open or snap.history[-1:]
        return report

    def started(self, at: float, seconds: int = 180) -> tuple[int, ...]:
        return self.tracker.started_history(t(at), seconds)


def fault() -> Script:
    """A crash, as the model sees it, until the election.

    Work runs until the fault at T0 (4 tasks a second); a task sent just after it
    will never run; ``+odown`` at 2 s, ``+try-failover`` at 3 s.
    """
    return (
        Script()
        .work(-60, 0)
        .feed(
            msg(0.0, "+sdown"),
            task(0.5, "sent", "stuck-1", queue="celery"),
            msg(2.0, "+odown"),
            msg(3.0, "+try-failover"),
        )
    )


def switched(script: Script) -> Script:
    """``+switch-master`` at 5 s; the old master is dead (``+sdown`` on it as a replica),
    so there is nothing to demote."""
    return script.feed(switch(5.0), msg(5.5, "+sdown", role="slave", address=A))


def failover() -> Script:
    """`fault`, then `switched`: the gap is counting from 5 s."""
    return switched(fault())


def resumed(script: Script) -> Script:
    """Work resumes at 18 s (gap 13 s, outage 18 s) and goes on until 24 s; the task
    sent at 0.5 s is overtaken, so it is lost once the incident closes."""
    return script.work(18, 24)


# ------------------------------------------------------------------------- the text


def test_waiting_for_election_before_the_switch_then_the_gap_ticks_and_freezes() -> None:
    script = failover()
    # Before the switch: waiting, counted from the fault, in whole seconds.
    report = fault().report(3.4)
    assert gap_text(report, t(3.4)) == "waiting for election 3s"
    assert gap_figure(report, t(3.4)) == "3"
    assert gap_text(report, t(65.0)) == "waiting for election 1m 05s"
    assert gap_figure(report, t(65.0)) == "1:05"
    # After the switch: the gap ticks with `now`, even on a report made earlier.
    report = script.report(7.3)
    assert "gap_s" in report.counting
    assert gap_text(report, t(7.3)) == "gap 2.3s and counting"
    assert gap_figure(report, t(7.3)) == "2.3"
    assert gap_text(report, t(12.0)) == "gap 7.0s and counting"
    assert gap_text(script.report(17.9), t(17.9)) == "gap 12.9s and counting"
    # Work resumed at 18 s: the gap is final, whatever `now` says.
    resumed(script)
    report = script.report(19.0)
    assert report.status == "open" and report.counting == ()
    for at in (19.0, 25.0, 60.0):
        assert gap_text(report, t(at)) == "gap 13.0s"
        assert gap_figure(report, t(at)) == "13.0"
    assert figures_line(report) == "outage 18.0s · pending at switch 1"
    closed = script.report(40.0)
    assert closed.status == "closed"
    assert figures_line(closed) == "outage 18.0s · pending at switch 1 · 1 LOST"


def test_phase_letters_sit_at_their_offsets_from_the_fault() -> None:
    script = failover()
    # 31 columns over 30 s: one column a second, the fault at column 0, now at 30.
    open_ = script.report(12.0)
    assert phase_columns(open_, t(12.0), 25) == {
        "fault": 0,
        "detected": 4,
        "elected": 6,
        "switched": 10,
    }
    assert phase_bar(open_, t(12.0), 25) == "F───D─E───S" + GAP_FILL * 14
    resumed(script)
    report = script.report(20.0)
    assert phase_columns(report, t(30.0), 31) == {
        "fault": 0,
        "detected": 2,
        "elected": 3,
        "switched": 5,
        "resumed": 18,
    }
    bar = phase_bar(report, t(30.0), 31)
    assert bar == "F─DE─S" + GAP_FILL * 12 + "R" + "─" * 12
    assert len(bar) == 31
    # Twice as wide: twice the offsets.
    assert phase_columns(report, t(30.0), 61)["resumed"] == 36
    # Closed (10 s after the resume): the bar ends at the close, not at `now`.
    closed = script.report(40.0)
    assert closed.status == "closed" and closed.closed == t(28.0)
    assert phase_bar(closed, t(99.0), 29) == "F─DE─S" + GAP_FILL * 12 + "R" + "─" * 10


def test_letters_that_would_share_a_column_keep_their_order() -> None:
    # A forced failover seen the usual way: fault, election and switch within 1.1 s,
    # the old master demoted 2 s later (the letters M), then the work resumes at 20 s.
    script = (
        Script()
        .work(-5, 0)
        .feed(
            msg(0.0, "+sdown"),
            msg(0.3, "+odown"),
            msg(0.5, "+try-failover"),
            switch(1.1),
            msg(3.0, "+convert-to-slave", role="slave", address=A),
        )
        .work(20, 21)
    )
    report = script.report(20.5)
    assert report.demoted == t(3.0) and report.resumed is not None
    columns = phase_columns(report, t(21.0), 22)  # about one column a second
    order = ["fault", "detected", "elected", "switched", "demoted", "resumed"]
    assert [columns[phase] for phase in order] == sorted(columns.values())
    assert len(set(columns.values())) == 6
    assert columns["fault"] == 0
    # F, D and E at 0 s and the switch at 1.1 s: the letters after the fault are pushed
    # right, in order, as little as they must; the resume keeps its column.
    assert columns == {
        "fault": 0,
        "detected": 1,
        "elected": 2,
        "switched": 3,
        "demoted": 4,
        "resumed": 20,
    }
    bar = phase_bar(report, t(21.0), 22)
    assert bar == "FDESM" + GAP_FILL * 15 + "R─"
    # With room on the left, the earlier letters move left and the switch keeps its column.
    tight = (
        Script()
        .feed(msg(0.0, "+sdown"), msg(4.0, "+odown"), msg(4.2, "+try-failover"), switch(4.4))
        .report(10.0)
    )
    assert phase_columns(tight, t(10.0), 11) == {
        "fault": 0,
        "detected": 2,
        "elected": 3,
        "switched": 4,
    }
    # The legend gives the exact offsets that the bar could not.
    legend = phase_legend(report, t(21.0), 200)
    assert legend == (
        f"F fault {format_clock(t(0.0))} · D detected +0.3s · E elected +0.5s · "
        f"S switched +1.1s · M demoted +3.0s · R resumed +20.0s · {GAP_FILL} gap"
    )
    assert phase_legend(report, t(21.0), 90) == (
        f"F fault · D +0.3s · E +0.5s · S switched +1.1s · M +3.0s · R resumed +20.0s · "
        f"{GAP_FILL} gap"
    )
    assert phase_legend(report, t(21.0), 60) == (
        f"F fault · D +0.3s · E +0.5s · S +1.1s · M +3.0s · R +20.0s · {GAP_FILL} gap"
    )


def test_the_sparkline_marks_the_switch_over_the_hole_in_the_work() -> None:
    script = resumed(failover())
    history = script.started(24.0, 40)[:-1]  # seconds -15 .. 23 (24 is under way)
    assert history == (4,) * 15 + (0,) * 18 + (4,) * 6
    index = switch_index(t(23.0), len(history), t(5.0))
    assert index == 20  # second 5
    marker, bars = sparkline(history, index, 39)
    assert bars == "█" * 15 + " " * 18 + "█" * 6
    assert marker == " " * 20 + "▼ switch" + " " * 11
    # Narrower: two seconds a column, from the newest (the oldest second left out);
    # the marker stays over the switch's column, in the hole.
    marker, bars = sparkline(history, index, 19)
    assert bars == "█" * 7 + " " * 9 + "█" * 3
    assert marker.index("▼") == 9
    assert throughput_caption(history, 19) == (
        "started tasks/s over the last 38s (2s a column) · peak 4.0/s"
    )
    # The switch near the right edge: the label goes on its left.
    marker, _ = sparkline((1, 0, 0, 1), 3, 10)
    assert marker == " " * 2 + "switch ▼"
    assert sparkline((), None, 5) == (" " * 5, " " * 5)
    assert throughput_caption((0,) * 180, 76) == "no task started in the last 3m 00s"
    assert switch_index(t(23.0), 39, None) is None
    assert switch_index(t(23.0), 39, t(-20.0)) is None


def test_history_rows_say_every_figure_of_a_closed_incident() -> None:
    script = resumed(failover())
    [closed] = script.snapshot(40.0).history
    [(key, cells)] = history_rows([closed])
    assert key == closed.id == "mymaster-1"
    assert cells == (
        format_clock(t(0.0)),
        M,
        "13.0s",
        "18.0s",
        "2.0s",
        "5.0s",
        "1",
        "1",
        ":6380→:6381",
    )
    # An open one says which figures are still ticking.
    [(_, live)] = history_rows(failover().snapshot(9.0).open)
    assert live[2:6] == ("4.0s so far", "9.0s so far", "2.0s", "5.0s")


def test_short_words_for_addresses_the_healthy_line_and_the_compact_line() -> None:
    assert move_text(A, B) == f"{A} → {B}"
    assert move_text(A, B, short=True) == ":6380→:6381"
    assert move_text("10.0.0.1:6379", "10.0.0.2:6379", short=True) == "10.0.0.1→10.0.0.2"
    assert move_text("10.0.0.1:6379", "10.0.0.2:6380", short=True) == (
        "10.0.0.1:6379→10.0.0.2:6380"
    )
    assert move_text(A, None) == f"{A}, no switch"
    assert format_gap(13.123) == "13.1s" and format_gap(62.0) == "1m 02s"
    assert healthy_line(()) == f"{HEALTHY} this session"
    script = resumed(failover())
    history = script.snapshot(40.0).history
    assert healthy_line(history) == (
        f"{HEALTHY} · last {M} {format_clock(t(0.0))}: gap 13.0s, outage 18.0s, 1 LOST"
    )
    report = failover().report(7.3)
    assert compact_line(report, t(7.3)) == f"gap 2.3s and counting · {M} :6380→:6381"
    assert compact_line(report, t(7.3), also=["other"]).endswith(" · also open: other")


# ------------------------------------------------------------------------- the widget


class PanelApp(App[None]):
    """The panel alone, with its own stylesheet."""

    CSS_PATH = str(stylesheet_path(STYLESHEET))

    def compose(self) -> ComposeResult:
        yield TimelinePanel()


def screen_text(app: App[None]) -> str:
    """What the terminal shows right now, as plain text (one line per row)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def history_table(app: App[None]) -> DataTable[Any]:
    return app.query_one("TimelinePanel > DataTable", DataTable)


def test_stylesheet_is_found() -> None:
    assert stylesheet_path(STYLESHEET).is_file()


async def test_pilot_80x24_gap_ticks_with_its_phases_then_the_history_has_the_final_gap() -> None:
    app = PanelApp()
    script = fault()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(TimelinePanel)

        async def show(at: float, *, compact: bool = False) -> str:
            panel.show(script.snapshot(at), script.started(at), t(at), compact=compact)
            await pilot.pause()
            return screen_text(app)

        # Before the switch: waiting, no gap yet; the phases so far on the bar.
        shown = await show(4.0)
        assert "waiting for election 4s" in shown
        assert panel.figure == "4"
        bar = next(line for line in shown.splitlines() if "F─" in line)
        assert [ch for ch in bar if ch.isalpha()] == ["F", "D", "E"]
        switched(script)
        # The gap ticks as `now` advances: the words and the big digits.
        seen = []
        for at in (7.0, 7.5, 9.2):
            shown = await show(at)
            seen.append(panel.figure)
            assert f"gap {at - 5.0:.1f}s and counting" in shown
        assert seen == ["2.0", "2.5", "4.2"]
        assert app.query_one(Digits).display
        assert "mymaster 127.0.0.1:6380 → 127.0.0.1:6381" in shown
        bar = next(line for line in shown.splitlines() if "F─" in line)
        assert [ch for ch in bar if ch.isalpha()] == ["F", "D", "E", "S"]
        assert GAP_FILL in bar
        assert "▼ switch" in shown or "switch ▼" in shown
        assert "started tasks/s over the last" in shown
        assert panel.has_class("incident")
        assert not history_table(app).display
        # Work resumed: the gap stops ticking.
        resumed(script)
        for at in (19.0, 23.0):
            shown = await show(at)
            assert "gap 13.0s" in shown and "and counting" not in shown.split("\n")[1]
            assert panel.figure == "13.0"
        bar = next(line for line in shown.splitlines() if "F─" in line)
        assert [ch for ch in bar if ch.isalpha()] == ["F", "D", "E", "S", "R"]
        assert (
            f"F fault · D +2.0s · E +3.0s · S switched +5.0s · R resumed +18.0s · {GAP_FILL} gap"
            in shown
        )
        # Closed (10 s after the resume): healthy, and the final gap in the table.
        shown = await show(40.0)
        assert f"{HEALTHY} · last {M}" in shown and "gap 13.0s" in shown
        assert not panel.has_class("incident")
        assert not app.query_one(Digits).display
        assert panel.history_keys == ["mymaster-1"]
        table = history_table(app)
        assert table.get_cell("mymaster-1", "gap").plain == "13.0s"
        row = next(line for line in shown.splitlines() if format_clock(t(0.0)) + "  " in line)
        assert "mymaster  13.0s  18.0s" in row and ":6380→:6381" in row
        assert "gap" in shown and "outage" in shown and "old → new" in shown
        # Everything inside the 80x24 screen, the table's last column included.
        assert all(len(line) <= 80 for line in shown.splitlines())


async def test_compact_mode_is_two_lines_the_gap_in_words_and_the_phase_bar() -> None:
    app = PanelApp()
    script = failover()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(TimelinePanel)
        panel.show(script.snapshot(9.2), script.started(9.2), t(9.2), compact=True)
        await pilot.pause()
        assert panel.outer_size.height == 4  # two lines inside the border
        lines = [line for line in screen_text(app).splitlines() if line.strip()]
        assert f"gap 4.2s and counting · {M} :6380→:6381" in lines[1]
        assert "F─" in lines[2] and "S" in lines[2] and GAP_FILL in lines[2]
        assert not app.query_one(Digits).display
        # Healthy: one line, the last gap in words; a table only when asked for rows.
        resumed(script)
        snapshot = script.snapshot(40.0)
        panel.show(snapshot, script.started(40.0), t(40.0), compact=True)
        await pilot.pause()
        assert panel.outer_size.height == 3
        assert "healthy — no incident open · last mymaster" in screen_text(app)
        assert "gap 13.0s" in screen_text(app)
        panel.show(snapshot, script.started(40.0), t(40.0), compact=True, rows=1)
        await pilot.pause()
        assert panel.outer_size.height == 5
        assert panel.history_keys == ["mymaster-1"]


async def test_history_rows_are_kept_in_place_as_incidents_close() -> None:
    app = PanelApp()
    script = resumed(failover())
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(TimelinePanel)
        table = history_table(app)
        cleared: list[bool] = []
        clear = table.clear

        def spy(*args: Any, **kwargs: Any) -> Any:
            cleared.append(True)
            return clear(*args, **kwargs)

        table.clear = spy  # type: ignore[method-assign]
        panel.show(script.snapshot(40.0), script.started(40.0), t(40.0), compact=False)
        await pilot.pause()
        first = {key.value: row for key, row in table.rows.items()}
        assert list(first) == ["mymaster-1"]
        # A second failover, of the new master back to the old one.
        script.feed(msg(100.0, "+sdown", address=B), switch(102.0, old=B, new=A)).work(104, 105)
        for at in (103.0, 104.5):
            panel.show(script.snapshot(at), script.started(at), t(at), compact=False)
            await pilot.pause()
            assert panel.history_keys == ["mymaster-1"]  # the open one is not history yet
        panel.show(script.snapshot(130.0), script.started(130.0), t(130.0), compact=False)
        await pilot.pause()
        assert panel.history_keys == ["mymaster-1", "mymaster-2"]
        assert all(table.rows[key] is row for key, row in first.items())
        assert table.get_cell("mymaster-2", "gap").plain == "2.0s"
        assert table.get_cell("mymaster-2", "move").plain == ":6381→:6380"
        assert table.get_cell("mymaster-1", "gap").plain == "13.0s"
        # Showing the same again, or fewer rows: nothing cleared, rows removed in place.
        panel.show(script.snapshot(131.0), script.started(131.0), t(131.0), compact=False)
        panel.show(script.snapshot(131.0), (), t(131.0), compact=False, rows=1)
        await pilot.pause()
        assert panel.history_keys == ["mymaster-2"]
        assert cleared == [] and panel.rebuilds == 0
        assert "started tasks/s" not in panel.text  # no Celery side: no throughput


async def test_every_state_is_said_in_words_without_colour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = PanelApp()
    assert app.no_color
    script = fault()
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(TimelinePanel)
        for at, words in (
            (4.0, "waiting for election 4s"),
            (9.0, "gap 4.0s and counting"),
        ):
            if at > 5.0:
                switched(script)
            panel.show(script.snapshot(at), script.started(at), t(at), compact=False)
            await pilot.pause()
            assert words in screen_text(app)
        resumed(script)
        panel.show(script.snapshot(40.0), script.started(40.0), t(40.0), compact=False)
        await pilot.pause()
        shown = screen_text(app)
        assert HEALTHY in shown and "gap 13.0s" in shown


# ------------------------------------------------------------------------- the users' gap

HEALTH = "http GET 127.0.0.1:8801/health"


def http(at: float, ok: bool) -> ProbeResult:
    return ProbeResult(ts=t(at), probe=HEALTH, phase="ok" if ok else "failed", ok=ok)


def with_users(script: Script, until: float, back: float = 6.5) -> Script:
    """HTTP probes every half second from -2 s to `until`: failing from the fault (0 s)
    until `back`, 1.5 s after the switch at 5 s."""
    for n in range(-4, int(until * 2)):
        at = n / 2
        script.feed(http(at, not 0.0 <= at < back))
    return script


def test_the_users_gap_stands_beside_the_celery_gap() -> None:
    # Without probes nothing changes.
    assert users_text(failover().report(7.3)) == ""
    # The users wait with the workers, then resume 1.5 s after the switch.
    script = with_users(fault(), 3.0)
    assert users_text(script.report(3.0)) == ""  # no switch yet: no users' gap
    switched(script)
    with_users(script, 6.0)
    report = script.report(6.2)
    assert users_text(report) == "users waiting"
    assert compact_line(report, t(6.2)) == (
        f"gap 1.2s and counting · users waiting · {M} :6380→:6381"
    )
    with_users(script, 9.5)
    report = script.report(9.5)
    assert users_text(report) == "users 1.5s"
    assert compact_line(report, t(9.5)) == f"gap 4.5s and counting · users 1.5s · {M} :6380→:6381"
    resumed(script)
    report = script.report(19.0)
    assert figures_line(report) == "users 1.5s · outage 18.0s · pending at switch 1"
    assert compact_line(report, t(19.0)) == f"gap 13.0s · users 1.5s · {M} :6380→:6381"
    history = script.snapshot(40.0).history
    assert healthy_line(history) == (
        f"{HEALTHY} · last {M} {format_clock(t(0.0))}: gap 13.0s, users 1.5s, outage 18.0s, 1 LOST"
    )


async def test_compact_mode_at_80x24_shows_the_users_gap_on_the_gap_line() -> None:
    app = PanelApp()
    script = with_users(failover(), 9.5)
    async with app.run_test(size=SIZE) as pilot:
        panel = app.query_one(TimelinePanel)
        panel.show(script.snapshot(9.5), script.started(9.5), t(9.5), compact=True)
        await pilot.pause()
        assert panel.outer_size.height == 4  # still two lines inside the border
        lines = [line for line in screen_text(app).splitlines() if line.strip()]
        assert f"gap 4.5s and counting · users 1.5s · {M} :6380→:6381" in lines[1]
        panel.show(script.snapshot(9.5), script.started(9.5), t(9.5), compact=False)
        await pilot.pause()
        assert "users 1.5s · outage 9.5s and counting" in screen_text(app)
