"""The Prometheus source: query results into events (pure), errors into sentences, and the
thread against a real HTTP server on a loopback port (the standard library's) that
answers like Prometheus's query API, refuses credentials, hangs, or is something else.

The query results below have the shapes the lab's real Prometheus 2.42 and
redis_exporter 1.45 give (recorded from `hawatch lab --with-prometheus`); the
integration tests run the source against the real thing.
"""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from hawatch.core.events import Event, PrometheusObserved, PrometheusUnreachable
from hawatch.settings import Secret
from hawatch.sources.prometheus import (
    QUERIES,
    PrometheusOptions,
    PrometheusSource,
    observations,
    reason_for,
    split_credentials,
    summarize,
)

T0 = 1_700_000_000.0
OLD = "127.0.0.1:6379"
NEW = "127.0.0.1:6380"
SENTINELS = ("127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381")


def sample(name: str | None, value: float, ts: float = T0, **labels: str) -> dict[str, Any]:
    metric = dict(labels)
    if name is not None:
        metric["__name__"] = name
    return {"metric": metric, "value": [ts, str(value)]}


def status(
    sentinel: str, address: str, value: float = 1, word: str = "ok", master: str = "mymaster"
) -> dict[str, Any]:
    return sample(
        "redis_sentinel_master_status",
        value,
        instance=sentinel,
        job="sentinel",
        master_address=address,
        master_name=master,
        master_status=word,
    )


def stamp(series: dict[str, Any], scraped: float) -> dict[str, Any]:
    """What ``timestamp(...)`` answers for `series`: no name, the scrape time as value."""
    labels = {k: v for k, v in series["metric"].items() if k != "__name__"}
    return sample(None, scraped, **labels)


def round_results(
    statuses: list[dict[str, Any]], scraped: list[float], **overrides: Any
) -> dict[str, Any]:
    """One round's answers: `statuses` (with their scrape times), three ok sentinels and
    two replicas linked to OLD, six instances up."""
    results: dict[str, Any] = {
        "status": statuses,
        "status_ts": [stamp(s, t) for s, t in zip(statuses, scraped, strict=True)],
        "ok_sentinels": [
            sample(
                "redis_sentinel_master_ok_sentinels",
                3,
                instance=s,
                master_address=OLD,
                master_name="mymaster",
            )
            for s in SENTINELS
        ],
        "ok_slaves": [
            sample(
                "redis_sentinel_master_ok_slaves",
                2 if i else 1,
                instance=s,
                master_address=OLD,
                master_name="mymaster",
            )
            for i, s in enumerate(SENTINELS)
        ],
        "ckquorum": [
            sample(
                "redis_sentinel_master_ckquorum_status",
                1,
                instance=s,
                master_name="mymaster",
                message="OK 3 usable Sentinels. Quorum and failover authorization can be reached",
            )
            for s in SENTINELS
        ],
        "sentinels": [
            sample("redis_instance_info", 1, instance=s, job="sentinel", redis_mode="sentinel")
            for s in SENTINELS
        ],
        "up": [sample("redis_up", 1, instance=s) for s in SENTINELS]
        + [sample("redis_up", 1, instance=OLD), sample("redis_up", 0, instance=NEW)]
        + [sample("redis_up", 1, instance="127.0.0.1:6381")],
        "links": [
            sample(
                "redis_master_link_up", 1, instance=NEW, master_host="127.0.0.1", master_port="6379"
            ),
            sample(
                "redis_master_link_up",
                1,
                instance="127.0.0.1:6381",
                master_host="127.0.0.1",
                master_port="6379",
            ),
        ],
    }
    results.update(overrides)
    return results


# --------------------------------------------------------------------------- pure: events


def test_one_event_per_master_with_its_address_counts_and_newest_sample() -> None:
    results = round_results([status(s, OLD) for s in SENTINELS], [T0 - 0.9, T0 - 0.2, T0 - 0.5])
    (event,) = observations(results, ts=T0 + 0.1)
    assert event == PrometheusObserved(
        ts=T0 + 0.1,
        master="mymaster",
        address=OLD,
        sample_ts=T0 - 0.2,
        status=1.0,
        master_status="ok",
        ok_sentinels=3.0,
        ok_slaves=1.0,  # the lowest any sentinel reports
        ckquorum=1.0,
        sentinels_up=3,
        nodes_up=5,
        nodes=6,
        links_up=2,
        addresses=(OLD,),
    )


def test_mid_failover_the_address_most_sentinels_call_ok_wins_and_all_are_listed() -> None:
    statuses = [status(SENTINELS[0], OLD), status(SENTINELS[1], NEW), status(SENTINELS[2], NEW)]
    (event,) = observations(round_results(statuses, [T0, T0, T0]), ts=T0 + 1)
    assert event.address == NEW and event.addresses == (NEW, OLD)
    assert event.links_up == 0  # both replicas still link to OLD


