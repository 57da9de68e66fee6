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

from collections import Counter, deque
from dataclasses import dataclass, field

from hawatch.core.events import (
    Event,
    FailoverRequested,
    MasterObserved,
    NodeObserved,
    NodeUnreachable,
    ReplicaInfo,
    SentinelForgotten,
    SentinelMessage,
    SentinelReachable,
    SentinelUnreachable,
)
from hawatch.core.text import short_text

#: Copies of one Sentinel message from several sentinels within this many seconds
#: are one event.
DEDUP_WINDOW = 10.0
#: Channels whose messages about one instance flip back and forth (a sentinel heard
#: at two addresses, IPv4 and IPv6, switches between them for good): within the window
#: they are one event whatever their payload, so they cannot flood the event list.
FLAPPING_CHANNELS = frozenset({"+sentinel-address-switch"})
#: Recent Sentinel messages kept per master for the views.
RECENT_EVENTS = 50

__all__ = [
    "ClusterSnapshot",
    "ClusterState",
    "MasterView",
    "RecentEvent",
    "ReplicaView",
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
class ReplicaView:
    """One replica of a master, from the sentinels' reports and the node's own word."""

    address: str
    link: str | None
    """``ok``/``err`` as the sentinels see it (``master-link-status``)."""
    lag: int | None
    """Replication lag in bytes (master offset − replica offset), when both are known."""
    priority: int | None
    flags: tuple[str, ...]
    """Sentinel's flags for it (``s_down``, ``disconnected`` ...)."""
    says: str | None
    """What the node itself reports (``ROLE``): ``slave``, ``master``, or None if not asked."""


@dataclass(frozen=True, slots=True)
class RecentEvent:
    """A Sentinel message as shown to people: once, however many sentinels published it."""

    ts: float
    """When the first sentinel's copy arrived."""
    channel: str
    text: str
    """The payload in short form."""
    sentinels: int
    """How many sentinels published it."""


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
    replicas: tuple[ReplicaView, ...] = ()
    """Sorted by address; replicas removed by the sentinels, or hidden from clients
    (``replica-announced no``), are not listed."""
    hidden_replicas: int = 0
    """Replicas the sentinels know but do not announce to clients."""
    sentinels: int = 0
    """Sentinels known for this master (reachable or not), this one included."""
    quorum: int | None = None
    quorum_ok: bool | None = None
    """The latest ``CKQUORUM`` answer: True ``OK``, False ``NOQUORUM``; None not asked."""
    quorum_text: str | None = None
    failover_in_progress: bool = False
    warnings: tuple[str, ...] = ()
    """Disagreements and dangers, each one sentence: sentinels naming different masters,
    a node that says master while the sentinels call it a replica, a sentinel in TILT."""
    events: tuple[RecentEvent, ...] = ()
    """The latest Sentinel messages about this master, newest last, duplicates collapsed."""

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
    replicas: dict[str, tuple[float, tuple[ReplicaInfo, ...]]] = field(default_factory=dict)
    """Per sentinel: when it last listed the replicas, and the list."""
    ckquorum: dict[str, tuple[bool | None, str | None]] = field(default_factory=dict)
    peers: dict[str, int] = field(default_factory=dict)
    """Per sentinel: how many sentinels it knows for this master, itself included."""
    held: dict[tuple[str, int], int] = field(default_factory=dict)
    """The highest config epoch each address was seen holding the role at."""
    events: deque[_Recent] = field(default_factory=lambda: deque(maxlen=RECENT_EVENTS))
    failing_over: bool = False
    """Set by ``+try-failover``/``+elected-leader``, cleared when the failover ends."""


@dataclass(slots=True)
class _Recent:
    """One Sentinel message and the sentinels that published it."""

    ts: float
    channel: str
    payload: str
    text: str
    sentinels: set[str]
    instance: str | None = None


class ClusterState:
    """The sentinels' view of every master, folded from events; pure and clock-free.

    Feed it events in arrival order with `apply`; read it with `snapshot(now)`.
    """

    def __init__(self) -> None:
        self._masters: dict[str, _Master] = {}
        self._reachable: set[str] = set()
        self._unreachable: dict[str, tuple[float, str]] = {}
        self._tilt: dict[str, bool] = {}
        self._nodes: dict[str, NodeObserved | NodeUnreachable] = {}

    def apply(self, event: Event) -> None:
        """Fold one event into the state; event types it does not know are ignored."""
        if isinstance(event, MasterObserved):
            self._observe(event)
        elif isinstance(event, SentinelMessage):
            self._message(event)
        elif isinstance(event, NodeObserved | NodeUnreachable):
            self._nodes[event.address] = event
        elif isinstance(event, FailoverRequested):
            master = self._masters.setdefault(event.master, _Master())
            verdict = "accepted" if event.accepted else "refused"
            text = f"operator failover via {event.sentinel}: {verdict} ({event.reply})"
            master.events.append(_Recent(event.ts, "failover-requested", "", text, set()))
        elif isinstance(event, SentinelUnreachable):
            self._reachable.discard(event.sentinel)
            # Its last reports are no longer evidence; the chosen holders stay put.
            for master in self._masters.values():
                master.reports.pop(event.sentinel, None)
            since = self._unreachable.get(event.sentinel, (event.ts, ""))[0]
            self._unreachable[event.sentinel] = (since, event.reason)
        elif isinstance(event, SentinelReachable):
            self._mark_reachable(event.sentinel)
        elif isinstance(event, SentinelForgotten):
            self._reachable.discard(event.sentinel)
            self._unreachable.pop(event.sentinel, None)
            self._tilt.pop(event.sentinel, None)
            for master in self._masters.values():
                master.reports.pop(event.sentinel, None)
                master.replicas.pop(event.sentinel, None)
                master.ckquorum.pop(event.sentinel, None)
                master.peers.pop(event.sentinel, None)

    # -- cheap reads (per event, without a snapshot) --------------------------------

    def master_names(self) -> tuple[str, ...]:
        """The master names a master is known for, sorted (as in `ClusterSnapshot.masters`)."""
        return tuple(sorted(name for name, m in self._masters.items() if m.holder is not None))

    def master_address(self, name: str) -> str | None:
        """The current master of `name` as ``ip:port`` (as `MasterView.address`), or None."""
        master = self._masters.get(name)
        holder = None if master is None else master.holder
        if holder is None:
            return None
        return format_address(holder.ip, holder.port)

    def answering(self) -> tuple[str, ...]:
        """The sentinels that answered last time they were asked, sorted (as in
        `ClusterSnapshot.reachable`)."""
        return tuple(sorted(self._reachable))

    def unreachable_reasons(self) -> dict[str, str]:
        """Each sentinel that does not answer, and why (as in `ClusterSnapshot.unreachable`)."""
        return {sentinel: reason for sentinel, (_, reason) in sorted(self._unreachable.items())}

    def switched_at(self, name: str) -> float | None:
        """When hawatch saw the role of `name` move to its current holder (its `since`).

        None when unknown, or when the holder already had the role when hawatch
        first saw it (`MasterView.switched` False). A stale switch back does not
        change it.
        """
        master = self._masters.get(name)
        holder = None if master is None else master.holder
        if holder is None or not holder.switched:
            return None
        return holder.since

    def _mark_reachable(self, sentinel: str) -> None:
        self._reachable.add(sentinel)
        self._unreachable.pop(sentinel, None)

    def _observe(self, event: MasterObserved) -> None:
        # A report is proof that its sentinel answers.
        self._mark_reachable(event.sentinel)
        master = self._masters.setdefault(event.master, _Master())
        master.reports[event.sentinel] = event
        master.last_report = max(master.last_report, event.ts)
        if event.replicas is not None:
            master.replicas[event.sentinel] = (event.ts, event.replicas)
        if event.ckquorum is not None or event.ckquorum_ok is not None:
            master.ckquorum[event.sentinel] = (event.ckquorum_ok, event.ckquorum)
        if event.peers is not None:
            master.peers[event.sentinel] = len(event.peers) + 1
        elif event.num_other_sentinels is not None:
            master.peers[event.sentinel] = event.num_other_sentinels + 1
        if event.tilt is not None:
            self._tilt[event.sentinel] = event.tilt
        if event.epoch is not None:
            key = (event.ip, event.port)
            master.held[key] = max(master.held.get(key, -1), event.epoch)
        self._elect(master, event.ts)

    def _message(self, event: SentinelMessage) -> None:
        """A pub/sub message: the event list, TILT, and ``+switch-master`` at once."""
        if event.channel in ("+tilt", "-tilt"):
            self._tilt[event.sentinel] = event.channel == "+tilt"
        if event.master is None:
            targets = list(self._masters.values()) if len(self._masters) == 1 else []
        else:
            targets = [self._masters.setdefault(event.master, _Master())]
        for master in targets:
            if not self._remember(master, event):
                continue  # another sentinel's copy of a message already applied
            if event.channel in ("+try-failover", "+elected-leader"):
                master.failing_over = True
            elif event.channel in ("+failover-end", "+failover-end-for-timeout") or (
                event.channel.startswith("-failover-abort")
            ):
                master.failing_over = False
            elif event.channel == "+switch-master" and event.new:
                master.failing_over = False
                self._switch(master, event.new, event.ts)

    def _remember(self, master: _Master, event: SentinelMessage) -> bool:
        """Add the message to the recent list; False if it is a copy seen from another sentinel."""
        for recent in reversed(master.events):
            if event.ts - recent.ts > DEDUP_WINDOW:
                break
            if event.channel in FLAPPING_CHANNELS and (recent.channel, recent.instance) == (
                event.channel,
                event.instance,
            ):
                recent.sentinels.add(event.sentinel)
                return False
            if (recent.channel, recent.payload) == (event.channel, event.payload):
                if event.sentinel not in recent.sentinels:
                    recent.sentinels.add(event.sentinel)
                    return False
                break  # the same sentinel again: a new occurrence
        text = short_text(event)
        master.events.append(
            _Recent(event.ts, event.channel, event.payload, text, {event.sentinel}, event.instance)
        )
        return True

    def _switch(self, master: _Master, new: str, ts: float) -> None:
        """Move the role to `new` at once, unless it is a stale switch back to an address
        that held the role at an older configuration epoch than the current holder's.

        ``+switch-master`` carries no epoch, so a real switch back to a former master
        is taken from the topology re-read that follows it (which carries the new
        epoch) rather than from the message itself.
        """
        split = _split_address(new)
        if split is None:
            return
        holder = master.holder
        if holder is None:
            master.holder = _Holder(split[0], split[1], None, (-1, True), since=ts)
            return
        if (holder.ip, holder.port) == split:
            return
        old_epoch = master.held.get(split)
        if old_epoch is not None and holder.epoch is not None and old_epoch < holder.epoch:
            return  # a restarted sentinel replaying an old switch
        epoch = None if holder.epoch is None else holder.epoch + 1
        rank = (-1 if epoch is None else epoch, True)
        master.holder = _Holder(
            split[0],
            split[1],
            epoch,
            rank,
            since=ts,
            switched=True,
            previous=format_address(holder.ip, holder.port),
        )

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

    def _replica_views(
        self, master: _Master, holder: _Holder
    ) -> tuple[tuple[ReplicaView, ...], int]:
        """The replicas from the freshest listing of a sentinel that names the holder."""
        holder_address = format_address(holder.ip, holder.port)
        agreeing = {
            s
            for s, r in master.reports.items()
            if (r.ip, r.port) == (holder.ip, holder.port) and s in self._reachable
        }
        listings = [v for s, v in master.replicas.items() if s in agreeing]
        if not listings:
            return (), 0
        _ts, listed = max(listings, key=lambda item: item[0])
        master_node = self._nodes.get(holder_address)
        master_offset = master_node.offset if isinstance(master_node, NodeObserved) else None
        views = []
        hidden = 0
        for info in sorted(listed, key=lambda r: r.address):
            if info.address == holder_address:
                continue
            if info.announced is False:
                hidden += 1
                continue
            node = self._nodes.get(info.address)
            says = node.role if isinstance(node, NodeObserved) else None
            offset = node.offset if isinstance(node, NodeObserved) else None
            offset = info.offset if offset is None else offset
            lag = None
            if master_offset is not None and offset is not None:
                lag = max(0, master_offset - offset)
            views.append(ReplicaView(info.address, info.link, lag, info.priority, info.flags, says))
        return tuple(views), hidden

    def _quorum(self, master: _Master) -> tuple[bool | None, str | None]:
        """The latest CKQUORUM answer of a reachable sentinel (a refusal wins a tie)."""
        answers = [v for s, v in master.ckquorum.items() if s in self._reachable]
        if not answers:
            return None, None
        refused = [a for a in answers if a[0] is False]
        return refused[0] if refused else answers[0]

    def _warnings(
        self,
        name: str,
        master: _Master,
        holder: _Holder,
        reports: list[MasterObserved],
        dissent: tuple[tuple[str, str, int | None], ...],
        replicas: tuple[ReplicaView, ...],
    ) -> tuple[str, ...]:
        """Every disagreement or danger about master `name`, one sentence each."""
        warnings: list[str] = []
        holder_address = format_address(holder.ip, holder.port)
        for sentinel, address, epoch in dissent:
            at = "" if epoch is None else f" (epoch {epoch})"
            warnings.append(
                f"sentinels disagree: {sentinel} names {address}{at}, not {holder_address}."
            )
        candidates = {r.address for r in replicas}
        if holder.previous:
            candidates.add(holder.previous)
        for _ts, listed in master.replicas.values():
            candidates.update(info.address for info in listed)
        candidates.discard(holder_address)
        for address in sorted(candidates):
            node = self._nodes.get(address)
            if isinstance(node, NodeObserved) and node.role == "master":
                warnings.append(
                    f"split brain: {address} still says it is master while the sentinels "
                    f"say {holder_address} is; writes sent to it will be lost."
                )
        for sentinel in sorted({r.sentinel for r in reports}):
            if self._tilt.get(sentinel):
                warnings.append(
                    f"sentinel {sentinel} is in TILT mode: it will not act until it leaves it."
                )
        ok, text = self._quorum(master)
        if ok is False:
            warnings.append(f"no quorum: {text or 'CKQUORUM refused'}.")
        down = {
            f for r in reports if (r.ip, r.port) == (holder.ip, holder.port) for f in r.flags
        } & {"s_down", "o_down"}
        if down:
            words = "objectively down (o_down)" if "o_down" in down else "down (s_down)"
            warnings.append(f"the sentinels see master {holder_address} as {words}.")
        return tuple(warnings)

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
            replicas, hidden = self._replica_views(master, holder)
            quorum_ok, quorum_text = self._quorum(master)
            reachable_reports = [r for r in reports if r.sentinel in self._reachable]
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
                    replicas=replicas,
                    hidden_replicas=hidden,
                    sentinels=max(
                        [len(reports), *master.peers.values()],
                    ),
                    quorum=next((r.quorum for r in reversed(reports) if r.quorum), None),
                    quorum_ok=quorum_ok,
                    quorum_text=quorum_text,
                    failover_in_progress=master.failing_over
                    or any("failover_in_progress" in r.flags for r in reachable_reports),
                    warnings=self._warnings(name, master, holder, reports, dissent, replicas),
                    events=tuple(
                        RecentEvent(e.ts, e.channel, e.text, len(e.sentinels))
                        for e in master.events
                    ),
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


def _split_address(address: str) -> tuple[str, int] | None:
    """``host:port`` or ``[v6]:port`` back into (host, port); None if it is not one."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit() or not host:
        return None
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)
