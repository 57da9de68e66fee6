"""The failover key on a real cluster: Cancel and Escape send nothing, confirming moves
the master (and a second request at once is INPROG), read-only removes the key, and the
sentinels' refusals (NOPERM, NOGOODSLAVE) come back as sentences.

"Sends nothing" is checked on the sentinels themselves: ``SENTINEL FAILOVER`` bumps the
master's config epoch even when the failover fails, so an unchanged epoch and an
unchanged master mean no request reached any sentinel.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from textual.command import CommandList, CommandPalette
from textual.pilot import Pilot

from hawatch.lab import LabCluster, LabConfig
from hawatch.settings import Secret, Settings
from hawatch.views.app import HawatchApp, MasterPanel
from hawatch.views.confirm import ConfirmFailover

pytestmark = pytest.mark.integration

SIZE = (80, 24)
MONITOR_PW = "m0n-pw-5d2a"
#: The read-only monitor user of the reference (docs: Access control), without
#: ``+client|setinfo`` (Redis 7.0 does not know it; redis-py ignores its refusal).
MONITOR_ACL = (
    "&* -@all +ping +hello +auth +client|setname +info +role +subscribe "
    "+psubscribe +unsubscribe +punsubscribe +sentinel|masters +sentinel|master "
    "+sentinel|replicas +sentinel|slaves +sentinel|sentinels "
    "+sentinel|get-master-addr-by-name +sentinel|ckquorum +sentinel|info-cache +sentinel|myid"
)


@pytest.fixture
def audit_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The audit log of this test only."""
    path = tmp_path / "state" / "audit.log"
    monkeypatch.setenv("HAWATCH_AUDIT_LOG", str(path))
    return path