def test_an_address_called_ok_beats_more_series_that_are_down() -> None:
    statuses = [
        status(SENTINELS[0], OLD, 0, "odown"),
        status(SENTINELS[1], OLD, 0, "odown"),
        status(SENTINELS[2], NEW),
    ]
    (event,) = observations(round_results(statuses, [T0, T0, T0]), ts=T0 + 1)
    assert event.address == NEW and event.status == 1.0 and event.master_status == "ok"
    assert event.addresses == (NEW, OLD)


def test_when_no_series_is_ok_the_most_named_address_is_given_with_its_word() -> None:
    statuses = [status(s, OLD, 0, "odown") for s in SENTINELS]
    (event,) = observations(round_results(statuses, [T0, T0, T0]), ts=T0 + 1)
    assert event.address == OLD and event.status == 0.0 and event.master_status == "odown"


def test_a_tie_goes_to_the_newest_sample() -> None:
    statuses = [status(SENTINELS[0], OLD), status(SENTINELS[1], NEW)]
    (event,) = observations(round_results(statuses, [T0 - 1, T0]), ts=T0 + 1)
    assert event.address == NEW


def test_masters_asked_for_are_reported_even_without_data() -> None:
    results = round_results([status(s, OLD) for s in SENTINELS], [T0] * 3)
    events = observations(results, ts=T0, masters=("mymaster", "cache"))
    assert [(e.master, e.address) for e in events] == [("mymaster", OLD), ("cache", None)]
    cache = events[1]
    assert cache.addresses == () and cache.sample_ts is None and cache.status is None
    assert cache.nodes == 6  # the instance counts are over everything Prometheus returns


def test_masters_asked_for_filter_out_the_others() -> None:
    statuses = [status(s, OLD) for s in SENTINELS] + [
        status(SENTINELS[0], "10.0.0.1:1", master="x")
    ]
    events = observations(round_results(statuses, [T0] * 4), ts=T0, masters=("mymaster",))
    assert [e.master for e in events] == ["mymaster"]


def test_without_names_every_master_found_and_every_master_seen_before() -> None:
    statuses = [status(SENTINELS[0], "10.0.0.1:1", master="zeta"), status(SENTINELS[0], OLD)]
    events = observations(round_results(statuses, [T0] * 2), ts=T0, seen=("gone",))
    assert [(e.master, e.address) for e in events] == [
        ("gone", None),
        ("mymaster", OLD),
        ("zeta", "10.0.0.1:1"),
    ]


def test_an_answer_without_any_master_is_one_event_for_master_empty() -> None:
    events = observations({key: [] for key in QUERIES}, ts=T0, extra=[("up", "no data")])
    assert events == [
        PrometheusObserved(
            ts=T0,
            master="",
            address=None,
            nodes=0,
            nodes_up=0,
            sentinels_up=0,
            links_up=None,
            extra=(("up", "no data"),),
        )
    ]


def test_links_without_a_master_label_count_every_link_up() -> None:
    links = [sample("redis_master_link_up", 1, instance=NEW), sample("redis_master_link_up", 0)]
    results = round_results([status(SENTINELS[0], OLD)], [T0], links=links)
    (event,) = observations(results, ts=T0)
    assert event.links_up == 1


def test_malformed_samples_are_skipped_not_fatal() -> None:
    good = status(SENTINELS[0], OLD)
    broken = [{"metric": {"master_name": "mymaster"}}, {"value": "x"}, {"metric": "x"}]
    results = round_results(
        [good], [T0], status=[good, *broken], status_ts=[*broken, stamp(good, T0)]
    )
    (event,) = observations(results, ts=T0)
    assert event.address == OLD and event.sample_ts == T0


# --------------------------------------------------------------------------- pure: words


def test_summarize_a_user_query() -> None:
    assert summarize([]) == "no data"
    assert summarize([sample("up", 1)]) == "1"
    assert summarize([sample("up", 0.25)]) == "0.25"
    assert summarize([sample("up", v) for v in (1, 1, 0)]) == "3 series: 1, 1, 0"
    assert summarize([sample("up", 1)] * 6) == "6 series: 1, 1, 1, 1, …"
    assert summarize([T0, "42"]) == "42"  # a scalar
    assert summarize([T0, "NaN"]) == "NaN"
    assert summarize([{"metric": {}, "value": [T0, "+Inf"]}]) == "+Inf"


