"""HTTP probes: does the application answer its users? Polled with httpx, async.

Each `HttpProbeOptions` is polled on its own every `interval` seconds (measured from
one request's start to the next; a request slower than that is followed at once,
never by a burst) and each answer becomes one `ProbeResult`:

- ``probe``: the probe's short, stable name (`probe_names`), e.g. ``http GET
  127.0.0.1:8801/health``: never the URL's user, password or query string. Several
  probes each have their own name (``#2`` ... when two would share one).
- ``phase`` ``ok`` (``ok`` True) when the answer's status is the expected one,
  else ``failed``; `latency`: seconds from sending the request to the answer (or
  the error); `ts`: when the answer (or the error) came.
- ``detail``: one short sentence: ``answered 200 OK in 12 ms.``, ``answered 503
  Service Unavailable, expected 200: <the start of a plain-text body>.``, ``no
  answer within 2 s.``, ``cannot connect: connection refused.`` Passwords in URLs
  are redacted (`hawatch.settings.redact_url`).

**Each request is a new connection** (no keep-alive), with a timeout on the whole
request (connect, send, read) and no retries: a dead or hung server is noticed on
the next request, as a new user would meet it. A URL that can never work (not
``http``/``https``, no host, a method that is not a word) is one failed result that
says why, and that probe stops; every other failure is retried at the next interval.
`run_http_probes` never raises: it returns only when cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import ssl
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import httpx

from hawatch.core.events import Event, ProbeResult
from hawatch.settings import redact_url

__all__ = ["HttpProbeOptions", "probe_name", "probe_names", "run_http_probes"]

log = logging.getLogger(__name__)

NAME_WIDTH = 48
"""The longest a probe's name may be; a longer path is cut with ``…``."""
BODY_CHARS = 80
"""Characters of a plain-text body quoted in the detail of a failed answer."""
_METHOD = re.compile(r"^[A-Za-z]+$")


@dataclass(frozen=True)
class HttpProbeOptions:
    """One URL to probe: `method`, the `expect`ed status, `timeout` seconds per request,
    `interval` seconds between two requests."""

    url: str
    method: str = "GET"
    expect: int = 200
    timeout: float = 2.0
    interval: float = 0.5


def probe_name(options: HttpProbeOptions) -> str:
    """The probe's short name: ``http GET 127.0.0.1:8801/health`` (``https ...`` for
    TLS). The user, the password, the query and the fragment are left out; a path
    longer than the name allows is cut with ``…``."""
    method = options.method.upper() if isinstance(options.method, str) else "?"
    text = options.url if isinstance(options.url, str) else ""
    try:
        url = httpx.URL(text.strip())
        scheme = url.scheme or "http"
        host = url.host
        where = f"[{host}]" if ":" in host else host
        if url.port is not None:
            where += f":{url.port}"
        path = url.path or "/"
    except (httpx.InvalidURL, TypeError, ValueError):
        scheme, where, path = "http", "?", ""
    if scheme not in ("http", "https"):
        scheme = "http"
    name = f"{scheme} {method} {where or '?'}{path}"
    if len(name) > NAME_WIDTH:
        name = name[: NAME_WIDTH - 1] + "…"
    return name


def probe_names(probes: Sequence[HttpProbeOptions]) -> list[str]:
    """`probe_name` of each probe, made unique: the second probe named ``X`` is
    ``X #2``, and so on (in the order given, so the names are stable)."""
    names: list[str] = []
    seen: dict[str, int] = {}
    for options in probes:
        name = probe_name(options)
        count = seen.get(name, 0) + 1
        seen[name] = count
        names.append(name if count == 1 else f"{name} #{count}")
    return names


