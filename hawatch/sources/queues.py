"""Queue depth: how many Celery messages wait in each queue, read through the current master.

Celery's PENDING means "unknown", so hawatch cross-checks what task events say
with what the broker holds: ``LLEN`` of each queue (and of its priority
sub-queues) and the size of the ``unacked`` hash, about once a second.

Where it reads: a plain ``redis://``/``rediss://`` broker URL is read as it is
(its credentials, TLS parameters and database); otherwise the master's address
comes from the caller's `master_address` (the core's view, which follows a
failover from Sentinel's messages at no cost), and, when the caller has none,
from the sentinels on every sample, so the gauge follows a failover by itself.
A ``sentinel://`` broker URL gives the database number.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hawatch.core.events import BrokerConnected, BrokerDisconnected, Event, QueueDepth
from hawatch.settings import SentinelAddress, Settings, parse_address, redact
from hawatch.sources.sentinel import check_cancelled, describe_error

__all__ = ["PRIORITY_SEPARATOR", "PRIORITY_STEPS", "QueueGauge", "queue_keys"]

log = logging.getLogger(__name__)

#: kombu's Redis transport keeps priority levels in keys ``<queue>\x06\x16<step>``.
PRIORITY_SEPARATOR = "\x06\x16"
PRIORITY_STEPS = (3, 6, 9)
UNACKED_KEY = "unacked"


def queue_keys(queue: str) -> list[str]:
    """The Redis lists that hold `queue`'s messages: the queue and its priority sub-queues."""
    return [queue, *(f"{queue}{PRIORITY_SEPARATOR}{step}" for step in PRIORITY_STEPS)]


@dataclass(frozen=True)
class _Direct:
    """A plain Redis broker read as its URL says: address, database and client options."""

    address: SentinelAddress
    db: int
    kwargs: dict[str, Any]
    password: str | None


def _url_parts(url: str) -> tuple[str, Any]:
    """The scheme and the `urlsplit` of the first URL of a (``;``-joined) broker URL;
    a one-sentence `ValueError` (no password) when its host or port cannot be read."""
    first = url.split(";", 1)[0].strip()
    scheme, _, rest = first.partition("://")
    try:
        split = urlsplit(f"http://{rest}")
        split.port  # noqa: B018 - urllib checks the port only when asked for it
    except ValueError:
        raise ValueError("the broker URL has an invalid host or port.") from None
    return scheme.lower(), split


def _url_db(split: Any) -> int:
    path = split.path.strip("/")
    return int(path) if path.isdigit() else 0


_CERT_REQS = {"cert_none": "none", "cert_optional": "optional", "cert_required": "required"}


def _direct(url: str, settings: Settings) -> _Direct | None:
    """How to read a plain ``redis://``/``rediss://`` broker URL; None for any other URL."""
    scheme, split = _url_parts(url)
    if scheme not in ("redis", "rediss"):
        return None
    kwargs: dict[str, Any] = {}
    password = unquote(split.password) if split.password else None
    if split.username:
        kwargs["username"] = unquote(split.username)
    if password:
        kwargs["password"] = password
    if scheme == "rediss":
        query = dict(parse_qsl(split.query))
        tls = {k: v for k, v in settings.node_redis_kwargs().items() if k.startswith("ssl")}
        kwargs.update(tls or {"ssl": True, "ssl_cert_reqs": "required"})
        for key in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
            if query.get(key):
                kwargs[key] = query[key]
        if query.get("ssl_cert_reqs"):
            word = query["ssl_cert_reqs"].lower()
            kwargs["ssl_cert_reqs"] = _CERT_REQS.get(word, word)
        if query.get("ssl_check_hostname"):
            kwargs["ssl_check_hostname"] = query["ssl_check_hostname"].lower() != "false"
    address = SentinelAddress(split.hostname or "localhost", split.port or 6379)
    return _Direct(address, _url_db(split), kwargs, password)


