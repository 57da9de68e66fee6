"""HTTP probes against a real HTTP server on a loopback port (the standard library's, in a
thread): the answers, the errors and the timeouts as the probe reports them. No mocks."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from hawatch.core.events import Event, ProbeResult
from hawatch.sources.http_probe import (
    HttpProbeOptions,
    probe_name,
    probe_names,
    run_http_probes,
)


class Handler(BaseHTTPRequestHandler):
    """``/ok`` 200, ``/broken`` 500 with a plain-text reason (``/long``: a long one),
    ``/slow`` answers after 3 s,
    ``/html`` 503 with an HTML page, ``/flip`` 503 until the server's ``healthy`` is set."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, Server)
        server.requests += 1
        if self.path == "/slow":
            server.stopping.wait(3.0)
            self._answer(200, "late")
        elif self.path == "/broken":
            self._answer(500, "cache write failed: redis://:hunter2@10.0.0.1:6379 is down.")
        elif self.path == "/long":
            self._answer(500, "the reason is " + "very " * 100 + "long.")
        elif self.path == "/html":
            self._answer(503, "<html><body>down</body></html>", kind="text/html")
        elif self.path == "/flip":
            self._answer(200 if server.healthy.is_set() else 503, "flip")
        else:
            self._answer(200, "ok")

    def do_HEAD(self) -> None:
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, status: int, body: str, kind: str = "text/plain; charset=utf-8") -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    requests = 0

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.healthy = threading.Event()
        self.stopping = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a probe that gave up (its timeout) leaves a broken pipe: expected here

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield httpd
    finally:
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def collect(
    probes: list[HttpProbeOptions], count: int, timeout: float = 10.0
) -> list[ProbeResult]:
    """Run the probes until `count` results came (or `timeout`); they must stop at once."""
    events: list[Event] = []
    task = asyncio.create_task(run_http_probes(probes, events.append))
    deadline = time.monotonic() + timeout
    try:
        while len(events) < count and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        began = time.monotonic()
        await asyncio.wait({task})
        assert time.monotonic() - began < 1.0
    assert task.cancelled(), "run_http_probes must only end by being cancelled"
    assert all(isinstance(e, ProbeResult) for e in events)
    return [e for e in events if isinstance(e, ProbeResult)]


async def test_a_healthy_endpoint_is_ok_with_its_status_and_latency(server: Server) -> None:
    options = HttpProbeOptions(f"{server.base}/health", interval=0.05)
    results = await collect([options], 3)
    assert len(results) >= 3
    first = results[0]
    assert first.probe == f"http GET 127.0.0.1:{server.server_address[1]}/health"
    assert first.phase == "ok" and first.ok is True
    assert first.latency is not None and 0 <= first.latency < 2.0
    assert first.detail is not None and first.detail.startswith("answered 200 OK in ")
    assert first.detail.endswith(".")
    # Polled at the interval, each request a new connection: every one reached the server.
    assert server.requests >= 3
    assert [r.ts for r in results] == sorted(r.ts for r in results)


async def test_an_unexpected_status_fails_and_quotes_a_short_plain_body(server: Server) -> None:
    results = await collect([HttpProbeOptions(f"{server.base}/broken", interval=0.05)], 2)
    failed = results[0]
    assert failed.phase == "failed" and failed.ok is False
    assert failed.detail is not None
    assert failed.detail.startswith("answered 500 Internal Server Error, expected 200: ")
    assert "cache write failed" in failed.detail
    assert "hunter2" not in failed.detail  # a URL password in the body is redacted
    long = await collect([HttpProbeOptions(f"{server.base}/long", interval=0.05)], 1)
    assert long[0].detail is not None and long[0].detail.endswith(" very very…")
    assert len(long[0].detail) < 160
    html = await collect([HttpProbeOptions(f"{server.base}/html", interval=0.05)], 1)
    assert html[0].detail == "answered 503 Service Unavailable, expected 200."


async def test_the_expected_status_and_the_method_are_the_probes(server: Server) -> None:
    options = HttpProbeOptions(f"{server.base}/x", method="head", expect=204, interval=0.05)
    results = await collect([options], 1)
    assert results[0].ok is True and results[0].phase == "ok"
    assert results[0].probe.startswith("http HEAD ")
    wrong = await collect([HttpProbeOptions(f"{server.base}/", expect=201, interval=0.05)], 1)
    assert wrong[0].ok is False
    assert wrong[0].detail is not None and "expected 201" in wrong[0].detail


async def test_a_closed_port_fails_fast_with_a_sentence_and_keeps_trying() -> None:
    port = closed_port()
    results = await collect([HttpProbeOptions(f"http://127.0.0.1:{port}/", interval=0.05)], 3)
    assert len(results) >= 3, "the probe keeps trying a server that is down"
    for result in results:
        assert result.phase == "failed" and result.ok is False
        assert result.detail == "cannot connect: connection refused."
        assert result.latency is not None and result.latency < 1.0


