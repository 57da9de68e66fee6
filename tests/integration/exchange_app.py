"""A bare Celery app for test workers that the demo app cannot play: another event exchange,
a password-protected or TLS-only lab.

The test passes everything through the environment:

- `HAWATCH_TEST_BROKER`: the broker URL (it may hold a password and ``ssl_*`` parameters);
- `HAWATCH_TEST_TRANSPORT`: ``broker_transport_options`` as JSON;
- `HAWATCH_TEST_EVENT_EXCHANGE`: the app's ``event_exchange`` (default ``celeryev``).

Only Celery's built-in tasks (``celery.accumulate``) are needed.
"""

from __future__ import annotations

import json
import os

from celery import Celery

BROKER_ENV = "HAWATCH_TEST_BROKER"
TRANSPORT_ENV = "HAWATCH_TEST_TRANSPORT"
EXCHANGE_ENV = "HAWATCH_TEST_EVENT_EXCHANGE"

app = Celery("hawatch_test_exchange", broker=os.environ.get(BROKER_ENV, "redis://127.0.0.1:1/0"))
app.conf.update(
    broker_transport_options=json.loads(os.environ.get(TRANSPORT_ENV) or "{}"),
    broker_connection_retry_on_startup=True,
    event_exchange=os.environ.get(EXCHANGE_ENV) or "celeryev",
    task_send_sent_event=True,
    worker_send_task_events=True,
    worker_hijack_root_logger=False,
    task_default_queue="celery",
)
