"""The screen on a real cluster: it names the master and follows a failover."""

from __future__ import annotations

import time

import pytest

from hawatch.lab import LabCluster
from hawatch.views.app import HawatchApp, MasterPanel

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
