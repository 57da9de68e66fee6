"""Ask every sentinel ``SENTINEL MASTERS`` over and over, and emit what they say.

The poller is the foundation of the sentinel source: it turns replies into
`MasterObserved` events and failures into `SentinelUnreachable` (with a reason
an on-call engineer can act on) and `SentinelReachable` when a sentinel answers.
Each sentinel is polled by its own loop, so a sentinel that hangs (SIGSTOP, a
partition) never delays the news from the others.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import redis.asyncio as aioredis
from redis import exceptions as rex
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hawatch.core.events import (
    Event,
    MasterObserved,
    SentinelReachable,
    SentinelUnreachable,
)
from hawatch.settings import SentinelAddress, Settings

__all__ = ["SentinelPoller", "UnexpectedReply", "describe_error", "parse_masters_reply"]

log = logging.getLogger(__name__)


class UnexpectedReply(ValueError):
    """A sentinel answered ``SENTINEL MASTERS`` with something that is not a list of masters."""


def _text(value: object) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


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


def describe_error(error: BaseException, *, timeout: float) -> str:
    """One short sentence saying why a sentinel did not answer, never holding a password."""
    chain = list(_causes(error))
    message = " ".join(str(e) for e in chain).lower()
    for cause in chain:
        if isinstance(cause, rex.NoPermissionError | rex.AuthorizationError):
            return "NOPERM: this user may not run SENTINEL MASTERS"
        if isinstance(cause, rex.AuthenticationWrongNumberOfArgsError):
            return "authentication failed: this sentinel has no users, give only a password"
        if isinstance(cause, rex.AuthenticationError):
            if getattr(cause, "status_code", None) == "NOAUTH" or (
                "noauth" in message
                or "authentication required" in message
                or "already authenticated" in message
            ):
                return "authentication required: this sentinel needs a password"
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
        return "connection closed by the sentinel"
    if "ssl" in message or "tls" in message:
        return "TLS handshake failed: check that this port speaks TLS"
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    text = text if len(text) <= 80 else text[:77] + "..."
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class SentinelPoller:
    """Polls every sentinel of `settings` with ``SENTINEL MASTERS`` and emits events.

    `emit` is called on the event loop for every `MasterObserved`, and for each
    change of a sentinel's reachability (`SentinelReachable` on its first answer
    and when it recovers, `SentinelUnreachable` when it starts failing or fails
    for a different reason). `run` never raises except `asyncio.CancelledError`.
    """

    def __init__(
        self,
        settings: Settings,
        emit: Callable[[Event], None],
        *,
        interval: float = 0.5,
        timeout: float = 1.0,
    ) -> None:
        self.settings = settings
        self.interval = interval
        self.timeout = timeout
        self._emit = emit
        self._clients: dict[SentinelAddress, aioredis.Redis] = {}
        self._failing: dict[SentinelAddress, str | None] = {}
        """Per sentinel: None while it answers, the failure reason while it does not."""

    async def run(self) -> None:
        """Poll every sentinel every `interval` seconds until cancelled; then close clients."""
        try:
            async with asyncio.TaskGroup() as group:
                for address in self.settings.sentinels:
                    group.create_task(self._loop(address), name=f"poll {address}")
                if not self.settings.sentinels:
                    await asyncio.Event().wait()  # nothing to ask; still run until cancelled
        finally:
            await self.aclose()

    async def poll_once(self) -> None:
        """Ask every sentinel once, concurrently, and emit what they said."""
        await asyncio.gather(*(self._poll(address) for address in self.settings.sentinels))

    async def aclose(self) -> None:
        """Close every client; the next poll opens new ones."""
        clients, self._clients = self._clients, {}
        for client in clients.values():
            await self._close(client)

    async def _loop(self, address: SentinelAddress) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            await self._poll(address)
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    def _client(self, address: SentinelAddress) -> aioredis.Redis:
        client = self._clients.get(address)
        if client is None:
            kwargs: dict[str, Any] = {
                "host": address.host,
                "port": address.port,
                "socket_timeout": self.timeout,
                "socket_connect_timeout": self.timeout,
                "decode_responses": True,
                # The poll loop is the retry: a retry inside redis-py would only hide
                # a dead sentinel for several timeouts.
                "retry": Retry(NoBackoff(), 0),
            }
            kwargs.update(self.settings.redis_kwargs())
            client = aioredis.Redis(**kwargs)
            self._clients[address] = client
        return client

    async def _poll(self, address: SentinelAddress) -> None:
        name = str(address)
        try:
            client = self._client(address)
            async with asyncio.timeout(self.timeout):
                reply = await client.sentinel_masters()
            ts = time.time()
            events = parse_masters_reply(reply, sentinel=name, ts=ts, only=self.settings.masters)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            broken = self._clients.pop(address, None)
            if broken is not None:
                await self._close(broken)
            reason = self.settings.redact(describe_error(error, timeout=self.timeout))
            if self._failing.get(address, "") != reason:
                self._failing[address] = reason
                self._send(SentinelUnreachable(ts=time.time(), sentinel=name, reason=reason))
            return
        if address not in self._failing or self._failing[address] is not None:
            self._failing[address] = None
            self._send(SentinelReachable(ts=ts, sentinel=name))
        for event in events:
            self._send(event)

    def _send(self, event: Event) -> None:
        try:
            self._emit(event)
        except Exception:
            log.exception("the consumer of sentinel events failed on %r", event)

    async def _close(self, client: aioredis.Redis) -> None:
        try:
            # A hung peer must not hold up the poll loop while we hang up on it.
            async with asyncio.timeout(self.timeout):
                await client.aclose()
        except Exception:
            log.debug("closing a sentinel client failed", exc_info=True)
