"""The live timeline: the gap ticking while a failover is under way, its phases at
their real offsets, the hole it leaves in the work, and the incidents of this session.

The text is computed by pure functions from `IncidentReport` snapshots (and the
started-task history of `TaskTracker.started_history`), so it is tested without
a screen. `TimelinePanel` shows it:

- while an incident is open: the figure that is ticking in big digits with its
  words beside it (``waiting for election 12s`` before the switch, ``gap 14.2s
  and counting`` until work resumes, then ``gap 14.2s``), the master and its
  move, the other figures; the phase bar (`phase_bar`: F D E S R M at their
  offsets from the fault, the gap drawn ``░``) and its legend with every offset;
  the throughput of started tasks over the last minutes (`sparkline`), the
  switch marked ``▼``;
- otherwise ``healthy — no incident open`` and the last incident's final gap;
- a table of this session's closed incidents (`history_rows`), oldest first,
  the newest at the bottom.

When HTTP probes run (`IncidentReport.http_probed`), the users' gap stands beside the
Celery gap once there is a switch (`users_text`: ``users 3.1s`` once a probe
succeeded after it, ``users waiting`` until then), on the compact line, in the
figures line and in the healthy line; without probes nothing changes.

``compact=True`` (80x24) keeps only the gap in words and the phase bar (one line
when no incident is open); the app chooses.

**Updated in place.** Every part is redrawn only when its text changes, and the
history table keeps one row per incident id: a new incident is added at the
bottom, one that left (the model's bound, or the row limit) is removed, and only
the cells whose text changed are rewritten. It is rebuilt only if the rows kept
would change order, which the model's history (oldest first) never asks for.

Every state is said in words (``waiting for election``, ``and counting``,
``healthy``, ``LOST``), never by colour alone, so it reads the same with
``NO_COLOR``.

Styles: ``styles/timeline.tcss`` (`STYLESHEET`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Digits

from hawatch.core.incidents import IncidentReport, IncidentsSnapshot
from hawatch.views.panel import format_clock, format_duration
from hawatch.views.parts import KeyedRows, Line, ReadOnlyTable

__all__ = [
    "BLOCKS",
    "DEFAULT_HISTORY_ROWS",
    "GAP_FILL",
    "HEALTHY",
    "HISTORY_COLUMNS",
    "PHASE_LETTERS",
    "STYLESHEET",
    "SWITCH_MARK",
    "TimelinePanel",
    "compact_line",
    "figures_line",
    "focus_incident",
    "format_gap",
    "gap_figure",
    "gap_text",
    "healthy_line",
    "history_rows",
    "move_text",
    "phase_bar",
    "phase_columns",
    "phase_legend",
    "sparkline",
    "switch_index",
    "throughput_caption",
    "users_text",
]

STYLESHEET = "timeline.tcss"
"""The panel's stylesheet, in the top-level ``styles/`` folder (see `hawatch.views.styles`)."""

PHASE_LETTERS: tuple[tuple[str, str], ...] = (
    ("fault", "F"),
    ("detected", "D"),
    ("elected", "E"),
    ("switched", "S"),
    ("resumed", "R"),
    ("demoted", "M"),
)
"""The phases the bar marks, in `PHASES` order, and their letters (M: old master demoted)."""

HEALTHY = "healthy — no incident open"
GAP_FILL = "░"
"""Drawn on the phase bar between the switch and the resume (or now): the gap."""
LINE_FILL = "─"
SWITCH_MARK = "▼"
BLOCKS = "▁▂▃▄▅▆▇█"
"""The sparkline's eight levels; a column where no task started is blank (the hole)."""
DEFAULT_HISTORY_ROWS = 10
"""History rows shown in full mode unless the app says otherwise (none in compact mode)."""

HISTORY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("time", "time"),
    ("master", "master"),
    ("gap", "gap"),
    ("outage", "outage"),
    ("detection", "detect"),
    ("election", "elect"),
    ("pending", "pending"),
    ("lost", "lost"),
    ("move", "old → new"),
)
"""The history table's columns as (key, header). The figures come before the
addresses, so that at 80 columns the gap is never the part cut off."""

