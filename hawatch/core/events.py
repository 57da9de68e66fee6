"""The event vocabulary: everything hawatch learns, as small frozen records.

Sources turn the outside world into these events, stamped with the wall-clock
time they arrived; the core folds them into state and never reads a clock. Each
event serialises to one JSON object with a ``"type"`` key, so a journal of
events can be written one per line and replayed through the same core later.

The wire format (the journal, `hawatch events`): one JSON object per line with
``"type"`` (the event's short name, e.g. ``"sentinel"``), ``"at"`` (Unix
seconds, the event's `ts`) and the event's other fields.

To add an event type: subclass `Event` as a frozen, slotted dataclass with a
``TYPE`` class variable naming it on the wire, and decorate it with `register`.
Field values must be JSON types (str, int, float, bool, None), tuples of them,
or tuples of small frozen dataclasses made of them (`ReplicaInfo`); they come
back as the same types.
"""

from __future__ import annotations

import dataclasses
import json
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, TypeVar

__all__ = [
    "BlindInfo",
    "BrokerConnected",
    "BrokerDisconnected",
    "Event",
    "FailoverRequested",
    "IncidentUpdate",
    "MasterObserved",
    "NodeObserved",
    "NodeUnreachable",
    "PeerInfo",
    "ProbeResult",
    "QueueDepth",
    "ReplicaInfo",
    "SentinelForgotten",
    "SentinelMessage",
    "SentinelReachable",
    "SentinelUnreachable",
    "SwitchInfo",
    "TaskEvent",
    "UnparsedSentinelMessage",
    "WorkerEvent",
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

    TYPE: ClassVar[str] = "event"
    """The event's name on the wire (``"type"`` in JSON); unique per registered class."""

    ts: float


_E = TypeVar("_E", bound=type[Event])
_REGISTRY: dict[str, type[Event]] = {}


def register(cls: _E) -> _E:
    """Make an event class known to `from_json` under its wire name ``cls.TYPE``.

    Apply it outside ``@dataclass``, so the registered class is the final one.
    """
    name = cls.TYPE
    if "TYPE" not in cls.__dict__:
        raise TypeError(f"event type {cls.__name__} must set its own TYPE")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(f"two event types are both called {name!r}")
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"event type {name} must be a dataclass")
    _REGISTRY[name] = cls
    return cls


def event_types() -> dict[str, type[Event]]:
    """Every registered event type by wire name: for journals, docs and tests."""
    return dict(_REGISTRY)


