"""Sentinel's pub/sub messages (``PSUBSCRIBE *``) as typed events: a pure parser.

A sentinel publishes each event on a channel named after it (``+sdown``,
``+switch-master`` ...) with one space-separated string as the payload. The
payload's shape depends only on the channel, so the parser is chosen by the
channel name, never by the payload's first word: a master may well be called
``master``. Payloads are split on spaces only, because IPv6 addresses hold
colons, a replica's name is ``ip:port`` (``[v6]:port``) and, with
``announce-hostnames yes``, an address may be a host name.

"Instance details" (``I``) are ``<type> <name> <ip> <port>`` and, when the
instance is not a master, `` @ <master-name> <master-ip> <master-port>``.

`parse_message` never raises: anything it cannot read becomes an
`UnparsedSentinelMessage` that keeps the raw text and says what was wrong, so a
new Redis version or a corrupted message shows up on screen instead of killing
the source.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from hawatch.core.cluster import format_address
from hawatch.core.events import SentinelMessage, UnparsedSentinelMessage
from hawatch.core.text import short_text

__all__ = [
    "CHANNELS",
    "TOPOLOGY_CHANNELS",
    "parse_message",
    "short_text",
]


class _Unparsable(ValueError):
    """A payload that does not have its channel's shape; the text is the `problem`."""


_Fields = dict[str, Any]
_Parser = Callable[[list[str]], _Fields]

_NUMBER = re.compile(r"[0-9]{1,20}")
"""A non-negative decimal number in ASCII digits (``str.isdigit`` accepts ``²``)."""
_VOTES = re.compile(r"[0-9]{1,10}/[0-9]{1,10}")
_TYPES = {"master": "master", "slave": "slave", "sentinel": "sentinel"}
"""Instance types as Sentinel writes them, and as `SentinelMessage.role` names them.

Valkey's aliases are accepted too (see `_TYPE_ALIASES`)."""
_TYPE_ALIASES = {"primary": "master", "replica": "slave"}


# --------------------------------------------------------------------------- fields


def _number(text: str, what: str) -> int:
    """`text` as a non-negative integer, or `_Unparsable` naming `what`."""
    if not _NUMBER.fullmatch(text):
        raise _Unparsable(f"{what} {_quote(text)} is not a number")
    return int(text)


def _address(ip: str, port: str) -> str:
    """``host:port`` (``[v6]:port``) after checking the host is there and the port is a port."""
    if not ip:
        raise _Unparsable("an address has no host")
    number = _number(port, "port")
    if not 1 <= number <= 65535:
        raise _Unparsable(f"port {number} is out of range")
    return format_address(ip, number)


def _quote(text: str, limit: int = 24) -> str:
    """`text` quoted for a problem sentence, cut short."""
    return repr(text if len(text) <= limit else text[: limit - 3] + "...")


def _count(tokens: Sequence[str], expected: int, what: str) -> None:
    """Raise `_Unparsable` unless there are exactly `expected` fields."""
    if len(tokens) != expected:
        raise _Unparsable(f"{what}: expected {expected} fields, got {len(tokens)}")


def _instance(tokens: list[str]) -> tuple[_Fields, list[str]]:
    """The instance details at the start of `tokens`, and the tokens that follow them."""
    if len(tokens) < 4:
        raise _Unparsable(f"instance details need at least 4 fields, got {len(tokens)}")
    kind, name, ip, port = tokens[:4]
    role = _TYPES.get(kind) or _TYPE_ALIASES.get(kind)
    if role is None:
        raise _Unparsable(f"instance type {_quote(kind)} is not master, slave or sentinel")
    if not name:
        raise _Unparsable(f"the {role} has no name")
    fields: _Fields = {"role": role, "instance": name, "address": _address(ip, port)}
    if role == "master":
        fields["master"] = name
        return fields, tokens[4:]
    if len(tokens) < 8 or tokens[4] != "@":
        raise _Unparsable(f"a {role}'s details need '@ <master> <ip> <port>'")
    if not tokens[5]:
        raise _Unparsable(f"the {role}'s master has no name")
    _address(tokens[6], tokens[7])
    fields["master"] = tokens[5]
    return fields, tokens[8:]


# --------------------------------------------------------------------------- channel shapes


