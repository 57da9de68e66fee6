"""The screen, replaying a journal: the live TUI fed from a file instead of the sources.

`ReplayApp` is `HawatchApp` with its sources replaced by a player
(`hawatch.replay.Player`): the journal's lines are fed to the core at ``speed``
times their recorded pace, through the same `hawatch.replay.Replayer` that
``--report`` uses (so the screen computes the figures the live run computed), and
the screen renders at the replay's clock (`Monitor.clock`): the journal time being
replayed, advancing smoothly between lines and stopped while paused.

It is always read-only: its settings say so, which removes the failover key
everywhere (`HawatchApp.check_action`); there is no sentinel to ask anyway.

Keys: space pauses and resumes, ``n`` steps one event (pausing first), ``+`` and
``-`` double and halve the speed. The subtitle says what plays, how fast, at which
journal time, and whether it is paused or over; at the end of the journal the
screen stays open on the last state.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

from textual import work
from textual.binding import Binding, BindingType
from textual.worker import Worker, WorkerState

from hawatch.core.events import Event, SessionStarted
from hawatch.journal import read_journal
from hawatch.monitor import Monitor
from hawatch.replay import Player, Replayer, opening_session, replay_settings
from hawatch.views.app import HawatchApp
from hawatch.views.options import ScreenOptions
from hawatch.views.panel import format_clock, format_duration

__all__ = ["FRAME", "ReplayApp"]

FRAME = 0.05
"""Seconds between two looks at which lines are due."""
HEADER_SIDES = 18
"""Columns of the header that its title cannot use (the icon, the clock's space)."""


class ReplayApp(HawatchApp):
    """Play the journal at `path` into the screen, read-only.

    `session`: the journal's opening session, when the caller already read it
    (`hawatch.replay.opening_session`); else it is read here. `wall`: the clock the
    player runs on (monotonic seconds; tests may give their own).
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("space", "toggle_pause", "Pause"),
        Binding("n", "step", "Step"),
        Binding("plus,equals_sign", "faster", "Faster", key_display="+"),
        Binding("minus", "slower", "Slower", key_display="-"),
    ]

    def __init__(
        self,
        path: Path | str,
        *,
        speed: float = 1.0,
        paused: bool = False,
        session: SessionStarted | None = None,
        wall: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        if session is None:
            session = opening_session(read_journal(self.path))
        self.replayer = Replayer(session)
        self._wall = wall
        self.player = Player(read_journal(self.path), speed=speed, paused=paused)
        super().__init__(
            replay_settings(),
            subtitle=f"replay of {self.path.name} at {speed:g}x",
            celery=self.replayer.monitor.celery,
            screen=ScreenOptions(bell=False),
        )
        self._use(self.replayer.monitor)
        self._ended = False

    def _use(self, monitor: Monitor) -> None:
        """Render `monitor` (the replayer's current run) at the replay's clock."""
        monitor.clock = self.replay_clock
        self.monitor = monitor

    def replay_clock(self) -> float:
        """The journal time the screen shows: the player's clock."""
        now = self.player.now(self._wall())
        return now if now is not None else 0.0

    @property
    def ended(self) -> bool:
        """True once the whole journal has been fed."""
        return self._ended

    # -- feeding ------------------------------------------------------------------------

    @work(
        exclusive=True,
        exit_on_error=False,
        group="replay",
        description="Replaying a journal",
    )
    async def poll_sentinels(self) -> None:
        """Feed the lines that are due, a frame at a time, until the journal ends."""
        while not self._ended:
            self._feed(self.player.due(self._wall()))
            await asyncio.sleep(FRAME)

    def _feed(self, events: list[Event]) -> None:
        """Feed lines the player handed out; at the end of the journal, say so (and, once,
        which lines could not be read)."""
        for event in events:
            self.replayer.feed(event)
        ended = self.player.ended
        if self.replayer.monitor is not self.monitor:
            self._use(self.replayer.monitor)  # a second run in the same file
        if ended and not self._ended:
            self._end()

    def _end(self) -> None:
        self._ended = True
        self.replayer.finish()
        self.player.pause(self._wall())
        words = "end of journal"
        skipped = self.player.skipped
        if skipped >= 1:
            words += f" ({format_duration(skipped)} without events cut short)"
        problem = self.player.failure or self.player.problems.sentence(self.path.name)
        if problem:
            self._notice(f"{words}; {problem.rstrip('.')}", warning=True)
        else:
            self._notice(words)
        self._update_subtitle()
        self.refresh_view()

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Say so on screen if the replay stops on a bug; the rest as the live screen."""
        if event.worker.group == "replay" and event.state == WorkerState.ERROR:
            error = event.worker.error
            self._notice(
                f"the replay stopped ({type(error).__name__}: {error}); the screen shows "
                "the journal up to there",
                warning=True,
            )
            return
        super().on_worker_state_changed(event)

    # -- keys ---------------------------------------------------------------------------

    def action_toggle_pause(self) -> None:
        """Space: pause, or play on."""
        if self._ended:
            return
        wall = self._wall()
        if self.player.paused:
            self.player.resume(wall)
        else:
            self.player.pause(wall)
        self._update_subtitle()
        self.refresh_view()

    def action_step(self) -> None:
        """n: feed the next event and stay paused there."""
        if self._ended:
            return
        self._feed(self.player.step(self._wall()))
        self._update_subtitle()
        self.refresh_view()

    def action_faster(self) -> None:
        """+: twice as fast."""
        self.player.set_speed(self.player.speed * 2, self._wall())
        self._update_subtitle()

    def action_slower(self) -> None:
        """-: half as fast."""
        self.player.set_speed(self.player.speed / 2, self._wall())
        self._update_subtitle()

    # -- rendering ----------------------------------------------------------------------

    def refresh_view(self) -> None:
        """The live screen's render, and the subtitle's clock."""
        self._update_subtitle()
        super().refresh_view()

    def _update_subtitle(self) -> None:
        state = ""
        if self._ended:
            state = " (end of journal)"
        elif self.player.paused:
            state = " (paused)"
        text = f"replay of {self.path.name} at {self.player.speed:g}x{state}"
        now = self.player.now(self._wall())
        if now is not None:
            # The journal time, when the header has room for it (80 columns: the icon and
            # the clock's space take 18, the title and its dash a few more).
            with_clock = f"{text} · {format_clock(now)}"
            width = self.size.width or 80
            if len(with_clock) + len(self.title) + 3 <= width - HEADER_SIDES:
                text = with_clock
        if text != self.sub_title:
            self.sub_title = text
