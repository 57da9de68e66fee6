"""The Celery event source against a real cluster and a real worker, through failovers."""

from __future__ import annotations

import json
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from hawatch.core.events import (
    BrokerConnected,
    BrokerDisconnected,
    Event,
    TaskEvent,
    WorkerEvent,
    to_json,
)
from hawatch.lab import LabCluster, LabConfig, ManagedProcess, start_worker
from hawatch.lab.cluster import TlsUnavailable
from hawatch.lab.demo_app import make_app
from hawatch.lab.procs import LabError
from hawatch.settings import Secret, SentinelAddress, Settings
from hawatch.sources.celery_events import (
    CeleryEventSource,
    broker_from_app,
    broker_from_settings,
    broker_spec,
    convert_event,
)

pytestmark = pytest.mark.integration


class Recorder:
    """Collects emitted events (thread-safe) and waits for conditions with a deadline."""

    def __init__(self) -> None:
        self.events: list[tuple[float, Event]] = []
        self._lock = threading.Lock()

    def __call__(self, event: Event) -> None:
        with self._lock:
            self.events.append((time.monotonic(), event))

    def snapshot(self) -> list[tuple[float, Event]]:
        with self._lock:
            return list(self.events)

    def wait_for(
        self, what: str, match: Callable[[Event], bool], *, after: float = 0.0, timeout: float = 20
    ) -> tuple[float, Event]:
        """The first event (with its monotonic arrival time) at or after `after` matching."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, event in self.snapshot():
                if at >= after and match(event):
                    return at, event
            time.sleep(0.02)
        raise AssertionError(f"no {what} within {timeout} s: {[e for _, e in self.snapshot()]}")


@pytest.fixture
def source(lab: LabCluster) -> Iterator[tuple[CeleryEventSource, Recorder]]:
    """A started source on the lab (through Sentinel), stopped after the test."""
    url, options = broker_from_settings(lab.settings(), lab.master_name)
    recorder = Recorder()
    src = CeleryEventSource(url, options, recorder)
    src.start()
    try:
        yield src, recorder
    finally:
        src.stop()
        assert not src.running


@pytest.fixture
def producer(lab: LabCluster) -> Iterator[Celery]:
    """The demo app, to send tasks from the test."""
    app = make_app([str(a) for a in lab.sentinel_addresses], lab.master_name, result_backend=False)
    try:
        yield app
    finally:
        app.close()


def send(app: Celery, x: int, timeout: float = 20.0) -> str:
    """Send demo.add, retrying while the cluster is switching; the task id."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return str(app.send_task("demo.add", args=[x, 1]).id)
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def task_state(uuid: str, state: str) -> Callable[[Event], bool]:
    return lambda e: isinstance(e, TaskEvent) and e.uuid == uuid and e.state == state


def is_connected(e: Event) -> bool:
    return isinstance(e, BrokerConnected)


def is_disconnected(e: Event) -> bool:
    return isinstance(e, BrokerDisconnected)


def test_task_and_worker_events_arrive(
    lab: LabCluster, source: tuple[CeleryEventSource, Recorder], producer: Celery
) -> None:
    worker = start_worker(lab)
    src, rec = source
    _, up = rec.wait_for("connection", is_connected)
    assert isinstance(up, BrokerConnected)
    assert up.address == str(lab.current_master().address)
    # The wakeup (or the worker's own beat) makes the worker show itself at once.
    _, beat = rec.wait_for("worker event", lambda e: isinstance(e, WorkerEvent), timeout=5)
    assert isinstance(beat, WorkerEvent) and beat.hostname and beat.hostname.startswith("demo@")

    uuid = send(producer, 41)
    for state in ("sent", "received", "started", "succeeded"):
        _, event = rec.wait_for(f"task-{state}", task_state(uuid, state), timeout=10)
        assert isinstance(event, TaskEvent)
        assert event.name in ("demo.add", None) and event.clock is not None
    sent = next(e for _, e in rec.snapshot() if task_state(uuid, "sent")(e))
    done = next(e for _, e in rec.snapshot() if task_state(uuid, "succeeded")(e))
    assert isinstance(sent, TaskEvent) and sent.queue == "celery" and sent.worker is None
    assert isinstance(done, TaskEvent) and done.worker == beat.hostname and done.runtime
    assert src.malformed == 0
    assert worker.running


