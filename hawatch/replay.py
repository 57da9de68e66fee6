"""Replays: a journal played back through the same core, to the same figures.

`hawatch replay FILE --report` prints the incident reports of a journal without a
screen; `hawatch replay FILE` plays it into the screen (`hawatch.views.replay_app`),
read-only, at any speed, with pause and step. Both feed the journal's events, in
the journal's order, to a `Monitor` whose sources are never started, so the core
computes exactly what it computed live (DESIGN.md, "Time is data"):

- **The same choices.** The run's `SessionStarted` line (the broker's master,
  whether the Celery side was watched, ``lost_after``, ``max_tasks``) shapes the
  core before the first event is fed, as the live run's options did; the line
  itself is applied where it stands (`Monitor.apply_session`). A journal without
  one (older, or the tail of a rotated one) is replayed with the defaults, and
  with the Celery side on if it holds any Celery-side event (an HTTP probe's
  result is not one).
- **No derived events.** `IncidentUpdate` lines are not fed: the core recomputes
  them. They are kept (`ReplayResult.recorded`) so that the replay can be
  compared with what was computed live, and each recorded close marks where the
  live run's clock ticked: the replay ticks the core at that line, with its
  time. The live close happened either at such a tick or inside the event that
  passed the deadline (which the replay does the same way), so the core sees
  the events in the same order relative to every close and the figures match to
  the bit, not only the close times. Nothing is probed either: canary results are
  in the journal as `ProbeResult` lines and fed as they are.
- **Nothing written.** The replayed `Monitor` has no journal.
- **Several runs in one file** (the same ``--journal PATH`` given to several
  runs: the file is appended to): each `SessionStarted` after the first starts a
  fresh core, as the new run did; the reports of every run are kept.
  The few lines a run can write before its session line (the sentinels'
  first answers, when it had to wait for them to choose the broker's master) go
  to the previous run's core.

The player (`Player`) turns a journal into a timeline for the screen: lines are
due at ``speed`` times their recorded pace (10 s apart in the journal: 10/speed s
apart on screen), the replay's clock advances smoothly between them, and a stretch
of more than `QUIET_SKIP` journal seconds without any line is cut short: the clock
plays the first `QUIET_LEAD` second of it, jumps to `QUIET_LEAD` before the next
line, and counts what it skipped (`Player.skipped`). A cut changes only how long
the screen waits, never a figure: figures come from the events' times. The player
never reads a clock; the screen hands it the time.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click

from hawatch.core.events import (
    BrokerConnected,
    BrokerDisconnected,
    Event,
    IncidentUpdate,
    ProbeResult,
    QueueDepth,
    SessionStarted,
    TaskEvent,
    WorkerEvent,
    to_json,
)
from hawatch.core.incidents import IncidentReport
from hawatch.journal import JournalError, JournalLine, read_journal, state_dir
from hawatch.monitor import DEFAULT_LOST_AFTER, CeleryOptions, Monitor
from hawatch.settings import Settings

__all__ = [
    "DEFAULT_MAX_TASKS",
    "MAX_SPEED",
    "MIN_SPEED",
    "QUIET_LEAD",
    "QUIET_SKIP",
    "Player",
    "ReadProblems",
    "ReplayResult",
    "Replayer",
    "opening_session",
    "replay_command",
    "replay_file",
    "replay_lines",
    "replay_monitor",
    "replay_settings",
]

DEFAULT_MAX_TASKS = CeleryOptions().max_tasks
"""The task tracker's bound when a journal does not say (no session line)."""
MIN_SPEED = 1 / 16
MAX_SPEED = 1024.0
QUIET_SKIP = 5.0
"""A stretch of more journal seconds than this without any line is cut short on screen."""
QUIET_LEAD = 1.0
"""Journal seconds played at each end of a stretch that is cut short."""
MAX_LINES_PER_FRAME = 5_000
"""The most lines `Player.due` hands out at once; past it the replay's clock slows down
rather than running ahead of the events (a flood at a high speed)."""

_CELERY_SIDE = (
    TaskEvent,
    WorkerEvent,
    ProbeResult,
    QueueDepth,
    BrokerConnected,
    BrokerDisconnected,
)


def _http_probe(event: Event) -> bool:
    """An HTTP probe's result: the application's side, not the Celery side."""
    return (
        isinstance(event, ProbeResult)
        and isinstance(event.probe, str)
        and event.probe.startswith("http")
    )


