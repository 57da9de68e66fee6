"""The sentinel watcher against a real cluster: discovery, failover phases, faults that heal.

Every test runs the watcher on its own event loop against a fresh lab
(down-after 1000 ms), collects the events it emits, and waits for conditions
with a deadline instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from hawatch.core.events import (
    Event,
    MasterObserved,
    NodeObserved,
    NodeUnreachable,
    SentinelForgotten,
    SentinelMessage,
    SentinelReachable,
    SentinelUnreachable,
    to_json,
)
from hawatch.lab import LabCluster
from hawatch.lab.cluster import LabConfig, LabNode, TlsUnavailable
from hawatch.settings import Settings
from hawatch.sources.sentinel import SentinelWatcher

pytestmark = [pytest.mark.integration, pytest.mark.slow]

E = TypeVar("E", bound=Event)

FAILOVER_TIMEOUT = 30.0


class Recorder:
    """The events a watcher emitted, with ways to wait for some of them."""

    def __init__(self) -> None:
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def mark(self) -> int:
        """A position in the stream: later waits can look only at what came after it."""
        return len(self.events)

    def of(self, kind: type[E], since: int = 0) -> list[E]:
        """The events of one type, after `since`."""
        return [e for e in self.events[since:] if isinstance(e, kind)]

    async def wait(
        self,
        what: str,
        kind: type[E],
        check: Callable[[E], bool] = lambda _: True,
        *,
        since: int = 0,
        timeout: float = 10.0,
    ) -> E:
        """The first event of type `kind` after `since` for which `check` holds."""
        return await until(
            what, lambda: next((e for e in self.of(kind, since) if check(e)), None), timeout
        )

    def channels(self, sentinel: str, since: int = 0) -> list[str]:
        """The channels one sentinel published on, in order, after `since`."""
        return [m.channel for m in self.of(SentinelMessage, since) if m.sentinel == sentinel]


T = TypeVar("T")


async def until(what: str, check: Callable[[], T | None], timeout: float = 10.0) -> T:
    """Wait (on the event loop) until `check` returns something other than None or False."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result is not None and result is not False:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def watching(settings: Settings, **options: Any) -> AsyncIterator[tuple[Recorder, Any]]:
    """Run a `SentinelWatcher` in the background; stop it (and check it stops) on exit."""
    recorder = Recorder()
    watcher = SentinelWatcher(settings, recorder, **options)
    task = asyncio.create_task(watcher.run())
    try:
        yield recorder, watcher
    finally:
        assert not task.done(), "the watcher stopped on its own"
        task.cancel()
        await asyncio.wait({task}, timeout=5.0)
        if not task.done():
            stacks = io.StringIO()
            for other in asyncio.all_tasks():
                other.print_stack(file=stacks)
            pytest.fail(
                f"the watcher did not stop within 5 s of being cancelled:\n{stacks.getvalue()}"
            )
        assert task.cancelled()


def is_subsequence(wanted: Sequence[str], seen: Sequence[str]) -> bool:
    """True if `wanted` appears in `seen` in this order (other items may come between)."""
    it = iter(seen)
    return all(item in it for item in wanted)


def names(nodes: Sequence[LabNode]) -> set[str]:
    return {str(n.address) for n in nodes}


async def everyone_reports(
    rec: Recorder, lab: LabCluster, port: int, *, since: int, timeout: float = FAILOVER_TIMEOUT
) -> None:
    """Wait until every sentinel of the lab reported the master at `port` after `since`."""

    def done() -> bool:
        latest = {m.sentinel: m.port for m in rec.of(MasterObserved, since)}
        return all(latest.get(str(s.address)) == port for s in lab.sentinel_nodes)

    await until(f"every sentinel to name port {port} as the master", done, timeout)