async def test_a_server_that_does_not_answer_in_time_is_a_timeout(server: Server) -> None:
    options = HttpProbeOptions(f"{server.base}/slow", timeout=0.3, interval=0.05)
    began = time.monotonic()
    results = await collect([options], 2)
    assert time.monotonic() - began < 2.5, "each request is cut at its timeout"
    assert results[0].ok is False
    assert results[0].detail == "no answer within 0.3 s."
    assert results[0].latency is not None and 0.25 <= results[0].latency < 1.0


async def test_https_to_a_plain_http_server_says_tls_failed(server: Server) -> None:
    url = server.base.replace("http://", "https://") + "/health"
    results = await collect([HttpProbeOptions(url, interval=0.05)], 1)
    assert results[0].ok is False and results[0].probe.startswith("https GET 127.0.0.1:")
    assert results[0].detail is not None
    assert results[0].detail.startswith("cannot connect: TLS failed (")


async def test_a_server_that_comes_back_is_ok_again(server: Server) -> None:
    events: list[Event] = []
    task = asyncio.create_task(
        run_http_probes([HttpProbeOptions(f"{server.base}/flip", interval=0.05)], events.append)
    )
    try:
        while len(events) < 2:
            await asyncio.sleep(0.02)
        server.healthy.set()
        while not any(isinstance(e, ProbeResult) and e.ok for e in events):
            await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.wait({task})
    phases = [e.phase for e in events if isinstance(e, ProbeResult)]
    assert phases[0] == "failed" and phases[-1] == "ok"


async def test_several_probes_each_have_their_own_name(server: Server) -> None:
    port = closed_port()
    probes = [
        HttpProbeOptions(f"{server.base}/a", interval=0.05),
        HttpProbeOptions(f"http://127.0.0.1:{port}/b", interval=0.05),
    ]
    results = await collect(probes, 6)
    by_name = {r.probe: r.ok for r in results}
    assert by_name == {
        f"http GET 127.0.0.1:{server.server_address[1]}/a": True,
        f"http GET 127.0.0.1:{port}/b": False,
    }


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("ftp://127.0.0.1/x", "is not an http:// or https:// URL"),
        ("http:///nohost", "has no host"),
        ("", "has no URL"),
        ("http://user:s3cret@[::1/", "is not a valid URL"),
    ],
)
async def test_a_url_that_can_never_work_is_one_failed_result(url: str, words: str) -> None:
    results = await collect([HttpProbeOptions(url, interval=0.05)], 2, timeout=0.5)
    assert len(results) == 1, "a URL that can never work is said once, not retried"
    assert results[0].ok is False and results[0].phase == "failed"
    assert results[0].detail is not None and words in results[0].detail
    assert "s3cret" not in results[0].detail and "s3cret" not in results[0].probe


async def test_a_password_in_the_url_is_never_in_a_result(server: Server) -> None:
    url = f"http://admin:s3cret@127.0.0.1:{server.server_address[1]}/broken?token=abc"
    port = closed_port()
    bad = f"http://admin:s3cret@127.0.0.1:{port}/"
    results = await collect([HttpProbeOptions(url), HttpProbeOptions(bad)], 2)
    for result in results:
        assert "s3cret" not in result.probe and "s3cret" not in (result.detail or "")
        assert "admin" not in result.probe and "token" not in result.probe


def test_names_are_short_stable_and_unique() -> None:
    one = HttpProbeOptions("http://127.0.0.1:8801/health")
    assert probe_name(one) == "http GET 127.0.0.1:8801/health"
    assert probe_name(HttpProbeOptions("https://example.com")) == "https GET example.com/"
    ipv6 = HttpProbeOptions("http://[::1]:8080/x", method="post")
    assert probe_name(ipv6) == "http POST [::1]:8080/x"
    long = probe_name(HttpProbeOptions("http://127.0.0.1/" + "a" * 200))
    assert len(long) <= 48 and long.endswith("…")
    same = [one, HttpProbeOptions("http://127.0.0.1:8801/health?x=1"), one]
    assert probe_names(same) == [
        "http GET 127.0.0.1:8801/health",
        "http GET 127.0.0.1:8801/health #2",
        "http GET 127.0.0.1:8801/health #3",
    ]
    assert all(name.startswith("http") for name in probe_names(same))


async def test_the_demo_endpoint_without_a_sentinel_is_a_503_with_the_reason() -> None:
    """The lab's demo web endpoint (its server in a thread) whose sentinels nobody runs:
    it answers 503 and why, and the probe quotes it."""
    from hawatch.lab.demo_web import CacheCheck, DemoWebServer

    check = CacheCheck([("127.0.0.1", closed_port())], "mymaster", timeout=0.2)
    httpd = DemoWebServer(("127.0.0.1", 0), check)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        results = await collect([HttpProbeOptions(httpd.url, interval=0.05)], 2)
        missing = await collect([HttpProbeOptions(httpd.url.replace("/health", "/x"))], 1)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
        check.close()
    assert results[0].ok is False
    assert results[0].detail is not None
    assert results[0].detail.startswith(
        "answered 503 Service Unavailable, expected 200: cache unavailable: "
    )
    assert "mymaster" in results[0].detail  # no master found for it
    assert missing[0].detail == "answered 404 Not Found, expected 200: not found: ask /health."