@dataclass(frozen=True, slots=True)
class ReplicaInfo:
    """One replica of a master as a sentinel sees it (``SENTINEL REPLICAS``)."""

    address: str
    """``host:port`` (``[v6]:port`` for IPv6)."""
    flags: tuple[str, ...] = ()
    link: str | None = None
    """``master-link-status``: ``ok`` or ``err``."""
    link_down_ms: int | None = None
    priority: int | None = None
    """``slave-priority``; 0 means it is never promoted."""
    offset: int | None = None
    """``slave-repl-offset``."""
    announced: bool | None = None
    """``replica-announced``: False for a hidden replica."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """Another sentinel of the same master (``SENTINEL SENTINELS``)."""

    address: str
    runid: str | None = None
    flags: tuple[str, ...] = ()
    last_hello_ms: int | None = None


@register
@dataclass(frozen=True, slots=True)
class MasterObserved(Event):
    """What one sentinel says about one master: ``SENTINEL MASTERS``, and when the
    topology poller asked for them, its replicas, the other sentinels and ``CKQUORUM``.

    The address with the highest `epoch` is the sentinels' latest agreed
    configuration; a sentinel with a lower epoch has not caught up yet.
    """

    TYPE: ClassVar[str] = "master"

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
    replicas: tuple[ReplicaInfo, ...] | None = None
    """The replicas it knows; None when this report did not ask (not: no replicas)."""
    peers: tuple[PeerInfo, ...] | None = None
    """The other sentinels it knows; None when this report did not ask."""
    ckquorum: str | None = None
    """The text of the ``CKQUORUM`` reply or refusal, when asked."""
    ckquorum_ok: bool | None = None
    tilt: bool | None = None
    """Whether this sentinel is in TILT mode (``INFO sentinel``), when asked."""
    failover_state: str | None = None


@register
@dataclass(frozen=True, slots=True)
class SentinelUnreachable(Event):
    """A sentinel stopped answering (or never answered); `reason` says why in a sentence."""

    TYPE: ClassVar[str] = "sentinel-down"

    sentinel: str
    reason: str


@register
@dataclass(frozen=True, slots=True)
class SentinelReachable(Event):
    """A sentinel answers (for the first time, or again after being unreachable)."""

    TYPE: ClassVar[str] = "sentinel-up"

    sentinel: str


@register
@dataclass(frozen=True, slots=True)
class SentinelMessage(Event):
    """One message a sentinel published on its pub/sub channels, parsed by channel name.

    Only the fields the channel carries are set; `payload` always holds the
    message as received. See the Sentinel reference for each channel's payload.
    """

    TYPE: ClassVar[str] = "sentinel"

    sentinel: str
    """The sentinel that published it, as ``host:port``."""
    channel: str
    """The event name, e.g. ``+switch-master``, ``+sdown``, ``+tilt``."""
    payload: str
    master: str | None = None
    """The master name the message is about (None for ``+tilt``, ``+new-epoch`` ...)."""
    role: str | None = None
    """The instance type in the message's details: ``master``, ``slave`` or ``sentinel``."""
    instance: str | None = None
    """The instance's name: the master name, a replica's ``ip:port`` or a sentinel's run id."""
    address: str | None = None
    """The instance's ``host:port``."""
    old: str | None = None
    """``+switch-master``: the old master's ``host:port``."""
    new: str | None = None
    """``+switch-master``: the new master's ``host:port``."""
    epoch: int | None = None
    """``+new-epoch`` and ``+vote-for-leader``."""
    leader: str | None = None
    """``+vote-for-leader``: the run id voted for."""
    detail: str | None = None
    """What follows the instance details: ``#quorum 2/2``, ``new reported role is master`` ..."""


@register
@dataclass(frozen=True, slots=True)
class UnparsedSentinelMessage(Event):
    """A pub/sub message that could not be parsed: kept whole, never an exception."""

    TYPE: ClassVar[str] = "sentinel-unparsed"

    sentinel: str
    channel: str
    payload: str
    problem: str
    """Why it could not be parsed, in a few words."""


@register
@dataclass(frozen=True, slots=True)
class NodeObserved(Event):
    """What a data node says about itself: ``ROLE`` and ``INFO replication``."""

    TYPE: ClassVar[str] = "node"

    address: str
    role: str
    """``master`` or ``slave`` (the node's own word)."""
    master_address: str | None = None
    """For a replica: the master it replicates from."""
    link: str | None = None
    """For a replica: ``master_link_status`` (``up``/``down``)."""
    offset: int | None = None
    """The node's replication offset."""
    connected_replicas: int | None = None


@register
@dataclass(frozen=True, slots=True)
class NodeUnreachable(Event):
    """A data node did not answer ``ROLE``; `reason` says why in a sentence."""

    TYPE: ClassVar[str] = "node-down"

    address: str
    reason: str


@register
@dataclass(frozen=True, slots=True)
class FailoverRequested(Event):
    """The operator asked a sentinel for ``SENTINEL FAILOVER``, and what it answered."""

    TYPE: ClassVar[str] = "failover-requested"

    master: str
    sentinel: str
    reply: str
    """``OK``, or the refusal in words (``INPROG ...``, ``NOPERM ...``, a timeout)."""
    accepted: bool


@register
@dataclass(frozen=True, slots=True)
class SentinelForgotten(Event):
    """A sentinel hawatch had discovered is no longer part of the deployment: no sentinel
    lists it any more, so it is no longer watched (not the same as unreachable)."""

    TYPE: ClassVar[str] = "sentinel-forgotten"

    sentinel: str
    reason: str