def _switch_master(tokens: list[str]) -> _Fields:
    """``<master-name> <old-ip> <old-port> <new-ip> <new-port>``."""
    _count(tokens, 5, "+switch-master")
    if not tokens[0]:
        raise _Unparsable("+switch-master has no master name")
    return {
        "master": tokens[0],
        "old": _address(tokens[1], tokens[2]),
        "new": _address(tokens[3], tokens[4]),
    }


def _new_epoch(tokens: list[str]) -> _Fields:
    """``<epoch>``."""
    _count(tokens, 1, "+new-epoch")
    return {"epoch": _number(tokens[0], "epoch")}


def _vote_for_leader(tokens: list[str]) -> _Fields:
    """``<leader-runid> <epoch>``."""
    _count(tokens, 2, "+vote-for-leader")
    if not tokens[0]:
        raise _Unparsable("+vote-for-leader has no leader")
    return {"leader": tokens[0], "epoch": _number(tokens[1], "epoch")}


def _tilt(tokens: list[str]) -> _Fields:
    """``#tilt mode entered`` / ``#tilt mode exited``."""
    _count(tokens, 3, "tilt")
    if tokens[:2] != ["#tilt", "mode"] or not tokens[2]:
        raise _Unparsable("not '#tilt mode entered' or '#tilt mode exited'")
    return {"detail": " ".join(tokens)}


def _script(minimum: int) -> _Parser:
    """``-script-error <script> <signal> <exitcode>`` or ``-script-timeout <script> <pid>``.

    The script's path may hold spaces, so the numbers are read from the end.
    """

    def parse(tokens: list[str]) -> _Fields:
        if len(tokens) < minimum or not tokens[0]:
            raise _Unparsable(f"expected at least {minimum} fields, got {len(tokens)}")
        for token in tokens[1 - minimum :]:
            _number(token, "a script's status")
        return {"detail": " ".join(tokens)}

    return parse


def _instance_then(check: Callable[[list[str]], None]) -> _Parser:
    """Instance details followed by what `check` accepts, which becomes `detail`."""

    def parse(tokens: list[str]) -> _Fields:
        fields, rest = _instance(tokens)
        check(rest)
        if rest:
            fields["detail"] = " ".join(rest)
        return fields

    return parse


def _nothing(rest: list[str]) -> None:
    """Plain instance details: nothing may follow them."""
    if rest:
        raise _Unparsable(f"{len(rest)} unexpected field(s) after the instance details")


def _quorum_votes(rest: list[str]) -> None:
    """``#quorum <votes>/<quorum>`` (``+odown``)."""
    if len(rest) != 2 or rest[0] != "#quorum" or not _VOTES.fullmatch(rest[1]):
        raise _Unparsable("expected '#quorum <votes>/<quorum>' after the instance details")


def _monitor_quorum(rest: list[str]) -> None:
    """``quorum <n>`` (``+monitor``)."""
    if len(rest) != 2 or rest[0] != "quorum":
        raise _Unparsable("expected 'quorum <n>' after the instance details")
    _number(rest[1], "quorum")


def _role_change(rest: list[str]) -> None:
    """``new reported role is master|slave`` (``+role-change``, ``-role-change``)."""
    if len(rest) != 5 or rest[:4] != ["new", "reported", "role", "is"] or not rest[4]:
        raise _Unparsable("expected 'new reported role is <role>' after the instance details")


def _set_option(rest: list[str]) -> None:
    """``<option> [<value> ...]`` (``+set``): one, two or three words; a value may be empty."""
    if not rest or not rest[0]:
        raise _Unparsable("expected '<option> <value>' after the instance details")


def _address_switch(rest: list[str]) -> None:
    """``ip <ip> port <port> for <runid>`` (``+sentinel-address-switch``)."""
    if len(rest) != 6 or (rest[0], rest[2], rest[4]) != ("ip", "port", "for") or not rest[5]:
        raise _Unparsable("expected 'ip <ip> port <port> for <runid>' after the instance details")
    _address(rest[1], rest[3])


_PLAIN_INSTANCE = (
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
)
"""Channels whose payload is the instance details and nothing else."""