_WORDS = {
    "fault": "fault",
    "detected": "detected",
    "elected": "elected",
    "switched": "switched",
    "resumed": "resumed",
    "demoted": "demoted",
}
_ORDER = {phase: index for index, (phase, _) in enumerate(PHASE_LETTERS)}
_MASTER_WIDTH = 16
_FALLBACK_WIDTH = 76
_NONE = "-"


# -- figures -----------------------------------------------------------------------------


def format_gap(seconds: float) -> str:
    """A gap or outage to the tenth under a minute (``14.2s``), else ``1m 02s``, ``1h 03m``."""
    seconds = max(0.0, seconds)
    tenths = round(seconds * 10)
    if tenths < 600:
        return f"{tenths // 10}.{tenths % 10}s"
    return format_duration(seconds)


def _digits(seconds: float, *, tenths: bool) -> str:
    """`seconds` for `Digits`: ``14.2`` (or ``12``) under a minute, ``1:02``, ``1:02:03``."""
    seconds = max(0.0, seconds)
    if tenths and round(seconds * 10) < 600:
        whole, tenth = divmod(round(seconds * 10), 10)
        return f"{whole}.{tenth}"
    total = int(seconds)
    minutes, secs = divmod(total, 60)
    if minutes == 0:
        return str(secs)
    hours, minutes = divmod(minutes, 60)
    if hours == 0:
        return f"{minutes}:{secs:02d}"
    return f"{hours}:{minutes:02d}:{secs:02d}"


@dataclass(frozen=True, slots=True)
class _Figure:
    """What the incident's headline figure is at `now`: its words and its seconds."""

    words: str
    seconds: float | None
    tenths: bool


def _figure(report: IncidentReport, now: float) -> _Figure:
    """The figure that matters most now (see `gap_text`). Ticking ones are computed from
    `now` and the phases, so they tick with `now` whatever the report's own time."""
    fault = report.fault
    switched = report.switched
    if switched is None:
        if report.status == "open" and ("outage_s" in report.counting or report.outage_s is None):
            since = max(0.0, now - fault) if fault is not None else 0.0
            aborted = " (failover aborted)" if report.aborted else ""
            words = f"waiting for election {format_duration(since)}{aborted}"
            return _Figure(words, since, tenths=False)
        if report.outage_s is not None:
            words = f"no failover: master back after {format_gap(report.outage_s)}"
            return _Figure(words, report.outage_s, tenths=True)
        return _Figure("closed without a failover", None, tenths=False)
    if "gap_s" in report.counting:
        gap = max(0.0, now - switched)
        return _Figure(f"gap {format_gap(gap)} and counting", gap, tenths=True)
    if report.gap_s is not None:
        return _Figure(f"gap {format_gap(report.gap_s)}", report.gap_s, tenths=True)
    return _Figure("switched; no gap measured (Celery work not observed)", None, tenths=False)


def gap_text(report: IncidentReport, now: float) -> str:
    """The incident's headline in words at `now`.

    Before the switch: ``waiting for election 12s`` (since the fault; ``(failover
    aborted)`` after an abort); from the switch until work resumes: ``gap 14.2s and
    counting``; after: ``gap 14.2s`` (final). An incident that ended without a
    failover: ``no failover: master back after 5.0s``; a switch whose work is not
    observed: ``switched; no gap measured (Celery work not observed)``.
    """
    return _figure(report, now).words


def gap_figure(report: IncidentReport, now: float) -> str:
    """The number of `gap_text` for big digits (``14.2``, ``12``, ``1:05``), or ``""``."""
    figure = _figure(report, now)
    if figure.seconds is None:
        return ""
    return _digits(figure.seconds, tenths=figure.tenths)