def _through_fault(
    lab: LabCluster,
    source: tuple[CeleryEventSource, Recorder],
    producer: Celery,
    fault: Callable[[LabCluster], Any],
    label: str,
) -> None:
    start_worker(lab)
    _, rec = source
    rec.wait_for("connection", is_connected)
    old = lab.current_master()
    t_fault = time.monotonic()
    fault(lab)
    new = lab.wait_for_new_master(old.port)
    t_switch = time.monotonic()
    t_down, down = rec.wait_for("disconnect", is_disconnected, after=t_fault)
    t_up, up = rec.wait_for("reconnect", is_connected, after=t_down)
    assert isinstance(down, BrokerDisconnected) and down.reason
    assert isinstance(up, BrokerConnected) and up.address == str(new.address)
    downs = [e for at, e in rec.snapshot() if at >= t_fault and is_disconnected(e)]
    assert len(downs) == 1, downs  # once per outage
    uuid = send(producer, 7)
    rec.wait_for("task after the switch", task_state(uuid, "succeeded"), timeout=30)
    print(
        f"\n{label}: disconnected {t_down - t_fault:.2f} s after the fault "
        f"({down.reason}); switch at {t_switch - t_fault:.2f} s; reconnected "
        f"{t_up - t_fault:.2f} s after the fault, blind for {t_up - t_down:.2f} s, "
        f"{t_up - t_switch:+.2f} s from the switch"
    )


@pytest.mark.slow
def test_survives_a_forced_failover(
    lab: LabCluster, source: tuple[CeleryEventSource, Recorder], producer: Celery
) -> None:
    _through_fault(lab, source, producer, lambda lab: lab.failover(), "forced failover")


@pytest.mark.slow
def test_survives_a_master_crash(
    lab: LabCluster, source: tuple[CeleryEventSource, Recorder], producer: Celery
) -> None:
    _through_fault(lab, source, producer, lambda lab: lab.kill(lab.current_master()), "crash")


def test_stop_is_prompt_while_no_sentinel_answers(
    lab: LabCluster, source: tuple[CeleryEventSource, Recorder]
) -> None:
    src, rec = source
    rec.wait_for("connection", is_connected)
    master = lab.current_master()
    for sentinel in lab.sentinel_nodes:
        lab.pause(sentinel)  # silent: every discovery waits for its timeouts
    try:
        lab.kill(master)
        t_down, down = rec.wait_for("disconnect", is_disconnected, timeout=5)
        # It keeps retrying (never gives up, never dies); stop it in the middle of that.
        while time.monotonic() < t_down + 1.0:
            assert src.running
            time.sleep(0.05)
        started = time.monotonic()
        src.stop(timeout=2.0)
        assert time.monotonic() - started < 2.0
        assert not src.running
        assert [e for _, e in rec.snapshot() if is_disconnected(e)] == [down]
    finally:
        for sentinel in lab.sentinel_nodes:
            lab.resume(sentinel)


def test_malformed_events_are_counted_not_raised() -> None:
    events: queue.Queue[Event] = queue.Queue()
    src = CeleryEventSource("redis://127.0.0.1:1//", {}, events.put)
    for bad in (
        "not a dict",
        {},
        {"type": 3},
        {"type": "task-started"},
        {"type": "task-started", "uuid": "u", "retries": "x"},
        {"type": "worker-heartbeat", "hostname": 5},
    ):
        src._on_event(bad)
    src._on_event({"type": "worker-ready", "hostname": "w"})  # a type hawatch ignores
    assert src.malformed == 6 and events.empty()
    good = convert_event(
        {"type": "task-sent", "uuid": "u", "name": "n", "routing_key": "q", "timestamp": 5}
    )
    assert isinstance(good, TaskEvent) and (good.state, good.queue, good.clock) == ("sent", "q", 5)


