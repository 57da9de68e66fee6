"""The Prometheus panel: its text from real `PrometheusView` snapshots, and the widget alone
in a tiny app at 80x24 (and taller), read back from what the terminal shows.

Snapshots come from a real `ClusterState` and `PrometheusView` fed scripted events
(no sleeps, no clock: every time is a number in the script).
"""

from __future__ import annotations

from typing import Any

import pytest
from textual.app import App, ComposeResult

from hawatch.core.cluster import ClusterState
from hawatch.core.events import (
    MasterObserved,
    PrometheusObserved,
    PrometheusUnreachable,
    SentinelMessage,
)
from hawatch.core.prometheus import PrometheusSnapshot, PrometheusView
from hawatch.views.panel import format_clock
from hawatch.views.prometheus import (
    STYLESHEET,
    WAITING,
    PrometheusPanel,
    alert_lines,
    detail_lines,
    master_line,
    panel_text,
    short_age,
    status_word,
)
from hawatch.views.styles import stylesheet_path

SIZE = (80, 24)
T0 = 1_700_000_000.0
OLD = "127.0.0.1:46123"
NEW = "127.0.0.1:46124"
SENTINELS = ("127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381")
DOWN = (
    "Prometheus at http://127.0.0.1:9090 does not answer (connection refused); "
    "check --prometheus and that Prometheus runs"
)


def cluster(*, switch_at: float | None = None) -> ClusterState:
    """Every sentinel names OLD; with `switch_at`, ``+switch-master`` to NEW then."""
    state = ClusterState()
    for sentinel in SENTINELS:
        state.apply(
            MasterObserved(
                ts=T0, sentinel=sentinel, master="mymaster", ip="127.0.0.1", port=46123, epoch=0
            )
        )
    if switch_at is not None:
        state.apply(
            SentinelMessage(
                ts=switch_at,
                sentinel=SENTINELS[0],
                channel="+switch-master",
                payload="mymaster 127.0.0.1 46123 127.0.0.1 46124",
                master="mymaster",
                old=OLD,
                new=NEW,
            )
        )
    return state


def seen(ts: float, address: str | None = OLD, **fields: Any) -> PrometheusObserved:
    values: dict[str, Any] = {
        "master": "mymaster",
        "address": address,
        "sample_ts": ts - 1.2,
        "status": 1.0,
        "master_status": "ok",
        "ok_sentinels": 3.0,
        "ok_slaves": 2.0,
        "ckquorum": 1.0,
        "sentinels_up": 3,
        "nodes_up": 6,
        "nodes": 6,
        "links_up": 2,
        "addresses": (address,) if address else (),
    }
    values.update(fields)
    return PrometheusObserved(ts=ts, **values)


def snapshot(
    *events: Any, now: float = T0 + 10, switch_at: float | None = None
) -> PrometheusSnapshot:
    view = PrometheusView()
    for event in events:
        view.apply(event)
    return view.snapshot(now, cluster(switch_at=switch_at).snapshot(now))


AGREE = (seen(T0 + 10),)
BEHIND = (seen(T0 + 9.5, OLD, sample_ts=T0 + 7),)
"""Prometheus's sample was scraped at T0 + 7; the switch happens at T0 + 8."""


# --------------------------------------------------------------------------- the text


def test_the_master_line_fits_80_columns() -> None:
    snap = snapshot(*AGREE)
    line = master_line(snap.masters[0])
    assert line == (
        "prometheus: mymaster 127.0.0.1:46123 ok · 1.2s old · 3 sentinels, 2 replicas ok"
    )
    assert len(line) <= 79


def test_words_for_every_state() -> None:
    assert status_word(snapshot(seen(T0, master_status="odown", status=0)).masters[0]) == "ODOWN"
    assert status_word(snapshot(seen(T0, master_status=None, status=0)).masters[0]) == "NOT OK"
    assert status_word(snapshot(seen(T0, None)).masters[0]) == "NO DATA"
    assert master_line(snapshot(seen(T0, None)).masters[0]) == (
        "prometheus: mymaster NO DATA (last data 11s old)"
    )
    assert [short_age(a) for a in (None, 0.04, 9.94, 42, 185)] == [
        "age unknown",
        "0.0s old",
        "9.9s old",
        "42s old",
        "3m 05s old",
    ]


def test_a_disagreement_is_said_in_words() -> None:
    snap = snapshot(*BEHIND, switch_at=T0 + 8)
    assert alert_lines(snap) == [
        "DISAGREES: Prometheus still shows 127.0.0.1:46123 as master of mymaster; the "
        "sentinels say 127.0.0.1:46124 (Prometheus's data is 3.0 s old)"
    ]


def test_unreachable_comes_first_with_since_when() -> None:
    snap = snapshot(
        *BEHIND,
        PrometheusUnreachable(ts=T0 + 9.7, reason=DOWN),
        switch_at=T0 + 8,
    )
    lines = alert_lines(snap)
    assert lines[0] == f"UNREACHABLE since {format_clock(T0 + 9.7)}: {DOWN}"
    assert lines[1].startswith("DISAGREES: Prometheus still shows")


def test_two_rows_show_the_master_and_the_first_alert_with_a_count_of_the_rest() -> None:
    snap = snapshot(
        seen(T0 + 9.5, OLD, addresses=(OLD, NEW)),
        PrometheusUnreachable(ts=T0 + 9.7, reason=DOWN),
        switch_at=T0 + 8,
    )
    text = panel_text(snap, rows=2)
    assert text.masters.startswith("prometheus: mymaster 127.0.0.1:46123 ok")
    assert text.alerts == f"UNREACHABLE since {format_clock(T0 + 9.7)} (and 2 more): {DOWN}"
    assert text.details == ""
    assert len(text.text.splitlines()) == 2


