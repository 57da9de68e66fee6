"""The whole Celery side on a real lab: sources, core and canary together, through failovers.

Every test runs a `Monitor` (the same object the screen and `hawatch events`
run) against a fresh lab with a real worker, and checks what the core says.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery
from monitoring import running, wait_until

from hawatch.core.events import BrokerConnected, BrokerDisconnected, Event, ProbeResult
from hawatch.core.tasks import TasksSnapshot
from hawatch.lab import LabCluster, start_loadgen, start_worker
from hawatch.lab.demo_app import make_app
from hawatch.lab.procs import ManagedProcess
from hawatch.monitor import CeleryOptions, Monitor

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def producer(lab: LabCluster) -> Iterator[Celery]:
    """The demo app (tuned: its publishes retry through a failover), to send tasks."""
    app = make_app(
        [str(a) for a in lab.sentinel_addresses],
        lab.master_name,
        profile="tuned",
        result_backend=False,
    )
    try:
        yield app
    finally:
        app.close()


async def send(app: Celery, x: int = 1) -> str:
    """Send demo.add off the loop; its task id."""
    result = await asyncio.to_thread(app.send_task, "demo.add", args=[x, 1])
    return str(result.id)


def tasks(monitor: Monitor) -> TasksSnapshot:
    return monitor.tasks.snapshot(time.time())


def worker_online(monitor: Monitor) -> bool:
    workers = tasks(monitor).workers
    return bool(workers) and all(w.online for w in workers)


async def start(lab: LabCluster) -> ManagedProcess:
    return await asyncio.to_thread(start_worker, lab, profile="tuned")


def monitor_for(lab: LabCluster, events: list[Event], **options: Any) -> Monitor:
    return Monitor(
        lab.settings(masters=(lab.master_name,)),
        celery=CeleryOptions(**options),
        emit=events.append,
        topology_interval=0.5,
    )


async def test_states_pending_queue_depth_and_workers(lab: LabCluster, producer: Celery) -> None:
    events: list[Event] = []
    async with running(monitor_for(lab, events)) as monitor:
        worker = await start(lab)
        await wait_until("the worker online", lambda: worker_online(monitor))
        hostname = tasks(monitor).workers[0].hostname

        # A task moves through the states, each phase stamped.
        uuid = await send(producer, 41)
        view = await wait_until(
            "the task to succeed",
            lambda: (v := monitor.tasks.get(uuid)) is not None and v.state == "succeeded" and v,
        )
        assert view.name == "demo.add" and view.worker == hostname and view.queue == "celery"
        assert view.sent_at and view.received_at and view.started_at and view.finished_at
        assert view.sent_at <= view.received_at <= view.started_at <= view.finished_at
        assert tasks(monitor).totals["succeeded"] >= 1

        # A worker that says goodbye is offline at once.
        await asyncio.to_thread(worker.stop, group=True)
        gone = await wait_until(
            "the worker offline",
            lambda: [w for w in tasks(monitor).workers if not w.online],
        )
        assert gone[0].reason == "worker-offline"

        # Tasks sent meanwhile are pending, and the queue's depth is what LLEN says.
        sent = [await send(producer, n) for n in range(5)]
        await wait_until("5 pending tasks", lambda: tasks(monitor).pending == 5)
        assert {p.uuid for p in tasks(monitor).oldest_pending} == set(sent)
        await wait_until(
            "the queue gauge to read 5",
            lambda: (d := monitor.queues.get("celery")) is not None and d.length == 5,
        )
        master = lab.current_master()
        assert master.call("LLEN", "celery") == 5
        assert monitor.queues["celery"].address == str(master.address)

        # A worker back drains them: pending falls to 0, and so does the queue.
        worker = await start(lab)
        await wait_until("the worker online again", lambda: worker_online(monitor))
        await wait_until("the pending tasks to drain", lambda: tasks(monitor).pending == 0)
        await wait_until("the queue to empty", lambda: monitor.queues["celery"].length == 0)
        assert all(monitor.tasks.get(u).state == "succeeded" for u in sent)  # type: ignore[union-attr]

        # A worker that dies without a word goes offline when its heartbeats stop,
        # and comes back online when it is restarted.
        await asyncio.to_thread(worker.kill, group=True)
        lost = await wait_until(
            "the killed worker offline",
            lambda: [w for w in tasks(monitor).workers if not w.online],
            timeout=15,
        )
        assert lost[0].reason == "heartbeat lost"
        await start(lab)
        await wait_until("the restarted worker online", lambda: worker_online(monitor))


def connected(events: list[Event], node: Any) -> bool:
    """The Celery event source's latest word is that it is connected to `node`."""
    states = [e for e in events if isinstance(e, BrokerConnected | BrokerDisconnected)]
    states = [e for e in states if e.source == "celery-events"]
    last = states[-1] if states else None
    return isinstance(last, BrokerConnected) and last.address == str(node.address)