def move_text(old: str | None, new: str | None, *, short: bool = False) -> str:
    """``127.0.0.1:6380 → 127.0.0.1:6381``; `short`: what differs, ``:6380→:6381``
    on one host, ``10.0.0.1→10.0.0.2`` on one port. ``no switch`` without a new one."""
    if new is None:
        return "no switch" if old is None else f"{old}, no switch"
    if old is None:
        return f"? → {new}"
    if not short:
        return f"{old} → {new}"
    old_host, _, old_port = old.rpartition(":")
    new_host, _, new_port = new.rpartition(":")
    if old_host and old_host == new_host:
        return f":{old_port}→:{new_port}"
    if old_port and old_port == new_port and old_host and new_host:
        return f"{old_host}→{new_host}"
    return f"{old}→{new}"


def _counting(report: IncidentReport, field: str) -> str:
    return " and counting" if field in report.counting else ""


def users_text(report: IncidentReport) -> str:
    """The users' gap in a word or two: ``users 3.1s`` (the first successful HTTP probe
    after the switch), ``users waiting`` (none yet); ``""`` without HTTP probes or
    before the switch."""
    if not report.http_probed or report.switched is None:
        return ""
    if report.user_gap_s is None or "user_gap_s" in report.counting:
        return "users waiting"
    return f"users {format_gap(report.user_gap_s)}"


def figures_line(report: IncidentReport) -> str:
    """``users 3.1s · outage 15.3s and counting · split brain 2.0s · pending at switch 12
    · 3 LOST``.

    The figures known so far; those still ticking say ``and counting`` (their value
    is the report's, at the time it was made). Lost tasks only when there are some:
    while the incident is open the count is not final. The users' gap (`users_text`)
    only with HTTP probes.
    """
    users = users_text(report)
    parts = [users] if users else []
    if report.outage_s is not None and report.switched is not None:
        parts.append(f"outage {format_gap(report.outage_s)}{_counting(report, 'outage_s')}")
    if report.split_brain_s is not None:
        parts.append(
            f"split brain {format_gap(report.split_brain_s)}{_counting(report, 'split_brain_s')}"
        )
    if report.pending_at_switch is not None:
        parts.append(f"pending at switch {report.pending_at_switch}")
    if report.lost:
        parts.append(f"{report.lost} LOST")
    return " · ".join(parts)


def focus_incident(open_: Sequence[IncidentReport]) -> IncidentReport | None:
    """The open incident the timeline shows: one whose gap is ticking first, then the
    earliest fault; None when none is open."""
    if not open_:
        return None
    return min(
        open_,
        key=lambda r: ("gap_s" not in r.counting, r.fault if r.fault is not None else math.inf),
    )


def compact_line(report: IncidentReport, now: float, *, also: Sequence[str] = ()) -> str:
    """The incident on one line: ``gap 14.2s and counting · mymaster :6380→:6381``,
    with the users' gap beside the gap when HTTP probes run (``gap 14.2s · users 3.1s ·
    ...``), and the other masters with an incident open (`also`)."""
    users = users_text(report)
    parts = [gap_text(report, now), *([users] if users else [])]
    parts.append(f"{report.master} {move_text(*_move(report), short=True)}")
    if also:
        parts.append(f"also open: {', '.join(also)}")
    return " · ".join(parts)


def _move(report: IncidentReport) -> tuple[str | None, str | None]:
    return report.old_master, report.new_master


def healthy_line(history: Sequence[IncidentReport]) -> str:
    """``healthy — no incident open``, and the last incident's final figures if any:
    ``· last mymaster 12:03:04: gap 13.1s, outage 14.1s`` (``gap 13.1s, users 2.0s,
    outage 14.1s`` with HTTP probes)."""
    if not history:
        return f"{HEALTHY} this session"
    last = history[-1]
    when = f" {format_clock(last.fault)}" if last.fault is not None else ""
    figures = []
    if last.gap_s is not None:
        figures.append(f"gap {format_gap(last.gap_s)}")
    elif last.switched is None:
        figures.append("no failover")
    if last.http_probed and last.switched is not None:
        users = last.user_gap_s
        figures.append("users not resumed" if users is None else f"users {format_gap(users)}")
    if last.outage_s is not None:
        figures.append(f"outage {format_gap(last.outage_s)}")
    if last.lost:
        figures.append(f"{last.lost} LOST")
    line = f"{HEALTHY} · last {last.master}{when}"
    return f"{line}: {', '.join(figures)}" if figures else line


