"""The master role panel: one master name, its address and health, its replicas,
its sentinels, warnings in words and the latest Sentinel events.

The text is computed by pure functions (`panel_text`) from a `MasterView` and
its `ClusterSnapshot`, so it can be tested without a screen. `MasterPanel` keeps
one child widget per part and updates a part only when its text changed: the
widgets are built once per master name and never rebuilt on a tick.

Every state is said in words (``OK``, ``WARNING``, ``DOWN`` ...), never by colour
alone, so the panel reads the same with ``NO_COLOR`` or on a 16-colour terminal.
The order of the parts is the order of importance: at 80x24 the address, the
health, the warnings and the newest events come first and stay on screen.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.content import Content
from textual.events import Click
from textual.message import Message
from textual.widgets import Static

from hawatch.core.cluster import ClusterSnapshot, MasterView, RecentEvent, ReplicaView

__all__ = [
    "MIN_EVENTS",
    "MasterPanel",
    "MastersList",
    "PanelText",
    "event_line",
    "format_bytes",
    "format_clock",
    "format_duration",
    "health_word",
    "master_summary",
    "panel_text",
    "replica_line",
    "replica_short",
]

MIN_EVENTS = 3
"""Events every panel shows at least, however small the terminal."""

_FLAG_WORDS = {
    "disconnected": "a sentinel has no link to this master right now (disconnected).",
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


def format_clock(ts: float) -> str:
    """The local wall-clock time of `ts` as ``HH:MM:SS``, as people read a log."""
    return time.strftime("%H:%M:%S", time.localtime(ts))


def format_bytes(count: int) -> str:
    """A byte count for a replication lag: ``0 B``, ``812 B``, ``12.5 KiB``, ``3.0 MiB``."""
    if count < 1024:
        return f"{count} B"
    value = float(count)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def health_word(view: MasterView | None) -> str:
    """One word (or two) for the master's state, the most serious first.

    ``NO REPORT`` when no reachable sentinel reports it, ``DOWN`` when the
    sentinels agree it is down (``o_down``), ``SUSPECT`` when one thinks so
    (``s_down``), ``FAILING OVER`` during a failover, ``WARNING`` when there is a
    warning to read, else ``OK``.
    """
    if view is None or view.known == 0:
        return "NO REPORT"
    if "o_down" in view.flags:
        return "DOWN"
    if "s_down" in view.flags:
        return "SUSPECT"
    if view.failover_in_progress:
        return "FAILING OVER"
    if view.warnings or view.agree < view.known:
        return "WARNING"
    return "OK"


def replica_line(replica: ReplicaView) -> str:
    """``replica 127.0.0.1:6380  link ok  lag 0 B`` and what else is worth knowing."""
    link = replica.link or "unknown"
    lag = "unknown" if replica.lag is None else format_bytes(replica.lag)
    parts = [f"replica {replica.address}", f"link {link}", f"lag {lag}"]
    if replica.priority == 0:
        parts.append("never promoted (priority 0)")
    if replica.says is not None and replica.says != "slave":
        parts.append(f"says it is {replica.says}")
    down = [flag for flag in replica.flags if flag in ("s_down", "o_down", "disconnected")]
    if down:
        parts.append(", ".join(down))
    return "  ".join(parts)


def replica_short(replica: ReplicaView) -> str:
    """``127.0.0.1:6380 ok`` and only what is not fine: the compact panel's replica entry."""
    parts = [replica.address, replica.link or "link unknown"]
    if replica.lag:
        parts.append(f"lag {format_bytes(replica.lag)}")
    if replica.priority == 0:
        parts.append("never promoted")
    if replica.says is not None and replica.says != "slave":
        parts.append(f"says {replica.says}")
    parts.extend(flag for flag in replica.flags if flag in ("s_down", "o_down", "disconnected"))
    return " ".join(parts)


def event_line(event: RecentEvent) -> str:
    """``12:03:04  +switch-master mymaster a → b  ×3`` (×N when N sentinels published it)."""
    times = f"  ×{event.sentinels}" if event.sentinels > 1 else ""
    return f"{format_clock(event.ts)}  {event.text}{times}"