_PARSERS: dict[str, _Parser] = {
    "+switch-master": _switch_master,
    "+new-epoch": _new_epoch,
    "+vote-for-leader": _vote_for_leader,
    "+tilt": _tilt,
    "-tilt": _tilt,
    "+odown": _instance_then(_quorum_votes),
    "+monitor": _instance_then(_monitor_quorum),
    "+role-change": _instance_then(_role_change),
    "-role-change": _instance_then(_role_change),
    "+set": _instance_then(_set_option),
    "+sentinel-address-switch": _instance_then(_address_switch),
    "-script-error": _script(3),
    "-script-timeout": _script(2),
    **dict.fromkeys(_PLAIN_INSTANCE, _instance_then(_nothing)),
}
"""Every channel Sentinel publishes on (Redis 7.x, Valkey), and how to read its payload."""

CHANNELS: frozenset[str] = frozenset(_PARSERS)
"""Every channel name `parse_message` understands."""

TOPOLOGY_CHANNELS: frozenset[str] = frozenset(
    {
        "+switch-master",
        "+sdown",
        "-sdown",
        "+odown",
        "-odown",
        "+slave",
        "+sentinel",
        "-monitor",
        "+monitor",
        "+reset-master",
        "+convert-to-slave",
        "+failover-end",
        "+failover-end-for-timeout",
        "+promoted-slave",
        "+config-update-from",
        "+reboot",
        "-failover-abort-not-elected",
        "-failover-abort-no-good-slave",
        "-failover-abort-slave-timeout",
        "+slave-reconf-done",
        "+role-change",
        "-role-change",
        "+fix-slave-config",
        "+sentinel-address-switch",
        "+tilt",
        "-tilt",
    }
)
"""Channels after which the topology (masters, replicas, sentinels) should be read at once:
they say that an address, a role, a down state or the set of instances changed."""


# --------------------------------------------------------------------------- entry points


def _decode(value: object) -> tuple[str, bool]:
    """`value` as text, and whether it was valid (UTF-8 for bytes)."""
    if isinstance(value, str):
        return value, True
    if isinstance(value, bytes | bytearray | memoryview):
        raw = bytes(value)
        try:
            return raw.decode("utf-8"), True
        except UnicodeDecodeError:
            return raw.decode("utf-8", "replace"), False
    return str(value), False


def parse_message(
    channel: str | bytes, payload: str | bytes, *, sentinel: str, ts: float
) -> SentinelMessage | UnparsedSentinelMessage:
    """Parse one pub/sub message a sentinel published; never raises.

    `channel` picks the payload's shape. `sentinel` (``host:port`` of the
    publisher) and `ts` (when it arrived) are copied into the event. An unknown
    channel, a wrong number of fields, a bad number or port, or bytes that are
    not UTF-8 give an `UnparsedSentinelMessage` whose `problem` says which.
    """
    try:
        return _parse(channel, payload, sentinel=str(sentinel), ts=ts)
    except Exception as error:  # a bug here must not take the source down
        return _unparsed(channel, payload, sentinel, ts, f"parser error: {type(error).__name__}")


def _parse(
    channel: object, payload: object, *, sentinel: str, ts: float
) -> SentinelMessage | UnparsedSentinelMessage:
    name, name_ok = _decode(channel)
    text, text_ok = _decode(payload)
    if not (name_ok and text_ok):
        what = "channel" if not name_ok else "payload"
        return UnparsedSentinelMessage(
            ts=ts, sentinel=sentinel, channel=name, payload=text, problem=f"{what} is not UTF-8"
        )
    parser = _PARSERS.get(name)
    problem = f"unknown channel {_quote(name)}" if parser is None else None
    if parser is not None:
        try:
            fields = parser(text.split(" "))
        except _Unparsable as error:
            problem = str(error)
        else:
            return SentinelMessage(ts=ts, sentinel=sentinel, channel=name, payload=text, **fields)
    return UnparsedSentinelMessage(
        ts=ts, sentinel=sentinel, channel=name, payload=text, problem=str(problem)
    )


def _unparsed(
    channel: object, payload: object, sentinel: object, ts: float, problem: str
) -> UnparsedSentinelMessage:
    """The last resort: keep whatever can be kept."""
    return UnparsedSentinelMessage(
        ts=ts if isinstance(ts, int | float) else 0.0,
        sentinel=_safe_text(sentinel),
        channel=_safe_text(channel),
        payload=_safe_text(payload),
        problem=problem,
    )


def _safe_text(value: object) -> str:
    """Text for anything, without raising."""
    try:
        return _decode(value)[0]
    except Exception:
        return "?"
