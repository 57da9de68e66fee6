"""The Prometheus and HTTP probe options: credentials leave the URL, bad input is one
sentence."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import pytest

from hawatch.cli_extras import EXTRA_FLAGS, http_probe_options, prometheus_options


def extras(**given: Any) -> dict[str, Any]:
    base: dict[str, Any] = dict.fromkeys(EXTRA_FLAGS)
    base.update(promql=(), http_probes=(), http_probe_method="GET", http_probe_status=200)
    base.update(http_probe_timeout=2.0, http_probe_interval=0.5)
    base.update(given)
    return base


def test_no_prometheus_is_none_and_promql_alone_is_refused() -> None:
    assert prometheus_options(extras(), {}) is None
    with pytest.raises(click.UsageError, match="--promql needs --prometheus"):
        prometheus_options(extras(promql=("up",)), {})


def test_credentials_leave_the_url() -> None:
    options = prometheus_options(
        extras(prometheus="https://ops:s%40cret@prom.local:9090/prom/", promql=("up", " ")),
        {"HAWATCH_PROMETHEUS_TOKEN": "tok-123"},
    )
    assert options is not None
    assert options.url == "https://prom.local:9090/prom"
    assert options.username == "ops"
    assert options.password is not None and options.password.reveal() == "s@cret"
    assert options.token is not None and options.token.reveal() == "tok-123"
    assert options.queries == ("up",)
    assert "s@cret" not in repr(options) and "tok-123" not in repr(options)


def test_the_password_can_come_from_the_environment(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    options = prometheus_options(
        extras(
            prometheus="http://127.0.0.1:9090",
            prometheus_user="me",
            prometheus_ca_cert=ca,
        ),
        {"HAWATCH_PROMETHEUS_PASSWORD": "from-env", "HAWATCH_PROMETHEUS_INSECURE": "1"},
    )
    assert options is not None
    assert (options.username, options.ca_cert, options.insecure) == ("me", ca, True)
    assert options.password is not None and options.password.reveal() == "from-env"
    assert options.token is None


@pytest.mark.parametrize(
    "url", ["127.0.0.1:9090", "ftp://host/", "http://", "redis://:pw@host:6379"]
)
def test_a_url_that_is_not_http_is_refused_without_its_password(url: str) -> None:
    with pytest.raises(click.UsageError) as caught:
        prometheus_options(extras(prometheus=url), {})
    assert "is not an http:// or https:// URL" in caught.value.message
    assert "pw" not in caught.value.message
    with pytest.raises(click.UsageError, match="--http-probe"):
        http_probe_options(extras(http_probes=(url,)))


def test_one_probe_per_url_with_the_shared_settings() -> None:
    probes = http_probe_options(
        extras(
            http_probes=(
                "http://127.0.0.1:8801/health",
                "http://127.0.0.1:8801/health",
                "https://a/",
            ),
            http_probe_method="head",
            http_probe_status=204,
            http_probe_timeout=1.5,
            http_probe_interval=0.25,
        )
    )
    assert [p.url for p in probes] == ["http://127.0.0.1:8801/health", "https://a/"]
    assert {(p.method, p.expect, p.timeout, p.interval) for p in probes} == {
        ("HEAD", 204, 1.5, 0.25)
    }
    with pytest.raises(click.UsageError, match="not an HTTP method"):
        http_probe_options(extras(http_probes=("http://a/",), http_probe_method="GE T"))
