"""The Prometheus panel: what Prometheus shows beside hawatch's live view.

The text is computed by pure functions from a `PrometheusSnapshot`
(`hawatch.core.prometheus`), so it is tested without a screen. At 80x24 the panel
takes one or two lines: Prometheus's master, its status, the sentinel and replica
counts and the age of its data, then the most important warning:

    prometheus: mymaster 127.0.0.1:6380 ok · 1.2s old · 3 sentinels, 2 replicas ok
    DISAGREES: Prometheus still shows 127.0.0.1:6379 as master of mymaster; the ...

Given more rows (`PrometheusPanel.show`'s ``rows``) it adds the other warnings,
the other masters, the quorum check and replica links per master, the instance
counts and the user's own PromQL with their values.

Every state is said in words (``UNREACHABLE``, ``DISAGREES``, ``WARNING``,
``NO DATA``, ``ODOWN``), never by colour alone, so the panel reads the same with
``NO_COLOR``. Each part is a `Line` redrawn only when its text changes.

Styles: ``styles/prometheus.tcss`` (`STYLESHEET`).
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Vertical

from hawatch.core.prometheus import PrometheusMaster, PrometheusSnapshot
from hawatch.views.panel import format_clock, format_duration
from hawatch.views.parts import Line

__all__ = [
    "PREFIX",
    "STYLESHEET",
    "WAITING",
    "PrometheusPanel",
    "PrometheusText",
    "alert_lines",
    "detail_lines",
    "master_line",
    "panel_text",
    "short_age",
    "status_word",
]

STYLESHEET = "prometheus.tcss"
"""The panel's stylesheet, in the top-level ``styles/`` folder (see `hawatch.views.styles`)."""

PREFIX = "prometheus:"
WAITING = f"{PREFIX} waiting for Prometheus's first answer"


def _count(value: float | None) -> str:
    """A count from a gauge: ``3``, or ``?`` when unknown."""
    if value is None or value != value:  # NaN
        return "?"
    return str(int(value)) if value == int(value) else f"{value:g}"


def short_age(age: float | None) -> str:
    """``1.2s old``, ``42s old``, ``3m 05s old``; ``age unknown`` without a sample time."""
    if age is None:
        return "age unknown"
    age = max(0.0, age)
    if age < 10:
        return f"{age:.1f}s old"
    return f"{format_duration(age)} old"


def status_word(master: PrometheusMaster) -> str:
    """``ok``, or Sentinel's word in capitals (``ODOWN``, ``SDOWN``), ``NOT OK``,
    ``NO DATA``: what Prometheus's sentinels say about the master."""
    if master.address is None:
        return "NO DATA"
    if master.master_status:
        word = master.master_status
        return word if word == "ok" else word.upper()
    if master.status is None:
        return "status unknown"
    return "ok" if master.status == 1 else "NOT OK"


def master_line(master: PrometheusMaster) -> str:
    """``prometheus: mymaster 127.0.0.1:6380 ok · 1.2s old · 3 sentinels, 2 replicas ok``.

    The sentinel and replica counts are Sentinel's own "ok" counts as the exporter
    reports them; the age is that of Prometheus's newest sample.
    """
    if master.address is None:
        seen = f" (last data {short_age(master.age)})" if master.age is not None else ""
        return f"{PREFIX} {master.name} NO DATA{seen}"
    parts = [
        f"{PREFIX} {master.name} {master.address} {status_word(master)}",
        short_age(master.age),
        f"{_count(master.ok_sentinels)} sentinels, {_count(master.ok_slaves)} replicas ok",
    ]
    return " · ".join(parts)


def _alerts(snapshot: PrometheusSnapshot) -> list[tuple[str, str]]:
    """(kind in capitals, sentence) for every alert, most important first."""
    alerts = []
    if snapshot.reachable is False and snapshot.reason:
        since = ""
        if snapshot.down_since is not None:
            since = f" since {format_clock(snapshot.down_since)}"
        alerts.append((f"UNREACHABLE{since}", snapshot.reason))
    alerts += [("DISAGREES", line) for line in snapshot.disagreements]
    alerts += [("WARNING", line) for line in snapshot.warnings]
    return alerts


def alert_lines(snapshot: PrometheusSnapshot) -> list[str]:
    """The warnings, most important first, each saying its kind in capitals:
    ``UNREACHABLE since 12:03:04: ...``, ``DISAGREES: ...``, ``WARNING: ...``."""
    return [f"{kind}: {sentence}" for kind, sentence in _alerts(snapshot)]