@dataclass(frozen=True, slots=True)
class PanelText:
    """Everything one master panel says, part by part, as plain text."""

    name: str
    address: str | None
    health: str
    held: str
    sentinels: str
    warnings: tuple[str, ...]
    """Sentences, each shown after ``WARNING:``."""
    replicas: tuple[str, ...]
    events: tuple[str, ...]
    """Newest first."""
    replicas_short: str = ""
    """All the replicas on one line, for the compact panel."""
    held_short: str = ""
    """How long the role is held, in a few words, for the compact panel."""
    sentinel_rows: tuple[str, ...] = ()
    """One line per sentinel (what it says, or why it does not answer): tall terminals."""

    @property
    def title(self) -> str:
        """``mymaster   master 127.0.0.1:6379   OK``."""
        where = f"master {self.address}" if self.address else "master unknown"
        return f"{self.name}   {where}   {self.health}"

    def warning_lines(self) -> list[str]:
        """The warnings as shown: each one a sentence after ``WARNING:``."""
        return [f"WARNING: {warning}" for warning in self.warnings]

    def event_lines(self, limit: int) -> list[str]:
        """The newest `limit` events, or a line saying there is none yet."""
        if not self.events:
            return ["no Sentinel event seen yet"]
        shown = list(self.events[:limit])
        hidden = len(self.events) - len(shown)
        if hidden > 0 and shown:
            shown[-1] = f"… and {hidden} older (a taller terminal shows more)"
        return shown

    @property
    def held_and_sentinels(self) -> str:
        """The compact panel's second line: the sentinels, and how long the role is held."""
        return f"{self.sentinels} · {self.held_short}" if self.held_short else self.sentinels

    @property
    def replicas_line(self) -> str:
        """The compact panel's replica line."""
        return self.replicas_short or (self.replicas[0] if self.replicas else "")

    def fixed_rows(self, width: int, *, compact: bool = False) -> int:
        """Rows the panel needs without its events, at `width` columns (warnings wrap).

        `compact`: the held time and the sentinels share a line, and the replicas too.
        """
        width = max(20, width)
        rows = 3 if compact else 3 + len(self.replicas) + len(self.sentinel_rows)
        for line in self.warning_lines():
            rows += max(1, len(Content(line).wrap(width)))
        return rows

    def lines(self, events: int | None = None, *, compact: bool = False) -> list[str]:
        """Every line of the panel, in order (all events when `events` is None)."""
        limit = len(self.events) if events is None else events
        if compact:
            return [
                self.title,
                self.held_and_sentinels,
                *self.warning_lines(),
                self.replicas_line,
                *self.event_lines(max(1, limit)),
            ]
        return [
            self.title,
            self.held,
            self.sentinels,
            *self.sentinel_rows,
            *self.warning_lines(),
            *self.replicas,
            *self.event_lines(max(1, limit)),
        ]


def panel_text(name: str, view: MasterView | None, snapshot: ClusterSnapshot) -> PanelText:
    """What the panel of master `name` says at `snapshot.now` (`view` None: never reported)."""
    if view is None:
        return PanelText(
            name=name,
            address=None,
            health=health_word(None),
            held="no sentinel has reported this master yet",
            sentinels=_sentinels_line(None, snapshot),
            warnings=_unreachable_warnings(snapshot),
            replicas=(),
            events=(),
        )
    held = format_duration(view.age)
    if view.switched:
        held_line = f"held for {held} (was {view.previous}, switched at {format_clock(view.since)})"
    else:
        held_line = f"held for at least {held} (master when hawatch started)"
    warnings: list[str] = []
    if view.known == 0:
        warnings.append(
            "no reachable sentinel reports this master; last report "
            f"{format_duration(snapshot.now - view.last_report)} ago."
        )
    elif len(snapshot.reachable) > view.known:
        warnings.append(
            f"only {view.known} of {len(snapshot.reachable)} answering sentinels "
            "report this master."
        )
    warnings.extend(view.warnings)
    warnings.extend(_FLAG_WORDS[flag] for flag in view.flags if flag in _FLAG_WORDS)
    warnings.extend(_unreachable_warnings(snapshot))
    replicas = [replica_line(replica) for replica in view.replicas]
    short = [replica_short(replica) for replica in view.replicas]
    if view.hidden_replicas:
        hidden = view.hidden_replicas
        replicas.append(
            f"{hidden} hidden replica{'s' if hidden > 1 else ''} (replica-announced no)"
        )
        short.append(f"{hidden} hidden")
    if not replicas:
        replicas.append("replicas: none listed yet")
    return PanelText(
        name=name,
        address=view.address,
        health=_worst(health_word(view), warnings),
        held=held_line,
        sentinels=_sentinels_line(view, snapshot),
        warnings=tuple(warnings),
        replicas=tuple(replicas),
        events=tuple(event_line(event) for event in reversed(view.events)),
        replicas_short=("replicas " + " · ".join(short)) if short else "",
        sentinel_rows=_sentinel_rows(view, snapshot),
        held_short=f"held {held}, was {view.previous}" if view.switched else f"held ≥ {held}",
    )


