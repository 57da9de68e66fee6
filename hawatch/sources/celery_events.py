"""The Celery event source: task and worker events, read the way Celery's own monitors do.

On the Redis transport, Celery events travel over Redis pub/sub on the very
master that fails over, so a monitor is blind exactly while it is
disconnected. This source therefore reconnects fast (0.2 s doubling to 2 s,
never more, instead of kombu's 2, 4, 6 ... 30 s), marks every blind window
with `BrokerDisconnected` / `BrokerConnected`, and asks the workers for a
heartbeat after every (re)connection so that their state is known again at once.

kombu is blocking, so the receiver runs in a daemon thread; `emit` is called
from that thread and must not block (the TUI passes a ``post_message``-based
callback, tests a ``list.append`` or ``queue.put``).

Each connection asks the sentinels for the master again (kombu's
``sentinel://`` transport does that on every new connection), so reconnecting
after ``+switch-master`` follows the new master by itself.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from urllib.parse import quote

import redis
from celery import Celery
from kombu.utils.url import url_to_parts
from redis.backoff import NoBackoff
from redis.retry import Retry

from hawatch.core.events import BrokerConnected, BrokerDisconnected, Event, TaskEvent, WorkerEvent
from hawatch.settings import Settings, redact

__all__ = [
    "DEFAULT_TRANSPORT_OPTIONS",
    "CeleryEventSource",
    "broker_from_app",
    "broker_from_settings",
    "convert_event",
]

log = logging.getLogger(__name__)

#: Socket options that let a dead or silent master fail within seconds (kombu's are off).
DEFAULT_TRANSPORT_OPTIONS: Mapping[str, Any] = {
    "socket_timeout": 2.0,
    "socket_connect_timeout": 2.0,
    "socket_keepalive": True,
    # Not True: redis-py would then retry every connect once, and each attempt asks the
    # sentinels again, doubling the time a reconnect (or `stop`) waits on silent sentinels.
    # This source's own loop retries instead, on its 0.2 → 2 s schedule.
    "retry_on_timeout": False,
    "health_check_interval": 2,
}
#: The same for the connections to the sentinels (they inherit nothing once given).
DEFAULT_SENTINEL_KWARGS: Mapping[str, Any] = {
    "socket_timeout": 0.5,
    "socket_connect_timeout": 0.5,
}
"""Sentinels answer in milliseconds; 0.5 s each keeps one discovery over three silent
sentinels (1.5 s) within `CeleryEventSource.stop`'s 2 s."""

BACKOFF_START = 0.2
BACKOFF_MAX = 2.0
DRAIN_INTERVAL = 0.25
"""Seconds one drain waits for an event before the stop flag is checked again."""
LIVENESS_INTERVAL = 0.5
"""Seconds between checks that the node we listen on is alive and still the master:
kombu checks the pub/sub connection only in the worker's event loop, never in
``drain_events``, so a hung master would otherwise leave us silently blind."""

_WORKER_KINDS = {
    "worker-online": "online",
    "worker-heartbeat": "heartbeat",
    "worker-offline": "offline",
}


class Malformed(ValueError):
    """A Celery event dict that cannot be turned into a core event."""