@register
@dataclass(frozen=True, slots=True)
class TaskEvent(Event):
    """One Celery task event (``task-sent``, ``task-received``, ``task-started`` ...).

    Fields Celery did not send are None; the tracker counts and ignores events
    it cannot use (no id, an unknown state) instead of failing on them.
    """

    TYPE: ClassVar[str] = "task"

    state: str
    """The event's word without ``task-``: ``sent``, ``received``, ``started``,
    ``succeeded``, ``failed``, ``retried``, ``revoked``, ``rejected``."""
    uuid: str | None
    name: str | None = None
    worker: str | None = None
    """The hostname of the worker that sent the event (None for ``sent``)."""
    queue: str | None = None
    """The routing key / queue, when the event carries it (``task-sent``)."""
    retries: int | None = None
    runtime: float | None = None
    """Seconds the task ran (``task-succeeded``)."""
    exception: str | None = None
    clock: float | None = None
    """The timestamp Celery put in the event, on the sender's clock."""
    via: str | None = None
    """The broker node the event was read from, as ``host:port``; None when unknown.

    While the old master of a graceful failover still accepts writes (until Sentinel
    converts it to a replica), the event source listens on it as well as on the new
    master: a ``succeeded`` event read via the old master is a result that will be
    discarded when it resyncs (see `hawatch.core.incidents`, "results at risk")."""


@register
@dataclass(frozen=True, slots=True)
class WorkerEvent(Event):
    """A Celery worker event: ``worker-online``, ``worker-heartbeat``, ``worker-offline``."""

    TYPE: ClassVar[str] = "worker"

    kind: str
    """``online``, ``heartbeat`` or ``offline``."""
    hostname: str | None
    active: int | None = None
    processed: int | None = None
    freq: float | None = None
    """The heartbeat period the worker announces, in seconds."""
    clock: float | None = None


@register
@dataclass(frozen=True, slots=True)
class BrokerConnected(Event):
    """A Celery-side source is connected to the broker (again): its blind window ends."""

    TYPE: ClassVar[str] = "broker-up"

    source: str
    """Which source: ``celery-events``, ``queues``, ``canary``."""
    address: str | None = None
    """The master it reached, ``host:port``, when known."""


@register
@dataclass(frozen=True, slots=True)
class BrokerDisconnected(Event):
    """A Celery-side source lost the broker: events published from now on may be missed."""

    TYPE: ClassVar[str] = "broker-down"

    source: str
    reason: str


@register
@dataclass(frozen=True, slots=True)
class QueueDepth(Event):
    """How many messages wait in a queue (``LLEN``, priority sub-queues included) and how
    many are delivered but unacknowledged, read through the current master."""

    TYPE: ClassVar[str] = "queue"

    queue: str
    length: int
    unacked: int | None = None
    address: str | None = None
    """The master it was read from."""


@register
@dataclass(frozen=True, slots=True)
class ProbeResult(Event):
    """One step of a probe's round trip: a canary task sent, started, succeeded, or not
    sent; or one HTTP probe's answer (`hawatch.sources.http_probe`)."""

    TYPE: ClassVar[str] = "probe"

    probe: str
    """``canary``, or an HTTP probe's name, which starts with ``http`` (``http GET
    127.0.0.1:8801/health``)."""
    phase: str
    """The canary: ``sent``, ``started``, ``succeeded``, ``failed``, ``send-failed``; an
    HTTP probe: ``ok`` or ``failed``."""
    ok: bool
    task_id: str | None = None
    latency: float | None = None
    """Seconds since the probe was sent, for ``started`` and ``succeeded``; an HTTP
    probe: the request's round trip (until the error, for a failure)."""
    detail: str | None = None


