"""What Prometheus says about the Sentinel masters, next to hawatch's live view.

Teams already scrape their sentinels with redis_exporter; hawatch asks that
Prometheus, every `PrometheusOptions.interval` seconds and in a thread of its
own, for the exporter's Sentinel metrics (`QUERIES`) and any PromQL the user
adds, and turns each answer into one `PrometheusObserved` per master. A round
that fails (Prometheus down, slow, refusing the credentials, not Prometheus at
all) becomes one `PrometheusUnreachable` whose reason is a sentence saying what
to check, with no password or token in it. Nothing waits on Prometheus: each
query has a timeout, and `PrometheusSource.stop` returns within about that
timeout plus a second even when Prometheus hangs.

The client is prometheus-api-client's `PrometheusConnect` (it imports only
``requests`` until a data-frame helper is used), with retries off, so a failed
query is reported at once instead of being retried behind the operator's back.

The pure half (`observations`, `summarize`, `reason_for`) turns query results
and errors into events and sentences; it is tested without a Prometheus.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from hawatch.core.events import Event, PrometheusObserved, PrometheusUnreachable
from hawatch.settings import Secret, redact

if TYPE_CHECKING:
    from prometheus_api_client import PrometheusConnect

__all__ = [
    "QUERIES",
    "PrometheusOptions",
    "PrometheusSource",
    "observations",
    "reason_for",
    "split_credentials",
    "summarize",
]

log = logging.getLogger(__name__)

QUERIES: Mapping[str, str] = {
    "status": "redis_sentinel_master_status",
    "status_ts": "timestamp(redis_sentinel_master_status)",
    "ok_sentinels": "redis_sentinel_master_ok_sentinels",
    "ok_slaves": "redis_sentinel_master_ok_slaves",
    "ckquorum": "redis_sentinel_master_ckquorum_status",
    "sentinels": 'redis_instance_info{redis_mode="sentinel"}',
    "up": "redis_up",
    "links": "redis_master_link_up",
}
"""The PromQL asked every round, by the name `observations` reads it under.
``status_ts`` gives the time of each status sample (its scrape), hence the data's age."""

_EXTRA_VALUES = 4
"""Values of a user query shown before ``…``."""
_EXTRA_WIDTH = 60
"""The most characters an extra query's value takes."""

Result = list[dict[str, Any]]
"""An instant vector as Prometheus's API gives it: ``{"metric": {...}, "value": [ts, "v"]}``."""


@dataclass(frozen=True)
class PrometheusOptions:
    """Where Prometheus is and how to ask it.

    `url`: its base URL (``http://127.0.0.1:9090``), without credentials; `username`
    and `password`: basic auth; `token`: a bearer token; `ca_cert`: a PEM file to
    verify its certificate with; `insecure`: skip that verification; `interval`:
    seconds between two rounds of queries; `timeout`: seconds one query may take;
    `queries`: extra PromQL the user wants shown.
    """

    url: str
    username: str | None = None
    password: Secret | None = None
    token: Secret | None = None
    ca_cert: Path | None = None
    insecure: bool = False
    interval: float = 1.0
    timeout: float = 2.0
    queries: tuple[str, ...] = ()


# -- the pure half -------------------------------------------------------------------------


def split_credentials(url: str) -> tuple[str, str | None, str | None]:
    """`url` without its ``user:password@`` part, and that user and password (decoded).

    The source uses credentials found in the URL when the options give none.
    """
    parts = urlsplit(url.strip())
    if "@" not in parts.netloc:
        return url.strip().rstrip("/"), None, None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, sep, password = userinfo.partition(":")
    bare = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare.rstrip("/"), unquote(user) or None, unquote(password) if sep else None


