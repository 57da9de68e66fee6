"""Where the Celery side connects: --broker, --app or the Sentinel settings, with TLS,
credentials, queues and the event exchange, and one-sentence refusals without passwords."""

from __future__ import annotations

import ssl
from pathlib import Path
from urllib.parse import quote

import pytest
from celery import Celery
from kombu import Connection, Queue

from hawatch.settings import Secret, SentinelAddress, Settings
from hawatch.sources.celery_events import (
    DEFAULT_TRANSPORT_OPTIONS,
    broker_from_app,
    broker_from_settings,
    broker_spec,
    prepare_transport_options,
)

PW = "s3cret/pw"
QPW = quote(PW, safe="")
"""The password as it must appear in a URL (percent-encoded)."""
S1, S2 = SentinelAddress("127.0.0.1", 26379), SentinelAddress("127.0.0.1", 26380)

# Apps for --app, found the way `celery -A module:attribute` finds them.
custom_app = Celery("custom", broker="sentinel://127.0.0.1:26379;sentinel://127.0.0.1:26380")
custom_app.conf.update(
    task_default_queue="orders",
    task_queues=(Queue("orders"), Queue("emails")),
    event_exchange="myev",
    broker_transport_options={"master_name": "other", "visibility_timeout": 60},
    broker_use_ssl={"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/etc/ca.pem"},
)
nameless_app = Celery("nameless", broker="sentinel://127.0.0.1:26379")
plain_app = Celery("plain", broker=f"redis://:{QPW}@10.0.0.5:6390/2")
not_an_app = object()


def settings(**overrides: object) -> Settings:
    values: dict[str, object] = {"sentinels": (S1, S2), "password": Secret(PW)}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def kombu_ssl(url: str) -> object:
    """What kombu itself makes of a URL's TLS parameters (the master connection's ssl)."""
    return Connection(url).ssl


def test_from_the_sentinel_settings() -> None:
    spec = broker_spec(settings(), "mymaster", queues=["emails", "celery", " "])
    assert spec.sentinel
    assert spec.url == "sentinel://:s3cret%2Fpw@127.0.0.1:26379;sentinel://127.0.0.1:26380"
    assert spec.transport_options["master_name"] == "mymaster"
    assert spec.transport_options["sentinel_kwargs"]["password"] == PW
    assert spec.queues == ("celery", "emails")
    assert spec.event_exchange == "celeryev"
    assert spec.label == "sentinel://127.0.0.1:26379, 127.0.0.1:26380 (master mymaster)"
    assert not kombu_ssl(spec.url)
    with pytest.raises(ValueError, match="master"):
        broker_spec(settings(), "")


