"""Prometheus's view of the Sentinel masters, next to hawatch's live one: pure state.

Prometheus learns about a failover only when it next scrapes redis_exporter, and
hawatch only when it next queries Prometheus, so its view lags the live one by
a scrape interval or more. `PrometheusView` folds the source's
`PrometheusObserved` and `PrometheusUnreachable` events and, given the live
`ClusterSnapshot`, says at `now` what Prometheus shows for each master, how old
its data is, whether Prometheus answers at all, and where it disagrees with the
sentinels, each disagreement as one sentence.

Like the rest of the core it never reads a clock: time comes from the events and
from the `now` handed to `PrometheusView.snapshot`.

A `PrometheusObserved` whose `master` is ``""`` says "Prometheus answered, and
reports no Sentinel master at all" (the source sends it when it has no master
names to ask about); it only marks the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from hawatch.core.cluster import ClusterSnapshot, MasterView
from hawatch.core.events import Event, PrometheusObserved, PrometheusUnreachable

__all__ = [
    "STALE_AFTER",
    "PrometheusMaster",
    "PrometheusSnapshot",
    "PrometheusView",
    "format_age",
]

STALE_AFTER = 120.0
"""Seconds after which Prometheus's data about a master is said to be stale. A
scrape interval of a minute is common in production, so only far older data is flagged."""


def format_age(seconds: float) -> str:
    """``3.2 s`` under ten seconds, ``42 s`` under two minutes, then ``5 min``."""
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


@dataclass(frozen=True, slots=True)
class PrometheusMaster:
    """What Prometheus says about one master at one instant, and how it compares."""

    name: str
    address: str | None
    """The ``master_address`` Prometheus's sentinels name with status 1 (see
    `PrometheusObserved.address`); None when Prometheus has no data for it."""
    addresses: tuple[str, ...]
    """Every ``master_address`` Prometheus reports for it."""
    status: float | None
    """``redis_sentinel_master_status`` of `address` (1: ok)."""
    master_status: str | None
    """Sentinel's word for it (``ok``, ``sdown``, ``odown``), when reported."""
    ok_sentinels: float | None
    ok_slaves: float | None
    ckquorum: float | None
    links_up: int | None
    """Replicas whose ``redis_master_link_up`` is 1 (towards `address`, when the
    exporter says where their link goes)."""
    sample_ts: float | None
    """When Prometheus scraped the newest sample behind this view."""
    age: float | None
    """``now - sample_ts``: how old Prometheus's data is (None when unknown)."""
    observed_at: float | None
    """When hawatch last got an answer about this master (None: never)."""
    live_address: str | None
    """Where the sentinels say the master is right now (None when hawatch does not know)."""
    agrees: bool | None
    """Whether Prometheus names the same master as the sentinels; None when either
    side does not know."""
    disagreements: tuple[str, ...] = ()
    """Where Prometheus and the sentinels disagree, one sentence each: another master
    (an old one still shown), several masters at once."""
    warnings: tuple[str, ...] = ()
    """What else is wrong with Prometheus's view, one sentence each: no data, no
    address with status ok, data too old."""


@dataclass(frozen=True, slots=True)
class PrometheusSnapshot:
    """Everything the views need about Prometheus at `now`."""

    now: float
    answered: bool
    """True once Prometheus has answered at least one round of queries."""
    reachable: bool | None
    """Whether its last round was answered; None before any round ended."""
    down_since: float | None
    """When it stopped answering (the first failed round after an answer), or None."""
    reason: str | None
    """Why its last round failed, as the source's sentence (None while it answers)."""
    last_answer: float | None
    """When it last answered."""
    masters: tuple[PrometheusMaster, ...]
    """The masters the sentinels know (live), then those only Prometheus reports; by name."""
    sentinels_up: int | None = None
    nodes_up: int | None = None
    nodes: int | None = None
    extra: tuple[tuple[str, str], ...] = ()
    """(PromQL the user configured, its value in a few words), from the last answer."""

    @property
    def disagreements(self) -> tuple[str, ...]:
        """Every master's disagreements, in master order."""
        return tuple(line for master in self.masters for line in master.disagreements)

    @property
    def warnings(self) -> tuple[str, ...]:
        """Every master's other warnings, in master order."""
        return tuple(line for master in self.masters for line in master.warnings)

    def master(self, name: str) -> PrometheusMaster | None:
        """The view of master `name`, or None."""
        for view in self.masters:
            if view.name == name:
                return view
        return None

    @property
    def problem(self) -> str | None:
        """The status-line sentence while Prometheus does not answer, else None."""
        if self.reachable is not False:
            return None
        return _problem(self.reason, self.down_since, self.now)