def _value(sample: Mapping[str, Any]) -> float | None:
    """A sample's value as a float (``NaN`` and ``+Inf`` included); None when malformed."""
    try:
        return float(sample["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _labels(sample: Mapping[str, Any]) -> Mapping[str, str]:
    metric = sample.get("metric")
    return metric if isinstance(metric, dict) else {}


def _newest(values: list[float]) -> float | None:
    return max(values) if values else None


def _least(values: list[float | None]) -> float | None:
    """The lowest value the sentinels report: the conservative one."""
    known = [value for value in values if value is not None and not math.isnan(value)]
    return min(known) if known else None


def observations(
    results: Mapping[str, Result],
    *,
    ts: float,
    masters: Sequence[str] = (),
    seen: Sequence[str] = (),
    extra: Sequence[tuple[str, str]] = (),
) -> list[PrometheusObserved]:
    """One `PrometheusObserved` per master from one round's answers (`results`, keyed
    as `QUERIES`), every one stamped `ts`.

    The masters reported are `masters` when given (each of them, with ``address``
    None when Prometheus has no data for it); otherwise every ``master_name`` found,
    plus those in `seen` (masters earlier rounds found, so a master that vanished from
    Prometheus is said to have no data). When that leaves none, one event with master
    ``""`` says that Prometheus answered without any Sentinel master.

    Per master: ``address`` is the ``master_address`` whose status is 1 in the most
    series (ties: the newest sample, then the address); when no series says 1, the
    address in the most series, with its status (0). ``addresses`` lists every
    address, most reported first. ``status`` is the highest any sentinel reports for
    that address (1 as soon as one calls it ok), ``master_status`` the word of those
    series; the sentinel and replica counts and the quorum check are the lowest any
    sentinel reports (for that address, when the series say which); ``links_up``
    counts the replicas whose link to that address is up (every replica with a link
    up when the exporter does not say where the link goes). ``sample_ts`` is the
    newest status sample's scrape time. The instance counts (``nodes``,
    ``nodes_up``, ``sentinels_up``) are over everything Prometheus returns.
    """
    status = results.get("status", [])
    stamps: dict[tuple[tuple[str, str], ...], float] = {}
    for sample in results.get("status_ts", []):
        value = _value(sample)
        if value is not None:
            stamps[_key(sample)] = value
    found = list(dict.fromkeys(_labels(s).get("master_name", "") for s in status))
    found = [name for name in found if name]
    names = list(dict.fromkeys(masters)) if masters else sorted({*found, *seen})
    up = [v for v in (_value(s) for s in results.get("up", [])) if v is not None]
    base = PrometheusObserved(
        ts=ts,
        master="",
        address=None,
        nodes=len(up) if "up" in results else None,
        nodes_up=sum(1 for v in up if v == 1) if "up" in results else None,
        sentinels_up=(
            len({_instance(s) for s in results["sentinels"] if _value(s) == 1})
            if "sentinels" in results
            else None
        ),
        extra=tuple(extra),
    )
    if not names:
        return [base]
    return [
        _observe(
            name,
            [s for s in status if _labels(s).get("master_name") == name],
            stamps,
            results,
            base,
        )
        for name in names
    ]


def _key(sample: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """A series' identity without its metric name (``timestamp()`` drops the name)."""
    return tuple(sorted((k, str(v)) for k, v in _labels(sample).items() if k != "__name__"))


def _named(sample: Mapping[str, Any], name: str) -> bool:
    return _labels(sample).get("master_name") == name


def _instance(sample: Mapping[str, Any]) -> str:
    labels = _labels(sample)
    return f"{labels.get('job', '')}/{labels.get('instance', '')}"


def _observe(
    name: str,
    series: list[dict[str, Any]],
    stamps: Mapping[tuple[tuple[str, str], ...], float],
    results: Mapping[str, Result],
    base: PrometheusObserved,
) -> PrometheusObserved:
    """`base` (the round's time, counts and extra PromQL) completed for master `name`."""
    by_address: Counter[str] = Counter()
    ok_by_address: Counter[str] = Counter()
    newest: dict[str, float] = {}
    for sample in series:
        named = _labels(sample).get("master_address", "")
        if not named:
            continue
        by_address[named] += 1
        if _value(sample) == 1:
            ok_by_address[named] += 1
        stamp = stamps.get(_key(sample))
        if stamp is not None:
            newest[named] = max(stamp, newest.get(named, stamp))
    pool = ok_by_address or by_address
    address: str | None = None
    if pool:
        address = max(pool, key=lambda a: (pool[a], newest.get(a, -math.inf), a))
    addresses = tuple(sorted(by_address, key=lambda a: (-ok_by_address[a], -by_address[a], a)))
    mine = [s for s in series if _labels(s).get("master_address") == address]
    values = [v for v in (_value(s) for s in mine) if v is not None and not math.isnan(v)]
    status = max(values) if values else None
    words = Counter(_labels(s).get("master_status", "") for s in mine if _value(s) == status)
    words.pop("", None)

    def for_address(query: str) -> float | None:
        samples = [s for s in results.get(query, []) if _named(s, name)]
        chosen = [s for s in samples if _labels(s).get("master_address") == address]
        return _least([_value(s) for s in chosen or samples])

    return dataclasses.replace(
        base,
        master=name,
        address=address,
        sample_ts=_newest(list(newest.values())),
        status=status,
        master_status=words.most_common(1)[0][0] if words else None,
        ok_sentinels=for_address("ok_sentinels"),
        ok_slaves=for_address("ok_slaves"),
        ckquorum=_least([_value(s) for s in results.get("ckquorum", []) if _named(s, name)]),
        links_up=_links_up(results.get("links"), address) if "links" in results else None,
        addresses=addresses,
    )


def _links_up(samples: Result | None, address: str | None) -> int | None:
    """Replicas whose ``redis_master_link_up`` is 1 towards `address` (any address when
    the series do not carry ``master_host``/``master_port``)."""
    if samples is None:
        return None
    count = 0
    for sample in samples:
        if _value(sample) != 1:
            continue
        labels = _labels(sample)
        host, port = labels.get("master_host"), labels.get("master_port")
        if host is None or port is None or address is None:
            count += 1
            continue
        target = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if target == address:
            count += 1
    return count


def _number(value: float) -> str:
    """A sample value in few characters: ``1``, ``0.25``, ``1.5e+09``, ``NaN``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.4g}"


def summarize(result: Any) -> str:
    """The value of a user's PromQL in a few words: ``1``, ``3 series: 1, 1, 0``,
    ``no data``. A scalar or string result (``[ts, "v"]``) is its value."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        try:
            return _number(float(result[1]))
        except (TypeError, ValueError):
            return str(result[1])[:_EXTRA_WIDTH]
    if not isinstance(result, list) or not result:
        return "no data"
    values = [_value(sample) for sample in result if isinstance(sample, dict)]
    shown = [_number(v) if v is not None else "?" for v in values[:_EXTRA_VALUES]]
    if len(values) == 1:
        return shown[0] if shown else "no data"
    more = ", …" if len(values) > _EXTRA_VALUES else ""
    return f"{len(values)} series: {', '.join(shown)}{more}"[:_EXTRA_WIDTH]


_STATUS = re.compile(r"HTTP Status Code (\d+)")


def _status_code(error: BaseException) -> int | None:
    match = _STATUS.search(str(error))
    return int(match.group(1)) if match else None


def reason_for(
    error: BaseException,
    *,
    url: str,
    timeout: float,
    secrets: Sequence[str | Secret | None] = (),
) -> str:
    """Why a round failed, as one sentence that names Prometheus's `url`, says what
    happened in words and what to check, and holds none of `secrets`."""
    import requests
    from prometheus_api_client import PrometheusApiClientException

    at = f"Prometheus at {redact(url, secrets)}"
    check = "check --prometheus and that Prometheus runs"
    if isinstance(error, requests.exceptions.SSLError):
        text = str(error)
        what = "its certificate is not trusted" if "CERTIFICATE_VERIFY" in text else "TLS failed"
        return (
            f"{at} does not answer over TLS ({what}); check --prometheus-ca-cert, "
            "or HAWATCH_PROMETHEUS_INSECURE=1 to skip the check"
        )
    if isinstance(error, requests.exceptions.Timeout):
        return f"{at} does not answer (timed out after {timeout:g} s); {check}"
    if isinstance(error, requests.exceptions.ConnectionError):
        text = str(error).lower()
        if "refused" in text:
            what = "connection refused"
        elif "name or service not known" in text or "resolution" in text or "resolve" in text:
            what = "its host name does not resolve"
        elif "reset" in text or "aborted" in text or "remote end closed" in text:
            what = "the connection was cut"
        else:
            what = "cannot connect"
        return f"{at} does not answer ({what}); {check}"
    if isinstance(
        error,
        requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema
        | requests.exceptions.InvalidURL,
    ):
        return f"{at} cannot be asked: the URL is not an http(s) URL; check --prometheus"
    if isinstance(error, PrometheusApiClientException):
        code = _status_code(error)
        if code == 401:
            return (
                f"{at} refused hawatch's credentials (HTTP 401); check --prometheus-user and "
                "HAWATCH_PROMETHEUS_PASSWORD, or HAWATCH_PROMETHEUS_TOKEN"
            )
        if code == 403:
            return (
                f"{at} refused access (HTTP 403); check that the user or the token may "
                "read the query API"
            )
        if code in (404, 405):
            return (
                f"{at} has no query API (HTTP {code}); check that --prometheus is "
                "Prometheus's base URL, e.g. http://host:9090"
            )
        if code is not None and code >= 500:
            return f"{at} fails (HTTP {code}); check Prometheus's log"
        return f"{at} rejected a query (HTTP {code or '?'}); check --prometheus"
    if isinstance(error, ValueError | KeyError | TypeError):
        return (
            f"{at} did not answer like Prometheus's HTTP API; check that --prometheus is "
            "Prometheus's base URL, e.g. http://host:9090"
        )
    if isinstance(error, OSError):
        return (
            f"{at} cannot be asked ({redact(str(error), secrets)[:120]}); "
            "check --prometheus-ca-cert"
        )
    detail = redact(str(error), secrets)[:120]
    return f"{at} cannot be asked ({type(error).__name__}: {detail}); {check}"


def _api_error(error: BaseException) -> str | None:
    """The ``error`` text of Prometheus's JSON answer that an exception quotes, if any."""
    match = re.search(r"\((b'.*'|b\".*\")\)\s*$", str(error), re.DOTALL)
    if match is None:
        return None
    try:
        body = json.loads(ast.literal_eval(match.group(1)))
    except (ValueError, SyntaxError, TypeError):
        return None
    text = body.get("error") if isinstance(body, dict) else None
    if not isinstance(text, str):
        return None
    return text.removeprefix('invalid parameter "query": ')


def _extra_error(error: BaseException, secrets: Sequence[str | Secret | None]) -> str:
    """A user query's failure in a few words (its syntax error, say)."""
    from prometheus_api_client import PrometheusApiClientException

    if isinstance(error, PrometheusApiClientException):
        text = _api_error(error)
        if text:
            return f"error: {redact(text, secrets)}"[:_EXTRA_WIDTH]
        code = _status_code(error)
        return f"error: HTTP {code}" if code else "error"
    if isinstance(error, Exception):
        import requests

        if isinstance(error, requests.exceptions.Timeout):
            return "error: timed out"
    return f"error: {type(error).__name__}"


# -- the thread ------------------------------------------------------------------------------


class PrometheusSource:
    """Query Prometheus every `options.interval` seconds in a thread; post a
    `PrometheusObserved` per master (only `masters` when given) and a
    `PrometheusUnreachable` when a round fails. `post` is thread-safe."""

    def __init__(
        self,
        options: PrometheusOptions,
        post: Callable[[Event], None],
        *,
        masters: Sequence[str] = (),
    ) -> None:
        self.options = options
        self.post = post
        self.masters = tuple(masters)
        url, user, password = split_credentials(options.url)
        self.url = url
        """Prometheus's base URL, without credentials (what the sentences name)."""
        self._username = options.username or user
        self._password: Secret | None = options.password or (Secret(password) if password else None)
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: dict[str, None] = {}

    @property
    def _secrets(self) -> tuple[Secret | None, ...]:
        return (self._password, self.options.token)

    def start(self) -> None:
        """Start the thread."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="hawatch prometheus", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread (within its timeout) and wait for it.

        A query in flight is not interrupted: the wait ends after the query timeout
        plus a second whatever Prometheus does, and the thread, a daemon, posts nothing
        more once stopped.
        """
        self._stopping.set()
        thread = self._thread
        if thread is not None:
            thread.join(self.options.timeout + 1.0)

    def _send(self, event: Event) -> None:
        if not self._stopping.is_set():
            self.post(event)

    def _run(self) -> None:
        client: PrometheusConnect | None = None
        try:
            while not self._stopping.is_set():
                started = time.monotonic()
                try:
                    if client is None:
                        client = self._client()
                    self._round(client)
                except Exception as error:  # never a traceback out of the thread
                    log.debug("a round of Prometheus queries failed", exc_info=True)
                    self._fail(error)
                elapsed = time.monotonic() - started
                self._stopping.wait(max(0.05, self.options.interval - elapsed))
        finally:
            if client is not None:
                try:
                    client.close()
                except Exception:
                    log.debug("closing the Prometheus client failed", exc_info=True)

    def _fail(self, error: BaseException) -> None:
        """Post the sentence for a failed round."""
        try:
            reason = reason_for(
                error, url=self.url, timeout=self.options.timeout, secrets=self._secrets
            )
        except Exception:
            log.debug("no sentence for a Prometheus error", exc_info=True)
            reason = (
                f"Prometheus at {redact(self.url, self._secrets)} cannot be asked; "
                "check --prometheus"
            )
        self._safe_send(PrometheusUnreachable(ts=time.time(), reason=reason))

    def _safe_send(self, event: Event) -> None:
        try:
            self._send(event)
        except Exception:
            log.debug("posting a Prometheus event failed", exc_info=True)

    def _client(self) -> PrometheusConnect:
        """A client with retries off and the options' credentials and TLS settings."""
        import requests
        from prometheus_api_client import PrometheusConnect
        from urllib3.util.retry import Retry

        options = self.options
        session = requests.Session()
        if options.insecure:
            import urllib3

            urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
            session.verify = False
        elif options.ca_cert is not None:
            session.verify = str(options.ca_cert)
        headers = None
        auth = None
        if options.token:
            headers = {"Authorization": f"Bearer {options.token.reveal()}"}
        elif self._username or self._password:
            secret = self._password.reveal() if self._password else ""
            auth = (self._username or "", secret)
        return PrometheusConnect(
            url=self.url,
            headers=headers,
            retry=Retry(total=0, read=False),
            auth=auth,
            session=session,
        )

    def _round(self, client: PrometheusConnect) -> None:
        """Ask every query once; post the answers, or one sentence when a query failed."""
        options = self.options
        results: dict[str, Result] = {}
        try:
            if options.ca_cert is not None and not options.insecure:
                _readable(options.ca_cert)
            for key, query in QUERIES.items():
                if self._stopping.is_set():
                    return
                results[key] = self._query(client, query)
        except Exception as error:
            log.debug("a round of Prometheus queries failed", exc_info=True)
            self._fail(error)
            return
        extra: list[tuple[str, str]] = []
        for query in options.queries:
            if self._stopping.is_set():
                return
            try:
                extra.append((query, summarize(self._query(client, query))))
            except Exception as error:
                log.debug("the PromQL %r failed", query, exc_info=True)
                extra.append((query, _extra_error(error, self._secrets)))
        try:
            events = observations(
                results, ts=time.time(), masters=self.masters, seen=tuple(self._seen), extra=extra
            )
        except Exception:
            log.debug("Prometheus's answer could not be read", exc_info=True)
            self._safe_send(
                PrometheusUnreachable(
                    ts=time.time(),
                    reason=f"Prometheus at {redact(self.url, self._secrets)} answered "
                    "something hawatch cannot read; check that redis_exporter's metrics "
                    "are the usual ones",
                )
            )
            return
        for event in events:
            if event.master:
                self._seen[event.master] = None
            self._safe_send(event)

    def _query(self, client: PrometheusConnect, query: str) -> Any:
        timeout: Any = self.options.timeout  # requests takes a float; the stub says int
        return client.custom_query(query, timeout=timeout)


def _readable(path: Path) -> None:
    """Raise `OSError` saying the CA file cannot be read, before requests says it worse."""
    with open(path, "rb") as handle:
        handle.read(1)
