"""The sentences of `Monitor.problems`, from scripted events and scripted times: what the
status line says is wrong with hawatch's own view, and what to do about it."""

from __future__ import annotations

import ssl
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from redis import exceptions as rex

from hawatch.core.events import (
    BrokerConnected,
    BrokerDisconnected,
    Event,
    MasterObserved,
    SentinelReachable,
    SentinelUnreachable,
    TaskEvent,
    WorkerEvent,
)
from hawatch.monitor import CeleryEventsCheck, CeleryOptions, Monitor, unknown_masters
from hawatch.settings import SentinelAddress, Settings
from hawatch.sources.celery_events import broker_from_app
from hawatch.sources.sentinel import describe_error, reason_kind, unreachable_advice

A, B, C = "127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381"
SEEDS = tuple(SentinelAddress("127.0.0.1", port) for port in (26379, 26380, 26381))
HOST = "demo@host"

# --------------------------------------------------------------------------- sentinels


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (ConnectionRefusedError(111, "Connection refused"), "refused"),
        (rex.TimeoutError("Timeout reading from socket"), "timeout"),
        (rex.AuthenticationError("invalid username-password pair"), "auth-failed"),
        (rex.AuthenticationError("Authentication required."), "auth-required"),
        (rex.AuthenticationWrongNumberOfArgsError("wrong number of arguments"), "no-users"),
        (rex.NoPermissionError("this user has no permissions to run 'sentinel'"), "noperm"),
        (rex.ResponseError("unknown command 'SENTINEL'"), "not-sentinel"),
        (rex.InvalidResponse("Protocol Error: H"), "not-redis"),
        (ssl.SSLError("record layer failure"), "tls"),
        (OSError("Name or service not known"), "host"),
        (ConnectionError("Connection closed by server."), "other"),
    ],
)
def test_every_reason_the_watcher_gives_has_a_kind(error: Exception, kind: str) -> None:
    assert reason_kind(describe_error(error, timeout=1.0)) == kind


def test_nothing_listening_says_where_what_to_check_and_that_hawatch_retries() -> None:
    advice = unreachable_advice({A: "connection refused"}, answering=0)
    assert advice == [
        f"no sentinel answers: nothing listens at {A}; check --sentinel or --url "
        "and that the sentinels run; retrying"
    ]


def test_a_plain_redis_server_is_named_as_not_a_sentinel() -> None:
    reason = "not a sentinel: it does not know SENTINEL MASTERS"
    assert unreachable_advice({A: reason}, answering=0) == [
        f"not a sentinel at {A} (a plain Redis server?): give the sentinels' addresses "
        "(port 26379 by default) with --sentinel or --url"
    ]


def test_password_failures_say_what_to_give_for_every_sentinel_at_once() -> None:
    failed = dict.fromkeys((A, B, C), "authentication failed: check the username and password")
    assert unreachable_advice(failed, answering=0) == [
        "wrong password or user at all 3 sentinels (authentication failed): give the right "
        "ones with --url redis://:PASSWORD@HOST:PORT or HAWATCH_PASSWORD"
    ]
    required = {A: "authentication required: this sentinel needs a password"}
    assert unreachable_advice(required, answering=2) == [
        f"a password is required at {A}: give it with --url redis://:PASSWORD@HOST:PORT "
        "or HAWATCH_PASSWORD"
    ]


def test_an_outage_is_said_only_while_no_sentinel_answers() -> None:
    down = {A: "connection refused", B: "timed out after 1.0 s"}
    assert unreachable_advice(down, answering=1) == []
    assert unreachable_advice(down, answering=0) == [
        f"no sentinel answers: nothing listens at {A}; check --sentinel or --url "
        "and that the sentinels run; retrying",
        f"no sentinel answers: {B} did not answer in time; check the network, a firewall, "
        "or a hung sentinel; retrying",
    ]
    closed = {A: "connection closed by the sentinel"}
    assert unreachable_advice(closed, answering=0) == [
        f"no sentinel answers (connection closed by the sentinel at {A}); check --sentinel "
        "or --url and the sentinels' logs; retrying"
    ]


