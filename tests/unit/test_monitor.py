"""The monitor's own wiring, fed scripted events (its sources are never started here)."""

from __future__ import annotations

import threading
from typing import Any

from hawatch.core.events import MasterObserved, NodeObserved, SentinelMessage
from hawatch.monitor import CeleryOptions, Monitor
from hawatch.settings import SentinelAddress, Settings

A, B, C = "127.0.0.1:6379", "127.0.0.1:6380", "127.0.0.1:6381"


class Listener:
    """Stands in for the receiver on a former master: records that it was stopped."""

    def __init__(self) -> None:
        self.stopped = threading.Event()

    def stop(self, timeout: float = 2.0) -> None:
        self.stopped.set()


def observed(ts: float, port: int, epoch: int) -> MasterObserved:
    return MasterObserved(
        ts=ts,
        sentinel="127.0.0.1:26379",
        master="mymaster",
        ip="127.0.0.1",
        port=port,
        epoch=epoch,
        flags=("master",),
    )


def switch(ts: float, old: str, new: str) -> SentinelMessage:
    return SentinelMessage(
        ts=ts,
        sentinel="127.0.0.1:26379",
        channel="+switch-master",
        payload=f"mymaster {old.replace(':', ' ')} {new.replace(':', ' ')}",
        master="mymaster",
        old=old,
        new=new,
    )


def monitor() -> Monitor:
    settings = Settings(sentinels=(SentinelAddress("127.0.0.1", 26379),), masters=("mymaster",))
    m = Monitor(settings, celery=CeleryOptions())
    m.feed(observed(1.0, 6379, 0))
    m.configure("mymaster")
    return m


def listen(m: Monitor, address: str) -> Listener:
    listener = Listener()
    m._old_listeners[address] = (listener, 0.0)  # type: ignore[assignment]
    return listener


def test_a_switch_is_noted_while_a_former_master_is_still_listened_to() -> None:
    m = monitor()
    listen(m, A)
    m.feed(switch(10.0, A, B))
    assert m.tasks.snapshot(11.0).switched_at == 10.0
    m.feed(switch(20.0, B, C))  # a second failover while the first listener still runs
    assert m.tasks.snapshot(21.0).switched_at == 20.0


def test_the_listener_on_a_former_master_stops_when_it_is_demoted() -> None:
    m = monitor()
    by_node, by_sentinel = listen(m, A), listen(m, B)
    m.feed(NodeObserved(ts=5.0, address=A, role="slave"))
    m.feed(
        SentinelMessage(
            ts=6.0,
            sentinel="127.0.0.1:26379",
            channel="+convert-to-slave",
            payload=f"slave {B} 127.0.0.1 6380 @ mymaster 127.0.0.1 6381",
            master="mymaster",
            role="slave",
            address=B,
        )
    )
    for thread in m._stopping_threads:
        thread.join(2.0)
    assert by_node.stopped.is_set() and by_sentinel.stopped.is_set()
    assert m._old_listeners == {}


def test_the_session_is_recorded_first() -> None:
    seen: list[Any] = []
    settings = Settings(sentinels=(SentinelAddress("127.0.0.1", 26379),))
    m = Monitor(settings, celery=CeleryOptions(lost_after=7.0), emit=seen.append)
    m.configure("mymaster")
    [session] = seen
    assert session.TYPE == "session"
    assert (session.broker_master, session.celery, session.lost_after) == ("mymaster", True, 7.0)