def probes(events: list[Event], phase: str, after: float = 0.0) -> list[ProbeResult]:
    return [
        e
        for e in events
        if isinstance(e, ProbeResult) and e.phase == phase and e.probe == "canary" and e.ts >= after
    ]


@pytest.mark.parametrize("fault", ["failover", "crash"])
async def test_canary_and_events_through_a_failover(lab: LabCluster, fault: str) -> None:
    events: list[Event] = []
    async with running(monitor_for(lab, events, canary_rate=4.0)) as monitor:
        await start(lab)
        await wait_until("a canary round trip", lambda: probes(events, "succeeded"))
        old = lab.current_master()
        fault_at = time.time()
        if fault == "failover":
            await asyncio.to_thread(lab.failover)
        else:
            await asyncio.to_thread(lab.kill, old)
        new = await asyncio.to_thread(lab.wait_for_new_master, old.port)
        switched_at = await wait_until(
            "the core to see the switch", lambda: monitor.cluster.switched_at(lab.master_name)
        )
        assert monitor.cluster.master_address(lab.master_name) == str(new.address)

        # The event source lost the broker, said so, and came back on the new master.
        await wait_until(
            "the event source back on the new master",
            lambda: [
                e
                for e in events
                if isinstance(e, BrokerConnected)
                and e.source == "celery-events"
                and e.ts >= fault_at
                and e.address == str(new.address)
            ],
        )
        downs = [
            e
            for e in events
            if isinstance(e, BrokerDisconnected)
            and e.source == "celery-events"
            and e.ts >= fault_at
        ]
        assert len(downs) == 1 and downs[0].reason
        window = [w for w in tasks(monitor).blind_windows if w.start >= fault_at]
        assert window and window[0].end is not None and window[0].end > window[0].start

        # The canary's round trips stopped during the fault and resumed after the switch.
        resumed = await wait_until(
            "a canary round trip of a task sent after the switch",
            lambda: [
                p
                for p in probes(events, "succeeded", after=switched_at)
                if any(
                    s.task_id == p.task_id and s.ts >= switched_at for s in probes(events, "sent")
                )
            ],
            timeout=40,
        )
        done_before = [p.ts for p in probes(events, "succeeded") if p.ts < switched_at]
        assert done_before, "round trips before the fault"
        hole = resumed[0].ts - max(done_before)
        if fault == "crash":  # nothing runs until Sentinel notices (down-after 1 s)
            assert hole > 1.0, f"no visible hole in the round trips ({hole:.2f} s)"
        assert resumed[0].latency is not None and resumed[0].latency >= 0
        # Task events after the switch arrive, the worker is back, nothing stays pending.
        assert tasks(monitor).resumed_at is not None
        await wait_until("the worker online", lambda: worker_online(monitor))

        # Work drains: nothing sent a few seconds after the switch stays pending. (After a
        # forced failover, tasks sent to the old master in its last seconds as master are
        # discarded when it resyncs: those stay pending, and are the lost ones.)
        def drained() -> bool:
            snap = monitor.tasks.snapshot(time.time(), limit=10_000)
            return all(p.since < switched_at + 3.0 for p in snap.oldest_pending)

        await wait_until("the pending canaries to drain", drained)
        print(f"\n{fault}: canary hole {hole:.2f} s, blind {window[0].end - window[0].start:.2f} s")


