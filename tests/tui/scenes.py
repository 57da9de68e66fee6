"""Scripted scenes of the screen, on a frozen clock, for snapshot and Pilot tests.

Each scene is a list of core events at fixed times around `NOW`; `SceneApp` is the
live app with no source (the test feeds it) rendering at `NOW`, so the same scene
draws the same screen on every run. Times are shown in UTC (`freeze_time_zone`).
"""

from __future__ import annotations

import os
import time

from hawatch.core.events import (
    Event,
    MasterObserved,
    NodeObserved,
    NodeUnreachable,
    PrometheusObserved,
    QueueDepth,
    ReplicaInfo,
    SentinelReachable,
    TaskEvent,
    WorkerEvent,
)
from hawatch.monitor import CeleryOptions
from hawatch.settings import SentinelAddress, Settings
from hawatch.sources.prometheus import PrometheusOptions
from hawatch.sources.sentinel_messages import parse_message
from hawatch.views.app import HawatchApp
from hawatch.views.options import ScreenOptions

NOW = 1_800_000_000.0
"""The scenes' present: 2027-01-15 08:00:00 UTC."""
SENTINELS = ("127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381")
OLD, NEW = 6379, 6380
"""The master's port before and after the scripted switch."""


def freeze_time_zone() -> None:
    """Show clock times in UTC, whatever the machine's zone."""
    os.environ["TZ"] = "UTC"
    time.tzset()


def scene_settings(*, read_only: bool = False) -> Settings:
    """Three sentinels on ports nothing is asked on (the scene app has no source)."""
    sentinels = tuple(SentinelAddress("127.0.0.1", int(s.rsplit(":", 1)[1])) for s in SENTINELS)
    return Settings(sentinels=sentinels, masters=("mymaster",), read_only=read_only)


class SceneApp(HawatchApp):
    """The app with no source, rendering at the frozen `NOW`; tests feed it `events`."""

    def __init__(
        self,
        events: list[Event],
        *,
        screen: ScreenOptions | None = None,
        read_only: bool = False,
        prometheus: PrometheusOptions | None = None,
    ) -> None:
        super().__init__(
            scene_settings(read_only=read_only),
            subtitle="mymaster via 3 sentinels",
            celery=CeleryOptions(),
            screen=screen,
            prometheus=prometheus,
        )
        self.scene = events
        self.monitor.clock = lambda: NOW
        self.monitor.celery_master = "mymaster"

    def poll_sentinels(self) -> None:  # type: ignore[override]
        """No source: the scene's events are fed at mount."""

    def on_mount(self) -> None:
        """Feed the whole scene before the first render."""
        for event in self.scene:
            self.monitor.feed(event)


def _observed(ts: float, sentinel: str, master: str, port: int, epoch: int) -> MasterObserved:
    # After the switch the old master is listed as a replica the sentinels find down.
    down = port == NEW
    replicas = tuple(
        ReplicaInfo(f"127.0.0.1:{p}", ("slave", "s_down"), "err", 6000, 100, 1000)
        if down and p == OLD
        else ReplicaInfo(f"127.0.0.1:{p}", ("slave",), "ok", 0, 100, 1000)
        for p in (OLD, NEW, 6381)
        if p != port
    )
    return MasterObserved(
        ts=ts,
        sentinel=sentinel,
        master=master,
        ip="127.0.0.1",
        port=port,
        epoch=epoch,
        flags=("master",),
        num_slaves=2,
        num_other_sentinels=2,
        quorum=2,
        replicas=replicas,
        ckquorum="OK 3 usable Sentinels",
        ckquorum_ok=True,
    )


def _message(ts: float, sentinel: str, channel: str, payload: str) -> Event:
    """What the Sentinel source makes of a message published on `channel` (its parser)."""
    return parse_message(channel, payload, sentinel=sentinel, ts=ts)


def _cluster(start: float, *, masters: tuple[str, ...] = ("mymaster",)) -> list[Event]:
    events: list[Event] = [SentinelReachable(ts=start, sentinel=s) for s in SENTINELS]
    for index, master in enumerate(masters):
        port = OLD + 100 * index
        events += [_observed(start + 1, s, master, port, 0) for s in SENTINELS]
    events += [
        NodeObserved(ts=start + 2, address=f"127.0.0.1:{OLD}", role="master", offset=5000),
        NodeObserved(ts=start + 2, address=f"127.0.0.1:{NEW}", role="slave", offset=5000),
        NodeObserved(ts=start + 2, address="127.0.0.1:6381", role="slave", offset=5000),
    ]
    return events


