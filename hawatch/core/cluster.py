"""Who is master, according to the sentinels: pure state folded from events.

`ClusterState` never reads a clock: it takes time from the events it is fed and
from the `now` handed to `snapshot`, so the same code runs live, replays a
journal, and is tested with scripted event lists.

The current master of a name is the address named by the sentinels with the
highest config epoch, and among those by the most sentinels. Once chosen it is
only replaced by an address reported with an epoch at least as high: a sentinel that
restarts with an old configuration, or the loss of the sentinels that knew the
newer one, never moves the master backwards.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from hawatch.core.events import Event, MasterObserved, SentinelReachable, SentinelUnreachable

__all__ = [
    "ClusterSnapshot",
    "ClusterState",
    "MasterView",
    "UnreachableSentinel",
    "format_address",
]


def format_address(ip: str, port: int) -> str:
    """``ip:port``, with brackets around an IPv6 address so the port stays readable."""
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


@dataclass(frozen=True, slots=True)
class UnreachableSentinel:
    """A sentinel that does not answer: since when, why, and for how long at `now`."""

    sentinel: str
    since: float
    reason: str
    age: float


@dataclass(frozen=True, slots=True)
class MasterView:
    """One master name as the sentinels see it at one instant.

    `agree` counts the reachable sentinels whose latest report names `address`;
    `known` counts the reachable sentinels that report this master at all. The
    difference is a disagreement worth showing: `dissent` lists who says what.
    """

    name: str
    ip: str
    port: int
    epoch: int | None
    since: float
    """When this address took the role, or when hawatch first saw it (see `switched`)."""
    age: float
    """How long the address has held the role at `now`, in seconds."""
    switched: bool
    """True once hawatch has watched the role move to this address; False means `age` is a
    lower bound (the address was already master when hawatch first saw it)."""
    previous: str | None
    """The address that held the role before, if hawatch saw the switch."""
    known: int
    agree: int
    dissent: tuple[tuple[str, str, int | None], ...]
    """(sentinel, address it names, its epoch) for each reachable sentinel that disagrees."""
    flags: tuple[str, ...]
    """Union of the flags reported by the sentinels that agree, e.g. ``o_down``."""
    last_report: float
    """The `ts` of the latest report about this master from any sentinel."""

    @property
    def address(self) -> str:
        """The current master as ``ip:port``."""
        return format_address(self.ip, self.port)


@dataclass(frozen=True, slots=True)
class ClusterSnapshot:
    """Everything the views need at instant `now`, immutable so it can be rendered anywhere."""

    now: float
    masters: tuple[MasterView, ...]
    """Sorted by master name."""
    reachable: tuple[str, ...]
    """Sentinels that answered last time they were asked, sorted."""
    unreachable: tuple[UnreachableSentinel, ...]
    """Sentinels that do not answer, sorted by address."""

    def master(self, name: str) -> MasterView | None:
        """The view of master `name`, or None when no sentinel has reported it."""
        for view in self.masters:
            if view.name == name:
                return view
        return None


_Rank = tuple[int, bool]


def _rank(report: MasterObserved) -> _Rank:
    """How authoritative a report is: its config epoch, then whether that epoch is settled.

    While a sentinel leads a failover it already reports the new config epoch next to
    the old address (flag ``failover_in_progress``), so at an equal epoch a report
    without that flag wins. An unknown epoch ranks below every real one.
    """
    epoch = -1 if report.epoch is None else report.epoch
    return (epoch, "failover_in_progress" not in report.flags)


@dataclass(slots=True)
class _Holder:
    """The address currently chosen for a master name, and how it got there."""

    ip: str
    port: int
    epoch: int | None
    rank: _Rank
    since: float
    switched: bool = False
    previous: str | None = None


@dataclass(slots=True)
class _Master:
    """Everything known about one master name: latest report per sentinel, chosen holder."""

    reports: dict[str, MasterObserved] = field(default_factory=dict)
    holder: _Holder | None = None
    last_report: float = 0.0


class ClusterState:
    """The sentinels' view of every master, folded from events; pure and clock-free.

    Feed it events in arrival order with `apply`; read it with `snapshot(now)`.
    """

    def __init__(self) -> None:
        self._masters: dict[str, _Master] = {}
        self._reachable: set[str] = set()
        self._unreachable: dict[str, tuple[float, str]] = {}

    def apply(self, event: Event) -> None:
        """Fold one event into the state; event types it does not know are ignored."""
        if isinstance(event, MasterObserved):
            self._observe(event)
        elif isinstance(event, SentinelUnreachable):
            self._reachable.discard(event.sentinel)
            # Its last reports are no longer evidence; the chosen holders stay put.
            for master in self._masters.values():
                master.reports.pop(event.sentinel, None)
            since = self._unreachable.get(event.sentinel, (event.ts, ""))[0]
            self._unreachable[event.sentinel] = (since, event.reason)
        elif isinstance(event, SentinelReachable):
            self._mark_reachable(event.sentinel)

    def _mark_reachable(self, sentinel: str) -> None:
        self._reachable.add(sentinel)
        self._unreachable.pop(sentinel, None)

    def _observe(self, event: MasterObserved) -> None:
        # A report is proof that its sentinel answers.
        self._mark_reachable(event.sentinel)
        master = self._masters.setdefault(event.master, _Master())
        master.reports[event.sentinel] = event
        master.last_report = max(master.last_report, event.ts)
        self._elect(master, event.ts)

    def _elect(self, master: _Master, ts: float) -> None:
        """Move the role to the best-supported address, never to an older configuration."""
        reports = list(master.reports.values())
        if not reports:
            return
        top = max(_rank(r) for r in reports)
        leaders = [r for r in reports if _rank(r) == top]
        votes = Counter((r.ip, r.port) for r in leaders)
        best = max(votes.values())
        tied = sorted(address for address, count in votes.items() if count == best)
        epoch = leaders[0].epoch
        holder = master.holder
        if holder is None:
            ip, port = tied[0]
            master.holder = _Holder(ip, port, epoch, top, since=ts)
            return
        if top < holder.rank:
            return  # stale: a newer configuration already chose the holder
        if (holder.ip, holder.port) in tied:
            holder.epoch, holder.rank = epoch, top
            return
        ip, port = tied[0]
        master.holder = _Holder(
            ip,
            port,
            epoch,
            top,
            since=ts,
            switched=True,
            previous=format_address(holder.ip, holder.port),
        )

    def snapshot(self, now: float) -> ClusterSnapshot:
        """The state at instant `now` (ages are measured up to `now`, never below zero)."""
        views = []
        for name in sorted(self._masters):
            master = self._masters[name]
            holder = master.holder
            if holder is None:
                continue
            reports = sorted(master.reports.values(), key=lambda r: r.sentinel)
            agreeing = [r for r in reports if (r.ip, r.port) == (holder.ip, holder.port)]
            dissent = tuple(
                (r.sentinel, format_address(r.ip, r.port), r.epoch)
                for r in reports
                if (r.ip, r.port) != (holder.ip, holder.port)
            )
            flags = sorted({flag for r in agreeing for flag in r.flags})
            views.append(
                MasterView(
                    name=name,
                    ip=holder.ip,
                    port=holder.port,
                    epoch=holder.epoch,
                    since=holder.since,
                    age=max(0.0, now - holder.since),
                    switched=holder.switched,
                    previous=holder.previous,
                    known=len(reports),
                    agree=len(agreeing),
                    dissent=dissent,
                    flags=tuple(flags),
                    last_report=master.last_report,
                )
            )
        unreachable = tuple(
            UnreachableSentinel(sentinel, since, reason, max(0.0, now - since))
            for sentinel, (since, reason) in sorted(self._unreachable.items())
        )
        return ClusterSnapshot(
            now=now,
            masters=tuple(views),
            reachable=tuple(sorted(self._reachable)),
            unreachable=unreachable,
        )
