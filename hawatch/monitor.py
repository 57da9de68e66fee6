"""The monitor: every source feeding one event stream into the core.

``sources → one event stream → core → views`` (see DESIGN.md). A `Monitor`
runs the Sentinel watcher and the queue gauge on the event loop, the Celery
event receiver and the canary in their own threads, and funnels every event
into `Monitor.feed` on the loop's thread, in arrival order. `feed` folds each
event into the core (`ClusterState`, `TaskTracker`, the latest queue depths),
lets the canary turn task events into round trips, tells the tracker when the
broker's master switched (so it can flag lost tasks), and hands the event on to
`emit` (the TUI renders the core on a tick; `hawatch events` prints each event).

Threads never touch the core: their events are queued and drained on the loop
in batches (one wake-up per batch, not per event), so a flood of task events
costs one ``call_soon_threadsafe`` per batch.

A failure of the Celery side (an app that cannot be imported, a bad broker
URL) never stops the Sentinel side: it becomes `Monitor.celery_problem`, one
sentence the views show. `Monitor.problems` gathers every such sentence, each
saying what to do: the Celery side off, sentinels that refuse hawatch or that
nobody reaches, a ``--master`` the sentinels do not monitor, workers that send
no events (`CeleryEventsCheck`), a journal that stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from hawatch import __version__
from hawatch.core.cluster import ClusterState
from hawatch.core.events import (
    BrokerConnected,
    BrokerDisconnected,
    Event,
    MasterObserved,
    NodeObserved,
    QueueDepth,
    SentinelMessage,
    SessionStarted,
    TaskEvent,
    WorkerEvent,
)
from hawatch.core.incidents import IncidentModel, IncidentsSnapshot
from hawatch.core.prometheus import PrometheusView
from hawatch.core.tasks import TaskTracker
from hawatch.settings import Settings

if TYPE_CHECKING:
    from hawatch.journal import Journal
    from hawatch.sources.canary import Canary
    from hawatch.sources.celery_events import BrokerSpec, CeleryEventSource
    from hawatch.sources.http_probe import HttpProbeOptions
    from hawatch.sources.prometheus import PrometheusOptions, PrometheusSource
    from hawatch.sources.sentinel import SentinelWatcher

__all__ = [
    "DEFAULT_LOST_AFTER",
    "NO_EVENTS_WINDOW",
    "TASK_EVENTS_GRACE",
    "CeleryEventsCheck",
    "CeleryOptions",
    "Monitor",
    "unknown_masters",
]

log = logging.getLogger(__name__)

OLD_MASTER_LISTEN = 60.0
"""The longest a former master is listened to after a switch (unless demoted sooner)."""
TICK_INTERVAL = 1.0
"""Seconds between two `Monitor.tick` calls while running."""
DEFAULT_LOST_AFTER = 30.0
"""Seconds after work resumed before a task sent earlier and never received is lost."""
NO_EVENTS_WINDOW = 20.0
"""Seconds the Celery event receiver stays connected without hearing any worker before
hawatch says the workers send no events. A worker with events on answers the receiver's
wake-up at once, and sends a heartbeat every 2 s."""
TASK_EVENTS_GRACE = 5.0
"""Seconds a worker's heartbeat may count tasks it ran before hawatch says the worker sends
no task events (its buffered task events normally arrive within milliseconds)."""
EVENT_RECEIVER = "celery-events"
"""The `BrokerConnected.source` of the Celery event receiver (`CeleryEventSource`'s name)."""


def _names(items: Sequence[str], *, limit: int = 2) -> str:
    """``a``, ``a and b``, or ``a, b and 3 more``: short enough for the status line."""
    if len(items) <= limit:
        return " and ".join(items)
    return f"{', '.join(items[:limit])} and {len(items) - limit} more"


def unknown_masters(
    wanted: Sequence[str], reported: Iterable[str], monitored: Sequence[str] | None = None
) -> str | None:
    """The sentence for the master names asked for (``--master``) that no answering
    sentinel monitors, or None when every one is reported.

    `reported` holds the names the sentinels report (the core's
    `ClusterState.master_names`); `monitored`, when known, every name the
    answering sentinels monitor (the watcher's `SentinelWatcher.monitored_masters`,
    which sees the names `--master` filters out), to say which names exist.
    """
    known = set(reported)
    missing = [name for name in dict.fromkeys(wanted) if name not in known]
    if not missing:
        return None
    names = " or ".join(repr(name) for name in missing)
    exist = ""
    if monitored is not None:
        listed = _names(monitored, limit=4) if monitored else "none"
        exist = f" (they monitor: {listed})"
    return (
        f"no answering sentinel monitors a master named {names}{exist}; "
        "check --master or HAWATCH_MASTER"
    )


class CeleryEventsCheck:
    """Whether the Celery workers send events, judged from the stream alone.

    Pure and clock-free like the core: feed it every event with `apply`, ask
    `problem(now)`. It says so, with how to turn events on, when

    - the event receiver (`BrokerConnected` from `source`) has been connected for
      `window` seconds without one worker or task event: no worker uses this
      broker, or the workers send no events at all (no ``-E`` and
      ``--without-heartbeat``);
    - a worker's heartbeats count tasks it ran (``processed`` grew between two
      heartbeats of one connection) while no task event of it ever arrived, for
      `grace` seconds: a worker without ``-E`` still sends its heartbeats.

    Both go away once the missing events arrive. A disconnection of the receiver
    restarts the window and the count (events sent meanwhile are lost, not missing).
    `task-sent` events come from producers, not workers: they prove nothing here.
    """

    def __init__(
        self,
        *,
        window: float = NO_EVENTS_WINDOW,
        grace: float = TASK_EVENTS_GRACE,
        source: str = EVENT_RECEIVER,
        app: str | None = None,
    ) -> None:
        self.window = window
        """Seconds connected without any worker or task event before it is said."""
        self.grace = grace
        """Seconds a worker may count tasks without their events before it is said."""
        self.source = source
        self.app = app
        """The ``--app`` to name in ``celery -A APP control enable_events``, if known."""
        self.connected_since: float | None = None
        """When the event receiver last connected; None while it is not connected."""
        self.heard = False
        """True once any worker or task event arrived."""
        self._task_workers: set[str] = set()
        """Workers that sent a task event: theirs are on."""
        self._counts: dict[str, tuple[int, float | None]] = {}
        """Per worker not yet in `_task_workers`: the first ``processed`` count heard on
        this connection, and when a later heartbeat counted more (None: not yet)."""

    def apply(self, event: Event) -> None:
        """Fold one event in; events of other types are ignored."""
        if isinstance(event, BrokerConnected):
            if event.source == self.source and self.connected_since is None:
                self.connected_since = event.ts
        elif isinstance(event, BrokerDisconnected):
            if event.source == self.source:
                self.connected_since = None
                self._counts.clear()
        elif isinstance(event, WorkerEvent):
            self.heard = True
            host, processed = event.hostname, event.processed
            if not host or processed is None or host in self._task_workers:
                return
            count = self._counts.get(host)
            if count is None or processed < count[0]:  # first heard, or the worker restarted
                self._counts[host] = (processed, None)
            elif count[1] is None and processed > count[0]:
                self._counts[host] = (count[0], event.ts)
        elif isinstance(event, TaskEvent) and event.state != "sent":
            self.heard = True
            if event.worker:
                self._task_workers.add(event.worker)
                self._counts.pop(event.worker, None)

    def problem(self, now: float) -> str | None:
        """The sentence to show at `now`, or None while the workers' events arrive."""
        if not self.heard:
            since = self.connected_since
            if since is None or now - since < self.window:
                return None
            return (
                f"no Celery event in {self.window:g}s: no worker uses this broker, or the "
                "workers send no events; restart them with -E (--task-events) or "
                "worker_send_task_events = True"
            )
        silent = sorted(
            host
            for host, (_, gained) in self._counts.items()
            if gained is not None and now - gained >= self.grace
        )
        if not silent:
            return None
        if len(silent) == 1:
            who, them = f"worker {silent[0]} runs tasks but sends", "it"
        else:
            who, them = f"workers {_names(silent)} run tasks but send", "them"
        return (
            f"{who} no task events: run celery -A {self.app or 'APP'} control "
            f"enable_events, or restart {them} with -E or worker_send_task_events = True"
        )


@dataclass(frozen=True, slots=True)
class CeleryOptions:
    """What the Celery side watches, and whether it sends canary tasks."""

    enabled: bool = True
    broker: str | None = None
    """A broker URL (``--broker``); it may hold a password."""
    app: str | None = None
    """A Celery app to load, as ``celery -A`` takes it (``--app``)."""
    queues: tuple[str, ...] = ()
    """Queues to gauge besides those of the app (``--queue``)."""
    canary_rate: float = 0.0
    """Canary tasks per second; 0: no canary."""
    lost_after: float = DEFAULT_LOST_AFTER
    max_tasks: int = 100_000

    @property
    def canary(self) -> bool:
        """True when the canary sends tasks."""
        return self.enabled and self.canary_rate > 0


class Monitor:
    """Run every source of `settings` and keep the core up to date.

    Call `run` on an event loop (it returns only when cancelled, after
    stopping every source); read `cluster`, `tasks` and `queues` from the same
    loop's thread at any time. `emit`, if given, receives every event after
    the core has seen it, on the loop's thread.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        celery: CeleryOptions | None = None,
        emit: Callable[[Event], None] | None = None,
        topology_interval: float = 2.0,
        journal: Journal | None = None,
        events_window: float = NO_EVENTS_WINDOW,
        prometheus: PrometheusOptions | None = None,
        probes: Sequence[HttpProbeOptions] = (),
    ) -> None:
        self.settings = settings
        self.prometheus = prometheus
        """Where Prometheus is, when its view is shown beside the live one."""
        self.probes = tuple(probes)
        """The HTTP probes to poll (the user-facing resume)."""
        self.celery = celery if celery is not None else CeleryOptions(enabled=False)
        if self.celery.canary and settings.read_only:
            raise ValueError("the canary sends tasks, which --read-only forbids; drop one of them.")
        self.topology_interval = topology_interval
        self.clock: Callable[[], float] = time.time
        """The time the views render the core at: the wall clock live, the replay's
        clock when a journal is played back."""
        self.cluster = ClusterState()
        self.tasks = TaskTracker(max_tasks=self.celery.max_tasks, lost_after=self.celery.lost_after)
        self.incidents = IncidentModel(tracker=self.tasks, work_observed=self.celery.enabled)
        """Failover incidents: phases, gap, outage; their updates join the stream."""
        self.queues: dict[str, QueueDepth] = {}
        """The latest depth of each gauged queue."""
        self.prometheus_view = PrometheusView()
        """What Prometheus says about the masters, beside the live view."""
        self.celery_master: str | None = None
        """The master name the Celery side's broker is, once chosen."""
        self.broker: BrokerSpec | None = None
        """Where the Celery side connects, once resolved."""
        self.celery_problem: str | None = None
        """Why the Celery side is not running, as one sentence (None while it runs)."""
        self.celery_started = False
        self.journal = journal
        """Where every event is appended, if anywhere."""
        self.journal_problem: str | None = None
        """Why the journal stopped, as one sentence (None while it is written)."""
        self.events_check = CeleryEventsCheck(window=events_window, app=self.celery.app)
        """Whether the workers send events (its `window` may be changed before `run`)."""
        self._watcher: SentinelWatcher | None = None
        self._emit = emit
        self._canary: Canary | None = None
        self._source: CeleryEventSource | None = None
        self._broker_address: str | None = None
        """Where the broker's master is, as last seen (to know the former one at a switch)."""
        self._old_listeners: dict[str, tuple[CeleryEventSource, float]] = {}
        """Listeners on former masters (address → source, when it started, monotonic)."""
        self._stopping_threads: list[threading.Thread] = []
        self._switch_seen: float | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: deque[Event] = deque()
        self._inbox_lock = threading.Lock()
        self._drain_scheduled = False
        self._masters_known = asyncio.Event()

    # -- the stream ---------------------------------------------------------------------

    def feed(self, event: Event) -> None:
        """Fold one event into the core and pass it on. Call on the loop's thread."""
        self.cluster.apply(event)
        self.tasks.apply(event)
        self.events_check.apply(event)
        self.prometheus_view.apply(event)
        updates = self.incidents.apply(event)
        if isinstance(event, QueueDepth):
            self.queues[event.queue] = event
        elif isinstance(event, NodeObserved):
            if self._old_listeners and event.role == "slave":
                self._stop_old_listener(event.address)  # the former master is demoted
        elif isinstance(event, MasterObserved | SentinelMessage):
            self._check_switch()
            if isinstance(event, MasterObserved):
                self._masters_known.set()
            elif (
                self._old_listeners
                and event.channel == "+convert-to-slave"
                and event.address is not None
            ):
                self._stop_old_listener(event.address)
        if self.journal is not None:
            self._journal(event)
        if self._emit is not None:
            self._emit(event)
        canary = self._canary
        if canary is not None:
            result = canary.observe(event)
            if result is not None:
                self.feed(result)
        for update in updates:
            self.feed(update)

    def tick(self, now: float) -> None:
        """Let time pass in the core (an incident closes once stable); about once a second."""
        for address, (_, started) in list(self._old_listeners.items()):
            if time.monotonic() - started > OLD_MASTER_LISTEN:
                self._stop_old_listener(address)
        for update in self.incidents.tick(now):
            self.feed(update)

    def _journal(self, event: Event) -> None:
        """Append `event` to the journal; a journal that fails is stopped and said, once."""
        from hawatch.journal import JournalError

        journal = self.journal
        assert journal is not None
        try:
            journal.write(event)
        except JournalError as error:
            self.journal = None
            journal.close()
            self.journal_problem = f"the journal stopped: {error}"

    def _listen_on_former_master(self, address: str) -> None:
        """Keep hearing the Celery events published on a former master until it is demoted:
        workers and producers may go on using it (a split brain), and the results of the
        tasks that run there are lost when it resyncs. Their events carry `via` = it."""
        from hawatch.sources.celery_events import CeleryEventSource, broker_spec

        if address in self._old_listeners or self.broker is None or not self.broker.sentinel:
            return
        user, password = self.settings.node_credentials()
        userinfo = ""
        if user or password:
            secret = quote(password.reveal(), safe="") if password else ""
            userinfo = f"{quote(user or '', safe='')}:{secret}@"
        scheme = "rediss" if self.settings.tls else "redis"
        try:
            spec = broker_spec(
                self.settings,
                self.celery_master or "",
                broker=f"{scheme}://{userinfo}{address}/0",
            )
        except ValueError as error:
            log.debug("cannot listen on the former master: %s", self.settings.redact(str(error)))
            return
        source = CeleryEventSource(
            spec.url,
            spec.transport_options,
            self._from_thread,
            name="celery-events-former-master",
            event_exchange=self.broker.event_exchange,
            quiet=True,
        )
        source.start()
        self._old_listeners[address] = (source, time.monotonic())

    def _stop_old_listener(self, address: str) -> None:
        entry = self._old_listeners.pop(address, None)
        if entry is not None:
            thread = threading.Thread(target=entry[0].stop, daemon=True)
            thread.start()
            self._stopping_threads.append(thread)

    def problems(self, now: float | None = None) -> list[str]:
        """What the operator must know is wrong with hawatch's own view, most serious
        first: one sentence each, saying what to do. The screen shows them on its
        status line; `now` is the time they are judged at (default: `clock`).

        In order: the Celery side off for the session, the sentinels that refuse
        hawatch or that nobody reaches (`unreachable_advice`), master names asked for
        that no sentinel monitors, workers that send no events, Prometheus not answering
        (``--prometheus``), the journal stopped.
        Every one of them but the first and the last goes away by itself once fixed
        outside hawatch: the sources keep retrying.
        """
        from hawatch.sources.sentinel import unreachable_advice

        when = self.clock() if now is None else now
        found = [self.celery_problem] if self.celery_problem else []
        answering = self.cluster.answering()
        found += unreachable_advice(self.cluster.unreachable_reasons(), answering=len(answering))
        unknown = self._unknown_masters(answering)
        if unknown:
            found.append(unknown)
        if self.celery.enabled and self.celery_problem is None:
            silent = self.events_check.problem(when)
            if silent:
                found.append(silent)
        prometheus = self.prometheus_view.problem(when)
        if prometheus:
            found.append(prometheus)
        if self.journal_problem:
            found.append(self.journal_problem)
        return found

    def _unknown_masters(self, answering: Sequence[str]) -> str | None:
        """`unknown_masters` once every seed sentinel answered or failed, and one answered."""
        if not self.settings.masters or not answering:
            return None
        decided = {*answering, *self.cluster.unreachable_reasons()}
        if any(str(seed) not in decided for seed in self.settings.sentinels):
            return None  # a seed that has not answered yet may monitor it
        watcher = self._watcher
        monitored = watcher.monitored_masters() if watcher is not None else None
        return unknown_masters(self.settings.masters, self.cluster.master_names(), monitored)

    def tasks_fault_at(self, incidents: IncidentsSnapshot | None = None) -> float | None:
        """When the current incident began, for marking the tasks pending since before it.

        The fault of the broker's master's open incident, else its last switch: the
        tasks pending then are the ones a failover loses or delays. `incidents`: a
        snapshot the caller already took (else one is taken now).
        """
        master = self.celery_master
        if master is None:
            return None
        if incidents is None:
            incidents = self.incidents.snapshot(self.clock())
        incident = incidents.for_master(master)
        if incident is not None and incident.fault is not None:
            return incident.fault
        return self.cluster.switched_at(master)

    def configure(self, broker_master: str | None) -> None:
        """Say which master is the Celery broker, and record it (`SessionStarted`) so that
        a replay of the journal makes the same choice."""
        self.celery_master = broker_master
        self.incidents.broker_master = broker_master or None
        self._check_switch()
        self.feed(
            SessionStarted(
                ts=self.clock(),
                broker_master=broker_master,
                celery=self.celery.enabled,
                lost_after=self.celery.lost_after,
                max_tasks=self.celery.max_tasks,
                canary_rate=self.celery.canary_rate,
                version=__version__,
            )
        )

    def apply_session(self, event: SessionStarted) -> None:
        """Take a recorded session's choices (a replay): the same core as the live run."""
        if event.max_tasks != self.tasks.max_tasks or event.lost_after != self.tasks.lost_after:
            self.tasks = TaskTracker(max_tasks=event.max_tasks, lost_after=event.lost_after)
            self.incidents = IncidentModel(tracker=self.tasks, work_observed=event.celery)
        self.incidents.work_observed = event.celery
        self.celery_master = event.broker_master
        self.incidents.broker_master = event.broker_master or None
        self._check_switch()

    def _check_switch(self) -> None:
        """Tell the tracker (lost tasks) and the event receiver when the broker's master
        switched, and listen on the former master until it is demoted."""
        master = self.celery_master
        if master is None:
            return
        switched = self.cluster.switched_at(master)
        address = self.cluster.master_address(master)
        if switched is not None and switched != self._switch_seen:
            self._switch_seen = switched
            self.tasks.note_switch(switched)
            if self._source is not None and address is not None:
                self._source.master_moved(address)
        if address is not None and address != self._broker_address:
            former, self._broker_address = self._broker_address, address
            if former is not None and self._source is not None:
                self._listen_on_former_master(former)
            self._stop_old_listener(address)  # a former master that is master again

    def _from_thread(self, event: Event) -> None:
        """Queue an event from a source thread; the loop drains the queue in batches."""
        loop = self._loop
        if loop is None:
            return
        with self._inbox_lock:
            self._inbox.append(event)
            if self._drain_scheduled:
                return
            self._drain_scheduled = True
        with contextlib.suppress(RuntimeError):  # the loop is closing: the event is moot
            loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        with self._inbox_lock:
            batch = list(self._inbox)
            self._inbox.clear()
            self._drain_scheduled = False
        for event in batch:
            self.feed(event)

    # -- running ------------------------------------------------------------------------

    async def run(self) -> None:
        """Run every source until cancelled; then stop them all (threads within ~2 s)."""
        from hawatch.sources.sentinel import SentinelWatcher

        self._loop = asyncio.get_running_loop()
        watcher = SentinelWatcher(
            self.settings, self.feed, topology_interval=self.topology_interval
        )
        self._watcher = watcher
        tasks = [
            asyncio.create_task(watcher.run(), name="hawatch sentinel watcher"),
            asyncio.create_task(self._ticking(), name="hawatch incident clock"),
        ]
        threads: list[CeleryEventSource | Canary | PrometheusSource] = []
        try:
            if self.prometheus is not None:
                from hawatch.sources.prometheus import PrometheusSource

                prometheus = PrometheusSource(
                    self.prometheus, self._from_thread, masters=self.settings.masters
                )
                prometheus.start()
                threads.append(prometheus)
            if self.probes:
                from hawatch.sources.http_probe import run_http_probes

                tasks.append(
                    asyncio.create_task(
                        run_http_probes(self.probes, self.feed), name="hawatch http probes"
                    )
                )
            if self.celery.enabled:
                await self._start_celery(tasks, threads)
            else:
                self.configure(None)
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._canary = None
            self._source = None
            threads.extend(source for source, _ in self._old_listeners.values())
            self._old_listeners.clear()
            if threads:
                await asyncio.gather(
                    *(asyncio.to_thread(thread.stop) for thread in threads),
                    return_exceptions=True,
                )
            for stopping in self._stopping_threads:
                await asyncio.to_thread(stopping.join, 3.0)
            self._stopping_threads.clear()

    async def _ticking(self) -> None:
        while True:
            await asyncio.sleep(TICK_INTERVAL)
            self.tick(self.clock())

    async def _start_celery(
        self,
        tasks: list[asyncio.Task[None]],
        threads: list[CeleryEventSource | Canary | PrometheusSource],
    ) -> None:
        from hawatch.sources.canary import Canary
        from hawatch.sources.celery_events import CeleryEventSource, broker_spec
        from hawatch.sources.queues import QueueGauge

        options = self.celery
        master = await self._choose_master()
        self.configure(master)
        try:
            spec = await asyncio.to_thread(
                broker_spec,
                self.settings,
                master,
                broker=options.broker,
                app=options.app,
                queues=options.queues,
            )
        except ValueError as error:
            self.celery_problem = f"the Celery side is off: {self.settings.redact(str(error))}"
            return
        self.broker = spec
        source = CeleryEventSource(
            spec.url,
            spec.transport_options,
            self._from_thread,
            name=EVENT_RECEIVER,
            event_exchange=spec.event_exchange,
        )
        source.start()
        threads.append(source)
        self._source = source

        def current_master() -> str | None:
            return self.cluster.master_address(master)

        gauge = QueueGauge(
            self.settings,
            master,
            self.feed,
            queues=spec.queues,
            master_address=current_master if spec.sentinel else None,
            broker_url=spec.url,
        )
        tasks.append(asyncio.create_task(gauge.run(), name="hawatch queue gauge"))
        if options.canary:
            canary = Canary(
                spec.url,
                spec.transport_options,
                self._from_thread,
                rate=options.canary_rate,
                queue=spec.queues[0] if spec.queues else "celery",
                read_only=self.settings.read_only,
                event_exchange=spec.event_exchange,
            )
            self._canary = canary
            canary.start()
            threads.append(canary)
        self.celery_started = True

    async def _choose_master(self) -> str:
        """The master name whose cluster is the broker: the first one configured, else
        the first (by name) the sentinels report, once one has answered."""
        if self.settings.masters:
            return self.settings.masters[0]
        broker = self.celery.broker
        if broker is not None and not broker.strip().lower().startswith("sentinel"):
            return ""  # a plain Redis broker: no master name is needed
        while True:
            await self._masters_known.wait()
            names = self.cluster.master_names()
            if names:
                return names[0]
            self._masters_known.clear()