def test_broker_from_settings_and_from_app() -> None:
    settings = Settings(
        sentinels=(SentinelAddress("127.0.0.1", 26379), SentinelAddress("127.0.0.1", 26380)),
        password=Secret("s3cret/pw"),
    )
    url, options = broker_from_settings(settings, "mymaster")
    assert url == "sentinel://:s3cret%2Fpw@127.0.0.1:26379;sentinel://127.0.0.1:26380"
    assert options["master_name"] == "mymaster"
    assert options["sentinel_kwargs"]["password"] == "s3cret/pw"
    assert options["socket_timeout"] and options["sentinel_kwargs"]["socket_timeout"]

    url, options = broker_from_app("hawatch.lab.demo_app")
    assert url.startswith("sentinel://") and options["master_name"] == "mymaster"
    with pytest.raises(ValueError, match="cannot load a Celery app"):
        broker_from_app("no_such_module_here.celery")


# --------------------------------------------------------------------------- a hung master


@pytest.mark.slow
def test_survives_a_hung_master(
    lab: LabCluster, source: tuple[CeleryEventSource, Recorder], producer: Celery
) -> None:
    # A SIGSTOPped master says nothing to anyone: only the source's own liveness check (and
    # then the sentinels' switch) can tell. The demo worker's default settings would wait
    # on the silent socket forever (see the failover reference), so it runs tuned.
    start_worker(lab, profile="tuned")
    _, rec = source
    rec.wait_for("connection", is_connected)
    old = lab.current_master()
    t_fault = time.monotonic()
    lab.pause(old)
    try:
        new = lab.wait_for_new_master(old.port)
        t_switch = time.monotonic()
        t_down, down = rec.wait_for("disconnect", is_disconnected, after=t_fault)
        t_up, up = rec.wait_for("reconnect", is_connected, after=t_down, timeout=30)
        assert isinstance(down, BrokerDisconnected) and down.reason
        assert isinstance(up, BrokerConnected) and up.address == str(new.address)
        downs = [e for at, e in rec.snapshot() if at >= t_fault and is_disconnected(e)]
        assert downs == [down]  # once per outage, however many reconnects failed
        uuid = send(producer, 9)
        # task-sent comes from the producer: the source listens on the new master.
        rec.wait_for("task-sent after the switch", task_state(uuid, "sent"), timeout=10)
        # The worker's events come back too. Its first BRPOP after a hang can take a task
        # and drop the connection before reading it (kombu's stale-BRPOP guard): Celery
        # loses that task (the reference's "one task lost per run"), so keep sending.
        sent = [uuid]
        deadline = time.monotonic() + 45
        while not any(task_state(u, "succeeded")(e) for _, e in rec.snapshot() for u in sent):
            assert time.monotonic() < deadline, f"no task done after the switch: {sent}"
            time.sleep(1.0)
            sent.append(send(producer, 9))
        print(
            f"\nhung master: disconnected {t_down - t_fault:.2f} s after SIGSTOP "
            f"({down.reason}); switch at {t_switch - t_fault:.2f} s; reconnected "
            f"{t_up - t_fault:.2f} s after the fault; the worker ran a task "
            f"{time.monotonic() - t_fault:.1f} s after it ({len(sent)} sent)"
        )
    finally:
        lab.resume(old)


# --------------------------------------------------------------------------- other workers

HERE = Path(__file__).resolve().parent
NODE_PW = "n0de-pw-c4e1"
SENTINEL_PW = "s3nt-pw-7b9d"
WRONG_PW = "wr0ng-pw-55aa"
SECRETS = (NODE_PW, SENTINEL_PW, WRONG_PW)


