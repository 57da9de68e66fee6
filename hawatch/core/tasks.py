"""The task tracker: Celery task and worker events folded into bounded, pure state.

`TaskTracker` never reads a clock and does no I/O: time comes from each event's
`ts` (the moment the source received it) and from the `now` handed to
`TaskTracker.snapshot`, so the same code runs live, replays a journal and is
tested with scripted event lists.

What it keeps, per task id: name, current state, the time it entered each phase
(sent, received, started, retried, finished), the worker, retries, runtime, and
how many times it completed.

**Pending** (see DESIGN.md, "What is PENDING") is a task that is queued and has
not started: its state is ``sent``, ``received`` or ``retried``. A ``retried``
task is pending again: Celery re-publishes the same task id for its next
attempt, so it waits in a queue until that attempt is received and started.
Pending tasks are listed oldest first by the time they (last) became pending.

**Order of events.** Events can arrive out of order (kombu delivers them by
pub/sub from several workers). The state only moves forward:

- ``sent`` < ``received`` < ``started`` < a final state; an older phase arriving
  late is recorded (its time, its queue or worker) but does not move the state
  back.
- ``succeeded``, ``failed``, ``revoked`` and ``rejected`` are final: nothing
  leaves them, except that a completion (``succeeded``/``failed``) replaces a
  ``revoked``/``rejected`` seen earlier: the task did run to the end.
- ``retried`` (from any state that is not final) makes the task pending again;
  a later ``received`` or ``started`` is taken as the next attempt's, unless
  it carries a `retries` count lower than the one already known (a late event
  of an earlier attempt, ignored for the state).
- A task that completes twice (two ``succeeded``, or ``succeeded`` and
  ``failed``, on one worker or two) is **duplicated**: it ran twice, which is what
  a failover does to an unacknowledged message restored after
  ``visibility_timeout``. Counted once per task id.

**Lost.** After the broker's master switched (`TaskTracker.note_switch`, called
when the cluster core shows a new ``+switch-master``), work **resumes** at the
first ``started`` or ``succeeded`` event with ``ts >= switched_at``. A task is
*lost* when, at ``now >= resumed_at + lost_after``, its state is still ``sent``
(``task-sent`` seen, never received; a ``retried`` task does not count), it was
sent before work resumed, and it has been **overtaken**: a task of the same
queue (`queue`, None being a queue of its own) sent *later* has since been
received, started or finished. Celery's Redis queues are FIFO lists, so a task
overtaken by a later one is no longer waiting in the queue ahead of it: the
message most likely went down with the old master (written there, not yet
replicated) and nobody will run it. Without that rule a long backlog still
draining after the failover, in order, would be called lost one task at a time.
Two things look the same: a task whose ``task-received`` and later events fell
in a `BlindWindow` (the events connection was down), and a lower-priority task
overtaken by a later, higher-priority one (kombu serves Redis priorities from
separate lists under the same queue name). Lost means *currently* lost: a lost
task that is then received (or evicted) stops being lost at once. A new switch
(a later `switched_at`) resets resume, and nothing is lost again until work
resumes after it. Per queue the tracker keeps one number, the highest
``sent_at`` of any task that reached received, started or a final state (only
tasks whose ``task-sent`` was seen have one); the lost tasks found are held in
a dict, about 40 B each. No event scans the tasks: see `TaskTracker.snapshot`
for the cost of finding them.

**Malformed input** (no task id, an unknown state or worker kind, a field of the
wrong type, a timestamp that is not a finite number) is counted in
`TasksSnapshot.malformed` and ignored: other Celery versions and other producers
must never crash the monitor. Events of other kinds (Sentinel, queues ...) are
ignored without being counted, so the whole event stream can be fed in.

**Bounded.** At most `max_tasks` tasks are tracked. When a new task arrives and
the tracker is full, the oldest finished task is evicted; when none is finished,
the oldest running (started) one; pending tasks go last, only when every tracked
task is pending. Each tier is an ``OrderedDict`` in arrival order, so an event
costs O(1) amortised and no event scans the tasks. Per-state counts are exact
for the tracked tasks; `TasksSnapshot.totals` counts every valid event since
the start, evicted tasks included.

**Throughput** (started/s, succeeded/s) counts valid ``started`` and
``succeeded`` events in one-second buckets, in a ring of ``ceil(window) + 2``
buckets: memory does not grow with the rate. The rate at `now` is the events
of the `window` whole seconds ending with the second of `now`, divided by
`window`. A second ring of `HISTORY_SECONDS` buckets counts the ``started``
events alone, for `TaskTracker.started_history` (the hole a failover leaves in
the work, drawn over the last minutes): also fixed memory, whatever the rate.

**Workers.** A worker is offline after a ``worker-offline`` event (until it
sends another ``online``/``heartbeat``), or when ``now - last_seen >
2 * freq + 1``: Celery's own `State` expires a worker at ``2 * freq`` after its
last heartbeat; the extra second absorbs the transport's latency. `last_seen`
is the latest worker event or task event from that host (Celery's `State`
counts task events as signs of life too); `last_heartbeat` is only the latest
worker event. A worker that never announced `freq` is assumed to beat every
2 s (Celery's default).

**Memory:** about 0.4 kB per tracked task: 424 B for a finished task, 352 B
for a pending one (tracemalloc over 100,000 tasks, uuid strings and timestamps
included; ``benchmarks/tracker_throughput.py``), so the default bound of
100,000 tasks costs about 42 MB. Celery's own `State` takes about 3.2 kB per
finished task. Speed: about 2 µs per event (≈ 460,000 events/s on one core), against
about 75 µs for Celery's `State` bounded to the same 100,000 tasks.

**Ordering assumption.** "Oldest pending", the "pending when the fault
began" marking and the search for lost tasks (which stops at the first task
that became pending after the resume) rely on `ts` being the arrival time,
which does not go backwards within one source. With timestamps that do go
backwards nothing fails; the order is then the arrival order, and a task that
arrived after the resume with an earlier `ts` may be missed as lost.
"""

