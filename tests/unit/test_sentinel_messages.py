"""The pub/sub message parser: every channel of the reference, odd addresses, and garbage."""

from __future__ import annotations

import random
from typing import Any

import pytest

from hawatch.core.events import SentinelMessage, UnparsedSentinelMessage
from hawatch.sources.sentinel_messages import (
    CHANNELS,
    TOPOLOGY_CHANNELS,
    parse_message,
    short_text,
)

RUNID = "8a6cae2048694b15961f115dbf2e9c69095ee1c0"
M = "master mymaster 127.0.0.1 6380"
"""Instance details of a master."""
S = "slave 127.0.0.1:6381 127.0.0.1 6381 @ mymaster 127.0.0.1 6380"
"""Instance details of a replica."""
SENT = f"sentinel {RUNID} 127.0.0.1 26380 @ mymaster 127.0.0.1 6380"
"""Instance details of a sentinel."""

MASTER: dict[str, Any] = {
    "master": "mymaster",
    "role": "master",
    "instance": "mymaster",
    "address": "127.0.0.1:6380",
}
SLAVE: dict[str, Any] = {
    "master": "mymaster",
    "role": "slave",
    "instance": "127.0.0.1:6381",
    "address": "127.0.0.1:6381",
}
SENTINEL: dict[str, Any] = {
    "master": "mymaster",
    "role": "sentinel",
    "instance": RUNID,
    "address": "127.0.0.1:26380",
}

PLAIN_CHANNELS = [
    "+sdown",
    "-sdown",
    "-odown",
    "+try-failover",
    "+elected-leader",
    "+failover-state-select-slave",
    "+failover-state-send-slaveof-noone",
    "+failover-state-wait-promotion",
    "+failover-state-reconf-slaves",
    "+failover-end",
    "+failover-end-for-timeout",
    "-failover-abort-not-elected",
    "-failover-abort-no-good-slave",
    "-failover-abort-slave-timeout",
    "+selected-slave",
    "+promoted-slave",
    "+slave-reconf-sent",
    "+slave-reconf-inprog",
    "+slave-reconf-done",
    "+slave",
    "+sentinel",
    "+reboot",
    "+convert-to-slave",
    "+fix-slave-config",
    "+reset-master",
    "-monitor",
    "+config-update-from",
]
"""Every channel of the reference whose payload is the instance details alone."""

SPECIAL: list[tuple[str, str, dict[str, Any]]] = [
    (
        "+switch-master",
        "mymaster 127.0.0.1 6380 127.0.0.1 6381",
        {"master": "mymaster", "old": "127.0.0.1:6380", "new": "127.0.0.1:6381"},
    ),
    ("+new-epoch", "7", {"epoch": 7}),
    ("+vote-for-leader", f"{RUNID} 12", {"leader": RUNID, "epoch": 12}),
    ("+tilt", "#tilt mode entered", {"detail": "#tilt mode entered"}),
    ("-tilt", "#tilt mode exited", {"detail": "#tilt mode exited"}),
    ("+odown", f"{M} #quorum 2/2", {**MASTER, "detail": "#quorum 2/2"}),
    ("+monitor", f"{M} quorum 2", {**MASTER, "detail": "quorum 2"}),
    (
        "+role-change",
        f"{S} new reported role is master",
        {**SLAVE, "detail": "new reported role is master"},
    ),
    (
        "-role-change",
        f"{S} new reported role is slave",
        {**SLAVE, "detail": "new reported role is slave"},
    ),
    (
        "+set",
        f"{M} down-after-milliseconds 1000",
        {**MASTER, "detail": "down-after-milliseconds 1000"},
    ),
    ("+set", f"{M} auth-pass ******", {**MASTER, "detail": "auth-pass ******"}),
    (
        "+set",
        f"{M} rename-command CONFIG CONFIG2",
        {**MASTER, "detail": "rename-command CONFIG CONFIG2"},
    ),
    ("+set", f"{M} notification-script ", {**MASTER, "detail": "notification-script "}),
    (
        "+sentinel-address-switch",
        f"{M} ip ::1 port 26380 for {RUNID}",
        {**MASTER, "detail": f"ip ::1 port 26380 for {RUNID}"},
    ),
    ("-script-error", "/opt/notify.sh 0 2", {"detail": "/opt/notify.sh 0 2"}),
    (
        "-script-error",
        "/opt/my scripts/notify.sh 9 0",
        {"detail": "/opt/my scripts/notify.sh 9 0"},
    ),
    ("-script-timeout", "/opt/notify.sh 4242", {"detail": "/opt/notify.sh 4242"}),
]
"""Channels with their own payload shape: (channel, payload, the fields it must set)."""