class PrometheusView:
    """Prometheus's view of every master, folded from events; pure and clock-free.

    Feed it every event with `apply` (other types are ignored); read it with
    `snapshot(now, cluster)`.
    """

    def __init__(self, *, stale_after: float = STALE_AFTER) -> None:
        self.stale_after = stale_after
        """Seconds after which a master's data is said to be stale."""
        self._latest: dict[str, PrometheusObserved] = {}
        self._last_answer: float | None = None
        self._answer: PrometheusObserved | None = None
        """The latest answer (any master), for the instance counts and the extra PromQL."""
        self._down_since: float | None = None
        self._reason: str | None = None
        self._reachable: bool | None = None

    def apply(self, event: Event) -> None:
        """Fold one event in."""
        if isinstance(event, PrometheusObserved):
            self._reachable = True
            self._down_since = None
            self._reason = None
            if self._last_answer is None or event.ts >= self._last_answer:
                self._last_answer = event.ts
                self._answer = event
            if event.master:
                self._latest[event.master] = event
        elif isinstance(event, PrometheusUnreachable):
            if self._reachable is not False:
                self._down_since = event.ts
            self._reachable = False
            self._reason = event.reason

    def problem(self, now: float) -> str | None:
        """`PrometheusSnapshot.problem` without the rest of the snapshot (cheap)."""
        if self._reachable is not False:
            return None
        return _problem(self._reason, self._down_since, now)

    @property
    def answered(self) -> bool:
        """True once Prometheus has answered a round."""
        return self._last_answer is not None

    def latest(self, master: str) -> PrometheusObserved | None:
        """The last answer about `master`, as received."""
        return self._latest.get(master)

    def snapshot(self, now: float, cluster: ClusterSnapshot | None = None) -> PrometheusSnapshot:
        """What Prometheus says at `now`, compared with the sentinels' live view `cluster`."""
        live = {view.name: view for view in cluster.masters} if cluster is not None else {}
        names = [*sorted(live), *sorted(name for name in self._latest if name not in live)]
        masters = tuple(self._master(name, now, live.get(name)) for name in names)
        answer = self._answer
        return PrometheusSnapshot(
            now=now,
            answered=self.answered,
            reachable=self._reachable,
            down_since=self._down_since,
            reason=self._reason,
            last_answer=self._last_answer,
            masters=masters,
            sentinels_up=answer.sentinels_up if answer is not None else None,
            nodes_up=answer.nodes_up if answer is not None else None,
            nodes=answer.nodes if answer is not None else None,
            extra=answer.extra if answer is not None else (),
        )

    def _master(self, name: str, now: float, view: MasterView | None) -> PrometheusMaster:
        event = self._latest.get(name)
        live_address = view.address if view is not None else None
        # A master absent from Prometheus's latest answer has no data now, whatever it
        # said before (every master of one round is stamped with the same time).
        current = event is not None and (self._last_answer is None or event.ts >= self._last_answer)
        address = event.address if event is not None and current else None
        addresses = event.addresses if event is not None and current else ()
        sample_ts = event.sample_ts if event is not None else None
        age = now - sample_ts if sample_ts is not None else None
        agrees = None
        if address is not None and live_address is not None:
            agrees = address == live_address
        disagreements: list[str] = []
        warnings: list[str] = []
        if self.answered:
            if address is None and not addresses:
                warnings.append(
                    f"Prometheus has no data for {name}; check that redis_exporter scrapes "
                    "its sentinels and that Prometheus scrapes the exporter"
                )
            elif address is None:
                warnings.append(
                    f"Prometheus's sentinels report no master of {name} as ok "
                    f"(they name {_listing(addresses)})"
                )
            if agrees is False and address is not None and live_address is not None:
                still = view is not None and view.previous == address
                verb = "still shows" if still else "shows"
                old = f" (Prometheus's data is {format_age(age)} old)" if age is not None else ""
                disagreements.append(
                    f"Prometheus {verb} {address} as master of {name}; the sentinels say "
                    f"{live_address}{old}"
                )
            if len(addresses) > 1:
                disagreements.append(
                    f"Prometheus's sentinels name {len(addresses)} masters for {name}: "
                    f"{_listing(addresses)}"
                )
            if age is not None and age > self.stale_after and address is not None:
                warnings.append(
                    f"Prometheus's data for {name} is {format_age(age)} old; check that it "
                    "still scrapes redis_exporter"
                )
        return PrometheusMaster(
            name=name,
            address=address,
            addresses=addresses,
            status=event.status if event is not None and current else None,
            master_status=event.master_status if event is not None and current else None,
            ok_sentinels=event.ok_sentinels if event is not None and current else None,
            ok_slaves=event.ok_slaves if event is not None and current else None,
            ckquorum=event.ckquorum if event is not None and current else None,
            links_up=event.links_up if event is not None and current else None,
            sample_ts=sample_ts,
            age=age,
            observed_at=event.ts if event is not None else None,
            live_address=live_address,
            agrees=agrees,
            disagreements=tuple(disagreements),
            warnings=tuple(warnings),
        )


def _problem(reason: str | None, down_since: float | None, now: float) -> str | None:
    """``<reason> (no answer for 12 s); the rest of the screen is live``."""
    if reason is None:
        return None
    since = f" (no answer for {format_age(now - down_since)})" if down_since is not None else ""
    return f"{reason}{since}; the rest of the screen is live"


def _listing(addresses: tuple[str, ...]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    if len(addresses) <= 1:
        return "".join(addresses)
    return f"{', '.join(addresses[:-1])} and {addresses[-1]}"
