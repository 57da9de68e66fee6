"""`hawatch serve`: the live screen in a web browser, for demos.

textual-serve runs one command per browser connection and relays its terminal
to an xterm.js page. Here that command is ``hawatch watch`` with the options
`hawatch serve` was given, so every viewer gets a screen of its own, exactly
as the terminal shows it.

Three things differ from running textual-serve as is, and are the reason for
this module:

- **Secrets stay off command lines.** A viewer's command line is visible to
  every local user (``ps``), so it never holds a password: a ``--url``
  password travels in the viewer's environment (``HAWATCH_PASSWORD``), and a
  ``--broker`` URL with a password is refused (`viewer_command`).
- **No failover key in the browser** unless asked for. The page has no login;
  anyone who can load it gets a screen of their own, so a failover key there
  would let any visitor fail the master over. Viewers get ``--no-failover``
  unless `hawatch serve --allow-failover`.
- **Every viewer process is stopped, by its pid.** textual-serve asks an app
  to quit when its browser goes away and waits for it forever; `WebServer`
  waits a few seconds, then sends SIGTERM, then SIGKILL, and does the same for
  every viewer when the server stops (Ctrl-C, SIGTERM, a hang-up).

The server only answers pages and websockets addressed to a loopback name when
it listens on a loopback address, and refuses a websocket opened by a page of
another origin: otherwise any web site open in the presenter's browser could
drive the screen (DNS rebinding, cross-site websockets).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import re
import shlex
import signal
import socket
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp_jinja2
from aiohttp import WSCloseCode, web
from textual_serve.app_service import AppService
from textual_serve.server import Server, to_int

from hawatch.settings import Secret, parse_url, redact_url

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "STOP_GRACE",
    "ServeError",
    "ServeUsageError",
    "ViewerCommand",
    "WebServer",
    "is_loopback",
    "url_for",
    "viewer_command",
    "without_credentials",
]

DEFAULT_HOST = "127.0.0.1"
"""Where `hawatch serve` listens unless told otherwise: this machine only."""
DEFAULT_PORT = 8000
"""The TCP port `hawatch serve` listens on unless told otherwise."""
STOP_GRACE = 3.0
"""Seconds a viewer's screen gets to quit when asked, and again after SIGTERM."""

_KOMBU_SPLIT = re.compile(r";(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.", "ip6-localhost", "ip6-loopback"})


class ServeUsageError(ValueError):
    """Bad input to `hawatch serve` (a host, a broker URL), said in one sentence."""


class ServeError(Exception):
    """The web server could not start (a taken port, an address not on this machine)."""


# --------------------------------------------------------------------------- the viewer's command


@dataclass(frozen=True)
class ViewerCommand:
    """What each browser viewer runs: a ``hawatch watch`` command line and the secrets
    it receives through its environment rather than its (public) command line."""

    argv: tuple[str, ...]
    """The command, word by word; never holds a password."""
    secrets: Mapping[str, Secret] = field(default_factory=dict, repr=False)
    """Environment variables added to the viewer's environment (``HAWATCH_PASSWORD``)."""

    def shell(self) -> str:
        """The command as textual-serve runs it (through ``sh -c``).

        ``exec`` makes the shell become hawatch, so the process textual-serve
        started, and the one `WebServer` stops by pid, is the screen itself.
        """
        return "exec " + shlex.join(self.argv)

    def environment(self, base: Mapping[str, str]) -> dict[str, str]:
        """`base` plus `secrets`, revealed: the environment of one viewer process."""
        env = dict(base)
        env.update({name: secret.reveal() for name, secret in self.secrets.items()})
        return env


def without_credentials(url: str) -> str:
    """`url` (one URL, or kombu's ``;``-joined list) without user, password, query or fragment.

    What is left names the same sentinels, TLS and master (hawatch ignores a
    URL's query), and can be shown on a command line.
    """
    parts = []
    for part in _KOMBU_SPLIT.split(url.strip()):
        scheme, separator, rest = part.partition("://")
        rest = rest[rest.rfind("@") + 1 :]
        end = re.search(r"[?#]", rest)
        parts.append(scheme + separator + (rest[: end.start()] if end else rest))
    return ";".join(parts)