def _work(start: float, end: float, *, prefix: str, every: float = 2.0) -> list[Event]:
    """Tasks that run as soon as they are sent, one every `every` seconds."""
    events: list[Event] = []
    n = 0
    at = start
    while at < end:
        uuid = f"{prefix}{n:04d}-5a1e-4c2b-9d7e-000000000000"
        events += [
            TaskEvent(ts=at, state="sent", uuid=uuid, name="shop.checkout", queue="celery"),
            TaskEvent(ts=at + 0.05, state="received", uuid=uuid, worker="demo@web1"),
            TaskEvent(ts=at + 0.1, state="started", uuid=uuid, worker="demo@web1"),
            TaskEvent(ts=at + 0.3, state="succeeded", uuid=uuid, worker="demo@web1"),
        ]
        at += every
        n += 1
    return events


def _heartbeats(start: float, end: float) -> list[Event]:
    events: list[Event] = [WorkerEvent(ts=start, kind="online", hostname="demo@web1", freq=2.0)]
    at = start + 2
    while at <= end:
        events.append(WorkerEvent(ts=at, kind="heartbeat", hostname="demo@web1", freq=2.0))
        at += 2
    return events


def _by_time(events: list[Event]) -> list[Event]:
    return sorted(events, key=lambda event: event.ts)


def healthy(*, masters: tuple[str, ...] = ("mymaster",)) -> list[Event]:
    """A quiet, healthy cluster: three sentinels agree, the worker runs every task."""
    start = NOW - 600
    events = _cluster(start, masters=masters)
    events += _heartbeats(start + 3, NOW - 1)
    events += _work(NOW - 120, NOW - 1, prefix="0d")
    events.append(QueueDepth(ts=NOW - 1, queue="celery", length=0, unacked=0))
    return _by_time(events)


SWITCH_AT = NOW - 12
"""When the scripted crash failover elected the new master: 12 s before `NOW`."""


def incident() -> list[Event]:
    """A crash failover 12 s ago: the master went down, the sentinels switched, the
    worker has not run a task since; tasks pile up PENDING."""
    start = NOW - 600
    fault = SWITCH_AT - 6
    events = _cluster(start)
    events += _heartbeats(start + 3, fault)
    events += _work(NOW - 120, fault, prefix="0d")
    events.append(
        NodeUnreachable(ts=fault + 1, address=f"127.0.0.1:{OLD}", reason="connection refused")
    )
    old, new = f"127.0.0.1 {OLD}", f"127.0.0.1 {NEW}"
    for k, sentinel in enumerate(SENTINELS):
        events += [
            _message(fault + 5 + k * 0.1, sentinel, "+sdown", f"master mymaster {old}"),
        ]
    events.append(
        _message(SWITCH_AT - 0.5, SENTINELS[0], "+odown", f"master mymaster {old} #quorum 3/2")
    )
    for sentinel in SENTINELS:
        events.append(_message(SWITCH_AT, sentinel, "+switch-master", f"mymaster {old} {new}"))
        events.append(_observed(SWITCH_AT + 1, sentinel, "mymaster", NEW, 1))
    for n in range(9):
        at = fault + 1 + n * 2
        uuid = f"p{n:03d}e11a-77c1-4f0e-8a55-000000000000"
        events.append(
            TaskEvent(ts=at, state="sent", uuid=uuid, name="shop.checkout", queue="celery")
        )
    events.append(QueueDepth(ts=NOW - 1, queue="celery", length=9, unacked=1))
    return _by_time(events)


def second_master(name: str = "cache", port: int = 6479) -> list[Event]:
    """Another master the same sentinels monitor, healthy."""
    return [_observed(NOW - 500, sentinel, name, port, 0) for sentinel in SENTINELS]


def prometheus_lagging() -> list[Event]:
    """Prometheus's last scrape is from before the switch: it still shows the old master."""
    return [
        PrometheusObserved(
            ts=NOW - 0.5,
            master="mymaster",
            address=f"127.0.0.1:{OLD}",
            sample_ts=SWITCH_AT - 0.4,
            status=1.0,
            ok_sentinels=3.0,
            ok_slaves=2.0,
            ckquorum=1.0,
            sentinels_up=3,
            nodes_up=3,
            nodes=3,
            links_up=2,
            addresses=(f"127.0.0.1:{OLD}",),
            master_status="ok",
        )
    ]
