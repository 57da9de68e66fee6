"""The PENDING panel: how many Celery tasks wait, which ones, and the workers.

The text is computed by pure functions from a `TasksSnapshot` and the latest
`QueueDepth` per queue, so it is tested without a screen. `PendingPanel` shows
it: two summary lines (exact counts: pending, pending since before the fault,
LOST, duplicated, start rate; queue depths and workers online), warnings in
words, a bounded table of the oldest pending tasks with a line saying how many
more there are, and a bounded table of workers (offline ones first).

**Updated in place.** Both tables keep one row per task id (per worker
hostname), with the id as the row key. On each `PendingPanel.show` a row that
left is removed, a new one is added at the bottom and only the cells whose text
changed are rewritten (`DataTable.update_cell`): an age ticks, a task is
received. A table is rebuilt (cleared and refilled) only when rows kept would
change their order or a new row must go above one kept, and when most rows
left at once (one clear is cheaper than many removals). That is rare: pending
tasks leave from anywhere but arrive at the end, oldest first. The exceptions
are a task retried (queued again at the end), tasks that become LOST (they move
to the top, once) and a worker going offline or back (offline ones are listed
first).

Every state is said in words (``LOST``, ``OFFLINE (heartbeat lost)``,
``WARNING:`` ...), never by colour alone, so the panel reads the same with
``NO_COLOR``. The order of the parts is the order of importance: at 80x24 the
summary and the oldest pending tasks come first, the workers last.

Styles: ``styles/pending.tcss`` (`STYLESHEET`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical

from hawatch.core.events import QueueDepth
from hawatch.core.tasks import BlindWindow, PendingTask, TasksSnapshot, WorkerView
from hawatch.views.panel import format_clock, format_duration
from hawatch.views.parts import KeyedRows, Line, ReadOnlyTable

__all__ = [
    "CANARY_PREFIX",
    "NOTHING_PENDING",
    "NO_EVENTS",
    "STYLESHEET",
    "TASK_COLUMNS",
    "WORKER_COLUMNS",
    "PendingPanel",
    "blind_lines",
    "more_line",
    "no_events_line",
    "queues_line",
    "short_id",
    "shown_tasks",
    "shown_workers",
    "summary_line",
    "task_cells",
    "tasks_line",
    "warning_lines",
    "worker_cells",
    "worker_status",
    "workers_line",
]

STYLESHEET = "pending.tcss"
"""The panel's stylesheet, in the top-level ``styles/`` folder (see `hawatch.views.styles`)."""

CANARY_PREFIX = "hawatch-canary-"
"""Task ids of hawatch's own canary tasks start with this."""

NOTHING_PENDING = "nothing pending"
NO_EVENTS = (
    "no Celery task or worker event yet — are events enabled? "
    "celery worker -E / worker_send_task_events"
)

TASK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("flag", "flag"),
    ("id", "id"),
    ("name", "name"),
    ("state", "state"),
    ("age", "age"),
    ("worker", "worker"),
)
"""The pending table's columns as (key, header): a flag (``LOST``, ``fault``) first."""

WORKER_COLUMNS: tuple[tuple[str, str], ...] = (
    ("worker", "worker"),
    ("status", "status"),
    ("heartbeat", "heartbeat"),
    ("active", "active"),
    ("processed", "processed"),
)
"""The workers table's columns as (key, header)."""

_ID_CHARS = 8
_NAME_WIDTH = 20
_TASK_WORKER_WIDTH = 16
_HOSTNAME_WIDTH = 20
_DUPLICATED_SHOWN = 3
_SOURCE_WORDS = {
    "celery-events": "Celery events",
    "queues": "queue depths",
    "canary": "the canary",
}
_NONE = "-"


# -- text --------------------------------------------------------------------------------


def _cut(text: str, width: int) -> str:
    """`text`, cut to `width` characters with ``…`` when longer."""
    return text if len(text) <= width else text[: width - 1] + "…"


def _plural(count: int, word: str, plural: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural or word + 's'}"


def short_id(uuid: str) -> str:
    """A task id short enough for a table, still recognisable: its first 8 characters,
    or ``canary`` and the first 8 after the prefix for hawatch's canary tasks."""
    if uuid.startswith(CANARY_PREFIX) and len(uuid) > len(CANARY_PREFIX):
        return f"canary {uuid[len(CANARY_PREFIX) :][:_ID_CHARS]}"
    return uuid[:_ID_CHARS]


