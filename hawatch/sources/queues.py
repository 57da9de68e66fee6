"""Queue depth: how many Celery messages wait in each queue, read through the current master.

Celery's PENDING means "unknown", so hawatch cross-checks what task events say
with what the broker holds: ``LLEN`` of each queue (and of its priority
sub-queues) and the size of the ``unacked`` hash, about once a second. The
master is asked of the sentinels on every sample, so the gauge follows a
failover by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hawatch.core.events import BrokerConnected, BrokerDisconnected, Event, QueueDepth
from hawatch.settings import SentinelAddress, Settings
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


class QueueGauge:
    """Samples the depth of `queues` on master `master` every `interval` seconds.

    Emits one `QueueDepth` per queue per sample; `BrokerDisconnected` once when
    the master cannot be found or read, and `BrokerConnected` when it can again.
    `run` never raises anything but `asyncio.CancelledError`.
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
    ) -> None:
        self.settings = settings
        self.master = master
        self.queues = tuple(dict.fromkeys(queues))
        self.interval = interval
        self.timeout = timeout
        self._emit = emit
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
            reason = self.settings.redact(describe_error(error, timeout=self.timeout, peer="node"))
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
        """The master's address according to the first sentinel that answers."""
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
        )
        kwargs.update(self.settings.node_redis_kwargs())
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