def _sentinel_rows(view: MasterView, snapshot: ClusterSnapshot) -> tuple[str, ...]:
    """``sentinel 127.0.0.1:26379  agrees`` (or what it names instead, or why it is silent)."""
    dissent = {sentinel: (where, epoch) for sentinel, where, epoch in view.dissent}
    rows: list[str] = []
    for sentinel in snapshot.reachable:
        if sentinel in dissent:
            where, epoch = dissent[sentinel]
            said = f"names {where}" + (f" (epoch {epoch})" if epoch is not None else "")
            rows.append(f"sentinel {sentinel}  DISAGREES: {said}")
        else:
            rows.append(f"sentinel {sentinel}  answers")
    rows.extend(
        f"sentinel {down.sentinel}  UNREACHABLE for {format_duration(down.age)}: {down.reason}"
        for down in snapshot.unreachable
    )
    return tuple(rows)


def _worst(word: str, warnings: list[str]) -> str:
    """`word`, or ``WARNING`` when it says OK while there are warnings to read."""
    return "WARNING" if word == "OK" and warnings else word


def _sentinels_line(view: MasterView | None, snapshot: ClusterSnapshot) -> str:
    """``sentinels 3/3 agree, 3 known, quorum 2 OK``."""
    if view is None or view.known == 0:
        answering = len(snapshot.reachable)
        return f"sentinels: none reports it ({answering} answering)"
    parts = [f"sentinels {view.agree}/{view.known} agree"]
    if view.sentinels > view.known:
        parts.append(f"{view.sentinels} known, {view.sentinels - view.known} not answering")
    if view.quorum is not None:
        verdict = {True: "OK", False: "NOT REACHABLE", None: ""}[view.quorum_ok]
        parts.append(f"quorum {view.quorum} {verdict}".rstrip())
    elif view.quorum_ok is not None:
        parts.append("quorum OK" if view.quorum_ok else "quorum NOT REACHABLE")
    return ", ".join(parts)


def _unreachable_warnings(snapshot: ClusterSnapshot) -> tuple[str, ...]:
    """The sentinels that do not answer, since when and why, in one sentence."""
    if not snapshot.unreachable:
        return ()
    return (
        "; ".join(
            f"{down.sentinel} unreachable since {format_clock(down.since)}: {down.reason}"
            for down in snapshot.unreachable
        ),
    )


class _Part(Static):
    """One part of a master panel; updated only when its text changes."""

    def __init__(self, classes: str) -> None:
        super().__init__("", markup=False, classes=classes)
        self.shown: str | None = None

    def show(self, text: str | Content) -> None:
        """Display `text`; hide the part when it is empty; do nothing when unchanged."""
        plain = text.plain if isinstance(text, Content) else text
        if plain == self.shown:
            return
        self.shown = plain
        self.update(text)
        self.display = bool(plain)


