"""The PENDING panel: its text from real tracker snapshots, and the widget at 80x24.

Snapshots come from a real `TaskTracker` fed scripted Celery events (no sleeps,
no clock: every time is a number in the script). The widget tests mount the
panel alone in a tiny app at 80x24 and read what the terminal shows.
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult
from textual.widgets import DataTable

from hawatch.core.events import (
    BrokerConnected,
    BrokerDisconnected,
    QueueDepth,
    TaskEvent,
    WorkerEvent,
)
from hawatch.core.tasks import TasksSnapshot, TaskTracker
from hawatch.views.panel import format_clock
from hawatch.views.pending import (
    NO_EVENTS,
    NOTHING_PENDING,
    STYLESHEET,
    PendingPanel,
    blind_lines,
    more_line,
    no_events_line,
    queues_line,
    short_id,
    shown_tasks,
    summary_line,
    task_cells,
    tasks_line,
    warning_lines,
    worker_cells,
    worker_status,
    workers_line,
)
from hawatch.views.styles import stylesheet_path

SIZE = (80, 24)
T0 = 1_700_000_000.0
"""The script's time zero (epoch seconds)."""
UUIDS = [f"{i:02d}aa{i:02d}bb-{i:04d}-4c4c-8d8d-00000000{i:04d}" for i in range(40)]
CANARY = "hawatch-canary-5f2e9a1c7d3b4e6f"


def task(ts: float, state: str, uuid: str, **fields: Any) -> TaskEvent:
    return TaskEvent(ts=ts, state=state, uuid=uuid, **fields)


def worker(ts: float, kind: str, hostname: str, **fields: Any) -> WorkerEvent:
    return WorkerEvent(ts=ts, kind=kind, hostname=hostname, **fields)


def tracker_with(*events: Any, lost_after: float = 30.0) -> TaskTracker:
    tracker = TaskTracker(lost_after=lost_after)
    for event in events:
        tracker.apply(event)
    return tracker


def incident() -> TaskTracker:
    """A failover as the tracker sees it.

    Two workers beat; five tasks wait in ``celery`` before the fault at T0+10
    (the first one received by w1); the master switches at T0+20; w2 says
    goodbye; a task sent after the switch starts at T0+22 (work resumes), which
    overtakes the three of the five still only sent: 30 s later they are LOST.
    One task ran twice. Two more tasks arrive after the fault.
    """
    tracker = tracker_with(
        worker(T0, "online", "celery@w1", freq=2.0, active=0, processed=0),
        worker(T0, "online", "celery@w2", freq=2.0, active=0, processed=0),
        *(
            task(T0 + 1 + i, "sent", UUIDS[i], name="app.tasks.invoice", queue="celery")
            for i in range(5)
        ),
        task(T0 + 6, "received", UUIDS[0], worker="celery@w1"),
        task(T0 + 7, "received", UUIDS[1], worker="celery@w1"),
        task(T0 + 8, "started", UUIDS[1], worker="celery@w1"),
        task(T0 + 8.5, "succeeded", UUIDS[1], worker="celery@w1"),
        task(T0 + 9, "succeeded", UUIDS[1], worker="celery@w2"),  # ran twice
        task(T0 + 12, "sent", UUIDS[10], name="app.tasks.mail", queue="mail"),
        worker(T0 + 15, "offline", "celery@w2"),
    )
    tracker.note_switch(T0 + 20)
    for event in (
        task(T0 + 21, "sent", CANARY, name="hawatch.canary", queue="celery"),
        task(T0 + 22, "received", CANARY, worker="celery@w1"),
        task(T0 + 22, "started", CANARY, worker="celery@w1"),
        task(T0 + 22.5, "succeeded", CANARY, worker="celery@w1"),
        task(T0 + 40, "sent", UUIDS[11], name="app.tasks.mail", queue="mail"),
        worker(T0 + 59, "heartbeat", "celery@w1", freq=2.0, active=1, processed=2),
    ):
        tracker.apply(event)
    return tracker


def incident_snapshot(now: float = T0 + 60, limit: int = 50) -> TasksSnapshot:
    return incident().snapshot(now, limit=limit, fault_at=T0 + 10)


def backlog(count: int, *, now: float = T0 + 100) -> TaskTracker:
    """`count` tasks sent one second apart from T0, none received; one worker beating."""
    return tracker_with(
        *(task(T0 + i, "sent", UUIDS[i], name="app.add", queue="celery") for i in range(count)),
        worker(now - 1, "heartbeat", "celery@w1", freq=2.0, active=0, processed=9),
    )


QUEUES = (QueueDepth(ts=T0 + 59, queue="celery", length=40, unacked=2),)