def test_split_credentials() -> None:
    assert split_credentials("http://prom:9090/") == ("http://prom:9090", None, None)
    assert split_credentials("https://ops:p%40ss@prom:9090/prefix") == (
        "https://prom:9090/prefix",
        "ops",
        "p@ss",
    )
    assert split_credentials("https://ops@prom") == ("https://prom", "ops", None)


def test_sentences_for_errors_say_what_to_check_and_hide_secrets() -> None:
    import requests
    from prometheus_api_client import PrometheusApiClientException

    url = "http://127.0.0.1:9090"
    cases = {
        requests.exceptions.ConnectionError("[Errno 111] Connection refused"): (
            "Prometheus at http://127.0.0.1:9090 does not answer (connection refused); "
            "check --prometheus and that Prometheus runs"
        ),
        requests.exceptions.ReadTimeout("read timed out"): (
            "Prometheus at http://127.0.0.1:9090 does not answer (timed out after 2 s); "
            "check --prometheus and that Prometheus runs"
        ),
        requests.exceptions.SSLError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify"): (
            "Prometheus at http://127.0.0.1:9090 does not answer over TLS (its certificate is "
            "not trusted); check --prometheus-ca-cert, "
            "or HAWATCH_PROMETHEUS_INSECURE=1 to skip the check"
        ),
        PrometheusApiClientException("HTTP Status Code 401 (b'Unauthorized')"): (
            "Prometheus at http://127.0.0.1:9090 refused hawatch's credentials (HTTP 401); check "
            "--prometheus-user and HAWATCH_PROMETHEUS_PASSWORD, or HAWATCH_PROMETHEUS_TOKEN"
        ),
        PrometheusApiClientException("HTTP Status Code 404 (b'404 page not found')"): (
            "Prometheus at http://127.0.0.1:9090 has no query API (HTTP 404); check that "
            "--prometheus is Prometheus's base URL, e.g. http://host:9090"
        ),
        PrometheusApiClientException("HTTP Status Code 503 (b'busy')"): (
            "Prometheus at http://127.0.0.1:9090 fails (HTTP 503); check Prometheus's log"
        ),
        json.JSONDecodeError("Expecting value", "<html>", 0): (
            "Prometheus at http://127.0.0.1:9090 did not answer like Prometheus's HTTP API; "
            "check that --prometheus is Prometheus's base URL, e.g. http://host:9090"
        ),
    }
    for error, sentence in cases.items():
        assert reason_for(error, url=url, timeout=2.0) == sentence
    leaky = RuntimeError("auth s3cret / token t0ken failed")
    text = reason_for(leaky, url=url, timeout=2.0, secrets=[Secret("s3cret"), Secret("t0ken")])
    assert "s3cret" not in text and "t0ken" not in text and "******" in text


# --------------------------------------------------------------------------- the thread


ANSWER = round_results([status(s, OLD) for s in SENTINELS], [T0] * 3)


