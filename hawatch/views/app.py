"""The live TUI: who is master of each name, how healthy it is, and what just happened.

A `Monitor` runs every source (Sentinel, and the Celery side when asked) in a
worker and folds their events into the core (`ClusterState`, `TaskTracker`,
queue depths); four times a second the app renders one snapshot of the core
into the widgets. Rendering on a tick rather than per event keeps the
screen responsive however many events arrive, and keeps redraws cheap on a slow
SSH link. Widgets never do I/O.

The failover key (``f``) is the one action that changes the cluster. It is
declared dangerous in one place, `HawatchApp.check_action`, which removes it
entirely in read-only mode (no key, no footer entry, no palette entry); when it
is allowed, a modal that defaults to Cancel names the master, its address and
the one sentinel that will be asked. The request runs in a worker, its answer is
shown as a sentence on the notice line, fed to the core as `FailoverRequested`
and appended to the audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from pathlib import Path, PurePath
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from hawatch.audit import audit_failover
from hawatch.core.cluster import ClusterSnapshot, ClusterState
from hawatch.core.events import FailoverRequested
from hawatch.core.incidents import IncidentsSnapshot
from hawatch.journal import Journal, state_dir
from hawatch.monitor import CeleryOptions, Monitor
from hawatch.settings import Settings
from hawatch.views.confirm import ConfirmFailover
from hawatch.views.failover import FAILOVER_TIMEOUT, ask_failover, choose_sentinel
from hawatch.views.messages import EventArrived, FailoverAnswered
from hawatch.views.options import THEME_NAMES, ScreenOptions
from hawatch.views.panel import (
    MIN_EVENTS,
    MasterPanel,
    format_clock,
    format_duration,
    panel_text,
)
from hawatch.views.pending import STYLESHEET as PENDING_STYLESHEET
from hawatch.views.pending import PendingPanel
from hawatch.views.styles import stylesheet_path
from hawatch.views.timeline import STYLESHEET as TIMELINE_STYLESHEET
from hawatch.views.timeline import TimelinePanel

__all__ = [
    "HawatchApp",
    "MasterPanel",
    "format_duration",
    "status_line",
]

WAITING = "Asking the sentinels …"
RENDER_INTERVAL = 0.25
"""Seconds between two renders of the core's snapshot (4 Hz)."""
MAX_EVENTS = 30
"""The most events one panel shows, however tall the terminal."""
FULL_TIMELINE_HEIGHT = 40
"""Terminal rows from which the timeline shows its big figure, throughput and history."""
MAX_TASK_ROWS = 30
"""The most pending tasks the PENDING panel lists (the counts are always exact)."""
MAX_WORKER_ROWS = 10


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
    ]
    TITLE = "hawatch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
        Binding("f", "failover", "Fail over"),
        Binding("e", "export", "Export"),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        subtitle: str | None = None,
        topology_interval: float = 2.0,
        celery: CeleryOptions | None = None,
        journal: Journal | None = None,
        screen: ScreenOptions | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.options = screen or ScreenOptions()
        """Theme, bell, refresh period and whether the failover action is offered."""
        self.theme = THEME_NAMES[self.options.theme]
        self.topology_interval = topology_interval
        self.monitor = Monitor(
            settings, celery=celery, topology_interval=topology_interval, journal=journal
        )
        """The sources and the core; rendered on a tick."""
        self._panels: dict[str, MasterPanel] = {}
        self._watcher_failure: str | None = None
        self._status_text = ""
        self._notice_text = ""
        self._failover_pending: str | None = None
        """The sentinel a failover request is on its way to, while it is."""
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
        yield TimelinePanel(id="timeline")
        yield PendingPanel(id="pending")
        yield Static("", id="notice", markup=False)
        yield Static("", id="status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Start watching the sentinels and rendering snapshots."""
        self._exit_on_hangup()
        self.query_one("#notice", Static).display = False
        self.query_one(PendingPanel).display = self.monitor.celery.enabled
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
        try:
            with self.batch_update():
                self._render_timeline(incidents)
                self._render_pending(incidents)
                self._render_masters(snapshot)
                self._render_status(snapshot)
        except NoMatches:
            return  # a tick while the app is closing: its widgets are already gone

    def _render_masters(self, snapshot: ClusterSnapshot) -> None:
        container = self.query_one("#masters", VerticalScroll)
        names = {view.name for view in snapshot.masters}
        added = False
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
            added = True
        if added and self.screen is self.screen_stack[0]:
            focused = self.focused
            if focused is None or not isinstance(focused, MasterPanel):
                # The first master by name is the one the failover key acts on by default.
                self._panels[min(self._panels)].focus(scroll_visible=False)
        waiting = self.query_one("#waiting", Static)
        if self._panels:
            waiting.display = False
        elif answered:
            waiting.update("The sentinels answer but monitor no master.")
        elif snapshot.unreachable:
            waiting.update(f"{WAITING} none has answered yet.")
        if not self._panels:
            return
        texts = {name: panel_text(name, snapshot.master(name), snapshot) for name in self._panels}
        # Share the rows left after the essentials between the panels' event lists,
        # so a taller terminal shows more history and 80x24 still shows the newest.
        # The panel's left bar and padding take 2 columns, a scroll bar 2 more.
        width = container.content_size.width - 4 if container.content_size.width else 73
        height = container.content_size.height or max(1, self.size.height - 6)
        fixed = sum(text.fixed_rows(width) for text in texts.values()) + len(texts) - 1
        events = (height - fixed) // len(texts)
        events = max(MIN_EVENTS, min(MAX_EVENTS, events))
        for name, panel in self._panels.items():
            panel.show(texts[name], events=events)

    def _render_timeline(self, incidents: IncidentsSnapshot) -> None:
        """The gap: compact (two lines, no border) below `FULL_TIMELINE_HEIGHT` rows."""
        monitor = self.monitor
        now = incidents.now
        compact = self.size.height < FULL_TIMELINE_HEIGHT
        panel = self.query_one(TimelinePanel)
        panel.set_class(compact, "compact")
        started = monitor.tasks.started_history(now, 180) if monitor.celery.enabled else ()
        # Compact: the last incident's row once it closed, none while one is open.
        rows = (1 if incidents.history and not incidents.open else 0) if compact else None
        panel.show(incidents, started, now, compact=compact, rows=rows)

    def _render_pending(self, incidents: IncidentsSnapshot) -> None:
        """The PENDING panel: more task rows, and the workers, on taller terminals."""
        if not self.monitor.celery.enabled:
            return
        monitor = self.monitor
        fault_at = monitor.tasks_fault_at(incidents)
        tasks = monitor.tasks.snapshot(incidents.now, fault_at=fault_at, limit=MAX_TASK_ROWS)
        spare = max(0, self.size.height - 24)
        rows = min(MAX_TASK_ROWS, 3 + spare // 2)
        worker_rows = min(MAX_WORKER_ROWS, spare // 4)
        self.query_one(PendingPanel).show(
            tasks, list(monitor.queues.values()), rows=rows, worker_rows=worker_rows
        )

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
            bool(
                snapshot.unreachable
                or self._watcher_failure
                or problems
            ),
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
        """Remove the failover action entirely in read-only mode (key, footer, key panel)."""
        if action == "failover":
            return self.failover_allowed
        return True

    @property
    def failover_allowed(self) -> bool:
        """Whether the failover action exists at all: never read-only, never when hidden."""
        return self.options.allow_failover and not self.settings.read_only

    def selected_master(self) -> str | None:
        """The master the failover key acts on: the panel in focus, else the first one."""
        focused = self.focused
        while focused is not None and not isinstance(focused, MasterPanel):
            parent = focused.parent
            focused = parent if isinstance(parent, MasterPanel) else None
        if isinstance(focused, MasterPanel):
            return focused.master
        return min(self._panels) if self._panels else None

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