def test_more_rows_show_every_alert_then_the_details_and_the_promql() -> None:
    snap = snapshot(seen(T0 + 10, extra=(("sum(redis_up)", "6"), ('up{job="x"}', "no data"))))
    text = panel_text(snap, rows=6)
    assert text.alerts == ""
    assert text.details.splitlines() == [
        f"mymaster: quorum ok · 2 replica links up to {OLD} · scraped {format_clock(T0 + 8.8)}",
        "instances (all Prometheus scrapes): 6/6 instances up · 3 sentinels",
        "promql: sum(redis_up) = 6",
        'promql: up{job="x"} = no data',
    ]
    assert detail_lines(snap) == text.details.splitlines()
    assert len(panel_text(snap, rows=3).text.splitlines()) == 3


def test_before_any_answer_it_says_it_waits() -> None:
    view = PrometheusView()
    assert panel_text(view.snapshot(T0, None)).masters == WAITING
    view.apply(PrometheusUnreachable(ts=T0, reason=DOWN))
    text = panel_text(view.snapshot(T0 + 1, None))
    assert text.masters == "prometheus: no answer yet"
    assert text.alerts.startswith("UNREACHABLE since ")


def test_an_answer_without_any_master() -> None:
    view = PrometheusView()
    view.apply(PrometheusObserved(ts=T0, master="", address=None))
    assert panel_text(view.snapshot(T0, None)).masters == (
        "prometheus: no Sentinel master in Prometheus's data"
    )


def test_several_masters_say_how_many_are_left_out() -> None:
    other = seen(T0 + 10, "10.0.0.1:6379", master="cache")
    snap = snapshot(*AGREE, other)
    assert [m.name for m in snap.masters] == ["mymaster", "cache"]
    assert panel_text(snap, rows=1).masters.endswith(" (+1 more)")
    assert panel_text(snap, rows=2).masters.splitlines()[1].startswith("prometheus: cache ")


# --------------------------------------------------------------------------- the widget


class PanelApp(App[None]):
    """The panel alone, with its own stylesheet."""

    CSS_PATH = str(stylesheet_path(STYLESHEET))

    def compose(self) -> ComposeResult:
        yield PrometheusPanel()


def screen_text(app: App[None]) -> str:
    """What the terminal shows right now, as plain text (one line per row)."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def panel(app: App[None]) -> PrometheusPanel:
    return app.query_one(PrometheusPanel)


def test_stylesheet_is_found() -> None:
    assert stylesheet_path(STYLESHEET).is_file()


async def test_two_lines_at_80x24_in_words_even_without_colour(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        view = panel(app)
        view.show(snapshot(*BEHIND, switch_at=T0 + 8), rows=2)
        await pilot.pause()
        lines = screen_text(app).splitlines()
        assert lines[0].startswith(" prometheus: mymaster 127.0.0.1:46123 ok · 3.0s old")
        assert lines[1].startswith(" DISAGREES: Prometheus still shows 127.0.0.1:46123")
        assert lines[1].rstrip().endswith("…")  # cut, never wrapped
        assert lines[2].strip() == ""
        assert view.has_class("warning") and not view.has_class("unreachable")
        assert "the sentinels say 127.0.0.1:46124 (Prometheus's data is 3.0 s old)" in view.text
        assert len(view.text.splitlines()) == 2


async def test_updates_in_place_and_only_changed_parts_redraw() -> None:
    app = PanelApp()
    async with app.run_test(size=SIZE) as pilot:
        view = panel(app)
        view.show(snapshot(*AGREE), rows=2)
        await pilot.pause()
        parts = list(view.children)
        updates: list[str] = []
        for part in parts:
            original = part.update  # type: ignore[attr-defined]

            def spy(text: Any, _original: Any = original, _part: Any = part) -> None:
                updates.append(" ".join(sorted(_part.classes)))
                _original(text)

            part.update = spy  # type: ignore[attr-defined]
        view.show(snapshot(*AGREE), rows=2)  # the same: nothing redrawn
        await pilot.pause()
        assert updates == []
        # Prometheus goes away: the alert takes the second row from the details; the
        # master line stays (same text).
        assert view.text.splitlines()[1].startswith("mymaster: quorum ok")
        view.show(snapshot(*AGREE, PrometheusUnreachable(ts=T0 + 10, reason=DOWN)), rows=2)
        await pilot.pause()
        assert sorted(updates) == ["alerts", "details"]
        assert list(view.children) == parts
        assert view.has_class("unreachable")
        assert "UNREACHABLE since" in screen_text(app)
        # It answers again, with the new master: the alert goes, the master line changes.
        updates.clear()
        view.show(snapshot(*AGREE, seen(T0 + 11, NEW), now=T0 + 11, switch_at=T0 + 8), rows=2)
        await pilot.pause()
        assert sorted(updates) == ["alerts", "details", "masters"]
        shown = screen_text(app)
        assert "UNREACHABLE" not in shown and f"mymaster {NEW} ok" in shown
        assert not view.has_class("warning") and not view.has_class("unreachable")


async def test_a_tall_terminal_shows_the_details() -> None:
    app = PanelApp()
    async with app.run_test(size=(100, 40)) as pilot:
        view = panel(app)
        view.show(snapshot(seen(T0 + 10, extra=(("sum(redis_up)", "6"),))), rows=6)
        await pilot.pause()
        shown = screen_text(app)
        assert "mymaster: quorum ok · 2 replica links up" in shown
        assert "6/6 instances up · 3 sentinels" in shown
        assert "promql: sum(redis_up) = 6" in shown
        assert view.text.splitlines()[-1] == "promql: sum(redis_up) = 6"
