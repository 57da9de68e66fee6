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

`broker_spec` decides where the Celery side connects (``--broker``, ``--app``
or the Sentinel settings) and what it watches there (queues, the event
exchange), as a `BrokerSpec` whose `label` is safe to show. With TLS, the
sentinels get it in ``sentinel_kwargs`` and the master in ``ssl_*`` parameters
on the first ``sentinel://`` URL, which kombu turns into its TLS connection to
whichever master Sentinel names (kombu 5.7 has no ``sentinel+ssl`` scheme).
"""

from __future__ import annotations

import contextlib
import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import redis
from celery import Celery
from kombu.utils.url import url_to_parts
from redis.backoff import NoBackoff
from redis.retry import Retry

from hawatch.core.events import BrokerConnected, BrokerDisconnected, Event, TaskEvent, WorkerEvent
from hawatch.settings import SentinelAddress, Settings, redact, redact_url

__all__ = [
    "DEFAULT_EVENT_EXCHANGE",
    "DEFAULT_SENTINEL_KWARGS",
    "DEFAULT_TRANSPORT_OPTIONS",
    "SUPPORTED_SCHEMES",
    "BrokerSpec",
    "CeleryEventSource",
    "broker_from_app",
    "broker_from_settings",
    "broker_spec",
    "convert_event",
    "describe_broker_error",
    "prepare_transport_options",
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

DEFAULT_EVENT_EXCHANGE = "celeryev"
"""Celery's event exchange unless an app configures ``event_exchange``."""
SUPPORTED_SCHEMES = ("redis", "rediss", "sentinel")
"""Broker URL schemes hawatch reads (kombu's Redis transports; kombu 5.7 has no TLS
variant of ``sentinel://``: TLS to a Sentinel broker goes in ``ssl_*`` URL parameters and
``sentinel_kwargs``)."""

EXPECT_MASTER_FOR = 10.0
"""Seconds `CeleryEventSource.master_moved` insists on the new master."""
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


def is_sentinel_url(url: str) -> bool:
    """True for a kombu ``sentinel://`` broker URL."""
    return url.lstrip().lower().startswith("sentinel://")


def prepare_transport_options(
    broker_url: str,
    transport_options: Mapping[str, Any],
    *,
    timeout_cap: float | None = None,
    sentinel_timeout_cap: float | None = None,
) -> dict[str, Any]:
    """kombu transport options for a hawatch connection to `broker_url`.

    `DEFAULT_TRANSPORT_OPTIONS` under the caller's options (an app's own win,
    as with ``celery -A``); for a ``sentinel://`` URL, `DEFAULT_SENTINEL_KWARGS`
    and no redis-py retry under the caller's ``sentinel_kwargs``. The caps, when
    given, bound the socket timeouts whatever the caller asked for (the canary
    must never wait long on a publish).
    """
    options: dict[str, Any] = {**DEFAULT_TRANSPORT_OPTIONS, **transport_options}
    if timeout_cap is not None:
        for key in ("socket_timeout", "socket_connect_timeout"):
            options[key] = _capped(options.get(key), timeout_cap)
        options["retry_on_timeout"] = False
    if is_sentinel_url(broker_url):
        # redis-py's default retry sleeps with exponential backoff (up to 10 s) before
        # giving up on a sentinel: that would hold up both failing over and `stop`.
        sentinel_kwargs: dict[str, Any] = {
            **DEFAULT_SENTINEL_KWARGS,
            "retry": Retry(NoBackoff(), 0),
            **(transport_options.get("sentinel_kwargs") or {}),
        }
        if sentinel_timeout_cap is not None:
            for key in ("socket_timeout", "socket_connect_timeout"):
                sentinel_kwargs[key] = _capped(sentinel_kwargs.get(key), sentinel_timeout_cap)
        options["sentinel_kwargs"] = sentinel_kwargs
    return options


def _capped(value: Any, cap: float) -> float:
    """`value` as seconds, at most `cap` (None, 0 or nonsense: `cap`)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return cap
    return cap if not 0 < seconds < cap or math.isnan(seconds) else seconds


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


def convert_event(event: Any, now: float | None = None, via: str | None = None) -> Event | None:
    """The core event for one Celery event dict, or None for a type hawatch does not use.

    `via` is the broker node (``host:port``) the event was read from; task events carry it.

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
            via=via,
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