async def test_one_seed_discovers_every_sentinel_and_every_node(lab: LabCluster) -> None:
    master = lab.current_master()
    replicas = lab.replicas()
    settings = lab.settings(sentinels=(lab.sentinel_addresses[0],))
    async with watching(settings) as (rec, watcher):
        everyone = names(lab.sentinel_nodes)

        def full_reports() -> dict[str, MasterObserved] | None:
            latest = {m.sentinel: m for m in rec.of(MasterObserved) if m.replicas is not None}
            return latest if set(latest) == everyone else None

        reports = await until("a full report from every sentinel", full_reports)
        assert set(map(str, watcher.sentinels)) == everyone
        assert {e.sentinel for e in rec.of(SentinelReachable)} == everyone
        for sentinel, report in reports.items():
            assert (report.master, report.port, report.quorum) == ("mymaster", master.port, 2)
            assert {r.address for r in report.replicas or ()} == names(replicas)
            assert all(r.link == "ok" and r.announced for r in report.replicas or ())
            assert {p.address for p in report.peers or ()} == everyone - {sentinel}
            assert report.ckquorum_ok is True and (report.ckquorum or "").startswith("OK 3 usable")
            assert report.tilt is False and report.failover_state is None

        def node_roles() -> dict[str, NodeObserved] | None:
            latest = {n.address: n for n in rec.of(NodeObserved)}
            return latest if set(latest) == names(lab.data_nodes) else None

        nodes = await until("every data node to report its role", node_roles)
        assert nodes[str(master.address)].role == "master"
        assert nodes[str(master.address)].connected_replicas == 2
        for replica in replicas:
            node = nodes[str(replica.address)]
            assert (node.role, node.master_address, node.link) == (
                "slave",
                str(master.address),
                "up",
            )
        assert not rec.of(SentinelUnreachable) and not rec.of(NodeUnreachable)


async def test_a_forced_failover_in_phases(lab: LabCluster) -> None:
    old = lab.current_master()
    async with watching(lab.settings()) as (rec, _):
        await everyone_reports(rec, lab, old.port, since=0, timeout=10)
        start = rec.mark()
        assert lab.failover() == "OK"
        switched = await rec.wait(
            "the leader's +switch-master",
            SentinelMessage,
            lambda m: (
                m.channel == "+switch-master" and "+failover-end" in rec.channels(m.sentinel, start)
            ),
            since=start,
            timeout=FAILOVER_TIMEOUT,
        )
        leader = rec.channels(switched.sentinel, start)
        phases = [
            "+new-epoch",
            "+try-failover",
            "+elected-leader",
            "+selected-slave",
            "+promoted-slave",
            "+failover-end",
            "+switch-master",
        ]
        assert is_subsequence(phases, leader), " ".join(leader)
        assert "+sdown" not in leader and "+odown" not in leader
        new_port = int(switched.payload.split()[4])
        assert new_port != old.port
        await everyone_reports(rec, lab, new_port, since=start)


@pytest.mark.parametrize("fault", ["crash", "hang"])
async def test_a_master_that_fails_is_replaced_in_phases(lab: LabCluster, fault: str) -> None:
    old = lab.current_master()
    async with watching(lab.settings()) as (rec, _):
        await everyone_reports(rec, lab, old.port, since=0, timeout=10)
        start = rec.mark()
        if fault == "crash":
            lab.kill(old)
        else:
            lab.pause(old)
        try:
            switched = await rec.wait(
                "the leader's +switch-master",
                SentinelMessage,
                lambda m: (
                    m.channel == "+switch-master"
                    and "+failover-end" in rec.channels(m.sentinel, start)
                ),
                since=start,
                timeout=FAILOVER_TIMEOUT,
            )
            leader = rec.channels(switched.sentinel, start)
            phases = [
                "+sdown",
                "+odown",
                "+new-epoch",
                "+try-failover",
                "+elected-leader",
                "+selected-slave",
                "+promoted-slave",
                "+failover-end",
                "+switch-master",
            ]
            assert is_subsequence(phases, leader), " ".join(leader)
            for sentinel in lab.sentinel_nodes:
                seen = rec.channels(str(sentinel.address), start)
                assert is_subsequence(["+sdown", "+switch-master"], seen), seen
            new_port = int(switched.payload.split()[4])
            await everyone_reports(rec, lab, new_port, since=start)
            down = await rec.wait(
                "the old master to be reported unreachable",
                NodeUnreachable,
                lambda n: n.address == str(old.address),
                since=start,
            )
            assert down.reason == (
                "connection refused" if fault == "crash" else "timed out after 1.0 s"
            )
        finally:
            if fault == "hang":
                lab.resume(old)
        if fault == "hang":
            await rec.wait(
                "+convert-to-slave of the old master",
                SentinelMessage,
                lambda m: m.channel == "+convert-to-slave" and str(old.port) in m.payload,
                since=start,
                timeout=FAILOVER_TIMEOUT,
            )
            await rec.wait(
                "the old master to say it is a replica of the new one",
                NodeObserved,
                lambda n: (
                    n.address == str(old.address)
                    and n.role == "slave"
                    and n.master_address == f"127.0.0.1:{new_port}"
                ),
                since=start,
            )


