"""The canary: a tiny Celery task sent at a steady rate, so that resuming shows even without
the application's own traffic.

It sends Celery's built-in task ``celery.accumulate`` (registered on every
Celery worker, so it needs no code in the user's project) with an id that
starts with `CANARY_PREFIX`, and reports each step of each round trip as a
`ProbeResult`: ``sent`` (or ``send-failed``, with one redacted sentence why)
from its own thread, then ``started``, ``succeeded`` or ``failed`` with the
latency from `Canary.observe`, which the consumer calls with every event of the
stream (the Celery event source reports the worker's task events).

It writes to the broker, so it is off by default against a user's cluster and
refuses to exist in read-only mode. Publishing never hangs during a failover:
socket timeouts are capped at `SEND_TIMEOUT` (sentinels at
`SENTINEL_TIMEOUT`), a publish is tried once (no publish retry) and a failed
connection is dropped and made again for the next send. The first failed send
after a working one is a `BrokerDisconnected` (source ``canary``), the first
good one after failures a `BrokerConnected`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from celery import Celery

from hawatch.core.events import (
    BrokerConnected,
    BrokerDisconnected,
    Event,
    ProbeResult,
    TaskEvent,
)
from hawatch.sources.celery_events import (
    DEFAULT_EVENT_EXCHANGE,
    describe_broker_error,
    prepare_transport_options,
    redact_broker,
)

__all__ = [
    "CANARY_PREFIX",
    "CANARY_TASK",
    "MAX_RATE",
    "PROBE",
    "Canary",
    "is_canary",
]

log = logging.getLogger(__name__)

CANARY_PREFIX = "hawatch-canary-"
"""Every canary task id starts with this; the rest is a random uuid4 in hex."""
CANARY_TASK = "celery.accumulate"
"""Celery's built-in task that returns its arguments: every worker has it."""
PROBE = "canary"
"""The `ProbeResult.probe` of the canary's results."""
MAX_RATE = 100.0
"""Canary tasks per second, at most."""
SEND_TIMEOUT = 1.0
"""Seconds a canary publish (or connect) may take before it counts as failed."""
SENTINEL_TIMEOUT = 0.3
"""Seconds each sentinel may take to name the master: three silent sentinels cost 0.9 s."""
EXPIRES = 300.0
"""Seconds after which a worker discards a canary task it had not started (no backlog of
stale canaries after a long outage)."""
MAX_REMEMBERED = 10_000
"""Send times kept for latencies; the oldest are forgotten first."""

_PHASES = {"started": "started", "succeeded": "succeeded", "failed": "failed"}


def is_canary(task_id: str | None) -> bool:
    """True for the id of a task the canary sent."""
    return bool(task_id) and str(task_id).startswith(CANARY_PREFIX)