from __future__ import annotations

import math
import sys
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from hawatch.core.events import BrokerConnected, BrokerDisconnected, Event, TaskEvent, WorkerEvent

__all__ = [
    "FINAL_STATES",
    "HISTORY_SECONDS",
    "PENDING_STATES",
    "TASK_STATES",
    "BlindWindow",
    "PendingTask",
    "TaskTracker",
    "TaskView",
    "TasksSnapshot",
    "WorkerView",
]

#: Every task state the tracker knows (Celery's event names without ``task-``).
TASK_STATES: tuple[str, ...] = (
    "sent",
    "received",
    "started",
    "retried",
    "succeeded",
    "failed",
    "revoked",
    "rejected",
)
#: States in which a task is queued and has not started.
PENDING_STATES = frozenset({"sent", "received", "retried"})
#: States nothing leaves (a completion may still replace revoked/rejected).
FINAL_STATES = frozenset({"succeeded", "failed", "revoked", "rejected"})
#: Final states that mean the task ran to the end (two of them: duplicated).
_COMPLETIONS = frozenset({"succeeded", "failed"})
#: Order of the non-final phases; retried ranks with sent: queued again.
_RANK = {"sent": 0, "retried": 0, "received": 1, "started": 2}
_WORKER_KINDS = frozenset({"online", "heartbeat", "offline"})

#: Heartbeat period assumed for a worker that did not announce one (Celery's default).
DEFAULT_FREQ = 2.0
#: Duplicated task ids kept for the snapshot (the count is exact).
MAX_DUPLICATED_IDS = 1_000
#: Blind windows kept (the most recent ones).
MAX_BLIND_WINDOWS = 100
#: Workers kept; the one seen least recently goes first.
MAX_WORKERS = 10_000
#: Queues whose overtaking mark is kept (for lost tasks); the first seen goes first.
MAX_QUEUES = 10_000
#: Seconds of started-task history kept (`TaskTracker.started_history`).
HISTORY_SECONDS = 600

_PENDING, _RUNNING, _FINISHED = 0, 1, 2


def _tier(state: str) -> int:
    if state in PENDING_STATES:
        return _PENDING
    if state in FINAL_STATES:
        return _FINISHED
    return _RUNNING


@dataclass(frozen=True, slots=True)
class PendingTask:
    """A pending task in a snapshot: what it is, where it waits, and for how long."""

    uuid: str
    name: str | None
    state: str
    """``sent``, ``received`` or ``retried``."""
    since: float
    """When it (last) became pending."""
    age: float
    """Seconds pending at the snapshot's `now`."""
    worker: str | None
    """The worker that received it (None until received)."""
    queue: str | None
    retries: int | None
    before_fault: bool
    """Already pending at the snapshot's `fault_at`: the incident may lose or delay it."""
    lost: bool
    """Lost after the switch (see the module docstring, "Lost"): sent before work
    resumed, never received, overtaken by a later task of its queue."""