ALL_FIELDS = ("master", "role", "instance", "address", "old", "new", "epoch", "leader", "detail")


def parse(channel: str | bytes, payload: str | bytes) -> SentinelMessage | UnparsedSentinelMessage:
    return parse_message(channel, payload, sentinel="127.0.0.1:26379", ts=1700000000.5)


def assert_fields(event: object, expected: dict[str, Any]) -> None:
    assert isinstance(event, SentinelMessage), event
    got = {name: getattr(event, name) for name in ALL_FIELDS}
    assert got == {name: expected.get(name) for name in ALL_FIELDS}


@pytest.mark.parametrize("channel", PLAIN_CHANNELS)
@pytest.mark.parametrize(("details", "fields"), [(M, MASTER), (S, SLAVE), (SENT, SENTINEL)])
def test_every_instance_channel_parses_any_instance_type(
    channel: str, details: str, fields: dict[str, Any]
) -> None:
    event = parse(channel, details)
    assert_fields(event, fields)
    assert (event.ts, event.sentinel, event.channel, event.payload) == (
        1700000000.5,
        "127.0.0.1:26379",
        channel,
        details,
    )


@pytest.mark.parametrize(("channel", "payload", "fields"), SPECIAL)
def test_channels_with_their_own_shape(channel: str, payload: str, fields: dict[str, Any]) -> None:
    assert_fields(parse(channel, payload), fields)


def test_the_tables_cover_the_reference_and_nothing_else() -> None:
    assert {*PLAIN_CHANNELS, *(c for c, _p, _f in SPECIAL)} == CHANNELS
    assert TOPOLOGY_CHANNELS <= CHANNELS
    assert "+switch-master" in TOPOLOGY_CHANNELS and "+new-epoch" not in TOPOLOGY_CHANNELS


def test_ipv6_addresses_and_replica_names() -> None:
    event = parse("+sdown", "slave [::1]:6381 ::1 6381 @ mymaster ::1 6380")
    assert_fields(
        event,
        {"master": "mymaster", "role": "slave", "instance": "[::1]:6381", "address": "[::1]:6381"},
    )
    switch = parse("+switch-master", "mymaster ::1 6380 fe80::1:2 6381")
    assert_fields(switch, {"master": "mymaster", "old": "[::1]:6380", "new": "[fe80::1:2]:6381"})
    assert short_text(switch) == "+switch-master mymaster [::1]:6380 → [fe80::1:2]:6381"


def test_hostnames() -> None:
    event = parse("+monitor", "master mymaster redis-1.internal 6379 quorum 2")
    assert_fields(
        event,
        {
            "master": "mymaster",
            "role": "master",
            "instance": "mymaster",
            "address": "redis-1.internal:6379",
            "detail": "quorum 2",
        },
    )
    switch = parse("+switch-master", "mymaster redis-1.internal 6379 redis-2.internal 6379")
    assert_fields(
        switch,
        {"master": "mymaster", "old": "redis-1.internal:6379", "new": "redis-2.internal:6379"},
    )


def test_a_master_named_master_or_slave() -> None:
    assert_fields(
        parse("+sdown", "master master 127.0.0.1 6380"),
        {"master": "master", "role": "master", "instance": "master", "address": "127.0.0.1:6380"},
    )
    assert_fields(
        parse("+sdown", "slave 127.0.0.1:6381 127.0.0.1 6381 @ master 127.0.0.1 6380"),
        {**SLAVE, "master": "master"},
    )
    assert_fields(
        parse("+switch-master", "slave 127.0.0.1 6380 127.0.0.1 6381"),
        {"master": "slave", "old": "127.0.0.1:6380", "new": "127.0.0.1:6381"},
    )


