"""The Sentinel source: everything hawatch learns from the sentinels, as events.

`SentinelWatcher` is the full source. It discovers every sentinel of each
master from a few seed addresses, listens to each one's pub/sub messages
(``PSUBSCRIBE *``), reads each one's view of the topology (masters, replicas,
other sentinels, ``CKQUORUM``, TILT) on a timer and at once after a message
that changes it, asks every data node for its own ``ROLE``, and watches each
sentinel's health with a ``PING`` watchdog, reconnecting with backoff. Each
sentinel has its own connections and tasks, so one that hangs (SIGSTOP, a
partition) never delays the news from the others.

Failures become `SentinelUnreachable` with a reason an on-call engineer can act
on (`describe_error`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import errno
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hawatch.core.events import (
    Event,
    MasterObserved,
    NodeObserved,
    NodeUnreachable,
    PeerInfo,
    ReplicaInfo,
    SentinelForgotten,
    SentinelReachable,
    SentinelUnreachable,
)
from hawatch.settings import SentinelAddress, Settings, SettingsError, parse_address
from hawatch.sources.sentinel_messages import TOPOLOGY_CHANNELS, parse_message

__all__ = [
    "SentinelWatcher",
    "UnexpectedReply",
    "check_cancelled",
    "describe_error",
    "parse_ckquorum",
    "parse_masters_reply",
    "parse_node_replies",
    "parse_replicas_reply",
    "parse_sentinels_reply",
    "reason_kind",
    "unreachable_advice",
]

_T = TypeVar("_T")

log = logging.getLogger(__name__)


class UnexpectedReply(ValueError):
    """A sentinel answered ``SENTINEL MASTERS`` with something that is not a list of masters."""


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _optional_text(value: object) -> str | None:
    return None if value is None or value == "" else _text(value)


def _optional_int(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(_text(value))
    except ValueError:
        return None


def _flags(value: object) -> tuple[str, ...]:
    """Sentinel flags as a sorted tuple: RESP2 sends ``"master,s_down"``, RESP3 parsing a set."""
    if value is None:
        return ()
    if isinstance(value, str | bytes):
        items: Iterable[object] = _text(value).split(",")
    elif isinstance(value, Iterable):
        items = value
    else:
        return ()
    return tuple(sorted({_text(item).strip() for item in items} - {""}))


def _entries(reply: object) -> Iterator[Mapping[Any, Any]]:
    """Each master's field map, whatever shape the client library returned.

    redis-py 8 returns a dict keyed by master name (RESP2 and RESP3); older or
    raw replies are a list of dicts, or a list of flat field/value lists.
    """
    if isinstance(reply, Mapping):
        values = list(reply.values())
        if all(isinstance(value, Mapping) for value in values):
            yield from values
            return
        if "name" in reply:
            yield reply
            return
        raise UnexpectedReply("a map that is neither masters by name nor one master")
    if isinstance(reply, list | tuple):
        for item in reply:
            if isinstance(item, Mapping):
                yield item
            elif isinstance(item, list | tuple) and len(item) % 2 == 0:
                yield {_text(k): v for k, v in zip(item[::2], item[1::2], strict=True)}
            else:
                raise UnexpectedReply(f"a master entry of type {type(item).__name__}")
        return
    raise UnexpectedReply(f"a reply of type {type(reply).__name__}")


def parse_masters_reply(
    reply: object, *, sentinel: str, ts: float, only: Iterable[str] = ()
) -> list[MasterObserved]:
    """`MasterObserved` events from one ``SENTINEL MASTERS`` reply, sorted by master name.

    `only` keeps just those master names (empty keeps all). Raises `UnexpectedReply`
    when the reply is not a list of masters with a name, an ip and a port.
    """
    wanted = set(only)
    events = []
    for raw in _entries(reply):
        entry = {_text(key): value for key, value in raw.items()}
        name, ip, port = entry.get("name"), entry.get("ip"), _optional_int(entry.get("port"))
        if name is None or ip is None or port is None:
            raise UnexpectedReply("a master without a name, ip or port")
        if wanted and _text(name) not in wanted:
            continue
        events.append(
            MasterObserved(
                ts=ts,
                sentinel=sentinel,
                master=_text(name),
                ip=_text(ip),
                port=port,
                epoch=_optional_int(entry.get("config-epoch")),
                flags=_flags(entry.get("flags")),
                num_slaves=_optional_int(entry.get("num-slaves")),
                num_other_sentinels=_optional_int(entry.get("num-other-sentinels")),
                quorum=_optional_int(entry.get("quorum")),
                failover_state=_optional_text(entry.get("failover-state")),
            )
        )
    events.sort(key=lambda event: event.master)
    return events


def _format_seconds(seconds: float) -> str:
    return f"{seconds:.1f}" if round(seconds, 1) == seconds else f"{seconds:g}"


def _causes(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def describe_error(error: BaseException, *, timeout: float, peer: str = "sentinel") -> str:
    """One short sentence saying why a server did not answer, never holding a password.

    `peer` names the kind of server in the sentence (``sentinel``, ``node``).
    Redact the result with `Settings.redact` before showing it: a server's own
    error text can be quoted.
    """
    chain = list(_causes(error))
    message = " ".join(str(e) for e in chain).lower()
    for cause in chain:
        if isinstance(cause, rex.NoPermissionError | rex.AuthorizationError):
            said = _first_line(str(cause))
            return f"NOPERM: {said}" if said else "NOPERM: this user may not run SENTINEL MASTERS"
        if isinstance(cause, rex.AuthenticationWrongNumberOfArgsError):
            return f"authentication failed: this {peer} has no users, give only a password"
        if isinstance(cause, rex.AuthenticationError):
            if getattr(cause, "status_code", None) == "NOAUTH" or (
                "noauth" in message
                or "authentication required" in message
                or "already authenticated" in message
            ):
                return f"authentication required: this {peer} needs a password"
            return "authentication failed: check the username and password"
        if isinstance(cause, rex.TimeoutError | TimeoutError):
            return f"timed out after {_format_seconds(timeout)} s"
        if isinstance(cause, ssl.SSLError):
            return "TLS handshake failed: check that this port speaks TLS"
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused"
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return "no route to host"
        if isinstance(cause, rex.InvalidResponse):
            return "not a Redis server: it does not speak the Redis protocol"
        if isinstance(cause, UnexpectedReply):
            return f"unexpected reply to SENTINEL MASTERS: {cause}"
    if "connection refused" in message or "connect call failed" in message:
        return "connection refused"
    if "name or service not known" in message or "nodename nor servname" in message:
        return "host name not found"
    if "no route to host" in message or "network is unreachable" in message:
        return "no route to host"
    if "unknown command" in message or "unknown subcommand" in message:
        return "not a sentinel: it does not know SENTINEL MASTERS"
    if "closed by server" in message or "connection reset" in message:
        return f"connection closed by the {peer}"
    if "ssl" in message or "tls" in message:
        return "TLS handshake failed: check that this port speaks TLS"
    text = _first_line(str(error))
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _first_line(text: str, limit: int = 80) -> str:
    """The first line of `text`, stripped and cut to `limit` characters."""
    line = text.strip().splitlines()[0].strip() if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


# --------------------------------------------------------------------------- what to do

_REASON_KINDS: tuple[tuple[str, str], ...] = (
    ("authentication required", "auth-required"),
    ("authentication failed: this", "no-users"),
    ("authentication failed", "auth-failed"),
    ("NOPERM", "noperm"),
    ("not a sentinel", "not-sentinel"),
    ("not a Redis server", "not-redis"),
    ("unexpected reply to SENTINEL MASTERS", "not-sentinel"),
    ("TLS handshake failed", "tls"),
    ("host name not found", "host"),
    ("connection refused", "refused"),
    ("timed out", "timeout"),
    ("no route to host", "no-route"),
)
"""The kind of each reason `describe_error` gives, by how the reason starts."""

_MISCONFIGURED = {
    "auth-required": "a password is required at {where}: give it with "
    "--url redis://:PASSWORD@HOST:PORT or HAWATCH_PASSWORD",
    "auth-failed": "wrong password or user at {where} (authentication failed): give the "
    "right ones with --url redis://:PASSWORD@HOST:PORT or HAWATCH_PASSWORD",
    "no-users": "no ACL users at {where}: give only a password, "
    "without --username or HAWATCH_USERNAME",
    "noperm": "permission denied at {where} (NOPERM): give the user the read-only "
    "monitor ACL in the README",
    "not-sentinel": "not a sentinel at {where} (a plain Redis server?): give the "
    "sentinels' addresses (port 26379 by default) with --sentinel or --url",
    "not-redis": "no Redis server at {where}: give the sentinels' addresses "
    "(port 26379 by default) with --sentinel or --url",
    "tls": "TLS handshake failed at {where}: for a TLS port give the CA with "
    "--tls-ca-cert, for a plain one use redis:// instead of rediss://",
    "host": "host name not found at {where}: check the host in --sentinel or --url, and DNS",
}
"""What to do about a reason that stays until the settings change: said whenever it happens."""

_OUTAGE = {
    "refused": "no sentinel answers: nothing listens at {where}; check --sentinel or --url "
    "and that the sentinels run; retrying",
    "timeout": "no sentinel answers: {where} did not answer in time; check the network, "
    "a firewall, or a hung sentinel; retrying",
    "no-route": "no sentinel answers: no route to {where}; check the network and "
    "the addresses; retrying",
}
"""What to do about a reason that comes and goes: said only while no sentinel answers."""


def reason_kind(reason: str) -> str:
    """The kind of a reason `describe_error` gave (``refused``, ``auth-failed`` ...), or
    ``other``."""
    for prefix, kind in _REASON_KINDS:
        if reason.startswith(prefix):
            return kind
    return "other"


def _where(addresses: Sequence[str], total: int) -> str:
    """``a``, ``a and b``, ``all 3 sentinels`` (of `total`), or ``a, b and 3 more``:
    short enough for the status line, which lists them all after."""
    if len(addresses) <= 2:
        return " and ".join(addresses)
    if len(addresses) == total:
        return f"all {total} sentinels"
    return f"{addresses[0]}, {addresses[1]} and {len(addresses) - 2} more"


def unreachable_advice(reasons: Mapping[str, str], *, answering: int) -> list[str]:
    """What to do about the sentinels that do not answer: one sentence per kind of failure.

    `reasons` maps each unreachable sentinel (``host:port``) to the reason
    `describe_error` gave; `answering` is how many sentinels answer. A setting
    that is wrong (a password, a permission, TLS, an address that is no sentinel)
    is said whenever a sentinel fails so; a failure that comes and goes (refused,
    timed out) only while no sentinel answers at all: otherwise the status line's
    list of unreachable sentinels says enough. Settings first, then the outage.
    """
    total = answering + len(reasons)
    by_kind: dict[str, list[str]] = {}
    for sentinel in sorted(reasons):
        by_kind.setdefault(reason_kind(reasons[sentinel]), []).append(sentinel)
    advice = [
        template.format(where=_where(by_kind[kind], total))
        for kind, template in _MISCONFIGURED.items()
        if kind in by_kind
    ]
    if answering:
        return advice
    for kind, template in _OUTAGE.items():
        if kind in by_kind:
            advice.append(template.format(where=_where(by_kind[kind], total)))
    others = [
        s
        for kind, found in by_kind.items()
        if kind not in (*_MISCONFIGURED, *_OUTAGE)
        for s in found
    ]
    if others:
        first = reasons[others[0]]
        advice.append(
            f"no sentinel answers ({first} at {_where(others, total)}); check --sentinel or --url "
            "and the sentinels' logs; retrying"
        )
    return advice


# --------------------------------------------------------------------------- the watcher

_BACKOFF_MIN = 0.2
"""The first wait before reconnecting to a sentinel that failed (seconds)."""
_BACKOFF_MAX = 5.0
"""The longest wait between two reconnection attempts (seconds)."""
_DEBOUNCE = 0.1
"""How long a topology read waits after a message, so that a burst triggers one read."""
_FORGET_ROUNDS = 3
"""A discovered sentinel nobody has listed for this many topology rounds is dropped."""
_RESTART_DELAY = 1.0
"""The pause before a watcher loop that failed on a bug starts again."""


@dataclass(eq=False)
class _Watched:
    """What the watcher knows about one sentinel it watches."""

    address: SentinelAddress
    seed: bool
    last_listed: float
    """Loop time this sentinel was last a seed or listed by another sentinel."""
    task: asyncio.Task[None] | None = None
    trigger: asyncio.Event = field(default_factory=asyncio.Event)
    """Set when the topology should be read now (a topology message, a reconnect)."""
    up: bool = False
    """True between `SentinelReachable` and the next `SentinelUnreachable`."""
    reason: str | None = None
    """The reason last given in `SentinelUnreachable`."""
    runid: str | None = None
    """The sentinel's run id (``SENTINEL MYID``), to recognise it under another address."""
    last_ok: float = -math.inf
    """Loop time of the last complete topology read."""
    nodes: frozenset[SentinelAddress] = frozenset()
    """The data nodes (masters and replicas) its last topology read named."""
    monitors: tuple[str, ...] = ()
    """Every master name its last ``SENTINEL MASTERS`` listed, wanted or not."""