@dataclass(frozen=True, slots=True)
class TaskView:
    """Everything the tracker knows about one task (for a detail view and tests)."""

    uuid: str
    name: str | None
    state: str
    worker: str | None
    queue: str | None
    retries: int | None
    runtime: float | None
    exception: str | None
    sent_at: float | None
    received_at: float | None
    started_at: float | None
    retried_at: float | None
    finished_at: float | None
    """When the final state was reached."""
    pending_since: float | None
    """When it (last) became pending; None once it has started."""
    completions: int
    """How many ``succeeded``/``failed`` events it had; 2 or more is a duplicate."""


@dataclass(frozen=True, slots=True)
class WorkerView:
    """A worker at the snapshot's `now`: online or not, and why."""

    hostname: str
    online: bool
    reason: str
    """``ok``, ``worker-offline`` or ``heartbeat lost``."""
    last_heartbeat: float | None
    """When its last worker event arrived."""
    heartbeat_age: float | None
    last_seen: float
    """Its last worker or task event."""
    freq: float | None
    active: int | None
    processed: int | None


@dataclass(frozen=True, slots=True)
class BlindWindow:
    """A time a Celery-side source was disconnected from the broker: events may be missing."""

    source: str
    start: float
    end: float | None
    """None while it lasts."""
    reason: str


@dataclass(frozen=True, slots=True)
class TasksSnapshot:
    """The tracker at one moment, for the views: immutable, cheap to hand across threads."""

    now: float
    tracked: int
    """Tasks held (≤ `max_tasks`); the sum of `counts`."""
    counts: Mapping[str, int]
    """Tracked tasks per current state (every state in `TASK_STATES`, zeros included)."""
    pending: int
    """Tracked tasks queued and not started (sent, received, retried)."""
    oldest_pending: tuple[PendingTask, ...]
    """At most `limit` pending tasks, oldest first (those pending at `fault_at` first)."""
    pending_at_fault: int | None
    """How many tasks still pending were already pending at `fault_at` (None without one)."""
    workers: tuple[WorkerView, ...]
    """By hostname."""
    started_per_s: float
    succeeded_per_s: float
    window: float
    totals: Mapping[str, int]
    """Valid events per state since the start, evicted tasks included."""
    tasks_seen: int
    """Task ids tracked since the start (an id evicted and seen again counts twice)."""
    duplicated: int
    """Tasks that completed more than once."""
    duplicated_ids: tuple[str, ...]
    """The most recent of them (at most `MAX_DUPLICATED_IDS`)."""
    malformed: int
    evicted: int
    evicted_pending: int
    """Of `evicted`, how many were still pending (the bound is too small for the backlog)."""
    blind_windows: tuple[BlindWindow, ...]
    """The most recent windows, oldest first; open ones have ``end=None``."""
    switched_at: float | None
    """When the broker's master last switched (`TaskTracker.note_switch`); None without one."""
    resumed_at: float | None
    """The first ``started``/``succeeded`` event at or after `switched_at`; None until then."""
    lost: int
    """Tracked tasks lost after the switch (see the module docstring, "Lost")."""
    lost_tasks: tuple[PendingTask, ...]
    """At most `limit` of them, oldest first."""
    lost_after: float
    """Seconds after `resumed_at` before a task can be lost."""


def _matcher(text: str | None) -> Callable[[_Task], bool] | None:
    """A test of whether a task's id, name, queue, state or worker contains `text`."""
    needle = (text or "").strip().lower()
    if not needle:
        return None

    def wanted(task: _Task) -> bool:
        fields = (task.uuid, task.name, task.queue, task.state, task.worker)
        return any(needle in field.lower() for field in fields if field)

    return wanted


class _Task:
    """One tracked task; slots keep it small (see the module's memory figure)."""

    __slots__ = (
        "completions",
        "exception",
        "finished_at",
        "name",
        "pending_since",
        "queue",
        "received_at",
        "retried_at",
        "retries",
        "runtime",
        "sent_at",
        "started_at",
        "state",
        "uuid",
        "worker",
    )

    def __init__(self, uuid: str, state: str) -> None:
        self.uuid = uuid
        self.state = state
        self.name: str | None = None
        self.worker: str | None = None
        self.queue: str | None = None
        self.retries: int | None = None
        self.runtime: float | None = None
        self.exception: str | None = None
        self.sent_at: float | None = None
        self.received_at: float | None = None
        self.started_at: float | None = None
        self.retried_at: float | None = None
        self.finished_at: float | None = None
        self.pending_since: float | None = None
        self.completions = 0