# -- the phase bar -----------------------------------------------------------------------


def _phase_times(report: IncidentReport) -> list[tuple[str, float]]:
    """The phases reached, by time (the order of `PHASE_LETTERS` for equal times)."""
    reached = [
        (phase, float(value))
        for phase, _ in PHASE_LETTERS
        if (value := getattr(report, phase)) is not None
    ]
    reached.sort(key=lambda item: (item[1], _ORDER[item[0]]))
    return reached


def _span(report: IncidentReport, now: float) -> tuple[float, float]:
    """(start, end) of the bar: the fault, and now (open) or the close, or the last phase."""
    times = [value for _, value in _phase_times(report)]
    start = report.fault if report.fault is not None else min(times, default=now)
    end = report.closed if report.closed is not None else now
    return start, max([end, start, *times])


def phase_columns(report: IncidentReport, now: float, width: int) -> dict[str, int]:
    """The column (0-based) of each phase's letter on a bar of `width` columns.

    The bar runs from the fault (column 0) to `now` (to the close for a closed
    incident) at the last column; a phase at offset ``t`` from the fault goes to
    ``round(t / span * (width - 1))``. Letters that would share a column are moved
    apart, in time order: the earlier ones to the left first (the later phases, the
    switch and the resume that bound the gap, keep their columns), then to the right
    where the left edge is reached. `phase_legend` gives every exact offset.
    """
    width = max(1, width)
    start, end = _span(report, now)
    span = end - start
    reached = _phase_times(report)[:width]
    columns = [
        round((value - start) / span * (width - 1)) if span > 0 else 0 for _, value in reached
    ]
    columns = [min(width - 1, max(0, column)) for column in columns]
    for index in range(len(columns) - 2, -1, -1):
        columns[index] = min(columns[index], columns[index + 1] - 1)
    for index in range(len(columns)):
        columns[index] = max(columns[index], columns[index - 1] + 1 if index else 0)
    return {phase: column for (phase, _), column in zip(reached, columns, strict=True)}


def phase_bar(report: IncidentReport, now: float, width: int) -> str:
    """One line of `width` characters: ``F─D─E─S░░░░░░░░░░░░R────M───``.

    Letters (`PHASE_LETTERS`) at the phases' offsets from the fault (see
    `phase_columns`), ``░`` (`GAP_FILL`) over the gap: from the switch to the resume,
    or to the end while the gap is counting; ``─`` elsewhere up to now.
    """
    width = max(1, width)
    start, end = _span(report, now)
    span = end - start

    def column(value: float) -> int:
        return round((value - start) / span * (width - 1)) if span > 0 else 0

    cells = [LINE_FILL] * width
    if report.switched is not None and report.gap_s is not None:
        first = column(report.switched)
        last = column(report.resumed) if report.resumed is not None else width
        for index in range(max(0, first), min(width, last)):
            cells[index] = GAP_FILL
    letters = dict(PHASE_LETTERS)
    for phase, index in phase_columns(report, now, width).items():
        cells[index] = letters[phase]
    return "".join(cells)


def _offset(value: float, start: float) -> str:
    return f"+{format_gap(value - start)}"