def _line_event(item: JournalLine | Event) -> Event | None:
    return item if isinstance(item, Event) else item.event


def _timed(item: JournalLine | Event, problems: ReadProblems) -> Event | None:
    """The event of a line, or None (counted in `problems`) when it has none, or no time."""
    event = _line_event(item)
    number = item.number if isinstance(item, JournalLine) else 0
    if event is None:
        problems.note(number, item.problem if isinstance(item, JournalLine) else None)
        return None
    if not _number(event.ts):
        problems.note(number, f"{event.TYPE} has no valid time ({event.ts!r})")
        return None
    if isinstance(event, SessionStarted) and not _valid_session(event):
        problems.note(number, "session has a lost_after or max_tasks hawatch cannot use")
        return None
    return event


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _valid_session(session: SessionStarted) -> bool:
    """Whether the core can be built with a session's choices (a line may be hand-made)."""
    tasks = session.max_tasks
    return (
        _number(session.lost_after)
        and session.lost_after >= 0
        and isinstance(tasks, int)
        and not isinstance(tasks, bool)
        and tasks >= 1
    )


# ------------------------------------------------------------ lines that are not events


@dataclass
class ReadProblems:
    """Lines of a journal that are not events: how many, and the first one."""

    count: int = 0
    first_line: int | None = None
    first_problem: str | None = None

    def note(self, number: int, problem: str | None) -> None:
        """Count one unreadable line (keep the first)."""
        self.count += 1
        if self.first_line is None:
            self.first_line = number
            self.first_problem = problem

    def sentence(self, name: str) -> str | None:
        """What was skipped, as one sentence about the journal `name` (None: nothing)."""
        if not self.count:
            return None
        problem = (self.first_problem or "unreadable").rstrip(".")
        if self.count == 1:
            return f"line {self.first_line} of {name} could not be read and was skipped: {problem}."
        return (
            f"{self.count} lines of {name} could not be read and were skipped; "
            f"the first, line {self.first_line}: {problem}."
        )


# --------------------------------------------------------------------------- the core, replayed


def replay_settings() -> Settings:
    """Settings for a replay: no sentinel to reach, and read-only (nothing may be changed)."""
    return Settings(sentinels=(), read_only=True, origin="a journal")


def opening_session(lines: Iterable[JournalLine | Event]) -> SessionStarted:
    """The choices the journal's (first) run started with: its first `SessionStarted`.

    Reads no further than that line. For a journal without one, the defaults, with the
    Celery side watched if the journal holds a Celery-side event (`version` is None).
    """
    celery = False
    first_ts: float | None = None
    for item in lines:
        event = _timed(item, ReadProblems())
        if event is None:
            continue
        if isinstance(event, SessionStarted):
            return event
        if first_ts is None:
            first_ts = event.ts
        celery = celery or (isinstance(event, _CELERY_SIDE) and not _http_probe(event))
    return SessionStarted(
        ts=first_ts if first_ts is not None else 0.0,
        broker_master=None,
        celery=celery,
        lost_after=DEFAULT_LOST_AFTER,
        max_tasks=DEFAULT_MAX_TASKS,
    )


def replay_monitor(
    session: SessionStarted, *, emit: Callable[[Event], None] | None = None
) -> Monitor:
    """A `Monitor` shaped like the recorded run's, whose sources are never started."""
    celery = CeleryOptions(
        enabled=bool(session.celery),
        lost_after=session.lost_after,
        max_tasks=session.max_tasks,
    )
    return Monitor(replay_settings(), celery=celery, emit=emit, journal=None)


