"""Queue depth read through the current master, against a real cluster and real Celery messages."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest

from hawatch.core.events import BrokerConnected, BrokerDisconnected, Event, QueueDepth
from hawatch.lab import LabCluster
from hawatch.lab.demo_app import make_app
from hawatch.sources.queues import QueueGauge, queue_keys

pytestmark = pytest.mark.integration


async def _sample(gauge: QueueGauge, events: list[Event]) -> QueueDepth:
    before = len(events)
    await gauge.sample()
    (depth,) = [e for e in events[before:] if isinstance(e, QueueDepth)]
    return depth


async def test_depth_matches_llen_and_follows_a_failover(lab: LabCluster) -> None:
    events: list[Event] = []
    gauge = QueueGauge(lab.settings(), lab.master_name, events.append, queues=["celery"])
    app = make_app([str(a) for a in lab.sentinel_addresses], lab.master_name, result_backend=False)
    try:
        empty = await _sample(gauge, events)
        master = lab.current_master()
        assert (empty.length, empty.address) == (0, str(master.address))
        assert isinstance(events[0], BrokerConnected)
        for i in range(7):  # no worker runs: the messages stay in the queue
            app.send_task("demo.add", args=[i, i])
        app.send_task("demo.add", args=[1, 1], priority=9)  # a priority sub-queue
        depth = await _sample(gauge, events)
        llen = sum(int(master.call("LLEN", key)) for key in queue_keys("celery"))
        assert depth.length == llen == 8
        assert depth.unacked == 0

        assert lab.failover() == "OK"
        new = lab.wait_for_new_master(master.port)
        deadline = time.monotonic() + 20
        while True:  # the messages were replicated: the new master holds them too
            depth = await _sample(gauge, events)
            if depth.address == str(new.address):
                break
            assert time.monotonic() < deadline, depth
            await asyncio.sleep(0.2)
        assert depth.length == sum(int(new.call("LLEN", k)) for k in queue_keys("celery"))
    finally:
        app.close()
        await gauge_closed(gauge)


async def gauge_closed(gauge: QueueGauge) -> None:
    task = asyncio.create_task(gauge.run())
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_no_sentinel_is_one_disconnect_then_recovery(lab: LabCluster) -> None:
    events: list[Event] = []
    gauge = QueueGauge(lab.settings(), lab.master_name, events.append)
    for node in lab.sentinel_nodes:
        lab.pause(node)
    try:
        await gauge.sample()
        await gauge.sample()
    finally:
        for node in lab.sentinel_nodes:
            lab.resume(node)
    downs = [e for e in events if isinstance(e, BrokerDisconnected)]
    assert len(downs) == 1 and downs[0].source == "queues" and "timed out" in downs[0].reason
    assert not [e for e in events if isinstance(e, QueueDepth)]
    await gauge.sample()
    assert isinstance(events[-2], BrokerConnected) and isinstance(events[-1], QueueDepth)
    await gauge_closed(gauge)