def viewer_command(
    connection: Mapping[str, Any],
    celery: Mapping[str, Any],
    screen: Mapping[str, Any],
    *,
    read_only: bool | None = None,
    journal: bool = False,
    allow_failover: bool = False,
    python: str = sys.executable,
    extras: Mapping[str, Any] | None = None,
) -> ViewerCommand:
    """The ``hawatch watch`` command each viewer runs, from `hawatch serve`'s options.

    `connection`, `celery` and `screen` are the mappings the CLI's
    `connection_options`, `celery_options` and `screen_options` give a command;
    they are passed on as the same flags, so a viewer resolves the same
    settings `serve` did (it also inherits `serve`'s environment and config
    file). Exceptions, each for a reason:

    - a ``--url`` goes on without its credentials (`without_credentials`): its
      user becomes ``--username`` (unless one is given) and its password the
      viewer's ``HAWATCH_PASSWORD``, which the flag level reads when its URL
      carries none. The viewer therefore uses the same password.
    - a ``--broker`` URL with a password is refused (`ServeUsageError`):
      ``hawatch watch`` reads a broker only from its command line.
    - ``--no-failover`` is added unless `allow_failover` (and the screen's own
      ``--no-failover`` was not given): the page has no login.
    - `extras` (the ``--prometheus`` and ``--http-probe`` options) go on as flags, but a
      ``--prometheus`` URL without its credentials: its password becomes the viewer's
      ``HAWATCH_PROMETHEUS_PASSWORD`` and its user ``--prometheus-user``; a probe URL
      with a password is refused, as a broker's is.
    - ``--no-journal`` is added unless `journal`: every viewer watches the same
      cluster, so each would write one more copy of the same events. With
      `journal`, each viewer writes its own default journal file (named after
      its start time and pid), never several processes into one file.
    """
    argv = [python, "-m", "hawatch", "watch"]
    secrets: dict[str, Secret] = {}

    for address in connection.get("sentinels") or ():
        argv += ["--sentinel", address]
    url = connection.get("url")
    username = connection.get("username")
    if url is not None:
        parsed = parse_url(url, what="--url")
        argv += ["--url", without_credentials(url)]
        if username is None and parsed.username is not None:
            username = parsed.username
        if parsed.password is not None:
            secrets["HAWATCH_PASSWORD"] = parsed.password
    for name in connection.get("masters") or ():
        argv += ["--master", name]
    if username is not None:
        argv += ["--username", username]
    for flag, key in (
        ("--node-username", "node_username"),
        ("--tls-ca-cert", "tls_ca_cert"),
        ("--tls-cert", "tls_cert"),
        ("--tls-key", "tls_key"),
        ("--config", "config"),
    ):
        if connection.get(key) is not None:
            argv += [flag, str(connection[key])]

    if not celery.get("celery_enabled", True):
        argv.append("--no-celery")
    broker = celery.get("broker")
    if broker is not None:
        if redact_url(broker) != broker:
            raise ServeUsageError(
                "--broker holds a password, which every viewer's command line would show; "
                "leave --broker out (the watched cluster is the broker) or use --app"
            )
        argv += ["--broker", broker]
    if celery.get("app") is not None:
        argv += ["--app", celery["app"]]
    for queue in celery.get("queues") or ():
        argv += ["--queue", queue]
    if celery.get("canary_rate"):
        argv += ["--canary", f"{celery['canary_rate']:g}"]
    if celery.get("lost_after") is not None:
        argv += ["--lost-after", f"{celery['lost_after']:g}"]

    if screen.get("theme") is not None:
        argv += ["--theme", screen["theme"]]
    if screen.get("bell", True) is False:
        argv.append("--no-bell")
    if screen.get("refresh") is not None:
        argv += ["--refresh", f"{screen['refresh']:g}"]
    if not (allow_failover and screen.get("allow_failover", True)):
        argv.append("--no-failover")
    argv += _extras_argv(extras or {}, secrets)
    if read_only:
        argv.append("--read-only")
    if not journal:
        argv.append("--no-journal")
    return ViewerCommand(argv=tuple(argv), secrets=secrets)


