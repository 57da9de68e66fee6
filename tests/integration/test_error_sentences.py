"""Errors as sentences, on the screen, against real processes: every way hawatch can be
pointed wrong shows one sentence on the status line that says what to do, and the app
keeps running (and retrying, where that can help).

Each test drives the real `HawatchApp` at 80x24 and reads the painted screen, where the
status line wraps: a sentence counts as shown when its words are on the screen in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot

from hawatch.core.tasks import WorkerView
from hawatch.lab import LabCluster, LabConfig, start_worker
from hawatch.lab.demo_app import make_app
from hawatch.lab.procs import free_port
from hawatch.monitor import CeleryOptions
from hawatch.settings import Secret, SentinelAddress, Settings
from hawatch.views.app import HawatchApp, MasterPanel

pytestmark = pytest.mark.integration

SIZE = (80, 24)
NODE_PW = "n0de-pw-e5a1"
SENTINEL_PW = "s3nt-pw-c07e"
WRONG_PW = "wr0ng-pw-4b2d"


def screen_text(app: HawatchApp) -> str:
    """What the terminal shows right now, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def words(text: str) -> str:
    """`text` with every run of spaces and line breaks as one space (undoes the wrapping)."""
    return " ".join(text.split())


async def until(
    pilot: Pilot[None], app: HawatchApp, what: str, check: Callable[[], bool], timeout: float
) -> None:
    """Let the app run until `check()` holds, or fail saying `what` and showing the screen."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} within {timeout:g} s; status: {app.status_text!r}\n{screen_text(app)}"
            )
        await pilot.pause(0.05)


async def shows(pilot: Pilot[None], app: HawatchApp, sentence: str, timeout: float = 20) -> None:
    """Wait until the status line holds `sentence` as a warning and the screen shows it."""
    warning = f"WARNING: {sentence}."
    await until(
        pilot,
        app,
        f"the sentence {sentence!r} was not shown",
        lambda: warning in app.status_text and words(warning) in words(screen_text(app)),
        timeout,
    )
    assert app.is_running


async def clears(pilot: Pilot[None], app: HawatchApp, fragment: str, timeout: float = 20) -> None:
    """Wait until no warning on the status line holds `fragment` any more."""
    await until(
        pilot,
        app,
        f"{fragment!r} stayed on the status line",
        lambda: fragment not in app.status_text and "WARNING" not in app.status_text,
        timeout,
    )
    assert app.is_running


async def panel_shows(pilot: Pilot[None], app: HawatchApp, text: str, timeout: float = 20) -> None:
    await until(
        pilot,
        app,
        f"no master panel showed {text!r}",
        lambda: any(text in panel.text for panel in app.query(MasterPanel)),
        timeout,
    )


def small_config(base: Path, **overrides: object) -> LabConfig:
    """One master and one sentinel: all these tests need, and quick to start."""
    return LabConfig.fast(base_dir=base, replicas=0, sentinels=1, quorum=1, **overrides)


@pytest.fixture(scope="module")
def small_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    """A lab the tests only read from."""
    with LabCluster(small_config(tmp_path_factory.mktemp("small-lab"))) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def password_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabCluster]:
    """A lab whose data nodes and sentinels each have their own password."""
    config = small_config(
        tmp_path_factory.mktemp("password-lab"), password=NODE_PW, sentinel_password=SENTINEL_PW
    )
    with LabCluster(config) as cluster:
        yield cluster


# --------------------------------------------------------------------------- a. unreachable


async def test_nothing_listening_is_said_and_the_master_shows_once_the_sentinel_is_up(
    tmp_path: Path,
) -> None:
    with LabCluster(small_config(tmp_path)) as lab:
        (sentinel,) = lab.sentinel_nodes
        lab.kill(sentinel)  # it comes up only once hawatch is watching
        app = HawatchApp(lab.settings(), topology_interval=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await shows(
                pilot,
                app,
                f"no sentinel answers: nothing listens at {sentinel.address}; check --sentinel "
                "or --url and that the sentinels run; retrying",
            )
            assert "Asking the sentinels … none has answered yet." in screen_text(app)
            await asyncio.to_thread(lab.restart, sentinel)
            await panel_shows(pilot, app, f"master {lab.current_master().address}")
            await clears(pilot, app, "no sentinel answers")
            assert app.status_text == "watching 1 sentinel"
            await pilot.press("q")


async def test_an_address_nobody_listens_on_is_named() -> None:
    closed = SentinelAddress("127.0.0.1", free_port())
    app = HawatchApp(Settings(sentinels=(closed,)), topology_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await shows(
            pilot,
            app,
            f"no sentinel answers: nothing listens at {closed}; check --sentinel or --url "
            "and that the sentinels run; retrying",
        )
        assert f"1 of 1 sentinels unreachable: {closed} connection refused" in app.status_text
        await pilot.press("q")


async def test_a_redis_server_that_is_not_a_sentinel_is_named(small_lab: LabCluster) -> None:
    node = small_lab.current_master().address
    app = HawatchApp(Settings(sentinels=(node,)), topology_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await shows(
            pilot,
            app,
            f"not a sentinel at {node} (a plain Redis server?): give the sentinels' addresses "
            "(port 26379 by default) with --sentinel or --url",
        )
        await pilot.press("q")


# --------------------------------------------------------------------------- b. passwords


async def test_a_wrong_password_is_named_with_what_to_give_and_never_shown(
    password_lab: LabCluster,
) -> None:
    (sentinel,) = password_lab.sentinel_addresses
    app = HawatchApp(password_lab.settings(password=Secret(WRONG_PW)), topology_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await shows(
            pilot,
            app,
            f"wrong password or user at {sentinel} (authentication failed): give the right "
            "ones with --url redis://:PASSWORD@HOST:PORT or HAWATCH_PASSWORD",
        )
        for secret in (WRONG_PW, SENTINEL_PW, NODE_PW):
            assert secret not in app.status_text and secret not in screen_text(app)
        await pilot.press("q")


async def test_a_missing_password_is_named_with_what_to_give(password_lab: LabCluster) -> None:
    (sentinel,) = password_lab.sentinel_addresses
    settings = password_lab.settings(password=None, node_password=None)
    app = HawatchApp(settings, topology_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await shows(
            pilot,
            app,
            f"a password is required at {sentinel}: give it with "
            "--url redis://:PASSWORD@HOST:PORT or HAWATCH_PASSWORD",
        )
        await pilot.press("q")


# --------------------------------------------------------------------------- c. master name


async def test_an_unknown_master_name_is_said_with_the_names_monitored(
    small_lab: LabCluster,
) -> None:
    app = HawatchApp(small_lab.settings(masters=("nosuch",)), topology_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await shows(
            pilot,
            app,
            "no answering sentinel monitors a master named 'nosuch' (they monitor: mymaster); "
            "check --master or HAWATCH_MASTER",
        )
        await panel_shows(pilot, app, "nosuch   master unknown   NO REPORT")
        assert app.status_text.endswith("watching 1 sentinel")
        await pilot.press("q")


# --------------------------------------------------------------------------- d. Celery events


async def test_workers_that_send_no_events_at_all_are_said_until_one_does(
    lab: LabCluster,
) -> None:
    await asyncio.to_thread(start_worker, lab, task_events=False, heartbeat=False)
    app = HawatchApp(lab.settings(), topology_interval=0.5, celery=CeleryOptions())
    app.monitor.events_check.window = 3.0
    async with app.run_test(size=SIZE) as pilot:
        await shows(
            pilot,
            app,
            "no Celery event in 3s: no worker uses this broker, or the workers send no events; "
            "restart them with -E (--task-events) or worker_send_task_events = True",
        )
        # A worker with events on says hello (worker-online): the sentence goes.
        await asyncio.to_thread(start_worker, lab, name="with-events")
        await clears(pilot, app, "no Celery event", timeout=30)
        await pilot.press("q")


async def test_a_worker_without_task_events_is_named_until_they_are_enabled(
    lab: LabCluster,
) -> None:
    await asyncio.to_thread(start_worker, lab, task_events=False)
    producer = make_app(
        [str(a) for a in lab.sentinel_addresses], lab.master_name, result_backend=False
    )
    app = HawatchApp(lab.settings(), topology_interval=0.5, celery=CeleryOptions())
    app.monitor.events_check.grace = 1.0
    try:
        async with app.run_test(size=SIZE) as pilot:

            def heard() -> list[WorkerView]:
                # Its heartbeats arrive, counting the tasks it ran; not its tasks' events.
                workers = app.monitor.tasks.snapshot(time.time()).workers
                return [w for w in workers if w.processed is not None]

            await until(pilot, app, "no heartbeat counted tasks", lambda: bool(heard()), 30)
            hostname = heard()[0].hostname
            for n in range(3):
                await asyncio.to_thread(producer.send_task, "demo.add", args=[n, 1])
            await shows(
                pilot,
                app,
                f"worker {hostname} runs tasks but sends no task events: run celery -A APP "
                "control enable_events, or restart it with -E or worker_send_task_events = True",
            )
            replies = await asyncio.to_thread(producer.control.enable_events, reply=True)
            assert replies == [{hostname: {"ok": "task events enabled"}}]
            await asyncio.to_thread(producer.send_task, "demo.add", args=[9, 1])
            await clears(pilot, app, "sends no task events")
            await pilot.press("q")
    finally:
        producer.close()


async def test_workers_with_events_on_raise_no_sentence(lab: LabCluster) -> None:
    await asyncio.to_thread(start_worker, lab)
    producer = make_app(
        [str(a) for a in lab.sentinel_addresses], lab.master_name, result_backend=False
    )
    app = HawatchApp(lab.settings(), topology_interval=0.5, celery=CeleryOptions())
    check = app.monitor.events_check
    check.window, check.grace = 2.0, 1.0
    try:
        async with app.run_test(size=SIZE) as pilot:

            def counted(tasks: int) -> bool:
                workers = app.monitor.tasks.snapshot(time.time()).workers
                processed = workers[0].processed if workers else None
                return processed is not None and processed >= tasks

            await until(pilot, app, "the worker was not heard", lambda: counted(0), 30)
            for n in range(3):
                await asyncio.to_thread(producer.send_task, "demo.add", args=[n, 1])
            await until(pilot, app, "no heartbeat counted the tasks", lambda: counted(3), 30)
            # Past the window and the grace: still nothing to say, at any moment.
            connected = check.connected_since
            assert connected is not None
            quiet_until = max(time.time() + check.grace, connected + check.window) + 1.0
            while time.time() < quiet_until:
                assert "WARNING" not in app.status_text, app.status_text
                await pilot.pause(0.05)
            assert app.monitor.problems() == []
            await pilot.press("q")
    finally:
        producer.close()


# --------------------------------------------------------------------------- e. Celery app


async def test_a_celery_app_that_cannot_be_imported_is_said_and_sentinel_runs_on(
    small_lab: LabCluster,
) -> None:
    celery = CeleryOptions(app="hawatch_test_no_such_module")
    app = HawatchApp(small_lab.settings(), topology_interval=0.2, celery=celery)
    async with app.run_test(size=SIZE) as pilot:
        await shows(
            pilot,
            app,
            "the Celery side is off: cannot load a Celery app from 'hawatch_test_no_such_module': "
            "no module named 'hawatch_test_no_such_module'; check --app, and run hawatch from "
            "the project's directory or set PYTHONPATH",
        )
        await panel_shows(pilot, app, f"master {small_lab.current_master().address}")
        await pilot.press("q")