@register
@dataclass(frozen=True, slots=True)
class PrometheusObserved(Event):
    """What Prometheus says about one master, from one round of queries.

    `ts` is when hawatch got the answer; `sample_ts` is the time of the newest sample
    it is based on (Prometheus's scrape), so ``ts - sample_ts`` is the data's age.
    """

    TYPE: ClassVar[str] = "prometheus"

    master: str
    address: str | None
    """The ``master_address`` whose ``redis_sentinel_master_status`` is 1 (the most
    sentinels' view); None when Prometheus has no such series."""
    sample_ts: float | None = None
    status: float | None = None
    """``redis_sentinel_master_status`` of that address (1: ok)."""
    ok_sentinels: float | None = None
    ok_slaves: float | None = None
    ckquorum: float | None = None
    sentinels_up: int | None = None
    """Sentinels whose exporter reports ``redis_instance_info{redis_mode="sentinel"}``."""
    nodes_up: int | None = None
    """Instances with ``redis_up`` 1."""
    nodes: int | None = None
    """Instances with a ``redis_up`` series."""
    links_up: int | None = None
    """Replicas with ``redis_master_link_up`` 1."""
    addresses: tuple[str, ...] = ()
    """Every ``master_address`` Prometheus reports for this master (more than one: the
    sentinels disagree in Prometheus's view)."""
    extra: tuple[tuple[str, str], ...] = ()
    """(PromQL the user configured, its value in a few words)."""
    master_status: str | None = None
    """Sentinel's word for `address` (the ``master_status`` label: ``ok``, ``sdown``,
    ``odown``), so the views can say it instead of a number."""


@register
@dataclass(frozen=True, slots=True)
class PrometheusUnreachable(Event):
    """A round of queries to Prometheus failed; `reason` says why in a sentence (redacted)."""

    TYPE: ClassVar[str] = "prometheus-down"

    reason: str


@dataclass(frozen=True, slots=True)
class BlindInfo:
    """A time a Celery-side source was disconnected from the broker during an incident."""

    start: float
    end: float | None
    """None while it lasts."""
    source: str
    """Which source: ``celery-events``, ``queues``, ``canary``."""
    reason: str


@dataclass(frozen=True, slots=True)
class SwitchInfo:
    """One change of master during an incident (``+switch-master``, or the sentinels'
    topology at a higher config epoch): when it was first seen, from where, to where."""

    ts: float
    old: str | None
    """The master that lost the role, ``host:port`` (None when unknown)."""
    new: str


@register
@dataclass(frozen=True, slots=True)
class IncidentUpdate(Event):
    """The incident model's progress on one incident: a phase reached, or the close.

    Derived from other events by `hawatch.core.incidents.IncidentModel`, so the
    core ignores it when a journal is replayed (the replay recomputes it). `ts` is
    when the model produced it, on the events' clock; the phase times are in the
    fields named after the phases (Unix seconds, None until reached). Every update
    carries the whole incident as known at that moment; figures not final yet
    (an incident not resumed) are None here: the live, ticking ones are in the
    model's snapshot.
    """

    TYPE: ClassVar[str] = "incident"

    id: str
    """``<master>-<n>``: the master's name and its incident number, stable across updates."""
    master: str
    status: str
    """``open`` or ``closed``."""
    reached: str | None
    """The phase this update reports (``fault``, ``detected``, ``elected``, ``switched``,
    ``resumed``, ``demoted``, ``closed``), or None for another change (an abort, a phase
    moved earlier by evidence that arrived late, the users' resume or Prometheus's view
    learnt: those two also after the close, see `hawatch.core.incidents`, "Late figures")."""
    old_master: str | None = None
    """The master's address when the fault began (``host:port``), when known."""
    new_master: str | None = None
    """The address of the last switch, when there was one."""
    fault: float | None = None
    detected: float | None = None
    elected: float | None = None
    switched: float | None = None
    """The last switch of the incident (the gap is measured from it)."""
    resumed: float | None = None
    demoted: float | None = None
    closed: float | None = None
    gap_s: float | None = None
    """resumed − switched."""
    outage_s: float | None = None
    """resumed − fault; for an incident without a failover, back − fault."""
    split_brain_s: float | None = None
    """demoted − the switch away from the old master."""
    sent: int = 0
    """``task-sent`` events between the fault and the close."""
    completed: int = 0
    """``task-succeeded`` and ``task-failed`` events between the fault and the close."""
    pending_at_switch: int | None = None
    lost: int | None = None
    duplicated: int | None = None
    results_at_risk: int | None = None
    blind_windows: tuple[BlindInfo, ...] = ()
    switches: tuple[SwitchInfo, ...] = ()
    aborted: bool = False
    """A failover attempt aborted and no switch followed it."""
    note: str | None = None
    """What an on-call engineer should know, in a sentence or two (an abort, a master
    that came back without a failover, an old master never seen demoted)."""
    user_resumed: float | None = None
    """The first successful HTTP probe at or after the (last) switch: the users' resume."""
    user_gap_s: float | None = None
    """user_resumed − switched."""
    user_failed: float | None = None
    """When the HTTP probes began failing: the start of the failures under way at or
    after the fault (possibly before it: a crash fails users before Sentinel notices)."""
    user_outage_s: float | None = None
    """user_resumed − user_failed."""
    prometheus_seen: float | None = None
    """When Prometheus first showed the new master (at or after the last switch)."""
    prometheus_lag_s: float | None = None
    """prometheus_seen − switched: how far the scraped view lagged behind the live one."""
    http_probed: bool = False
    """HTTP probes ran: the user_* figures mean something (None there: not seen yet)."""
    prometheus_watched: bool = False
    """Prometheus was queried: the prometheus_* figures mean something."""


