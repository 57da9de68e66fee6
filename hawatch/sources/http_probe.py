"""HTTP probes: does the application answer its users? Polled with httpx, async.

(Being written: `HttpProbeOptions` and `run_http_probes` are fixed; the probing comes
with the HTTP probe work of issue 7.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hawatch.core.events import Event

__all__ = ["HttpProbeOptions", "run_http_probes"]


@dataclass(frozen=True)
class HttpProbeOptions:
    """One URL to probe: `method`, the `expect`ed status, `timeout` seconds per request,
    `interval` seconds between two requests."""

    url: str
    method: str = "GET"
    expect: int = 200
    timeout: float = 2.0
    interval: float = 0.5


async def run_http_probes(
    probes: Sequence[HttpProbeOptions], emit: Callable[[Event], None]
) -> None:
    """Probe every URL of `probes` until cancelled; `emit` each result (a `ProbeResult`)
    on the event loop's thread."""
    raise NotImplementedError