def _opt_str(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    if value is None or isinstance(value, str):
        return value
    raise Malformed(f"{key} is not a string")


def _opt_int(event: Mapping[str, Any], key: str) -> int | None:
    value = event.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise Malformed(f"{key} is not an integer")


def _opt_float(event: Mapping[str, Any], key: str) -> float | None:
    value = event.get(key)
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise Malformed(f"{key} is not a number")


def convert_event(event: Any, now: float | None = None) -> Event | None:
    """The core event for one Celery event dict, or None for a type hawatch does not use.

    Raises `Malformed` for a dict it cannot read (not a dict, no type, a task
    event without a uuid, a field of the wrong type).
    """
    if not isinstance(event, Mapping):
        raise Malformed("the event is not a dict")
    kind = event.get("type")
    if not isinstance(kind, str):
        raise Malformed("the event has no type")
    ts = time.time() if now is None else now
    if kind.startswith("task-"):
        state = kind[len("task-") :]
        uuid = _opt_str(event, "uuid")
        if not uuid or not state:
            raise Malformed("a task event without a uuid")
        sent = state == "sent"
        return TaskEvent(
            ts=ts,
            state=state,
            uuid=uuid,
            name=_opt_str(event, "name"),
            worker=None if sent else _opt_str(event, "hostname"),
            queue=(_opt_str(event, "routing_key") or _opt_str(event, "queue")) if sent else None,
            retries=_opt_int(event, "retries"),
            runtime=_opt_float(event, "runtime"),
            exception=_opt_str(event, "exception"),
            clock=_opt_float(event, "timestamp"),
        )
    worker_kind = _WORKER_KINDS.get(kind)
    if worker_kind is not None:
        hostname = _opt_str(event, "hostname")
        if not hostname:
            raise Malformed("a worker event without a hostname")
        return WorkerEvent(
            ts=ts,
            kind=worker_kind,
            hostname=hostname,
            active=_opt_int(event, "active"),
            processed=_opt_int(event, "processed"),
            freq=_opt_float(event, "freq"),
            clock=_opt_float(event, "timestamp"),
        )
    return None


def _describe(error: BaseException) -> str:
    """One short sentence saying why the broker connection was lost or refused."""
    text = " ".join(str(e) for e in _chain(error)).lower()
    names = " ".join(type(e).__name__ for e in _chain(error)).lower()
    if "readonly" in text or "now a slave" in text or "now a replica" in text:
        return "the broker node was demoted to a replica"
    if "no master found" in text or "masternotfound" in names:
        return "no sentinel named a reachable master"
    if "timeout" in names or "timed out" in text:
        return "the broker did not answer in time"
    if "refused" in text:
        return "the broker refused the connection"
    if "closed by server" in text or "connection reset" in text or "broken pipe" in text:
        return "the broker closed the connection"
    if isinstance(error, _LostMaster):
        return str(error)
    first = str(error).splitlines()[0] if str(error) else ""
    return f"the broker connection failed ({type(error).__name__}{': ' + first if first else ''})"


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


class _LostMaster(ConnectionError):
    """Our own liveness check found the node is no longer a usable master."""


class CeleryEventSource:
    """Celery's task and worker events as core events, surviving the failover it watches.

    `start` runs Celery's own event receiver in a daemon thread; `stop` ends it
    within about `DRAIN_INTERVAL` (and never waits more than its `timeout`).
    Every lost connection is one `BrokerDisconnected` (a sentence in
    `reason`), every regained one a `BrokerConnected` with the master's
    address; between them the source retries every 0.2, 0.4 ... 2 s. Any
    error in the thread is such a disconnect, never a dead thread. Event
    dicts it cannot read are skipped and counted in `malformed`.
    """

    def __init__(
        self,
        broker_url: str,
        transport_options: Mapping[str, Any],
        emit: Callable[[Event], None],
        *,
        name: str = "celery-events",
    ) -> None:
        self.name = name
        self.malformed = 0
        """Event dicts skipped because they could not be read."""
        self.received = 0
        """Events turned into core events and emitted."""
        self._url = broker_url
        options: dict[str, Any] = {**DEFAULT_TRANSPORT_OPTIONS, **transport_options}
        if broker_url.lstrip().lower().startswith("sentinel"):
            # redis-py's default retry sleeps with exponential backoff (up to 10 s) before
            # giving up on a sentinel: that would hold up both failing over and `stop`.
            options["sentinel_kwargs"] = {
                **DEFAULT_SENTINEL_KWARGS,
                "retry": Retry(NoBackoff(), 0),
                **(transport_options.get("sentinel_kwargs") or {}),
            }
        self._options = options
        self._emit = emit
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._receiver: Any = None
        self._connected: bool | None = None
        self._fresh = False
        self._app = Celery(f"hawatch-{name}", broker=broker_url, set_as_current=False)
        self._app.conf.update(
            broker_transport_options=options,
            broker_connection_retry=False,
            broker_connection_max_retries=0,
        )

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start receiving in a daemon thread (once)."""
        if self._thread is not None:
            raise RuntimeError("this event source was already started")
        self._thread = threading.Thread(target=self._run, name=f"hawatch-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the thread to end and join it for at most `timeout` seconds."""
        self._stopping.set()
        receiver = self._receiver
        if receiver is not None:
            receiver.should_stop = True
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("the Celery event thread did not end within %.1f s", timeout)

    @property
    def running(self) -> bool:
        """True while the receiving thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    # -- the thread -------------------------------------------------------------------

    def _run(self) -> None:
        delay = BACKOFF_START
        while not self._stopping.is_set():
            self._fresh = False
            try:
                self._session()
            except BaseException as error:  # any failure is a disconnect and a retry
                if isinstance(error, KeyboardInterrupt | SystemExit):
                    raise
                if self._stopping.is_set():
                    break
                self._disconnected(self._redact(_describe(error)))
                log.debug("celery events: %s", self._redact(repr(error)))
            else:
                if self._stopping.is_set():
                    break
                self._disconnected("the event consumer ended")
            if self._fresh:  # it was connected: retry at once-ish, then back off again
                delay = BACKOFF_START
            self._stopping.wait(delay)
            delay = min(delay * 2, BACKOFF_MAX)

    def _session(self) -> None:
        """One connection: connect, subscribe, ask for heartbeats, drain until it fails."""
        connection = self._app.connection_for_read()
        receiver: Any = None
        healthy = False
        try:
            # One attempt: kombu's connect() would try twice with a 2 s sleep between.
            connection.ensure_connection(max_retries=0)
            receiver = self._make_receiver(connection)
            self._receiver = receiver
            if self._stopping.is_set():
                return
            for _ in receiver.consume(
                limit=None, timeout=None, safety_interval=DRAIN_INTERVAL, wakeup=True
            ):
                pass
            healthy = True
        finally:
            self._receiver = None
            watch = getattr(receiver, "watch", None)
            if watch is not None:
                watch.close()
            if not healthy:
                _skip_cleanup(connection)
            with contextlib.suppress(Exception):
                connection.release()

    def _make_receiver(self, connection: Any) -> Any:
        source = self
        base = self._app.events.Receiver

        class Receiver(base):  # type: ignore[misc, valid-type]
            """Celery's receiver on our one connection: no kombu retries, no clone."""

            _next_check = 0.0
            watch: _Listening | None = None

            @contextlib.contextmanager
            def establish_connection(self) -> Iterator[Any]:
                yield connection

            def on_consume_ready(
                self, conn: Any, channel: Any, consumers: Any, wakeup: bool = True, **kw: Any
            ) -> None:
                # One short drain subscribes (PSUBSCRIBE) before the workers answer the wakeup.
                with contextlib.suppress(socket.timeout):
                    conn.drain_events(timeout=0.01)
                self.watch = _Listening(channel)
                super().on_consume_ready(conn, channel, consumers, wakeup=wakeup, **kw)
                self._next_check = time.monotonic() + LIVENESS_INTERVAL
                source._connected_to(self.watch.address)

            def on_iteration(self) -> None:
                if source._stopping.is_set():
                    self.should_stop = True
                    return
                if self.watch is None:
                    return
                self.watch.check_socket()
                now = time.monotonic()
                if now >= self._next_check:
                    self._next_check = now + LIVENESS_INTERVAL
                    self.watch.check_role()

            def _receive(self, body: Any, message: Any) -> None:
                for item in body if isinstance(body, list) else [body]:
                    source._handle(self, item)

            def on_decode_error(self, message: Any, exc: Exception) -> None:
                source.malformed += 1

        return Receiver(connection, handlers={"*": self._on_event}, app=self._app)

    def _handle(self, receiver: Any, body: Any) -> None:
        try:
            kind, event = receiver.event_from_message(body)
        except Exception:
            self.malformed += 1
            return
        receiver.process(kind, event)

    def _on_event(self, event: Any) -> None:
        try:
            converted = convert_event(event)
        except Malformed:
            self.malformed += 1
            return
        if converted is not None:
            self.received += 1
            self._send(converted)

    # -- state --------------------------------------------------------------------------

    def _connected_to(self, address: str | None) -> None:
        if self._stopping.is_set():
            return
        self._connected = True
        self._fresh = True
        self._send(BrokerConnected(ts=time.time(), source=self.name, address=address))

    def _disconnected(self, reason: str) -> None:
        if self._connected is False or self._stopping.is_set():
            return
        self._connected = False
        self._send(BrokerDisconnected(ts=time.time(), source=self.name, reason=reason))

    def _send(self, event: Event) -> None:
        """Hand `event` to the caller; a failing callback loses that event, not the thread."""
        try:
            self._emit(event)
        except Exception:
            log.exception("the Celery event callback failed on %s", type(event).__name__)

    def _redact(self, text: str) -> str:
        """`text` without the sentinel or broker passwords."""
        secrets: list[str | None] = [self._options.get("sentinel_kwargs", {}).get("password")]
        for part in self._url.split(";"):
            with contextlib.suppress(Exception):
                secrets.append(url_to_parts(part).password)
        return redact(text, secrets)


def _skip_cleanup(connection: Any) -> None:
    """Close a failed connection without talking to the broker.

    Closing a kombu Redis channel deletes its fanout bindings on the master; on a lost
    master that means one more discovery through the sentinels, which can take seconds
    and would hold up the reconnect (or `stop`). The binding left behind is one small
    set member on a node that is gone or demoted.
    """
    transport = getattr(connection, "_transport", None)
    for channel in list(getattr(transport, "channels", None) or ()):
        with contextlib.suppress(Exception):
            channel.auto_delete_queues.clear()


class _Listening:
    """The pub/sub connection the events arrive on, and checks that it still reaches a master.

    redis-py would silently reconnect a dropped pub/sub connection (once, with
    ``retry_on_timeout``), and kombu would keep polling the old socket: connected,
    but deaf. So retries are turned off on it, its socket is watched, and the node
    it is on is asked for its ``ROLE`` every `LIVENESS_INTERVAL` on a separate
    short-timeout connection (kombu checks pub/sub health only in a worker's loop).
    """

    def __init__(self, channel: Any) -> None:
        pool = getattr(channel.client, "connection_pool", None)
        self._pool = pool if callable(getattr(pool, "get_master_address", None)) else None
        self.conn: Any = None
        self.sock: Any = None
        self.address: str | None = None
        self._probe: redis.Redis | None = None
        subclient = channel.__dict__.get("subclient")
        conn = getattr(subclient, "connection", None)
        if conn is None:
            return
        conn.retry = Retry(NoBackoff(), 0)
        self.conn, self.sock = conn, conn._sock
        host, port = getattr(conn, "host", None), getattr(conn, "port", None)
        if host and port:
            self.address = f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
            if not isinstance(conn, redis.SSLConnection):
                self._probe = redis.Redis(
                    host=host,
                    port=port,
                    username=getattr(conn, "username", None),
                    password=getattr(conn, "password", None),
                    socket_timeout=1.0,
                    socket_connect_timeout=1.0,
                    retry=Retry(NoBackoff(), 0),
                )

    def check_socket(self) -> None:
        """Raise when the pub/sub connection was closed or silently replaced."""
        if self.conn is not None and self.conn._sock is not self.sock:
            raise ConnectionError("the broker closed the connection")

    def check_role(self) -> None:
        """Raise when the sentinels name another master, or the node does not answer or
        answers as a replica."""
        if self._pool is not None and self.conn is not None:
            try:
                host, port = self._pool.get_master_address()
            except redis.RedisError:
                # The sentinels cannot say; that alone does not make the master gone,
                # so keep listening and let the node's own ROLE decide.
                pass
            else:
                if (str(host), int(port)) != (str(self.conn.host), int(self.conn.port)):
                    raise _LostMaster("the sentinels switched to another master")
        if self._probe is None:
            return
        reply = self._probe.execute_command("ROLE")
        role = reply[0] if reply else None
        if isinstance(role, bytes):
            role = role.decode()
        if role is not None and role != "master":
            raise _LostMaster("the broker node was demoted to a replica")

    def close(self) -> None:
        """Close the probe connection."""
        if self._probe is not None:
            with contextlib.suppress(Exception):
                self._probe.close()


# -- where the broker is ---------------------------------------------------------------


def broker_from_settings(settings: Settings, master: str) -> tuple[str, dict[str, Any]]:
    """A kombu ``sentinel://`` URL over `settings.sentinels`, and transport options for it.

    The data node credentials go in the first URL (kombu logs in to the master
    with them); the sentinel credentials in ``sentinel_kwargs``, where kombu
    needs them to discover the master at all. Both carry short socket
    timeouts. The URL may hold a password: never log it unredacted.
    """
    if not settings.sentinels:
        raise ValueError("no sentinel address is configured; give at least one.")
    node_user, node_password = settings.node_credentials()
    userinfo = ""
    if node_user or node_password:
        user = quote(node_user or "", safe="")
        secret = quote(node_password.reveal(), safe="") if node_password else ""
        userinfo = f"{user}:{secret}@" if secret else f"{user}@"
    url = ";".join(
        f"sentinel://{userinfo if i == 0 else ''}{address}"
        for i, address in enumerate(settings.sentinels)
    )
    sentinel_kwargs: dict[str, Any] = dict(DEFAULT_SENTINEL_KWARGS)
    if settings.username:
        sentinel_kwargs["username"] = settings.username
    if settings.password:
        sentinel_kwargs["password"] = settings.password.reveal()
    options: dict[str, Any] = {
        "master_name": master,
        **DEFAULT_TRANSPORT_OPTIONS,
        "sentinel_kwargs": sentinel_kwargs,
    }
    return url, options


def broker_from_app(module: str) -> tuple[str, dict[str, Any]]:
    """The broker URL and ``broker_transport_options`` of a user's Celery app.

    `module` is what ``celery -A`` takes (``proj``, ``proj.celery``,
    ``proj.celery:app``). A module that cannot be loaded, or holds no Celery
    app, is a one-sentence `ValueError`.
    """
    from celery.app.utils import find_app

    try:
        app = find_app(module)
    except Exception as error:
        raise ValueError(
            f"cannot load a Celery app from {module!r} ({type(error).__name__}); "
            "give it the way celery -A takes it, e.g. proj.celery:app."
        ) from None
    if not isinstance(app, Celery):
        raise ValueError(f"{module!r} is not a Celery app; give the module or module:app.")
    url = app.conf.broker_read_url or app.conf.broker_url
    if not url:
        url = app.connection_for_read().as_uri(include_password=True)
    return str(url), dict(app.conf.broker_transport_options or {})
