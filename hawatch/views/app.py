"""The live TUI: who is master of each name, how healthy it is, and what just happened.

A `Monitor` runs every source (Sentinel, and the Celery side when asked) in a
worker and folds their events into the core (`ClusterState`, `TaskTracker`,
queue depths); four times a second (``--refresh``) the app renders one snapshot
of the core into the widgets. Rendering on a tick rather than per event keeps the
screen responsive however many events arrive, and keeps redraws cheap on a slow
SSH link. Widgets never do I/O. Each render also compares the snapshot with the
last one (`hawatch.core.attention`) and turns what just happened (a switch, a
resume, disagreement, a sentinel lost) into a notification and a bell.

Below 40 rows the parts say less (`compact`); with several masters a list gives
each a line and only the chosen one (``m``, a click, the palette) is in full. The
operator can hide parts (``t``, ``p``), zoom one (``z``), filter the pending tasks
(``/``) and clear the history from view (``c``); ``?`` lists every key.

The failover key (``f``) is the one action that changes the cluster. It is
declared dangerous in one place, `HawatchApp.check_action`, which removes it
entirely in read-only mode or with ``--no-failover`` (no key, no footer entry, no
help line, no palette entry); when it
is allowed, a modal that defaults to Cancel names the master, its address and
the one sentinel that will be asked. The request runs in a worker, its answer is
shown as a sentence on the notice line, fed to the core as `FailoverRequested`
and appended to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from hawatch.audit import audit_failover
from hawatch.core.attention import Attention
from hawatch.core.cluster import ClusterSnapshot, ClusterState
from hawatch.core.events import FailoverRequested
from hawatch.core.incidents import IncidentReport, IncidentsSnapshot
from hawatch.journal import Journal, state_dir
from hawatch.monitor import CeleryOptions, Monitor
from hawatch.settings import Settings
from hawatch.views.confirm import ConfirmFailover
from hawatch.views.dialogs import FilterPrompt, HelpScreen, KeyHelp, key_name
from hawatch.views.failover import FAILOVER_TIMEOUT, ask_failover, choose_sentinel
from hawatch.views.messages import EventArrived, FailoverAnswered
from hawatch.views.options import THEME_NAMES, ScreenOptions
from hawatch.views.panel import (
    MIN_EVENTS,
    MasterPanel,
    MastersList,
    format_clock,
    format_duration,
    panel_text,
)
from hawatch.views.pending import STYLESHEET as PENDING_STYLESHEET
from hawatch.views.pending import PendingPanel
from hawatch.views.prometheus import STYLESHEET as PROMETHEUS_STYLESHEET
from hawatch.views.prometheus import PrometheusPanel
from hawatch.views.styles import stylesheet_path
from hawatch.views.timeline import STYLESHEET as TIMELINE_STYLESHEET
from hawatch.views.timeline import TimelinePanel

if TYPE_CHECKING:
    from hawatch.sources.http_probe import HttpProbeOptions
    from hawatch.sources.prometheus import PrometheusOptions

__all__ = [
    "HawatchApp",
    "MasterPanel",
    "format_duration",
    "status_line",
]

WAITING = "Asking the sentinels …"
MAX_EVENTS = 30
"""The most events one panel shows, however tall the terminal."""
FULL_TIMELINE_HEIGHT = 40
"""Terminal rows from which the timeline shows its big figure, throughput and history."""
MAX_TASK_ROWS = 30
"""The most pending tasks the PENDING panel lists (the counts are always exact)."""
MAX_WORKER_ROWS = 10
TERMINAL_CHECK = 2.0
"""Seconds between two checks that the terminal is still there (an SSH session that
died without a hang-up signal reaching hawatch)."""
NOTIFY_SECONDS = 10
"""How long a notification stays on screen."""
ZOOMS = ("masters", "timeline", "pending")
"""What ``z`` can give the whole screen to, in the order it cycles through them."""

KEY_WORDS = {
    "quit": "leave at once; stops the sources, not the cluster",
    "failover": "ask one sentinel to fail the chosen master over",
    "help": "this list",
    "next_master": "choose the next master (failover and export act on it)",
    "filter": "list only the pending tasks that contain some text",
    "zoom": "whole screen to masters, timeline, pending, or none",
    "toggle_timeline": "hide or show the timeline",
    "toggle_pending": "hide or show the pending tasks",
    "clear_history": "clear past events and incidents; the journal keeps them",
    "export": "write the incident (Markdown) and the screen (SVG)",
}
"""Longer words for each action in the help screen."""


class _TolerantOutput:
    """The terminal's output stream, with writes to a terminal that went away dropped.

    Textual draws through a writer thread that dies on its first failed write (EIO once
    an SSH session's terminal is gone); its bounded queue then fills and blocks the
    event loop, and hawatch would never notice that it should exit. Dropping the
    failed writes keeps the loop turning until the terminal check ends the run.
    """

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        """Write `text`; a write the terminal refuses is dropped."""
        try:
            return self._stream.write(text)
        except (OSError, ValueError):
            return len(text)

    def flush(self) -> None:
        """Flush; a flush the terminal refuses is dropped."""
        with contextlib.suppress(OSError, ValueError):
            self._stream.flush()

    def __getattr__(self, name: str) -> object:
        return getattr(self._stream, name)


@contextlib.contextmanager
def _tolerant_terminal_output() -> Iterator[None]:
    """Give Textual a terminal output that survives the terminal going away."""
    original = sys.__stderr__
    if original is None:
        yield
        return
    # Textual's driver writes to sys.__stderr__, read when the app starts running.
    setattr(sys, "__stderr__", _TolerantOutput(original))  # noqa: B010 (a Final name)
    try:
        yield
    finally:
        setattr(sys, "__stderr__", original)  # noqa: B010


def _incident_words(report: IncidentReport) -> str:
    """An open incident in a few words for the list of masters: ``gap 12.0s and
    counting``, or the phase it is in before the switch."""
    if report.switched is None:
        return "failover started" if report.elected is not None else "fault"
    if report.gap_s is None:
        return "switched"
    counting = " and counting" if "gap_s" in report.counting else ""
    return f"gap {report.gap_s:.1f}s{counting}"


def export_dir() -> Path:
    """Where the export key writes: ``$XDG_STATE_HOME/hawatch/exports``."""
    return state_dir() / "exports"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def status_line(snapshot: ClusterSnapshot, sentinel_count: int) -> str:
    """The status bar: which sentinels do not answer and why, or that all is watched."""
    if not snapshot.unreachable:
        watched = max(sentinel_count, len(snapshot.reachable))
        return f"watching {_plural(watched, 'sentinel')}"
    total = max(sentinel_count, len(snapshot.unreachable) + len(snapshot.reachable))
    parts = [
        f"{down.sentinel} {down.reason} (for {format_duration(down.age)})"
        for down in snapshot.unreachable
    ]
    return f"{len(snapshot.unreachable)} of {total} sentinels unreachable: " + "; ".join(parts)


class HawatchApp(App[None]):
    """Watch the sentinels of `settings` and show who is master, live.

    Unless `settings.read_only`, ``f`` fails the master in focus over (after a
    confirmation).
    """

    CSS_PATH: ClassVar[list[str | PurePath]] = [
        str(stylesheet_path()),
        str(stylesheet_path(PENDING_STYLESHEET)),
        str(stylesheet_path(TIMELINE_STYLESHEET)),
        str(stylesheet_path(PROMETHEUS_STYLESHEET)),
    ]
    TITLE = "hawatch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("f", "failover", "Fail over"),
        Binding("question_mark", "help", "Help", key_display="?"),
        Binding("m", "next_master", "Master"),
        Binding("slash", "filter", "Filter", key_display="/"),
        Binding("z", "zoom", "Zoom"),
        Binding("t", "toggle_timeline", "Timeline", show=False),
        Binding("p", "toggle_pending", "Pending", show=False),
        Binding("c", "clear_history", "Clear", show=False),
        Binding("e", "export", "Export"),
    ]
    COMMAND_PALETTE_BINDING = "ctrl+p"

    def __init__(
        self,
        settings: Settings,
        *,
        subtitle: str | None = None,
        topology_interval: float = 2.0,
        celery: CeleryOptions | None = None,
        journal: Journal | None = None,
        screen: ScreenOptions | None = None,
        prometheus: PrometheusOptions | None = None,
        probes: Sequence[HttpProbeOptions] = (),
    ) -> None:
        super().__init__()
        self.settings = settings
        self.options = screen or ScreenOptions()
        """Theme, bell, refresh period and whether the failover action is offered."""
        self.theme = THEME_NAMES[self.options.theme]
        self.topology_interval = topology_interval
        self.monitor = Monitor(
            settings,
            celery=celery,
            topology_interval=topology_interval,
            journal=journal,
            prometheus=prometheus,
            probes=probes,
        )
        """The sources and the core; rendered on a tick."""
        self._panels: dict[str, MasterPanel] = {}
        self._watcher_failure: str | None = None
        self._status_text = ""
        self._notice_text = ""
        self._failover_pending: str | None = None
        """The sentinel a failover request is on its way to, while it is."""
        self._chosen: str | None = None
        """The master the operator chose (``m``, the palette, a click); None: the first."""
        self.zoomed: str | None = None
        """The part given the whole screen (one of `ZOOMS`), if any."""
        self.hidden: set[str] = set()
        """The parts the operator hid (``timeline``, ``pending``)."""
        self.task_filter = ""
        """The text the listed pending tasks must contain (empty: all)."""
        self.cleared_at: float | None = None
        """Events and incidents up to this time are cleared from the screen (``c``)."""
        self._attention = Attention()
        self._in_incident: dict[str, str] = {}
        """Master name → its open incident in a few words, as of the last render."""
        self.log_path: Path | None = None
        """Where log records go while the screen runs (None: not redirected)."""
        self.sub_title = subtitle if subtitle is not None else self._default_subtitle()

    def _default_subtitle(self) -> str:
        addresses = ", ".join(str(address) for address in self.settings.sentinels)
        read_only = " (read-only)" if self.settings.read_only else ""
        if len(addresses) <= 40:
            return addresses + read_only
        return _plural(len(self.settings.sentinels), "sentinel") + read_only

    def compose(self) -> ComposeResult:
        """Header, the master panels, the notice and status lines, and the key bar."""
        yield Header()
        masters = VerticalScroll(id="masters", can_focus=False)
        masters.border_title = "masters"
        with masters:
            yield Static(WAITING, id="waiting", markup=False)
            yield MastersList(id="masters-list")
        yield TimelinePanel(id="timeline")
        yield PrometheusPanel(id="prometheus")
        yield PendingPanel(id="pending")
        yield Static("", id="notice", markup=False)
        yield Static("", id="status", markup=False)
        yield Footer(compact=True)

    def on_mount(self) -> None:
        """Start watching the sentinels and rendering snapshots."""
        self._exit_on_hangup()
        self._watch_terminal()
        self._log_to_file()
        self.query_one("#notice", Static).display = False
        self.query_one(MastersList).display = False
        self.query_one(PendingPanel).display = self.monitor.celery.enabled
        self.query_one(PrometheusPanel).display = self.monitor.prometheus is not None
        if self.monitor.journal is not None:
            self._notice(f"recording every event to {self.monitor.journal.path}")
        self.poll_sentinels()
        self.refresh_view()
        self.set_interval(self.options.refresh, self.refresh_view)

    def _exit_on_hangup(self) -> None:
        """Quit cleanly on SIGTERM or SIGHUP (an SSH session that died), like on `q`.

        Whoever started hawatch then gets to clean up (the demo stops its
        cluster); otherwise the process would die at once or linger.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.exit)

    def run(self, *args: Any, **kwargs: Any) -> None:
        """Run the screen in this terminal until the operator quits or the terminal goes."""
        with _tolerant_terminal_output():
            return super().run(*args, **kwargs)

    def _log_to_file(self) -> None:
        """Send log records to a file while the screen is drawn (`hawatch.logfile`); tests,
        which have no terminal to protect, keep pytest's own handling."""
        if self.is_headless:
            return
        from hawatch.logfile import log_to_file

        self.log_path, problem = log_to_file([self.settings.password, self.settings.node_password])
        if problem:
            self.call_after_refresh(
                self._notice, f"{problem}; log records are dropped", warning=True
            )

    def _watch_terminal(self) -> None:
        """Exit within `TERMINAL_CHECK` seconds once the terminal is gone.

        A dead SSH session usually sends a hang-up (handled above), but not always (a
        ``nohup``, a multiplexer that ignores it): the terminal then stops being one.
        Only a real terminal is watched: tests and the web view have none.
        """
        if self.is_headless:
            return
        stream = sys.__stdin__
        try:
            fd = stream.fileno() if stream is not None else -1
        except (OSError, ValueError):
            return
        if fd < 0 or not os.isatty(fd):
            return

        def check() -> None:
            if not os.isatty(fd):
                self.exit(return_code=129, message="the terminal went away; hawatch stopped.")

        self.set_interval(TERMINAL_CHECK, check, name="terminal check")

    # -- the source ---------------------------------------------------------------------

    @property
    def cluster_state(self) -> ClusterState:
        """The Sentinel side of the core."""
        return self.monitor.cluster

    @work(
        exclusive=True,
        exit_on_error=False,
        group="sentinel",
        description="Watching the sentinels and the Celery side",
    )
    async def poll_sentinels(self) -> None:
        """Run every source on the event loop until the app exits."""
        await self.monitor.run()

    def on_event_arrived(self, message: EventArrived) -> None:
        """Feed one event to the core (the app's own actions, scripted tests)."""
        self.monitor.feed(message.event)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Say so on screen if the sentinel watcher or a failover request fails on a bug."""
        if event.state != WorkerState.ERROR and event.state != WorkerState.CANCELLED:
            return
        error = event.worker.error
        detail = f"{type(error).__name__}: {self.settings.redact(str(error))}"
        if event.worker.group == "sentinel" and event.state == WorkerState.ERROR:
            self._watcher_failure = f"the sentinel watcher stopped ({detail}); restart hawatch"
            self.refresh_view()
        elif event.worker.group == "failover" and self._failover_pending is not None:
            sentinel, self._failover_pending = self._failover_pending, None
            if event.state == WorkerState.ERROR:
                self._notice(
                    f"the failover request to {sentinel} failed inside hawatch ({detail}); "
                    "check the panel to see whether a failover started",
                    warning=True,
                )

    # -- rendering ----------------------------------------------------------------------

    def refresh_view(self) -> None:
        """Render one snapshot of the core into the widgets, changing only what changed."""
        snapshot = self.cluster_state.snapshot(self.monitor.clock())
        incidents = self.monitor.incidents.snapshot(snapshot.now)
        notices = self._attention.notices(snapshot, incidents)
        if self.cleared_at is not None:
            snapshot, incidents = self._without_cleared(snapshot, incidents)
        try:
            with self.batch_update():
                self._layout()
                self._render_timeline(incidents)
                self._render_prometheus(snapshot)
                self._render_pending(incidents)
                self._render_masters(snapshot, incidents)
                self._render_status(snapshot)
        except NoMatches:
            return  # a tick while the app is closing: its widgets are already gone
        for notice in notices:
            self.notify(
                notice.message,
                title=notice.title,
                severity="information" if notice.severity == "information" else "warning",
                timeout=NOTIFY_SECONDS,
            )
        if notices and self.options.bell:
            self.bell()

    def _without_cleared(
        self, snapshot: ClusterSnapshot, incidents: IncidentsSnapshot
    ) -> tuple[ClusterSnapshot, IncidentsSnapshot]:
        """The snapshots without what the operator cleared (``c``): older events and the
        incidents closed before. The core and the journal keep everything."""
        cleared = self.cleared_at or 0.0
        masters = tuple(
            dataclasses.replace(view, events=tuple(e for e in view.events if e.ts > cleared))
            for view in snapshot.masters
        )
        history = tuple(report for report in incidents.history if (report.closed or 0.0) > cleared)
        return (
            dataclasses.replace(snapshot, masters=masters),
            dataclasses.replace(incidents, history=history),
        )

    @property
    def compact(self) -> bool:
        """Whether the terminal is short: the masters and the timeline say less."""
        return self.size.height < FULL_TIMELINE_HEIGHT

    def _shown_parts(self) -> set[str]:
        """The parts on screen: the zoomed one alone, else all but the hidden ones."""
        parts = {"masters", "timeline"}
        if self.monitor.celery.enabled:
            parts.add("pending")
        if self.monitor.prometheus is not None:
            parts.add("prometheus")
        if self.zoomed in parts:
            return {self.zoomed}
        return parts - self.hidden

    def _layout(self) -> None:
        """Show the parts the operator asked for; a zoomed part takes the whole height."""
        shown = self._shown_parts()
        widgets: dict[str, Widget] = {
            "masters": self.query_one("#masters", VerticalScroll),
            "timeline": self.query_one(TimelinePanel),
            "prometheus": self.query_one(PrometheusPanel),
            "pending": self.query_one(PendingPanel),
        }
        for name, widget in widgets.items():
            display = name in shown
            if widget.display != display:
                widget.display = display
            widget.set_class(self.zoomed == name, "zoomed")

    def _render_masters(self, snapshot: ClusterSnapshot, incidents: IncidentsSnapshot) -> None:
        container = self.query_one("#masters", VerticalScroll)
        names = {view.name for view in snapshot.masters}
        answered = bool(snapshot.reachable) or bool(snapshot.masters)
        if answered:
            names.update(self.settings.masters)
        for name in sorted(names - self._panels.keys()):
            panel = MasterPanel(name)
            after = [other for key, other in self._panels.items() if key > name]
            self._panels[name] = panel
            if after:
                container.mount(panel, before=min(after, key=lambda other: other.master))
            else:
                container.mount(panel)
            if len(self._panels) == 2:
                self.refresh_bindings()  # the key that chooses a master now has a use
        waiting = self.query_one("#waiting", Static)
        if self._panels:
            waiting.display = False
        elif answered:
            waiting.update("The sentinels answer but monitor no master.")
        elif snapshot.unreachable:
            waiting.update(f"{WAITING} none has answered yet.")
        if not self._panels:
            return
        self._in_incident = {report.master: _incident_words(report) for report in incidents.open}
        chosen = self.selected_master()
        texts = {name: panel_text(name, snapshot.master(name), snapshot) for name in self._panels}
        several = len(texts) > 1
        listing = self.query_one(MastersList)
        listing.display = several
        listing.set_class(self.compact, "compact")
        if several:
            listing.show([texts[name] for name in sorted(texts)], chosen, self._in_incident)
        compact = self.compact and self.zoomed != "masters"
        # Short terminal, several masters: the list says how each one is, and only the
        # chosen one is shown in full.
        shown = [name for name in self._panels if not (compact and several) or name == chosen]
        # Share the rows left after the essentials between the shown panels' event lists,
        # so a taller terminal shows more history and 80x24 still shows the newest.
        # The panel's left bar and padding take 2 columns, a scroll bar 2 more.
        width = container.content_size.width - 4 if container.content_size.width else 73
        height = container.content_size.height or max(1, self.size.height - 6)
        if several:
            height -= len(texts) + 1
        fixed = sum(texts[name].fixed_rows(width, compact=compact) for name in shown)
        fixed += len(shown) - 1
        events = (height - fixed) // len(shown)
        events = max(MIN_EVENTS, min(MAX_EVENTS, events))
        for name, panel in self._panels.items():
            display = name in shown
            if panel.display != display:
                panel.display = display
            panel.set_class(several and name == chosen, "chosen")
            if display:
                panel.show(texts[name], events=events, compact=compact)

    def _render_timeline(self, incidents: IncidentsSnapshot) -> None:
        """The gap: compact (two lines, no border) below `FULL_TIMELINE_HEIGHT` rows,
        unless zoomed."""
        monitor = self.monitor
        now = incidents.now
        compact = self.compact and self.zoomed != "timeline"
        panel = self.query_one(TimelinePanel)
        panel.set_class(compact, "compact")
        started = monitor.tasks.started_history(now, 180) if monitor.celery.enabled else ()
        # Compact: the last incident's row once it closed, none while one is open.
        rows = (1 if incidents.history and not incidents.open else 0) if compact else None
        panel.show(incidents, started, now, compact=compact, rows=rows)

    def _render_prometheus(self, snapshot: ClusterSnapshot) -> None:
        """Prometheus's view beside the live one: two lines, more on tall terminals."""
        if self.monitor.prometheus is None:
            return
        view = self.monitor.prometheus_view.snapshot(snapshot.now, snapshot)
        rows = 2 if self.compact else 6
        self.query_one(PrometheusPanel).show(view, rows=rows)

    def _render_pending(self, incidents: IncidentsSnapshot) -> None:
        """The PENDING panel: more task rows, and the workers, on taller terminals."""
        if not self.monitor.celery.enabled:
            return
        monitor = self.monitor
        fault_at = monitor.tasks_fault_at(incidents)
        tasks = monitor.tasks.snapshot(
            incidents.now, fault_at=fault_at, limit=MAX_TASK_ROWS, match=self.task_filter
        )
        if self.zoomed == "pending":
            spare = max(0, self.size.height - 12)
            rows = min(MAX_TASK_ROWS, spare * 2 // 3)
            worker_rows = min(MAX_WORKER_ROWS, spare - rows)
        else:
            # Rows beyond 80x24's go half to tasks, a quarter to workers; rows that the
            # list of masters, the notice or a long status line take come out of the tasks
            # first (down to one), so the masters' essentials stay on screen.
            spare = self.size.height - 24 - self._extra_rows()
            rows = min(MAX_TASK_ROWS, 3 + spare // 2) if spare >= 0 else max(1, 3 + spare)
            worker_rows = min(MAX_WORKER_ROWS, max(0, spare) // 4)
        panel = self.query_one(PendingPanel)
        title = f"pending · filter: {self.task_filter}" if self.task_filter else "pending"
        if panel.border_title != title:
            panel.border_title = title
        panel.show(tasks, list(monitor.queues.values()), rows=rows, worker_rows=worker_rows)

    def _extra_rows(self) -> int:
        """Rows taken beyond the 80x24 layout's budget: the list of masters (short
        terminals), the notice line, a status line longer than one row."""
        extra = 0
        if self.compact and len(self._panels) > 1 and "masters" in self._shown_parts():
            extra += len(self._panels)
        notice = self.query_one("#notice", Static)
        if notice.display:
            extra += max(1, notice.outer_size.height)
        prometheus = self.query_one(PrometheusPanel)
        if prometheus.display:
            extra += max(1, prometheus.outer_size.height)
        extra += max(0, self.query_one("#status", Static).outer_size.height - 1)
        return extra

    def _render_status(self, snapshot: ClusterSnapshot) -> None:
        status = self.query_one("#status", Static)
        text = status_line(snapshot, len(self.settings.sentinels))
        problems = self.monitor.problems(snapshot.now)
        for problem in reversed(problems):
            text = f"WARNING: {problem.rstrip('.')}. {text}"
        if self.settings.read_only:
            text += " · read-only: failover disabled"
        if self._watcher_failure:
            text = f"WARNING: {self._watcher_failure}. {text}"
        if text != self._status_text:
            self._status_text = text
            status.update(text)
        status.set_class(
            bool(snapshot.unreachable or self._watcher_failure or problems),
            "warning",
        )

    def _notice(self, sentence: str, *, warning: bool = False) -> None:
        """Show `sentence` on the notice line (the answer to the operator's last action)."""
        notice = self.query_one("#notice", Static)
        prefix = "WARNING: " if warning else ""
        self._notice_text = f"{format_clock(time.time())}  {prefix}{sentence}"
        notice.update(self._notice_text)
        notice.display = True
        notice.set_class(warning, "warning")

    @property
    def notice_text(self) -> str:
        """The notice line as shown (empty until the operator did something)."""
        return self._notice_text

    @property
    def status_text(self) -> str:
        """The status line as shown."""
        return self._status_text

    # -- export -----------------------------------------------------------------------

    def export_incident(self) -> tuple[Path | None, Path]:
        """Write the current (else the last) incident as Markdown and the screen as SVG.

        Returns the two paths (the first None when there was no incident yet). Raises
        OSError when the files cannot be written.
        """
        from hawatch.report import as_markdown

        now = self.monitor.clock()
        incidents = self.monitor.incidents.snapshot(now)
        name = self.selected_master()
        report = incidents.for_master(name) if name is not None else None
        if report is None and incidents.open:
            report = incidents.open[0]
        if report is None and incidents.history:
            report = incidents.history[-1]
        directory = export_dir()
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        base = f"hawatch-{report.id}-{stamp}" if report is not None else f"hawatch-{stamp}"
        markdown: Path | None = None
        if report is not None:
            markdown = directory / f"{base}.md"
            markdown.write_text(as_markdown(report), encoding="utf-8")
        svg = Path(self.save_screenshot(f"{base}.svg", str(directory)))
        return markdown, svg

    def action_export(self) -> None:
        """Export the incident and the screen; say where, or why not, on the notice line."""
        try:
            markdown, svg = self.export_incident()
        except OSError as error:
            self._notice(f"cannot export: {error.strerror or error}", warning=True)
            return
        if markdown is None:
            self._notice(f"no incident yet; the screen is in {svg}")
        else:
            self._notice(f"incident written to {markdown}; the screen to {svg}")

    # -- the failover key ---------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Remove the failover action entirely in read-only mode (key, footer, key panel,
        help, palette), and the actions that have nothing to act on."""
        if action == "failover":
            return self.failover_allowed
        if action == "next_master":
            return len(self._panels) > 1
        if action in ("filter", "toggle_pending"):
            return self.monitor.celery.enabled
        return True

    @property
    def failover_allowed(self) -> bool:
        """Whether the failover action exists at all: never read-only, never when hidden."""
        return self.options.allow_failover and not self.settings.read_only

    def selected_master(self) -> str | None:
        """The master the failover key and the export act on: the one the operator chose,
        else the first by name with an incident open, else the first by name."""
        if self._chosen in self._panels:
            return self._chosen
        troubled = sorted(name for name in self._in_incident if name in self._panels)
        if troubled:
            return troubled[0]
        return min(self._panels) if self._panels else None

    def choose_master(self, name: str) -> None:
        """Make `name` the master in focus (the failover key and the export act on it)."""
        if name in self._panels:
            self._chosen = name
            self.refresh_view()

    def action_next_master(self) -> None:
        """Choose the next master by name (after the last, the first again)."""
        names = sorted(self._panels)
        if len(names) < 2:
            return
        current = self.selected_master()
        index = names.index(current) if current in names else -1
        self.choose_master(names[(index + 1) % len(names)])

    def on_master_panel_chosen(self, message: MasterPanel.Chosen) -> None:
        """A click on a master's panel or its line in the list chooses it."""
        self.choose_master(message.master)

    # -- the other keys -----------------------------------------------------------------

    def key_help(self) -> list[KeyHelp]:
        """hawatch's keys that act now, in the order declared, with their words (the help
        screen); a key `check_action` removes is not listed."""
        active = self.screen_stack[0].active_bindings
        keys: list[KeyHelp] = []
        listed: set[str] = set()
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or binding.action not in KEY_WORDS:
                continue
            if binding.action in listed:
                continue  # Ctrl-C: said in the notes
            listed.add(binding.action)
            key = binding.key.split(",")[0]
            if key not in active or not active[key].enabled:
                continue
            shown = binding.key_display or key_name(key)
            keys.append((shown, binding.description, KEY_WORDS[binding.action]))
        return keys

    def action_help(self) -> None:
        """Open the list of every key."""
        if isinstance(self.screen, HelpScreen):
            return
        notes = [
            "Ctrl-P opens the command palette: every action by name.",
            "Ctrl-C quits too. The mouse is optional: a click chooses a master.",
        ]
        self.push_screen(HelpScreen(self.key_help(), notes=notes))

    def action_filter(self) -> None:
        """Ask which pending tasks to list."""
        if not self.monitor.celery.enabled:
            return

        def answered(text: str | None) -> None:
            if text is None:
                return
            self.task_filter = text
            if text:
                self._notice(f"listing only the pending tasks that contain {text!r}")
            else:
                self._notice("listing every pending task")
            self.refresh_view()

        self.push_screen(FilterPrompt(self.task_filter), callback=answered)

    def set_zoom(self, part: str | None) -> None:
        """Give the whole screen to `part` (one of `ZOOMS`), or back to all (None)."""
        self.zoomed = part if part in ZOOMS else None
        self.refresh_view()

    def action_zoom(self) -> None:
        """Cycle the zoom: masters, timeline, pending tasks (with the Celery side), none."""
        order: list[str | None] = [
            part for part in ZOOMS if part != "pending" or self.monitor.celery.enabled
        ]
        order.append(None)
        index = order.index(self.zoomed) if self.zoomed in order else len(order) - 1
        self.set_zoom(order[(index + 1) % len(order)])

    def _toggle(self, part: str) -> None:
        if part in self.hidden:
            self.hidden.discard(part)
        else:
            self.hidden.add(part)
        if self.zoomed is not None:
            self.zoomed = None
        self.refresh_view()

    def action_toggle_timeline(self) -> None:
        """Hide the timeline, or show it again."""
        self._toggle("timeline")

    def action_toggle_pending(self) -> None:
        """Hide the pending tasks, or show them again."""
        if self.monitor.celery.enabled:
            self._toggle("pending")

    def action_clear_history(self) -> None:
        """Clear the events listed and the incidents closed so far from the screen; the
        core and the journal keep them (an open incident stays)."""
        self.cleared_at = self.monitor.clock()
        self._notice("cleared past events and incidents from the screen; the journal keeps them")
        self.refresh_view()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """The command palette: Textual's own commands and every hawatch action (the
        failover only where it is allowed, see `check_action`)."""
        yield from super().get_system_commands(screen)
        yield from self._hawatch_commands()

    def _hawatch_commands(self) -> Iterator[SystemCommand]:
        if self.failover_allowed and self._panels:
            chosen = self.selected_master()
            yield SystemCommand(
                f"Fail over {chosen}",
                "Ask one sentinel to fail the chosen master over (asks for a confirmation)",
                self.action_failover,
            )
        yield SystemCommand(
            "Export the incident",
            "Write the incident as Markdown and the screen as SVG",
            self.action_export,
        )
        for name in sorted(self._panels):
            yield SystemCommand(
                f"Choose master {name}",
                "Shown in full; the export acts on it",
                lambda name=name: self.choose_master(name),
            )
        if self.monitor.celery.enabled:
            yield SystemCommand(
                "Filter pending tasks",
                "Show only the pending tasks that contain some text",
                self.action_filter,
            )
            yield SystemCommand(
                "Toggle the pending tasks",
                "Hide or show the pending tasks",
                self.action_toggle_pending,
            )
        yield SystemCommand(
            "Toggle the timeline", "Hide or show the timeline", self.action_toggle_timeline
        )
        for part in ZOOMS:
            if part == "pending" and not self.monitor.celery.enabled:
                continue
            yield SystemCommand(
                f"Zoom: {part}",
                f"Give the whole screen to the {part}",
                lambda part=part: self.set_zoom(part),
            )
        if self.zoomed is not None:
            yield SystemCommand("Zoom: none", "Show every part again", lambda: self.set_zoom(None))
        yield SystemCommand(
            "Clear history",
            "Clear the events and past incidents from the screen (not the journal)",
            self.action_clear_history,
        )
        yield SystemCommand("Help: all keys", "Every key and what it does", self.action_help)

    def action_failover(self) -> None:
        """Ask (with a modal that defaults to Cancel) before failing the master over."""
        if not self.failover_allowed:
            return  # gated in check_action too; never reachable through any other path
        if self._failover_pending is not None:
            self._notice(
                f"a failover request is already on its way to {self._failover_pending}; "
                "wait for its answer",
                warning=True,
            )
            return
        name = self.selected_master()
        if name is None:
            self._notice("no master is known yet: there is nothing to fail over", warning=True)
            return
        snapshot = self.cluster_state.snapshot(self.monitor.clock())
        view = snapshot.master(name)
        if view is None:
            self._notice(f"no sentinel has reported {name} yet: cannot fail it over", warning=True)
            return
        sentinel = choose_sentinel(view, snapshot, prefer=self.settings.sentinels)
        if sentinel is None:
            self._notice(
                f"no sentinel is reachable: cannot ask for a failover of {name}; "
                "see the status line for why",
                warning=True,
            )
            return
        address = view.address

        def answered(confirmed: bool | None) -> None:
            if confirmed and self.failover_allowed:
                self._failover_pending = sentinel
                self._notice(f"asking sentinel {sentinel} to fail over {name} …")
                self.request_failover(name, sentinel)

        self.push_screen(ConfirmFailover(name, address, sentinel), callback=answered)

    @work(
        exit_on_error=False,
        thread=False,
        group="failover",
        description="Asking one sentinel to fail over",
    )
    async def request_failover(self, master: str, sentinel: str) -> None:
        """Send ``SENTINEL FAILOVER`` to one sentinel, record it, and post the answer."""
        if not self.failover_allowed:
            return
        outcome = await ask_failover(self.settings, master, sentinel, timeout=FAILOVER_TIMEOUT)
        self.post_message(
            EventArrived(
                FailoverRequested(
                    ts=time.time(),
                    master=master,
                    sentinel=sentinel,
                    reply=outcome.reply,
                    accepted=outcome.accepted,
                )
            )
        )
        problem = await asyncio.to_thread(
            audit_failover,
            self.settings,
            master=master,
            sentinel=sentinel,
            reply=outcome.reply,
            accepted=outcome.accepted,
        )
        self.post_message(FailoverAnswered(outcome, problem))

    def on_failover_answered(self, message: FailoverAnswered) -> None:
        """Show the sentinel's answer as a sentence, and any audit log problem after it."""
        self._failover_pending = None
        outcome = message.outcome
        sentence = outcome.sentence
        if message.audit_problem:
            sentence += f". WARNING: {message.audit_problem}"
        self._notice(sentence, warning=not outcome.accepted or bool(message.audit_problem))
        self.refresh_view()