def _extras_argv(extras: Mapping[str, Any], secrets: dict[str, Secret]) -> list[str]:
    """The ``--prometheus`` and ``--http-probe`` flags for a viewer, credentials kept off."""
    argv: list[str] = []
    prometheus = extras.get("prometheus")
    if prometheus:
        parts = urlsplit(prometheus)
        user = extras.get("prometheus_user") or (unquote(parts.username or "") or None)
        if parts.password:
            secrets["HAWATCH_PROMETHEUS_PASSWORD"] = Secret(unquote(parts.password))
        argv += ["--prometheus", without_credentials(prometheus)]
        if user:
            argv += ["--prometheus-user", user]
    if extras.get("prometheus_ca_cert") is not None:
        argv += ["--prometheus-ca-cert", str(extras["prometheus_ca_cert"])]
    for query in extras.get("promql") or ():
        argv += ["--promql", query]
    probes = list(extras.get("http_probes") or ())
    for url in probes:
        if redact_url(url) != url:
            raise ServeUsageError(
                "--http-probe holds a password, which every viewer's command line would show; "
                "probe a URL without one"
            )
        argv += ["--http-probe", url]
    if probes:
        for flag, key in (
            ("--http-probe-method", "http_probe_method"),
            ("--http-probe-status", "http_probe_status"),
            ("--http-probe-timeout", "http_probe_timeout"),
            ("--http-probe-interval", "http_probe_interval"),
        ):
            if extras.get(key) is not None:
                argv += [
                    flag,
                    f"{extras[key]:g}" if isinstance(extras[key], float) else str(extras[key]),
                ]
    return argv


# --------------------------------------------------------------------------- addresses


def is_loopback(host: str) -> bool:
    """Whether every address `host` names is a loopback address (127.0.0.0/8, ::1).

    Raises `ServeUsageError` when `host` is empty or names no address.
    """
    if not host.strip():
        raise ServeUsageError("--host is empty; give an address such as 127.0.0.1")
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as error:
        reason = getattr(error, "strerror", None) or "no such host"
        raise ServeUsageError(
            f"--host {host!r} names no address ({reason}); give an address such as 127.0.0.1"
        ) from None
    addresses = {str(info[4][0]).split("%", 1)[0] for info in infos}
    return bool(addresses) and all(ipaddress.ip_address(a).is_loopback for a in addresses)


def url_for(host: str, port: int) -> str:
    """The ``http://`` address of the screen, brackets around an IPv6 address."""
    return f"http://{_host_port(host, port)}"


def _host_port(host: str, port: int) -> str:
    """``HOST:PORT``, brackets around an IPv6 address."""
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"{shown}:{port}"


def _host_name(host_header: str) -> str:
    """The name in an HTTP ``Host`` header, without its port and brackets, lower-case."""
    name = host_header.strip().lower()
    if name.startswith("["):
        return name[1 : name.find("]")] if "]" in name else name[1:]
    return name.rsplit(":", 1)[0] if name.count(":") == 1 else name


def _names_loopback(name: str) -> bool:
    """Whether a ``Host`` header's name is a loopback name or a loopback address."""
    if name in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


# --------------------------------------------------------------------------- the server