class Canary:
    """Sends `CANARY_TASK` to `queue` `rate` times per second and reports its round trips.

    `start` runs the sender in a daemon thread on a steady schedule (a slot
    missed while a send was slow is skipped, never made up in a burst);
    `stop` ends it within about a second even while the broker or every
    sentinel is silent. `emit` is called from that thread and must not block.
    `observe` is called by the consumer, on its own thread, with every event.
    """

    name = PROBE

    def __init__(
        self,
        broker_url: str,
        transport_options: Mapping[str, Any],
        emit: Callable[[Event], None],
        *,
        rate: float,
        queue: str = "celery",
        read_only: bool = False,
        event_exchange: str = DEFAULT_EVENT_EXCHANGE,
    ) -> None:
        if read_only:
            raise ValueError(
                "the canary sends tasks to the broker, which read-only mode forbids; "
                "drop the canary or read-only."
            )
        if not isinstance(rate, int | float) or not math.isfinite(rate) or rate <= 0:
            raise ValueError("the canary's rate must be a number of tasks per second above 0.")
        if rate > MAX_RATE:
            raise ValueError(f"the canary's rate must be at most {MAX_RATE:g} tasks per second.")
        if not queue:
            raise ValueError("the canary needs a queue name to send to.")
        self.rate = float(rate)
        self.queue = queue
        self.sent = 0
        """Canary tasks published."""
        self.send_failures = 0
        """Canary tasks that could not be published."""
        self._url = broker_url
        self._options = prepare_transport_options(
            broker_url,
            transport_options,
            timeout_cap=SEND_TIMEOUT,
            sentinel_timeout_cap=SENTINEL_TIMEOUT,
        )
        self._emit = emit
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._connection: Any = None
        self._producer: Any = None
        self._up: bool | None = None
        self._sent_at: OrderedDict[str, float] = OrderedDict()
        """Send time of each recent canary task; touched by `observe` only."""
        self._in_flight: tuple[str, float] | None = None
        """The task being published and when that began: a worker can start it before the
        publish returns (set by the thread, read by `observe`; one atomic assignment)."""
        self._app = Celery("hawatch-canary", broker=broker_url, set_as_current=False)
        self._app.conf.update(
            broker_transport_options=self._options,
            broker_connection_retry=False,
            broker_connection_max_retries=0,
            task_send_sent_event=True,
            task_publish_retry=False,
            event_exchange=event_exchange or DEFAULT_EVENT_EXCHANGE,
        )

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start sending in a daemon thread (once)."""
        if self._thread is not None:
            raise RuntimeError("this canary was already started")
        self._thread = threading.Thread(target=self._run, name="hawatch-canary", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the thread to end and join it for at most `timeout` seconds."""
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the canary thread did not end within %.1f s", timeout)

    @property
    def running(self) -> bool:
        """True while the sending thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- round trips (the consumer's thread) --------------------------------------------

    def observe(self, event: Event) -> ProbeResult | None:
        """The round-trip step `event` completes, if it is about a canary task.

        The canary's own ``sent`` results record the send time; a canary task's
        ``task-started``, ``task-succeeded`` or ``task-failed`` becomes a
        `ProbeResult` with the latency since that send (None when the send was
        not seen; the canary's own ``task-sent`` event counts as a sighting).
        Anything else is None. Pure bookkeeping: no I/O, no lock; at most
        `MAX_REMEMBERED` send times are kept.
        """
        if isinstance(event, ProbeResult):
            if event.probe == PROBE and event.phase == "sent" and event.ok and event.task_id:
                self._remember(event.task_id, event.ts)
            return None
        if not isinstance(event, TaskEvent) or event.uuid is None or not is_canary(event.uuid):
            return None
        if event.state == "sent":
            # The canary's own task-sent event: it arrives on the event stream before the
            # worker's, so it also covers a worker that is quicker than our `sent` result.
            self._remember(event.uuid, event.ts)
            return None
        phase = _PHASES.get(event.state)
        if phase is None:
            return None
        if phase == "started":
            sent = self._sent_at.get(event.uuid)
        else:
            sent = self._sent_at.pop(event.uuid, None)
        if sent is None:
            flight = self._in_flight
            if flight is not None and flight[0] == event.uuid:
                sent = flight[1]
        failed = phase == "failed"
        return ProbeResult(
            ts=event.ts,
            probe=PROBE,
            phase=phase,
            ok=not failed,
            task_id=event.uuid,
            latency=None if sent is None else max(0.0, event.ts - sent),
            detail=(event.exception or "the canary task failed") if failed else None,
        )

    def _remember(self, task_id: str, ts: float) -> None:
        """Note when `task_id` was sent (the earlier of two reports), within the bound."""
        known = self._sent_at.get(task_id)
        self._sent_at[task_id] = ts if known is None else min(known, ts)
        self._sent_at.move_to_end(task_id)
        while len(self._sent_at) > MAX_REMEMBERED:
            self._sent_at.popitem(last=False)

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        period = 1.0 / self.rate
        start = time.monotonic()
        slot = 0
        try:
            while not self._stopping.is_set():
                self._send_one()
                slot += 1
                now = time.monotonic()
                if start + slot * period <= now:  # slow send: skip the missed slots
                    slot = math.floor((now - start) / period) + 1
                if self._stopping.wait(start + slot * period - now):
                    break
        finally:
            self._drop(healthy=self._up is True)

    def _send_one(self) -> None:
        """Publish one canary task and report it; any failure is reported, never raised."""
        task_id = f"{CANARY_PREFIX}{uuid.uuid4().hex}"
        began = time.time()
        self._in_flight = (task_id, began)
        try:
            producer = self._ensure_producer()
            self._app.send_task(
                CANARY_TASK,
                task_id=task_id,
                queue=self.queue,
                producer=producer,
                ignore_result=True,
                retry=False,
                expires=EXPIRES,
            )
        except BaseException as error:
            if isinstance(error, KeyboardInterrupt | SystemExit):
                raise
            self._drop(healthy=False)
            if self._stopping.is_set():
                return  # a send cut short by `stop` is not a broker failure
            self.send_failures += 1
            reason = self._redact(describe_broker_error(error))
            log.debug("canary send failed: %s", self._redact(repr(error)))
            now = time.time()
            self._send(
                ProbeResult(
                    ts=now,
                    probe=PROBE,
                    phase="send-failed",
                    ok=False,
                    task_id=task_id,
                    detail=reason,
                )
            )
            if self._up is not False:
                self._up = False
                self._send(BrokerDisconnected(ts=now, source=PROBE, reason=reason))
            return
        self.sent += 1
        if self._up is not True:
            self._up = True
            self._send(BrokerConnected(ts=time.time(), source=PROBE, address=self._address()))
        # Stamped when the publish began: latencies then include the publish itself.
        self._send(ProbeResult(ts=began, probe=PROBE, phase="sent", ok=True, task_id=task_id))

    def _ensure_producer(self) -> Any:
        """The producer on the current connection, connecting once (no retry) if needed."""
        if self._producer is not None:
            return self._producer
        connection = self._app.connection_for_write()
        self._connection = connection
        # One attempt: kombu would otherwise retry (and sleep) before giving up.
        connection.ensure_connection(max_retries=0)
        self._producer = self._app.amqp.Producer(connection, auto_declare=False)
        return self._producer

    def _drop(self, *, healthy: bool) -> None:
        """Forget the connection; a failed one is closed without talking to the broker."""
        connection, self._connection, self._producer = self._connection, None, None
        if connection is None:
            return
        if not healthy:
            transport = getattr(connection, "_transport", None)
            for channel in list(getattr(transport, "channels", None) or ()):
                with contextlib.suppress(Exception):
                    channel.auto_delete_queues.clear()
        with contextlib.suppress(Exception):
            connection.release()

    def _address(self) -> str | None:
        """The ``host:port`` the canary's connection reached, when it can be told."""
        with contextlib.suppress(Exception):
            channel = self._connection.default_channel
            pool = channel.client.connection_pool
            for conn in [*pool._available_connections, *pool._in_use_connections]:
                host, port = getattr(conn, "host", None), getattr(conn, "port", None)
                if host and port:
                    return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
        return None

    def _send(self, event: Event) -> None:
        """Hand `event` to the caller; a failing callback loses that event, not the thread."""
        try:
            self._emit(event)
        except Exception:
            log.exception("the canary callback failed on %s", type(event).__name__)

    def _redact(self, text: str) -> str:
        return redact_broker(text, self._url, self._options)
