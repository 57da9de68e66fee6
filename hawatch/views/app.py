"""The live TUI: who is master of each name, for how long, and which sentinels answer.

The sentinel poller runs in a worker and posts every event as a message; the
app folds them into a `ClusterState` and, four times a second, renders one
snapshot into the widgets. Rendering on a tick rather than per event keeps the
screen responsive however many events arrive, and keeps redraws cheap on a slow
SSH link. Widgets never do I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from typing import ClassVar

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.content import Content
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from hawatch.core.cluster import ClusterSnapshot, ClusterState, MasterView
from hawatch.core.events import Event
from hawatch.settings import Settings
from hawatch.sources.sentinel import SentinelPoller
from hawatch.views.messages import EventArrived
from hawatch.views.styles import stylesheet_path

__all__ = [
    "HawatchApp",
    "MasterPanel",
    "format_duration",
    "master_lines",
    "status_line",
]

WAITING = "Asking the sentinels …"
RENDER_INTERVAL = 0.25
"""Seconds between two renders of the core's snapshot (4 Hz)."""

_FLAG_WORDS = {
    "o_down": "WARNING: objectively down (o_down): the sentinels agree it is down",
    "s_down": "WARNING: subjectively down (s_down) for at least one sentinel",
    "failover_in_progress": "failover in progress",
    "disconnected": "a sentinel has no link to it right now (disconnected)",
}


def format_duration(seconds: float) -> str:
    """A short, human duration: ``12s``, ``3m 05s``, ``2h 07m``, ``1d 04h``."""
    total = max(0, int(seconds))
    if total < 60:
        return f"{total}s"
    minutes, secs = divmod(total, 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes:02d}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours:02d}h"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def master_lines(view: MasterView, snapshot: ClusterSnapshot) -> list[str]:
    """The lines of one master's panel after its name; warnings start with ``WARNING:``."""
    held = format_duration(view.age)
    if view.switched:
        held_line = f"master {view.address}   held for {held} (was {view.previous})"
    else:
        held_line = f"master {view.address}   held for at least {held}"
    lines = [held_line]
    if view.known == 0:
        lines.append(
            "WARNING: no reachable sentinel reports this master; "
            f"last report {format_duration(snapshot.now - view.last_report)} ago"
        )
        return lines
    if view.agree == view.known:
        lines.append(f"sentinels {view.agree}/{view.known} agree")
    else:
        sentinel, address, epoch = view.dissent[0]
        said = f"{sentinel} says {address}" + ("" if epoch is None else f" (epoch {epoch})")
        more = f" and {len(view.dissent) - 1} more" if len(view.dissent) > 1 else ""
        lines.append(f"WARNING: sentinels disagree: {view.agree}/{view.known} agree; {said}{more}")
    silent = len(snapshot.reachable) - view.known
    if silent > 0:
        lines.append(
            f"WARNING: only {view.known} of {len(snapshot.reachable)} answering "
            "sentinels report this master"
        )
    lines.extend(_FLAG_WORDS[flag] for flag in view.flags if flag in _FLAG_WORDS)
    return lines


def status_line(snapshot: ClusterSnapshot, sentinel_count: int) -> str:
    """The status bar: which sentinels do not answer and why, or that all is watched."""
    if not snapshot.unreachable:
        return f"watching {_plural(sentinel_count, 'sentinel')}"
    total = max(sentinel_count, len(snapshot.unreachable) + len(snapshot.reachable))
    parts = [
        f"{down.sentinel} {down.reason} (for {format_duration(down.age)})"
        for down in snapshot.unreachable
    ]
    return f"{len(snapshot.unreachable)} of {total} sentinels unreachable: " + "; ".join(parts)


class MasterPanel(Static):
    """One master name: its current address, how long it has held it, and agreement."""

    def __init__(self, master: str) -> None:
        super().__init__(markup=False)
        self.master = master
        self._shown: tuple[str, ...] = ()

    def show(self, lines: list[str]) -> None:
        """Display `lines` under the master's name; does nothing if they are unchanged."""
        if tuple(lines) == self._shown:
            return
        self._shown = tuple(lines)
        body = "\n".join(lines)
        self.update(Content.assemble((self.master, "bold"), "\n", body))
        self.set_class(any(line.startswith("WARNING") for line in lines), "warning")

    @property
    def text(self) -> str:
        """Everything the panel shows, as plain text (for tests and accessibility)."""
        return "\n".join((self.master, *self._shown))