async def run_http_probes(
    probes: Sequence[HttpProbeOptions], emit: Callable[[Event], None]
) -> None:
    """Probe every URL of `probes` until cancelled; `emit` each result (a `ProbeResult`)
    on the event loop's thread."""
    if not probes:
        return
    tasks = [
        asyncio.create_task(_probe(options, name, emit), name=f"hawatch {name}")
        for options, name in zip(probes, probe_names(probes), strict=True)
    ]
    try:
        await asyncio.gather(*tasks)
        await asyncio.Event().wait()  # every probe stopped (bad URLs): wait to be cancelled
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _unusable(options: HttpProbeOptions) -> str | None:
    """Why `options` can never work, as a sentence; None when it may."""
    text = options.url if isinstance(options.url, str) else ""
    shown = redact_url(text.strip())
    if not text.strip():
        return "the probe has no URL; give an http:// or https:// URL."
    try:
        url = httpx.URL(text.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as error:
        return f"{shown} is not a valid URL ({redact_url(str(error))}); check --http-probe."
    if url.scheme not in ("http", "https"):
        return f"{shown} is not an http:// or https:// URL; check --http-probe."
    if not url.host:
        return f"{shown} has no host; write it as http://HOST:PORT/PATH."
    if not isinstance(options.method, str) or not _METHOD.match(options.method):
        return f"{options.method!r} is not an HTTP method; use GET, HEAD or POST."
    expect = options.expect
    if isinstance(expect, bool) or not isinstance(expect, int) or not 100 <= expect <= 599:
        return f"the expected status {expect!r} is not an HTTP status (100 to 599)."
    for what, value in (("timeout", options.timeout), ("interval", options.interval)):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            return f"the probe's {what} must be a number of seconds above 0, not {value!r}."
    return None


async def _probe(options: HttpProbeOptions, name: str, emit: Callable[[Event], None]) -> None:
    """Poll one URL until cancelled (or once, when it can never work)."""
    try:
        problem = _unusable(options)
    except Exception as error:  # options no check foresaw: said, never raised
        problem = f"the probe's options cannot be used: {_reason(error)}."
    if problem is not None:
        _send(
            emit, ProbeResult(ts=time.time(), probe=name, phase="failed", ok=False, detail=problem)
        )
        return
    interval = float(options.interval)
    while True:
        try:
            await _poll(options, name, emit)
        except Exception as error:  # a bug or a broken TLS set-up: said, then tried again
            log.debug("HTTP probe %s failed", name, exc_info=True)
            detail = f"the probe itself failed: {_reason(error)}."
            _send(
                emit,
                ProbeResult(ts=time.time(), probe=name, phase="failed", ok=False, detail=detail),
            )
            await asyncio.sleep(max(interval, 1.0))


async def _poll(options: HttpProbeOptions, name: str, emit: Callable[[Event], None]) -> None:
    timeout = float(options.timeout)
    interval = float(options.interval)
    method = options.method.upper()
    url = options.url.strip()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=0)
    async with httpx.AsyncClient(
        timeout=httpx.Timeout(timeout), limits=limits, follow_redirects=False
    ) as client:
        next_at = time.monotonic()
        while True:
            began = time.monotonic()
            ok, detail = await _request(client, method, url, options.expect, timeout)
            latency = time.monotonic() - began
            _send(
                emit,
                ProbeResult(
                    ts=time.time(),
                    probe=name,
                    phase="ok" if ok else "failed",
                    ok=ok,
                    latency=latency,
                    detail=detail,
                ),
            )
            next_at += interval
            now = time.monotonic()
            if next_at < now:  # a slow answer: go on at once, without a burst
                next_at = now
            await asyncio.sleep(next_at - now)


async def _request(
    client: httpx.AsyncClient, method: str, url: str, expect: int, timeout: float
) -> tuple[bool, str]:
    """One request: (whether the expected status came, the sentence saying what came)."""
    began = time.monotonic()
    try:
        async with asyncio.timeout(timeout):
            response = await client.request(method, url)
    except TimeoutError:
        return False, f"no answer within {_seconds(timeout)}."
    except httpx.TimeoutException as error:
        if isinstance(error, httpx.ConnectTimeout | httpx.PoolTimeout):
            return False, f"no connection within {_seconds(timeout)}."
        return False, f"no answer within {_seconds(timeout)}."
    except httpx.ConnectError as error:
        return False, f"cannot connect: {_reason(error)}."
    except httpx.RemoteProtocolError as error:
        return False, f"the server broke the connection: {_reason(error)}."
    except httpx.HTTPError as error:
        return False, f"the request failed: {_reason(error)}."
    except Exception as error:  # OSError, ssl, h11 ...: a sentence, never a crash
        return False, f"the request failed: {_reason(error)}."
    took = _milliseconds(time.monotonic() - began)
    status = f"{response.status_code} {response.reason_phrase}".strip()
    if response.status_code == expect:
        return True, f"answered {status} in {took}."
    body = _body(response)
    quoted = f": {body}" if body else ""
    end = "" if quoted.endswith("…") else "."
    return False, f"answered {status}, expected {expect}{quoted}{end}"


def _body(response: httpx.Response) -> str:
    """The start of a plain-text body, on one line (none for HTML, JSON or binary)."""
    kind = response.headers.get("content-type", "")
    if not kind.lower().startswith("text/plain"):
        return ""
    try:
        text = " ".join(response.text.split())
    except (UnicodeDecodeError, LookupError):
        return ""
    text = redact_url(text).rstrip(".")
    if len(text) > BODY_CHARS:
        text = text[: BODY_CHARS - 1].rstrip() + "…"
    return text


def _reason(error: BaseException) -> str:
    """An exception in a few words: the innermost OS reason when there is one, lower-case
    ("connection refused"), never a URL's password."""
    inner: BaseException | None = error
    seen = 0
    while inner is not None and seen < 10:
        if isinstance(inner, ssl.SSLError):
            words = getattr(inner, "verify_message", None) or inner.reason or str(inner)
            return f"TLS failed ({str(words).replace('_', ' ').lower()})"
        if isinstance(inner, socket.gaierror):
            return f"the host name does not resolve ({inner.strerror or inner})"
        if isinstance(inner, OSError) and isinstance(inner.errno, int) and inner.errno > 0:
            words = os.strerror(inner.errno)
            return words[:1].lower() + words[1:]
        inner = inner.__cause__ or inner.__context__
        seen += 1
    text = " ".join(str(error).split()) or type(error).__name__
    match = re.search(r"\[Errno -?\d+\] (.+)$", text)
    if match:
        text = match.group(1)
    text = redact_url(text).rstrip(".")
    if text and text[0].isupper() and not text[:2].isupper():
        text = text[0].lower() + text[1:]
    return text[:120]


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _milliseconds(value: float) -> str:
    if value < 1.0:
        return f"{round(value * 1000)} ms"
    return f"{value:.1f} s"


def _send(emit: Callable[[Event], None], event: ProbeResult) -> None:
    """Hand a result on; a consumer that fails is logged, and the probe goes on."""
    try:
        emit(event)
    except Exception:
        with contextlib.suppress(Exception):
            log.exception("an HTTP probe result could not be handed on")
