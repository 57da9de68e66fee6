"""Prometheus's view beside the live one, from scripted events: no sleeps, no clock.

The live side is a real `ClusterState` fed `MasterObserved` reports; the
Prometheus side is `PrometheusObserved`/`PrometheusUnreachable` events as the
source posts them. Every time is a number in the script.
"""

from __future__ import annotations

from typing import Any

import pytest

from hawatch.core.cluster import ClusterSnapshot, ClusterState
from hawatch.core.events import (
    MasterObserved,
    PrometheusObserved,
    PrometheusUnreachable,
    SentinelMessage,
    from_json,
    to_json,
)
from hawatch.core.prometheus import PrometheusView, format_age

T0 = 1_700_000_000.0
OLD = "127.0.0.1:6379"
NEW = "127.0.0.1:6380"
SENTINELS = ("127.0.0.1:26379", "127.0.0.1:26380", "127.0.0.1:26381")
DOWN = (
    "Prometheus at http://127.0.0.1:9090 does not answer (connection refused); "
    "check --prometheus and that Prometheus runs"
)


def live(address: str = OLD, *, epoch: int = 0, ts: float = T0) -> ClusterState:
    """Every sentinel names `address` as master of mymaster."""
    state = ClusterState()
    ip, port = address.rsplit(":", 1)
    for sentinel in SENTINELS:
        state.apply(
            MasterObserved(
                ts=ts, sentinel=sentinel, master="mymaster", ip=ip, port=int(port), epoch=epoch
            )
        )
    return state


def switched(state: ClusterState, ts: float) -> ClusterState:
    """The sentinels switch mymaster from OLD to NEW at `ts`."""
    state.apply(
        SentinelMessage(
            ts=ts,
            sentinel=SENTINELS[0],
            channel="+switch-master",
            payload="mymaster 127.0.0.1 6379 127.0.0.1 6380",
            master="mymaster",
            old=OLD,
            new=NEW,
        )
    )
    return state


def seen(ts: float, address: str | None = OLD, **fields: Any) -> PrometheusObserved:
    """Prometheus's answer at `ts` about mymaster; its sample scraped 0.5 s earlier."""
    values: dict[str, Any] = {
        "master": "mymaster",
        "address": address,
        "sample_ts": ts - 0.5 if address is not None else None,
        "status": 1.0 if address is not None else None,
        "master_status": "ok" if address is not None else None,
        "ok_sentinels": 3.0,
        "ok_slaves": 2.0,
        "ckquorum": 1.0,
        "sentinels_up": 3,
        "nodes_up": 6,
        "nodes": 6,
        "links_up": 2,
        "addresses": (address,) if address is not None else (),
    }
    values.update(fields)
    return PrometheusObserved(ts=ts, **values)


def view_of(*events: Any) -> PrometheusView:
    view = PrometheusView()
    for event in events:
        view.apply(event)
    return view


def snap(view: PrometheusView, now: float, cluster: ClusterState | None) -> Any:
    snapshot: ClusterSnapshot | None = cluster.snapshot(now) if cluster is not None else None
    return view.snapshot(now, snapshot)


# --------------------------------------------------------------------------- agreement


def test_nothing_heard_yet_is_no_answer_and_no_warning() -> None:
    snapshot = snap(PrometheusView(), T0, live())
    assert not snapshot.answered and snapshot.reachable is None
    assert snapshot.problem is None
    master = snapshot.master("mymaster")
    assert master is not None and master.address is None and master.agrees is None
    assert master.warnings == () and master.disagreements == ()


def test_agreement_shows_the_master_its_status_counts_and_age() -> None:
    view = view_of(seen(T0 + 1))
    snapshot = snap(view, T0 + 2.7, live())
    assert snapshot.answered and snapshot.reachable is True and snapshot.problem is None
    master = snapshot.master("mymaster")
    assert master is not None
    assert master.address == OLD and master.live_address == OLD and master.agrees is True
    assert master.status == 1.0 and master.master_status == "ok"
    assert (master.ok_sentinels, master.ok_slaves, master.ckquorum) == (3.0, 2.0, 1.0)
    assert master.links_up == 2
    assert master.age == pytest.approx(2.2)
    assert master.observed_at == T0 + 1
    assert snapshot.disagreements == () and snapshot.warnings == ()
    assert (snapshot.nodes_up, snapshot.nodes, snapshot.sentinels_up) == (6, 6, 3)


def test_prometheus_still_showing_the_old_master_is_flagged_with_its_age() -> None:
    state = switched(live(), T0 + 10)
    view = view_of(seen(T0 + 10.5))  # scraped at T0 + 10.0, just as the switch happened
    snapshot = snap(view, T0 + 13.2, state)
    master = snapshot.master("mymaster")
    assert master is not None and master.agrees is False
    assert master.address == OLD and master.live_address == NEW
    assert snapshot.disagreements == (
        "Prometheus still shows 127.0.0.1:6379 as master of mymaster; the sentinels say "
        "127.0.0.1:6380 (Prometheus's data is 3.2 s old)",
    )


def test_once_scraped_the_new_master_agrees_again() -> None:
    state = switched(live(), T0 + 10)
    view = view_of(seen(T0 + 10.5), seen(T0 + 11.5, NEW))
    snapshot = snap(view, T0 + 12, state)
    master = snapshot.master("mymaster")
    assert master is not None and master.agrees is True and master.address == NEW
    assert snapshot.disagreements == ()


def test_another_address_without_a_switch_seen_is_shown_not_still_shown() -> None:
    view = view_of(seen(T0 + 1, NEW))
    (line,) = snap(view, T0 + 2, live(OLD)).disagreements
    assert line.startswith("Prometheus shows 127.0.0.1:6380 as master of mymaster; ")