def _address(host: object, port: object) -> SentinelAddress | None:
    """A data node's or sentinel's address from reply fields; None if malformed."""
    number = _optional_int(port)
    if host is None or number is None:
        return None
    return SentinelAddress(_text(host), number)


def _maps(reply: object) -> list[dict[str, Any]]:
    """The field maps of a ``SENTINEL REPLICAS``/``SENTINELS`` reply, keys as text."""
    if isinstance(reply, Mapping):
        reply = list(reply.values()) if all(isinstance(v, Mapping) for v in reply.values()) else []
    return [{_text(k): v for k, v in entry.items()} for entry in _entries(reply)]


def parse_replicas_reply(reply: object) -> tuple[ReplicaInfo, ...]:
    """`ReplicaInfo` for each replica in a ``SENTINEL REPLICAS`` reply, sorted by address.

    Raises `UnexpectedReply` when the reply is not a list of field maps.
    """
    replicas = []
    for entry in _maps(reply):
        address = _address(entry.get("ip"), entry.get("port"))
        if address is None:
            continue
        announced = entry.get("replica-announced")
        replicas.append(
            ReplicaInfo(
                address=str(address),
                flags=_flags(entry.get("flags")),
                link=_optional_text(entry.get("master-link-status")),
                link_down_ms=_optional_int(entry.get("master-link-down-time")),
                priority=_optional_int(entry.get("slave-priority", entry.get("replica-priority"))),
                offset=_optional_int(entry.get("slave-repl-offset")),
                announced=None if announced is None else _text(announced) not in ("0", "no"),
            )
        )
    replicas.sort(key=lambda replica: replica.address)
    return tuple(replicas)