# --------------------------------------------------------------------------- the text


def test_short_ids_stay_recognisable() -> None:
    assert short_id("d3b07384-d113-4ec8-98c4-b38e4a3c2f1e") == "d3b07384"
    assert short_id(CANARY) == "canary 5f2e9a1c"
    assert short_id("abc") == "abc"
    assert short_id("hawatch-canary-") == "hawatch-"


def test_summary_says_every_count_of_an_incident() -> None:
    snap = incident_snapshot()
    assert (snap.pending, snap.pending_at_fault, snap.lost, snap.duplicated) == (6, 4, 3, 1)
    assert tasks_line(snap) == (
        "pending 6 · 4 since before the fault · 3 LOST · 1 duplicated · started 0.0/s"
    )
    assert summary_line(snap, QUEUES) == (
        "pending 6 · 4 since before the fault · 3 LOST · 1 duplicated"
        " · queue celery 40, unacked 2 · started 0.0/s"
    )
    # The rate counts the started events of the last 10 seconds.
    assert "started 0.1/s" in tasks_line(incident().snapshot(T0 + 30))


def test_summary_of_a_quiet_system_leaves_out_what_is_zero() -> None:
    snap = backlog(0).snapshot(T0 + 100)
    assert summary_line(snap, ()) == "pending 0 · queue depth unknown · started 0.0/s"


def test_queue_line_lists_each_queue_once_by_name_with_its_latest_depth() -> None:
    queues = [
        QueueDepth(ts=T0 + 1, queue="mail", length=3),
        QueueDepth(ts=T0 + 1, queue="celery", length=5, unacked=0),
        QueueDepth(ts=T0 + 2, queue="mail", length=7),
    ]
    assert queues_line(queues) == "queues celery 5, unacked 0; mail 7"
    assert queues_line(()) == "queue depth unknown"


def test_workers_are_counted_and_offline_ones_said_in_words() -> None:
    snap = incident_snapshot()
    assert workers_line(snap) == "workers 1/2 online (1 OFFLINE)"
    by_name = {w.hostname: w for w in snap.workers}
    assert worker_status(by_name["celery@w1"]) == "online"
    assert worker_status(by_name["celery@w2"]) == "OFFLINE (worker-offline)"
    assert worker_cells(by_name["celery@w1"]) == ("celery@w1", "online", "1s ago", "1", "2")
    # No heartbeat for longer than 2 * freq + 1: lost, not said offline by the worker.
    silent = tracker_with(worker(T0, "heartbeat", "celery@w3", freq=2.0)).snapshot(T0 + 10)
    assert worker_status(silent.workers[0]) == "OFFLINE (heartbeat lost)"
    assert workers_line(backlog(0).snapshot(T0 + 100)) == "workers 1/1 online"
    assert workers_line(tracker_with().snapshot(T0)) == "no worker seen yet"


def test_pending_rows_put_lost_first_then_pending_since_before_the_fault() -> None:
    snap = incident_snapshot()
    rows = shown_tasks(snap, 50)
    assert [r.uuid for r in rows] == [UUIDS[2], UUIDS[3], UUIDS[4], UUIDS[0], UUIDS[10], UUIDS[11]]
    flags = [task_cells(r)[0] for r in rows]
    assert flags == ["LOST", "LOST", "LOST", "fault", "", ""]
    # The received one shows its worker; a sent one has none yet.
    assert task_cells(rows[3]) == (
        "fault",
        "00aa00bb",
        "app.tasks.invoice",
        "received",
        "59s",
        "celery@w1",
    )
    assert task_cells(rows[5])[3:] == ("sent", "20s", "-")
    # Bounded: LOST first even when the snapshot's oldest list is shorter than the lost.
    assert [r.uuid for r in shown_tasks(snap, 2)] == [UUIDS[2], UUIDS[3]]
    assert more_line(snap.pending, 2) == "… and 4 more pending"
    assert more_line(snap.pending, 6) == ""


def test_long_names_are_cut_with_an_ellipsis() -> None:
    name = "project.billing.tasks.reconcile_invoices_for_customer"
    snap = tracker_with(task(T0, "sent", UUIDS[0], name=name)).snapshot(T0 + 3)
    cells = task_cells(snap.oldest_pending[0])
    assert cells[2] == "project.billing.tas…"
    assert len(cells[2]) == 20