class QueueGauge:
    """Samples the depth of `queues` on master `master` every `interval` seconds.

    Emits one `QueueDepth` per queue per sample; `BrokerDisconnected` once when
    the master cannot be found or read, and `BrokerConnected` when it can again.
    `run` never raises anything but `asyncio.CancelledError`.

    `master_address`, when given, says where the master is (``host:port``, the
    core's view); when it returns None the sentinels are asked. `broker_url`,
    when given, is the Celery broker: a plain ``redis://``/``rediss://`` URL is
    read directly (its credentials and database, neither Sentinel nor
    `master_address`), a ``sentinel://`` URL gives the database number (and
    the data node credentials, when it holds them).
    """

    name = "queues"

    def __init__(
        self,
        settings: Settings,
        master: str,
        emit: Callable[[Event], None],
        *,
        queues: Sequence[str] = ("celery",),
        interval: float = 1.0,
        timeout: float = 1.0,
        master_address: Callable[[], str | None] | None = None,
        broker_url: str | None = None,
    ) -> None:
        self.settings = settings
        self.master = master
        self.queues = tuple(dict.fromkeys(queues))
        self.interval = interval
        self.timeout = timeout
        self._emit = emit
        self._master_from_caller = master_address
        self._direct = _direct(broker_url, settings) if broker_url else None
        self._db = 0
        self._node_kwargs: dict[str, Any] = settings.node_redis_kwargs()
        self._secrets: list[str | None] = []
        if broker_url and self._direct is None:
            scheme, split = _url_parts(broker_url)
            self._db = _url_db(split)
            if scheme == "sentinel" and (split.username or split.password):
                # The URL's credentials are the data nodes' (as kombu uses them).
                self._node_kwargs = {
                    k: v for k, v in self._node_kwargs.items() if k not in ("username", "password")
                }
                if split.username:
                    self._node_kwargs["username"] = unquote(split.username)
                if split.password:
                    self._node_kwargs["password"] = unquote(split.password)
                    self._secrets.append(unquote(split.password))
        elif self._direct is not None:
            self._db = self._direct.db
            self._node_kwargs = self._direct.kwargs
            self._secrets.append(self._direct.password)
        self._down: str | None = ""
        """The last failure reason; "" before the first sample, None while healthy."""
        self._node: tuple[SentinelAddress, aioredis.Redis] | None = None
        self._sentinels: dict[SentinelAddress, aioredis.Redis] = {}

    async def run(self) -> None:
        """Sample until cancelled; then close the connection."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                await self.sample()
                check_cancelled()  # redis-py can swallow a cancellation (see there)
                await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))
        finally:
            await self._drop()
            for client in self._sentinels.values():
                with contextlib.suppress(Exception):
                    await client.aclose()
            self._sentinels.clear()

    async def sample(self) -> None:
        """Read every queue once and emit what was found, or why it could not be read."""
        try:
            address = await self._master_address()
            client = await self._client(address)
            async with asyncio.timeout(self.timeout):
                pipe = client.pipeline(transaction=False)
                for queue in self.queues:
                    for key in queue_keys(queue):
                        pipe.llen(key)
                pipe.hlen(UNACKED_KEY)
                replies = await pipe.execute()
            check_cancelled()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            await self._drop()
            reason = redact(
                self.settings.redact(describe_error(error, timeout=self.timeout, peer="node")),
                self._secrets,
            )
            if self._down != reason:
                self._down = reason
                self._emit(BrokerDisconnected(ts=time.time(), source=self.name, reason=reason))
            return
        now = time.time()
        if self._down is not None:
            self._down = None
            self._emit(BrokerConnected(ts=now, source=self.name, address=str(address)))
        unacked = int(replies[-1])
        steps = len(PRIORITY_STEPS) + 1
        for i, queue in enumerate(self.queues):
            length = sum(int(n) for n in replies[i * steps : (i + 1) * steps])
            self._emit(
                QueueDepth(
                    ts=now, queue=queue, length=length, unacked=unacked, address=str(address)
                )
            )

    async def _master_address(self) -> SentinelAddress:
        """Where to read: the broker URL's node, else the caller's view of the master, else
        the master according to the first sentinel that answers."""
        if self._direct is not None:
            return self._direct.address
        if self._master_from_caller is not None:
            known = self._master_from_caller()
            if known:
                return parse_address(known, what="the master address")
        problems: list[BaseException] = []
        for sentinel in self.settings.sentinels:
            client = self._sentinels.get(sentinel)
            if client is None:
                kwargs: dict[str, Any] = dict(
                    host=sentinel.host,
                    port=sentinel.port,
                    socket_timeout=self.timeout,
                    socket_connect_timeout=self.timeout,
                    decode_responses=True,
                    retry=Retry(NoBackoff(), 0),
                )
                kwargs.update(self.settings.redis_kwargs())
                client = self._sentinels[sentinel] = aioredis.Redis(**kwargs)
            try:
                async with asyncio.timeout(self.timeout):
                    reply = await client.execute_command(
                        "SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master
                    )
            except asyncio.CancelledError:
                raise
            except Exception as error:
                problems.append(error)
                with contextlib.suppress(Exception):
                    await self._sentinels.pop(sentinel).aclose()
                continue
            if reply:
                return SentinelAddress(str(reply[0]), int(reply[1]))
            raise LookupError(f"the sentinels do not know a master called {self.master}")
        raise problems[-1] if problems else LookupError("no sentinel is configured")

    async def _client(self, address: SentinelAddress) -> aioredis.Redis:
        """The connection to `address`, kept while the master stays the same."""
        if self._node is not None and self._node[0] == address:
            return self._node[1]
        await self._drop()
        kwargs: dict[str, Any] = dict(
            host=address.host,
            port=address.port,
            socket_timeout=self.timeout,
            socket_connect_timeout=self.timeout,
            retry=Retry(NoBackoff(), 0),
            db=self._db,
        )
        kwargs.update(self._node_kwargs)
        client = aioredis.Redis(**kwargs)
        self._node = (address, client)
        return client

    async def _drop(self) -> None:
        """Close the connection to the master (the next sample opens a new one)."""
        if self._node is not None:
            client = self._node[1]
            self._node = None
            with contextlib.suppress(Exception):
                await client.aclose()