class MasterPanel(Vertical):
    """One master name: address and health, how long it holds the role, sentinels,
    warnings, replicas and the newest Sentinel events.

    The chosen one (the master the failover key acts on) has the class ``chosen``;
    clicking a panel chooses it (`MasterPanel.Chosen`).
    """

    class Chosen(Message):
        """The operator clicked the panel of `master`."""

        def __init__(self, master: str) -> None:
            super().__init__()
            self.master = master

    def __init__(self, master: str) -> None:
        super().__init__()
        self.master = master
        self._lines: tuple[str, ...] = (master,)
        self._health = ""
        self._parts = {
            name: _Part(name)
            for name in ("title", "held", "sentinels", "warnings", "replicas", "events")
        }

    def compose(self) -> ComposeResult:
        """The parts, in order of importance (the first ones stay visible at 80x24)."""
        yield from self._parts.values()

    def on_click(self) -> None:
        """Choose this master (the mouse is optional: ``m`` does the same)."""
        self.post_message(self.Chosen(self.master))

    def show(self, text: PanelText, *, events: int, compact: bool = False) -> None:
        """Display `text` with at most `events` events; only changed parts are redrawn.

        `compact`: two lines fewer and one line for all replicas (short terminals).
        """
        lines = tuple(text.lines(events, compact=compact))
        if lines == self._lines:
            return
        self._lines = lines
        title = Content.assemble(
            (text.name, "bold"),
            "   ",
            f"master {text.address}" if text.address else "master unknown",
            "   ",
            (text.health, "bold reverse" if text.health != "OK" else "bold"),
        )
        parts = self._parts
        parts["title"].show(title)
        parts["held"].show(text.held_and_sentinels if compact else text.held)
        parts["sentinels"].show("" if compact else "\n".join((text.sentinels, *text.sentinel_rows)))
        parts["warnings"].show("\n".join(text.warning_lines()))
        parts["replicas"].show(text.replicas_line if compact else "\n".join(text.replicas))
        parts["events"].show("\n".join(text.event_lines(events)))
        self.set_class(text.health != "OK", "warning")
        self._health = text.health

    @property
    def health(self) -> str:
        """The health word last shown (``OK``, ``WARNING``, ``DOWN`` ...)."""
        return self._health

    @property
    def text(self) -> str:
        """Everything the panel shows, as plain text (for tests and accessibility)."""
        return "\n".join(self._lines)


def master_summary(text: PanelText, *, chosen: bool, incident: str | None = None) -> str:
    """``▶ mymaster  127.0.0.1:6379  OK``: one master in the list of all of them.

    The arrow marks the chosen master (the one the failover key acts on), so the
    choice is visible without colour; `incident`, when one is open for it, follows
    (``INCIDENT: gap 12.0s and counting``).
    """
    marker = "▶" if chosen else " "
    line = f"{marker} {text.name}  {text.address or 'address unknown'}  {text.health}"
    return f"{line}  INCIDENT: {incident}" if incident else line


class MastersList(Static):
    """Every master the sentinels monitor, one line each with its health; the chosen one
    marked. Shown when there is more than one; clicking a line chooses that master."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", markup=False, id=id)
        self.names: tuple[str, ...] = ()
        self.shown = ""

    def show(
        self,
        texts: list[PanelText],
        chosen: str | None,
        incidents: Mapping[str, str] | None = None,
    ) -> None:
        """Display one line per master in `texts` (in order), with its open incident in a
        few words (`incidents`: name → words); redraw only on a change."""
        open_ = incidents or {}
        lines = [
            master_summary(text, chosen=text.name == chosen, incident=open_.get(text.name))
            for text in texts
        ]
        plain = "\n".join(lines)
        self.names = tuple(text.name for text in texts)
        if plain == self.shown:
            return
        self.shown = plain
        parts = []
        for line, text in zip(lines, texts, strict=True):
            style = "bold" if text.name == chosen else ""
            # The line is `master_summary`'s: the health word, then any incident.
            start = line.index(f"  {text.health}", len(text.name) + 2) + 2
            end = start + len(text.health)
            health_style = f"{style} reverse".strip() if text.health != "OK" else style
            parts.append(
                Content.assemble(
                    (line[:start], style),
                    (line[start:end], health_style),
                    (line[end:], "bold" if line[end:] else style),
                )
            )
        content = Content("\n").join(parts)
        self.update(content)

    def on_click(self, event: Click) -> None:
        """Choose the master on the clicked line."""
        row = event.y
        if 0 <= row < len(self.names):
            self.post_message(MasterPanel.Chosen(self.names[row]))
