"""Queue depth read through the current master, against a real cluster and real Celery messages."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from hawatch.core.events import BrokerConnected, BrokerDisconnected, Event, QueueDepth, to_json
from hawatch.lab import LabCluster, LabConfig, LabNode
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


def push(node: LabNode, key: str, count: int, *, db: int = 0, password: str | None = None) -> None:
    """Put `count` dummy messages in list `key` of database `db` on `node`."""
    client = redis.Redis(host=node.host, port=node.port, db=db, password=password)
    try:
        client.rpush(key, *[b"m"] * count)
    finally:
        client.close()


async def test_a_master_from_the_caller_needs_no_sentinel(lab: LabCluster) -> None:
    master = lab.current_master()
    push(master, "celery", 3)
    push(master, "celery", 5, db=3)
    known: list[str | None] = [str(master.address)]
    events: list[Event] = []
    gauge = QueueGauge(
        lab.settings(), lab.master_name, events.append, master_address=lambda: known[0]
    )
    # The database of a sentinel:// broker URL is the one read (kombu's virtual host).
    in_db3 = QueueGauge(
        lab.settings(),
        lab.master_name,
        events.append,
        master_address=lambda: known[0],
        broker_url=lab.broker_url().replace(";", "/3;", 1),  # kombu reads the first URL's
    )
    for node in lab.sentinel_nodes:
        lab.pause(node)  # asking any sentinel now would time out
    try:
        depth = await _sample(gauge, events)
        assert (depth.length, depth.address) == (3, str(master.address))
        assert (await _sample(in_db3, events)).length == 5
        assert not [e for e in events if isinstance(e, BrokerDisconnected)]
        known[0] = None  # the caller does not know: the gauge asks the sentinels, in vain
        await gauge.sample()
        downs = [e for e in events if isinstance(e, BrokerDisconnected)]
        assert len(downs) == 1 and "timed out" in downs[0].reason
    finally:
        for node in lab.sentinel_nodes:
            lab.resume(node)
        await gauge_closed(gauge)
        await gauge_closed(in_db3)


async def test_the_caller_moves_the_gauge_to_the_new_master(lab: LabCluster) -> None:
    old = lab.current_master()
    known: list[str | None] = [str(old.address)]
    events: list[Event] = []
    gauge = QueueGauge(
        lab.settings(), lab.master_name, events.append, master_address=lambda: known[0]
    )
    try:
        assert (await _sample(gauge, events)).address == str(old.address)
        assert lab.failover() == "OK"
        new = lab.wait_for_new_master(old.port)
        lab.wait_for_role(new, "master")
        push(new, "celery", 2)
        known[0] = str(new.address)
        depth = await _sample(gauge, events)
        assert (depth.length, depth.address) == (2, str(new.address))
    finally:
        await gauge_closed(gauge)


NODE_PW = "n0de-pw-81fa"
WRONG_PW = "wr0ng-pw-0c3d"


@pytest.fixture
def password_lab(tmp_path: Path) -> Iterator[LabCluster]:
    with LabCluster(LabConfig.fast(base_dir=tmp_path, password=NODE_PW)) as cluster:
        yield cluster


async def test_a_plain_redis_broker_url_is_read_directly(password_lab: LabCluster) -> None:
    lab = password_lab
    master = lab.current_master()
    push(master, "celery", 4, db=2, password=NODE_PW)
    push(master, "celery", 1, password=NODE_PW)
    events: list[Event] = []
    address = master.address
    url = f"redis://:{NODE_PW}@{address}/2"
    # No sentinel and no master name: a plain Redis broker is read as its URL says.
    settings = lab.settings(sentinels=())
    gauge = QueueGauge(settings, "", events.append, queues=["celery"], broker_url=url)
    wrong = QueueGauge(settings, "", events.append, broker_url=f"redis://:{WRONG_PW}@{address}/2")
    try:
        depth = await _sample(gauge, events)
        assert (depth.length, depth.address) == (4, str(address))
        assert isinstance(events[0], BrokerConnected) and events[0].source == "queues"
        await wrong.sample()
        (down,) = [e for e in events if isinstance(e, BrokerDisconnected)]
        assert "authentication failed" in down.reason
        for event in events:
            for secret in (NODE_PW, WRONG_PW):
                assert secret not in to_json(event) and secret not in repr(event)
    finally:
        await gauge_closed(gauge)
        await gauge_closed(wrong)
