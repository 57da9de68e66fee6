"""The compose stack (compose/), checked as far as a machine without a Docker engine allows.

- the compose file parses and has every service, each with an image or a build, ports
  published on the host's 127.0.0.1 only (Redis and Sentinel ports 1:1), and the
  configuration files it mounts exist;
- `promtool check config` accepts compose/prometheus/prometheus.yml;
- the Redis and Sentinel files in compose/ form a working cluster under the real
  `redis-server`, started on free loopback ports: the replicas sync, the sentinels find
  each other and the replicas at the announced addresses, name the master, fail over,
  and rewrite their copies; the real redis_exporter and Prometheus, with the compose
  scrape configuration, see every node and sentinel under the announced addresses;
- the Docker build context has what the wheel is built from;
- `docker compose config` passes where the compose plugin is installed.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis
import yaml

from hawatch.lab import FAST_SENTINEL_DEBUG, LabNode, ManagedProcess, find_server_binary
from hawatch.lab.procs import LabError, free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose"
COMPOSE_FILE = COMPOSE / "docker-compose.yml"
PROMETHEUS_FILE = COMPOSE / "prometheus" / "prometheus.yml"
DOCKERFILE = COMPOSE / "Dockerfile"
DOCKERIGNORE = COMPOSE / "Dockerfile.dockerignore"
"""BuildKit's ignore file for that Dockerfile (its build context is the repository's root)."""
MASTER_NAME = "mymaster"

DATA_NODES = ("redis-0", "redis-1", "redis-2")
SENTINELS = ("sentinel-0", "sentinel-1", "sentinel-2")
SERVICES = {
    "net",
    *DATA_NODES,
    *SENTINELS,
    "worker",
    "loadgen",
    "redis-exporter",
    "prometheus",
    "hawatch",
}


# --------------------------------------------------------------------------- helpers


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text())
    assert isinstance(loaded, dict)
    return loaded


_VARIABLE = re.compile(r"\$\{(\w+)(?::?-([^}]*))?\}|\$\$")


def _interpolate(value: str) -> str:
    """`value` as docker compose reads it with none of its variables set."""

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return match.group(2) or ""

    return _VARIABLE.sub(replace, value)


def _conf_words(path: Path) -> list[list[str]]:
    """The directives of a Redis or Sentinel file, one list of words each."""
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line.split() for line in lines if line and not line.startswith("#")]


def _conf_port(path: Path) -> int:
    ports = [int(words[1]) for words in _conf_words(path) if words[0] == "port"]
    assert len(ports) == 1, f"{path} must set exactly one port"
    return ports[0]


def _mounted_conf(service: Mapping[str, Any]) -> Path:
    """The Redis or Sentinel file a server service mounts as its configuration."""
    sources = [
        _interpolate(v).split(":")[0]
        for v in service.get("volumes", [])
        if _interpolate(v).split(":")[1] == "/etc/hawatch/node.conf"
    ]
    assert len(sources) == 1, service
    return (COMPOSE / sources[0]).resolve()


def _poll(what: str, check: Callable[[], T | None], timeout: float = 30.0) -> T:
    """Poll `check` until it returns something other than None (errors count as None)."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while True:
        try:
            result = check()
        except (redis.RedisError, OSError, ValueError, KeyError, IndexError) as exc:
            last, result = exc, None
        if result is not None:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what} (last error: {last})")
        time.sleep(0.1)


