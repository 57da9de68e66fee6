"""The event vocabulary: every event survives a JSON round trip; bad lines are refused."""

from __future__ import annotations

import json

import pytest

from hawatch.core.events import (
    Event,
    MasterObserved,
    SentinelReachable,
    SentinelUnreachable,
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
]


@pytest.mark.parametrize("event", SAMPLES, ids=lambda e: type(e).__name__)
def test_round_trip(event: Event) -> None:
    line = to_json(event)
    assert "\n" not in line
    assert json.loads(line)["type"] == type(event).__name__
    assert from_json(line) == event


def test_every_registered_type_has_a_sample() -> None:
    assert set(event_types()) == {type(event).__name__ for event in SAMPLES}


def test_tuples_come_back_as_tuples() -> None:
    event = from_json(to_json(SAMPLES[0]))
    assert isinstance(event, MasterObserved)
    assert event.flags == ("master", "s_down")


def test_events_are_frozen() -> None:
    with pytest.raises(AttributeError):
        SAMPLES[2].reason = "changed"  # type: ignore[misc]


def test_unknown_type_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown event type 'NoSuchEvent'.*MasterObserved"):
        from_json('{"type": "NoSuchEvent", "ts": 1.0}')


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        ('{"ts": 1.0}', '"type"'),
        ('{"type": "SentinelReachable", "ts": 1.0}', "incomplete"),
        ('{"type": "SentinelReachable", "ts": 1.0, "sentinel": "a", "x": 1}', "no field"),
    ],
)
def test_malformed_lines_are_refused(line: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        from_json(line)


def test_unregistered_event_cannot_be_written() -> None:
    with pytest.raises(ValueError, match="not a registered event type"):
        to_json(Event(ts=1.0))