class Replayer:
    """Feeds journal events to a replayed `Monitor` the way the live run fed them.

    `feed` each event in the journal's order (unreadable lines left out), then
    `finish`. `monitor` is the current run's core (a new one after a second
    `SessionStarted`: see the module docstring); its `clock` is the latest time fed,
    unless the caller sets another (the screen sets the replay's clock).
    """

    def __init__(self, session: SessionStarted) -> None:
        self.recorded: list[IncidentUpdate] = []
        """The incident updates the live run computed (the journal's lines)."""
        self.recomputed: list[IncidentUpdate] = []
        """The incident updates the replay computed."""
        self.fed = 0
        """Journal events fed so far (recorded incident updates included)."""
        self.last_ts: float | None = None
        """The latest time of a line fed."""
        self.runs = 1
        self._done: list[IncidentReport] = []
        self._sessions = 0
        self.monitor = self._new_monitor(session)

    def _new_monitor(self, session: SessionStarted) -> Monitor:
        monitor = replay_monitor(session, emit=self._emitted)
        monitor.clock = self._clock
        return monitor

    def _clock(self) -> float:
        return self.last_ts if self.last_ts is not None else 0.0

    def _emitted(self, event: Event) -> None:
        if isinstance(event, IncidentUpdate):
            self.recomputed.append(event)

    def feed(self, event: Event) -> None:
        """Apply one journal event: recorded incident updates are kept (a recorded close is
        a tick of the live clock), sessions configure the core, the rest is fed."""
        self.fed += 1
        ts = float(event.ts)
        self.last_ts = ts if self.last_ts is None else max(self.last_ts, ts)
        if isinstance(event, IncidentUpdate):
            self.recorded.append(event)
            if event.status == "closed":
                self.monitor.tick(event.ts)
            return
        if isinstance(event, SessionStarted):
            self._sessions += 1
            if self._sessions > 1:
                self._new_run(event)
            self.monitor.apply_session(event)
        self.monitor.feed(event)

    def _new_run(self, session: SessionStarted) -> None:
        self._done.extend(self.monitor.incidents.reports())
        self.monitor = self._new_monitor(session)
        self.runs += 1

    def finish(self) -> None:
        """The journal ended: let the core's time reach its last line."""
        if self.last_ts is not None:
            self.monitor.tick(self.last_ts)

    def reports(self) -> tuple[IncidentReport, ...]:
        """Every incident of every run replayed so far, by run, then by fault time."""
        return (*self._done, *self.monitor.incidents.reports())


@dataclass(frozen=True)
class ReplayResult:
    """What a replay computed, next to what the live run recorded."""

    reports: tuple[IncidentReport, ...]
    recorded: tuple[IncidentUpdate, ...]
    """The incident updates in the journal, as computed live."""
    recomputed: tuple[IncidentUpdate, ...]
    """The incident updates the replay computed."""
    events: int
    """Journal lines that are events."""
    problems: ReadProblems = field(default_factory=ReadProblems)
    runs: int = 1

    def differences(self) -> int:
        """How many recorded updates the replay did not compute, or computed differently
        (0 when the journal recorded none: there is nothing to compare).

        Compared as collections: a canary result is fed live before the updates of the
        event that caused it, so their order in the journal and in the replay can differ
        while every update is the same.
        """
        if not self.recorded:
            return 0
        live = Counter(to_json(update) for update in self.recorded)
        replayed = Counter(to_json(update) for update in self.recomputed)
        return sum((live - replayed).values())


def replay_lines(
    lines: Iterable[JournalLine | Event], session: SessionStarted | None = None
) -> ReplayResult:
    """Replay a journal's lines (or events) through the core; see the module docstring.

    Without `session`, the lines are read twice (`opening_session`): give a list.
    """
    if session is None:
        lines = list(lines)
        session = opening_session(lines)
    replayer = Replayer(session)
    problems = ReadProblems()
    events = 0
    for item in lines:
        event = _timed(item, problems)
        if event is None:
            continue
        events += 1
        replayer.feed(event)
    replayer.finish()
    return ReplayResult(
        reports=replayer.reports(),
        recorded=tuple(replayer.recorded),
        recomputed=tuple(replayer.recomputed),
        events=events,
        problems=problems,
        runs=replayer.runs,
    )


def replay_file(path: Path | str) -> ReplayResult:
    """Replay the journal at `path` (read twice: its session line, then every line).

    A file that cannot be read raises `JournalError`.
    """
    session = opening_session(read_journal(path))
    return replay_lines(read_journal(path), session)


# --------------------------------------------------------------------------- the timeline