async def test_a_sentinel_killed_and_restarted_is_reported_and_read_again(
    lab: LabCluster,
) -> None:
    victim = lab.sentinel_nodes[1]
    name = str(victim.address)
    async with watching(lab.settings()) as (rec, _):
        await rec.wait("a report from the victim", MasterObserved, lambda m: m.sentinel == name)
        start = rec.mark()
        lab.kill(victim)
        await rec.wait(
            "the victim to be unreachable",
            SentinelUnreachable,
            lambda e: e.sentinel == name,
            since=start,
            timeout=5,
        )
        down = rec.mark()
        await asyncio.to_thread(lab.restart, victim)
        back = await rec.wait(
            "the victim to be reachable again",
            SentinelReachable,
            lambda e: e.sentinel == name,
            since=down,
        )
        after = rec.events.index(back)
        await rec.wait(
            "a fresh report from the victim",
            MasterObserved,
            lambda m: m.sentinel == name and m.replicas is not None,
            since=after,
            timeout=2,
        )
        others = {str(s.address) for s in lab.sentinel_nodes} - {name}
        assert not [e for e in rec.of(SentinelUnreachable, start) if e.sentinel in others]


async def test_the_watcher_survives_losing_every_sentinel(lab: LabCluster) -> None:
    everyone = names(lab.sentinel_nodes)
    last, *others = lab.sentinel_nodes
    async with watching(lab.settings()) as (rec, _):
        await until(
            "every sentinel to answer",
            lambda: {e.sentinel for e in rec.of(SentinelReachable)} == everyone,
        )
        start = rec.mark()
        for sentinel in others:
            lab.kill(sentinel)
        # Alone, the last sentinel answers CKQUORUM with -NOQUORUM: a reply, not a failure.
        lonely = await rec.wait(
            "NOQUORUM from the last sentinel",
            MasterObserved,
            lambda m: m.sentinel == str(last.address) and m.ckquorum_ok is False,
            since=start,
        )
        assert (lonely.ckquorum or "").startswith("NOQUORUM 1 usable Sentinels"), lonely.ckquorum
        assert str(last.address) not in {e.sentinel for e in rec.of(SentinelUnreachable)}
        lab.kill(last)
        await until(
            "every sentinel to be unreachable",
            lambda: {e.sentinel for e in rec.of(SentinelUnreachable, start)} == everyone,
            timeout=5,
        )
        down = rec.mark()
        # With no sentinel at all, the data nodes they named are still asked.
        await rec.wait("a data node report", NodeObserved, since=down, timeout=5)
        for sentinel in lab.sentinel_nodes:
            await asyncio.to_thread(lab.restart, sentinel)
        await until(
            "every sentinel to be reachable again",
            lambda: {e.sentinel for e in rec.of(SentinelReachable, down)} == everyone,
        )
        await until(
            "a topology report from every sentinel again",
            lambda: {m.sentinel for m in rec.of(MasterObserved, down)} == everyone,
        )


async def test_the_watcher_always_stops_when_cancelled(lab: LabCluster) -> None:
    # redis-py can lose a cancellation that arrives as a reply does; the watcher
    # must stop anyway. Busy intervals put a command in flight most of the time.
    for attempt in range(20):
        async with watching(lab.settings(), topology_interval=0.05, watchdog_interval=0.01) as (
            rec,
            _,
        ):
            await asyncio.sleep(0.2 + attempt * 0.013)
        assert rec.of(MasterObserved)