def test_sentinel_run_ids() -> None:
    event = parse("+sentinel", f"sentinel {RUNID} ::1 26380 @ mymaster ::1 6380")
    assert isinstance(event, SentinelMessage)
    assert (event.role, event.instance, event.address) == ("sentinel", RUNID, "[::1]:26380")


def test_bytes_are_decoded() -> None:
    event = parse(b"+odown", f"{M} #quorum 3/2".encode())
    assert_fields(event, {**MASTER, "detail": "#quorum 3/2"})
    assert isinstance(event.channel, str) and isinstance(event.payload, str)


def test_valkey_type_aliases_are_read_as_sentinel_words() -> None:
    event = parse("+sdown", "replica 127.0.0.1:6381 127.0.0.1 6381 @ mymaster 127.0.0.1 6380")
    assert_fields(event, SLAVE)
    assert_fields(parse("+sdown", "primary mymaster 127.0.0.1 6380"), MASTER)


@pytest.mark.parametrize(
    ("channel", "payload", "problem"),
    [
        ("+unknown-event", M, "unknown channel"),
        ("+failover-detected", M, "unknown channel"),  # gone from Redis: never guess
        ("", "", "unknown channel"),
        ("+sdown", "", "at least 4 fields"),
        ("+sdown", "master mymaster 127.0.0.1", "at least 4 fields"),
        ("+sdown", f"{M} extra", "unexpected field"),
        ("+sdown", "replica-set x 127.0.0.1 6380", "instance type"),
        ("+sdown", "slave 127.0.0.1:6381 127.0.0.1 6381", "'@ <master> <ip> <port>'"),
        ("+sdown", "slave 127.0.0.1:6381 127.0.0.1 6381 # mymaster 127.0.0.1 6380", "'@"),
        ("+sdown", "slave 127.0.0.1:6381 127.0.0.1 6381 @ mymaster 127.0.0.1 x", "port"),
        ("+sdown", "master mymaster 127.0.0.1 port", "port 'port' is not a number"),
        ("+sdown", "master mymaster 127.0.0.1 70000", "port 70000 is out of range"),
        ("+sdown", "master mymaster 127.0.0.1 0", "out of range"),
        ("+sdown", "master mymaster 127.0.0.1 -1", "not a number"),
        ("+sdown", "master mymaster 127.0.0.1 ６３７９", "not a number"),  # full-width digits
        ("+sdown", "master mymaster  6380", "no host"),
        ("+sdown", "master  127.0.0.1 6380", "no name"),
        ("+sdown", "master\tmymaster\t127.0.0.1\t6380", "at least 4 fields"),  # spaces only
        ("+sdown", "master mymaster 127.0.0.1 6380\n", "not a number"),
        ("+switch-master", "mymaster 127.0.0.1 6380 127.0.0.1", "expected 5 fields, got 4"),
        ("+switch-master", "mymaster 127.0.0.1 6380 127.0.0.1 6381 x", "got 6"),
        ("+switch-master", "mymaster 127.0.0.1 6380 127.0.0.1 99999", "out of range"),
        ("+switch-master", f"{M}", "got 4"),
        ("+new-epoch", "x", "epoch 'x' is not a number"),
        ("+new-epoch", "1 2", "expected 1 fields"),
        ("+new-epoch", "", "not a number"),
        ("+vote-for-leader", RUNID, "expected 2 fields"),
        ("+vote-for-leader", f"{RUNID} -3", "not a number"),
        ("+tilt", "tilt mode entered", "#tilt mode"),
        ("+tilt", "", "expected 3 fields"),
        ("+odown", M, "#quorum"),
        ("+odown", f"{M} #quorum two", "#quorum"),
        ("+monitor", f"{M} quorum", "quorum <n>"),
        ("+monitor", f"{M} quorum x", "not a number"),
        ("+role-change", f"{M} new role is master", "new reported role"),
        ("+set", M, "<option> <value>"),
        ("+sentinel-address-switch", f"{M} ip ::1 port x for {RUNID}", "not a number"),
        ("+sentinel-address-switch", f"{M} ip ::1 port 1", "ip <ip> port <port>"),
        ("-script-error", "/opt/notify.sh 0", "at least 3 fields"),
        ("-script-error", "/opt/notify.sh x 1", "not a number"),
        ("-script-timeout", "/opt/notify.sh", "at least 2 fields"),
    ],
)
def test_malformed_messages_are_kept_with_a_problem(
    channel: str, payload: str, problem: str
) -> None:
    event = parse(channel, payload)
    assert isinstance(event, UnparsedSentinelMessage), event
    assert problem in event.problem
    assert (event.channel, event.payload, event.sentinel, event.ts) == (
        channel,
        payload,
        "127.0.0.1:26379",
        1700000000.5,
    )