def describe_broker_error(error: BaseException) -> str:
    """One short sentence saying why the broker connection was lost or refused.

    Redact it before showing it: a server's own error text can be quoted.
    """
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
        event_exchange: str = DEFAULT_EVENT_EXCHANGE,
        quiet: bool = False,
    ) -> None:
        self.name = name
        self.quiet = quiet
        """Emit no `BrokerConnected`/`BrokerDisconnected` (a helper listener whose
        blind windows do not matter, such as one on a former master)."""
        self._via: str | None = None
        self.malformed = 0
        """Event dicts skipped because they could not be read."""
        self.received = 0
        """Events turned into core events and emitted."""
        self._url = broker_url
        options = prepare_transport_options(broker_url, transport_options)
        self._options = options
        self._emit = emit
        self._stopping = threading.Event()
        self._wake = threading.Event()
        """Set by `stop` and `master_moved`: cuts a backoff wait short."""
        self._expected: tuple[str, float] | None = None
        """The master the caller's core names, and until when (monotonic) to insist on it."""
        self._thread: threading.Thread | None = None
        self._receiver: Any = None
        self._connected: bool | None = None
        self._fresh = False
        self._app = Celery(f"hawatch-{name}", broker=broker_url, set_as_current=False)
        self._app.conf.update(
            broker_transport_options=options,
            broker_connection_retry=False,
            broker_connection_max_retries=0,
            event_exchange=event_exchange or DEFAULT_EVENT_EXCHANGE,
        )

    # -- life cycle -------------------------------------------------------------------

    def start(self) -> None:
        """Start receiving in a daemon thread (once)."""
        if self._thread is not None:
            raise RuntimeError("this event source was already started")
        self._thread = threading.Thread(target=self._run, name=f"hawatch-{self.name}", daemon=True)
        self._thread.start()

    def master_moved(self, address: str) -> None:
        """The caller's core saw the master move to `address` (``host:port``).

        The core hears ``+switch-master`` from the sentinels at once, while this
        source would notice on its own only at its next liveness check or retry.
        So a source listening elsewhere drops that connection, and one waiting to
        retry retries now. For `EXPECT_MASTER_FOR` seconds a connection to any other
        node (a sentinel that has not heard of the switch yet) is dropped before it
        counts as connected. Safe to call from any thread.
        """
        self._expected = (address, time.monotonic() + EXPECT_MASTER_FOR)
        self._wake.set()

    def stop(self, timeout: float = 2.0) -> None:
        """Ask the thread to end and join it for at most `timeout` seconds."""
        self._stopping.set()
        self._wake.set()
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
                self._disconnected(self._redact(describe_broker_error(error)))
                log.debug("celery events: %s", self._redact(repr(error)))
            else:
                if self._stopping.is_set():
                    break
                self._disconnected("the event consumer ended")
            if self._fresh:  # it was connected: retry at once-ish, then back off again
                delay = BACKOFF_START
            if self._wake.wait(delay):  # stopping, or the master moved: no more waiting
                self._wake.clear()
                delay = BACKOFF_START
            else:
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
                source._check_expected(self.watch.address)
                super().on_consume_ready(conn, channel, consumers, wakeup=wakeup, **kw)
                self._next_check = time.monotonic() + LIVENESS_INTERVAL
                source._connected_to(self.watch.address)

            def on_iteration(self) -> None:
                if source._stopping.is_set():
                    self.should_stop = True
                    return
                if self.watch is None:
                    return
                source._check_expected(self.watch.address)
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
            converted = convert_event(event, via=self._via)
        except Malformed:
            self.malformed += 1
            return
        if converted is not None:
            self.received += 1
            self._send(converted)

    # -- state --------------------------------------------------------------------------

    def _check_expected(self, address: str | None) -> None:
        """Raise when the caller named another master (recently) than the one we are on."""
        expected = self._expected
        if expected is None or address is None:
            return
        wanted, until = expected
        if address == wanted or time.monotonic() > until:
            self._expected = None
            return
        self._fresh = True  # retry at the shortest delay: the sentinels are catching up
        raise _LostMaster("the sentinels switched to another master")

    def _connected_to(self, address: str | None) -> None:
        if self._stopping.is_set():
            return
        self._connected = True
        self._fresh = True
        self._via = address
        if not self.quiet:
            self._send(BrokerConnected(ts=time.time(), source=self.name, address=address))

    def _disconnected(self, reason: str) -> None:
        if self._connected is False or self._stopping.is_set():
            return
        self._connected = False
        if self.quiet:
            return
        self._send(BrokerDisconnected(ts=time.time(), source=self.name, reason=reason))

    def _send(self, event: Event) -> None:
        """Hand `event` to the caller; a failing callback loses that event, not the thread."""
        try:
            self._emit(event)
        except Exception:
            log.exception("the Celery event callback failed on %s", type(event).__name__)

    def _redact(self, text: str) -> str:
        return redact_broker(text, self._url, self._options)