def test_warnings_say_lost_duplicated_and_why() -> None:
    snap = incident_snapshot()
    lines = warning_lines(snap)
    assert lines[0] == (
        "WARNING: 3 LOST: never received, while later tasks of the same queue were "
        f"(switch {format_clock(T0 + 20)}, work resumed {format_clock(T0 + 22)})"
    )
    assert lines[1] == f"WARNING: 1 task ran twice (duplicated): {short_id(UUIDS[1])}"
    assert len(lines) == 2


def test_an_open_blind_window_is_a_warning_with_its_reason() -> None:
    tracker = tracker_with(
        task(T0, "sent", UUIDS[0]),
        BrokerDisconnected(ts=T0 + 3, source="celery-events", reason="connection refused"),
        BrokerDisconnected(ts=T0 + 4, source="queues", reason="connection refused"),
        BrokerDisconnected(ts=T0 + 1, source="canary", reason="timed out"),
        BrokerConnected(ts=T0 + 2, source="canary"),
    )
    snap = tracker.snapshot(T0 + 5)
    assert blind_lines(snap.blind_windows) == [
        f"WARNING: Celery events, queue depths blind since {format_clock(T0 + 3)}: "
        "connection refused"
    ]
    assert warning_lines(snap) == blind_lines(snap.blind_windows)
    tracker.apply(BrokerConnected(ts=T0 + 6, source="celery-events"))
    tracker.apply(BrokerConnected(ts=T0 + 6, source="queues"))
    assert warning_lines(tracker.snapshot(T0 + 7)) == []


def test_no_event_at_all_says_how_to_enable_events() -> None:
    snap = tracker_with().snapshot(T0)
    assert no_events_line(snap) == NO_EVENTS
    assert "celery worker -E" in NO_EVENTS and "worker_send_task_events" in NO_EVENTS
    broken = tracker_with(TaskEvent(ts=T0, state="exploded", uuid="x")).snapshot(T0)
    assert no_events_line(broken) == f"{NO_EVENTS} (1 event could not be read)"
    assert no_events_line(tracker_with(worker(T0, "online", "celery@w1")).snapshot(T0)) is None


# --------------------------------------------------------------------------- the widget


class PanelApp(App[None]):
    """The panel alone, with its own stylesheet."""

    CSS_PATH = str(stylesheet_path(STYLESHEET))

    def compose(self) -> ComposeResult:
        yield PendingPanel()