class HawatchApp(App[None]):
    """Watch the sentinels of `settings` and show who is master, live."""

    CSS_PATH = str(stylesheet_path())
    TITLE = "hawatch"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        settings: Settings,
        *,
        subtitle: str | None = None,
        poll_interval: float = 0.5,
    ) -> None:
        super().__init__()
        self.settings = settings
        self.poll_interval = poll_interval
        self.cluster_state = ClusterState()
        """The core, fed by `EventArrived` messages; rendered on a tick."""
        self._panels: dict[str, MasterPanel] = {}
        self._watcher_failure: str | None = None
        self._status_text = ""
        self.sub_title = subtitle if subtitle is not None else self._default_subtitle()

    def _default_subtitle(self) -> str:
        addresses = ", ".join(str(address) for address in self.settings.sentinels)
        if len(addresses) <= 40:
            return addresses
        return _plural(len(self.settings.sentinels), "sentinel")

    def compose(self) -> ComposeResult:
        """Header, the master panels, the status line and the key bar."""
        yield Header()
        masters = VerticalScroll(id="masters")
        masters.border_title = "masters"
        with masters:
            yield Static(WAITING, id="waiting", markup=False)
        yield Static("", id="status", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        """Start watching the sentinels and rendering snapshots."""
        self._exit_on_hangup()
        self.poll_sentinels()
        self.refresh_view()
        self.set_interval(RENDER_INTERVAL, self.refresh_view)

    def _exit_on_hangup(self) -> None:
        """Quit cleanly on SIGTERM or SIGHUP (an SSH session that died), like on `q`.

        Whoever started hawatch then gets to clean up (the demo stops its
        cluster); otherwise the process would die at once or linger.
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.exit)

    @work(
        exclusive=True,
        exit_on_error=False,
        group="sentinel",
        description="Polling the sentinels",
    )
    async def poll_sentinels(self) -> None:
        """Run the sentinel poller on the event loop until the app exits."""
        poller = SentinelPoller(self.settings, self._emit, interval=self.poll_interval)
        await poller.run()

    def _emit(self, event: Event) -> None:
        self.post_message(EventArrived(event))

    def on_event_arrived(self, message: EventArrived) -> None:
        """Feed one source event to the core; the next tick shows its effect."""
        self.cluster_state.apply(message.event)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Say so on screen if the sentinel watcher ever stops on an error."""
        if event.worker.group == "sentinel" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self._watcher_failure = (
                f"the sentinel watcher stopped ({type(error).__name__}: "
                f"{self.settings.redact(str(error))}); restart hawatch"
            )
            self.refresh_view()

    def refresh_view(self) -> None:
        """Render one snapshot of the core into the widgets, changing only what changed."""
        snapshot = self.cluster_state.snapshot(time.time())
        with self.batch_update():
            self._render_masters(snapshot)
            self._render_status(snapshot)

    def _render_masters(self, snapshot: ClusterSnapshot) -> None:
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
        waiting = self.query_one("#waiting", Static)
        if self._panels:
            waiting.display = False
        elif answered:
            waiting.update("The sentinels answer but monitor no master.")
        elif snapshot.unreachable:
            waiting.update(f"{WAITING} none has answered yet.")
        for name, panel in self._panels.items():
            view = snapshot.master(name)
            if view is None:
                panel.show(["WARNING: no sentinel has reported this master yet"])
            else:
                panel.show(master_lines(view, snapshot))

    def _render_status(self, snapshot: ClusterSnapshot) -> None:
        status = self.query_one("#status", Static)
        text = status_line(snapshot, len(self.settings.sentinels))
        if self._watcher_failure:
            text = f"WARNING: {self._watcher_failure}. {text}"
        if text != self._status_text:
            self._status_text = text
            status.update(text)
        status.set_class(bool(snapshot.unreachable or self._watcher_failure), "warning")
