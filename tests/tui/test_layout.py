"""The layout: at 80x24 the essentials are on screen without scrolling; a taller
terminal shows more; resizing never breaks it."""

from __future__ import annotations

import time
from collections.abc import Callable

from scenes import (
    SceneApp,
    freeze_time_zone,
    healthy,
    incident,
    prometheus_lagging,
    second_master,
)
from textual.pilot import Pilot

from hawatch.sources.prometheus import PrometheusOptions
from hawatch.views.app import HawatchApp
from hawatch.views.prometheus import PrometheusPanel

freeze_time_zone()


async def until(pilot: Pilot[None], condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await pilot.pause(0.05)


def screen_text(app: HawatchApp) -> str:
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


ESSENTIALS = (
    "mymaster   master 127.0.0.1:6380",  # the master's address
    "sentinels 3/3 agree, quorum 2 OK",  # its health
    "gap 12.0s and counting",  # the gap
    "pending 9",  # the pending count
    "queue celery 9, unacked 1",  # the queue depth
    "+switch-master mymaster 127.0.0.1:6379 → 127.0.0.1:6380",  # the newest events
    "+odown master mymaster",
    "+sdown master mymaster",
    "q Quit",  # the key bar
)


def not_scrolled(app: HawatchApp) -> bool:
    masters = app.query_one("#masters")
    return masters.scroll_y == 0 and masters.virtual_size.height <= masters.size.height


async def test_the_essentials_fit_80x24_with_several_masters_and_a_notice() -> None:
    app = SceneApp([*incident(), *second_master()])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "  cache  127.0.0.1:6479" in screen_text(app))
        app.choose_master("mymaster")
        app._notice("a sentence on the notice line, as after an export")
        await until(pilot, lambda: "▶ mymaster" in screen_text(app))
        await pilot.pause(0.6)  # the pending rows give way on the next render
        shown = screen_text(app)
        for needle in (*ESSENTIALS, "  cache  127.0.0.1:6479  OK", "a sentence on the notice"):
            assert needle in shown, (needle, shown)
        assert not_scrolled(app)


async def test_a_taller_terminal_shows_the_tables_and_history() -> None:
    app = SceneApp(incident())
    async with app.run_test(size=(160, 48)) as pilot:
        await until(pilot, lambda: "+sdown" in screen_text(app))
        await pilot.pause(0.3)
        shown = screen_text(app)
        for needle in ESSENTIALS:
            assert needle in shown, needle
        assert "sentinel 127.0.0.1:26380  answers" in shown  # the sentinel table
        assert "replica 127.0.0.1:6381  link ok  lag 0 B" in shown  # one replica a line
        assert "p008e11a" in shown  # every pending task
        assert "demo@web1  OFFLINE" in shown  # the workers table
        assert "started tasks/s" in shown  # the throughput under the gap


async def test_resizing_never_breaks_the_layout() -> None:
    app = SceneApp([*incident(), *second_master()])
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "  cache  127.0.0.1:6479" in screen_text(app))
        for size in ((40, 12), (200, 60), (20, 6), (120, 30), (80, 24)):
            await pilot.resize_terminal(*size)
            await pilot.pause(0.4)
            lines = screen_text(app).splitlines()
            assert len(lines) == size[1] and all(len(line) == size[0] for line in lines)
            assert app.is_running
        app.choose_master("mymaster")
        await pilot.pause(0.6)
        shown = screen_text(app)
        for needle in ESSENTIALS:
            assert needle in shown, needle
        assert not_scrolled(app)


async def test_a_healthy_cluster_says_so() -> None:
    app = SceneApp(healthy())
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "127.0.0.1:6379" in screen_text(app))
        await pilot.pause(0.3)
        shown = screen_text(app)
        assert "mymaster   master 127.0.0.1:6379   OK" in shown
        assert "healthy — no incident open this session" in shown
        assert "pending 0" in shown and "workers 1/1 online" in shown


async def test_prometheus_beside_the_live_view_at_80x24() -> None:
    app = SceneApp(
        [*incident(), *prometheus_lagging()],
        prometheus=PrometheusOptions(url="http://127.0.0.1:9"),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "still shows" in screen_text(app))
        await pilot.pause(0.6)
        shown = screen_text(app)
        assert "127.0.0.1:6379" in app.query_one(PrometheusPanel).text
        assert "Prometheus still shows 127.0.0.1:6379" in shown, shown
        for needle in ESSENTIALS:
            assert needle in shown, needle
        assert not_scrolled(app)


async def test_no_prometheus_panel_without_prometheus() -> None:
    app = SceneApp(incident())
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "gap 12.0s" in screen_text(app))
        assert not app.query_one(PrometheusPanel).display