def phase_legend(report: IncidentReport, now: float, width: int) -> str:
    """The bar's letters in words with their offsets from the fault:
    ``F fault 12:03:04 · D detected +0.3s · E elected +0.5s · S switched +1.0s · R
    resumed +14.1s · ░ gap``. When that is wider than `width`, the first shorter form
    that fits: words for the fault, the switch and the resume only, without the
    fault's clock (the headline has it); then letters and offsets only.
    """
    start, _ = _span(report, now)
    letters = dict(PHASE_LETTERS)
    gap = f"{GAP_FILL} gap" if report.switched is not None and report.gap_s is not None else ""
    forms: list[list[str]] = [[], [], []]
    for phase, value in _phase_times(report):
        letter = letters[phase]
        if phase == "fault":
            forms[0].append(f"{letter} fault {format_clock(value)}")
            forms[1].append(f"{letter} fault")
            forms[2].append(f"{letter} fault")
            continue
        when = _offset(value, start)
        forms[0].append(f"{letter} {_WORDS[phase]} {when}")
        if phase in ("switched", "resumed"):
            forms[1].append(f"{letter} {_WORDS[phase]} {when}")
        else:
            forms[1].append(f"{letter} {when}")
        forms[2].append(f"{letter} {when}")
    lines = [" · ".join([*parts, gap] if gap else parts) for parts in forms]
    for line in lines:
        if len(line) <= width:
            return line
    return lines[-1]


# -- throughput --------------------------------------------------------------------------


def switch_index(history_end: float, history_len: int, switched: float | None) -> int | None:
    """The index in a per-second history of `history_len` seconds ending with the second
    of `history_end` (as `TaskTracker.started_history` gives it) of the second in which
    `switched` falls; None when there is no switch or it falls outside."""
    if switched is None or not math.isfinite(switched) or not math.isfinite(history_end):
        return None
    index = history_len - 1 - (math.floor(history_end) - math.floor(switched))
    return index if 0 <= index < history_len else None