def screen_text(app: App[None]) -> str:
    """What the terminal shows right now, as plain text (one line per row)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def panel(app: App[None]) -> PendingPanel:
    return app.query_one(PendingPanel)


def tasks_table(app: App[None]) -> DataTable[Any]:
    return app.query_one("PendingPanel > DataTable.tasks", DataTable)


def test_stylesheet_is_found() -> None:
    assert stylesheet_path(STYLESHEET).is_file()


async def test_counts_and_the_oldest_task_are_on_screen_at_80x24() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        panel(app).show(incident_snapshot(), QUEUES, rows=4, worker_rows=2)
        await pilot.pause()
        shown = screen_text(app)
        lines = shown.splitlines()
        assert lines[0].startswith("╭─ pending ")
        assert "pending 6 · 4 since before the fault · 3 LOST · 1 duplicated" in lines[1]
        assert "queue celery 40, unacked 2 · workers 1/2 online (1 OFFLINE)" in lines[2]
        assert "WARNING: 3 LOST: never received" in shown
        # The table: its header, LOST first, then the oldest pending (received by w1).
        header = next(i for i, line in enumerate(lines) if " flag " in line and " age " in line)
        assert "LOST" in lines[header + 1] and short_id(UUIDS[2]) in lines[header + 1]
        oldest = lines[header + 4]
        for word in ("fault", short_id(UUIDS[0]), "app.tasks.invoice", "received", "59s"):
            assert word in oldest
        assert "… and 2 more pending" in shown
        # Workers: the offline one first, in words.
        w2 = next(i for i, line in enumerate(lines) if "celery@w2" in line)
        w1 = next(i for i, line in enumerate(lines) if "celery@w1" in line and "online" in line)
        assert "OFFLINE (worker-offline)" in lines[w2]
        assert header + 5 < w2 < w1
        assert panel(app).pending_rows == [UUIDS[2], UUIDS[3], UUIDS[4], UUIDS[0]]
        assert panel(app).worker_rows == ["celery@w2", "celery@w1"]
        # Everything fits in the panel's own rows: no scroll bar, no wrap.
        assert len(lines) == 24
        text = panel(app).text
        assert text.splitlines()[0] == tasks_line(incident_snapshot())
        assert "… and 2 more pending" in text


async def test_rows_update_in_place_and_a_started_task_leaves() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        tracker = backlog(6)
        view = panel(app)
        view.show(tracker.snapshot(T0 + 100), (), rows=5)
        await pilot.pause()
        table = tasks_table(app)
        assert view.pending_rows == UUIDS[:5]
        before = {key.value: row for key, row in table.rows.items()}
        calls: list[str] = []
        clear, remove_row = table.clear, table.remove_row
        table.clear = lambda *a, **k: (calls.append("clear"), clear(*a, **k))[1]  # type: ignore[method-assign]
        table.remove_row = lambda key: (calls.append(f"remove {key}"), remove_row(key))[1]  # type: ignore[method-assign]

        # A second later: ages tick; the second task starts; the first is received.
        tracker.apply(task(T0 + 100.5, "started", UUIDS[1], worker="celery@w1"))
        tracker.apply(task(T0 + 100.6, "received", UUIDS[0], worker="celery@w1"))
        view.show(tracker.snapshot(T0 + 101), (), rows=5)
        await pilot.pause()
        assert view.pending_rows == [UUIDS[0], *UUIDS[2:6]]
        assert calls == [f"remove {UUIDS[1]}"]
        assert view.rebuilds == 0
        # Survivors are the very same row objects: updated, not rebuilt.
        for uuid in (UUIDS[0], UUIDS[2], UUIDS[3], UUIDS[4]):
            assert next(row for key, row in table.rows.items() if key.value == uuid) is before[uuid]
        assert table.get_cell(UUIDS[0], "state").plain == "received"
        assert table.get_cell(UUIDS[0], "worker").plain == "celery@w1"
        assert table.get_cell(UUIDS[0], "age").plain == "1m 41s"
        shown = screen_text(app)
        assert short_id(UUIDS[1]) not in shown
        assert short_id(UUIDS[5]) in shown  # the next oldest moved up into view
        assert "pending 5 ·" in shown
        assert "… and" not in shown


async def test_only_changed_cells_are_rewritten() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        tracker = backlog(3)
        view = panel(app)
        view.show(tracker.snapshot(T0 + 100), (), rows=5)
        await pilot.pause()
        table = tasks_table(app)
        written: list[tuple[str, str]] = []
        update = table.update_cell

        def spy(row: Any, column: Any, value: Any, **kw: Any) -> None:
            written.append((str(row), str(column)))
            update(row, column, value, **kw)

        table.update_cell = spy  # type: ignore[method-assign]
        view.show(tracker.snapshot(T0 + 100.5), (), rows=5)  # same second: nothing changes
        assert written == []
        view.show(tracker.snapshot(T0 + 101), (), rows=5)
        assert sorted(written) == sorted((uuid, "age") for uuid in UUIDS[:3])


async def test_more_pending_than_rows_says_how_many_more() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        view = panel(app)
        view.show(backlog(30).snapshot(T0 + 100), (), rows=4, worker_rows=1)
        await pilot.pause()
        assert view.pending_rows == UUIDS[:4]
        shown = screen_text(app)
        assert "pending 30 ·" in shown
        assert "… and 26 more pending" in shown
        assert short_id(UUIDS[4]) not in shown


async def test_lost_tasks_are_marked_and_go_to_the_top() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        view = panel(app)
        tracker = incident()
        # Before the lost delay ran out nothing is LOST; the oldest come first.
        view.show(tracker.snapshot(T0 + 30, fault_at=T0 + 10), QUEUES, rows=6)
        await pilot.pause()
        assert view.pending_rows[:3] == [UUIDS[0], UUIDS[2], UUIDS[3]]
        assert "LOST" not in screen_text(app)
        view.show(tracker.snapshot(T0 + 60, fault_at=T0 + 10), QUEUES, rows=6)
        await pilot.pause()
        assert view.pending_rows[:4] == [UUIDS[2], UUIDS[3], UUIDS[4], UUIDS[0]]
        table = tasks_table(app)
        assert [table.get_cell(uuid, "flag").plain for uuid in view.pending_rows] == [
            "LOST",
            "LOST",
            "LOST",
            "fault",
            "",
            "",
        ]
        assert view.rebuilds == 1  # rows kept moved up: the one case that rebuilds
        shown = screen_text(app)
        lost_lines = [line for line in shown.splitlines() if short_id(UUIDS[2]) in line]
        assert len(lost_lines) == 1 and "LOST" in lost_lines[0]
        assert view.has_class("warning")


async def test_nothing_pending_hides_the_table() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        view = panel(app)
        tracker = backlog(2)
        view.show(tracker.snapshot(T0 + 100), (), rows=5)
        await pilot.pause()
        assert tasks_table(app).display
        for uuid in UUIDS[:2]:
            tracker.apply(task(T0 + 100, "started", uuid, worker="celery@w1"))
        view.show(tracker.snapshot(T0 + 101), (), rows=5)
        await pilot.pause()
        assert not tasks_table(app).display
        assert view.pending_rows == []
        shown = screen_text(app)
        assert NOTHING_PENDING in shown
        assert " flag " not in shown
        assert "pending 0 ·" in shown


async def test_no_event_yet_says_so_instead_of_nothing_pending() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        panel(app).show(tracker_with().snapshot(T0), (), rows=5)
        await pilot.pause()
        shown = screen_text(app)
        assert "no Celery task or worker event yet — are events enabled?" in shown
        assert NOTHING_PENDING not in shown
        assert "queue depth unknown · no worker seen yet" in shown


async def test_blind_source_is_a_warning_in_words_without_colour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = PanelApp()
    assert app.no_color
    async with app.run_test(size=SIZE) as pilot:
        tracker = backlog(3)
        tracker.apply(BrokerDisconnected(ts=T0 + 95, source="celery-events", reason="refused"))
        panel(app).show(tracker.snapshot(T0 + 100), (), rows=5)
        await pilot.pause()
        shown = screen_text(app)
        assert f"WARNING: Celery events blind since {format_clock(T0 + 95)}: refused" in shown
        assert "celery@w1" in shown and "online" in shown


async def test_most_rows_gone_at_once_clears_in_bulk() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        tracker = backlog(12)
        view = panel(app)
        view.show(tracker.snapshot(T0 + 100), (), rows=6)
        for uuid in UUIDS[:5]:
            tracker.apply(task(T0 + 100, "started", uuid, worker="celery@w1"))
        view.show(tracker.snapshot(T0 + 100), (), rows=6)
        await pilot.pause()
        assert view.rebuilds == 1
        assert view.pending_rows == UUIDS[5:11]
        assert "… and 1 more pending" in screen_text(app)
        # One leaves of six: removed in place, no clear.
        tracker.apply(task(T0 + 101, "started", UUIDS[7], worker="celery@w1"))
        view.show(tracker.snapshot(T0 + 101), (), rows=6)
        assert view.rebuilds == 1
        assert view.pending_rows == [*UUIDS[5:7], *UUIDS[8:12]]


async def test_workers_update_in_place_and_offline_ones_come_first() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        tracker = tracker_with(
            worker(T0, "online", "celery@a", freq=2.0, active=0, processed=0),
            worker(T0, "online", "celery@b", freq=2.0, active=0, processed=0),
        )
        view = panel(app)
        view.show(tracker.snapshot(T0 + 1), (), rows=3)
        await pilot.pause()
        table = app.query_one("PendingPanel > DataTable.workers", DataTable)
        before = {key.value: row for key, row in table.rows.items()}
        assert view.worker_rows == ["celery@a", "celery@b"]
        tracker.apply(worker(T0 + 2, "heartbeat", "celery@a", active=2, processed=7))
        tracker.apply(worker(T0 + 2, "heartbeat", "celery@b"))
        view.show(tracker.snapshot(T0 + 4), (), rows=3)
        await pilot.pause()
        assert {key.value: row for key, row in table.rows.items()} == before
        assert all(before[key.value] is row for key, row in table.rows.items())
        assert [cell.plain for cell in table.get_row("celery@a")] == [
            "celery@a",
            "online",
            "2s ago",
            "2",
            "7",
        ]
        assert view.rebuilds == 0
        # b says goodbye: it goes first, said in words.
        tracker.apply(worker(T0 + 5, "offline", "celery@b"))
        view.show(tracker.snapshot(T0 + 5), (), rows=3)
        await pilot.pause()
        assert view.worker_rows == ["celery@b", "celery@a"]
        shown = screen_text(app)
        assert "workers 1/2 online (1 OFFLINE)" in shown
        assert "celery@b  OFFLINE (worker-offline)" in shown
        # a goes silent: heartbeat lost, also in words.
        view.show(tracker.snapshot(T0 + 20), (), rows=3, worker_rows=1)
        await pilot.pause()
        shown = screen_text(app)
        assert "workers 0/2 online (2 OFFLINE)" in shown
        assert "… and 1 more worker" in shown
        assert view.worker_rows == ["celery@a"]
        assert "OFFLINE (heartbeat lost)" in shown
        # No workers table at all: the summary still says it, no "more" line.
        view.show(tracker.snapshot(T0 + 20), (), rows=3, worker_rows=0)
        await pilot.pause()
        shown = screen_text(app)
        assert "workers 0/2 online (2 OFFLINE)" in shown
        assert "celery@a" not in shown and "more worker" not in shown
        assert not table.display
