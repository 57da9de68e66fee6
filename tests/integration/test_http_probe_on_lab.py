"""The users' side on a real lab: the demo web endpoint (a cache round trip through
Sentinel per request) probed over HTTP by the monitor, through a crash failover.

Real parts only: the lab's redis-server processes and sentinels, a real Celery worker
(the Celery resume, with the canary), the demo endpoint as a subprocess, httpx over
loopback. The master is crashed (SIGKILL), as a dead host would be.
"""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from monitoring import running, wait_until

from hawatch.core.events import Event, ProbeResult
from hawatch.core.incidents import IncidentReport
from hawatch.lab import LabCluster, start_demo_web, start_worker
from hawatch.monitor import CeleryOptions, Monitor
from hawatch.report import as_text
from hawatch.sources.http_probe import HttpProbeOptions, probe_name

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def results(events: list[Event], name: str, after: float = 0.0) -> list[ProbeResult]:
    return [e for e in events if isinstance(e, ProbeResult) and e.probe == name and e.ts >= after]


async def test_the_users_fail_during_a_crash_failover_and_resume_after_it(
    lab: LabCluster,
) -> None:
    await asyncio.to_thread(start_worker, lab, profile="tuned")
    web = await asyncio.to_thread(start_demo_web, lab)
    assert web.url.startswith("http://127.0.0.1:") and web.url.endswith("/health")
    answer = await asyncio.to_thread(httpx.get, web.url, timeout=5.0)
    assert answer.status_code == 200, answer.text
    assert answer.text.startswith("ok: wrote and read a key on the master 127.0.0.1:")

    options = HttpProbeOptions(web.url, timeout=1.0, interval=0.25)
    name = probe_name(options)
    events: list[Event] = []
    monitor = Monitor(
        lab.settings(masters=(lab.master_name,)),
        celery=CeleryOptions(canary_rate=4.0),
        emit=events.append,
        topology_interval=0.5,
        probes=[options],
    )
    async with running(monitor):
        # Healthy before: the endpoint answers, the canary makes round trips.
        await wait_until("3 healthy probes", lambda: len(results(events, name)) >= 3)
        await wait_until(
            "a canary round trip",
            lambda: [e for e in events if isinstance(e, ProbeResult) and e.phase == "succeeded"],
        )
        assert all(r.ok and r.phase == "ok" for r in results(events, name))

        old = lab.current_master()
        fault_at = time.time()
        await asyncio.to_thread(lab.kill, old)
        failed = await wait_until(
            "a failed probe after the crash",
            lambda: [r for r in results(events, name, fault_at) if not r.ok],
        )
        assert failed[0].phase == "failed" and failed[0].detail
        assert failed[0].detail.startswith("answered 503 Service Unavailable, expected 200: ")
        new = await asyncio.to_thread(lab.wait_for_new_master, old.port)
        switched_at = await wait_until(
            "the core to see the switch", lambda: monitor.cluster.switched_at(lab.master_name)
        )
        back = await wait_until(
            "a healthy probe after the switch",
            lambda: [r for r in results(events, name, switched_at) if r.ok],
        )
        assert back[0].detail is not None and back[0].detail.startswith("answered 200 OK")
        # Healthy after: every later probe succeeds (the endpoint found the new master).
        await asyncio.sleep(1.5)
        later = results(events, name, back[0].ts)
        assert len(later) >= 4 and all(r.ok for r in later), [r.detail for r in later]
        answer = await asyncio.to_thread(httpx.get, web.url, timeout=5.0)
        assert answer.status_code == 200
        assert f"on the master {new.address}" in answer.text

        def closed() -> IncidentReport | None:
            history = monitor.incidents.snapshot(time.time()).history
            return next((r for r in history if r.master == lab.master_name), None)

        report = await wait_until("the incident to close", closed, timeout=90)

    # The incident report: the users' resume beside the Celery resume.
    assert report.switched is not None and report.resumed is not None
    assert report.gap_s is not None and report.gap_s >= 0
    assert report.http_probed
    assert report.user_resumed is not None and report.user_resumed >= report.switched
    assert report.user_gap_s is not None and report.user_gap_s > 0
    assert report.user_resumed == back[0].ts
    assert report.user_failed is not None and report.user_failed <= failed[0].ts
    assert report.user_failed >= fault_at - 0.5  # the users failed because of the crash
    assert report.user_outage_s is not None and report.user_outage_s > report.user_gap_s
    text = as_text(report)
    assert "users       gap " in text and "(first successful HTTP probe − switched)" in text
    print(
        f"\ncrash failover: switch +{report.switched - fault_at:.2f} s after the kill; "
        f"Celery gap {report.gap_s:.2f} s; users' gap {report.user_gap_s:.2f} s; "
        f"users' outage {report.user_outage_s:.2f} s; Celery outage {report.outage_s:.2f} s"
    )
    print(text)