def test_wrong_settings_come_before_the_outage_and_many_addresses_are_cut() -> None:
    reasons = {
        A: "connection refused",
        B: "not a sentinel: it does not know SENTINEL MASTERS",
        C: "connection refused",
        "127.0.0.1:26382": "connection refused",
        "127.0.0.1:26383": "connection refused",
    }
    first, second = unreachable_advice(reasons, answering=0)
    assert first.startswith(f"not a sentinel at {B} ")
    assert second.startswith(f"no sentinel answers: nothing listens at {A}, {C} and 2 more;")


def test_the_monitor_says_so_once_every_seed_failed_and_stops_once_one_answers() -> None:
    monitor = Monitor(Settings(sentinels=SEEDS[:1]))
    assert monitor.problems(100.0) == []
    monitor.feed(SentinelUnreachable(ts=100.0, sentinel=A, reason="connection refused"))
    assert monitor.problems(101.0) == [
        f"no sentinel answers: nothing listens at {A}; check --sentinel or --url "
        "and that the sentinels run; retrying"
    ]
    monitor.feed(SentinelReachable(ts=105.0, sentinel=A))
    monitor.feed(observed(105.0, A, "mymaster"))
    assert monitor.problems(106.0) == []


# --------------------------------------------------------------------------- master names


def observed(ts: float, sentinel: str, master: str) -> MasterObserved:
    return MasterObserved(
        ts=ts, sentinel=sentinel, master=master, ip="127.0.0.1", port=6379, epoch=0
    )


def test_an_unknown_master_name_is_said_with_the_names_that_exist() -> None:
    assert unknown_masters(["mymaster"], ["mymaster"], ["mymaster"]) is None
    assert unknown_masters(["nosuch"], [], ["mymaster"]) == (
        "no answering sentinel monitors a master named 'nosuch' (they monitor: mymaster); "
        "check --master or HAWATCH_MASTER"
    )
    assert unknown_masters(["a", "mymaster", "b"], ["mymaster"], []) == (
        "no answering sentinel monitors a master named 'a' or 'b' (they monitor: none); "
        "check --master or HAWATCH_MASTER"
    )
    many = [f"m{i}" for i in range(7)]
    assert "(they monitor: m0, m1, m2, m3 and 3 more)" in str(unknown_masters(["x"], [], many))
    assert unknown_masters(["nosuch"], []) == (
        "no answering sentinel monitors a master named 'nosuch'; check --master or HAWATCH_MASTER"
    )


def test_the_monitor_judges_master_names_once_every_seed_has_answered_or_failed() -> None:
    settings = Settings(sentinels=SEEDS[:2], masters=("mymaster", "nosuch"))
    monitor = Monitor(settings)
    monitor.feed(SentinelReachable(ts=1.0, sentinel=A))
    monitor.feed(observed(1.0, A, "mymaster"))
    assert monitor.problems(2.0) == []  # the second seed may monitor it
    monitor.feed(SentinelUnreachable(ts=2.0, sentinel=B, reason="connection refused"))
    assert monitor.problems(3.0) == [
        "no answering sentinel monitors a master named 'nosuch'; check --master or HAWATCH_MASTER"
    ]


def test_without_master_names_or_an_answer_nothing_is_said_about_names() -> None:
    monitor = Monitor(Settings(sentinels=SEEDS[:1]))
    monitor.feed(SentinelReachable(ts=1.0, sentinel=A))
    assert monitor.problems(2.0) == []
    named = Monitor(Settings(sentinels=SEEDS[:1], masters=("nosuch",)))
    named.feed(SentinelUnreachable(ts=1.0, sentinel=A, reason="timed out after 1.0 s"))
    assert not [p for p in named.problems(2.0) if "master named" in p]


# --------------------------------------------------------------------------- Celery events