def parse_sentinels_reply(reply: object) -> tuple[PeerInfo, ...]:
    """`PeerInfo` for each other sentinel in a ``SENTINEL SENTINELS`` reply, sorted by address.

    Raises `UnexpectedReply` when the reply is not a list of field maps.
    """
    peers = []
    for entry in _maps(reply):
        address = _address(entry.get("ip"), entry.get("port"))
        if address is None:
            continue
        peers.append(
            PeerInfo(
                address=str(address),
                runid=_optional_text(entry.get("runid")),
                flags=_flags(entry.get("flags")),
                last_hello_ms=_optional_int(entry.get("last-hello-message")),
            )
        )
    peers.sort(key=lambda peer: peer.address)
    return tuple(peers)


def parse_ckquorum(reply: object) -> tuple[str, bool | None]:
    """The text of a raw ``SENTINEL CKQUORUM`` reply and whether the quorum is reachable.

    `reply` is what the pipeline gave: ``"OK 3 usable Sentinels..."`` (or True
    from a client that reads ``+OK`` as a flag), or the error it raised:
    ``NOQUORUM ...`` is an answer (False); any other error (``NOPERM``, an
    unknown master) leaves the question open (None).
    """
    if reply is True:
        return "OK", True
    if isinstance(reply, BaseException):
        text = _first_line(str(reply), limit=200)
        return text, (False if text.upper().startswith("NOQUORUM") else None)
    text = _first_line(_text(reply), limit=200)
    return text, (True if text.upper().startswith("OK") else None)


