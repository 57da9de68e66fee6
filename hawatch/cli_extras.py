"""The command line's options for what hawatch shows beside its live view: Prometheus's
view of the masters (``--prometheus``) and HTTP probes of the application
(``--http-probe``). Shared by `watch`, `demo`, `events` and `serve`.

Secrets stay off the command line where they can: a Prometheus password may be in the
URL but is better in ``HAWATCH_PROMETHEUS_PASSWORD``, and a bearer token is only read
from ``HAWATCH_PROMETHEUS_TOKEN``. Like the Redis side's, skipping the check of
Prometheus's certificate is not a flag but ``HAWATCH_PROMETHEUS_INSECURE=1``: a
deliberate choice written down, not a word typed in a hurry.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

import click

from hawatch.settings import Secret, redact_url

if TYPE_CHECKING:  # the sources import their clients: only when they are used
    from hawatch.sources.http_probe import HttpProbeOptions
    from hawatch.sources.prometheus import PrometheusOptions

__all__ = [
    "EXTRA_FLAGS",
    "extra_options",
    "http_probe_options",
    "option_group",
    "prometheus_options",
]

F = TypeVar("F", bound=Callable[..., Any])

EXTRA_FLAGS = (
    "prometheus",
    "prometheus_user",
    "prometheus_ca_cert",
    "promql",
    "http_probes",
    "http_probe_method",
    "http_probe_status",
    "http_probe_timeout",
    "http_probe_interval",
)
"""The arguments that `extra_options` adds as flags."""


def option_group(
    key: str, names: Sequence[str], options: Sequence[Callable[[Any], Any]], func: F
) -> F:
    """Add `options` (click options, in the order ``--help`` lists them) to the command
    `func`, which receives the arguments `names` together as one mapping, keyword `key`."""

    @functools.wraps(func)
    def grouped(*args: Any, **kwargs: Any) -> Any:
        group = {name: kwargs.pop(name) for name in names}
        return func(*args, **{key: group}, **kwargs)

    decorated: Any = grouped
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


def extra_options(func: F) -> F:
    """Add the Prometheus and HTTP probe options; the command receives them together as
    one `extras` mapping, for `prometheus_options` and `http_probe_options`."""
    options = [
        click.option(
            "--prometheus",
            metavar="URL",
            envvar="HAWATCH_PROMETHEUS",
            help="Show what this Prometheus says about the masters beside the live view "
            "(http:// or https://). Password: in the URL or $HAWATCH_PROMETHEUS_PASSWORD; "
            "a bearer token: $HAWATCH_PROMETHEUS_TOKEN. Default: $HAWATCH_PROMETHEUS.",
        ),
        click.option("--prometheus-user", metavar="NAME", help="Prometheus basic-auth user."),
        click.option(
            "--prometheus-ca-cert",
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            metavar="FILE",
            help="PEM file of the CA that signed Prometheus's certificate.",
        ),
        click.option(
            "--promql",
            multiple=True,
            metavar="QUERY",
            help="Also show this PromQL query's value in the Prometheus panel (repeatable).",
        ),
        click.option(
            "--http-probe",
            "http_probes",
            multiple=True,
            metavar="URL",
            help="Poll this URL of the application (repeatable): the first success after a "
            "switch is the users' resume, shown beside Celery's.",
        ),
        click.option(
            "--http-probe-method",
            default="GET",
            show_default=True,
            metavar="METHOD",
            help="HTTP method of the probes.",
        ),
        click.option(
            "--http-probe-status",
            type=click.IntRange(100, 599),
            default=200,
            show_default=True,
            metavar="CODE",
            help="The status a healthy answer has.",
        ),
        click.option(
            "--http-probe-timeout",
            type=click.FloatRange(0.05, 60),
            default=2.0,
            show_default=True,
            metavar="SECONDS",
            help="How long one probe may take before it counts as failed.",
        ),
        click.option(
            "--http-probe-interval",
            type=click.FloatRange(0.05, 3600),
            default=0.5,
            show_default=True,
            metavar="SECONDS",
            help="Seconds between two probes of one URL.",
        ),
    ]
    return option_group("extras", EXTRA_FLAGS, options, func)


def _http_url(url: str, what: str) -> str:
    """`url` if it is an http(s) URL with a host; else a usage error naming `what`."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise click.UsageError(
            f"{what}: {redact_url(url)!r} is not an http:// or https:// URL with a host"
        )
    return url.strip()


def prometheus_options(
    extras: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> PrometheusOptions | None:
    """The Prometheus source's options from the flags and the environment (None: off).

    Credentials in the URL move out of it, so the URL can be shown and logged.
    """
    env = os.environ if environ is None else environ
    url = extras.get("prometheus")
    if not url:
        if extras.get("promql"):
            raise click.UsageError("--promql needs --prometheus URL")
        return None
    from hawatch.sources.prometheus import PrometheusOptions

    url = _http_url(url, "--prometheus")
    parts = urlsplit(url)
    user = extras.get("prometheus_user") or (unquote(parts.username) if parts.username else None)
    password = unquote(parts.password) if parts.password else env.get("HAWATCH_PROMETHEUS_PASSWORD")
    token = env.get("HAWATCH_PROMETHEUS_TOKEN") or None
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    return PrometheusOptions(
        url=bare,
        username=user or None,
        password=Secret(password) if password else None,
        token=Secret(token) if token else None,
        ca_cert=extras.get("prometheus_ca_cert"),
        insecure=env.get("HAWATCH_PROMETHEUS_INSECURE", "").strip().lower()
        in ("1", "true", "yes", "on"),
        queries=tuple(query for query in extras.get("promql") or () if query.strip()),
    )


def http_probe_options(extras: Mapping[str, Any]) -> tuple[HttpProbeOptions, ...]:
    """One `HttpProbeOptions` per ``--http-probe`` URL, with the shared method, status,
    timeout and interval."""
    urls = list(dict.fromkeys(extras.get("http_probes") or ()))
    if not urls:
        return ()
    from hawatch.sources.http_probe import HttpProbeOptions

    method = str(extras.get("http_probe_method") or "GET").strip().upper()
    if not method.isalpha():
        raise click.UsageError(f"--http-probe-method: {method!r} is not an HTTP method")
    return tuple(
        HttpProbeOptions(
            url=_http_url(url, "--http-probe"),
            method=method,
            expect=int(extras.get("http_probe_status") or 200),
            timeout=float(extras.get("http_probe_timeout") or 2.0),
            interval=float(extras.get("http_probe_interval") or 0.5),
        )
        for url in urls
    )