class _Viewer(AppService):
    """One browser viewer's screen: a ``hawatch watch`` process, stopped by pid if need be.

    The process gets the `ViewerCommand`'s secrets in its environment and a
    session of its own, so that a Ctrl-C in the server's terminal reaches the
    server only, which then stops its viewers in order.
    """

    def __init__(self, viewer: ViewerCommand, **kwargs: Any) -> None:
        super().__init__(viewer.shell(), **kwargs)
        self._viewer = viewer
        self._closing: asyncio.Task[None] | None = None

    def _build_environment(self, width: int = 80, height: int = 24) -> dict[str, str]:
        """textual-serve's environment for the app, plus the viewer's secrets."""
        return self._viewer.environment(super()._build_environment(width=width, height=height))

    async def _open_app_process(self, width: int = 80, height: int = 24) -> Any:
        """Start the viewer's process, in a session of its own."""
        environment = self._build_environment(width=width, height=height)
        self._process = process = await asyncio.create_subprocess_shell(
            self.command,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environment,
            start_new_session=True,
        )
        assert process.stdin is not None
        self._stdin = process.stdin
        return process

    @property
    def pid(self) -> int | None:
        """The viewer's process id, once started."""
        return None if self._process is None else self._process.pid

    async def stop(self) -> None:
        """Stop the viewer's process: ask it to quit, then SIGTERM, then SIGKILL, by pid.

        Safe to call several times and from several tasks at once.
        """
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._stop())
        await asyncio.shield(self._closing)

    async def _stop(self) -> None:
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(Exception):
                await self.send_meta({"type": "quit"})
            for sig in (signal.SIGTERM, signal.SIGKILL):
                if await _exited(process, STOP_GRACE):
                    break
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, sig)
            await _exited(process, STOP_GRACE)
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), STOP_GRACE)
            self._task.cancel()
        with contextlib.suppress(Exception):
            await self._download_manager.cancel_app_downloads(app_service_id=self.app_service_id)