class Player:
    """A journal as a timeline: which lines are due at a given wall time, at `speed`.

    Never reads a clock: every method that depends on time takes the caller's `wall`
    (monotonic seconds). Lines are pulled from `lines` as they are needed; unreadable
    ones are counted in `problems`; a journal that cannot be read on ends there
    (`failure`).
    """

    def __init__(
        self,
        lines: Iterable[JournalLine | Event],
        *,
        speed: float = 1.0,
        paused: bool = False,
        quiet: float = QUIET_SKIP,
        lead: float = QUIET_LEAD,
    ) -> None:
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise ValueError(f"the speed must be between {MIN_SPEED:g} and {MAX_SPEED:g}")
        self.speed = float(speed)
        self.paused = paused
        self.problems = ReadProblems()
        self.skipped = 0.0
        """Journal seconds cut out of quiet stretches."""
        self.last_ts: float | None = None
        """The latest time of a line handed out."""
        self.failure: str | None = None
        """Why the journal could not be read to its end (`JournalError`), if it could not."""
        self._lines: Iterator[JournalLine | Event] = iter(lines)
        self._next: Event | None = None
        self._exhausted = False
        self._quiet = quiet
        self._lead = lead
        self._anchor_wall = 0.0
        self._anchor_ts: float | None = None
        """The journal time at `_anchor_wall` (None until the first line is known)."""

    # -- lines --------------------------------------------------------------------------

    def peek(self) -> Event | None:
        """The next line's event, not handed out yet (None at the end of the journal)."""
        while self._next is None and not self._exhausted:
            try:
                item = next(self._lines)
            except StopIteration:
                self._exhausted = True
                break
            except JournalError as error:
                self._exhausted = True
                self.failure = str(error)
                break
            event = _timed(item, self.problems)
            if event is not None:
                self._next = event
        return self._next

    @property
    def ended(self) -> bool:
        """True once every line has been handed out."""
        return self.peek() is None

    def _take(self) -> Event:
        event = self.peek()
        assert event is not None
        self._next = None
        self.last_ts = event.ts if self.last_ts is None else max(self.last_ts, event.ts)
        return event

    # -- the clock ----------------------------------------------------------------------

    def _start(self, wall: float) -> float | None:
        if self._anchor_ts is None:
            first = self.peek()
            if first is None:
                return None
            self._anchor_ts = float(first.ts)
            self._anchor_wall = wall
        return self._anchor_ts

    def _raw(self, wall: float) -> float | None:
        anchor = self._start(wall)
        if anchor is None or self.paused:
            return anchor
        return anchor + max(0.0, wall - self._anchor_wall) * self.speed

    def now(self, wall: float) -> float | None:
        """The journal time shown at `wall`: never past a line not handed out yet, and the
        last line's time once the journal ended. None for a journal without any event."""
        raw = self._raw(wall)
        if raw is None:
            return None
        upcoming = self.peek()
        if upcoming is None:
            return raw if self.last_ts is None else min(raw, max(self.last_ts, self._anchor()))
        return max(self._anchor(), min(raw, upcoming.ts))

    def _anchor(self) -> float:
        return self._anchor_ts if self._anchor_ts is not None else 0.0

    def _reanchor(self, wall: float, ts: float) -> None:
        self._anchor_wall = wall
        self._anchor_ts = max(self._anchor(), ts)

    # -- playing ------------------------------------------------------------------------

    def due(self, wall: float, limit: int = MAX_LINES_PER_FRAME) -> list[Event]:
        """The lines whose time the replay's clock has reached at `wall`, in order."""
        out: list[Event] = []
        raw = self._raw(wall)
        if raw is None or self.paused:
            return out
        while len(out) < limit:
            upcoming = self.peek()
            if upcoming is None:
                break
            if upcoming.ts <= raw:
                out.append(self._take())
                continue
            since = self.last_ts if self.last_ts is not None else self._anchor()
            if upcoming.ts - since > self._quiet and since + self._lead <= raw:
                target = upcoming.ts - self._lead
                if target > raw:
                    self.skipped += target - raw
                    self._reanchor(wall, target)
                    raw = target
            break
        if len(out) >= limit and self.last_ts is not None:
            self._reanchor(wall, self.last_ts)  # fall behind rather than run ahead
        return out

    def step(self, wall: float) -> list[Event]:
        """Hand out the next event (and the recorded incident updates before it); the
        clock moves to it and the replay stays paused."""
        self.pause(wall)
        out: list[Event] = []
        while self.peek() is not None:
            event = self._take()
            out.append(event)
            if not isinstance(event, IncidentUpdate):
                break
        if out and self.last_ts is not None:
            self._reanchor(wall, self.last_ts)
        return out

    def pause(self, wall: float) -> None:
        """Stop the clock where it is shown."""
        if self.paused:
            return
        shown = self.now(wall)
        if shown is not None:
            self._reanchor(wall, shown)
        self.paused = True

    def resume(self, wall: float) -> None:
        """Let the clock run again from where it stopped."""
        if not self.paused:
            return
        self._anchor_wall = wall
        self.paused = False

    def set_speed(self, speed: float, wall: float) -> float:
        """Change the speed (kept within bounds) from now on; the speed set."""
        shown = self.now(wall)
        if shown is not None:
            self._reanchor(wall, shown)
        self.speed = min(MAX_SPEED, max(MIN_SPEED, float(speed)))
        return self.speed


