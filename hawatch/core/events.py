"""The event vocabulary: everything hawatch learns, as small frozen records.

Sources turn the outside world into these events, stamped with the wall-clock
time they arrived; the core folds them into state and never reads a clock. Each
event serialises to one JSON object with a ``"type"`` key, so a journal of
events can be written one per line and replayed through the same core later.

To add an event type: subclass `Event` as a frozen, slotted dataclass and
decorate it with `register`. Field values must be JSON types (str, int, float,
bool, None) or tuples of them; tuples come back as tuples.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, TypeVar

__all__ = [
    "Event",
    "MasterObserved",
    "SentinelReachable",
    "SentinelUnreachable",
    "event_types",
    "from_json",
    "register",
    "to_json",
]


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event: something that happened at `ts` (epoch seconds).

    `ts` is set by the source when the event arrives, never by the core, so
    that replaying a journal reproduces exactly the same state.
    """

    ts: float


_E = TypeVar("_E", bound=type[Event])
_REGISTRY: dict[str, type[Event]] = {}


def register(cls: _E) -> _E:
    """Make an event class known to `from_json` under its class name.

    Apply it outside ``@dataclass``, so the registered class is the final one.
    """
    name = cls.__name__
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"two event types are both called {name!r}")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"event type {name} must be a dataclass")
    _REGISTRY[name] = cls
    return cls


def event_types() -> dict[str, type[Event]]:
    """Every registered event type by name: for journals, docs and tests."""
    return dict(_REGISTRY)


@register
@dataclass(frozen=True, slots=True)
class MasterObserved(Event):
    """What one sentinel said about one master in a ``SENTINEL MASTERS`` reply.

    The address with the highest `epoch` is the sentinels' latest agreed
    configuration; a sentinel with a lower epoch has not caught up yet.
    """

    sentinel: str
    """The sentinel that answered, as ``host:port``."""
    master: str
    """The master's name, as configured with ``sentinel monitor``."""
    ip: str
    port: int
    epoch: int | None
    """The master's ``config-epoch``; None when the sentinel did not report one."""
    flags: tuple[str, ...] = ()
    """Sentinel's flags for the master, e.g. ``master``, ``s_down``, ``failover_in_progress``."""
    num_slaves: int | None = None
    num_other_sentinels: int | None = None
    quorum: int | None = None


@register
@dataclass(frozen=True, slots=True)
class SentinelUnreachable(Event):
    """A sentinel stopped answering (or never answered); `reason` says why in a sentence."""

    sentinel: str
    reason: str


@register
@dataclass(frozen=True, slots=True)
class SentinelReachable(Event):
    """A sentinel answers (for the first time, or again after being unreachable)."""

    sentinel: str


def to_json(event: Event) -> str:
    """One JSON object for `event`, with its type name under ``"type"``."""
    name = type(event).__name__
    if _REGISTRY.get(name) is not type(event):
        raise ValueError(f"{name} is not a registered event type")
    obj: dict[str, Any] = {"type": name}
    for field in dataclasses.fields(event):
        obj[field.name] = getattr(event, field.name)
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def from_json(line: str) -> Event:
    """The event that `to_json` wrote; a clear `ValueError` for anything else."""
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as error:
        raise ValueError(f"an event line is not valid JSON: {error}") from None
    if not isinstance(obj, dict):
        raise ValueError("an event line must be a JSON object")
    name = obj.pop("type", None)
    if not isinstance(name, str):
        raise ValueError('an event line has no "type" key')
    cls = _REGISTRY.get(name)
    if cls is None:
        known = ", ".join(sorted(_REGISTRY))
        raise ValueError(f"unknown event type {name!r} (known types: {known})")
    names = {field.name for field in dataclasses.fields(cls)}
    unexpected = sorted(set(obj) - names)
    if unexpected:
        raise ValueError(f"{name} has no field(s) {', '.join(unexpected)}")
    try:
        return cls(**{key: _thaw(value) for key, value in obj.items()})
    except TypeError as error:
        raise ValueError(f"{name} is incomplete: {error}") from None


def _thaw(value: Any) -> Any:
    """JSON arrays back into the tuples that frozen events hold."""
    if isinstance(value, list):
        return tuple(_thaw(item) for item in value)
    return value