def _quorum(value: float | None) -> str:
    if value is None:
        return "quorum unknown"
    return "quorum ok" if value == 1 else "NO QUORUM"


def detail_lines(snapshot: PrometheusSnapshot) -> list[str]:
    """What a tall terminal has room for: per master the quorum check, the replica
    links and every address named; the instance counts; the user's PromQL values."""
    lines = []
    for master in snapshot.masters:
        if master.address is None:
            continue
        parts = [f"{master.name}: {_quorum(master.ckquorum)}"]
        if master.links_up is not None:
            parts.append(f"{master.links_up} replica links up to {master.address}")
        if len(master.addresses) > 1:
            parts.append(f"addresses named: {', '.join(master.addresses)}")
        if master.sample_ts is not None:
            parts.append(f"scraped {format_clock(master.sample_ts)}")
        lines.append(" · ".join(parts))
    counts = []
    if snapshot.nodes is not None:
        counts.append(f"{snapshot.nodes_up or 0}/{snapshot.nodes} instances up")
    if snapshot.sentinels_up is not None:
        counts.append(f"{snapshot.sentinels_up} sentinels")
    if counts:
        lines.append("instances (all Prometheus scrapes): " + " · ".join(counts))
    lines += [f"promql: {query} = {value}" for query, value in snapshot.extra]
    return lines


@dataclass(frozen=True, slots=True)
class PrometheusText:
    """The panel's text at one instant, part by part (each part's lines joined by newlines)."""

    masters: str
    alerts: str
    details: str

    @property
    def text(self) -> str:
        """Every part, as shown, top to bottom."""
        return "\n".join(part for part in (self.masters, self.alerts, self.details) if part)


def panel_text(snapshot: PrometheusSnapshot, rows: int = 2) -> PrometheusText:
    """What the panel shows in `rows` lines (at least one).

    In order of importance: the first master's line, the warnings (a count of those
    left out in the last one shown), the other masters, then the details. A part
    that does not fit is left out whole.
    """
    budget = max(1, rows)
    masters = [master_line(m) for m in snapshot.masters]
    if not masters:
        if snapshot.answered:
            masters = [f"{PREFIX} no Sentinel master in Prometheus's data"]
        elif snapshot.reachable is False:
            masters = [f"{PREFIX} no answer yet"]
        else:
            masters = [WAITING]
    shown_masters = masters[:1]
    budget -= 1
    alerts = _alerts(snapshot)
    shown_alerts = [f"{kind}: {sentence}" for kind, sentence in alerts[:budget]]
    left_out = len(alerts) - len(shown_alerts)
    if left_out and shown_alerts:
        kind, sentence = alerts[len(shown_alerts) - 1]
        shown_alerts[-1] = f"{kind} (and {left_out} more): {sentence}"
    budget -= len(shown_alerts)
    more = masters[1 : 1 + budget]
    shown_masters += more
    budget -= len(more)
    hidden = len(masters) - len(shown_masters)
    if hidden:
        shown_masters[0] += f" (+{hidden} more)"
    details = detail_lines(snapshot)[: max(0, budget)]
    return PrometheusText(
        masters="\n".join(shown_masters),
        alerts="\n".join(shown_alerts),
        details="\n".join(details),
    )


class PrometheusPanel(Vertical):
    """Prometheus's view beside the live one: its master, the data's age, and where it
    disagrees. Call `show` on every render tick; it redraws only what changed."""

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._masters = Line("masters")
        self._alerts = Line("alerts")
        self._details = Line("details")
        self._shown = PrometheusText("", "", "")

    def compose(self) -> ComposeResult:
        """The parts in order of importance."""
        yield self._masters
        yield self._alerts
        yield self._details

    def show(self, snapshot: PrometheusSnapshot, *, rows: int = 2) -> None:
        """Display `snapshot` in at most `rows` lines (2 fit an 80x24 screen)."""
        text = panel_text(snapshot, rows)
        self._masters.show(text.masters)
        self._alerts.show(text.alerts)
        self._details.show(text.details)
        self._shown = text
        self.set_class(bool(text.alerts), "warning")
        self.set_class(snapshot.reachable is False, "unreachable")

    @property
    def text(self) -> str:
        """Everything the panel shows, as plain text (for tests and accessibility)."""
        return self._shown.text
