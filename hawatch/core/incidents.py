"""The incident model: a failover, phase by phase, from the application's side.

`IncidentModel` never reads a clock and does no I/O: time comes from each event's
`ts` and from the `now` handed to `IncidentModel.tick` and
`IncidentModel.snapshot`, so the same code runs live, replays a journal and is
tested with scripted event lists (DESIGN.md, "The incident model").

**Phases.** An incident concerns one master name and stamps each phase with the
time of its first evidence:

- ``fault``: the operator's ``SENTINEL FAILOVER`` accepted (`FailoverRequested`),
  the first ``+sdown`` on the master, or the first failed canary send
  (`ProbeResult` ``send-failed``). Any evidence of a later phase is evidence of
  the fault too, so the fault is never later than another phase: an incident
  first seen by its ``+switch-master`` (a failover someone else forced, or whose
  first messages were missed) starts at that switch.
- ``detected``: ``+odown`` on the master (absent for a forced failover).
- ``elected``: ``+try-failover`` or ``+elected-leader``.
- ``switched``: ``+switch-master`` (see "Several switches").
- ``resumed``: the first task ``started`` or ``succeeded`` (a `TaskEvent`; a
  canary's round trip counts through its own task events) with ``ts >= switched``;
  per worker too (the first per hostname, for at most `MAX_WORKERS` workers). Work
  read via a former master during the split brain does not count: its results
  are discarded when that node resyncs (it is counted in "results at risk"); the
  application has resumed when work runs on the new master.
- ``demoted``: the old master became a replica: ``+convert-to-slave`` or
  ``+role-change ... new reported role is slave`` about its address, or its own
  ``ROLE`` (`NodeObserved` with role ``slave``), at or after the switch away from it.
- ``closed``: see "Closing".

**Figures.** gap = resumed − switched; outage = resumed − fault (for an incident
closed without a failover: back − fault, see below); split brain = demoted − the
switch away from the old master. While an incident is open the snapshot shows
them ticking (``now − switched`` while not resumed, ...) and names them in
`IncidentReport.counting`; an `IncidentUpdate` carries only figures that are
final. Every figure is ≥ 0 by construction.

**Which master.** Messages with instance details count for an incident only when
their role is ``master`` and their address is the node that was master at their
`ts` (by the incident's switches; else the address known for the name; else any):
a lagging sentinel's ``+sdown master mymaster <old address>`` after the switch is
about the old master and is not a fault of the new one, while a ``+odown`` about
the old master stamped before the switch is evidence even if it arrives after it.
The current address is learnt only from authoritative sources: ``+switch-master``
and the sentinels' topology (`MasterObserved`) at a higher config epoch (which is
taken as a switch while an incident is open, so a ``+switch-master`` missed during
a reconnect is not missed for good). Failed canary sends, task
events and blind windows concern the broker's master, `IncidentModel.broker_master`
(every master while it is None; a probe, the only master known).

**Copies and order.** Several sentinels publish the same message, and events
arrive out of order (several sentinels, several sources, threads). A phase's time
is the *earliest* evidence seen, whatever the order it arrives in: a copy never
moves a phase later, and a ``+odown`` applied after ``+switch-master`` still sets
``detected`` at its own, earlier, time. Work that arrives just before the switch
that precedes it (at most `RECENT_WORK` events earlier) still counts for the resume.
Evidence older than a closed incident's close does not open a new one.

**Several switches.** A ``+switch-master`` is applied when its ``old`` is the
master's current address (or none is known). One whose ``new`` is the current
address is a copy (or the topology's view) of the switch that made it master: it
can only move that switch earlier. Anything else is kept aside (at most
`MAX_ORPHANS` per name) and applied if a later switch makes its ``old`` current at
an earlier time: it arrived before the switch it follows. A stale ``+switch-master``
replayed by a restarted sentinel (``A → B`` while the master is already C) is
therefore never applied and never opens an incident. A new switch before the
incident closed (a second failover during the first, before or after work
resumed) stays in the same incident: every switch is kept in
`IncidentReport.switches`, ``switched`` is the last one and the gap is measured
from it (that is the failover the application waited for: work that resumed in
between does not count, and the resume is looked for again); ``old_master`` stays
the master at the fault and the split brain is measured from the first switch.
Without epochs, a real switch back (``A → B → A``) and a replay of ``A → B``
after it cannot be told apart: the topology (`MasterObserved`, epochs) is the
authority then, as in `ClusterState`.

**Aborts.** ``-failover-abort-*`` records the abort in `IncidentReport.note`;
`aborted` is True while no switch followed it (a sentinel that was not elected
aborts while another one completes the failover). The incident stays open until
the master comes back (``-sdown``/``-odown`` on it) or a later switch. A master
that was never seen down (a forced failover that found no replica to promote)
never left: the abort itself is its return. ``+failover-end-for-timeout`` is not
an abort (Sentinel still switches after it): it is noted, nothing more.

**No failover.** An incident without a switch ends when the master is back: the
first ``-sdown``/``-odown`` on it after its last ``+sdown``/``+odown``; or, for an
incident opened by failed canary sends only, the first work (task or canary
started/succeeded) after the last failed send; or the abort above. It closes,
noted "master came back without a failover", with outage = back − fault and no gap.
A failover that started (`FailoverRequested`, ``+try-failover``) and neither
switched nor aborted keeps the incident open.

**Closing.** An incident closes once nothing has happened for `stable_after`
seconds: at ``max(resumed, last fault evidence) + stable_after`` (fault evidence:
down messages about the master, failed sends, failover attempts, aborts,
switches), or for an incident without a failover at ``max(back, last fault
evidence) + stable_after``. After a switch it also waits for each former master
to be demoted, unless that node is down (``+sdown`` on its address, or
`NodeUnreachable`): the demotion is the last change of the topology, so the
incident closes no earlier than `stable_after` after it (results read via the old
master just before it still arrive in the incident). It waits at most
`demote_wait` seconds after the switch; if that passes the note says so (the old
master's writes may still be lost). An incident whose master switched and never
resumed stays open and keeps counting: it is never silently closed. The close
time is that deadline, not the moment it is noticed: `tick` (the live app calls
it about once a second) and every applied event's `ts` drive it, and a replay
gives the same times at any speed. Where no
work can be observed (``work_observed=False``: no Celery side; or a master that is
not the broker's), the resume is not required: the incident closes
`stable_after` after the switch, with no gap or outage.

**Tasks** (the Celery side; none for a master that is not the broker's).
`sent` and `completed` count ``task-sent`` and ``task-succeeded``/``task-failed``
events with ``ts >= fault`` applied while the incident is open (a task event that
arrives before the evidence that moves the fault earlier is not counted). With a
`TaskTracker` (fed each event before the model): `pending_at_switch` is its
pending count when the (last) switch is applied; `duplicated` is the increase of
its duplicated count since the incident opened; `lost` is its lost count at the
close, read as it will stand once ``lost_after`` has passed since its resume
(the tracker's guard against calling a draining backlog lost) — at the close the
tracker usually has not reached that time yet, and would answer 0.
**Results at risk**: tasks (counted once per task id, at most `MAX_AT_RISK`)
whose ``succeeded`` event was read via a former master (`TaskEvent.via`) at or
after the switch away from it and before it was demoted (or became master again):
their results were written to a node that discards them when it resyncs.

**Users** (HTTP probes: `ProbeResult` whose ``probe`` starts with ``http``; they
concern every master, since nothing says which one the application uses).
``user_resumed`` is the first successful probe (``ok``) with ``ts >=`` the (last)
switch, of any probe; ``user_gap_s`` = user_resumed − switched. ``user_failed`` is
when the users' failures began: for each failed probe at or after the fault (and
before the users' resume, when known), the start of that probe's run of failures
(its first failure since its last success), the earliest of them: a crash fails the
users before Sentinel notices, so it may be earlier than the fault. Runs still under
way when the incident opens count too. A probe failing since long before the fault
makes it that early (the users were failing then: the report shows when).
``user_outage_s`` = user_resumed − user_failed; None when no probe failed. A failed
probe is **not** evidence of a fault: it never opens an incident, never moves the
fault and never keeps one open (an application fails for many reasons that are not a
failover, and a probe that never succeeds must not hold the close); the close rule
does not wait for the users either. Probes seen before the switch arrives (at most
`RECENT_WORK` successes) still count for it, as work does. While an incident is open,
once any HTTP probe has reported, a users' gap not reached yet ticks (``user_gap_s``
and, after a failure, ``user_outage_s`` in `counting`); `IncidentReport.http_probed`
says whether probes ran at all (the reports say nothing about users otherwise).

**Prometheus.** ``prometheus_seen`` is the first `PrometheusObserved` (its `ts`:
when hawatch got the answer) at or after the (last) switch whose `address` is the new
master of that master name; ``prometheus_lag_s`` = prometheus_seen − switched: how
far the scraped view lagged behind the live one. While open, once Prometheus has been
queried (`PrometheusObserved` or `PrometheusUnreachable`), it ticks until seen
(``prometheus_lag_s`` in `counting`). `IncidentReport.prometheus_watched` says whether
Prometheus was queried at all. The close does not wait for it.

**Late figures.** Both may come after the close (a scrape interval longer than the
calm before the close; users who resume after the workers): for `late_wait` seconds
after its close, the last closed incident of a master that switched still takes its
first users' resume and Prometheus's view of its new master, if it had none. Its
report in the history is replaced by one with the figure, and an `IncidentUpdate`
(status ``closed``, `reached` None) says so. A new incident of the same master ends
that wait.

**Blind windows.** `BrokerDisconnected`/`BrokerConnected` (the Celery-side
sources) while an incident is open, or a window still open when it opens, are kept
in it (the most recent `MAX_BLIND_WINDOWS`).

**Bounded.** At most one open incident per master name; `max_history` closed
ones; per incident at most `MAX_SWITCHES` switches, `MAX_WORKERS` resumed
workers, `MAX_BLIND_WINDOWS` windows and `MAX_AT_RISK` task ids; a ring of the
`RECENT_WORK` latest work events (and HTTP successes); `RECENT_PROMETHEUS`
Prometheus answers; the failure runs of `MAX_PROBES` HTTP probes; role evidence for
`MAX_ADDRESSES` addresses (`MAX_ROLE_RUNS` changes each) and `MAX_NAMES` master names
(and as many closed incidents waiting for late figures). Events that are not
`Event` instances, or whose time is not a finite number, are ignored, as are
event types the model has no use for (`IncidentUpdate` included), so the whole
stream can be fed in.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from hawatch.core.cluster import format_address
from hawatch.core.events import (
    BlindInfo,
    BrokerConnected,
    BrokerDisconnected,
    Event,
    FailoverRequested,
    IncidentUpdate,
    MasterObserved,
    NodeObserved,
    NodeUnreachable,
    ProbeResult,
    PrometheusObserved,
    PrometheusUnreachable,
    SentinelMessage,
    SwitchInfo,
    TaskEvent,
)
from hawatch.core.tasks import TaskTracker

__all__ = [
    "PHASES",
    "IncidentModel",
    "IncidentReport",
    "IncidentsSnapshot",
]

#: The phases of an incident, in order.
PHASES: tuple[str, ...] = (
    "fault",
    "detected",
    "elected",
    "switched",
    "resumed",
    "demoted",
    "closed",
)
#: Workers whose first resume is kept per incident (the first to resume).
MAX_WORKERS = 1_000
#: Switches kept per incident (the first and the most recent).
MAX_SWITCHES = 50
#: Blind windows kept per incident (the most recent).
MAX_BLIND_WINDOWS = 100
#: Task ids kept per incident for the results at risk.
MAX_AT_RISK = 10_000
#: Work events kept for switches that arrive after them.
RECENT_WORK = 1_000
#: Switches kept aside per master name until their ``old`` becomes current.
MAX_ORPHANS = 8
#: Addresses whose role changes and down state are kept (the least recent goes first).
MAX_ADDRESSES = 1_000
#: Role changes kept per address.
MAX_ROLE_RUNS = 16
#: Master names whose current address, epoch and incident numbers are kept.
MAX_NAMES = 10_000
#: HTTP probes (by name) whose current run of failures is kept.
MAX_PROBES = 1_000
#: Prometheus answers kept for switches that arrive after them.
RECENT_PROMETHEUS = 256
#: The prefix of an HTTP probe's `ProbeResult.probe`.
HTTP_PROBE_PREFIX = "http"

_ABORTS = {
    "-failover-abort-not-elected": "the sentinel was not elected leader",
    "-failover-abort-no-good-slave": "no replica could be promoted",
    "-failover-abort-slave-timeout": "the promoted replica did not become master in time",
}
_WORK_STATES = frozenset({"started", "succeeded"})
_COMPLETED = frozenset({"succeeded", "failed"})


@dataclass(frozen=True, slots=True)
class IncidentReport:
    """One incident, everything known about it: what `IncidentUpdate` carries, plus the
    first resume of each worker and which figures are still counting.

    For an open incident the figures are those at the time the report was made
    (`IncidentModel.snapshot`'s `now`, or the latest event time for
    `IncidentModel.reports`); `counting` names those still ticking.
    """

    id: str
    master: str
    status: str
    """``open`` or ``closed``."""
    old_master: str | None
    new_master: str | None
    fault: float | None
    detected: float | None
    elected: float | None
    switched: float | None
    resumed: float | None
    demoted: float | None
    closed: float | None
    gap_s: float | None
    outage_s: float | None
    split_brain_s: float | None
    sent: int
    completed: int
    pending_at_switch: int | None
    lost: int | None
    duplicated: int | None
    results_at_risk: int | None
    blind_windows: tuple[BlindInfo, ...]
    switches: tuple[SwitchInfo, ...]
    aborted: bool
    note: str | None
    workers: tuple[tuple[str, float], ...] = ()
    """(hostname, first started/succeeded at or after the switch), earliest first."""
    counting: tuple[str, ...] = ()
    """The figures still ticking (``gap_s``, ``outage_s``, ``split_brain_s``,
    ``user_gap_s``, ``user_outage_s``, ``prometheus_lag_s``); empty when they are final."""
    at_risk_ids: tuple[str, ...] = ()
    """The task ids counted in `results_at_risk` (at most `MAX_AT_RISK`), by completion time."""
    user_resumed: float | None = None
    """The first successful HTTP probe at or after the (last) switch (module docstring,
    "Users")."""
    user_gap_s: float | None = None
    """user_resumed − switched."""
    user_failed: float | None = None
    """When the HTTP probes' failures began (may be before the fault)."""
    user_outage_s: float | None = None
    """user_resumed − user_failed; None when no probe failed."""
    prometheus_seen: float | None = None
    """When Prometheus first showed the new master (module docstring, "Prometheus")."""
    prometheus_lag_s: float | None = None
    """prometheus_seen − switched."""
    http_probed: bool = False
    """HTTP probes reported in this session: the user_* figures apply."""
    prometheus_watched: bool = False
    """Prometheus was queried in this session: the prometheus_* figures apply."""

    @property
    def phases(self) -> dict[str, float | None]:
        """Each phase (`PHASES`) and its time, None when not reached."""
        return {name: getattr(self, name) for name in PHASES}

    def to_update(self, ts: float, reached: str | None) -> IncidentUpdate:
        """The event that publishes this report (figures still counting left out)."""
        ticking = set(self.counting)
        return IncidentUpdate(
            ts=ts,
            id=self.id,
            master=self.master,
            status=self.status,
            reached=reached,
            old_master=self.old_master,
            new_master=self.new_master,
            fault=self.fault,
            detected=self.detected,
            elected=self.elected,
            switched=self.switched,
            resumed=self.resumed,
            demoted=self.demoted,
            closed=self.closed,
            gap_s=None if "gap_s" in ticking else self.gap_s,
            outage_s=None if "outage_s" in ticking else self.outage_s,
            split_brain_s=None if "split_brain_s" in ticking else self.split_brain_s,
            sent=self.sent,
            completed=self.completed,
            pending_at_switch=self.pending_at_switch,
            lost=self.lost,
            duplicated=self.duplicated,
            results_at_risk=self.results_at_risk,
            blind_windows=self.blind_windows,
            switches=self.switches,
            aborted=self.aborted,
            note=self.note,
            user_resumed=self.user_resumed,
            user_gap_s=None if "user_gap_s" in ticking else self.user_gap_s,
            user_failed=self.user_failed,
            user_outage_s=None if "user_outage_s" in ticking else self.user_outage_s,
            prometheus_seen=self.prometheus_seen,
            prometheus_lag_s=None if "prometheus_lag_s" in ticking else self.prometheus_lag_s,
            http_probed=self.http_probed,
            prometheus_watched=self.prometheus_watched,
        )

    def to_dict(self) -> dict[str, Any]:
        """The drill report's JSON shape (Unix seconds; None where unknown).

        ``user_resumed``, ``user_gap_s``, ``user_failed`` and ``user_outage_s`` only when
        HTTP probes ran (`http_probed`); ``prometheus_seen`` and ``prometheus_lag_s`` only
        when Prometheus was queried (`prometheus_watched`).
        """
        data: dict[str, Any] = {
            "id": self.id,
            "master": self.master,
            "status": self.status,
            "old_master": self.old_master,
            "new_master": self.new_master,
            "phases": self.phases,
            "gap_s": self.gap_s,
            "outage_s": self.outage_s,
            "split_brain_s": self.split_brain_s,
            "tasks": {
                "sent": self.sent,
                "completed": self.completed,
                "lost": self.lost,
                "duplicated": self.duplicated,
                "pending_at_switch": self.pending_at_switch,
                "results_at_risk": self.results_at_risk,
            },
            "blind_windows": [
                {"start": b.start, "end": b.end, "source": b.source, "reason": b.reason}
                for b in self.blind_windows
            ],
            "switches": [{"ts": s.ts, "old": s.old, "new": s.new} for s in self.switches],
            "workers_resumed": dict(self.workers),
            "aborted": self.aborted,
            "note": self.note,
            "counting": list(self.counting),
            "results_at_risk_ids": list(self.at_risk_ids),
        }
        if self.http_probed:
            data["user_resumed"] = self.user_resumed
            data["user_gap_s"] = self.user_gap_s
            data["user_failed"] = self.user_failed
            data["user_outage_s"] = self.user_outage_s
        if self.prometheus_watched:
            data["prometheus_seen"] = self.prometheus_seen
            data["prometheus_lag_s"] = self.prometheus_lag_s
        return data