def tasks_line(tasks: TasksSnapshot) -> str:
    """``pending 12 · 3 since before the fault · 1 LOST · 2 duplicated · started 4.9/s``.

    Exact counts of the tracked tasks; a part that would say 0 (or has no
    incident to refer to) is left out, except the pending count.
    """
    return " · ".join([*_count_parts(tasks), _rate(tasks)])


def _count_parts(tasks: TasksSnapshot) -> list[str]:
    parts = [f"pending {tasks.pending}"]
    if tasks.pending_at_fault:
        parts.append(f"{tasks.pending_at_fault} since before the fault")
    if tasks.lost:
        parts.append(f"{tasks.lost} LOST")
    if tasks.duplicated:
        parts.append(f"{tasks.duplicated} duplicated")
    return parts


def _rate(tasks: TasksSnapshot) -> str:
    return f"started {tasks.started_per_s:.1f}/s"


def queues_line(queues: Sequence[QueueDepth]) -> str:
    """``queue celery 40, unacked 2`` (``queues a 3; b 0``), or ``queue depth unknown``.

    `queues` holds the latest depth of each queue; they are listed by name.
    """
    if not queues:
        return "queue depth unknown"
    latest: dict[str, QueueDepth] = {}
    for depth in queues:
        known = latest.get(depth.queue)
        if known is None or depth.ts >= known.ts:
            latest[depth.queue] = depth
    parts = []
    for name in sorted(latest):
        depth = latest[name]
        unacked = f", unacked {depth.unacked}" if depth.unacked is not None else ""
        parts.append(f"{name} {depth.length}{unacked}")
    return ("queue " if len(parts) == 1 else "queues ") + "; ".join(parts)


def summary_line(tasks: TasksSnapshot, queues: Sequence[QueueDepth]) -> str:
    """The whole summary on one line: `tasks_line`, then `queues_line`, then the rate.

    ``pending 12 · 3 since before the fault · 1 LOST · 2 duplicated · queue celery 40,
    unacked 2 · started 4.9/s``. The panel shows the same parts on two lines.
    """
    return " · ".join([*_count_parts(tasks), queues_line(queues), _rate(tasks)])


def workers_line(tasks: TasksSnapshot) -> str:
    """``workers 1/2 online (1 OFFLINE)``, or ``no worker seen yet``."""
    total = len(tasks.workers)
    if total == 0:
        return "no worker seen yet"
    online = sum(1 for worker in tasks.workers if worker.online)
    offline = f" ({total - online} OFFLINE)" if online < total else ""
    return f"workers {online}/{total} online{offline}"


def no_events_line(tasks: TasksSnapshot) -> str | None:
    """What to say when no Celery event was ever seen (None once one was).

    Events not enabled on the workers is the most common reason, so the line says how.
    """
    if tasks.tasks_seen or tasks.workers:
        return None
    if tasks.malformed:
        return f"{NO_EVENTS} ({_plural(tasks.malformed, 'event')} could not be read)"
    return NO_EVENTS


def blind_lines(windows: Iterable[BlindWindow]) -> list[str]:
    """``WARNING: Celery events blind since 12:03:04: <reason>`` for the open blind windows.

    Sources blind for the same reason share one line (a failover blinds them all at
    once), dated by the earliest.
    """
    by_reason: dict[str, list[BlindWindow]] = {}
    for window in windows:
        if window.end is None:
            by_reason.setdefault(window.reason, []).append(window)
    lines = []
    for reason, open_windows in by_reason.items():
        names = ", ".join(_SOURCE_WORDS.get(w.source, w.source) for w in open_windows)
        since = format_clock(min(w.start for w in open_windows))
        lines.append(f"WARNING: {names} blind since {since}: {reason}")
    return lines


def _lost_line(tasks: TasksSnapshot) -> str | None:
    """Why a task is called LOST, in the tracker's terms (`hawatch.core.tasks`, "Lost")."""
    if not tasks.lost:
        return None
    line = f"WARNING: {tasks.lost} LOST: never received, while later tasks of the same queue were"
    times = []
    if tasks.switched_at is not None:
        times.append(f"switch {format_clock(tasks.switched_at)}")
    if tasks.resumed_at is not None:
        times.append(f"work resumed {format_clock(tasks.resumed_at)}")
    return f"{line} ({', '.join(times)})" if times else line