class Handler(BaseHTTPRequestHandler):
    """``/api/v1/query`` answers like Prometheus from `ANSWER` (a syntax error for a query
    it does not know), after checking the server's `auth` header if set; the server's
    `mode` makes it hang (``hang``), answer 404 (``other``) or HTML (``html``)."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server = self.server
        assert isinstance(server, Server)
        server.headers_seen.append(self.headers.get("Authorization"))
        if server.mode == "hang":
            server.stopping.wait(10.0)
            return
        parts = urlsplit(self.path)
        if server.mode == "other" or parts.path != "/api/v1/query":
            self._answer(404, "404 page not found", "text/plain")
            return
        if server.mode == "html":
            self._answer(200, "<html>login</html>", "text/html")
            return
        if server.auth is not None and self.headers.get("Authorization") != server.auth:
            self._answer(401, "Unauthorized", "text/plain")
            return
        query = parse_qs(parts.query).get("query", [""])[0]
        keys = {promql: key for key, promql in QUERIES.items()}
        if query in keys:
            body = {
                "status": "success",
                "data": {"resultType": "vector", "result": ANSWER[keys[query]]},
            }
            self._answer(200, json.dumps(body), "application/json")
        elif query == "vector(7)":
            result = [{"metric": {}, "value": [T0, "7"]}]
            body = {"status": "success", "data": {"resultType": "vector", "result": result}}
            self._answer(200, json.dumps(body), "application/json")
        else:
            error = 'invalid parameter "query": 1:5: parse error: unexpected end of input'
            body = {"status": "error", "errorType": "bad_data", "error": error}
            self._answer(400, json.dumps(body), "application/json")

    def _answer(self, code: int, body: str, kind: str) -> None:
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.mode = "prometheus"
        self.auth: str | None = None
        self.headers_seen: list[str | None] = []
        self.stopping = threading.Event()

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that gave up (its timeout) leaves a broken pipe: expected here

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
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_source(
    options: PrometheusOptions, count: int, *, masters: tuple[str, ...] = (), timeout: float = 10
) -> list[Event]:
    """Run a source until `count` events came; it must stop within its timeout + 1 s."""
    events: list[Event] = []
    lock = threading.Lock()

    def post(event: Event) -> None:
        with lock:
            events.append(event)

    source = PrometheusSource(options, post, masters=masters)
    source.start()
    deadline = time.monotonic() + timeout
    try:
        while len(events) < count and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        began = time.monotonic()
        source.stop()
        assert time.monotonic() - began < options.timeout + 1.5
    after = len(events)
    time.sleep(0.2)
    assert len(events) == after, "a stopped source posted more events"
    return events


def test_a_round_gives_one_event_per_master_and_the_extra_promql(server: Server) -> None:
    options = PrometheusOptions(server.base, interval=0.1, queries=("vector(7)", "sum(up"))
    events = run_source(options, 2, masters=("mymaster",))
    first = events[0]
    assert isinstance(first, PrometheusObserved)
    assert first.master == "mymaster" and first.address == OLD and first.sample_ts == T0
    assert first.extra == (
        ("vector(7)", "7"),
        ("sum(up", "error: 1:5: parse error: unexpected end of input"),
    )


def test_basic_auth_from_the_url_and_never_the_password_in_a_sentence(server: Server) -> None:
    server.auth = "Basic " + base64.b64encode(b"ops:s3cr@t").decode()
    url = server.base.replace("http://", "http://ops:s3cr%40t@")
    (event,) = run_source(PrometheusOptions(url, interval=0.1), 1)
    assert isinstance(event, PrometheusObserved)
    (wrong,) = run_source(
        PrometheusOptions(server.base, username="ops", password=Secret("n0pe"), interval=0.1), 1
    )
    assert isinstance(wrong, PrometheusUnreachable)
    assert "HTTP 401" in wrong.reason and "n0pe" not in wrong.reason
    assert server.base in wrong.reason


def test_a_bearer_token(server: Server) -> None:
    server.auth = "Bearer t0ken"
    options = PrometheusOptions(
        server.base, token=Secret("t0ken"), username="ignored", interval=0.1
    )
    (event,) = run_source(options, 1)
    assert isinstance(event, PrometheusObserved)
    assert server.headers_seen[0] == "Bearer t0ken"


def test_a_closed_port_is_a_sentence_per_round_fast() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    events = run_source(PrometheusOptions(url, interval=0.1), 3, timeout=5)
    assert len(events) >= 3
    assert all(isinstance(e, PrometheusUnreachable) for e in events)
    assert events[0].reason == (  # type: ignore[attr-defined]
        f"Prometheus at {url} does not answer (connection refused); "
        "check --prometheus and that Prometheus runs"
    )


def test_a_hanging_prometheus_times_out_and_stop_does_not_wait_for_it(server: Server) -> None:
    server.mode = "hang"
    began = time.monotonic()
    (event,) = run_source(PrometheusOptions(server.base, timeout=0.5, interval=5), 1)
    assert isinstance(event, PrometheusUnreachable)
    assert "timed out after 0.5 s" in event.reason
    assert time.monotonic() - began < 3


def test_stop_returns_while_a_query_hangs(server: Server) -> None:
    server.mode = "hang"
    source = PrometheusSource(PrometheusOptions(server.base, timeout=1.0), lambda e: None)
    source.start()
    time.sleep(0.2)  # the first query is in flight
    began = time.monotonic()
    source.stop()
    assert time.monotonic() - began < 2.1


@pytest.mark.parametrize(("mode", "words"), [("other", "HTTP 404"), ("html", "like Prometheus")])
def test_something_that_is_not_prometheus(server: Server, mode: str, words: str) -> None:
    server.mode = mode
    (event,) = run_source(PrometheusOptions(server.base, interval=5), 1)
    assert isinstance(event, PrometheusUnreachable) and words in event.reason


def test_an_unreadable_ca_file_is_said(server: Server, tmp_path: Path) -> None:
    options = PrometheusOptions(server.base, ca_cert=tmp_path / "missing.pem", interval=5)
    (event,) = run_source(options, 1)
    assert isinstance(event, PrometheusUnreachable)
    assert "check --prometheus-ca-cert" in event.reason


def test_a_url_that_is_not_http_is_said() -> None:
    (event,) = run_source(PrometheusOptions("prometheus:9090", interval=5), 1)
    assert isinstance(event, PrometheusUnreachable)
    assert "check --prometheus" in event.reason


def test_the_source_and_the_view_import_without_textual() -> None:
    code = (
        "import sys\n"
        "import hawatch.sources.prometheus, hawatch.core.prometheus\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'textual']\n"
        "assert 'pandas' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