@dataclass(frozen=True, slots=True)
class IncidentsSnapshot:
    """The incidents at one moment, for the views: immutable."""

    now: float
    open: tuple[IncidentReport, ...]
    """At most one per master, by master name, with live figures at `now`."""
    history: tuple[IncidentReport, ...]
    """Closed incidents, oldest first (newest last), at most `max_history`."""

    def for_master(self, name: str) -> IncidentReport | None:
        """The open incident of master `name`, or None."""
        for report in self.open:
            if report.master == name:
                return report
        return None


class _Switch:
    __slots__ = ("exact", "new", "old", "ts")

    def __init__(self, ts: float, old: str | None, new: str, exact: bool) -> None:
        self.ts = ts
        self.old = old
        self.new = new
        self.exact = exact
        """From ``+switch-master`` (else from the topology: `old` is hawatch's guess)."""


class _Work:
    """A started/succeeded task or canary event, kept for switches that arrive later."""

    __slots__ = ("succeeded", "ts", "uuid", "via", "worker")

    def __init__(
        self, ts: float, worker: str | None, uuid: str | None, via: str | None, succeeded: bool
    ) -> None:
        self.ts = ts
        self.worker = worker
        self.uuid = uuid
        self.via = via
        self.succeeded = succeeded


class _Incident:
    """One incident while it is open; `IncidentModel._report` turns it into a report."""

    __slots__ = (
        "abort_reason",
        "blind",
        "completed",
        "detected",
        "dup_base",
        "elected",
        "fault",
        "id",
        "last_abort",
        "last_attempt",
        "last_down",
        "last_evidence",
        "last_probe_fail",
        "master",
        "old_master",
        "pending_at_switch",
        "prom_for",
        "prom_seen",
        "resumed",
        "risk",
        "sent",
        "switches",
        "timed_out",
        "up",
        "user_failed",
        "user_resumed",
        "work_after_fail",
        "workers",
    )

    def __init__(self, id: str, master: str, ts: float, old_master: str | None) -> None:
        self.id = id
        self.master = master
        self.fault = ts
        self.detected: float | None = None
        self.elected: float | None = None
        self.resumed: float | None = None
        self.switches: list[_Switch] = []
        self.old_master = old_master
        self.last_evidence = ts
        self.last_down: float | None = None
        """The latest ``+sdown``/``+odown`` on the master."""
        self.up: float | None = None
        """The first ``-sdown``/``-odown`` at or after `last_down`."""
        self.last_attempt: float | None = None
        self.last_abort: float | None = None
        self.abort_reason: str | None = None
        self.timed_out = False
        self.last_probe_fail: float | None = None
        self.work_after_fail: float | None = None
        self.workers: dict[str, float] = {}
        self.sent = 0
        self.completed = 0
        self.pending_at_switch: int | None = None
        self.dup_base: int | None = None
        self.risk: dict[str, tuple[float, str]] = {}
        """Task id → (earliest succeeded time, via) read via a former master."""
        self.blind: deque[BlindInfo] = deque(maxlen=MAX_BLIND_WINDOWS)
        self.user_resumed: float | None = None
        """The first successful HTTP probe at or after the last switch."""
        self.user_failed: float | None = None
        """The earliest start of a run of HTTP probe failures under way in the incident."""
        self.prom_seen: float | None = None
        """The first Prometheus answer naming the new master at or after the last switch."""
        self.prom_for: str | None = None
        """The new master `prom_seen` was seen for."""

    @property
    def switched(self) -> float | None:
        return self.switches[-1].ts if self.switches else None

    @property
    def new_master(self) -> str | None:
        return self.switches[-1].new if self.switches else None

    def evidence(self, ts: float) -> None:
        """Evidence of the fault at `ts`: the fault is no later, the calm no earlier."""
        self.fault = min(self.fault, ts)
        self.last_evidence = max(self.last_evidence, ts)


