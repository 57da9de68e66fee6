"""The screen on a real cluster: it names the master and follows a failover."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable

import pytest

from hawatch.lab import LabCluster, start_worker
from hawatch.monitor import CeleryOptions
from hawatch.views.app import HawatchApp, MasterPanel
from hawatch.views.pending import PendingPanel
from hawatch.views.timeline import TimelinePanel

pytestmark = pytest.mark.integration


async def test_screen_shows_the_master_and_follows_a_failover(lab: LabCluster) -> None:
    app = HawatchApp(lab.settings(), topology_interval=0.2)
    async with app.run_test(size=(80, 24)) as pilot:

        async def panel_says(text: str, timeout: float) -> None:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                panels = list(app.query(MasterPanel))
                if panels and text in panels[0].text:
                    return
                await pilot.pause(0.05)
            shown = [p.text for p in app.query(MasterPanel)]
            raise AssertionError(f"{text!r} not shown within {timeout} s: {shown}")

        old = lab.current_master()
        await panel_says(f"master {old.address}", timeout=10)
        assert "3/3 agree" in app.query_one(MasterPanel).text
        assert lab.failover() == "OK"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            answers = lab.master_by_sentinel()
            if len(set(answers)) == 1 and answers[0] != ("127.0.0.1", old.port):
                break
            await pilot.pause(0.05)
        new = lab.current_master()
        assert new is not old
        await panel_says(f"master {new.address}", timeout=10)
        assert f"was {old.address}" in app.query_one(MasterPanel).text
        await panel_says("3/3 agree", timeout=10)  # every sentinel names the new master

        def switches() -> list[tuple[int, str]]:
            view = app.cluster_state.snapshot(time.time()).master(lab.master_name)
            assert view is not None
            return [(e.sentinels, e.text) for e in view.events if e.channel == "+switch-master"]

        # each of the three sentinels publishes +switch-master: one event, seen three times
        deadline = time.monotonic() + 10
        while switches() != [(3, f"+switch-master mymaster {old.address} → {new.address}")]:
            assert time.monotonic() < deadline, switches()
            await pilot.pause(0.05)
        await pilot.press("q")


@pytest.mark.slow
async def test_pending_panel_shows_the_worker_back_and_pending_draining_after_a_crash(
    lab: LabCluster,
) -> None:
    """The operator's view of a crash: the worker hangs with the master, tasks pile up
    on the new master, then the worker is back and the pending count drains."""
    app = HawatchApp(
        lab.settings(masters=(lab.master_name,)),
        topology_interval=0.5,
        celery=CeleryOptions(canary_rate=4.0),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        panel = app.query_one(PendingPanel)

        async def says(what: str, check: Callable[[str], bool], timeout: float = 30) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if check(panel.text):
                    return panel.text
                await pilot.pause(0.05)
            raise AssertionError(f"the panel never showed {what} in {timeout} s:\n{panel.text}")

        def pending(text: str) -> int | None:
            found = re.search(r"pending (\d+)", text)
            return int(found.group(1)) if found else None

        worker = await asyncio.to_thread(start_worker, lab, profile="tuned")
        await says("the worker online", lambda t: "workers 1/1 online" in t)
        old = lab.current_master()
        worker.pause()  # the worker hangs with the master: nothing runs until it is back
        try:
            await asyncio.to_thread(lab.kill, old)
            await asyncio.to_thread(lab.wait_for_new_master, old.port)
            # Canary tasks sent to the new master wait: pending grows, the worker is silent.
            await says("tasks piling up", lambda t: (pending(t) or 0) >= 4)
            await says("the worker offline", lambda t: "OFFLINE" in t, timeout=15)
            assert app.query_one(PendingPanel).pending_rows[0].startswith("hawatch-canary-")
            assert f"master {lab.current_master().address}" in screen_text(app)
        finally:
            worker.resume()
        # The worker reconnects on kombu's own 2, 4, 6 ... s schedule: allow for it.
        await says("the worker back", lambda t: "workers 1/1 online" in t, timeout=90)
        drained = await says("pending drained", lambda t: (pending(t) or 0) <= 1, timeout=40)
        assert "OFFLINE" not in drained
        await pilot.press("q")


def screen_text(app: HawatchApp) -> str:
    """What the terminal shows right now, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


@pytest.mark.slow
async def test_timeline_shows_the_phases_a_ticking_gap_then_the_final_gap(lab: LabCluster) -> None:
    app = HawatchApp(
        lab.settings(masters=(lab.master_name,)),
        topology_interval=0.5,
        celery=CeleryOptions(canary_rate=4.0),
    )
    async with app.run_test(size=(80, 24)) as pilot:
        timeline = app.query_one(TimelinePanel)

        async def shows(what: str, check: Callable[[str], bool], timeout: float = 60) -> str:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if check(timeline.text):
                    return timeline.text
                await pilot.pause(0.05)
            raise AssertionError(f"the timeline never showed {what}:\n{timeline.text}")

        worker = await asyncio.to_thread(start_worker, lab, profile="tuned")
        await shows("a healthy cluster", lambda t: "healthy" in t)
        old = lab.current_master()
        worker.pause()  # nothing runs until it is back: the gap ticks meanwhile
        try:
            await asyncio.to_thread(lab.kill, old)
            first = await shows("a ticking gap", lambda t: "and counting" in t)
            await pilot.pause(1.5)
            later = timeline.text
            gaps = [float(g) for g in re.findall(r"gap (\d+\.\d)s and counting", first + later)]
            assert len(gaps) == 2 and gaps[1] > gaps[0], (first, later)
            # The phase bar: fault, detected, elected, switched, in order, the gap after.
            bar = later.splitlines()[1]
            assert re.fullmatch(r"F─*DE─*S░+", bar), bar
            assert f"master {lab.current_master().address}" in screen_text(app)
        finally:
            worker.resume()
        final = await shows(
            "the final gap in the history", lambda t: bool(timeline.history_keys), timeout=120
        )
        report = app.monitor.incidents.reports()[-1]
        assert report.gap_s is not None and report.closed is not None
        assert f"{report.gap_s:.1f}s" in final
        await pilot.press("q")