class _Worker:
    __slots__ = (
        "active",
        "freq",
        "hostname",
        "last_heartbeat",
        "last_seen",
        "offline",
        "processed",
    )

    def __init__(self, hostname: str, ts: float) -> None:
        self.hostname = hostname
        self.last_heartbeat = ts
        self.last_seen = ts
        self.offline = False
        self.freq: float | None = None
        self.active: int | None = None
        self.processed: int | None = None


def _finite(value: Any) -> bool:
    """A real number that converts to a finite float (not a bool, not NaN, not 10**400)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _opt_str(value: Any) -> bool:
    return value is None or isinstance(value, str)


def _opt_int(value: Any) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool))


def _opt_number(value: Any) -> bool:
    return value is None or _finite(value)


def _valid_task(event: TaskEvent) -> bool:
    uuid = event.uuid
    ts = event.ts
    return (
        isinstance(uuid, str)
        and uuid != ""
        and isinstance(event.state, str)
        and event.state in _STATE_SET
        and _finite(ts)
        and _opt_str(event.name)
        and _opt_str(event.worker)
        and _opt_str(event.queue)
        and _opt_int(event.retries)
        and _opt_number(event.runtime)
        and _opt_str(event.exception)
        and _opt_number(event.clock)
    )


def _valid_worker(event: WorkerEvent) -> bool:
    ts = event.ts
    freq = event.freq
    return (
        isinstance(event.hostname, str)
        and event.hostname != ""
        and isinstance(event.kind, str)
        and event.kind in _WORKER_KINDS
        and _finite(ts)
        and _opt_int(event.active)
        and _opt_int(event.processed)
        and _opt_number(freq)
        and (freq is None or freq > 0)
        and _opt_number(event.clock)
    )


_STATE_SET = frozenset(TASK_STATES)


class TaskTracker:
    """Celery task and worker events folded into bounded state: what is pending, what
    ran twice, which workers are alive, how fast tasks start and finish.

    Feed it every event with `apply` (events it has no use for are ignored), and
    read it with `snapshot` a few times a second. Not thread-safe: one thread
    applies and snapshots (the snapshot itself is immutable).
    """

    def __init__(
        self, max_tasks: int = 100_000, window: float = 10.0, lost_after: float = 30.0
    ) -> None:
        if max_tasks < 1:
            raise ValueError("max_tasks must be at least 1")
        if not window >= 1.0 or not math.isfinite(window):
            raise ValueError("window must be a finite number of seconds, at least 1")
        if not lost_after >= 0.0 or not math.isfinite(lost_after):
            raise ValueError("lost_after must be a finite number of seconds, at least 0")
        self.max_tasks = max_tasks
        self.window = float(window)
        self.lost_after = float(lost_after)
        self._tiers: tuple[OrderedDict[str, _Task], ...] = (
            OrderedDict(),
            OrderedDict(),
            OrderedDict(),
        )
        self._counts: dict[str, int] = dict.fromkeys(TASK_STATES, 0)
        self._totals: dict[str, int] = dict.fromkeys(TASK_STATES, 0)
        self._tasks_seen = 0
        self._duplicated = 0
        self._duplicated_ids: deque[str] = deque(maxlen=MAX_DUPLICATED_IDS)
        self._malformed = 0
        self._evicted = 0
        self._evicted_pending = 0
        self._workers: OrderedDict[str, _Worker] = OrderedDict()
        self._blind: deque[BlindWindow] = deque(maxlen=MAX_BLIND_WINDOWS)
        self._blind_open: dict[str, BlindWindow] = {}
        # The pending tasks already pending at _fault_at, kept up to date per event
        # once a snapshot asked for that fault time (one O(pending) count per fault).
        self._fault_at: float | None = None
        self._at_fault = 0
        # Throughput ring: bucket i holds second _sec[i]; counts of started, succeeded.
        self._nbuckets = math.ceil(self.window) + 2
        self._sec = [-1] * self._nbuckets
        self._started = [0] * self._nbuckets
        self._succeeded = [0] * self._nbuckets
        # Started-task history ring: bucket i holds second _hist_sec[i].
        self._hist_sec = [-1] * HISTORY_SECONDS
        self._hist_started = [0] * HISTORY_SECONDS
        # Lost tasks (see the module docstring): the switch, the resume, per queue the
        # highest sent_at of a task that was received/started/finished, and the lost
        # tasks found by the last walk of the pending tier (in pending order), with the
        # key of that walk. A task leaves _lost as soon as it stops being lost.
        self._switched_at: float | None = None
        self._resumed_at: float | None = None
        self._overtaken: dict[str | None, float] = {}
        self._lost: dict[str, _Task] = {}
        self._lost_key: tuple[int, float, float] | None = None

    # -- input ---------------------------------------------------------------

    def apply(self, event: object) -> None:
        """Fold one event in. Never raises on bad input: it is counted as malformed."""
        if isinstance(event, TaskEvent):
            if _valid_task(event):
                self._apply_task(event)
            else:
                self._malformed += 1
        elif isinstance(event, WorkerEvent):
            if _valid_worker(event):
                self._apply_worker(event)
            else:
                self._malformed += 1
        elif isinstance(event, (BrokerDisconnected, BrokerConnected)):
            if not _finite(event.ts):
                self._malformed += 1
            elif isinstance(event, BrokerDisconnected):
                self._apply_disconnected(event)
            else:
                self._apply_connected(event)
        elif not isinstance(event, Event):
            self._malformed += 1

    def note_switch(self, ts: float) -> None:
        """The broker's master switched at `ts` (from the cluster core's ``+switch-master``).

        The same `ts` again is a no-op; a later one is a new switch: work has to
        resume again before anything is lost. An earlier one is ignored (stale), a
        non-finite one is counted as malformed. O(1).
        """
        if not _finite(ts):
            self._malformed += 1
            return
        ts = float(ts)
        if self._switched_at is not None and ts <= self._switched_at:
            return
        self._switched_at = ts
        self._resumed_at = None
        self._lost.clear()
        self._lost_key = None

    def _find(self, uuid: str) -> _Task | None:
        for tier in self._tiers:
            task = tier.get(uuid)
            if task is not None:
                return task
        return None

    def _apply_task(self, event: TaskEvent) -> None:
        state = event.state
        ts = float(event.ts)
        uuid = event.uuid
        assert uuid is not None  # checked by _valid_task
        self._totals[state] += 1
        if state == "started" or state == "succeeded":
            self._count_rate(state, ts)
            switched_at = self._switched_at
            if switched_at is not None and self._resumed_at is None and ts >= switched_at:
                self._resumed_at = ts
                self._lost_key = None
        worker_name = event.worker
        if worker_name is not None:
            known = self._workers.get(worker_name)
            if known is not None and ts > known.last_seen:
                known.last_seen = ts
        task = self._find(uuid)
        if task is None:
            if self._tracked() >= self.max_tasks:
                self._evict_one()
            task = _Task(uuid, state)
            self._tasks_seen += 1
            self._counts[state] += 1
            self._tiers[_tier(state)][uuid] = task
            if state in PENDING_STATES:
                task.pending_since = ts
                self._pending_changed(None, ts)
            self._record(task, event, ts)
            if state in _COMPLETIONS:
                task.completions = 1
            self._note_overtaking(task)
            return
        old = task.state
        new = self._next_state(task, event)
        self._record(task, event, ts)
        if state in _COMPLETIONS:
            task.completions += 1
            if task.completions == 2:
                self._duplicated += 1
                self._duplicated_ids.append(uuid)
        if new != old:
            self._move(task, old, new, ts)
        self._note_overtaking(task)
        if self._lost and uuid in self._lost:
            resumed_at = self._resumed_at
            if resumed_at is None or not self._is_lost(task, resumed_at):
                del self._lost[uuid]

    def _note_overtaking(self, task: _Task) -> None:
        """Raise its queue's mark when a task whose sending was seen got further than sent."""
        sent_at = task.sent_at
        if sent_at is None or (
            task.received_at is None and task.started_at is None and task.finished_at is None
        ):
            return
        marks = self._overtaken
        queue = task.queue
        mark = marks.get(queue)
        if mark is None:
            if len(marks) >= MAX_QUEUES:
                del marks[next(iter(marks))]
            marks[queue] = sent_at
        elif sent_at > mark:
            marks[queue] = sent_at

    def _is_lost(self, task: _Task, resumed_at: float) -> bool:
        """Lost, but for the time (``now >= resumed_at + lost_after``, the caller's part)."""
        if task.state != "sent":
            return False
        sent_at = task.sent_at
        if sent_at is None or sent_at >= resumed_at:
            return False
        mark = self._overtaken.get(task.queue)
        return mark is not None and mark > sent_at

    def _next_state(self, task: _Task, event: TaskEvent) -> str:
        """The task's state after `event`: forward only (see the module docstring)."""
        old = task.state
        state = event.state
        if old in FINAL_STATES:
            if state in _COMPLETIONS and old not in _COMPLETIONS:
                return state
            return old
        if state in FINAL_STATES or state == "retried":
            return state
        if event.retries is not None and task.retries is not None and event.retries < task.retries:
            return old  # a late event of an earlier attempt
        if old == "retried":
            return state if _RANK[state] > 0 else old
        return state if _RANK[state] > _RANK[old] else old

    def _record(self, task: _Task, event: TaskEvent, ts: float) -> None:
        """Keep what the event tells about the task, whatever it does to the state."""
        state = event.state
        if event.name is not None and task.name is None:
            task.name = sys.intern(event.name)
        if event.queue is not None:
            task.queue = sys.intern(event.queue)
        if event.worker is not None and state != "sent":
            task.worker = sys.intern(event.worker)
        if event.retries is not None and (task.retries is None or event.retries > task.retries):
            task.retries = event.retries
        if event.runtime is not None:
            task.runtime = float(event.runtime)
        if event.exception is not None:
            task.exception = event.exception
        if state == "sent":
            task.sent_at = ts
        elif state == "received":
            task.received_at = ts
        elif state == "started":
            task.started_at = ts
        elif state == "retried":
            task.retried_at = ts
        elif task.finished_at is None:
            task.finished_at = ts

    def _move(self, task: _Task, old: str, new: str, ts: float) -> None:
        counts = self._counts
        counts[old] -= 1
        counts[new] += 1
        task.state = new
        was, now = _tier(old), _tier(new)
        if new == "retried":
            self._pending_changed(task.pending_since, ts)
            task.pending_since = ts
            if was == _PENDING:  # queued again: goes to the back of the line
                self._tiers[_PENDING].move_to_end(task.uuid)
        elif now != _PENDING:
            self._pending_changed(task.pending_since, None)
            task.pending_since = None
        if was != now:
            del self._tiers[was][task.uuid]
            self._tiers[now][task.uuid] = task

    def _tracked(self) -> int:
        return len(self._tiers[0]) + len(self._tiers[1]) + len(self._tiers[2])

    def _evict_one(self) -> None:
        for tier_index in (_FINISHED, _RUNNING, _PENDING):
            tier = self._tiers[tier_index]
            if tier:
                _, task = tier.popitem(last=False)
                self._counts[task.state] -= 1
                self._evicted += 1
                if tier_index == _PENDING:
                    self._evicted_pending += 1
                    self._pending_changed(task.pending_since, None)
                    self._lost.pop(task.uuid, None)
                return

    def _pending_changed(self, before: float | None, after: float | None) -> None:
        """Keep `_at_fault` exact when a task's pending spell starts, moves or ends."""
        fault_at = self._fault_at
        if fault_at is None:
            return
        if before is not None and before <= fault_at:
            self._at_fault -= 1
        if after is not None and after <= fault_at:
            self._at_fault += 1

    def _count_rate(self, state: str, ts: float) -> None:
        second = math.floor(ts)
        if state == "started":
            self._count_history(second)
        index = second % self._nbuckets
        held = self._sec[index]
        if held != second:
            if held > second:
                return  # older than the ring holds
            self._sec[index] = second
            self._started[index] = 0
            self._succeeded[index] = 0
        if state == "started":
            self._started[index] += 1
        else:
            self._succeeded[index] += 1

    def _count_history(self, second: int) -> None:
        index = second % HISTORY_SECONDS
        held = self._hist_sec[index]
        if held != second:
            if held > second:
                return  # older than the ring holds
            self._hist_sec[index] = second
            self._hist_started[index] = 0
        self._hist_started[index] += 1

    def _apply_worker(self, event: WorkerEvent) -> None:
        hostname = event.hostname
        assert hostname is not None  # checked by _valid_worker
        ts = float(event.ts)
        worker = self._workers.get(hostname)
        if worker is None:
            if len(self._workers) >= MAX_WORKERS:
                self._workers.popitem(last=False)
            worker = self._workers[hostname] = _Worker(sys.intern(hostname), ts)
        else:
            self._workers.move_to_end(hostname)
        worker.last_heartbeat = ts
        worker.last_seen = max(worker.last_seen, ts)
        worker.offline = event.kind == "offline"
        if event.freq is not None:
            worker.freq = float(event.freq)
        if event.active is not None:
            worker.active = event.active
        if event.processed is not None:
            worker.processed = event.processed

    def _apply_disconnected(self, event: BrokerDisconnected) -> None:
        source = str(event.source)
        if source in self._blind_open:
            return  # already blind: the window started earlier
        window = BlindWindow(source, float(event.ts), None, str(event.reason))
        self._blind_open[source] = window
        self._blind.append(window)

    def _apply_connected(self, event: BrokerConnected) -> None:
        source = str(event.source)
        window = self._blind_open.pop(source, None)
        if window is None:
            return
        closed = BlindWindow(window.source, window.start, float(event.ts), window.reason)
        for index in range(len(self._blind) - 1, -1, -1):  # ≤ MAX_BLIND_WINDOWS, rare
            if self._blind[index] is window:
                self._blind[index] = closed
                break

    # -- output --------------------------------------------------------------

    def get(self, uuid: str) -> TaskView | None:
        """What is known about one tracked task, or None (never seen, or evicted)."""
        task = self._find(uuid)
        if task is None:
            return None
        return TaskView(
            uuid=task.uuid,
            name=task.name,
            state=task.state,
            worker=task.worker,
            queue=task.queue,
            retries=task.retries,
            runtime=task.runtime,
            exception=task.exception,
            sent_at=task.sent_at,
            received_at=task.received_at,
            started_at=task.started_at,
            retried_at=task.retried_at,
            finished_at=task.finished_at,
            pending_since=task.pending_since,
            completions=task.completions,
        )

    def started_history(self, now: float, seconds: int = 180) -> tuple[int, ...]:
        """Tasks started in each of the `seconds` whole seconds ending with the second of
        `now`, oldest first: the throughput a view draws, with the failover's hole in it.

        Counts every valid ``started`` event (a task started twice counts twice), by the
        second of its `ts`; a second after `now` is not included. At most
        `HISTORY_SECONDS` seconds are kept: an event older than that when it arrives
        (behind the newest one seen) is not counted. A `now` that is not a finite number
        gives zeros. O(seconds).
        """
        if (
            isinstance(seconds, bool)
            or not isinstance(seconds, int)
            or not 1 <= seconds <= HISTORY_SECONDS
        ):
            raise ValueError(f"seconds must be a whole number from 1 to {HISTORY_SECONDS}")
        if not _finite(now):
            return (0,) * seconds
        held, started = self._hist_sec, self._hist_started
        last = math.floor(now)
        counts = []
        for second in range(last - seconds + 1, last + 1):
            index = second % HISTORY_SECONDS
            counts.append(started[index] if held[index] == second else 0)
        return tuple(counts)

    def __len__(self) -> int:
        """How many tasks are tracked."""
        return self._tracked()

    def snapshot(
        self,
        now: float,
        *,
        limit: int = 50,
        fault_at: float | None = None,
        match: str | None = None,
    ) -> TasksSnapshot:
        """The tracker at `now`: counts, the `limit` oldest pending tasks, workers, rates.

        With `fault_at` (the incident's fault time), the pending tasks that were
        already pending then are marked `PendingTask.before_fault` and counted in
        `TasksSnapshot.pending_at_fault`; being the oldest, they come first.
        Costs O(limit + workers); the first snapshot with a new `fault_at` also
        counts the pending tasks once (O(pending)), then the tracker keeps that
        count up to date as events arrive.

        Lost tasks (module docstring, "Lost"): once ``now >= resumed_at + lost_after``,
        the tracker walks the tasks that became pending before `resumed_at` (a prefix of
        the pending tasks, which are in pending order) and keeps the lost ones. The walk
        costs O(that prefix), at most O(pending) (about 35 ms for 100,000 tasks pending
        since before the resume, on one core), and is done at most once per second of
        `now`, and again when a switch or resume changes: snapshots in between cost
        O(limit) for them. A lost task that is received, started, finished or evicted
        leaves the list at once (O(1), as the event arrives); a task that becomes lost
        between two walks (a later task of its queue just overtook it) is found by the
        next one, at most one second of `now` later.

        `match`: list only the pending (and lost) tasks whose id, name, queue, state or
        worker contains it, ignoring case (the operator's filter); the counts are
        unchanged. A filter that matches few tasks walks every pending one: O(pending).
        """
        pending_tier = self._tiers[_PENDING]
        wanted = _matcher(match)
        self._update_lost(now)
        lost = self._lost
        at_fault: int | None = None
        if fault_at is not None:
            if fault_at != self._fault_at:
                self._fault_at = fault_at
                self._at_fault = sum(
                    1
                    for task in pending_tier.values()
                    if task.pending_since is not None and task.pending_since <= fault_at
                )
            at_fault = self._at_fault
        oldest: list[PendingTask] = []
        for task in pending_tier.values():
            if len(oldest) >= limit:
                break  # in arrival order: the rest became pending later
            if wanted is None or wanted(task):
                oldest.append(self._pending_view(task, now, fault_at, task.uuid in lost))
        lost_tasks: list[PendingTask] = []
        for task in lost.values():
            if len(lost_tasks) >= limit:
                break  # in pending order: the rest became pending later
            if wanted is None or wanted(task):
                lost_tasks.append(self._pending_view(task, now, fault_at, True))
        if fault_at is not None:
            # Timestamps that went backwards may leave a marked task behind a later
            # one; the marked ones still come first.
            oldest.sort(key=lambda p: not p.before_fault)
        started, succeeded = self._rates(now)
        return TasksSnapshot(
            now=now,
            tracked=self._tracked(),
            counts=MappingProxyType(dict(self._counts)),
            pending=len(pending_tier),
            oldest_pending=tuple(oldest),
            pending_at_fault=at_fault,
            workers=tuple(self._worker_view(w, now) for _, w in sorted(self._workers.items())),
            started_per_s=started,
            succeeded_per_s=succeeded,
            window=self.window,
            totals=MappingProxyType(dict(self._totals)),
            tasks_seen=self._tasks_seen,
            duplicated=self._duplicated,
            duplicated_ids=tuple(self._duplicated_ids),
            malformed=self._malformed,
            evicted=self._evicted,
            evicted_pending=self._evicted_pending,
            blind_windows=tuple(self._blind),
            switched_at=self._switched_at,
            resumed_at=self._resumed_at,
            lost=len(lost),
            lost_tasks=tuple(lost_tasks),
            lost_after=self.lost_after,
        )

    @staticmethod
    def _pending_view(task: _Task, now: float, fault_at: float | None, lost: bool) -> PendingTask:
        since = task.pending_since if task.pending_since is not None else now
        return PendingTask(
            uuid=task.uuid,
            name=task.name,
            state=task.state,
            since=since,
            age=max(0.0, now - since),
            worker=task.worker if task.state == "received" else None,
            queue=task.queue,
            retries=task.retries,
            before_fault=fault_at is not None and since <= fault_at,
            lost=lost,
        )

    def _update_lost(self, now: float) -> None:
        """Find the lost tasks again if `now` entered a new second or the switch changed."""
        switched_at, resumed_at = self._switched_at, self._resumed_at
        if switched_at is None or resumed_at is None or not now >= resumed_at + self.lost_after:
            self._lost.clear()
            self._lost_key = None
            return
        key = (math.floor(now), switched_at, resumed_at)
        if key == self._lost_key:
            return
        self._lost_key = key
        lost: dict[str, _Task] = {}
        marks = self._overtaken
        for task in self._tiers[_PENDING].values():  # `_is_lost`, inlined: 100,000 tasks
            since = task.pending_since
            if since is not None and since >= resumed_at:
                break  # in pending order: the rest became pending after the resume
            if task.state != "sent":
                continue
            sent_at = task.sent_at
            if sent_at is not None and sent_at < resumed_at:
                mark = marks.get(task.queue)
                if mark is not None and mark > sent_at:
                    lost[task.uuid] = task
        self._lost = lost

    def _rates(self, now: float) -> tuple[float, float]:
        last = math.floor(now)
        first = math.floor(now - self.window) + 1
        started = succeeded = 0
        for index, second in enumerate(self._sec):
            if first <= second <= last:
                started += self._started[index]
                succeeded += self._succeeded[index]
        return started / self.window, succeeded / self.window

    @staticmethod
    def _worker_view(worker: _Worker, now: float) -> WorkerView:
        freq = worker.freq if worker.freq is not None else DEFAULT_FREQ
        if worker.offline:
            online, reason = False, "worker-offline"
        elif now - worker.last_seen > 2 * freq + 1:
            online, reason = False, "heartbeat lost"
        else:
            online, reason = True, "ok"
        return WorkerView(
            hostname=worker.hostname,
            online=online,
            reason=reason,
            last_heartbeat=worker.last_heartbeat,
            heartbeat_age=max(0.0, now - worker.last_heartbeat),
            last_seen=worker.last_seen,
            freq=worker.freq,
            active=worker.active,
            processed=worker.processed,
        )