def check(*events: Event, window: float = 20.0, grace: float = 5.0) -> CeleryEventsCheck:
    events_check = CeleryEventsCheck(window=window, grace=grace, app="proj")
    for event in events:
        events_check.apply(event)
    return events_check


def connected(ts: float, source: str = "celery-events") -> BrokerConnected:
    return BrokerConnected(ts=ts, source=source, address="127.0.0.1:6379")


def heartbeat(ts: float, processed: int | None, host: str = HOST) -> WorkerEvent:
    return WorkerEvent(ts=ts, kind="heartbeat", hostname=host, processed=processed)


NO_EVENTS = (
    "no Celery event in 20s: no worker uses this broker, or the workers send no events; "
    "restart them with -E (--task-events) or worker_send_task_events = True"
)


def test_no_event_within_the_window_after_connecting_is_said_and_ends_with_one() -> None:
    events_check = check(connected(100.0))
    assert events_check.problem(119.9) is None
    assert events_check.problem(120.0) == NO_EVENTS
    events_check.apply(heartbeat(125.0, None))
    assert events_check.problem(126.0) is None


def test_the_window_counts_only_while_the_receiver_is_connected() -> None:
    events_check = check()
    assert events_check.problem(1000.0) is None  # never connected: the broker is the problem
    for source in ("queues", "canary"):
        events_check.apply(connected(100.0, source))
    assert events_check.problem(1000.0) is None
    events_check.apply(connected(100.0))
    events_check.apply(BrokerDisconnected(ts=110.0, source="celery-events", reason="refused"))
    assert events_check.problem(130.0) is None
    events_check.apply(connected(131.0))
    assert events_check.problem(150.0) is None
    assert events_check.problem(151.0) == NO_EVENTS


def test_task_sent_events_come_from_producers_and_prove_nothing() -> None:
    sent = TaskEvent(ts=101.0, state="sent", uuid="t1", name="demo.add")
    assert check(connected(100.0), sent).problem(130.0) == NO_EVENTS
    received = TaskEvent(ts=101.0, state="received", uuid="t1", worker=HOST)
    assert check(connected(100.0), received).problem(130.0) is None


def test_a_worker_that_counts_tasks_without_task_events_is_named() -> None:
    events_check = check(connected(100.0), heartbeat(100.1, None), heartbeat(102.0, 0))
    events_check.apply(heartbeat(104.0, 0))
    assert events_check.problem(200.0) is None  # idle: nothing to tell
    events_check.apply(heartbeat(106.0, 3))
    assert events_check.problem(110.9) is None  # within the grace
    assert events_check.problem(111.0) == (
        f"worker {HOST} runs tasks but sends no task events: run celery -A proj control "
        "enable_events, or restart it with -E or worker_send_task_events = True"
    )
    events_check.apply(TaskEvent(ts=120.0, state="started", uuid="t9", worker=HOST))
    assert events_check.problem(121.0) is None
    events_check.apply(heartbeat(122.0, 9))
    assert events_check.problem(200.0) is None


def test_several_silent_workers_are_named_together_without_an_app() -> None:
    events_check = CeleryEventsCheck(grace=1.0)
    for host in ("a@h", "b@h", "c@h"):
        events_check.apply(heartbeat(1.0, 0, host))
        events_check.apply(heartbeat(3.0, 2, host))
    assert events_check.problem(10.0) == (
        "workers a@h, b@h and 1 more run tasks but send no task events: run celery -A APP "
        "control enable_events, or restart them with -E or worker_send_task_events = True"
    )


def test_counts_across_a_blind_window_or_a_worker_restart_prove_nothing() -> None:
    # Task events sent while the receiver was disconnected are lost, not missing.
    events_check = check(connected(100.0), heartbeat(101.0, 0))
    events_check.apply(BrokerDisconnected(ts=102.0, source="celery-events", reason="refused"))
    events_check.apply(connected(110.0))
    events_check.apply(heartbeat(111.0, 5))
    assert events_check.problem(200.0) is None
    # A worker that restarted counts from 0 again.
    events_check.apply(heartbeat(112.0, 0))
    assert events_check.problem(200.0) is None
    events_check.apply(heartbeat(114.0, 1))
    assert events_check.problem(200.0) is not None