def _duplicated_line(tasks: TasksSnapshot) -> str | None:
    if not tasks.duplicated:
        return None
    newest = list(reversed(tasks.duplicated_ids))[:_DUPLICATED_SHOWN]
    ids = ", ".join(short_id(uuid) for uuid in newest)
    more = tasks.duplicated - len(newest)
    if more > 0:
        ids += f" and {more} more"
    what = "task ran" if tasks.duplicated == 1 else "tasks ran"
    return f"WARNING: {tasks.duplicated} {what} twice (duplicated): {ids}"


def warning_lines(tasks: TasksSnapshot) -> list[str]:
    """Each a sentence after ``WARNING:``, the most important first: sources that are
    blind, tasks LOST, tasks that ran twice, pending tasks dropped from the count."""
    lines = blind_lines(tasks.blind_windows)
    for line in (_lost_line(tasks), _duplicated_line(tasks)):
        if line is not None:
            lines.append(line)
    if tasks.evicted_pending:
        lines.append(
            f"WARNING: {_plural(tasks.evicted_pending, 'pending task')} dropped to bound "
            "memory: the real pending count may be higher"
        )
    return lines


def shown_tasks(tasks: TasksSnapshot, rows: int) -> list[PendingTask]:
    """The pending tasks to show, at most `rows`: LOST ones first, then the oldest
    (those pending since before the fault first, as the snapshot orders them)."""
    shown: list[PendingTask] = []
    seen: set[str] = set()
    for task in (*tasks.lost_tasks, *tasks.oldest_pending):
        if len(shown) >= rows:
            break
        if task.uuid not in seen:
            seen.add(task.uuid)
            shown.append(task)
    return shown


def task_cells(task: PendingTask) -> tuple[str, ...]:
    """One pending task's row, in `TASK_COLUMNS` order, as plain text."""
    flag = "LOST" if task.lost else "fault" if task.before_fault else ""
    worker = _cut(task.worker, _TASK_WORKER_WIDTH) if task.worker else _NONE
    return (
        flag,
        short_id(task.uuid),
        _cut(task.name, _NAME_WIDTH) if task.name else _NONE,
        task.state,
        format_duration(task.age),
        worker,
    )


def more_line(pending: int, shown: int) -> str:
    """``… and 9 more pending`` when the table does not show them all, else ``""``."""
    more = pending - shown
    return f"… and {more} more pending" if more > 0 else ""


def worker_status(worker: WorkerView) -> str:
    """``online``, ``OFFLINE (heartbeat lost)`` or ``OFFLINE (worker-offline)``."""
    return "online" if worker.online else f"OFFLINE ({worker.reason})"


def shown_workers(tasks: TasksSnapshot, rows: int) -> list[WorkerView]:
    """The workers to show, at most `rows`: offline ones first, each group by hostname."""
    offline = [worker for worker in tasks.workers if not worker.online]
    online = [worker for worker in tasks.workers if worker.online]
    return (offline + online)[: max(0, rows)]


def worker_cells(worker: WorkerView) -> tuple[str, ...]:
    """One worker's row, in `WORKER_COLUMNS` order, as plain text."""
    age = worker.heartbeat_age
    return (
        _cut(worker.hostname, _HOSTNAME_WIDTH),
        worker_status(worker),
        _NONE if age is None else f"{format_duration(age)} ago",
        _NONE if worker.active is None else str(worker.active),
        _NONE if worker.processed is None else str(worker.processed),
    )


# -- widgets -----------------------------------------------------------------------------


def _cell(column: str, value: str) -> Text:
    """A cell as literal text (task names may hold ``[``); LOST and OFFLINE stand out."""
    if (column == "flag" and value == "LOST") or (column == "status" and value != "online"):
        return Text(value, style="bold reverse", end="")
    return Text(value, end="")


@dataclass(frozen=True, slots=True)
class _Shown:
    """What the panel showed last, part by part (for `PendingPanel.text`)."""

    summary: str = ""
    broker: str = ""
    warnings: str = ""
    empty: str = ""
    more: str = ""
    more_workers: str = ""