def parse_node_replies(address: str, role: object, info: object, *, ts: float) -> NodeObserved:
    """`NodeObserved` from a data node's ``ROLE`` reply and its ``INFO replication``.

    `info` may be an exception (a user without ``+info``): the event then holds
    what ``ROLE`` says. Raises `UnexpectedReply` when ``ROLE`` is not a role.
    """
    if not isinstance(role, list | tuple) or not role:
        raise UnexpectedReply(f"ROLE answered with a {type(role).__name__}")
    kind = _text(role[0])
    fields: Mapping[str, Any] = info if isinstance(info, Mapping) else {}
    master_address = link = None
    offset = connected = None
    if kind == "master":
        offset = _optional_int(role[1]) if len(role) > 1 else None
        if len(role) > 2 and isinstance(role[2], list | tuple):
            connected = len(role[2])
    elif kind == "slave":
        upstream = _address(role[1], role[2]) if len(role) > 2 else None
        master_address = str(upstream) if upstream is not None else None
        offset = _optional_int(role[4]) if len(role) > 4 else None
        link = _optional_text(fields.get("master_link_status"))
    connected = _optional_int(fields.get("connected_slaves", connected))
    if offset is None:
        offset = _optional_int(fields.get("master_repl_offset"))
    return NodeObserved(
        ts=ts,
        address=address,
        role=kind,
        master_address=master_address,
        link=link,
        offset=offset,
        connected_replicas=connected,
    )