def test_the_monitor_shows_the_events_sentence_only_with_the_celery_side_on() -> None:
    settings = Settings(sentinels=SEEDS[:1])
    on = Monitor(settings, celery=CeleryOptions(), events_window=5.0)
    off = Monitor(settings)
    for monitor in (on, off):
        monitor.feed(SentinelReachable(ts=1.0, sentinel=A))
        monitor.feed(connected(1.0))
    assert off.problems(100.0) == []
    (sentence,) = on.problems(100.0)
    assert sentence.startswith("no Celery event in 5s: ")
    on.celery_problem = "the Celery side is off: cannot load a Celery app from 'x': ..."
    assert on.problems(100.0) == [on.celery_problem]


def test_problems_come_most_serious_first() -> None:
    monitor = Monitor(Settings(sentinels=SEEDS[:1]), celery=CeleryOptions(), events_window=5.0)
    monitor.feed(SentinelUnreachable(ts=1.0, sentinel=A, reason="connection refused"))
    monitor.feed(connected(1.0))
    monitor.journal_problem = "the journal stopped: disk full"
    problems = monitor.problems(100.0)
    assert [p.split(":")[0] for p in problems] == [
        "no sentinel answers",
        "no Celery event in 5s",
        "the journal stopped",
    ]
    monitor.celery_problem = "the Celery side is off: a reason"
    assert monitor.problems(100.0)[0] == monitor.celery_problem


# --------------------------------------------------------------------------- Celery app


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A project directory to run hawatch from (Celery imports ``--app`` from there)."""
    before = set(sys.modules)
    monkeypatch.chdir(tmp_path)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("hawatch_test_"):
            del sys.modules[name]


def load_problem(app: str) -> str:
    with pytest.raises(ValueError) as exc_info:
        broker_from_app(app)
    return str(exc_info.value)


def test_an_app_module_that_is_not_found_says_where_python_looks(project: Path) -> None:
    assert load_problem("hawatch_test_nosuch") == (
        "cannot load a Celery app from 'hawatch_test_nosuch': no module named "
        "'hawatch_test_nosuch'; check --app, and run hawatch from the project's directory "
        "or set PYTHONPATH."
    )
    assert load_problem("hawatch_test_nosuch.celery:app").startswith(
        "cannot load a Celery app from 'hawatch_test_nosuch.celery:app': no module named "
        "'hawatch_test_nosuch'; check --app"
    )


def test_an_app_module_that_fails_to_import_says_why(project: Path) -> None:
    (project / "hawatch_test_needs.py").write_text("import hawatch_test_missing_dependency\n")
    (project / "hawatch_test_raises.py").write_text("raise RuntimeError('no settings')\n")
    (project / "hawatch_test_empty.py").write_text("x = 1\n")
    assert load_problem("hawatch_test_needs") == (
        "cannot load a Celery app from 'hawatch_test_needs': importing it needs the module "
        "'hawatch_test_missing_dependency', which is not installed here; run hawatch in the "
        "project's environment (virtualenv)."
    )
    assert load_problem("hawatch_test_raises") == (
        "cannot load a Celery app from 'hawatch_test_raises': importing it raised "
        "RuntimeError: no settings; fix the module, or check --app."
    )
    assert load_problem("hawatch_test_empty:app") == (
        "cannot load a Celery app from 'hawatch_test_empty:app': module 'hawatch_test_empty' "
        "has no attribute 'app'; check --app."
    )
    assert load_problem("hawatch_test_empty").startswith(
        "cannot load a Celery app from 'hawatch_test_empty': found no Celery app in "
        "'hawatch_test_empty'; give it as module:app"
    )
