"""The lab's Celery application: a broker and a result backend reached through Sentinel.

It is configured the way a production Django + Celery project on Redis
Sentinel usually is (kombu's `sentinel://` transport, events on, the result
backend on the same cluster), so what hawatch shows in the demo is what it
would show on such a project. The worker runs it with
`celery -A hawatch.lab.demo_app worker`; the lab passes the cluster through the
environment:

- `HAWATCH_LAB_SENTINELS`: comma-separated `host:port` of the sentinels;
- `HAWATCH_LAB_MASTER`: the master name (default `mymaster`);
- `HAWATCH_LAB_PROFILE`: `default` (Celery's own settings, the slow recovery
  people meet in production) or `tuned` (short socket timeouts and retries).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

from celery import Celery

SENTINELS_ENV = "HAWATCH_LAB_SENTINELS"
MASTER_ENV = "HAWATCH_LAB_MASTER"
PROFILE_ENV = "HAWATCH_LAB_PROFILE"

PROFILES = ("default", "tuned")

#: Transport options that shorten recovery (see the Celery failover reference).
TUNED_TRANSPORT_OPTIONS: Mapping[str, Any] = {
    "socket_timeout": 2.0,
    "socket_connect_timeout": 1.0,
    "socket_keepalive": True,
    "retry_on_timeout": True,
    "health_check_interval": 2,
}


def sentinel_url(sentinels: Sequence[str]) -> str:
    """kombu's URL for a list of `host:port` sentinels."""
    return ";".join(f"sentinel://{address}" for address in sentinels)


def make_app(
    sentinels: Sequence[str],
    master_name: str = "mymaster",
    *,
    profile: str = "default",
    result_backend: bool = True,
) -> Celery:
    """A Celery app whose broker and result backend are the Sentinel cluster `sentinels`.

    A producer that never reads results (the load generator) passes
    `result_backend=False`: Celery's Redis backend otherwise subscribes to a
    result channel for every task sent, and those subscriptions pile up.
    Workers still store every result, since the choice travels in the message.
    """
    if profile not in PROFILES:
        raise ValueError(f"unknown lab profile {profile!r}; use one of {', '.join(PROFILES)}.")
    url = sentinel_url(sentinels)
    transport: dict[str, Any] = {"master_name": master_name}
    if profile == "tuned":
        transport.update(TUNED_TRANSPORT_OPTIONS)
        transport["sentinel_kwargs"] = {"socket_timeout": 1.0, "socket_connect_timeout": 1.0}
    app = Celery("hawatch_demo", broker=url, backend=url if result_backend else None)
    app.conf.update(
        broker_transport_options=transport,
        result_backend_transport_options=dict(transport),
        broker_connection_retry_on_startup=True,
        task_send_sent_event=True,
        worker_send_task_events=True,
        task_track_started=True,
        result_expires=600,
        worker_hijack_root_logger=False,
        task_default_queue="celery",
    )
    if profile == "tuned":
        app.conf.update(
            broker_connection_max_retries=None,
            worker_prefetch_multiplier=1,
            task_publish_retry_policy={
                "max_retries": 30,
                "interval_start": 0,
                "interval_step": 0.5,
                "interval_max": 1,
            },
            redis_socket_timeout=3.0,
        )
    _register_tasks(app)
    return app


def _register_tasks(app: Celery) -> None:
    @app.task(name="demo.add")
    def add(x: int, y: int) -> int:
        """A quick task: adds two numbers."""
        return x + y

    @app.task(name="demo.checkout")
    def checkout(order_id: int) -> dict[str, Any]:
        """A realistic short task: a few tens of milliseconds of work."""
        time.sleep(random.uniform(0.02, 0.08))
        return {"order": order_id, "status": "paid"}

    @app.task(name="demo.report")
    def report(seconds: float = 5.0) -> str:
        """A slow task: holds a worker process for `seconds`."""
        time.sleep(seconds)
        return f"report took {seconds:.1f} s"


def app_from_env(env: Mapping[str, str] | None = None) -> Celery:
    """The app configured from the lab's environment variables."""
    env = os.environ if env is None else env
    sentinels = [s for s in env.get(SENTINELS_ENV, "127.0.0.1:26379").split(",") if s.strip()]
    return make_app(
        sentinels,
        env.get(MASTER_ENV, "mymaster"),
        profile=env.get(PROFILE_ENV, "default"),
    )


app = app_from_env()