async def wait_until(
    pilot: Pilot[None], condition: Callable[[], bool], timeout: float, what: str
) -> None:
    """Let the app run until `condition` holds; fail saying `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what} not seen within {timeout} s"
        await pilot.pause(0.05)


def panel(app: HawatchApp) -> str:
    panels = list(app.query(MasterPanel))
    return panels[0].text if panels else ""


def screen_text(app: HawatchApp) -> str:
    """What the terminal shows right now, as plain text."""
    return "\n".join(strip.text for strip in app.screen._compositor.render_strips())


def epochs(lab: LabCluster) -> list[int]:
    """Each sentinel's config epoch for the lab's master."""
    found = []
    for sentinel in lab.sentinel_nodes:
        reply = sentinel.call("SENTINEL", "MASTER", lab.master_name)
        fields = (
            reply if isinstance(reply, dict) else dict(zip(reply[::2], reply[1::2], strict=True))
        )
        found.append(int(fields["config-epoch"]))
    return found


async def open_modal(app: HawatchApp, pilot: Pilot[None]) -> ConfirmFailover:
    await pilot.press("f")
    await wait_until(pilot, lambda: isinstance(app.screen, ConfirmFailover), 2, "the modal")
    assert isinstance(app.screen, ConfirmFailover)
    return app.screen


async def confirm(app: HawatchApp, pilot: Pilot[None]) -> None:
    """Open the modal and confirm: move off Cancel to "Fail over", press Enter."""
    await open_modal(app, pilot)
    await pilot.press("tab", "enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmFailover), 2, "closing")


async def test_cancel_and_escape_send_nothing(lab: LabCluster, audit_log: Path) -> None:
    old = lab.current_master()
    before = epochs(lab)
    app = HawatchApp(lab.settings(), topology_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: f"master {old.address}" in panel(app), 10, "the master")
        assert f"mymaster   master {old.address}   OK" in screen_text(app)

        modal = await open_modal(app, pilot)
        assert (modal.master, modal.address) == ("mymaster", str(old.address))
        assert modal.sentinel == str(lab.sentinel_addresses[0])
        assert app.focused is not None and app.focused.id == "cancel"
        await pilot.press("enter")  # on Cancel
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmFailover), 2, "cancel")

        await open_modal(app, pilot)
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, ConfirmFailover), 2, "escape")

        await pilot.pause(2.0)  # a failover of the fast lab would have started by now
        assert app.notice_text == ""
        assert f"master {old.address}" in panel(app)
        await pilot.press("q")
    assert lab.master_by_sentinel() == [("127.0.0.1", old.port)] * 3
    assert epochs(lab) == before
    assert not audit_log.exists()


async def test_confirm_fails_over_and_a_second_request_is_inprog(
    lab: LabCluster, audit_log: Path
) -> None:
    old = lab.current_master()
    first = str(lab.sentinel_addresses[0])
    app = HawatchApp(lab.settings(), topology_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: f"master {old.address}" in panel(app), 10, "the master")
        await confirm(app, pilot)
        accepted = f"failover of mymaster accepted by {first}"
        await wait_until(pilot, lambda: accepted in app.notice_text, 5, "the accepted reply")
        # At once, a second request: the same sentinel is asked, and it is busy.
        await confirm(app, pilot)
        inprog = "a failover of mymaster is already in progress"
        await wait_until(pilot, lambda: inprog in app.notice_text, 5, "the INPROG reply")
        assert f"({first} answered INPROG)" in app.notice_text
        assert inprog in screen_text(app)

        new = lab.wait_for_new_master(old.port, timeout=30)
        await wait_until(pilot, lambda: f"master {new.address}" in panel(app), 10, "the new one")
        text = panel(app)
        assert f"was {old.address}" in text
        view = app.cluster_state.snapshot(time.time()).master("mymaster")
        assert view is not None
        recorded = [e.text for e in view.events]  # the panel shows the newest of them
        assert f"operator failover via {first}: accepted (OK)" in recorded
        assert any(
            t.startswith(f"operator failover via {first}: refused (INPROG") for t in recorded
        )
        assert f"master {new.address}" in screen_text(app)
        await pilot.press("q")
    records = [json.loads(line) for line in audit_log.read_text().splitlines()]
    assert [(r["master"], r["sentinel"], r["accepted"]) for r in records] == [
        ("mymaster", first, True),
        ("mymaster", first, False),
    ]
    assert records[0]["reply"] == "OK"
    assert records[1]["reply"].startswith("INPROG")
    assert all(r["user"] and r["host"] and r["time"] and r["unix"] for r in records)


async def test_read_only_offers_no_failover_anywhere(lab: LabCluster, audit_log: Path) -> None:
    old = lab.current_master()
    before = epochs(lab)
    app = HawatchApp(lab.settings(read_only=True), topology_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: f"master {old.address}" in panel(app), 10, "the master")
        await wait_until(
            pilot, lambda: "q Quit" in screen_text(app).splitlines()[-1], 5, "the footer"
        )
        footer = screen_text(app).splitlines()[-1]
        assert "q Quit" in footer and "Fail over" not in footer
        assert "f" not in app.screen.active_bindings

        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette), 2, "palette")
        await pilot.pause(0.5)
        listed = [str(o.prompt) for o in app.screen.query_one(CommandList).options]
        assert listed and not [c for c in listed if "fail" in c.lower()]
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, CommandPalette), 2, "closing")

        await pilot.press("f")
        await pilot.pause(2.0)
        assert len(app.screen_stack) == 1 and not isinstance(app.screen, ConfirmFailover)
        assert app.notice_text == ""
        await pilot.press("q")
    assert lab.master_by_sentinel() == [("127.0.0.1", old.port)] * 3
    assert epochs(lab) == before
    assert not audit_log.exists()


async def test_a_user_without_sentinel_failover_gets_noperm(
    lab: LabCluster, audit_log: Path
) -> None:
    for sentinel in lab.sentinel_nodes:
        assert sentinel.call(
            "ACL", "SETUSER", "hawatch", "on", f">{MONITOR_PW}", *MONITOR_ACL.split()
        )
    settings: Settings = lab.settings(username="hawatch", password=Secret(MONITOR_PW))
    old = lab.current_master()
    before = epochs(lab)
    app = HawatchApp(settings, topology_interval=0.2)
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: f"master {old.address}" in panel(app), 10, "the master")
        await confirm(app, pilot)
        await wait_until(pilot, lambda: "NOPERM" in app.notice_text, 5, "the NOPERM reply")
        assert "this user may not fail over (NOPERM): " in app.notice_text
        assert "sentinel|failover" in app.notice_text
        await pilot.press("q")
    assert epochs(lab) == before
    (line,) = audit_log.read_text().splitlines()
    record = json.loads(line)
    assert record["reply"].startswith("NOPERM") and record["redis_user"] == "hawatch"
    assert MONITOR_PW not in line


async def test_without_a_replica_the_sentinel_answers_nogoodslave(
    tmp_path: Path, audit_log: Path
) -> None:
    with LabCluster(LabConfig.fast(base_dir=tmp_path, replicas=0)) as lab:
        old = lab.current_master()
        app = HawatchApp(lab.settings(), topology_interval=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await wait_until(pilot, lambda: f"master {old.address}" in panel(app), 10, "master")
            await confirm(app, pilot)
            await wait_until(pilot, lambda: "NOGOODSLAVE" in app.notice_text, 5, "NOGOODSLAVE")
            assert "no replica can be promoted" in app.notice_text
            await pilot.press("q")
        assert lab.current_master() is old
    record = json.loads(audit_log.read_text())
    assert record["reply"].startswith("NOGOODSLAVE") and record["accepted"] is False
