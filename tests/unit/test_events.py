"""The event vocabulary: every event survives a JSON round trip; bad lines are refused."""

from __future__ import annotations

import json

import pytest

from hawatch.core.events import (
    BlindInfo,
    BrokerConnected,
    BrokerDisconnected,
    Event,
    FailoverRequested,
    IncidentUpdate,
    MasterObserved,
    NodeObserved,
    NodeUnreachable,
    PeerInfo,
    ProbeResult,
    PrometheusObserved,
    PrometheusUnreachable,
    QueueDepth,
    ReplicaInfo,
    SentinelForgotten,
    SentinelMessage,
    SentinelReachable,
    SentinelUnreachable,
    SessionStarted,
    SwitchInfo,
    TaskEvent,
    UnparsedSentinelMessage,
    WorkerEvent,
    event_types,
    from_json,
    to_json,
)

SAMPLES: list[Event] = [
    MasterObserved(
        ts=1700000000.25,
        sentinel="127.0.0.1:26379",
        master="mymaster",
        ip="127.0.0.1",
        port=6380,
        epoch=3,
        flags=("master", "s_down"),
        num_slaves=2,
        num_other_sentinels=2,
        quorum=2,
    ),
    MasterObserved(
        ts=1.0, sentinel="[::1]:26379", master="mäster", ip="::1", port=6379, epoch=None
    ),
    SentinelUnreachable(ts=2.5, sentinel="10.0.0.1:26379", reason="timed out after 1.0 s"),
    SentinelReachable(ts=3.0, sentinel="10.0.0.1:26379"),
    MasterObserved(
        ts=4.0,
        sentinel="127.0.0.1:26379",
        master="mymaster",
        ip="127.0.0.1",
        port=6380,
        epoch=1,
        replicas=(
            ReplicaInfo("127.0.0.1:6381", ("slave",), "ok", 0, 100, 1234, True),
            ReplicaInfo("[::1]:6382", ("slave", "s_down"), "err", 5000, 0, None, False),
        ),
        peers=(PeerInfo("127.0.0.1:26380", "a" * 40, ("sentinel",), 120),),
        ckquorum="OK 3 usable Sentinels. Quorum and failover authorization can be reached",
        ckquorum_ok=True,
        tilt=False,
        failover_state="none",
    ),
    SentinelMessage(
        ts=5.0,
        sentinel="127.0.0.1:26379",
        channel="+switch-master",
        payload="mymaster 127.0.0.1 6380 127.0.0.1 6381",
        master="mymaster",
        old="127.0.0.1:6380",
        new="127.0.0.1:6381",
    ),
    UnparsedSentinelMessage(
        ts=6.0, sentinel="127.0.0.1:26379", channel="+odown", payload="x", problem="too short"
    ),
    NodeObserved(
        ts=7.0,
        address="127.0.0.1:6381",
        role="slave",
        master_address="127.0.0.1:6380",
        link="up",
        offset=99,
        connected_replicas=0,
    ),
    NodeUnreachable(ts=8.0, address="127.0.0.1:6380", reason="connection refused"),
    FailoverRequested(
        ts=9.0, master="mymaster", sentinel="127.0.0.1:26379", reply="OK", accepted=True
    ),
    SentinelForgotten(ts=10.0, sentinel="127.0.0.1:26381", reason="no sentinel lists it"),
    TaskEvent(
        ts=11.0,
        state="succeeded",
        uuid="9b57ba3b-a707-4c13-9255-d74de411b64b",
        name="demo.add",
        worker="demo@host",
        queue="celery",
        retries=0,
        runtime=0.01,
        clock=10.9,
    ),
    WorkerEvent(
        ts=12.0, kind="heartbeat", hostname="demo@host", active=1, processed=7, freq=2.0, clock=11.9
    ),
    BrokerConnected(ts=13.0, source="celery-events", address="127.0.0.1:6380"),
    BrokerDisconnected(ts=14.0, source="celery-events", reason="connection reset"),
    QueueDepth(ts=15.0, queue="celery", length=12, unacked=2, address="127.0.0.1:6380"),
    ProbeResult(
        ts=16.0,
        probe="canary",
        phase="succeeded",
        ok=True,
        task_id="hawatch-canary-1",
        latency=0.05,
    ),
    PrometheusObserved(
        ts=16.5,
        master="mymaster",
        address="127.0.0.1:6380",
        sample_ts=15.9,
        status=1.0,
        ok_sentinels=3.0,
        ok_slaves=2.0,
        ckquorum=1.0,
        sentinels_up=3,
        nodes_up=2,
        nodes=3,
        links_up=1,
        addresses=("127.0.0.1:6380", "127.0.0.1:6379"),
        extra=(("sum(redis_connected_clients)", "42"),),
    ),
    PrometheusUnreachable(ts=16.7, reason="Prometheus at http://127.0.0.1:9090 timed out"),
    IncidentUpdate(
        ts=17.0,
        id="mymaster-1",
        master="mymaster",
        status="closed",
        reached="closed",
        old_master="127.0.0.1:6380",
        new_master="127.0.0.1:6381",
        fault=1.0,
        switched=2.0,
        resumed=3.5,
        closed=13.5,
        gap_s=1.5,
        outage_s=2.5,
        blind_windows=(BlindInfo(1.5, 2.5, "canary", "reset"),),
        switches=(SwitchInfo(2.0, "127.0.0.1:6380", "127.0.0.1:6381"),),
    ),
    SessionStarted(
        ts=1.0,
        broker_master="mymaster",
        celery=True,
        lost_after=30.0,
        max_tasks=100_000,
        canary_rate=1.0,
        version="0.1.0",
    ),
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip(event: Event) -> None:
    line = to_json(event)
    assert "\n" not in line
    obj = json.loads(line)
    assert obj["type"] == type(event).TYPE
    assert obj["at"] == event.ts and "ts" not in obj
    assert from_json(line) == event


def test_every_registered_type_has_a_sample() -> None:
    assert set(event_types()) == {type(event).TYPE for event in SAMPLES}


def test_nested_records_come_back_as_records() -> None:
    event = from_json(to_json(SAMPLES[4]))
    assert isinstance(event, MasterObserved) and event.replicas is not None
    assert event.replicas[1] == ReplicaInfo(
        "[::1]:6382", ("slave", "s_down"), "err", 5000, 0, None, False
    )
    assert isinstance(event.peers, tuple) and isinstance(event.peers[0], PeerInfo)


def test_tuples_come_back_as_tuples() -> None:
    event = from_json(to_json(SAMPLES[0]))
    assert isinstance(event, MasterObserved)
    assert event.flags == ("master", "s_down")


def test_events_are_frozen() -> None:
    with pytest.raises(AttributeError):
        SAMPLES[2].reason = "changed"  # type: ignore[misc]


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown event type 'NoSuchEvent'.*sentinel-up"):
        from_json('{"type": "NoSuchEvent", "ts": 1.0}')


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"ts": 1.0}', '"type"'),
        ('{"type": "sentinel-up", "at": 1.0}', "incomplete"),
        ('{"type": "sentinel-up", "at": 1.0, "sentinel": "a", "x": 1}', "no field"),
    ],
)
def test_malformed_lines_are_refused(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_json(line)


def test_unregistered_event_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="not a registered event type"):
        to_json(Event(ts=1.0))