async def test_a_task_sent_just_before_a_crash_is_pending_then_lost(
    lab: LabCluster, producer: Celery
) -> None:
    events: list[Event] = []
    async with running(monitor_for(lab, events, lost_after=2.0)) as monitor:
        worker = await start(lab)
        await wait_until("the worker online", lambda: worker_online(monitor))
        # No worker takes it, and the replicas never get it: the crash loses it.
        await asyncio.to_thread(worker.stop, group=True)
        await asyncio.to_thread(lab.cut_replication)
        old = lab.current_master()
        try:
            doomed = await send(producer, 99)
            await wait_until(
                "its task-sent event",
                lambda: (v := monitor.tasks.get(doomed)) is not None and v.state == "sent",
            )
            assert old.call("LLEN", "celery") == 1
            await asyncio.to_thread(lab.kill, old)
        finally:
            await asyncio.to_thread(lab.restore_replication)
        new = await asyncio.to_thread(lab.wait_for_new_master, old.port)
        assert new.call("LLEN", "celery") == 0, "the task survived the crash"

        # Through the election and until work resumes, it is pending, not lost.
        snap = tasks(monitor)
        assert snap.lost == 0 and doomed in {p.uuid for p in snap.oldest_pending}
        # (Tasks run while the event source is still reconnecting would go unseen.)
        await wait_until("the event source on the new master", lambda: connected(events, new))
        await start(lab)
        after = await send(producer, 1)
        await wait_until(
            "a task sent after the switch to succeed",
            lambda: (v := monitor.tasks.get(after)) is not None and v.state == "succeeded",
            timeout=40,
        )
        resumed_at = tasks(monitor).resumed_at
        assert resumed_at is not None
        if time.time() < resumed_at + 2.0:
            assert tasks(monitor).lost == 0, "flagged before --lost-after passed"
        flagged = await wait_until("the task flagged lost", lambda: tasks(monitor).lost_tasks)
        assert [p.uuid for p in flagged] == [doomed] and flagged[0].lost
        assert tasks(monitor).lost == 1
        assert monitor.tasks.get(doomed).state == "sent"  # type: ignore[union-attr]


async def test_split_brain_results_at_risk_are_really_pending(lab: LabCluster) -> None:
    """A graceful failover under steady traffic, with the result backend on the cluster:
    work done on the old master before it is demoted is reported at risk, and those
    results really are gone (PENDING) afterwards."""
    events: list[Event] = []
    monitor = monitor_for(lab, events)
    async with running(monitor):
        await asyncio.to_thread(start_worker, lab)  # Celery's own settings
        await asyncio.to_thread(start_loadgen, lab, rate=10.0, slow_every=0)
        await wait_until("steady work", lambda: tasks(monitor).totals["succeeded"] >= 20)
        await asyncio.to_thread(lab.failover)
        report = await wait_until(
            "the incident to close",
            lambda: next((r for r in monitor.incidents.reports() if r.closed), None),
            timeout=90,
        )
    assert report.demoted is not None and report.split_brain_s is not None
    assert report.split_brain_s > 0
    assert report.results_at_risk and report.results_at_risk > 0, report
    assert len(report.at_risk_ids) == report.results_at_risk
    backend = make_app([str(a) for a in lab.sentinel_addresses], lab.master_name)
    try:
        states = await asyncio.to_thread(
            lambda: {uuid: backend.AsyncResult(uuid).state for uuid in report.at_risk_ids}
        )
    finally:
        backend.close()
    assert set(states.values()) == {"PENDING"}, states
    print(
        f"\nsplit brain {report.split_brain_s:.2f} s, {report.results_at_risk} results at risk, "
        f"gap {report.gap_s}"
    )