# --------------------------------------------------------------------------- the command


def _warn(text: str) -> None:
    click.echo(f"hawatch: warning: {text}", err=True)


def _print_reports(file: Path, result: ReplayResult, style: str) -> None:
    """Every report, as text, Markdown or JSON Lines (`hawatch.report`)."""
    from hawatch.report import as_json, as_markdown, as_text

    if not result.reports:
        if style == "json":
            _warn("no incident in this journal.")
        else:
            click.echo("no incident in this journal.")
        return
    settings = {"journal": str(file)}
    if style == "json":
        for report in result.reports:
            data = as_json(report, settings=settings)
            click.echo(json.dumps(data, ensure_ascii=False, separators=(",", ":")))
        return
    if style == "markdown":
        texts = [as_markdown(report, settings=settings) for report in result.reports]
    else:
        texts = [as_text(report, settings=settings) for report in result.reports]
    click.echo("\n".join(text.rstrip("\n") + "\n" for text in texts), nl=False)


def _missing(path: Path) -> click.UsageError:
    where = state_dir() / "journal"
    return click.UsageError(
        f"there is no journal {path}; hawatch records one per run in {where} "
        "unless --journal names another file"
    )


@click.command("replay")
@click.argument("file", metavar="FILE", type=click.Path(path_type=Path))
@click.option(
    "--report",
    is_flag=True,
    help="Print the incident reports and exit, without the screen.",
)
@click.option(
    "--json",
    "style",
    flag_value="json",
    help="With --report: one JSON object per incident, one per line (JSON Lines); "
    "implies --report.",
)
@click.option(
    "--markdown",
    "style",
    flag_value="markdown",
    help="With --report: Markdown; implies --report.",
)
@click.option(
    "--speed",
    type=click.FloatRange(MIN_SPEED, MAX_SPEED),
    default=1.0,
    show_default=True,
    metavar="X",
    help="Play X times as fast as recorded (the screen only; + and - change it).",
)
@click.option(
    "--start-paused",
    is_flag=True,
    help="Open the screen paused at the first event (space plays, n steps).",
)
def replay_command(
    file: Path, report: bool, style: str | None, speed: float, start_paused: bool
) -> int:
    """Play a recorded journal into the screen, or print its incident reports.

    The journal is replayed through the same core that watched live, so it
    computes the same figures: the same phases and the same gap, to the
    millisecond. The screen is read-only (no failover key): space pauses
    and resumes, n steps one event, + and - double and halve the speed; a
    quiet stretch of more than 5 s without any event is cut to 2 s.

    \b
    With --report (or --json, --markdown), print every incident, closed or
    still open at the end of the journal, and exit 0 ("no incident in this
    journal." when there is none). Lines that are not events are skipped and
    counted in one warning. Status 2 when FILE is missing or not a journal,
    1 when it cannot be read to the end.
    """
    if not file.exists():
        raise _missing(file)
    try:
        session = opening_session(read_journal(file))
    except JournalError as error:
        raise click.UsageError(str(error)) from None
    if report or style is not None:
        return _report(file, session, style or "text")
    from hawatch.views.replay_app import ReplayApp

    ReplayApp(file, speed=speed, paused=start_paused, session=session).run()
    return 0


def _report(file: Path, session: SessionStarted, style: str) -> int:
    try:
        result = replay_lines(read_journal(file), session)
    except JournalError as error:
        raise click.ClickException(f"{error}.") from None
    if result.events == 0 and result.problems.count:
        first = (result.problems.first_problem or "unreadable").rstrip(".")
        raise click.UsageError(
            f"{file} is not a hawatch journal: none of its lines is an event "
            f"(line {result.problems.first_line}: {first})"
        )
    problems = result.problems.sentence(str(file))
    if problems is not None:
        _warn(problems)
    differ = result.differences()
    if differ:
        _warn(
            f"{differ} of the {len(result.recorded)} incident updates recorded live differ "
            "from the replay's (a journal that starts mid-run, or recorded by another "
            "version of hawatch, can do that); the reports below are the replay's."
        )
    try:
        _print_reports(file, result, style)
    except BrokenPipeError:  # `hawatch replay FILE --json | head -1`: the reader is gone
        _stdout_to_devnull()
    return 0


def _stdout_to_devnull() -> None:
    """Point standard output at the null device, so Python's last flush cannot fail."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
