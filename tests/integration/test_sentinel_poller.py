"""The sentinel poller against real servers: what it reports, and why it says a sentinel failed."""

from __future__ import annotations

import pytest

from hawatch.core.events import Event, MasterObserved, SentinelReachable, SentinelUnreachable
from hawatch.lab import LabCluster
from hawatch.lab.procs import free_port
from hawatch.settings import SentinelAddress, Settings
from hawatch.sources.sentinel import SentinelPoller

pytestmark = pytest.mark.integration


async def poll(*addresses: SentinelAddress, masters: tuple[str, ...] = ()) -> list[Event]:
    events: list[Event] = []
    poller = SentinelPoller(Settings(sentinels=addresses, masters=masters), events.append)
    try:
        await poller.poll_once()
    finally:
        await poller.aclose()
    return events


async def test_a_real_sentinel_reports_the_master(lab: LabCluster) -> None:
    master = lab.current_master()
    events = await poll(lab.sentinel_addresses[0])
    assert isinstance(events[0], SentinelReachable)
    (observed,) = [e for e in events if isinstance(e, MasterObserved)]
    assert (observed.master, observed.ip, observed.port) == ("mymaster", "127.0.0.1", master.port)
    assert observed.sentinel == str(lab.sentinel_addresses[0])
    assert "master" in observed.flags
    assert observed.quorum == 2 and observed.num_other_sentinels == 2 and observed.num_slaves == 2
    filtered = await poll(lab.sentinel_addresses[0], masters=("other",))
    assert [type(e) for e in filtered] == [SentinelReachable]


async def test_failures_are_named_in_a_sentence(lab: LabCluster) -> None:
    data_node = lab.current_master().address
    closed = SentinelAddress("127.0.0.1", free_port())
    paused = lab.sentinel_nodes[2]
    lab.pause(paused)
    try:
        events = await poll(data_node, closed, paused.address)
    finally:
        lab.resume(paused)
    reasons = {e.sentinel: e.reason for e in events if isinstance(e, SentinelUnreachable)}
    assert reasons == {
        str(data_node): "not a sentinel: it does not know SENTINEL MASTERS",
        str(closed): "connection refused",
        str(paused.address): "timed out after 1.0 s",
    }
