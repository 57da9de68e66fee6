"""What Prometheus says about the Sentinel masters, next to hawatch's live view.

(Being written: `PrometheusOptions` and the `PrometheusSource` interface are fixed;
the queries come with the Prometheus work of issue 7.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from hawatch.core.events import Event
from hawatch.settings import Secret

__all__ = ["PrometheusOptions", "PrometheusSource"]


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

    def start(self) -> None:
        """Start the thread."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the thread (within its timeout) and wait for it."""
        raise NotImplementedError