def _finite(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _min(a: float | None, b: float) -> float:
    return b if a is None else min(a, b)


class IncidentModel:
    """Failover incidents folded from the event stream: phases, gap, outage, split brain.

    Feed it every event with `apply` (after the `TaskTracker`, when one is given),
    call `tick` about once a second, read it with `snapshot` or `reports`. Pure and
    clock-free (see the module docstring for the rules); not thread-safe.
    """

    def __init__(
        self,
        *,
        tracker: TaskTracker | None = None,
        stable_after: float = 10.0,
        max_history: int = 100,
        broker_master: str | None = None,
        demote_wait: float = 60.0,
        work_observed: bool = True,
        late_wait: float = 120.0,
    ) -> None:
        """`broker_master`: the master name the Celery side uses (settable later);
        `demote_wait`: how long after a switch to wait for the old master's demotion;
        `work_observed`: False when no Celery-side source runs (no resume to wait for);
        `late_wait`: how long after its close an incident still takes the users' resume
        and Prometheus's view (module docstring, "Late figures")."""
        if not _finite(stable_after) or stable_after < 0:
            raise ValueError("stable_after must be a finite number of seconds, at least 0")
        if not _finite(demote_wait) or demote_wait < 0:
            raise ValueError("demote_wait must be a finite number of seconds, at least 0")
        if not _finite(late_wait) or late_wait < 0:
            raise ValueError("late_wait must be a finite number of seconds, at least 0")
        if isinstance(max_history, bool) or not isinstance(max_history, int) or max_history < 0:
            raise ValueError("max_history must be a whole number, at least 0")
        self.tracker = tracker
        self.stable_after = float(stable_after)
        self.demote_wait = float(demote_wait)
        self.late_wait = float(late_wait)
        self.max_history = max_history
        self.broker_master = broker_master
        """The master name whose incidents the Celery side (tasks, canary, blind
        windows) speaks for; None: every master (a probe: the only one known)."""
        self.work_observed = work_observed
        self._open: dict[str, _Incident] = {}
        self._history: deque[IncidentReport] = deque(maxlen=max_history)
        self._seq: OrderedDict[str, int] = OrderedDict()
        self._closed_at: OrderedDict[str, float] = OrderedDict()
        self._current: OrderedDict[str, str] = OrderedDict()
        """Each name's master address, from switches and the topology only."""
        self._epochs: OrderedDict[str, int] = OrderedDict()
        self._orphans: OrderedDict[str, list[_Switch]] = OrderedDict()
        self._silent: OrderedDict[str, _Switch] = OrderedDict()
        """Per name: a switch the topology showed while no incident was open."""
        self._roles: OrderedDict[str, list[tuple[float, bool]]] = OrderedDict()
        """Per address: (since, is replica) runs, by time."""
        self._down: OrderedDict[str, tuple[float, bool]] = OrderedDict()
        """Per address: the latest evidence of it being down (True) or up, and its time."""
        self._blind_open: dict[str, BlindInfo] = {}
        self._work: deque[_Work] = deque(maxlen=RECENT_WORK)
        self._deadlines: dict[str, float | None] = {}
        """Per open incident: its close deadline when last computed (end of an `apply`)."""
        self._now = -math.inf
        self._http_runs: OrderedDict[str, float | None] = OrderedDict()
        """Per HTTP probe: the first failure of its current run of failures (None: its
        latest result was a success)."""
        self._http_oks: deque[float] = deque(maxlen=RECENT_WORK)
        """The times of the latest successful HTTP probes, for switches that arrive later."""
        self._prom_recent: deque[tuple[float, str, str]] = deque(maxlen=RECENT_PROMETHEUS)
        """The latest Prometheus answers: (time, master name, master address)."""
        self._http_watched = False
        self._prom_watched = False
        self._late: OrderedDict[str, IncidentReport] = OrderedDict()
        """Per master: its last closed incident with a switch, while it takes late figures."""
        self._amended: list[IncidentUpdate] = []
        """Updates for closed incidents given a late figure, until `apply` returns them."""

    # -- input -----------------------------------------------------------------------

    def apply(self, event: object) -> list[IncidentUpdate]:
        """Fold one event in; the updates it caused (phases reached, closes), in order.

        Never raises on bad input: events it cannot use are ignored.
        """
        if not isinstance(event, Event) or isinstance(event, IncidentUpdate):
            return []
        ts = event.ts
        if not _finite(ts):
            return []
        ts = float(ts)
        self._now = max(self._now, ts)
        # Nothing changed since the last call computed the deadlines: reuse them.
        updates = self._close_due(ts, cached=True)
        if isinstance(event, TaskEvent) and not (
            isinstance(event.state, str) and event.state in _WORK_STATES
        ):
            self._task(event, ts)  # counts only: no phase, no deadline moves
            return updates
        before = {name: self._signature(inc) for name, inc in self._open.items()}
        if isinstance(event, SentinelMessage):
            self._message(event, ts)
        elif isinstance(event, TaskEvent):
            self._task(event, ts)
        elif isinstance(event, ProbeResult):
            self._probe(event, ts)
        elif isinstance(event, FailoverRequested):
            name = _text(event.master)
            if name is not None and event.accepted is True:
                self._note_name(name)
                inc = self._incident(name, ts, open_=True)
                if inc is not None:
                    inc.evidence(ts)
                    self._attempt(inc, ts)
        elif isinstance(event, MasterObserved):
            self._observed(event, ts)
        elif isinstance(event, NodeObserved):
            address = _text(event.address)
            if address is not None and event.role in ("master", "slave"):
                self._note_down(address, ts, False)
                self._note_role(address, ts, event.role == "slave")
        elif isinstance(event, NodeUnreachable):
            address = _text(event.address)
            if address is not None:
                self._note_down(address, ts, True)
        elif isinstance(event, BrokerDisconnected):
            self._disconnected(event, ts)
        elif isinstance(event, BrokerConnected):
            self._connected(event, ts)
        elif isinstance(event, PrometheusObserved):
            self._prometheus(event, ts)
        elif isinstance(event, PrometheusUnreachable):
            self._prom_watched = True
        updates.extend(self._changes(before, ts))
        updates.extend(self._close_due(ts))
        if self._amended:
            updates.extend(self._amended)
            self._amended.clear()
        return updates

    def tick(self, now: float) -> list[IncidentUpdate]:
        """Close the incidents stable since `now` (their close time is the deadline itself)."""
        if not _finite(now):
            return []
        self._now = max(self._now, float(now))
        return self._close_due(float(now))

    # -- output ----------------------------------------------------------------------

    def snapshot(self, now: float) -> IncidentsSnapshot:
        """Open incidents with live figures at `now`, and the closed ones (newest last)."""
        now = float(now) if _finite(now) else self._now
        opened = tuple(self._live(self._open[name], now) for name in sorted(self._open))
        return IncidentsSnapshot(now=now, open=opened, history=tuple(self._history))

    def reports(self) -> tuple[IncidentReport, ...]:
        """Every incident kept, closed and open, by fault time; the open ones with their
        figures at the latest time the model has seen (counting, see `counting`)."""
        opened = [self._live(inc, self._now) for inc in self._open.values()]
        return tuple(sorted([*self._history, *opened], key=lambda r: (r.fault or 0.0, r.id)))

    def _live(self, inc: _Incident, now: float) -> IncidentReport:
        tracked = None
        if self.tracker is not None and self._tasks_concern(inc.master):
            tracked = self._tracked(inc, now, settle=False)
        return self._report(inc, now, live=True, tracked=tracked)

    # -- sentinel side ---------------------------------------------------------------

    def _message(self, event: SentinelMessage, ts: float) -> None:
        channel = event.channel
        if not isinstance(channel, str):
            return
        name = _text(event.master)
        address = _text(event.address)
        if name is not None:
            self._note_name(name)
        if channel == "+switch-master":
            new = _text(event.new)
            if name is not None and new is not None:
                self._switch(name, _text(event.old), new, ts, exact=True)
            return
        if address is not None:
            if channel == "+sdown":
                self._note_down(address, ts, True)
            elif channel == "-sdown":
                self._note_down(address, ts, False)
            elif channel == "+convert-to-slave":
                self._note_role(address, ts, True)
            elif channel in ("+role-change", "-role-change") and isinstance(event.detail, str):
                said = event.detail.rsplit(" ", 1)[-1]
                if said in ("master", "slave"):
                    self._note_role(address, ts, said == "slave")
        if event.role != "master" or name is None or not self._about_master(name, address, ts):
            return
        if channel in ("+sdown", "+odown"):
            inc = self._incident(name, ts, open_=True, address=address)
            if inc is None:
                return
            inc.evidence(ts)
            if channel == "+odown":
                inc.detected = _min(inc.detected, ts)
            if inc.last_down is None or ts > inc.last_down:
                inc.last_down = ts
                if inc.up is not None and inc.up < ts:
                    inc.up = None
        elif channel in ("-sdown", "-odown"):
            inc = self._open.get(name)
            if inc is not None and inc.last_down is not None and ts >= inc.last_down:
                inc.up = _min(inc.up, ts)
        elif channel in ("+try-failover", "+elected-leader"):
            inc = self._incident(name, ts, open_=True, address=address)
            if inc is not None:
                inc.evidence(ts)
                inc.elected = _min(inc.elected, ts)
                self._attempt(inc, ts)
        elif channel.startswith("-failover-abort"):
            inc = self._incident(name, ts, open_=True, address=address)
            if inc is not None:
                inc.evidence(ts)
                if inc.last_abort is None or ts >= inc.last_abort:
                    inc.last_abort = ts
                    inc.abort_reason = _ABORTS.get(channel, channel)
        elif channel == "+failover-end-for-timeout":
            inc = self._open.get(name)
            if inc is not None:
                inc.timed_out = True

    @staticmethod
    def _attempt(inc: _Incident, ts: float) -> None:
        inc.last_attempt = ts if inc.last_attempt is None else max(inc.last_attempt, ts)

    def _about_master(self, name: str, address: str | None, ts: float) -> bool:
        """Whether a message about master `name` at `address` concerns the node that was
        its master at `ts` (a lagging sentinel still names the old one after a switch)."""
        if address is None:
            return True
        inc = self._open.get(name)
        expected = self._current.get(name)
        if inc is not None:
            expected = expected or inc.old_master
            for switch in inc.switches:
                if ts < switch.ts:
                    expected = switch.old or expected
                    break
            else:
                expected = inc.new_master or expected
        return expected is None or address == expected

    def _observed(self, event: MasterObserved, ts: float) -> None:
        """The topology: the current address at a higher config epoch is a switch."""
        name = _text(event.master)
        ip = event.ip
        port = event.port
        if name is None or not isinstance(ip, str) or not ip or isinstance(port, bool):
            return
        if not isinstance(port, int):
            return
        self._note_name(name)
        flags = event.flags if isinstance(event.flags, tuple) else ()
        if "failover_in_progress" in flags:
            return  # the leader shows the new epoch next to the old address
        address = format_address(ip, port)
        epoch = event.epoch
        known = self._epochs.get(name)
        current = self._current.get(name)
        if isinstance(epoch, int) and not isinstance(epoch, bool):
            if known is not None and epoch <= known:
                return
            _remember(self._epochs, name, epoch, MAX_NAMES)
            if known is not None and current is not None and address != current:
                if name in self._open:
                    self._switch(name, current, address, ts, exact=False)
                else:
                    # A switch no message announced (yet): remembered, in case one does.
                    _remember(self._current, name, address, MAX_NAMES)
                    _remember(self._silent, name, _Switch(ts, current, address, False), MAX_NAMES)
                return
        if current is None:
            _remember(self._current, name, address, MAX_NAMES)

    def _switch(self, name: str, old: str | None, new: str, ts: float, *, exact: bool) -> None:
        """A switch of `name` from `old` to `new` seen at `ts` (see "Several switches")."""
        current = self._current.get(name)
        inc = self._open.get(name)
        if new == current:
            if inc is not None and inc.switches and inc.switches[-1].new == new:
                self._copy(inc, old, ts, exact=exact)
                return
            silent = self._silent.get(name)
            if inc is None and exact and silent is not None and silent.new == new:
                # The topology showed this switch while no incident was open: the
                # message about it opens the incident, from the earlier of the two.
                del self._silent[name]
                self._apply_switch(name, old or silent.old, new, min(ts, silent.ts), exact)
            return
        if current is not None and old != current:
            if exact:
                orphans = self._orphans.get(name)
                if orphans is None:
                    orphans = []
                    _remember(self._orphans, name, orphans, MAX_NAMES)
                if not any((o.old, o.new) == (old, new) and o.ts <= ts for o in orphans):
                    orphans.append(_Switch(ts, old, new, exact))
                    del orphans[:-MAX_ORPHANS]
            return
        self._apply_switch(name, old, new, ts, exact)

    def _copy(self, inc: _Incident, old: str | None, ts: float, *, exact: bool) -> None:
        """Another copy (or the topology's view) of the incident's last switch."""
        last = inc.switches[-1]
        if exact and not last.exact and old is not None:
            last.old, last.exact = old, True
            if len(inc.switches) == 1:
                inc.old_master = old
        floor = inc.switches[-2].ts if len(inc.switches) > 1 else -math.inf
        if floor < ts < last.ts:
            last.ts = ts
            inc.evidence(ts)
            self._rescan(inc)

    def _apply_switch(self, name: str, old: str | None, new: str, ts: float, exact: bool) -> None:
        inc = self._incident(name, ts, open_=True, address=old)
        if inc is None:
            return  # evidence about an incident already closed, come late
        _remember(self._current, name, new, MAX_NAMES)
        self._silent.pop(name, None)
        inc.evidence(ts)
        if not inc.switches and old is not None:
            inc.old_master = old
        inc.switches.append(_Switch(ts, old, new, exact))
        if len(inc.switches) > MAX_SWITCHES:
            del inc.switches[1]
        self._note_role(new, ts, False)
        if old is not None:
            self._note_role(old, ts, False)
        if self.tracker is not None and self._tasks_concern(name):
            inc.pending_at_switch = self.tracker.snapshot(ts, limit=0).pending
        self._rescan(inc)
        # A switch that arrived before this one, its predecessor, now follows it.
        orphans = self._orphans.get(name)
        if orphans:
            keep = [o for o in orphans if o.ts >= ts]
            follow = next((o for o in keep if o.old == new), None)
            orphans[:] = [o for o in keep if o is not follow]
            if follow is not None:
                self._switch(name, follow.old, follow.new, follow.ts, exact=follow.exact)

    def _rescan(self, inc: _Incident) -> None:
        """After the last switch changed: the resume and the workers counted from it,
        with the recent work that arrived before the switch did."""
        switched = inc.switched
        if switched is None:
            return
        if inc.user_resumed is not None and inc.user_resumed < switched:
            inc.user_resumed = None
        for ok in self._http_oks:
            if ok >= switched:
                inc.user_resumed = _min(inc.user_resumed, ok)
        new = inc.new_master
        if inc.prom_seen is not None and (inc.prom_seen < switched or inc.prom_for != new):
            inc.prom_seen = inc.prom_for = None
        for seen, name, address in self._prom_recent:
            if seen >= switched and name == inc.master and _same_address(address, new):
                inc.prom_seen, inc.prom_for = _min(inc.prom_seen, seen), new
        if inc.resumed is not None and inc.resumed < switched:
            inc.resumed = None
        for worker in [w for w, at in inc.workers.items() if at < switched]:
            del inc.workers[worker]
        if not self._tasks_concern(inc.master):
            return
        for work in self._work:
            self._work_for(inc, work)

    # -- celery side -----------------------------------------------------------------

    def _task(self, event: TaskEvent, ts: float) -> None:
        state = event.state
        if not isinstance(state, str):
            return
        via = _text(event.via)
        worker = _text(event.worker)
        uuid = _text(event.uuid)
        concerned = [inc for inc in self._open.values() if self._tasks_concern(inc.master)]
        for inc in concerned:
            if ts >= inc.fault:
                if state == "sent":
                    inc.sent += 1
                elif state in _COMPLETED:
                    inc.completed += 1
        if state in _WORK_STATES:
            self._work_done(_Work(ts, worker, uuid, via, state == "succeeded"), concerned)

    def _probe(self, event: ProbeResult, ts: float) -> None:
        probe = event.probe
        if isinstance(probe, str) and probe.startswith(HTTP_PROBE_PREFIX):
            self._http(probe, event.ok is True, ts)
            return
        phase = event.phase if isinstance(event.phase, str) else None
        if event.ok is False and phase == "send-failed":
            name = self._probe_master()
            if name is None:
                return
            inc = self._incident(name, ts, open_=True)
            if inc is None:
                return
            inc.evidence(ts)
            if inc.last_probe_fail is None or ts > inc.last_probe_fail:
                inc.last_probe_fail = ts
                if inc.work_after_fail is not None and inc.work_after_fail < ts:
                    inc.work_after_fail = None
        # A canary's round trip (started, succeeded) is read from its task events, which
        # the model sees too, with the node they came through (`via`): they count there.

    def _http(self, probe: str, ok: bool, ts: float) -> None:
        """One HTTP probe's result: the users' resume, or their failure (never a fault)."""
        self._http_watched = True
        if ok:
            _remember(self._http_runs, probe, None, MAX_PROBES)
            self._http_oks.append(ts)
            for inc in self._open.values():
                switched = inc.switched
                if switched is not None and ts >= switched:
                    inc.user_resumed = _min(inc.user_resumed, ts)
            for name, report in list(self._late.items()):
                switched = report.switched
                if report.user_resumed is None and switched is not None and ts >= switched:
                    self._amend(name, ts, user_resumed=ts)
            return
        since = self._http_runs.get(probe)
        if since is None or since > ts:
            since = ts
        _remember(self._http_runs, probe, since, MAX_PROBES)
        for inc in self._open.values():
            if ts >= inc.fault and (inc.user_resumed is None or ts < inc.user_resumed):
                inc.user_failed = _min(inc.user_failed, since)

    def _prometheus(self, event: PrometheusObserved, ts: float) -> None:
        """Prometheus's view of one master: the first time it shows the new master."""
        self._prom_watched = True
        name = _text(event.master)
        address = _text(event.address)
        if name is None or address is None:
            return
        self._prom_recent.append((ts, name, address))
        inc = self._open.get(name)
        if inc is not None:
            switched = inc.switched
            new = inc.new_master
            if (
                switched is not None
                and ts >= switched
                and _same_address(address, new)
                and (inc.prom_seen is None or ts < inc.prom_seen)
            ):
                inc.prom_seen, inc.prom_for = ts, new
            return
        report = self._late.get(name)
        if (
            report is not None
            and report.prometheus_seen is None
            and report.switched is not None
            and ts >= report.switched
            and _same_address(address, report.new_master)
        ):
            self._amend(name, ts, prometheus_seen=ts)

    def _amend(
        self,
        name: str,
        ts: float,
        *,
        user_resumed: float | None = None,
        prometheus_seen: float | None = None,
    ) -> None:
        """Give the last closed incident of `name` a late figure (see "Late figures")."""
        report = self._late[name]
        closed = report.closed
        if closed is None or ts > closed + self.late_wait:
            del self._late[name]  # its wait is over
            return
        switched = report.switched
        assert switched is not None
        changes: dict[str, Any] = {
            "http_probed": self._http_watched or report.http_probed,
            "prometheus_watched": self._prom_watched or report.prometheus_watched,
        }
        if user_resumed is not None:
            changes["user_resumed"] = user_resumed
            changes["user_gap_s"] = max(0.0, user_resumed - switched)
            failed = report.user_failed
            if failed is not None and failed <= user_resumed:
                changes["user_outage_s"] = user_resumed - failed
        if prometheus_seen is not None:
            changes["prometheus_seen"] = prometheus_seen
            changes["prometheus_lag_s"] = max(0.0, prometheus_seen - switched)
        amended = replace(report, **changes)
        if amended.user_resumed is None or amended.prometheus_seen is None:
            self._late[name] = amended
        else:
            del self._late[name]  # nothing left to learn
        for index in range(len(self._history) - 1, -1, -1):
            if self._history[index].id == report.id:
                self._history[index] = amended
                break
        self._amended.append(amended.to_update(ts, None))

    def _work_done(self, work: _Work, concerned: list[_Incident]) -> None:
        self._work.append(work)
        for inc in concerned:
            self._work_for(inc, work)
            if inc.last_probe_fail is not None and work.ts >= inc.last_probe_fail:
                inc.work_after_fail = _min(inc.work_after_fail, work.ts)

    def _work_for(self, inc: _Incident, work: _Work) -> None:
        """What one piece of work says about an incident with a switch: resumed, at risk."""
        switched = inc.switched
        if switched is None:
            return
        ts = work.ts
        via = work.via
        # Work read from a former master (a split brain) is not the resume: its results
        # are lost when that node resyncs. Work from the current master, or of unknown
        # origin (journals without `via`), is.
        former = (
            via is not None
            and via != inc.switches[-1].new
            and any(s.old == via for s in inc.switches)
        )
        if ts >= switched and not former:
            inc.resumed = _min(inc.resumed, ts)
            worker = work.worker
            if worker is not None:
                known = inc.workers.get(worker)
                if known is None:
                    if len(inc.workers) < MAX_WORKERS:
                        inc.workers[worker] = ts
                elif ts < known:
                    inc.workers[worker] = ts
        uuid = work.uuid
        if (
            work.succeeded
            and via is not None
            and uuid is not None
            and any(s.old == via and ts >= s.ts for s in inc.switches)
        ):
            known_risk = inc.risk.get(uuid)
            if known_risk is None:
                if len(inc.risk) < MAX_AT_RISK:
                    inc.risk[uuid] = (ts, via)
            elif ts < known_risk[0]:
                inc.risk[uuid] = (ts, via)

    def _disconnected(self, event: BrokerDisconnected, ts: float) -> None:
        source = _text(event.source)
        if source is None or source in self._blind_open:
            return
        reason = event.reason if isinstance(event.reason, str) else ""
        window = BlindInfo(ts, None, source, reason)
        self._blind_open[source] = window
        for inc in self._open.values():
            if self._tasks_concern(inc.master, blind=True):
                inc.blind.append(window)

    def _connected(self, event: BrokerConnected, ts: float) -> None:
        source = _text(event.source)
        window = None if source is None else self._blind_open.pop(source, None)
        if window is None:
            return
        closed = BlindInfo(window.start, max(ts, window.start), window.source, window.reason)
        for inc in self._open.values():
            for index, held in enumerate(inc.blind):
                if held is window:
                    inc.blind[index] = closed

    def _tasks_concern(self, name: str, *, blind: bool = False) -> bool:
        """Whether the Celery side speaks for master `name`."""
        if not self.work_observed and not blind:
            return False
        return self.broker_master is None or self.broker_master == name

    def _probe_master(self) -> str | None:
        if self.broker_master is not None:
            return self.broker_master
        if len(self._seq) == 1:
            return next(iter(self._seq))
        return None

    # -- addresses -------------------------------------------------------------------

    def _note_name(self, name: str) -> None:
        if name not in self._seq:
            _remember(self._seq, name, 0, MAX_NAMES)

    def _note_down(self, address: str, ts: float, down: bool) -> None:
        known = self._down.get(address)
        if known is None or ts >= known[0]:
            _remember(self._down, address, (ts, down), MAX_ADDRESSES)

    def _is_down(self, address: str) -> bool:
        known = self._down.get(address)
        return known is not None and known[1]

    def _note_role(self, address: str, ts: float, replica: bool) -> None:
        """Evidence that `address` was a replica (or a master) at `ts`, kept as runs."""
        runs = self._roles.get(address)
        if runs is None:
            runs = []
            _remember(self._roles, address, runs, MAX_ADDRESSES)
        else:
            self._roles.move_to_end(address)
        index = bisect.bisect_right(runs, (ts, True))
        if index > 0 and runs[index - 1][1] == replica:
            return  # the run it belongs to started earlier
        if index < len(runs) and runs[index][1] == replica:
            runs[index] = (ts, replica)  # the next run started earlier than known
        else:
            runs.insert(index, (ts, replica))
        if len(runs) > MAX_ROLE_RUNS:
            del runs[0]

    def _demotion(self, address: str, since: float) -> float | None:
        """When `address` was first seen a replica at or after `since`."""
        for start, replica in self._roles.get(address, ()):
            if replica and start >= since:
                return start
        return None

    def _windows(self, inc: _Incident) -> list[tuple[str, float, float | None]]:
        """Per switch: (its old master, the switch, when that node stopped taking writes
        — its demotion or its return as master — or None while it may still)."""
        windows: list[tuple[str, float, float | None]] = []
        switches = inc.switches
        for index, switch in enumerate(switches):
            old = switch.old
            if old is None:
                continue
            end = self._demotion(old, switch.ts)
            back = next((s.ts for s in switches[index + 1 :] if s.new == old), None)
            if back is not None:
                end = back if end is None else min(end, back)
            windows.append((old, switch.ts, end))
        return windows

    def _demoted(self, inc: _Incident) -> float | None:
        """The old master's demotion after the first switch away from it."""
        if not inc.switches:
            return None
        first = inc.switches[0]
        if first.old is None:
            return None
        return self._demotion(first.old, first.ts)

    # -- incidents -------------------------------------------------------------------

    def _incident(
        self, name: str, ts: float, *, open_: bool, address: str | None = None
    ) -> _Incident | None:
        """The open incident of `name`; with `open_`, a new one if none is open (unless
        `ts` is not after the last close: evidence about that incident, come late)."""
        inc = self._open.get(name)
        if inc is not None:
            if inc.old_master is None and not inc.switches and address is not None:
                inc.old_master = address
            return inc
        if not open_:
            return None
        closed_at = self._closed_at.get(name)
        if closed_at is not None and ts <= closed_at:
            return None
        number = self._seq.get(name, 0) + 1
        _remember(self._seq, name, number, MAX_NAMES)
        self._late.pop(name, None)
        inc = _Incident(f"{name}-{number}", name, ts, self._current.get(name) or address)
        for since in self._http_runs.values():
            if since is not None:  # the users were failing when it opened
                inc.user_failed = _min(inc.user_failed, since)
        if self._tasks_concern(name, blind=True):
            inc.blind.extend(self._blind_open.values())
        if self.tracker is not None and self._tasks_concern(name):
            inc.dup_base = self.tracker.snapshot(ts, limit=0).duplicated
        self._open[name] = inc
        return inc

    def _back(self, inc: _Incident) -> float | None:
        """When the master of an incident without a switch was back (see "No failover")."""
        if inc.switches:
            return None
        if inc.last_down is not None:
            return inc.up
        if inc.last_attempt is not None:
            if inc.last_abort is not None and inc.last_abort >= inc.last_attempt:
                return inc.last_abort
            return None
        if inc.last_abort is not None:
            return inc.last_abort
        return inc.work_after_fail

    def _deadline(self, inc: _Incident) -> tuple[float | None, list[str]]:
        """When the incident closes if nothing else happens (None: not yet decidable),
        and the former masters it stops waiting for."""
        stable = self.stable_after
        switched = inc.switched
        if switched is None:
            back = self._back(inc)
            if back is None:
                return None, []
            return max(back, inc.last_evidence) + stable, []
        if self._tasks_concern(inc.master):
            if inc.resumed is None:
                return None, []
            deadline = max(inc.resumed, inc.last_evidence) + stable
        else:
            deadline = max(switched, inc.last_evidence) + stable
        current = inc.new_master
        given_up: list[str] = []
        for old, start, end in self._windows(inc):
            if old == current:
                continue
            if end is not None:
                deadline = max(deadline, end + stable)
            elif not self._is_down(old):
                limit = start + self.demote_wait
                deadline = max(deadline, limit)
                given_up.append(old)
        return deadline, given_up

    def _close_due(self, now: float, *, cached: bool = False) -> list[IncidentUpdate]:
        """Close the incidents whose deadline is `now` or earlier; with `cached`, only
        look at those whose deadline, when last computed, was."""
        updates: list[IncidentUpdate] = []
        for name in list(self._open):
            inc = self._open[name]
            if cached:
                known = self._deadlines.get(name)
                if known is None or now < known:
                    continue
            deadline, given_up = self._deadline(inc)
            self._deadlines[name] = deadline
            if deadline is None or now < deadline:
                continue
            tracked = None
            if self.tracker is not None and self._tasks_concern(name):
                tracked = self._tracked(inc, deadline, settle=True)
            report = self._report(inc, deadline, live=False, tracked=tracked)
            note = report.note
            if given_up:
                where = ", ".join(sorted(set(given_up)))
                words = (
                    f"the old master {where} was not seen demoted within "
                    f"{self.demote_wait:g} s of the switch: writes sent to it may be lost."
                )
                note = words if note is None else f"{note} {words}"
            report = replace(report, status="closed", closed=deadline, note=note)
            del self._open[name]
            del self._deadlines[name]
            if self.max_history > 0:
                self._history.append(report)
            _remember(self._closed_at, name, deadline, MAX_NAMES)
            if report.switched is not None and (
                report.user_resumed is None or report.prometheus_seen is None
            ):
                _remember(self._late, name, report, MAX_NAMES)
            updates.append(report.to_update(now, "closed"))
        return updates

    def _tracked(self, inc: _Incident, now: float, *, settle: bool) -> tuple[int | None, int]:
        """The tracker's figures for `inc` at `now`: (duplicated since it opened, lost).

        With `settle`, lost as it will stand once ``lost_after`` has passed since the
        tracker's resume (module docstring, "Tasks").
        """
        tracker = self.tracker
        if tracker is None:
            return None, 0
        snap = tracker.snapshot(now, limit=0)
        lost = snap.lost
        resumed = snap.resumed_at
        if settle and resumed is not None and now < resumed + snap.lost_after:
            lost = tracker.snapshot(resumed + snap.lost_after, limit=0).lost
        duplicated = None if inc.dup_base is None else max(0, snap.duplicated - inc.dup_base)
        return duplicated, lost

    def _report(
        self,
        inc: _Incident,
        now: float,
        *,
        live: bool,
        tracked: tuple[int | None, int] | None = None,
    ) -> IncidentReport:
        """The open incident at `now`: with `live`, the figures still ticking at `now`
        too (named in `counting`); else the final ones only. `tracked`: `_tracked`."""
        concerned = self._tasks_concern(inc.master)
        switched = inc.switched
        counting: list[str] = []
        gap = outage = split = None
        if switched is not None:
            if concerned and inc.resumed is not None:
                gap = inc.resumed - switched
                outage = inc.resumed - inc.fault
            elif concerned and live:
                gap = max(0.0, now - switched)
                outage = max(0.0, now - inc.fault)
                counting += ["gap_s", "outage_s"]
        else:
            back = self._back(inc)
            if back is not None:
                outage = max(0.0, back - inc.fault)
            elif live:
                outage = max(0.0, now - inc.fault)
                counting.append("outage_s")
        user_gap = user_outage = prom_lag = None
        if switched is not None:
            if inc.user_resumed is not None:
                user_gap = max(0.0, inc.user_resumed - switched)
                if inc.user_failed is not None and inc.user_failed <= inc.user_resumed:
                    user_outage = inc.user_resumed - inc.user_failed
            elif live and self._http_watched:
                user_gap = max(0.0, now - switched)
                counting.append("user_gap_s")
                if inc.user_failed is not None:
                    user_outage = max(0.0, now - inc.user_failed)
                    counting.append("user_outage_s")
            if inc.prom_seen is not None:
                prom_lag = max(0.0, inc.prom_seen - switched)
            elif live and self._prom_watched:
                prom_lag = max(0.0, now - switched)
                counting.append("prometheus_lag_s")
        demoted = self._demoted(inc)
        if demoted is not None:
            split = max(0.0, demoted - inc.switches[0].ts)
        elif live and inc.switches:
            old = inc.switches[0].old
            if old is not None and old != inc.new_master and not self._is_down(old):
                split = max(0.0, now - inc.switches[0].ts)
                counting.append("split_brain_s")
        risk: int | None = None
        at_risk: list[tuple[float, str]] = []
        if concerned and inc.switches:
            windows: dict[str, list[tuple[float, float | None]]] = {}
            for old, start, end in self._windows(inc):
                windows.setdefault(old, []).append((start, end))
            at_risk = sorted(
                (ts, uuid)
                for uuid, (ts, via) in inc.risk.items()
                if any(
                    start <= ts and (end is None or ts < end) for start, end in windows.get(via, ())
                )
            )
            risk = len(at_risk)
        duplicated = lost = None
        if concerned and tracked is not None:
            duplicated = tracked[0]
            lost = tracked[1] if switched is not None else None
        aborted = inc.last_abort is not None and (switched is None or inc.last_abort > switched)
        return IncidentReport(
            id=inc.id,
            master=inc.master,
            status="open",
            old_master=inc.old_master,
            new_master=inc.new_master,
            fault=inc.fault,
            detected=inc.detected,
            elected=inc.elected,
            switched=switched,
            resumed=inc.resumed if switched is not None else None,
            demoted=demoted,
            closed=None,
            gap_s=gap,
            outage_s=outage,
            split_brain_s=split,
            sent=inc.sent if concerned else 0,
            completed=inc.completed if concerned else 0,
            pending_at_switch=inc.pending_at_switch if concerned else None,
            lost=lost,
            duplicated=duplicated,
            results_at_risk=risk,
            blind_windows=tuple(inc.blind),
            switches=tuple(SwitchInfo(s.ts, s.old, s.new) for s in inc.switches),
            aborted=aborted,
            note=self._note(inc, aborted, concerned),
            workers=tuple(sorted(inc.workers.items(), key=lambda item: (item[1], item[0]))),
            counting=tuple(counting),
            at_risk_ids=tuple(uuid for _, uuid in at_risk),
            user_resumed=inc.user_resumed if switched is not None else None,
            user_gap_s=user_gap,
            user_failed=inc.user_failed,
            user_outage_s=user_outage,
            prometheus_seen=inc.prom_seen if switched is not None else None,
            prometheus_lag_s=prom_lag,
            http_probed=self._http_watched,
            prometheus_watched=self._prom_watched,
        )

    def _note(self, inc: _Incident, aborted: bool, concerned: bool) -> str | None:
        words: list[str] = []
        if inc.abort_reason is not None:
            if aborted:
                words.append(f"failover aborted: {inc.abort_reason}.")
            else:
                words.append(
                    f"a failover attempt aborted ({inc.abort_reason}) before a switch happened."
                )
        if inc.timed_out:
            words.append(
                "the failover timed out reconfiguring the replicas: some may still "
                "replicate from the old master."
            )
        if not inc.switches:
            if self._back(inc) is not None:
                if inc.last_down is None and inc.last_attempt is None and inc.last_abort is None:
                    words.append("the canary recovered without a failover.")
                else:
                    words.append("master came back without a failover.")
        elif not concerned:
            why = (
                "no Celery side is watched"
                if not self.work_observed
                else f"the Celery side uses {self.broker_master}"
            )
            words.append(f"work on {inc.master} is not observed ({why}): no gap is measured.")
        return " ".join(words) if words else None

    def _signature(self, inc: _Incident) -> tuple[Any, ...]:
        """What an update is published for: (phase times..., anything else shown)."""
        return (
            inc.fault,
            inc.detected,
            inc.elected,
            inc.switched,
            inc.resumed if inc.switches else None,
            self._demoted(inc),
            len(inc.switches),
            inc.new_master,
            inc.old_master,
            inc.last_abort,
            inc.timed_out,
            self._back(inc),
            inc.user_resumed if inc.switches else None,
            inc.user_failed,
            inc.prom_seen if inc.switches else None,
        )

    def _changes(self, before: Mapping[str, tuple[Any, ...]], ts: float) -> list[IncidentUpdate]:
        """One update per phase an event made reached, or one for another change."""
        updates: list[IncidentUpdate] = []
        for name, inc in self._open.items():
            old = before.get(name)
            new = self._signature(inc)
            if old == new:
                continue
            reached: list[str | None] = []
            for index, phase in enumerate(PHASES[:6]):
                if new[index] is not None and (old is None or old[index] is None):
                    reached.append(phase)
            if old is not None and new[6] > old[6] and "switched" not in reached:
                reached.append("switched")  # a second switch
                reached.sort(key=lambda phase: PHASES.index(phase or ""))
            tracked = None
            if self.tracker is not None and self._tasks_concern(name):
                tracked = self._tracked(inc, ts, settle=False)
            report = self._report(inc, ts, live=False, tracked=tracked)
            for what in reached or [None]:
                updates.append(report.to_update(ts, what))
        return updates


def _same_address(a: str | None, b: str | None) -> bool:
    """Whether two ``host:port`` name the same node (``[::1]:6379`` is ``::1:6379``)."""
    if a is None or b is None:
        return False
    if a == b:
        return True

    def split(address: str) -> tuple[str, str]:
        host, _, port = address.rpartition(":")
        return host.strip("[]").lower(), port

    return split(a) == split(b)


def _remember(store: OrderedDict[str, Any], key: str, value: Any, limit: int) -> None:
    """Set `key` as the most recent entry; forget the least recent beyond `limit`."""
    store[key] = value
    store.move_to_end(key)
    while len(store) > limit:
        store.popitem(last=False)
