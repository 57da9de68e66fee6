"""The lab's demo web endpoint: what the application's users see during a failover.

A tiny standard-library HTTP server (`ThreadingHTTPServer`, no framework) whose
every request does what a Django view using the cache does on a Redis Sentinel
cluster with django-redis's Sentinel client: write a key and read it back through
the master that Sentinel names (redis-py's ``Sentinel.master_for``, one long-lived
connection pool that asks the sentinels for the master whenever it opens a
connection, and forgets its idle connections when the master moved). Short socket
timeouts and a single retry keep a request from hanging on a dead master.

- ``GET /health`` (or ``/``): ``200`` and ``ok: wrote and read a key on the master
  127.0.0.1:6381 in 3 ms.`` when both worked; ``503`` and ``cache unavailable: <the
  error in a sentence>.`` otherwise (plain text, passwords redacted). ``HEAD`` the
  same without a body; any other path ``404``.
- Each key is new (``hawatch:demo-web:<random>``) and expires after a minute, as
  cached values do.

The lab runs it as ``python -m hawatch.lab.demo_web --port N`` (`hawatch.lab.worker.
start_demo_web`), pointed at the cluster by the lab's environment
(`hawatch.lab.demo_app`: ``HAWATCH_LAB_SENTINELS``, ``HAWATCH_LAB_MASTER``; and
``HAWATCH_LAB_PASSWORD`` / ``HAWATCH_LAB_SENTINEL_PASSWORD`` when the lab has
passwords). It prints ``demo web: listening on http://127.0.0.1:N/health`` once it
listens, then one line each time the cache starts or stops working. SIGTERM or
Ctrl-C stops it.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import signal
import sys
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry
from redis.sentinel import MasterNotFoundError, Sentinel

from hawatch.lab.demo_app import MASTER_ENV, SENTINELS_ENV
from hawatch.settings import redact

__all__ = [
    "KEY_PREFIX",
    "PASSWORD_ENV",
    "SENTINEL_PASSWORD_ENV",
    "CacheCheck",
    "DemoWebServer",
    "main",
]

PASSWORD_ENV = "HAWATCH_LAB_PASSWORD"
"""The data nodes' password, when the lab has one."""
SENTINEL_PASSWORD_ENV = "HAWATCH_LAB_SENTINEL_PASSWORD"
"""The sentinels' password, when the lab has one."""
KEY_PREFIX = "hawatch:demo-web:"
KEY_TTL = 60
"""Seconds a written key lives."""
LISTENING = "demo web: listening on "
"""What the server prints, followed by its URL, once it listens."""
HEALTH_PATHS = frozenset({"/", "/health"})
MAX_REASON = 160
"""Characters of an error kept in an answer."""


def _say(text: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} demo web: {text}", flush=True)


class CacheCheck:
    """The cache round trip of one request, through Sentinel, as a Django cache does it."""

    def __init__(
        self,
        sentinels: Sequence[tuple[str, int]],
        master: str,
        *,
        timeout: float = 0.5,
        password: str | None = None,
        sentinel_password: str | None = None,
    ) -> None:
        self.master = master
        self._secrets = [password, sentinel_password]
        sentinel_kwargs: dict[str, Any] = {
            "socket_timeout": timeout,
            "socket_connect_timeout": timeout,
            "retry": Retry(NoBackoff(), 0),
        }
        if sentinel_password:
            sentinel_kwargs["password"] = sentinel_password
        self._sentinel = Sentinel(list(sentinels), sentinel_kwargs=sentinel_kwargs)
        self._client = self._sentinel.master_for(
            master,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 1),  # one fresh connection after a stale one fails
            password=password or None,
            decode_responses=True,
        )
        self._lock = threading.Lock()
        self._working: bool | None = None

    def __call__(self) -> tuple[bool, str]:
        """Write a key and read it back: (whether both worked, the sentence to answer)."""
        began = time.monotonic()
        key = f"{KEY_PREFIX}{uuid.uuid4().hex[:16]}"
        value = uuid.uuid4().hex
        try:
            self._client.set(key, value, ex=KEY_TTL)
            read = self._client.get(key)
        except redis.RedisError as error:
            return self._said(False, f"cache unavailable: {self._reason(error)}.")
        except OSError as error:
            return self._said(False, f"cache unavailable: {self._reason(error)}.")
        if read != value:
            return self._said(False, "cache unavailable: the key read back is not the one written.")
        took = (time.monotonic() - began) * 1000
        where = self._client.connection_pool.master_address
        on = f" on the master {where[0]}:{where[1]}" if where else ""
        return self._said(True, f"ok: wrote and read a key{on} in {took:.0f} ms.")

    def _reason(self, error: BaseException) -> str:
        """The error in a short sentence (redis-py's messages can carry a whole client)."""
        if isinstance(error, MasterNotFoundError):
            return (
                f"no master found for {self.master!r} (no sentinel answers, or the one they "
                "name is down)"
            )
        text = " ".join(str(error).split()) or type(error).__name__
        text = re.sub(r" - \w+:\w+$", "", text.split(" : <", 1)[0])
        text = redact(text, self._secrets).rstrip(".")
        return text if len(text) <= MAX_REASON else text[: MAX_REASON - 1] + "…"

    def _said(self, ok: bool, sentence: str) -> tuple[bool, str]:
        """Log the first answer and each change between working and not."""
        with self._lock:
            changed = ok != self._working
            self._working = ok
        if changed:
            _say(sentence)
        return ok, sentence

    def close(self) -> None:
        self._client.close()


class DemoWebServer(ThreadingHTTPServer):
    """The HTTP server: one thread per request, each request one `CacheCheck`."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], check: CacheCheck) -> None:
        self.check = check
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        shown = f"[{name}]" if ":" in name else name
        return f"http://{shown}:{port}/health"


class _Handler(BaseHTTPRequestHandler):
    server: DemoWebServer
    server_version = "hawatch-demo-web"

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def _answer(self, *, body: bool) -> None:
        path = self.path.split("?", 1)[0]
        if path not in HEALTH_PATHS:
            status, text = 404, "not found: ask /health."
        else:
            ok, text = self.server.check()
            status = 200 if ok else 503
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per change of state (`CacheCheck`), not per request

    def handle_one_request(self) -> None:
        # A client that gave up (its timeout) leaves nothing to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle_one_request()


def _sentinels(text: str) -> list[tuple[str, int]]:
    found = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        host, _, port = item.rpartition(":")
        found.append((host.strip("[]") or "127.0.0.1", int(port)))
    return found


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    """Command-line entry point: serve until SIGTERM or Ctrl-C."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(prog="python -m hawatch.lab.demo_web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    parser.add_argument(
        "--timeout", type=float, default=0.5, help="seconds per Redis call (default 0.5)"
    )
    args = parser.parse_args(argv)
    try:
        sentinels = _sentinels(env.get(SENTINELS_ENV, "127.0.0.1:26379"))
    except ValueError:
        _say(f"{SENTINELS_ENV} must be a comma-separated list of HOST:PORT.")
        return 2
    check = CacheCheck(
        sentinels,
        env.get(MASTER_ENV, "mymaster"),
        timeout=args.timeout,
        password=env.get(PASSWORD_ENV) or None,
        sentinel_password=env.get(SENTINEL_PASSWORD_ENV) or None,
    )
    try:
        server = DemoWebServer((args.host, args.port), check)
    except OSError as error:
        _say(f"cannot listen on {args.host}:{args.port}: {error.strerror or error}.")
        return 1

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    print(f"{LISTENING}{server.url}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        check.close()
    _say("stopped.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