def start_app_worker(
    lab: LabCluster,
    url: str,
    options: Mapping[str, Any],
    *,
    name: str,
    event_exchange: str = "celeryev",
    ready_timeout: float = 60.0,
) -> ManagedProcess:
    """A real `celery worker` of exchange_app.py (beside this file) on `url`, tied to `lab`."""
    assert lab.directory is not None
    directory = lab.directory / f"worker-{name}"
    directory.mkdir(exist_ok=True)
    env = dict(os.environ)
    env.update(
        HAWATCH_TEST_BROKER=url,
        HAWATCH_TEST_TRANSPORT=json.dumps(dict(options)),
        HAWATCH_TEST_EVENT_EXCHANGE=event_exchange,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(HERE), env.get("PYTHONPATH", "")) if p),
    )
    argv = [
        *(sys.executable, "-m", "celery", "-A", "exchange_app", "worker", "-E"),
        *("--loglevel", "INFO", "--pool", "solo", "--hostname", f"{name}@%h"),
        *("--without-mingle", "--without-gossip"),
    ]
    log = directory / "worker.log"
    proc = lab.register(
        ManagedProcess(f"worker-{name}", argv, log_path=log, cwd=directory, env=env)
    )
    deadline = time.monotonic() + ready_timeout
    while " ready." not in log.read_text(errors="replace"):
        if not proc.running or time.monotonic() > deadline:
            proc.stop(group=True)
            raise LabError(f"the test worker {name} did not start: {proc.log_tail(3)}")
        time.sleep(0.1)
    return proc


def send_accumulate(url: str, options: Mapping[str, Any]) -> str:
    """Send Celery's built-in celery.accumulate over `url` on a new connection; the task id.

    Not through Celery's producer pool: kombu keeps it per URL for the whole process, and
    a pooled connection to the old master keeps writing there while it still accepts
    writes after a failover (split brain).
    """
    app = Celery("hawatch-test-producer", broker=url, set_as_current=False)
    app.conf.update(broker_transport_options=dict(options), task_send_sent_event=True)
    try:
        with app.connection_for_write() as connection:
            result = app.send_task(
                "celery.accumulate", args=[1], ignore_result=True, connection=connection
            )
        return str(result.id)
    finally:
        app.close()


def shown(events: list[Event]) -> list[str]:
    """Every text hawatch could show or record about `events`."""
    return [*(to_json(e) for e in events), *(repr(e) for e in events)]


def assert_no_secret(texts: list[str]) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, f"a password leaked into {text!r}"


def test_a_non_default_event_exchange(lab: LabCluster) -> None:
    url, options = broker_from_settings(lab.settings(), lab.master_name)
    start_app_worker(lab, url, options, name="exchange", event_exchange="hawatchev")
    custom, default = Recorder(), Recorder()
    sources = [
        CeleryEventSource(url, options, custom, name="custom", event_exchange="hawatchev"),
        CeleryEventSource(url, options, default),
    ]
    for src in sources:
        src.start()
    try:
        custom.wait_for("connection", is_connected)
        default.wait_for("connection", is_connected)
        # The worker's own events travel on its exchange only.
        custom.wait_for(
            "worker event", lambda e: isinstance(e, WorkerEvent) and e.hostname is not None
        )
        uuid = send_accumulate(url, options)  # its task-sent goes to celeryev
        custom.wait_for("task-succeeded", task_state(uuid, "succeeded"), timeout=15)
        # The producer's task-sent goes to its own (default) exchange, the worker's events
        # to the worker's: each source hears exactly its exchange.
        default.wait_for("task-sent", task_state(uuid, "sent"), timeout=5)
        assert not [e for _, e in custom.snapshot() if task_state(uuid, "sent")(e)]
        time.sleep(1.0)  # what the default exchange would have had by now
        assert not [
            e
            for _, e in default.snapshot()
            if isinstance(e, WorkerEvent) or (isinstance(e, TaskEvent) and e.state != "sent")
        ], "the worker's events reached the default exchange"
    finally:
        for src in sources:
            src.stop()