def redact_broker(text: str, url: str, options: Mapping[str, Any]) -> str:
    """`text` without the passwords of broker `url` and of its sentinels in `options`."""
    secrets: list[str | None] = [(options.get("sentinel_kwargs") or {}).get("password")]
    for part in url.split(";"):
        with contextlib.suppress(Exception):
            secrets.append(url_to_parts(part).password)
    return redact(text, secrets)


def _tls_like(conn: Any) -> dict[str, Any]:
    """redis-py keyword arguments that speak TLS as `conn` does (none for plain TCP)."""
    if not isinstance(conn, redis.SSLConnection):
        return {}
    kwargs: dict[str, Any] = {
        "ssl": True,
        "ssl_ca_certs": getattr(conn, "ca_certs", None),
        "ssl_ca_path": getattr(conn, "ca_path", None),
        "ssl_certfile": getattr(conn, "certfile", None),
        "ssl_keyfile": getattr(conn, "keyfile", None),
        "ssl_check_hostname": bool(getattr(conn, "check_hostname", False)),
    }
    cert_reqs = getattr(conn, "cert_reqs", None)
    if cert_reqs is not None:
        kwargs["ssl_cert_reqs"] = cert_reqs
    return kwargs


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
            self._probe = redis.Redis(
                host=host,
                port=port,
                username=getattr(conn, "username", None),
                password=getattr(conn, "password", None),
                socket_timeout=1.0,
                socket_connect_timeout=1.0,
                retry=Retry(NoBackoff(), 0),
                **_tls_like(conn),
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


@dataclass(frozen=True)
class BrokerSpec:
    """Where the Celery side connects, and what it watches there.

    `url` may hold a password: never print it; show `label` instead.
    """

    url: str
    """A kombu broker URL (``redis://``, ``rediss://`` or ``;``-joined ``sentinel://``)."""
    transport_options: dict[str, Any]
    """kombu ``broker_transport_options`` (``master_name`` and ``sentinel_kwargs`` for Sentinel)."""
    queues: tuple[str, ...]
    """Queues to gauge: the app's default queue and ``task_queues`` (else ``celery``),
    then those asked for."""
    event_exchange: str
    """The exchange Celery events travel on: ``celeryev`` unless the app says otherwise."""
    label: str
    """Where it connects, for people: no password, no TLS file paths."""
    sentinel: bool
    """True when `url` is a kombu ``sentinel://`` URL (the master is found by Sentinel)."""


@dataclass(frozen=True)
class _UrlPart:
    """One URL of a (possibly ``;``-joined) kombu broker URL, parsed and checked."""

    scheme: str
    host: str
    port: int
    db: int
    query: dict[str, str]

    @property
    def address(self) -> str:
        return str(SentinelAddress(self.host, self.port))


_DEFAULT_PORTS = {"redis": 6379, "rediss": 6379, "sentinel": 26379}
_SSL_QUERY_KEYS = ("ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile")
_CERT_REQS_WORDS = {
    ssl.CERT_NONE: "none",
    ssl.CERT_OPTIONAL: "optional",
    ssl.CERT_REQUIRED: "required",
}


def _parse_broker_url(url: str, *, what: str) -> list[_UrlPart]:
    """Every URL of `url`, checked; a one-sentence `ValueError` (no password) otherwise."""
    schemes = [f"{scheme}://" for scheme in SUPPORTED_SCHEMES]
    supported = f"{', '.join(schemes[:-1])} or {schemes[-1]}"
    parts = [part.strip() for part in url.split(";") if part.strip()]
    if not parts:
        raise ValueError(f"{what} is empty; give a {supported} URL.")
    parsed: list[_UrlPart] = []
    for part in parts:
        shown = redact_url(part)
        scheme, sep, rest = part.partition("://")
        scheme = scheme.lower()
        if not sep:
            # Not echoed: without a scheme a password in it cannot be told apart.
            raise ValueError(f"{what} is not a URL (no scheme://); give a {supported} URL.")
        if scheme not in SUPPORTED_SCHEMES:
            raise ValueError(
                f"{what} uses {scheme}://, which hawatch does not read; hawatch watches Celery "
                f"on Redis, so give a {supported} URL."
            )
        try:
            split = urlsplit(f"http://{rest}")
            port = split.port
        except ValueError:
            raise ValueError(f"{what} {shown!r} has an invalid host or port.") from None
        path = split.path.strip("/")
        if path and not path.isdigit():
            raise ValueError(
                f"{what} {shown!r} names the database {path!r}; it must be a number like /0."
            )
        parsed.append(
            _UrlPart(
                scheme=scheme,
                host=split.hostname or "localhost",
                port=port or _DEFAULT_PORTS[scheme],
                db=int(path) if path else 0,
                query=dict(parse_qsl(split.query)),
            )
        )
    kinds = {part.scheme for part in parsed}
    if len(kinds) > 1 and "sentinel" in kinds:
        raise ValueError(f"{what} mixes sentinel:// with other URLs; give one kind only.")
    return parsed


def _cert_reqs_word(value: Any) -> str:
    """``none``, ``optional`` or ``required`` for an ``ssl_cert_reqs`` value (str or int)."""
    if isinstance(value, str):
        word = value.strip().lower().removeprefix("cert_")
        if word in ("none", "optional", "required"):
            return word
        raise ValueError(f"ssl_cert_reqs {value!r} is not none, optional or required.")
    try:
        return _CERT_REQS_WORDS[ssl.VerifyMode(value)]
    except (KeyError, ValueError, TypeError):
        raise ValueError(f"ssl_cert_reqs {value!r} is not none, optional or required.") from None


def _ssl_query(tls: Mapping[str, Any]) -> dict[str, str]:
    """kombu ``ssl_*`` URL parameters for redis-py TLS keyword arguments (or a kombu
    ``broker_use_ssl`` dict): kombu turns them back into the master connection's TLS."""
    query: dict[str, str] = {}
    for key in _SSL_QUERY_KEYS:
        value = tls.get(key)
        if value is None:
            continue
        query[key] = _cert_reqs_word(value) if key == "ssl_cert_reqs" else str(value)
    if "ssl_check_hostname" in tls and tls["ssl_check_hostname"] is not None:
        query["ssl_check_hostname"] = "true" if tls["ssl_check_hostname"] else "false"
    if query and "ssl_cert_reqs" not in query:
        query["ssl_cert_reqs"] = "required"
    return query


def _with_query(part: str, query: Mapping[str, str]) -> str:
    """One URL with `query` appended to its parameters."""
    if not query:
        return part
    return part + ("&" if "?" in part else "?") + urlencode(query, quote_via=quote, safe="/")


def _has_ssl_query(part: _UrlPart) -> bool:
    return any(key.startswith("ssl_") for key in part.query)


def _add_ssl_query(url: str, query: Mapping[str, str]) -> str:
    """`url` with `query` on its first URL (the one kombu reads TLS settings from)."""
    first, sep, rest = url.partition(";")
    return _with_query(first, query) + sep + rest


def _tls_kwargs(settings: Settings) -> dict[str, Any]:
    """The redis-py TLS keyword arguments of `settings` (empty without TLS)."""
    return {k: v for k, v in settings.redis_kwargs().items() if k.startswith("ssl")}


def _sentinel_kwargs(settings: Settings) -> dict[str, Any]:
    """``sentinel_kwargs`` that reach `settings`' sentinels: credentials, TLS, short timeouts."""
    kwargs: dict[str, Any] = dict(DEFAULT_SENTINEL_KWARGS)
    if settings.username:
        kwargs["username"] = settings.username
    if settings.password:
        kwargs["password"] = settings.password.reveal()
    kwargs.update(_tls_kwargs(settings))
    return kwargs


def broker_from_settings(settings: Settings, master: str) -> tuple[str, dict[str, Any]]:
    """A kombu ``sentinel://`` URL over `settings.sentinels`, and transport options for it.

    The data node credentials go in the first URL (kombu logs in to the master
    with them); the sentinel credentials in ``sentinel_kwargs``, where kombu
    needs them to discover the master at all. Both carry short socket
    timeouts. The URL may hold a password: never log it unredacted.

    With TLS, the sentinels get it through ``sentinel_kwargs`` (``ssl=True``
    and the CA, certificate and key), and the master through ``ssl_*``
    parameters on the first URL: kombu reads them into the connection's
    ``ssl`` options and then connects to the master Sentinel names with its
    ``SentinelManagedSSLConnection``.
    """
    if not settings.sentinels:
        raise ValueError("no sentinel address is configured; give at least one.")
    if not master:
        raise ValueError("the Celery side needs the name of the broker's master; give --master.")
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
    url = _add_ssl_query(url, _ssl_query(_tls_kwargs(settings)))
    options: dict[str, Any] = {
        "master_name": master,
        **DEFAULT_TRANSPORT_OPTIONS,
        "sentinel_kwargs": _sentinel_kwargs(settings),
    }
    return url, options


def _load_app(module: str) -> Celery:
    """The user's Celery app, as ``celery -A`` finds it; a one-sentence `ValueError` else."""
    from celery.app.utils import find_app

    try:
        app = find_app(module)
    except (Exception, SystemExit) as error:
        raise ValueError(
            f"cannot load a Celery app from {module!r}: {_import_failure(module, error)}"
        ) from None
    if not isinstance(app, Celery):
        raise ValueError(
            f"{module!r} is not a Celery app; give the module or module:app, "
            "the way celery -A takes it, e.g. proj.celery:app."
        )
    return app


def _import_failure(module: str, error: BaseException) -> str:
    """Why `find_app(module)` failed and what to do, as the end of one sentence."""
    where = "check --app, and run hawatch from the project's directory or set PYTHONPATH."
    package, _, attribute = module.partition(":")
    top = package.split(".")[0]
    if isinstance(error, ModuleNotFoundError):
        missing = error.name or ""
        if missing == module and attribute:
            # find_app tries the whole "module:app" as a module name once the attribute is
            # missing: say which of the two is wrong.
            if _importable(package):
                return f"module {package!r} has no attribute {attribute!r}; check --app."
            missing = package
        if missing and (missing in (top, package) or package.startswith(missing + ".")):
            return f"no module named {missing!r}; {where}"
        return (
            f"importing it needs the module {missing!r}, which is not installed here; "
            "run hawatch in the project's environment (virtualenv)."
        )
    if isinstance(error, AttributeError):
        return (
            f"found no Celery app in {package!r}; give it as module:app, the way celery -A "
            "takes it, e.g. proj.celery:app."
        )
    detail = _first_text(error)
    raised = f"{type(error).__name__}: {detail}" if detail else type(error).__name__
    return f"importing it raised {raised}; fix the module, or check --app."


def _importable(module: str) -> bool:
    """True if `module` can be found (it was imported already by a failed `find_app`)."""
    import importlib.util

    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _first_text(error: BaseException, limit: int = 60) -> str:
    """The first line of `error`'s text, cut to `limit` characters."""
    text = str(error).strip()
    line = text.splitlines()[0].strip() if text else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _app_broker(app: Celery, module: str) -> tuple[str, dict[str, Any]]:
    """The broker URL (with the app's ``broker_use_ssl`` as URL parameters) and transport
    options of a loaded app."""
    url: Any = app.conf.broker_read_url or app.conf.broker_url
    if isinstance(url, list | tuple):
        url = ";".join(str(u) for u in url)
    if not url:
        try:
            url = app.connection_for_read().as_uri(include_password=True)
        except Exception:
            raise ValueError(f"the Celery app {module!r} names no broker URL.") from None
    url = str(url)
    options = dict(app.conf.broker_transport_options or {})
    use_ssl = app.conf.broker_use_ssl
    if isinstance(use_ssl, Mapping) and use_ssl:
        parts = _parse_broker_url(url, what=f"the broker URL of {module!r}")
        if not _has_ssl_query(parts[0]):
            url = _add_ssl_query(url, _ssl_query(use_ssl))
    return url, options


def broker_from_app(module: str) -> tuple[str, dict[str, Any]]:
    """The broker URL and ``broker_transport_options`` of a user's Celery app.

    `module` is what ``celery -A`` takes (``proj``, ``proj.celery``,
    ``proj.celery:app``). A module that cannot be loaded, or holds no Celery
    app, is a one-sentence `ValueError`.
    """
    return _app_broker(_load_app(module), module)


def _queue_names(values: Any) -> list[str]:
    """Queue names from a Celery ``task_queues`` setting (kombu Queues, dicts or names)."""
    if not values:
        return []
    if isinstance(values, Mapping):
        values = list(values.keys())
    names: list[str] = []
    for item in values:
        name = getattr(item, "name", item)
        if isinstance(name, str) and name:
            names.append(name)
    return names


def _label(parts: Sequence[_UrlPart], master: str) -> str:
    """Where a broker URL connects, for people: no credentials, no parameters."""
    first = parts[0]
    if first.scheme == "sentinel":
        addresses = ", ".join(dict.fromkeys(part.address for part in parts))
        return f"sentinel://{addresses} (master {master})"
    more = f" (and {len(parts) - 1} more)" if len(parts) > 1 else ""
    return f"{first.scheme}://{first.address}/{first.db}{more}"


def broker_spec(
    settings: Settings,
    master: str,
    *,
    broker: str | None = None,
    app: str | None = None,
    queues: Sequence[str] = (),
) -> BrokerSpec:
    """Where the Celery side connects: `broker` (``--broker``), else `app` (``--app``, the
    user's Celery app as ``celery -A`` loads it), else the Sentinel `settings` and `master`.

    A ``sentinel://`` broker without ``master_name`` gets `master`. When a
    ``--broker`` URL names some of `settings`' sentinels, they are reached with
    the settings' sentinel credentials and TLS (a kombu URL cannot hold them);
    a ``rediss://`` broker without ``ssl_*`` parameters verifies the server's
    certificate (with the settings' CA when TLS is configured). Raises a
    one-sentence `ValueError` (no password in it) for a URL hawatch cannot use
    or an app that cannot be loaded. Loading an app runs its module's code:
    call this off the event loop.
    """
    extra = [name.strip() for name in queues if name and name.strip()]
    event_exchange = DEFAULT_EVENT_EXCHANGE
    base_queues: list[str] = []
    if broker is not None:
        url = broker.strip()
        parts = _parse_broker_url(url, what="the broker URL")
        options: dict[str, Any] = dict(DEFAULT_TRANSPORT_OPTIONS)
        first = parts[0]
        if first.scheme == "sentinel":
            known = {str(address) for address in settings.sentinels}
            if known & {part.address for part in parts}:
                options["sentinel_kwargs"] = _sentinel_kwargs(settings)
                if not _has_ssl_query(first):
                    url = _add_ssl_query(url, _ssl_query(_tls_kwargs(settings)))
        elif first.scheme == "rediss" and not _has_ssl_query(first):
            tls = _tls_kwargs(settings) or {"ssl_cert_reqs": "required"}
            url = _add_ssl_query(url, _ssl_query(tls))
        label_master = master
    elif app is not None:
        loaded = _load_app(app)
        url, options = _app_broker(loaded, app)
        parts = _parse_broker_url(url, what=f"the broker URL of the Celery app {app!r}")
        conf = loaded.conf
        default_queue = conf.task_default_queue or "celery"
        base_queues = [str(default_queue), *_queue_names(conf.task_queues)]
        event_exchange = str(conf.event_exchange or DEFAULT_EVENT_EXCHANGE)
        label_master = str(options.get("master_name") or master)
    else:
        url, options = broker_from_settings(settings, master)
        parts = _parse_broker_url(url, what="the broker URL")
        label_master = master
    sentinel = parts[0].scheme == "sentinel"
    if sentinel and not options.get("master_name"):
        if not master:
            raise ValueError(
                "a sentinel:// broker needs the master's name; give --master or set "
                "master_name in the app's broker_transport_options."
            )
        options["master_name"] = master
        label_master = master
    label = f"app {app}" if broker is None and app is not None else _label(parts, label_master)
    return BrokerSpec(
        url=url,
        transport_options=options,
        queues=tuple(dict.fromkeys([*(base_queues or ["celery"]), *extra])),
        event_exchange=event_exchange,
        label=label,
        sentinel=sentinel,
    )