def test_tls_reaches_the_sentinels_and_the_master(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    url, options = broker_from_settings(settings(tls=True, tls_ca_cert=ca), "mymaster")
    kwargs = options["sentinel_kwargs"]
    assert kwargs["ssl"] is True and kwargs["ssl_ca_certs"] == str(ca)
    assert kwargs["ssl_cert_reqs"] == "required"
    # The master: kombu reads the first URL's ssl_* parameters into the connection's ssl
    # options, and then uses its SentinelManagedSSLConnection.
    assert kombu_ssl(url) == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": str(ca)}
    assert url.count("?") == 1 and url.split(";")[1] == "sentinel://127.0.0.1:26380"

    url, options = broker_from_settings(settings(tls=True, tls_insecure=True), "mymaster")
    assert options["sentinel_kwargs"]["ssl_check_hostname"] is False
    assert kombu_ssl(url) == {"ssl_cert_reqs": ssl.CERT_NONE, "ssl_check_hostname": False}
    label = broker_spec(settings(tls=True, tls_ca_cert=ca), "mymaster").label
    assert str(ca) not in label and PW not in label


def test_a_broker_url() -> None:
    spec = broker_spec(settings(), "mymaster", broker=f"redis://:{QPW}@10.0.0.5:6390/3")
    assert not spec.sentinel and spec.url == f"redis://:{QPW}@10.0.0.5:6390/3"
    assert spec.label == "redis://10.0.0.5:6390/3"
    assert spec.transport_options["socket_timeout"] == DEFAULT_TRANSPORT_OPTIONS["socket_timeout"]
    assert "master_name" not in spec.transport_options
    assert spec.queues == ("celery",)

    # rediss:// without parameters verifies the certificate (kombu alone would not).
    spec = broker_spec(settings(), "", broker="rediss://10.0.0.5:6380/0")
    assert kombu_ssl(spec.url) == {"ssl_cert_reqs": ssl.CERT_REQUIRED}
    spec = broker_spec(
        settings(tls=True, tls_ca_cert=Path("/ca.crt")), "", broker="rediss://10.0.0.5/0"
    )
    assert kombu_ssl(spec.url) == {"ssl_cert_reqs": ssl.CERT_REQUIRED, "ssl_ca_certs": "/ca.crt"}
    own = "rediss://10.0.0.5/0?ssl_cert_reqs=none"
    assert broker_spec(settings(), "", broker=own).url == own  # the user's choice stands


def test_a_sentinel_broker_url() -> None:
    url = "sentinel://127.0.0.1:26379;sentinel://10.9.9.9:26379"
    spec = broker_spec(settings(), "mymaster", broker=url)
    assert spec.sentinel and spec.transport_options["master_name"] == "mymaster"
    # It names a sentinel of the settings: the same deployment, the same sentinel login.
    assert spec.transport_options["sentinel_kwargs"]["password"] == PW
    assert spec.label == "sentinel://127.0.0.1:26379, 10.9.9.9:26379 (master mymaster)"
    other = broker_spec(settings(), "mymaster", broker="sentinel://10.9.9.9:26379")
    assert "sentinel_kwargs" not in other.transport_options
    with pytest.raises(ValueError, match="master's name"):
        broker_spec(settings(), "", broker=url)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        (f"amqp://guest:{QPW}@rabbit:5672//", "amqp://, which hawatch does not read"),
        ("sqs://", "sqs://"),
        ("sentinel+ssl://127.0.0.1:26379", "sentinel+ssl://"),
        (f"user:{QPW}@127.0.0.1:6379", "not a URL"),
        (f"redis://:{QPW}@127.0.0.1:port", "invalid host or port"),
        (f"redis://:{QPW}@127.0.0.1:6379/orders", "must be a number"),
        ("redis://127.0.0.1:6379;sentinel://127.0.0.1:26379", "mixes"),
        ("  ", "empty"),
    ],
)
def test_bad_broker_urls_are_one_sentence_without_the_password(url: str, words: str) -> None:
    with pytest.raises(ValueError) as caught:
        broker_spec(settings(), "mymaster", broker=url)
    message = str(caught.value)
    assert words in message
    assert PW not in message and QPW not in message and "\n" not in message
    if "which hawatch does not read" in message or "sentinel+ssl" in message:
        assert "redis://, rediss:// or sentinel://" in message


def test_an_app() -> None:
    module = f"{__name__}:custom_app"
    spec = broker_spec(settings(), "mymaster", app=module, queues=["emails", "audit"])
    assert spec.label == f"app {module}" and spec.sentinel
    assert spec.queues == ("orders", "emails", "audit")
    assert spec.event_exchange == "myev"
    assert spec.transport_options["master_name"] == "other"  # the app's own
    assert spec.transport_options["visibility_timeout"] == 60
    assert kombu_ssl(spec.url) == {
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
        "ssl_ca_certs": "/etc/ca.pem",
    }
    assert broker_from_app(module)[0] == spec.url

    spec = broker_spec(settings(), "mymaster", app=f"{__name__}:nameless_app")
    assert spec.transport_options["master_name"] == "mymaster"
    assert spec.queues == ("celery",) and spec.event_exchange == "celeryev"

    spec = broker_spec(settings(), "", app=f"{__name__}:plain_app")
    assert not spec.sentinel and spec.url.endswith("@10.0.0.5:6390/2")
    assert PW not in spec.label and QPW not in spec.label

    url, options = broker_from_app("hawatch.lab.demo_app")
    assert url.startswith("sentinel://") and options["master_name"] == "mymaster"


def test_apps_that_cannot_be_used() -> None:
    with pytest.raises(ValueError, match="cannot load a Celery app"):
        broker_spec(settings(), "m", app="no_such_module_here.celery")
    with pytest.raises(ValueError, match="is not a Celery app"):
        broker_spec(settings(), "m", app=f"{__name__}:not_an_app")


def test_transport_options_caps() -> None:
    options = prepare_transport_options(
        "sentinel://127.0.0.1:26379",
        {"socket_timeout": 30, "sentinel_kwargs": {"socket_timeout": 10, "password": PW}},
        timeout_cap=1.0,
        sentinel_timeout_cap=0.3,
    )
    assert options["socket_timeout"] == 1.0 and options["socket_connect_timeout"] == 1.0
    assert options["retry_on_timeout"] is False
    assert options["sentinel_kwargs"]["socket_timeout"] == 0.3
    assert options["sentinel_kwargs"]["password"] == PW
    assert options["sentinel_kwargs"]["retry"].get_retries() == 0
    # Without caps the caller's options win over hawatch's defaults (as with celery -A).
    options = prepare_transport_options("redis://h:1/0", {"socket_timeout": 30})
    assert options["socket_timeout"] == 30 and "sentinel_kwargs" not in options