def _as_map(reply: Any) -> dict[str, Any]:
    if isinstance(reply, dict):
        return {str(k): v for k, v in reply.items()}
    items = list(reply)
    return {str(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _http_get(url: str, timeout: float = 2.0) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        return str(response.read().decode())


# --------------------------------------------------------------------------- the compose file


def test_compose_file_has_every_service_built_or_pulled_on_one_namespace() -> None:
    services = _compose()["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        assert service.get("image") or service.get("build"), f"{name} has no image or build"
        if name != "net":
            assert service["network_mode"] == "service:net", name
    for name in ("worker", "loadgen", "hawatch"):
        build = services[name]["build"]
        context = (COMPOSE / build["context"]).resolve()
        assert context == ROOT
        assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    assert services["redis-exporter"]["image"].startswith("oliver006/redis_exporter:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert "hawatch.lab.demo_app" in services["worker"]["command"]
    assert "hawatch.lab.loadgen" in services["loadgen"]["command"]
    hawatch = services["hawatch"]
    assert hawatch["tty"] is True and hawatch["stdin_open"] is True
    assert "hawatch" in hawatch["command"]
    assert "tui" in hawatch["profiles"], "`up` must not start the screen in the background"


def test_compose_ports_are_published_on_loopback_only_and_servers_one_to_one() -> None:
    services = _compose()["services"]
    with_ports = {name for name, service in services.items() if service.get("ports")}
    assert with_ports == {"net"}, "only the namespace's holder can publish ports"
    published: dict[int, int] = {}
    for entry in services["net"]["ports"]:
        assert isinstance(entry, str), entry
        ip, host, container = _interpolate(entry).split(":")
        assert ip == "127.0.0.1", f"{entry} is published beyond the host's loopback"
        published[int(container)] = int(host)
    server_ports = {_conf_port(_mounted_conf(services[n])) for n in (*DATA_NODES, *SENTINELS)}
    for port in server_ports:
        assert published.get(port) == port, f"port {port} must be published 1:1"
    assert {9090, 9121} <= set(published), "Prometheus and the exporter are reachable"


def test_compose_mounts_files_that_exist_and_servers_start_from_a_copy() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = _interpolate(volume).split(":")[0]
            if source.startswith("."):
                assert (COMPOSE / source).is_file(), f"{name} mounts {source}, which is missing"
    for name in (*DATA_NODES, *SENTINELS):
        service = services[name]
        conf = _mounted_conf(service)
        assert conf.parent.name == ("sentinel" if name in SENTINELS else "redis")
        assert any(v.endswith(":ro") for v in service["volumes"]), "the checkout stays read-only"
        script = " ".join(service["entrypoint"])
        assert "cp /etc/hawatch/node.conf" in script and "exec redis-server" in script
        assert (service.get("command") == ["--sentinel"]) == (name in SENTINELS)
        health = " ".join(service["healthcheck"]["test"])
        assert f"-p {_conf_port(conf)} " in health, f"{name}'s health check asks another port"
    prometheus = [_interpolate(v) for v in services["prometheus"]["volumes"]]
    assert "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro" in prometheus


def test_compose_clients_are_pointed_at_the_sentinels_of_the_files() -> None:
    services = _compose()["services"]
    sentinels = ",".join(f"127.0.0.1:{_conf_port(_mounted_conf(services[n]))}" for n in SENTINELS)
    for name in ("worker", "loadgen", "hawatch"):
        environment = services[name]["environment"]
        assert environment["HAWATCH_LAB_SENTINELS"] == sentinels, name
        assert environment["HAWATCH_LAB_MASTER"] == MASTER_NAME
    assert services["hawatch"]["environment"]["HAWATCH_SENTINELS"] == sentinels
    assert services["hawatch"]["environment"]["HAWATCH_MASTER"] == MASTER_NAME
    # Prometheus listens on 9090 in the shared namespace, whatever the host port.
    assert services["hawatch"]["environment"]["HAWATCH_PROMETHEUS"] == "http://127.0.0.1:9090"
    for words in _conf_words(COMPOSE / "sentinel" / "sentinel-0.conf"):
        if words[:2] == ["sentinel", "monitor"]:
            assert words[2] == MASTER_NAME
            assert int(words[4]) == _conf_port(_mounted_conf(services["redis-0"]))


def test_prometheus_scrapes_every_server_of_the_files_every_second() -> None:
    services = _compose()["services"]
    config = yaml.safe_load(PROMETHEUS_FILE.read_text())
    assert config["global"]["scrape_interval"] == "1s"
    targets = {
        job["job_name"]: [t for sc in job["static_configs"] for t in sc["targets"]]
        for job in config["scrape_configs"]
    }
    ports = {n: _conf_port(_mounted_conf(services[n])) for n in (*DATA_NODES, *SENTINELS)}
    assert targets["redis"] == [f"127.0.0.1:{ports[n]}" for n in DATA_NODES]
    assert targets["sentinel"] == [f"127.0.0.1:{ports[n]}" for n in SENTINELS]


def test_promtool_accepts_the_prometheus_configuration() -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not installed (Debian: apt-get install prometheus)")
    done = subprocess.run(
        [promtool, "check", "config", str(PROMETHEUS_FILE)],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout + done.stderr


def _compose_command() -> list[str] | None:
    """`docker compose` where the plugin is installed, else a standalone docker-compose v2."""
    docker = shutil.which("docker")
    candidates = [[docker, "compose"]] if docker else []
    standalone = shutil.which("docker-compose") or shutil.which(
        "docker-compose", path=str(Path(sys.executable).parent)
    )
    if standalone:
        candidates.append([standalone])
    for command in candidates:
        try:
            version = subprocess.run(
                [*command, "version"],
                capture_output=True,
                text=True,
                timeout=60,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if version.returncode == 0 and re.search(r"version v?2\.", version.stdout):
            return command
    return None


def test_docker_compose_config_passes() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip(
            "the docker compose plugin is not installed (`docker compose version` failed) "
            "and no docker-compose v2 is on PATH"
        )
    done = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "--profile", "tui", "config", "--quiet"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    services = subprocess.run(
        [*command, "-f", str(COMPOSE_FILE), "config", "--services"],
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert services.returncode == 0, services.stderr
    assert set(services.stdout.split()) == SERVICES - {"hawatch"}, "`up` starts all but the screen"


# --------------------------------------------------------------------------- the image


def _ignore_regex(pattern: str) -> str:
    """A .dockerignore pattern as a regular expression over slash-separated paths."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def _dockerignore_keeps(path: str) -> bool:
    """Whether the Dockerfile's ignore file lets `path` into the build context, as
    Docker reads it: the last matching pattern wins; a pattern matching a parent
    directory matches everything in it."""
    lines = (line.strip() for line in DOCKERIGNORE.read_text().splitlines())
    parts = Path(path).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    kept = True
    for line in lines:
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        regex = _ignore_regex(line.removeprefix("!").strip("/"))
        if any(re.fullmatch(regex, prefix) for prefix in prefixes):
            kept = negated
    return kept


def _dockerfile_copies() -> list[str]:
    sources: list[str] = []
    for line in DOCKERFILE.read_text().splitlines():
        words = line.split()
        if words and words[0].upper() == "COPY":
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def test_dockerfile_copies_files_the_build_context_keeps() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert "FROM python:3.11-slim" in dockerfile
    assert "pip install ." in dockerfile
    sources = _dockerfile_copies()
    assert {"pyproject.toml", "README.md", "hawatch", "styles"} <= set(sources)
    for source in sources:
        assert (ROOT / source).exists(), source
        assert _dockerignore_keeps(source), f"{DOCKERIGNORE.name} leaves {source} out"
    for left_out in (".venv", ".git", "tests", "compose", "hawatch/__pycache__"):
        assert not _dockerignore_keeps(left_out), f"{DOCKERIGNORE.name} lets {left_out} in"


@pytest.mark.slow
def test_the_wheel_builds_from_what_the_dockerfile_copies(tmp_path: Path) -> None:
    context = tmp_path / "context"
    context.mkdir()
    for source in _dockerfile_copies():
        origin = ROOT / source
        if origin.is_dir():
            shutil.copytree(origin, context / source, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(origin, context / source)
    out = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert len(list(out.glob("hawatch-*.whl"))) == 1


# --------------------------------------------------------------------------- the servers


class _PortTaken(Exception):
    """A server could not bind its port: someone took it after we picked it."""


@dataclass
class ComposeCluster:
    """The compose files' servers, run by the real redis-server on free loopback ports."""

    directory: Path
    ports: dict[int, int] = field(default_factory=dict)
    """Compose port → the loopback port it runs on here."""
    nodes: dict[str, LabNode] = field(default_factory=dict)
    conf: dict[str, Path] = field(default_factory=dict)
    """Each server's working copy of its file (which it may rewrite)."""
    processes: list[ManagedProcess] = field(default_factory=list)

    def node(self, name: str) -> LabNode:
        return self.nodes[name]

    @property
    def data_nodes(self) -> list[LabNode]:
        return [self.nodes[n] for n in DATA_NODES]

    @property
    def sentinels(self) -> list[LabNode]:
        return [self.nodes[n] for n in SENTINELS]

    def master_by_sentinel(self) -> list[tuple[str, int] | None]:
        answers: list[tuple[str, int] | None] = []
        for s in self.sentinels:
            reply = s.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME)
            answers.append((str(reply[0]), int(reply[1])) if reply else None)
        return answers

    def stop(self) -> None:
        for proc in reversed(self.processes):
            with contextlib.suppress(Exception):
                proc.stop(timeout=5.0)


_ADDRESS_WORD = {
    "replicaof": 1,
    "replica-announce-ip": 1,
    "sentinel announce-ip": 2,
    "sentinel monitor": 3,
}
"""Where the address is in the directives that give one (by first word or first two)."""


def _rewrite(text: str, ports: Mapping[int, int], directory: Path) -> str:
    """A compose file's text, moved to the ports in `ports` and to `directory`.

    `bind` becomes 127.0.0.1 (the stack listens on its namespace's bridge too);
    the announced and replicated addresses must already be loopback ones and stay.
    """
    out: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            out.append(line)
            continue
        key = " ".join(words[:2]).lower()
        if words[0] == "bind":
            words = ["bind", "127.0.0.1"]
        elif words[0] == "dir":
            words = ["dir", f'"{directory}"']
        else:
            at = _ADDRESS_WORD.get(words[0]) or _ADDRESS_WORD.get(key)
            if at is not None:
                assert words[at] == "127.0.0.1", f"{line!r} must give the loopback address"
            words = [str(ports[int(w)]) if w.isdigit() and int(w) in ports else w for w in words]
        out.append(" ".join(words))
    rewritten = "\n".join(out) + "\n"
    for port in ports:
        live = [w for line in out if not line.startswith("#") for w in line.split()]
        assert str(port) not in live, f"compose port {port} left in:\n{rewritten}"
    return rewritten


def _launch(cluster: ComposeCluster, binary: str, name: str, source: Path) -> None:
    sentinel = name in SENTINELS
    directory = cluster.directory / name
    directory.mkdir(parents=True, exist_ok=True)
    conf = directory / source.name
    conf.write_text(_rewrite(source.read_text(), cluster.ports, directory))
    port = cluster.ports[_conf_port(source)]
    argv = [binary, str(conf), *(["--sentinel"] if sentinel else [])]
    proc = ManagedProcess(f"compose-{name}:{port}", argv, log_path=directory / "log", cwd=directory)
    cluster.processes.append(proc)
    node = LabNode(name, "sentinel" if sentinel else "data", port, directory, process=proc)
    cluster.nodes[name], cluster.conf[name] = node, conf
    deadline = time.monotonic() + 10.0
    while time.monotonic() < deadline:
        if not proc.running:
            tail = proc.log_tail()
            if "Address already in use" in tail:
                raise _PortTaken(tail)
            pytest.fail(f"redis-server refused compose/{source.relative_to(COMPOSE)}:\n{tail}")
        with contextlib.suppress(redis.RedisError, OSError):
            if node.call("PING", timeout=0.5):
                return
        time.sleep(0.05)
    pytest.fail(f"{name} did not answer PING within 10 s: {proc.log_tail()}")


def _start_compose_cluster(base: Path) -> ComposeCluster:
    binary = find_server_binary()
    services = _compose()["services"]
    sources = {n: _mounted_conf(services[n]) for n in (*DATA_NODES, *SENTINELS)}
    for attempt in range(3):
        cluster = ComposeCluster(base / f"attempt-{attempt}")
        used: set[int] = set()
        for source in sources.values():
            port = free_port()
            while port in used:
                port = free_port()
            used.add(port)
            cluster.ports[_conf_port(source)] = port
        try:
            for name, source in sources.items():
                _launch(cluster, binary, name, source)
        except _PortTaken:
            cluster.stop()
            continue
        except BaseException:
            cluster.stop()
            raise
        return cluster
    raise LabError("three attempts to start the compose files on free ports failed")


@pytest.fixture
def compose_cluster(tmp_path: Path) -> Iterator[ComposeCluster]:
    """The compose files' six servers, on free loopback ports; every process stopped by pid."""
    cluster = _start_compose_cluster(tmp_path)
    try:
        _wait_for_topology(cluster)
        yield cluster
    finally:
        cluster.stop()


def _wait_for_topology(cluster: ComposeCluster, timeout: float = 30.0) -> None:
    """Wait until the replicas are linked and every sentinel knows the whole set."""
    master = cluster.node("redis-0")
    replicas = [cluster.node(n) for n in DATA_NODES[1:]]
    sentinel_ports = {s.port for s in cluster.sentinels}

    def linked() -> bool | None:
        for replica in replicas:
            role = replica.call("ROLE")
            if role[0] != "slave" or int(role[2]) != master.port or role[3] != "connected":
                return None
        return True

    _poll("the replicas to sync from redis-0", linked, timeout)

    def known() -> bool | None:
        for s in cluster.sentinels:
            fields = _as_map(s.call("SENTINEL", "MASTER", MASTER_NAME))
            if fields["flags"] != "master" or int(fields["num-other-sentinels"]) != 2:
                return None
            seen = {
                (m["ip"], int(m["port"]))
                for m in map(_as_map, s.call("SENTINEL", "REPLICAS", MASTER_NAME))
                if m["master-link-status"] == "ok"
            }
            if seen != {("127.0.0.1", r.port) for r in replicas}:
                return None
            peers = {
                (m["ip"], int(m["port"]))
                for m in map(_as_map, s.call("SENTINEL", "SENTINELS", MASTER_NAME))
            }
            if peers != {("127.0.0.1", p) for p in sentinel_ports - {s.port}}:
                return None
        return True

    _poll("every sentinel to know the replicas and the other sentinels", known, timeout)


def test_compose_files_make_a_replicated_set_that_every_sentinel_knows(
    compose_cluster: ComposeCluster,
) -> None:
    cluster = compose_cluster
    master = cluster.node("redis-0")
    assert set(cluster.master_by_sentinel()) == {("127.0.0.1", master.port)}
    role = master.call("ROLE")
    assert role[0] == "master"
    assert sorted((r[0], int(r[1])) for r in role[2]) == sorted(
        ("127.0.0.1", cluster.node(n).port) for n in DATA_NODES[1:]
    )
    master.call("SET", "hawatch:compose", "written on the master")
    for name in DATA_NODES[1:]:
        replica = cluster.node(name)
        _poll(
            f"{name} to receive the master's write",
            lambda r=replica: r.call("GET", "hawatch:compose") or None,  # type: ignore[misc]
            10.0,
        )
    for s in cluster.sentinels:
        assert str(s.call("SENTINEL", "CKQUORUM", MASTER_NAME)).startswith("OK 3 usable")


@pytest.mark.slow
def test_compose_files_fail_over_and_the_servers_rewrite_their_copies(
    compose_cluster: ComposeCluster,
) -> None:
    cluster = compose_cluster
    services = _compose()["services"]
    checkout = {n: _mounted_conf(services[n]).read_text() for n in (*DATA_NODES, *SENTINELS)}
    old = cluster.node("redis-0")
    for s in cluster.sentinels:  # the lab's quick periods: seconds instead of tens of seconds
        s.call("SENTINEL", "DEBUG", *[x for kv in FAST_SENTINEL_DEBUG.items() for x in kv])
    assert cluster.node("sentinel-0").call("SENTINEL", "FAILOVER", MASTER_NAME) in (True, "OK")

    def agreed() -> int | None:
        answers = set(cluster.master_by_sentinel())
        if len(answers) == 1 and None not in answers:
            host, port = answers.pop()  # type: ignore[misc]
            return port if host == "127.0.0.1" and port != old.port else None
        return None

    new_port = _poll("every sentinel to name a new master", agreed, 30.0)
    new = next(n for n in cluster.data_nodes if n.port == new_port)
    _poll("the promoted node to say master", lambda: new.call("ROLE")[0] == "master" or None)

    def follows(node: LabNode) -> bool | None:
        role = node.call("ROLE")
        return (role[0] == "slave" and int(role[2]) == new.port and role[3] == "connected") or None

    for node in cluster.data_nodes:
        if node is not new:
            _poll(f"{node.name} to replicate from the new master", lambda n=node: follows(n))
    monitor = f"sentinel monitor {MASTER_NAME} 127.0.0.1 {new.port} 2"
    for name in SENTINELS:
        _poll(
            f"{name} to rewrite its copy",
            lambda name=name: monitor in cluster.conf[name].read_text() or None,
            10.0,
        )
    assert f"replicaof 127.0.0.1 {new.port}" in cluster.conf["redis-0"].read_text()
    for name, text in checkout.items():  # only the copies changed, never the checkout's files
        assert _mounted_conf(services[name]).read_text() == text


@pytest.mark.slow
def test_the_exporter_and_prometheus_see_every_server_at_its_announced_address(
    compose_cluster: ComposeCluster, tmp_path: Path
) -> None:
    exporter_bin = shutil.which("prometheus-redis-exporter") or shutil.which("redis_exporter")
    prometheus_bin = shutil.which("prometheus")
    if exporter_bin is None or prometheus_bin is None:
        pytest.skip("prometheus and prometheus-redis-exporter are not installed")
    cluster = compose_cluster
    master = cluster.node("redis-0")
    processes: list[ManagedProcess] = []
    try:
        exporter_port = free_port()
        flags = list(_compose()["services"]["redis-exporter"]["command"])
        processes.append(
            ManagedProcess(
                "compose-redis-exporter",
                [exporter_bin, *flags, f"--web.listen-address=127.0.0.1:{exporter_port}"],
                log_path=tmp_path / "exporter.log",
            )
        )
        exporter = f"http://127.0.0.1:{exporter_port}"
        own = _poll("the exporter to answer", lambda: _http_get(f"{exporter}/metrics"), 15.0)
        assert not re.search(r"^redis_up", own, re.M), "its own /metrics probes a Redis"
        sentinel = cluster.node("sentinel-1")
        target = urllib.parse.quote(f"redis://127.0.0.1:{sentinel.port}", safe="")
        metrics = _http_get(f"{exporter}/scrape?target={target}")
        status = re.search(r"^redis_sentinel_master_status\{(.*)\} (\S+)$", metrics, re.M)
        assert status is not None, metrics[:2000]
        assert f'master_address="127.0.0.1:{master.port}"' in status.group(1)
        assert status.group(2) == "1"

        # Prometheus with the compose scrape configuration, moved to this test's ports.
        # (through JSON: the jobs share their relabelling rules by a YAML alias)
        config = json.loads(json.dumps(yaml.safe_load(PROMETHEUS_FILE.read_text())))
        for job in config["scrape_configs"]:
            for static in job["static_configs"]:
                static["targets"] = [
                    f"127.0.0.1:{cluster.ports[int(t.rsplit(':', 1)[1])]}"
                    for t in static["targets"]
                ]
            for rule in job["relabel_configs"]:
                if rule.get("target_label") == "__address__":
                    assert rule["replacement"] == "127.0.0.1:9121"
                    rule["replacement"] = f"127.0.0.1:{exporter_port}"
        moved = tmp_path / "prometheus.yml"
        moved.write_text(yaml.safe_dump(config))
        web_port = free_port()
        processes.append(
            ManagedProcess(
                "compose-prometheus",
                [
                    prometheus_bin,
                    f"--config.file={moved}",
                    f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{web_port}",
                ],
                log_path=tmp_path / "prometheus.log",
            )
        )

        def query(promql: str) -> list[dict[str, Any]]:
            url = f"http://127.0.0.1:{web_port}/api/v1/query?" + urllib.parse.urlencode(
                {"query": promql}
            )
            return list(json.loads(_http_get(url))["data"]["result"])

        def sentinels_scraped() -> list[dict[str, Any]] | None:
            result = query("redis_sentinel_master_status")
            return result if len(result) == 3 else None

        statuses = _poll("Prometheus to scrape the sentinels", sentinels_scraped, 30.0)
        assert {r["metric"]["instance"] for r in statuses} == {
            f"127.0.0.1:{s.port}" for s in cluster.sentinels
        }
        for r in statuses:
            assert r["metric"]["job"] == "sentinel"
            assert r["metric"]["master_address"] == f"127.0.0.1:{master.port}"
            assert r["value"][1] == "1"
        up = _poll(
            "Prometheus to scrape the data nodes",
            lambda: (lambda r: r if len(r) == 3 else None)(query('redis_up{job="redis"} == 1')),
            30.0,
        )
        assert {r["metric"]["instance"] for r in up} == {
            f"127.0.0.1:{n.port}" for n in cluster.data_nodes
        }
    finally:
        for proc in reversed(processes):
            proc.stop(timeout=10.0)