def test_several_addresses_at_once_are_a_disagreement() -> None:
    view = view_of(seen(T0 + 1, NEW, addresses=(NEW, OLD)))
    snapshot = snap(view, T0 + 2, switched(live(), T0 + 0.5))
    assert snapshot.disagreements == (
        "Prometheus's sentinels name 2 masters for mymaster: 127.0.0.1:6380 and 127.0.0.1:6379",
    )


def test_no_data_for_a_live_master_once_prometheus_answered() -> None:
    view = view_of(seen(T0 + 1, None))
    snapshot = snap(view, T0 + 2, live())
    master = snapshot.master("mymaster")
    assert master is not None and master.address is None and master.agrees is None
    assert snapshot.warnings == (
        "Prometheus has no data for mymaster; check that redis_exporter scrapes its "
        "sentinels and that Prometheus scrapes the exporter",
    )


def test_an_answer_about_no_master_at_all_still_counts_as_an_answer() -> None:
    """The source sends master "" when Prometheus answered without any Sentinel data."""
    view = view_of(PrometheusObserved(ts=T0 + 1, master="", address=None, nodes=0, nodes_up=0))
    snapshot = snap(view, T0 + 2, live())
    assert snapshot.answered and snapshot.reachable is True
    assert [m.name for m in snapshot.masters] == ["mymaster"]
    assert snapshot.warnings[0].startswith("Prometheus has no data for mymaster")


def test_a_master_missing_from_the_latest_answer_has_no_data_now() -> None:
    other = seen(T0 + 2, "10.0.0.1:6379", master="other", addresses=("10.0.0.1:6379",))
    view = view_of(seen(T0 + 1), other)  # mymaster was not in the answer at T0 + 2
    snapshot = snap(view, T0 + 3, live())
    master = snapshot.master("mymaster")
    assert master is not None and master.address is None
    assert snapshot.warnings[0].startswith("Prometheus has no data for mymaster")
    assert [m.name for m in snapshot.masters] == ["mymaster", "other"]


def test_no_address_with_status_ok_is_a_warning() -> None:
    view = view_of(seen(T0 + 1, None, addresses=(OLD,), status=0.0))
    assert snap(view, T0 + 2, live()).warnings == (
        "Prometheus's sentinels report no master of mymaster as ok (they name 127.0.0.1:6379)",
    )


def test_data_far_too_old_is_a_warning() -> None:
    view = PrometheusView(stale_after=30)
    view.apply(seen(T0 + 1, sample_ts=T0 - 60))
    assert snap(view, T0 + 2, live()).warnings == (
        "Prometheus's data for mymaster is 62 s old; check that it still scrapes redis_exporter",
    )


def test_without_a_live_view_prometheus_masters_are_still_listed() -> None:
    snapshot = snap(view_of(seen(T0 + 1)), T0 + 2, None)
    master = snapshot.master("mymaster")
    assert master is not None and master.address == OLD and master.live_address is None
    assert master.agrees is None and snapshot.disagreements == ()


# --------------------------------------------------------------------------- reachability


def test_unreachable_says_since_when_and_why_then_clears_on_an_answer() -> None:
    view = view_of(
        seen(T0 + 1),
        PrometheusUnreachable(ts=T0 + 2, reason=DOWN),
        PrometheusUnreachable(ts=T0 + 3, reason=DOWN),
    )
    snapshot = snap(view, T0 + 14, live())
    assert snapshot.reachable is False and snapshot.down_since == T0 + 2
    assert snapshot.reason == DOWN and snapshot.last_answer == T0 + 1
    expected = f"{DOWN} (no answer for 12 s); the rest of the screen is live"
    assert snapshot.problem == expected
    assert view.problem(T0 + 14) == expected
    # The last data is still shown, getting older.
    master = snapshot.master("mymaster")
    assert master is not None and master.address == OLD and master.age == 13.5

    view.apply(seen(T0 + 15))
    snapshot = snap(view, T0 + 16, live())
    assert snapshot.reachable is True and snapshot.problem is None and snapshot.down_since is None
    assert view.problem(T0 + 16) is None


def test_unreachable_from_the_start() -> None:
    view = view_of(PrometheusUnreachable(ts=T0, reason=DOWN))
    snapshot = snap(view, T0 + 1, live())
    assert not snapshot.answered and snapshot.reachable is False
    assert snapshot.problem == f"{DOWN} (no answer for 1.0 s); the rest of the screen is live"
    master = snapshot.master("mymaster")
    assert master is not None and master.warnings == ()  # no answer: no "no data" claim


def test_other_events_are_ignored() -> None:
    view = PrometheusView()
    view.apply(SentinelMessage(ts=T0, sentinel=SENTINELS[0], channel="+sdown", payload="x"))
    assert not view.answered and view.problem(T0) is None


def test_replayed_events_give_the_same_view() -> None:
    """The events go through a journal line and back: the view is the same."""
    state = switched(live(), T0 + 10)
    events = [
        seen(T0 + 9, extra=(("sum(redis_up)", "6"),)),
        PrometheusUnreachable(ts=T0 + 10, reason=DOWN),
        seen(T0 + 11, NEW, addresses=(NEW, OLD)),
    ]
    direct = snap(view_of(*events), T0 + 12, state)
    replayed = snap(view_of(*(from_json(to_json(e)) for e in events)), T0 + 12, state)
    assert replayed == direct
    assert direct.extra == ()  # the latest answer had none


def test_format_age() -> None:
    assert [format_age(s) for s in (-1, 0.04, 3.25, 9.96, 42.4, 119, 300)] == [
        "0.0 s",
        "0.0 s",
        "3.2 s",
        "10.0 s",
        "42 s",
        "119 s",
        "5 min",
    ]