@register
@dataclass(frozen=True, slots=True)
class SessionStarted(Event):
    """hawatch started watching, with the choices that shape its figures.

    The first line of every journal that has a Celery side; a replay takes the
    same choices from it, so it computes exactly the figures computed live.
    """

    TYPE: ClassVar[str] = "session"

    broker_master: str | None
    """The master name whose cluster is the Celery broker ("" for a plain Redis broker)."""
    celery: bool
    """Whether the Celery side was watched."""
    lost_after: float
    max_tasks: int
    canary_rate: float = 0.0
    version: str | None = None
    """hawatch's version."""


def to_json(event: Event) -> str:
    """One JSON object for `event`: ``type``, ``at`` (its `ts`), then its other fields."""
    cls = type(event)
    if _REGISTRY.get(cls.TYPE) is not cls:
        raise ValueError(f"{cls.__name__} is not a registered event type")
    obj: dict[str, Any] = {"type": cls.TYPE, "at": event.ts}
    for field in dataclasses.fields(event):
        if field.name != "ts":
            obj[field.name] = _freeze(getattr(event, field.name))
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _freeze(value: Any) -> Any:
    """Nested dataclasses (`ReplicaInfo`) as JSON objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _freeze(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_freeze(item) for item in value]
    return value


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
    if "at" in obj:
        obj["ts"] = obj.pop("at")
    names = {field.name for field in dataclasses.fields(cls)}
    unexpected = sorted(set(obj) - names)
    if unexpected:
        raise ValueError(f"{name} has no field(s) {', '.join(unexpected)}")
    hints = _hints(cls)
    try:
        return cls(**{key: _thaw(value, hints.get(key)) for key, value in obj.items()})
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} is incomplete or malformed: {error}") from None


def _hints(cls: type) -> dict[str, Any]:
    """The resolved field types of a dataclass (cached per class)."""
    cached = _HINTS.get(cls)
    if cached is None:
        cached = _HINTS[cls] = typing.get_type_hints(cls)
    return cached


_HINTS: dict[type, dict[str, Any]] = {}


def _nested_class(hint: Any) -> type | None:
    """The dataclass inside a hint like ``tuple[ReplicaInfo, ...] | None``, if any."""
    for arg in typing.get_args(hint):
        if isinstance(arg, type) and dataclasses.is_dataclass(arg):
            return arg
        inner = _nested_class(arg)
        if inner is not None:
            return inner
    return None


def _thaw(value: Any, hint: Any = None) -> Any:
    """JSON arrays back into tuples, and JSON objects into the nested dataclass of `hint`."""
    if isinstance(value, list):
        nested = _nested_class(hint) if hint is not None else None
        if nested is not None:
            return tuple(
                nested(**{k: _thaw(v) for k, v in item.items()})
                if isinstance(item, dict)
                else _thaw(item)
                for item in value
            )
        return tuple(_thaw(item) for item in value)
    return value