def test_bytes_that_are_not_utf8() -> None:
    event = parse(b"+sdown", b"master caf\xe9 127.0.0.1 6380")
    assert isinstance(event, UnparsedSentinelMessage)
    assert event.problem == "payload is not UTF-8"
    assert event.payload == "master caf\ufffd 127.0.0.1 6380"
    channel = parse(b"+sd\xffown", M.encode())
    assert isinstance(channel, UnparsedSentinelMessage)
    assert channel.problem == "channel is not UTF-8" and channel.channel == "+sd\ufffdown"


def test_non_text_input_does_not_raise() -> None:
    event = parse_message(None, 42, sentinel="s:1", ts=1.0)  # type: ignore[arg-type]
    assert isinstance(event, UnparsedSentinelMessage)


def _garbage(rng: random.Random) -> str | bytes:
    """Random text or bytes, often close to a real payload."""
    pick = rng.random()
    if pick < 0.3:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
    if pick < 0.6:
        alphabet = "master slave sentinel @ : [ ] 127.0.0.1 6380 ::1 # quorum 2/2 \t\n\x00é"
        return "".join(rng.choice(alphabet) for _ in range(rng.randrange(60)))
    base = rng.choice([M, S, SENT, *(p for _c, p, _f in SPECIAL)]).split(" ")
    for _ in range(rng.randrange(4)):
        action = rng.randrange(3)
        if action == 0 and base:
            base.pop(rng.randrange(len(base)))
        elif action == 1:
            base.insert(rng.randrange(len(base) + 1), rng.choice(["", "@", "x", "99999", "-1"]))
        elif base:
            base[rng.randrange(len(base))] = chr(rng.randrange(0x20, 0x3000))
    return " ".join(base)


def test_random_garbage_never_raises() -> None:
    rng = random.Random(20240611)
    channels: list[str | bytes] = [*sorted(CHANNELS), "+nope", "", b"\xff\xfe", b"+sdown"]
    for _ in range(20000):
        channel = rng.choice(channels)
        event = parse(channel, _garbage(rng))
        assert isinstance(event, SentinelMessage | UnparsedSentinelMessage)
        assert isinstance(short_text(event), str)


@pytest.mark.parametrize(
    ("channel", "payload", "text"),
    [
        (
            "+switch-master",
            "mymaster 127.0.0.1 6380 127.0.0.1 6381",
            "+switch-master mymaster 127.0.0.1:6380 → 127.0.0.1:6381",
        ),
        ("+sdown", M, "+sdown master mymaster 127.0.0.1:6380"),
        ("+odown", f"{M} #quorum 2/2", "+odown master mymaster 127.0.0.1:6380 #quorum 2/2"),
        ("+sdown", S, "+sdown slave 127.0.0.1:6381"),
        ("+sdown", SENT, "+sdown sentinel 127.0.0.1:26380"),
        ("+new-epoch", "7", "+new-epoch 7"),
        ("+tilt", "#tilt mode entered", "+tilt #tilt mode entered"),
        (
            "-role-change",
            f"{S} new reported role is master",
            "-role-change slave 127.0.0.1:6381 new reported role is master",
        ),
        ("+nope", "a b", "+nope a b (unparsed: unknown channel '+nope')"),
    ],
)
def test_short_text(channel: str, payload: str, text: str) -> None:
    assert short_text(parse(channel, payload)) == text


def test_short_text_is_safe_for_a_terminal() -> None:
    event = parse("+sdown", "master evil\x1b[2J 127.0.0.1 6380")
    assert short_text(event) == "+sdown master evil\ufffd[2J 127.0.0.1:6380"
    long = parse("+nope", "x" * 500)
    assert len(short_text(long)) < 200 and "\x1b" not in short_text(long)