async def _exited(process: asyncio.subprocess.Process, timeout: float) -> bool:
    """Whether `process` has exited within `timeout` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while process.returncode is None and loop.time() < deadline:
        await asyncio.sleep(0.05)
    return process.returncode is not None


class WebServer(Server):
    """textual-serve's server, running `viewer` once per browser connection.

    Adds to textual-serve: the viewer's secrets in its environment (never on
    its command line), a bounded stop of every viewer by pid, a page whose
    websocket address is the one the browser used (so ``--host 0.0.0.0`` and
    ``--port 0`` work), the loopback-only ``Host`` check and the same-origin
    websocket check, and one `run` coroutine that binds first and says where
    to look only once the port is really open.
    """

    def __init__(self, viewer: ViewerCommand, *, host: str, port: int) -> None:
        super().__init__(viewer.shell(), host=host, port=port, title="hawatch")
        self.viewer = viewer
        """The command each browser connection runs, and its secrets."""
        self.loopback_only = is_loopback(host)
        """Listening on loopback: answer only requests addressed to a loopback name."""
        self._viewers: set[_Viewer] = set()
        self._sockets: set[web.WebSocketResponse] = set()

    @property
    def viewer_pids(self) -> list[int]:
        """The pids of the viewer processes running now."""
        return sorted(v.pid for v in self._viewers if v.pid is not None)

    async def on_startup(self, app: web.Application) -> None:
        """Say nothing here: `run` prints the address once the port is open."""

    def _check_host(self, request: web.Request) -> None:
        """Refuse a request addressed to a non-loopback name while listening on loopback
        (a DNS-rebinding page would otherwise reach the screen)."""
        if self.loopback_only and not _names_loopback(_host_name(request.host)):
            raise web.HTTPForbidden(
                text="hawatch serves this screen to this machine only; "
                "open it at a loopback address such as 127.0.0.1.\n"
            )

    async def handle_index(self, request: web.Request) -> web.Response:
        """The page, with a websocket address on the host and port the browser used.

        Sent with ``Cache-Control: no-store``, which keeps the page out of the
        browser's back-forward cache: a cached page would keep its websocket, and
        so its screen's process, open after its viewer has gone to another page.
        """
        self._check_host(request)
        context = {
            "font_size": to_int(request.query.get("fontsize", "16"), 16),
            "app_websocket_url": f"ws://{request.host}/ws",
            "config": {"static": {"url": "/static/"}},
            "application": {"name": self.title},
        }
        response = aiohttp_jinja2.render_template("app_index.html", request, context)
        response.headers["Cache-Control"] = "no-store"
        return response

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        """Run one viewer's screen for as long as its browser stays connected."""
        self._check_host(request)
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc.lower() != request.host.lower():
            raise web.HTTPForbidden(text="a page of another origin cannot open this screen.\n")
        websocket = web.WebSocketResponse(heartbeat=15)
        width = to_int(request.query.get("width", "80"), 80)
        height = to_int(request.query.get("height", "24"), 24)
        viewer: _Viewer | None = None
        try:
            await websocket.prepare(request)
            self._sockets.add(websocket)
            viewer = _Viewer(
                self.viewer,
                write_bytes=websocket.send_bytes,
                write_str=websocket.send_str,
                close=websocket.close,
                download_manager=self.download_manager,
            )
            self._viewers.add(viewer)
            await viewer.start(width, height)
            await self._process_messages(websocket, viewer)
        except (asyncio.CancelledError, ConnectionError):
            pass
        except Exception as error:
            # The type only: the message of an unexpected error may quote the environment.
            _warn(f"a browser's screen stopped on an error ({type(error).__name__}).")
        finally:
            if viewer is not None:
                with contextlib.suppress(Exception):
                    await viewer.stop()
                self._viewers.discard(viewer)
            self._sockets.discard(websocket)
            with contextlib.suppress(Exception):
                await websocket.close()
        return websocket

    async def stop_viewers(self) -> None:
        """Stop every viewer's process (by pid if it does not quit) and close its websocket."""
        await asyncio.gather(*(v.stop() for v in list(self._viewers)), return_exceptions=True)
        for websocket in list(self._sockets):
            with contextlib.suppress(Exception):
                await websocket.close(code=WSCloseCode.GOING_AWAY, message=b"server stopped")

    async def run(self, ready: Callable[[str], None]) -> int:
        """Serve until SIGINT (returns 130), SIGTERM or SIGHUP (returns 0).

        Calls `ready` with the screen's address once the port is open. Every
        viewer is stopped before this returns, whatever ends the run. Raises
        `ServeError` when the port cannot be opened.
        """
        loop = asyncio.get_running_loop()
        finished: asyncio.Future[int] = loop.create_future()

        def finish(status: int) -> None:
            if not finished.done():
                finished.set_result(status)

        stops = {signal.SIGINT: 130, signal.SIGTERM: 0, signal.SIGHUP: 0}
        for sig, status in stops.items():
            loop.add_signal_handler(sig, finish, status)
        runner = web.AppRunner(await self._make_app(), access_log=None, shutdown_timeout=5.0)
        try:
            await runner.setup()
            site = web.TCPSite(runner, self.host, self.port)
            try:
                await site.start()
            except OSError as error:
                # aiohttp rewords the system's message around the address; keep the reason.
                why = os.strerror(error.errno) if error.errno else type(error).__name__
                raise ServeError(
                    f"cannot listen on {_host_port(self.host, self.port)} ({why.lower()}); "
                    "choose another --port or --host."
                ) from None
            port = next((int(a[1]) for a in runner.addresses if isinstance(a, tuple)), self.port)
            self.port = port
            ready(url_for(self.host, port))
            return await finished
        finally:
            await self.stop_viewers()
            await runner.cleanup()
            for sig in stops:
                loop.remove_signal_handler(sig)


def _warn(text: str) -> None:
    """One line on standard error; a terminal that is gone is not an error."""
    with contextlib.suppress(OSError, ValueError):
        print(f"hawatch: warning: {text}", file=sys.stderr, flush=True)