def test_events_arrive_over_tls(tmp_path: Path) -> None:
    config = LabConfig.fast(
        base_dir=tmp_path, tls=True, password=NODE_PW, sentinel_password=SENTINEL_PW
    )
    try:
        cluster = LabCluster(config).start()
    except TlsUnavailable as exc:
        pytest.skip(f"no TLS lab on this machine: {exc}")
    try:
        url, options = broker_from_settings(cluster.settings(), cluster.master_name)
        assert options["sentinel_kwargs"]["ssl"] is True  # the sentinels, over TLS
        assert "ssl_ca_certs=" in url.split(";")[0]  # the master, over TLS (kombu's ssl)
        start_app_worker(cluster, url, options, name="tls")
        rec = Recorder()
        src = CeleryEventSource(url, options, rec)
        src.start()
        try:
            _, up = rec.wait_for("connection", is_connected)
            assert isinstance(up, BrokerConnected)
            assert up.address == str(cluster.current_master().address)
            rec.wait_for("worker event", lambda e: isinstance(e, WorkerEvent))
            uuid = send_accumulate(url, options)
            for state in ("sent", "started", "succeeded"):
                rec.wait_for(f"task-{state}", task_state(uuid, state), timeout=15)
            # The liveness check (ROLE on the master) speaks TLS too: it answers.
            receiver = src._receiver
            assert receiver is not None and receiver.watch._probe is not None
            receiver.watch.check_role()
            assert not [e for _, e in rec.snapshot() if is_disconnected(e)]
        finally:
            src.stop()
        # Without TLS the same cluster cannot be reached: TLS is what made it work.
        plain_url, plain_options = broker_from_settings(
            cluster.settings(tls=False, tls_ca_cert=None), cluster.master_name
        )
        plain = Recorder()
        src = CeleryEventSource(plain_url, plain_options, plain)
        src.start()
        try:
            _, down = plain.wait_for("refusal", is_disconnected, timeout=10)
            assert isinstance(down, BrokerDisconnected) and down.reason
            assert not [e for _, e in plain.snapshot() if is_connected(e)]
        finally:
            src.stop()
        assert_no_secret(shown([e for _, e in [*rec.snapshot(), *plain.snapshot()]]))
    finally:
        cluster.stop()


@pytest.mark.slow
def test_a_password_lab_through_a_failover_shows_no_password(tmp_path: Path) -> None:
    config = LabConfig.fast(base_dir=tmp_path, password=NODE_PW, sentinel_password=SENTINEL_PW)
    with LabCluster(config) as cluster:
        spec = broker_spec(cluster.settings(), cluster.master_name)
        assert spec.sentinel and NODE_PW in spec.url  # kombu logs in to the master with it
        assert spec.transport_options["sentinel_kwargs"]["password"] == SENTINEL_PW
        start_app_worker(cluster, spec.url, spec.transport_options, name="pw")
        rec = Recorder()
        src = CeleryEventSource(spec.url, spec.transport_options, rec)
        # A wrong node password: refused, with a reason that quotes no password.
        wrong_spec = broker_spec(
            cluster.settings(node_password=Secret(WRONG_PW)), cluster.master_name
        )
        wrong = Recorder()
        wrong_src = CeleryEventSource(wrong_spec.url, wrong_spec.transport_options, wrong)
        src.start()
        wrong_src.start()
        try:
            rec.wait_for("connection", is_connected)
            uuid = send_accumulate(spec.url, spec.transport_options)
            rec.wait_for("task done", task_state(uuid, "succeeded"), timeout=15)
            _, refused = wrong.wait_for("refusal", is_disconnected, timeout=10)
            assert isinstance(refused, BrokerDisconnected) and refused.reason

            old = cluster.current_master()
            t_fault = time.monotonic()
            cluster.failover()
            new = cluster.wait_for_new_master(old.port)
            t_down, _ = rec.wait_for("disconnect", is_disconnected, after=t_fault)
            _, up = rec.wait_for("reconnect", is_connected, after=t_down)
            assert isinstance(up, BrokerConnected) and up.address == str(new.address)
            uuid = send_accumulate(spec.url, spec.transport_options)
            rec.wait_for("task after the switch", task_state(uuid, "succeeded"), timeout=30)
        finally:
            src.stop()
            wrong_src.stop()
        events = [e for _, e in [*rec.snapshot(), *wrong.snapshot()]]
        assert_no_secret([*shown(events), spec.label, wrong_spec.label])