def check_cancelled() -> None:
    """Raise `asyncio.CancelledError` if the current task was asked to stop.

    redis-py (8.1, on Python 3.11) sometimes returns normally from a command
    whose task was cancelled at that moment: the cancellation is lost, and a
    loop around the command would run on forever. Every loop here calls this
    after each command, so that a cancelled watcher always stops.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class SentinelWatcher:
    """Watches every sentinel of a deployment: its messages, its topology, its data nodes.

    Starting from the seed addresses in `settings.sentinels`, it discovers the
    other sentinels of each master (``SENTINEL SENTINELS``) and watches each one
    on its own, so one hung sentinel never delays the news from the others:

    - ``PSUBSCRIBE *``: every message becomes a `SentinelMessage` (or an
      `UnparsedSentinelMessage`) through `parse_message`;
    - the topology (``SENTINEL MASTERS``, and per master ``REPLICAS``,
      ``SENTINELS``, ``CKQUORUM``, plus ``INFO sentinel`` for TILT) every
      `topology_interval` seconds, and at once after a reconnect or a message
      that changes the topology: one `MasterObserved` per master;
    - a watchdog ``PING`` every `watchdog_interval` seconds on a command
      connection, because a pub/sub read on a hung sentinel just waits: when
      it fails the sentinel is reported with `SentinelUnreachable` and
      reconnected with a capped exponential backoff; `SentinelReachable` once it
      answers again (after its topology was read again: the messages published
      meanwhile are lost).

    Every master and replica a sentinel names is asked ``ROLE`` and ``INFO
    replication`` once per round (`NodeObserved`, or `NodeUnreachable`), with
    `settings.node_redis_kwargs()` when the settings have it.

    `emit` is called on the event loop; an exception in it is logged, never
    fatal. `run` never raises anything but `asyncio.CancelledError`, and closes
    every connection when it is cancelled.
    """

    def __init__(
        self,
        settings: Settings,
        emit: Callable[[Event], None],
        *,
        topology_interval: float = 2.0,
        timeout: float = 1.0,
        watchdog_interval: float = 1.0,
    ) -> None:
        self.settings = settings
        self.topology_interval = topology_interval
        self.timeout = timeout
        self.watchdog_interval = watchdog_interval
        self._emit = emit
        self._watched: dict[SentinelAddress, _Watched] = {}
        self._group: asyncio.TaskGroup | None = None
        self._nodes_trigger = asyncio.Event()
        self._node_clients: dict[SentinelAddress, aioredis.Redis] = {}

    @property
    def sentinels(self) -> tuple[SentinelAddress, ...]:
        """The sentinels being watched now: the seeds and those discovered, sorted."""
        return tuple(sorted(self._watched))

    def monitored_masters(self) -> tuple[str, ...]:
        """Every master name the answering sentinels monitor, sorted, including those
        `settings.masters` leaves out (to say which names exist when one asked for does not)."""
        names = {name for w in self._watched.values() if w.up for name in w.monitors}
        return tuple(sorted(names))

    async def run(self) -> None:
        """Watch until cancelled; then close every connection."""
        try:
            async with asyncio.TaskGroup() as group:
                self._group = group
                now = asyncio.get_running_loop().time()
                for address in dict.fromkeys(self.settings.sentinels):
                    self._watch(address, seed=True, now=now)
                group.create_task(self._guarded("data nodes", self._nodes_loop))
                group.create_task(self._guarded("discovery", self._forget_loop))
        finally:
            self._group = None
            await self.aclose()

    async def aclose(self) -> None:
        """Stop watching every sentinel and close the data nodes' clients."""
        watched, self._watched = list(self._watched.values()), {}
        tasks = [w.task for w in watched if w.task is not None and not w.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        clients, self._node_clients = list(self._node_clients.values()), {}
        for client in clients:
            await self._close(client)

    # -- discovery ---------------------------------------------------------------------

    def _watch(self, address: SentinelAddress, *, seed: bool, now: float) -> None:
        """Start watching `address` (once)."""
        if address in self._watched or self._group is None:
            return
        watched = _Watched(address=address, seed=seed, last_listed=now)
        self._watched[address] = watched
        watched.task = self._group.create_task(
            self._guarded(f"sentinel {address}", lambda: self._supervise(watched)),
            name=f"watch sentinel {address}",
        )
        if not seed:
            log.info("discovered sentinel %s", address)

    def _listed(self, peers: Iterable[PeerInfo], now: float) -> None:
        """Note the sentinels another sentinel listed; watch those not watched yet."""
        runids = {w.runid: w for w in self._watched.values() if w.runid}
        for peer in peers:
            try:
                address = parse_address(peer.address, what="a sentinel's address")
            except SettingsError:
                continue
            known = self._watched.get(address)
            if known is None and peer.runid:
                known = runids.get(peer.runid)
            if known is not None:
                known.last_listed = now
            else:
                self._watch(address, seed=False, now=now)

    async def _forget_loop(self) -> None:
        """Every round, drop discovered sentinels that no reachable sentinel lists any more,
        and those that turned out to be a sentinel already watched under another address."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.topology_interval)
            now = loop.time()
            for watched in list(self._watched.values()):
                if watched.seed:
                    continue
                if self._duplicate(watched):
                    self._forget(watched, "it is a sentinel already watched at another address")
                    continue
                if now - watched.last_listed <= _FORGET_ROUNDS * self.topology_interval:
                    continue
                witnesses = [
                    w
                    for w in self._watched.values()
                    if w is not watched and w.up and w.last_ok > watched.last_listed
                ]
                if witnesses:
                    self._forget(watched, "no reachable sentinel lists it any more")

    def _duplicate(self, watched: _Watched) -> bool:
        """True if another watched sentinel (a seed, or an older one) has the same run id."""
        if watched.runid is None:
            return False
        for other in self._watched.values():
            if other is watched or other.runid != watched.runid:
                continue
            if other.seed or other.address < watched.address:
                return True
        return False

    def _forget(self, watched: _Watched, why: str) -> None:
        """Stop watching a discovered sentinel and say so once."""
        log.info("no longer watching sentinel %s: %s", watched.address, why)
        self._watched.pop(watched.address, None)
        if watched.task is not None:
            watched.task.cancel()
        self._send(SentinelForgotten(ts=time.time(), sentinel=str(watched.address), reason=why))

    # -- one sentinel ------------------------------------------------------------------

    async def _supervise(self, watched: _Watched) -> None:
        """Keep a session with one sentinel open; reconnect with backoff when it fails."""
        backoff = _BACKOFF_MIN
        while True:
            try:
                await self._session(watched)
                error: BaseException = ConnectionError("the session ended")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = exc
            check_cancelled()
            if watched.up:
                backoff = _BACKOFF_MIN
            reason = self.settings.redact(describe_error(error, timeout=self.timeout))
            self._mark_unreachable(watched, reason)
            log.debug("sentinel %s: %s; retrying in %.1f s", watched.address, reason, backoff)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _session(self, watched: _Watched) -> None:
        """Connect, subscribe, read the topology, then listen, poll and watch until a failure.

        Returns or raises when the sentinel fails; every connection of the session
        is closed on the way out.
        """
        client = self._client(watched.address, self.settings.redis_kwargs())
        pubsub = client.pubsub()
        try:
            async with asyncio.timeout(self.timeout * 2):  # connect, then the reply
                await client.execute_command("PING")
                check_cancelled()
            async with asyncio.timeout(self.timeout * 2):
                await pubsub.psubscribe("*")
                check_cancelled()
            watched.trigger.clear()  # this read covers whatever asked for one before
            events = await self._read_topology(watched, client)
            self._mark_reachable(watched)
            for event in events:
                self._send(event)
            self._nodes_trigger.set()
            await self._until_one_fails(
                self._listen(watched, pubsub),
                self._watchdog(client),
                self._topology_loop(watched, client),
            )
        finally:
            await self._close(pubsub)
            await self._close(client)

    @staticmethod
    async def _until_one_fails(*loops: Coroutine[Any, Any, None]) -> None:
        """Run `loops` side by side until one ends; stop the others; raise its error.

        Not a `TaskGroup`: on Python 3.11 a task group whose child fails while
        it is already exiting leaves its parent task marked as cancelling for
        good, and this runs once per reconnection.
        """
        tasks = [asyncio.create_task(loop) for loop in loops]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        for task in done:
            error = None if task.cancelled() else task.exception()
            if error is not None:
                raise error
        raise ConnectionError("the session ended")

    async def _listen(self, watched: _Watched, pubsub: PubSub) -> None:
        """Turn every pub/sub message into an event; ask for the topology after some."""
        name = str(watched.address)
        wanted = set(self.settings.masters)
        while True:
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=None)
            check_cancelled()
            if message is None or message.get("type") != "pmessage":
                continue
            channel, payload = _text(message.get("channel")), _text(message.get("data"))
            event = parse_message(channel, payload, sentinel=name, ts=time.time())
            master = getattr(event, "master", None)
            if wanted and master is not None and master not in wanted:
                continue
            self._send(event)
            if channel in TOPOLOGY_CHANNELS:
                watched.trigger.set()

    async def _watchdog(self, client: aioredis.Redis) -> None:
        """``PING`` every `watchdog_interval`; raise when the sentinel does not answer in time."""
        while True:
            await asyncio.sleep(self.watchdog_interval)
            async with asyncio.timeout(self.timeout):
                await client.execute_command("PING")
                check_cancelled()

    async def _topology_loop(self, watched: _Watched, client: aioredis.Redis) -> None:
        """Read the topology every `topology_interval`, and soon after each trigger."""
        while True:
            triggered = False
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.topology_interval):
                    await watched.trigger.wait()
                    triggered = True
            if triggered:
                await asyncio.sleep(_DEBOUNCE)  # let the rest of a burst arrive
            watched.trigger.clear()
            for event in await self._read_topology(watched, client):
                self._send(event)
            if triggered:
                self._nodes_trigger.set()

    async def _read_topology(
        self, watched: _Watched, client: aioredis.Redis
    ) -> list[MasterObserved]:
        """One `MasterObserved` per master, in two round trips to the sentinel.

        Raises when the sentinel fails or ``SENTINEL MASTERS`` is refused: the
        session then ends. A refused detail (``CKQUORUM``, ``REPLICAS``) only
        leaves that field empty.
        """
        name = str(watched.address)
        async with asyncio.timeout(self.timeout):
            async with client.pipeline(transaction=False) as pipe:
                pipe.execute_command("SENTINEL", "MASTERS")
                pipe.execute_command("INFO", "sentinel")
                pipe.execute_command("SENTINEL", "MYID")
                masters_reply, info, myid = await pipe.execute(raise_on_error=False)
                check_cancelled()
        if isinstance(masters_reply, BaseException):
            raise masters_reply
        ts = time.time()
        every = parse_masters_reply(masters_reply, sentinel=name, ts=ts)
        watched.monitors = tuple(master.master for master in every)
        wanted = set(self.settings.masters)
        masters = [master for master in every if not wanted or master.master in wanted]
        if isinstance(myid, str | bytes) and _text(myid):
            watched.runid = _text(myid)
        tilt = None
        if isinstance(info, Mapping) and "sentinel_tilt" in info:
            tilt = _optional_int(info["sentinel_tilt"]) == 1
        details: list[Any] = []
        if masters:
            async with asyncio.timeout(self.timeout):
                async with client.pipeline(transaction=False) as pipe:
                    for master in masters:
                        pipe.execute_command("SENTINEL", "REPLICAS", master.master)
                        pipe.execute_command("SENTINEL", "SENTINELS", master.master)
                        pipe.execute_command("SENTINEL", "CKQUORUM", master.master)
                    details = await pipe.execute(raise_on_error=False)
                    check_cancelled()
        now = asyncio.get_running_loop().time()
        events = []
        nodes: set[SentinelAddress] = set()
        for index, master in enumerate(masters):
            replicas_reply, sentinels_reply, ckquorum_reply = details[3 * index : 3 * index + 3]
            replicas = self._detail(parse_replicas_reply, replicas_reply, name, "REPLICAS")
            peers = self._detail(parse_sentinels_reply, sentinels_reply, name, "SENTINELS")
            ckquorum, ckquorum_ok = parse_ckquorum(ckquorum_reply)
            events.append(
                dataclasses.replace(
                    master,
                    replicas=replicas,
                    peers=peers,
                    ckquorum=self.settings.redact(ckquorum),
                    ckquorum_ok=ckquorum_ok,
                    tilt=tilt,
                )
            )
            nodes.add(SentinelAddress(master.ip, master.port))
            for replica in replicas or ():
                with contextlib.suppress(SettingsError):
                    nodes.add(parse_address(replica.address, what="a replica's address"))
            if peers is not None:
                self._listed(peers, now)
        watched.nodes = frozenset(nodes)
        watched.last_ok = now
        return events

    @staticmethod
    def _detail(
        parse: Callable[[object], _T], reply: object, sentinel: str, what: str
    ) -> _T | None:
        """A parsed detail reply, or None (logged) when it was refused or malformed."""
        if isinstance(reply, BaseException):
            log.debug("sentinel %s refused SENTINEL %s: %s", sentinel, what, reply)
            return None
        try:
            return parse(reply)
        except UnexpectedReply as error:
            log.warning("sentinel %s sent an odd SENTINEL %s reply: %s", sentinel, what, error)
            return None

    def _mark_reachable(self, watched: _Watched) -> None:
        """Emit `SentinelReachable` unless the sentinel is already known to answer."""
        if not watched.up:
            watched.up, watched.reason = True, None
            self._send(SentinelReachable(ts=time.time(), sentinel=str(watched.address)))

    def _mark_unreachable(self, watched: _Watched, reason: str) -> None:
        """Emit `SentinelUnreachable` when the sentinel stops answering or the reason changes."""
        if watched.up or watched.reason != reason:
            watched.up, watched.reason = False, reason
            self._send(
                SentinelUnreachable(ts=time.time(), sentinel=str(watched.address), reason=reason)
            )

    # -- data nodes --------------------------------------------------------------------

    async def _nodes_loop(self) -> None:
        """Ask every data node any sentinel names for its role, once per round."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.topology_interval):
                    await self._nodes_trigger.wait()
                    await asyncio.sleep(_DEBOUNCE)
            self._nodes_trigger.clear()
            nodes: set[SentinelAddress] = set()
            for watched in self._watched.values():
                nodes |= watched.nodes
            for gone in set(self._node_clients) - nodes:
                await self._close(self._node_clients.pop(gone))
            check_cancelled()
            events = await asyncio.gather(*(self._poll_node(node) for node in sorted(nodes)))
            check_cancelled()
            for event in events:
                self._send(event)

    async def _poll_node(self, address: SentinelAddress) -> Event:
        """`NodeObserved` from ``ROLE`` and ``INFO replication``, or `NodeUnreachable`.

        A reused connection that the node closed is tried once more on a new
        one: a failover ends with ``CLIENT KILL TYPE normal`` on every node it
        touches, which says nothing about the node being down.
        """
        for attempt in (1, 2):
            reused = address in self._node_clients
            try:
                return await self._ask_node(address)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                broken = self._node_clients.pop(address, None)
                if broken is not None:
                    await self._close(broken)
                check_cancelled()
                killed = isinstance(error, rex.ConnectionError) and not isinstance(
                    error, rex.TimeoutError
                )
                if attempt == 1 and reused and killed:
                    continue
                reason = describe_error(error, timeout=self.timeout, peer="node")
                return NodeUnreachable(
                    ts=time.time(), address=str(address), reason=self.settings.redact(reason)
                )
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    async def _ask_node(self, address: SentinelAddress) -> NodeObserved:
        """One round trip to a data node: ``ROLE`` and ``INFO replication``."""
        client = self._node_clients.get(address)
        if client is None:
            client = self._client(address, self._node_kwargs())
            self._node_clients[address] = client
        async with asyncio.timeout(self.timeout):
            async with client.pipeline(transaction=False) as pipe:
                pipe.execute_command("ROLE")
                pipe.execute_command("INFO", "replication")
                role, info = await pipe.execute(raise_on_error=False)
                check_cancelled()
        if isinstance(role, BaseException):
            raise role
        return parse_node_replies(str(address), role, info, ts=time.time())

    def _node_kwargs(self) -> dict[str, Any]:
        """Credentials for data nodes: `node_redis_kwargs()` when the settings have it."""
        node_kwargs = getattr(self.settings, "node_redis_kwargs", None)
        kwargs = node_kwargs() if callable(node_kwargs) else self.settings.redis_kwargs()
        return dict(kwargs)

    # -- plumbing ----------------------------------------------------------------------

    def _client(self, address: SentinelAddress, credentials: Mapping[str, Any]) -> aioredis.Redis:
        """A client with timeouts and without redis-py's own retries (they hide dead peers)."""
        kwargs: dict[str, Any] = {
            "host": address.host,
            "port": address.port,
            "socket_timeout": self.timeout,
            "socket_connect_timeout": self.timeout,
            "decode_responses": True,
            "retry": Retry(NoBackoff(), 0),
        }
        kwargs.update(credentials)
        return aioredis.Redis(**kwargs)

    async def _guarded(self, what: str, loop: Callable[[], Awaitable[None]]) -> None:
        """Run `loop` forever: a bug in it is logged and the loop starts again."""
        while True:
            try:
                await loop()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("the %s loop of the sentinel watcher failed; restarting it", what)
            check_cancelled()
            await asyncio.sleep(_RESTART_DELAY)

    def _send(self, event: Event) -> None:
        try:
            self._emit(event)
        except Exception:
            log.exception("the consumer of sentinel events failed on %r", event)

    async def _close(self, closable: aioredis.Redis | PubSub) -> None:
        try:
            async with asyncio.timeout(self.timeout):
                await closable.aclose()
        except Exception:
            log.debug("closing a connection failed", exc_info=True)