class PendingPanel(Vertical):
    """The Celery side at a glance: pending count and queue depth, the oldest pending
    tasks (LOST and pending-since-before-the-fault first), and the workers.

    Call `show` on every render tick; it changes only what changed.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "pending"
        self._summary = Line("summary")
        self._broker = Line("broker")
        self._warnings = Line("warnings")
        self._empty = Line("empty")
        self._tasks_table = ReadOnlyTable(
            show_cursor=False, cursor_type="none", zebra_stripes=False, classes="tasks"
        )
        self._more = Line("more")
        self._workers_table = ReadOnlyTable(
            show_cursor=False, cursor_type="none", zebra_stripes=False, classes="workers"
        )
        self._more_workers = Line("more-workers")
        self._tasks = KeyedRows(self._tasks_table, TASK_COLUMNS, _cell)
        self._workers = KeyedRows(self._workers_table, WORKER_COLUMNS, _cell)
        self._tasks_table.display = False
        self._workers_table.display = False
        self._shown = _Shown()

    def compose(self) -> ComposeResult:
        """The parts in order of importance: what stays visible at 80x24 comes first."""
        yield self._summary
        yield self._broker
        yield self._warnings
        yield self._empty
        yield self._tasks_table
        yield self._more
        yield self._workers_table
        yield self._more_workers

    def show(
        self,
        tasks: TasksSnapshot,
        queues: Sequence[QueueDepth],
        *,
        rows: int,
        worker_rows: int = 3,
    ) -> None:
        """Display `tasks` with at most `rows` pending tasks and `worker_rows` workers.

        `queues`: the latest `QueueDepth` of each queue. Rows taken inside the
        border, at most: ``2 + warnings + (1 + rows + 1) + (1 + worker_rows + 1)``
        (the summary's two lines, one per warning, each table's header and its
        "… and N more" line). ``worker_rows=0`` hides the workers table; the
        summary still counts the workers online and OFFLINE.
        """
        summary = tasks_line(tasks)
        broker = f"{queues_line(queues)} · {workers_line(tasks)}"
        warnings = "\n".join(warning_lines(tasks))
        hint = no_events_line(tasks)
        pending = shown_tasks(tasks, max(0, rows))
        if pending:
            empty = ""
        elif hint is not None:
            empty = hint
        else:
            empty = NOTHING_PENDING if tasks.pending == 0 else ""
        more = more_line(tasks.pending, len(pending))
        workers = shown_workers(tasks, worker_rows)
        hidden_workers = len(tasks.workers) - len(workers)
        more_workers = ""
        if hidden_workers and worker_rows > 0:  # with 0 rows the summary's count is enough
            more_workers = f"… and {_plural(hidden_workers, 'more worker')}"

        self._summary.show(summary)
        self._broker.show(broker)
        self._warnings.show(warnings)
        self._empty.show(empty)
        self._tasks.sync([(task.uuid, task_cells(task)) for task in pending])
        _set_display(self._tasks_table, bool(pending))
        self._more.show(more)
        self._workers.sync([(worker.hostname, worker_cells(worker)) for worker in workers])
        _set_display(self._workers_table, bool(workers))
        self._more_workers.show(more_workers)
        self._shown = _Shown(summary, broker, warnings, empty, more, more_workers)
        self.set_class(bool(warnings) or tasks.lost > 0, "warning")

    @property
    def summary(self) -> str:
        """The two summary lines as shown (counts; queue depths and workers)."""
        return f"{self._shown.summary}\n{self._shown.broker}".strip()

    @property
    def pending_rows(self) -> list[str]:
        """The task ids in the pending table, top to bottom (the table's own order)."""
        return [str(row.key.value) for row in self._tasks_table.ordered_rows]

    @property
    def worker_rows(self) -> list[str]:
        """The worker hostnames in the workers table, top to bottom."""
        return [str(row.key.value) for row in self._workers_table.ordered_rows]

    @property
    def rebuilds(self) -> int:
        """How many times either table was cleared and refilled instead of updated in place."""
        return self._tasks.rebuilds + self._workers.rebuilds

    @property
    def text(self) -> str:
        """Everything the panel shows, as plain text (for tests and accessibility)."""
        shown = self._shown
        parts = [
            shown.summary,
            shown.broker,
            shown.warnings,
            shown.empty,
            *self._tasks.lines(),
            shown.more,
            *self._workers.lines(),
            shown.more_workers,
        ]
        return "\n".join(part for part in parts if part)


def _set_display(widget: ReadOnlyTable, display: bool) -> None:
    if widget.display != display:
        widget.display = display