def _columns(history: Sequence[int], width: int) -> tuple[int, list[float]]:
    """(seconds per column, the started/s of each column), the newest column last.

    Whole seconds per column (``len(history) // width``, at least 1), counted from the
    newest second: the oldest seconds that do not fill the width are left out.
    """
    count = len(history)
    per = max(1, count // max(1, width))
    columns = min(max(1, width), math.ceil(count / per))
    rates = []
    for index in range(columns):
        stop = count - (columns - 1 - index) * per
        chunk = history[max(0, stop - per) : stop]
        rates.append(sum(chunk) / len(chunk) if chunk else 0.0)
    return per, rates


def _block(rate: float, peak: float) -> str:
    if rate <= 0 or peak <= 0:
        return " "
    return BLOCKS[min(len(BLOCKS), max(1, math.ceil(rate / peak * len(BLOCKS)))) - 1]


def sparkline(history: Sequence[int], switch_offset: int | None, width: int) -> tuple[str, str]:
    """(marker row, bars), each `width` characters, the newest second at the right.

    `history`: tasks started per second, oldest first; `switch_offset`: the index in
    it of the switch's second (`switch_index`), or None. Each column is the mean
    started/s of its seconds, drawn with `BLOCKS` scaled to the highest column; a
    column where nothing started is blank, so the hole in the work shows. The marker
    row puts ``▼ switch`` over the switch's column (``switch ▼`` near the right edge).
    """
    width = max(1, width)
    if not history:
        return " " * width, " " * width
    per, rates = _columns(history, width)
    peak = max(rates)
    pad = width - len(rates)
    bars = " " * pad + "".join(_block(rate, peak) for rate in rates)
    marker = [" "] * width
    count = len(history)
    if switch_offset is not None and 0 <= switch_offset < count:
        column = len(rates) - 1 - (count - 1 - switch_offset) // per
        if column >= 0:
            column += pad
            label = f"{SWITCH_MARK} switch"
            if column + len(label) <= width:
                marker[column : column + len(label)] = label
            else:
                label = f"switch {SWITCH_MARK}"
                begin = column - len(label) + 1
                marker[max(0, begin) : column + 1] = label[max(0, -begin) :]
    return "".join(marker), bars


def throughput_caption(history: Sequence[int], width: int) -> str:
    """``started tasks/s over the last 2m 32s (2s a column) · peak 12.0/s``, or
    ``no task started in the last 3m 00s``, for the `sparkline` of the same arguments."""
    if not history or not any(history):
        return f"no task started in the last {format_duration(len(history))}"
    per, rates = _columns(history, width)
    shown = min(len(history), per * len(rates))
    column = "1s a column" if per == 1 else f"{per}s a column"
    return (
        f"started tasks/s over the last {format_duration(shown)} ({column}) · "
        f"peak {max(rates):.1f}/s"
    )


# -- history -----------------------------------------------------------------------------


def _since(value: float | None, start: float | None) -> str:
    if value is None or start is None:
        return _NONE
    return format_gap(value - start)


def _figure_cell(report: IncidentReport, value: float | None, field: str) -> str:
    if value is None:
        return _NONE
    return f"{format_gap(value)} so far" if field in report.counting else format_gap(value)


def history_rows(history: Sequence[IncidentReport]) -> list[tuple[str, tuple[str, ...]]]:
    """The history table's rows as (incident id, cells in `HISTORY_COLUMNS` order).

    time: the fault's wall-clock time; detection: detected − fault; election:
    switched − fault (the new master announced: the whole election, as the
    application sees it); gap: resumed − switched; outage: resumed − fault (or back −
    fault without a failover); pending: pending at the (last) switch; lost: tasks
    lost; old → new: the addresses, shortened to what differs. ``-`` where unknown;
    a figure still ticking (an open incident) says ``so far``.
    """
    rows: list[tuple[str, tuple[str, ...]]] = []
    for report in history:
        master = report.master
        if len(master) > _MASTER_WIDTH:
            master = master[: _MASTER_WIDTH - 1] + "…"
        cells = (
            format_clock(report.fault) if report.fault is not None else _NONE,
            master,
            _figure_cell(report, report.gap_s, "gap_s"),
            _figure_cell(report, report.outage_s, "outage_s"),
            _since(report.detected, report.fault),
            _since(report.switched, report.fault),
            _NONE if report.pending_at_switch is None else str(report.pending_at_switch),
            _NONE if report.lost is None else str(report.lost),
            move_text(report.old_master, report.new_master, short=True),
        )
        rows.append((report.id, cells))
    return rows


# -- widgets -----------------------------------------------------------------------------


def _cell(column: str, value: str) -> Text:
    """A cell as literal text; lost tasks stand out (the number says it without colour)."""
    if column == "lost" and value not in (_NONE, "0"):
        return Text(value, style="bold reverse", end="")
    return Text(value, end="")


class TimelinePanel(Vertical):
    """The failover as it happens: the gap ticking, the phases on a bar, the hole in the
    started tasks, and this session's incidents in a table.

    Call `show` on every render tick; it changes only what changed.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self.border_title = "timeline"
        self._figure = Digits("", classes="figure")
        self._figure.display = False
        self._headline = Line("headline")
        self._bar = Line("bar")
        self._legend = Line("legend")
        self._note = Line("note")
        self._spark = Line("spark")
        self._healthy = Line("healthy")
        self._table = ReadOnlyTable(
            show_cursor=False, cursor_type="none", zebra_stripes=False, classes="history"
        )
        self._table.display = False
        self._rows = KeyedRows(self._table, HISTORY_COLUMNS, _cell, bulk_clear=False)

    def compose(self) -> ComposeResult:
        """The parts in order of importance: the gap and the phases first."""
        with Horizontal(classes="now"):
            yield self._figure
            yield self._headline
        yield self._healthy
        yield self._bar
        yield self._legend
        yield self._note
        yield self._spark
        yield self._table

    def _width(self) -> int:
        """Columns for a line (the parts have one column of padding each side)."""
        width = self.content_size.width
        return width - 2 if width > 2 else _FALLBACK_WIDTH

    def show(
        self,
        incidents: IncidentsSnapshot,
        started: tuple[int, ...],
        now: float,
        *,
        compact: bool,
        rows: int | None = None,
    ) -> None:
        """Display `incidents` at `now`, with `started` (tasks started per second, oldest
        first, ending with the second of `now`: `TaskTracker.started_history`; empty
        when the Celery side is not watched).

        `compact`: only the gap in words and the phase bar while an incident is open,
        one line otherwise. `rows`: history rows shown (the newest ones); by default
        none in compact mode, `DEFAULT_HISTORY_ROWS` otherwise. Rows taken inside the
        border, at most: compact ``2`` (+ ``1 + rows`` with a table); full, incident
        open ``3 + 1 + 1 + note + 3`` (digits beside three lines, bar, legend, a note
        when there is one, the throughput's marker, bars and caption), none open ``1 +
        3``; the throughput's 3 only with `started`; the table ``1 + rows`` when there
        is history.
        """
        width = self._width()
        report = focus_incident(incidents.open)
        also = [r.master for r in incidents.open if r is not report]
        if rows is None:
            rows = 0 if compact else DEFAULT_HISTORY_ROWS
        figure = ""
        if report is None:
            headline: str | Text = ""
            healthy = healthy_line(incidents.history)
            bar = legend = note = ""
        elif compact:
            headline = compact_line(report, now, also=also)
            healthy = legend = note = ""
            bar = phase_bar(report, now, width)
        else:
            figure = gap_figure(report, now)
            where = f"{report.master} {move_text(*_move(report))}"
            if report.fault is not None:
                where += f" · since {format_clock(report.fault)}"
            if also:
                where += f" · also open: {', '.join(also)}"
            headline = Text.assemble(
                (gap_text(report, now), "bold"), "\n", where, "\n", figures_line(report), end=""
            )
            healthy = ""
            bar = phase_bar(report, now, width)
            legend = phase_legend(report, now, width)
            note = report.note or ""
        spark = ""
        if started and not compact:
            # The second of `now` is still under way: leave it out, or the newest column
            # would always dip.
            history = started[:-1]
            marked = report if report is not None else _last(incidents.history)
            switched = marked.switched if marked is not None else None
            index = switch_index(math.floor(now) - 1, len(history), switched)
            marker, bars = sparkline(history, index, width)
            spark = "\n".join((marker, bars, throughput_caption(history, width)))
        table_rows = history_rows(incidents.history[-rows:] if rows > 0 else incidents.history[:0])

        self._figure_show(figure)
        self._headline.show(headline)
        self._healthy.show(healthy)
        self._bar.show(bar)
        self._legend.show(legend)
        self._note.show(note)
        self._spark.show(spark)
        self._rows.sync(table_rows)
        if self._table.display != bool(table_rows):
            self._table.display = bool(table_rows)
        self.set_class(report is not None, "incident")

    def _figure_show(self, value: str) -> None:
        if value != self._figure.value:
            self._figure.update(value)
        if self._figure.display != bool(value):
            self._figure.display = bool(value)

    @property
    def figure(self) -> str:
        """The number shown in big digits (``""`` when none is)."""
        return self._figure.value

    @property
    def history_keys(self) -> list[str]:
        """The incident ids in the history table, top to bottom (the table's own order)."""
        return [str(row.key.value) for row in self._table.ordered_rows]

    @property
    def rebuilds(self) -> int:
        """How many times the history table was cleared and refilled instead of updated."""
        return self._rows.rebuilds

    @property
    def text(self) -> str:
        """Everything the panel shows in words, as plain text (for tests and accessibility;
        the big digits repeat the figure of the first line)."""
        parts = [
            self._headline.shown,
            self._healthy.shown,
            self._bar.shown,
            self._legend.shown,
            self._note.shown,
            self._spark.shown,
            *self._rows.lines(),
        ]
        return "\n".join(part for part in parts if part)


def _last(history: Sequence[IncidentReport]) -> IncidentReport | None:
    return history[-1] if history else None