async def test_a_hung_sentinel_is_caught_by_the_watchdog_and_heals(lab: LabCluster) -> None:
    victim = lab.sentinel_nodes[2]
    name = str(victim.address)
    async with watching(lab.settings()) as (rec, _):
        await rec.wait("a report from the victim", MasterObserved, lambda m: m.sentinel == name)
        start = rec.mark()
        paused = time.monotonic()
        lab.pause(victim)
        try:
            down = await rec.wait(
                "the watchdog to notice the hang",
                SentinelUnreachable,
                lambda e: e.sentinel == name,
                since=start,
                timeout=5,
            )
            assert time.monotonic() - paused < 4.0
            assert "timed out" in down.reason
        finally:
            lab.resume(victim)
        mark = rec.mark()
        await rec.wait(
            "the victim to be healthy again",
            SentinelReachable,
            lambda e: e.sentinel == name,
            since=mark,
        )
        await rec.wait(
            "a fresh report from the victim",
            MasterObserved,
            lambda m: m.sentinel == name,
            since=mark,
        )


async def test_replicas_that_leave_the_topology_leave_the_reports(lab: LabCluster) -> None:
    master = lab.current_master()
    detached, kept = lab.replicas()
    everyone = names(lab.sentinel_nodes)
    async with watching(lab.settings()) as (rec, _):
        await everyone_reports(rec, lab, master.port, since=0, timeout=10)

        def replicas_everywhere(expected: set[str], num_slaves: int, since: int) -> bool:
            latest = {
                m.sentinel: m for m in rec.of(MasterObserved, since) if m.replicas is not None
            }
            return set(latest) == everyone and all(
                {r.address for r in m.replicas or ()} == expected and m.num_slaves == num_slaves
                for m in latest.values()
            )

        # A replica detached and forgotten with SENTINEL RESET.
        start = rec.mark()
        detached.call("REPLICAOF", "NO", "ONE")
        for sentinel in lab.sentinel_nodes:
            sentinel.call("SENTINEL", "RESET", "mymaster")
        await until(
            "only the kept replica in every report",
            lambda: replicas_everywhere({str(kept.address)}, 1, start),
        )

        # A hidden replica: Redis 7.0 leaves it out of SENTINEL REPLICAS altogether
        # (it never shows replica-announced 0) but still counts it in num-slaves.
        start = rec.mark()
        kept.call("CONFIG", "SET", "replica-announced", "no")
        await until(
            "the hidden replica to leave every report", lambda: replicas_everywhere(set(), 1, start)
        )


@pytest.mark.parametrize("secure", ["passwords", "tls"])
async def test_sentinels_and_data_nodes_each_get_their_own_credentials(
    tmp_path: Path, secure: str
) -> None:
    node_pw, sentinel_pw = "n0de-pw-77aa", "s3nt-pw-88bb"
    config = LabConfig.fast(
        base_dir=tmp_path, password=node_pw, sentinel_password=sentinel_pw, tls=secure == "tls"
    )
    try:
        cluster = LabCluster(config).start()
    except TlsUnavailable as exc:
        pytest.skip(f"no TLS lab on this machine: {exc}")
    try:
        master = cluster.current_master()
        async with watching(cluster.settings()) as (rec, _):
            await everyone_reports(rec, cluster, master.port, since=0, timeout=10)
            await until(
                "every data node to answer",
                lambda: {n.address for n in rec.of(NodeObserved)} == names(cluster.data_nodes),
            )
        assert not rec.of(SentinelUnreachable) and not rec.of(NodeUnreachable)
        shown = "\n".join(to_json(event) for event in rec.events)
        assert node_pw not in shown and sentinel_pw not in shown
    finally:
        cluster.stop()


async def test_a_sentinel_that_leaves_the_deployment_is_forgotten(lab: LabCluster) -> None:
    seed, stays, leaves = lab.sentinel_nodes
    settings = lab.settings(sentinels=(seed.address,))
    async with watching(settings, topology_interval=0.5) as (rec, watcher):
        await until("all three to be watched", lambda: len(watcher.sentinels) == 3)
        lab.kill(leaves)
        for sentinel in (seed, stays):
            sentinel.call("SENTINEL", "RESET", "mymaster")
        forgotten = await rec.wait(
            "the departed sentinel to be forgotten",
            SentinelForgotten,
            lambda e: e.sentinel == str(leaves.address),
        )
        assert "no reachable sentinel lists it" in forgotten.reason
        await until(
            "the two that remain to be watched",
            lambda: set(watcher.sentinels) == {seed.address, stays.address},
        )
        assert str(stays.address) not in {e.sentinel for e in rec.of(SentinelUnreachable)}
