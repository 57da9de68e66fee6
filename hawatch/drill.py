"""`hawatch drill`: inject a fault, measure the gap, exit non-zero past an SLO.

A drill runs the same `Monitor` as the screen, headless, with the canary on so that
there is steady traffic and a resume signal; it waits for canary round trips, lets
them flow for ``--warmup`` seconds, injects one fault, waits until the incident
closes (or ``--timeout``), and prints the report (`hawatch.report`).

**Scenarios.**

- ``failover``: ``SENTINEL FAILOVER <master>`` sent to one sentinel (the one the
  failover key would ask), fed to the core as `FailoverRequested` and, against a
  given cluster, appended to the audit log.
- ``crash``: SIGKILL of the master's ``redis-server``: only on hawatch's own lab.
- ``hang``: ``CLIENT PAUSE <ms> ALL`` on the master (the lab too, so the lab
  rehearses exactly what a real cluster gets): the node keeps its sockets open
  and answers nothing for ``--hang-for`` seconds, then wakes up by itself. Redis
  7.0 does not even run ``CLIENT UNPAUSE`` during the pause, so an interrupted
  hang drill against a given cluster cannot end it early: it says until when the
  master stays paused. The incident is held open until the paused master is
  back, so its return (its demotion, the split brain) is in the report.

**The fault's time.** The report's ``fault`` phase is the moment the drill
injected it (the operator's action, see DESIGN.md), not the first evidence the
core saw (for a crash, the first failed canary send; for a hang, one send
timeout later): the outage is counted from it.

**With ``--lab``** each run gets a fresh lab (a master, replicas, sentinels on
loopback; ``--down-after`` 5000 ms by default, the value of the measured table
in the Celery failover reference; Sentinel's shortened periods unless
``--no-fast``), a worker of the demo app with ``--profile`` (``default``: Celery's
own settings) and, with ``--load``, the load generator. Runs are independent
(a crash leaves the lab without its old master). **Against a given cluster**
(the same connection options as `watch`) a fault needs ``--yes``, ``crash`` is
refused, ``--read-only`` refuses every drill, and the runs of ``--repeat`` follow
each other on the same cluster, each after the previous incident closed.

Exit status: 0 when every run passed (`hawatch.report.passed`), 1 when one did
not (over the SLO, work never resumed, no incident seen, the fault refused),
2 for bad input or a cluster that cannot be reached, 130 on Ctrl-C. Whatever
way it ends, everything the drill started is stopped, by pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from importlib import metadata
from typing import TYPE_CHECKING, Any

import click

from hawatch.core.events import (
    Event,
    FailoverRequested,
    IncidentUpdate,
    MasterObserved,
    ProbeResult,
    SentinelReachable,
    SentinelUnreachable,
)
from hawatch.core.incidents import IncidentModel, IncidentReport
from hawatch.settings import Settings, load_settings

if TYPE_CHECKING:
    from hawatch.journal import Journal
    from hawatch.lab import LabCluster, LabConfig
    from hawatch.monitor import CeleryOptions, Monitor

__all__ = [
    "DEFAULT_CANARY_RATE",
    "DEFAULT_TIMEOUT",
    "SCENARIOS",
    "DrillError",
    "DrillPlan",
    "DrillRefused",
    "DrillRun",
    "command",
    "default_hang_for",
    "run_drill",
]

EXIT_FAILED = 1
"""The drill did not pass (`hawatch.cli.EXIT_FAILED`)."""
EXIT_USAGE = 2
"""Bad input or a cluster that cannot be reached (`hawatch.cli.EXIT_USAGE`)."""

SCENARIOS = ("failover", "crash", "hang")
DEFAULT_CANARY_RATE = 5.0
"""Canary tasks per second during a drill: the steady traffic and the resume signal."""
DEFAULT_TIMEOUT = 120.0
"""Seconds after the fault to wait for the incident to close."""
DEFAULT_WARMUP = 3.0
"""Seconds of steady round trips before the fault."""
CONNECT_TIMEOUT = 20.0
"""Seconds to wait for the sentinels to name the master and the Celery side to start."""
ROUND_TRIP_TIMEOUT = 60.0
"""Seconds to wait for the first canary round trips (a worker that has just started)."""
ROUND_TRIPS = 3
"""Canary round trips that must have come back before the fault: traffic flows."""
NODE_TIMEOUT = 3.0
"""Seconds a command to a data node or a sentinel may take (CLIENT PAUSE, INFO)."""

_LAB_ONLY = (
    "replicas",
    "sentinel_count",
    "quorum",
    "master_name",
    "down_after_ms",
    "failover_timeout_ms",
    "fast",
    "profile",
    "base_dir",
    "load_rate",
)
_GIVEN_ONLY = ("sentinels", "url", "masters", "username", "node_username", "config")
_LAB_REFUSES = ("broker", "app", "queues", "tls_ca_cert", "tls_cert", "tls_key")


def _say(text: str) -> None:
    """One progress line on standard error, as every command writes them."""
    from hawatch.cli import _say as say

    say(text)


class DrillError(click.ClickException):
    """The drill could not be done, in one sentence (exit status 1)."""

    exit_code = EXIT_FAILED


class DrillRefused(DrillError):
    """Bad input, or a cluster that cannot be reached (exit status 2)."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class DrillPlan:
    """What to do in each run of a drill."""

    scenario: str
    celery: CeleryOptions
    timeout: float = DEFAULT_TIMEOUT
    """Seconds after the fault to wait for the incident to close."""
    hang_for: float | None = None
    """``hang``: seconds the master stays paused (None: `default_hang_for`)."""
    warmup: float = DEFAULT_WARMUP
    slo: float | None = None
    master: str | None = None
    """The master name to drill (None: the only one the sentinels monitor)."""
    audit: bool = False
    """Append a failover to the audit log (a given cluster; never the lab)."""
    settings_shown: dict[str, Any] = field(default_factory=dict)
    """What the report's settings say besides what the run learns (the lab's shape ...)."""


@dataclass(frozen=True)
class DrillRun:
    """One run's outcome: the incident as the report shows it, and the settings used."""

    report: IncidentReport
    settings: dict[str, Any]
    injected: float


def default_hang_for(down_after_ms: int | None) -> float:
    """How long ``hang`` pauses the master unless told: long enough for Sentinel to fail
    over (twice down-after-milliseconds plus 10 s), and at least 30 s."""
    if down_after_ms is None:
        return 30.0
    return max(30.0, 2 * down_after_ms / 1000 + 10.0)


# --------------------------------------------------------------------------- one run


class _Run:
    """One drill on one cluster: a monitor, the fault, the incident it opened."""

    def __init__(
        self,
        plan: DrillPlan,
        settings: Settings,
        *,
        lab: LabCluster | None = None,
        journal: Journal | None = None,
        say: Callable[[str], None] = _say,
    ) -> None:
        from hawatch.monitor import Monitor

        self.plan = plan
        self.settings = settings
        self.lab = lab
        self.say = say
        self.monitor: Monitor = Monitor(
            settings,
            celery=plan.celery,
            emit=self._seen,
            topology_interval=1.0,
            journal=journal,
        )
        self.master: str | None = plan.master
        self.round_trips = 0
        self.unreachable: dict[str, str] = {}
        self.injected: float | None = None
        self.paused_until: float | None = None
        self.paused_address: str | None = None
        self.announced: set[str] = set()
        self.facts: dict[str, Any] = {}

    # -- the stream -------------------------------------------------------------------

    def _seen(self, event: Event) -> None:
        """Every event of the stream, after the core: what the drill waits for."""
        if isinstance(event, ProbeResult):
            if event.probe == "canary" and event.phase == "succeeded":
                self.round_trips += 1
        elif isinstance(event, SentinelUnreachable):
            self.unreachable[event.sentinel] = event.reason
        elif isinstance(event, SentinelReachable | MasterObserved):
            self.unreachable.pop(event.sentinel, None)
        elif isinstance(event, IncidentUpdate):
            self._progress(event)

    def _progress(self, event: IncidentUpdate) -> None:
        injected = self.injected
        reached = event.reached
        if injected is None or event.master != self.master or reached is None:
            return
        if event.fault is None or event.fault < injected - 1.0 or reached in self.announced:
            return
        self.announced.add(reached)
        when = getattr(event, reached, None)
        offset = f"+{when - injected:.2f} s" if isinstance(when, float) else "now"
        if reached == "switched":
            self.say(f"{offset} switched: {event.old_master} → {event.new_master}.")
        elif reached == "resumed":
            gap = f", gap {event.gap_s:.2f} s" if event.gap_s is not None else ""
            self.say(f"{offset} work resumed{gap}; waiting for the incident to close ...")
        elif reached in ("detected", "elected", "demoted", "closed"):
            self.say(f"{offset} {reached}.")

    # -- running ----------------------------------------------------------------------

    async def run(self) -> DrillRun:
        """Run the drill once; always stops the monitor (and ends a pause it can end)."""
        plan = self.plan
        if plan.scenario == "hang":
            # Held open until the paused master is back: its return is part of the story.
            hang_for = plan.hang_for if plan.hang_for is not None else default_hang_for(None)
            self.monitor.incidents = IncidentModel(
                tracker=self.monitor.tasks,
                work_observed=True,
                stable_after=max(10.0, hang_for + 5.0),
            )
        task = asyncio.create_task(self.monitor.run(), name="hawatch drill monitor")
        try:
            address = await self._ready(task)
            await self._learn(address)
            await self._warm_up(task)
            assert self.master is not None
            await self._inject(self.monitor.cluster.master_address(self.master) or address)
            report = await self._incident(task)
        finally:
            task.cancel()
            await asyncio.wait({task})
            await self._end_pause()
        assert self.injected is not None
        return DrillRun(report=report, settings=self._settings(), injected=self.injected)

    def _check(self, task: asyncio.Task[None]) -> None:
        """Fail the drill when the monitor stopped by itself."""
        if not task.done():
            return
        error = None if task.cancelled() else task.exception()
        reason = self.settings.redact(str(error)) if error else "it ended by itself"
        raise DrillError(f"hawatch's sources stopped during the drill: {reason}.")

    async def _ready(self, task: asyncio.Task[None]) -> str:
        """Wait until the master's address is known and the Celery side runs."""
        monitor = self.monitor
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while True:
            self._check(task)
            if monitor.celery_problem is not None:
                raise DrillRefused(monitor.celery_problem)
            if self.master is None:
                names = monitor.cluster.master_names()
                if len(names) > 1:
                    raise DrillRefused(
                        f"the sentinels monitor several masters ({', '.join(names)}): "
                        "name the one to drill with --master."
                    )
                if names:
                    self.master = names[0]
            address = monitor.cluster.master_address(self.master) if self.master else None
            if address is not None and monitor.celery_started:
                return address
            if time.monotonic() > deadline:
                raise DrillRefused(self._unreachable_sentence())
            await asyncio.sleep(0.1)

    def _unreachable_sentence(self) -> str:
        seconds = f"{CONNECT_TIMEOUT:g}"
        if self.unreachable:
            reasons = "; ".join(f"{s}: {r}" for s, r in sorted(self.unreachable.items()))
            return f"no sentinel answered within {seconds} s ({reasons}); check the addresses."
        if self.master is not None and self.monitor.cluster.master_address(self.master) is None:
            return (
                f"no sentinel reported a master called {self.master} within {seconds} s; "
                "check --master."
            )
        if self.master is None:
            return f"the sentinels reported no master within {seconds} s."
        return f"the Celery side did not start within {seconds} s."

    async def _learn(self, address: str) -> None:
        """What the report's settings say about the cluster: Sentinel's down-after, the
        server's version (best effort: a question that fails leaves it out)."""
        assert self.master is not None
        info = await asyncio.to_thread(_sentinel_master, self.settings, self.master)
        if info is not None:
            with contextlib.suppress(KeyError, TypeError, ValueError):
                self.facts["down_after_ms"] = int(info["down-after-milliseconds"])
            with contextlib.suppress(KeyError, TypeError, ValueError):
                self.facts["failover_timeout_ms"] = int(info["failover-timeout"])
        version = await asyncio.to_thread(_server_version, self.settings, address)
        if version is not None:
            self.facts["server"] = version

    async def _warm_up(self, task: asyncio.Task[None]) -> None:
        """Wait for canary round trips, then let them flow for the warm-up."""
        deadline = time.monotonic() + ROUND_TRIP_TIMEOUT
        while self.round_trips < ROUND_TRIPS:
            self._check(task)
            if time.monotonic() > deadline:
                queue = self.monitor.broker.queues[0] if self.monitor.broker else "celery"
                raise DrillError(
                    f"no canary task came back within {ROUND_TRIP_TIMEOUT:g} s: start a Celery "
                    f"worker with events on (-E) that consumes the queue {queue} of this cluster."
                )
            await asyncio.sleep(0.1)
        self.say(f"traffic flows (canary {self.plan.celery.canary_rate:g}/s); warming up ...")
        end = time.monotonic() + self.plan.warmup
        while time.monotonic() < end:
            self._check(task)
            await asyncio.sleep(min(0.1, max(0.0, end - time.monotonic())))

    async def _inject(self, address: str) -> None:
        plan = self.plan
        assert self.master is not None
        master = self.master
        if plan.scenario == "failover":
            await self._failover(master)
        elif plan.scenario == "crash":
            lab = self.lab
            if lab is None:  # the command refuses it; a caller of run_drill may not
                raise DrillRefused("the crash scenario needs hawatch's own lab.")
            port = int(address.rsplit(":", 1)[1])
            node = lab.node_by_port(port)
            self.facts["fault"] = "SIGKILL of the master's redis-server"
            self.facts["fault_target"] = address
            self.say(f"fault: {self.facts['fault']} ({address})")
            self.injected = time.time()
            await asyncio.to_thread(lab.kill, node)
        else:
            hang_for = plan.hang_for
            if hang_for is None:
                hang_for = default_hang_for(self.facts.get("down_after_ms"))
            milliseconds = max(1, round(hang_for * 1000))
            self.facts["fault"] = f"CLIENT PAUSE {milliseconds} ALL on the master"
            self.facts["fault_target"] = address
            self.say(f"fault: {self.facts['fault']} ({address})")
            self.injected = time.time()
            await asyncio.to_thread(_pause, self.settings, address, milliseconds)
            self.paused_until = self.injected + milliseconds / 1000
            self.paused_address = address
        self.say(f"waiting up to {plan.timeout:g} s for the incident to close ...")

    async def _failover(self, master: str) -> None:
        from hawatch.views.failover import FAILOVER_TIMEOUT, ask_failover, choose_sentinel

        snapshot = self.monitor.cluster.snapshot(time.time())
        view = snapshot.master(master)
        sentinel = (
            None if view is None else choose_sentinel(view, snapshot, self.settings.sentinels)
        )
        if sentinel is None:
            raise DrillRefused(f"no sentinel is reachable to ask for a failover of {master}.")
        self.facts["fault"] = f"SENTINEL FAILOVER {master} sent to one sentinel"
        self.facts["fault_target"] = sentinel
        self.say(f"fault: SENTINEL FAILOVER {master} sent to {sentinel}")
        self.injected = time.time()
        outcome = await ask_failover(self.settings, master, sentinel, timeout=FAILOVER_TIMEOUT)
        self.monitor.feed(
            FailoverRequested(
                ts=self.injected,
                master=master,
                sentinel=sentinel,
                reply=outcome.reply,
                accepted=outcome.accepted,
            )
        )
        if self.plan.audit:
            from hawatch.audit import audit_failover

            problem = await asyncio.to_thread(
                audit_failover,
                self.settings,
                master=master,
                sentinel=sentinel,
                reply=outcome.reply,
                accepted=outcome.accepted,
            )
            if problem is not None:
                self.say(f"warning: {problem}.")
        if not outcome.accepted:
            unanswered = outcome.reply.startswith(("TIMEOUT", "ERROR"))
            failure = DrillRefused if unanswered else DrillError
            raise failure(f"{outcome.sentence}.")

    async def _incident(self, task: asyncio.Task[None]) -> IncidentReport:
        """The incident the fault opened once it closed, or as it stands at the timeout."""
        injected = self.injected
        assert injected is not None and self.master is not None
        deadline = injected + self.plan.timeout
        while True:
            self._check(task)
            report = self._ours(self.monitor.incidents.reports())
            if report is not None and report.status == "closed":
                break
            now = time.time()
            if now >= deadline:
                live = self._ours(self.monitor.incidents.snapshot(now).open)
                report = live or report
                if report is None:
                    raise DrillError(
                        f"the fault was injected but hawatch saw no incident of {self.master} "
                        f"within {self.plan.timeout:g} s."
                    )
                words = (
                    f"the drill stopped waiting {self.plan.timeout:g} s after the fault "
                    "(--timeout) with the incident still open."
                )
                report = replace(report, note=f"{report.note} {words}" if report.note else words)
                self.say(words[0].upper() + words[1:])
                break
            await asyncio.sleep(0.1)
        return _from_injection(report, injected)

    def _ours(self, reports: tuple[IncidentReport, ...]) -> IncidentReport | None:
        """The first incident of the drilled master that began at or after the fault."""
        injected = self.injected
        assert injected is not None
        for report in reports:
            if report.master == self.master and (report.fault or 0.0) >= injected - 1.0:
                return report
        return None

    async def _end_pause(self) -> None:
        """A drill that ends while the master is still paused tries to wake it up; if the
        server does not let it (Redis 7.0 pauses CLIENT UNPAUSE too) it says until when."""
        until = self.paused_until
        address = self.paused_address
        if until is None or address is None or time.time() >= until - 0.5:
            return
        if self.lab is not None:
            return  # the lab is stopped right after: nothing stays paused
        if not await asyncio.to_thread(_unpause, self.settings, address):
            from datetime import UTC, datetime

            clock = datetime.fromtimestamp(until, UTC).strftime("%H:%M:%S UTC")
            self.say(
                f"warning: the master {address} stays paused until {clock} "
                "(CLIENT PAUSE ends by itself then)."
            )

    def _settings(self) -> dict[str, Any]:
        shown: dict[str, Any] = dict(self.plan.settings_shown)
        facts = self.facts
        for key in ("down_after_ms", "failover_timeout_ms"):
            if key in facts and key not in shown:
                shown[key] = facts[key]
        shown["fault"] = facts.get("fault")
        shown["fault_target"] = facts.get("fault_target")
        if self.plan.scenario == "hang" and self.paused_until is not None and self.injected:
            shown["hang_for_s"] = round(self.paused_until - self.injected, 3)
        celery = self.plan.celery
        shown["canary"] = f"celery.accumulate at {celery.canary_rate:g}/s"
        shown["warmup_s"] = self.plan.warmup
        shown["timeout_s"] = self.plan.timeout
        shown["versions"] = _versions(facts.get("server"))
        return shown


def _from_injection(report: IncidentReport, injected: float) -> IncidentReport:
    """The report with the fault at the moment the drill injected it, and the outage
    counted from there (the core's first evidence comes a little later)."""
    fault = report.fault
    if fault is None or fault <= injected:
        return report
    shift = fault - injected
    outage = report.outage_s + shift if report.outage_s is not None else None
    return replace(report, fault=injected, outage_s=outage)


# --------------------------------------------------------------------------- node commands


def _node_client(settings: Settings, address: str, *, sentinel: bool = False) -> Any:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    from hawatch.settings import parse_address

    parsed = parse_address(address, what="the node's address")
    kwargs: dict[str, Any] = settings.redis_kwargs() if sentinel else settings.node_redis_kwargs()
    return redis.Redis(
        host=parsed.host,
        port=parsed.port,
        socket_timeout=NODE_TIMEOUT,
        socket_connect_timeout=NODE_TIMEOUT,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),  # a retried CLIENT PAUSE could pause twice
        **kwargs,
    )


def _pause(settings: Settings, address: str, milliseconds: int) -> None:
    """``CLIENT PAUSE milliseconds ALL`` on the node at `address`, or a `DrillError`."""
    import redis

    from hawatch.sources.sentinel import describe_error

    client = _node_client(settings, address)
    try:
        client.execute_command("CLIENT", "PAUSE", milliseconds, "ALL")
    except redis.RedisError as error:
        if isinstance(error, redis.ResponseError):
            said = settings.redact(str(error).strip().splitlines()[0] if str(error) else "")
            raise DrillRefused(
                f"the master {address} refused CLIENT PAUSE ({said or 'no reason given'}); "
                "the data nodes' user needs +client|pause."
            ) from None
        reason = settings.redact(describe_error(error, timeout=NODE_TIMEOUT, peer="node"))
        raise DrillRefused(f"could not reach the master {address} to pause it: {reason}.") from None
    finally:
        client.close()


def _unpause(settings: Settings, address: str) -> bool:
    """Try ``CLIENT UNPAUSE`` (1 s); True when the node answered."""
    import redis

    client = _node_client(settings, address)
    try:
        client.connection_pool.connection_kwargs["socket_timeout"] = 1.0
        client.execute_command("CLIENT", "UNPAUSE")
    except (redis.RedisError, OSError):
        return False
    finally:
        client.close()
    return True


def _sentinel_master(settings: Settings, master: str) -> dict[str, Any] | None:
    """``SENTINEL MASTER master`` from the first sentinel that answers, or None."""
    import redis

    for sentinel in settings.sentinels:
        client = _node_client(settings, str(sentinel), sentinel=True)
        try:
            reply = client.execute_command("SENTINEL", "MASTER", master)
        except (redis.RedisError, OSError):
            continue
        finally:
            client.close()
        if isinstance(reply, dict):
            return {str(k): v for k, v in reply.items()}
        if isinstance(reply, list | tuple):
            items = list(reply)
            return {str(items[i]): items[i + 1] for i in range(0, len(items) - 1, 2)}
    return None


def _server_version(settings: Settings, address: str) -> str | None:
    """``Redis 7.0.15`` (or Valkey) from the master's ``INFO server``, or None."""
    import redis

    client = _node_client(settings, address)
    try:
        info = client.info("server")
    except (redis.RedisError, OSError):
        return None
    finally:
        client.close()
    if "valkey_version" in info:
        return f"Valkey {info['valkey_version']}"
    version = info.get("redis_version")
    return f"Redis {version}" if version else None


def _versions(server: str | None) -> str:
    parts = [server] if server else []
    for name, shown in (("celery", "celery"), ("kombu", "kombu"), ("redis", "redis-py")):
        with contextlib.suppress(metadata.PackageNotFoundError):
            parts.append(f"{shown} {metadata.version(name)}")
    return ", ".join(parts)


# --------------------------------------------------------------------------- runs


def run_drill(
    plan: DrillPlan,
    settings: Settings,
    *,
    lab: LabCluster | None = None,
    journal: Journal | None = None,
    say: Callable[[str], None] = _say,
) -> DrillRun:
    """Run one drill on the cluster `settings` reach (`lab`: hawatch's own, which may be
    crashed); blocks until the incident closed or the plan's timeout passed."""
    return asyncio.run(_Run(plan, settings, lab=lab, journal=journal, say=say).run())


def _lab_run(
    plan: DrillPlan,
    config: LabConfig,
    *,
    profile: str,
    load_rate: float,
    journal: Journal | None,
) -> DrillRun:
    """One run on a fresh lab: the cluster, a worker, maybe load; all stopped after."""
    from hawatch.lab import LabCluster, start_loadgen, start_worker

    cluster = LabCluster(config)
    try:
        _say("starting a lab cluster on loopback ports ...")
        cluster.start()
        _say(f"lab ready in {cluster.directory}; starting a Celery worker (profile {profile}) ...")
        start_worker(cluster, profile=profile)
        if load_rate > 0:
            start_loadgen(cluster, rate=load_rate, profile=profile)
        return run_drill(plan, cluster.settings(), lab=cluster, journal=journal)
    finally:
        _say("stopping the lab cluster and the processes the drill started ...")
        cluster.stop()


def _lab_shown(config: LabConfig, profile: str, load_rate: float) -> dict[str, Any]:
    from hawatch.lab.demo_app import TUNED_TRANSPORT_OPTIONS

    shape = (
        f"hawatch lab: 1 master, {config.replicas} replicas, {config.sentinels} sentinels "
        f"(quorum {config.quorum}) on loopback"
    )
    if config.sentinel_debug:
        shape += "; Sentinel periods shortened (SENTINEL DEBUG)"
    if profile == "tuned":
        options = ", ".join(f"{k}={v}" for k, v in TUNED_TRANSPORT_OPTIONS.items())
        worker = (
            f"tuned: broker transport options {options}; sentinel timeouts 1 s; "
            "broker_connection_max_retries=None, prefetch 1, publish retries up to 30 x 1 s"
        )
    else:
        worker = "default: Celery's own settings"
    shown: dict[str, Any] = {
        "cluster": shape,
        "down_after_ms": config.down_after_ms,
        "failover_timeout_ms": config.failover_timeout_ms,
        "worker": "1 worker of the demo app (prefork, 2 processes, -E, "
        "--without-mingle --without-gossip)",
        "profile": worker,
    }
    if config.sentinel_debug:
        shown["sentinel_debug_ms"] = ", ".join(f"{k} {v}" for k, v in config.sentinel_debug.items())
    if load_rate > 0:
        shown["load"] = f"demo tasks at {load_rate:g}/s"
    return shown


# --------------------------------------------------------------------------- the command


def _given(ctx: click.Context, name: str) -> bool:
    """True when the option `name` was given on the command line or by its variable."""
    from click.core import ParameterSource

    source = ctx.get_parameter_source(name)
    return source in (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)


def _flag(ctx: click.Context, name: str) -> str:
    """The option's spelling for messages: ``--down-after``."""
    for param in ctx.command.params:
        if param.name == name and param.opts:
            return str(param.opts[0])
    return name


def command() -> click.Command:
    """The `hawatch drill` command, built on the options the other commands share.

    Built on demand, not at import, because those options live in `hawatch.cli`, which
    registers this command when it is imported.
    """
    from hawatch.cli import celery_options, connection_options, lab_options

    options: list[Callable[[Any], Any]] = [
        click.option(
            "--scenario",
            type=click.Choice(SCENARIOS),
            required=True,
            help="failover: SENTINEL FAILOVER; crash: SIGKILL of the master (--lab only); "
            "hang: CLIENT PAUSE on the master for --hang-for seconds.",
        ),
        click.option(
            "--lab",
            "use_lab",
            is_flag=True,
            help="Start a fresh local cluster, a Celery worker and canary traffic for each run.",
        ),
        click.option(
            "--yes",
            is_flag=True,
            help="Confirm the fault on a given cluster (required without --lab).",
        ),
        click.option(
            "--slo",
            type=click.FloatRange(min=0),
            metavar="SECONDS",
            help="Exit 1 unless every gap (resumed − switched) is at most SECONDS.",
        ),
        click.option(
            "--repeat",
            type=click.IntRange(1, 100),
            default=1,
            show_default=True,
            metavar="N",
            help="Run the drill N times; report the median, min and max.",
        ),
        click.option(
            "--timeout",
            type=click.FloatRange(5, 3600),
            default=DEFAULT_TIMEOUT,
            show_default=True,
            metavar="SECONDS",
            help="After the fault, wait at most this long for the incident to close; work not "
            "resumed by then fails the drill.",
        ),
        click.option(
            "--hang-for",
            type=click.FloatRange(0.1, 3600),
            metavar="SECONDS",
            help="hang: how long the master stays paused. Default: twice Sentinel's "
            "down-after plus 10 s, at least 30 s.",
        ),
        click.option(
            "--warmup",
            type=click.FloatRange(0, 600),
            default=DEFAULT_WARMUP,
            show_default=True,
            metavar="SECONDS",
            help="Steady canary traffic before the fault.",
        ),
        click.option(
            "--json", "as_json", is_flag=True, help="Print the report as one JSON object."
        ),
        click.option(
            "--markdown",
            "as_markdown",
            is_flag=True,
            help="Print a postmortem-ready Markdown section.",
        ),
        lab_options,
        click.option(
            "--load",
            "load_rate",
            type=click.FloatRange(0, 1000),
            default=0.0,
            show_default=True,
            metavar="RATE",
            help="--lab: also send demo tasks at RATE per second (0: the canary only).",
        ),
        connection_options,
        celery_options(canary_default=DEFAULT_CANARY_RATE),
        click.option(
            "--journal",
            "journal",
            metavar="PATH",
            help="Also append every event the drill sees to this JSON-lines file (for a replay).",
        ),
        click.option(
            "--read-only",
            "read_only",
            flag_value=True,
            default=None,
            help="Refuse to change anything: the drill then refuses to run. "
            "Default: $HAWATCH_READ_ONLY.",
        ),
    ]
    decorated: Any = click.pass_context(_drill)
    for option in reversed(options):
        decorated = option(decorated)
    return click.command(name="drill")(decorated)


def _drill(
    ctx: click.Context,
    scenario: str,
    use_lab: bool,
    yes: bool,
    slo: float | None,
    repeat: int,
    timeout: float,
    hang_for: float | None,
    warmup: float,
    as_json: bool,
    as_markdown: bool,
    profile: str,
    load_rate: float,
    connection: dict[str, Any],
    celery: dict[str, Any],
    journal: str | None,
    read_only: bool | None,
    **lab_kw: Any,
) -> int:
    """Inject a fault, measure the gap, exit non-zero past an SLO.

    Runs steady canary traffic (celery.accumulate, --canary per second), injects
    the fault once round trips flow, waits until the incident closes (or
    --timeout) and prints the report: text, --json or --markdown.

    \b
    hawatch drill --lab --scenario crash --slo 10
    hawatch drill --sentinel 10.0.0.5:26379 --master mymaster --scenario failover --yes

    With --lab, each run starts a fresh local cluster (--down-after, default
    5000 ms), a worker (--profile default: Celery's own settings; tuned) and
    the canary. Against a given cluster (the options of `watch`), --yes is
    required, a worker must already consume the queue, crash is refused and
    --read-only refuses the drill.

    Exit status: 0 every run passed, 1 one did not (over --slo, work never
    resumed), 2 bad input or an unreachable cluster, 130 interrupted.
    """
    from hawatch.cli import _celery_options, _lab_config, _open_journal

    if as_json and as_markdown:
        raise click.UsageError("--json and --markdown cannot be combined; choose one")
    if read_only:
        raise click.UsageError(
            "--read-only forbids changing the cluster and a drill injects a fault; drop --read-only"
        )
    if celery["canary_rate"] <= 0:
        raise click.UsageError(
            "the drill needs the canary's steady traffic to see work resume: "
            "give --canary a rate above 0"
        )
    if not celery["celery_enabled"]:
        raise click.UsageError(
            "the drill measures when Celery tasks run again, which --no-celery turns off; "
            "drop --no-celery"
        )
    explicit_timeout = _given(ctx, "timeout")
    if hang_for is not None and scenario != "hang":
        raise click.UsageError("--hang-for only applies to --scenario hang")
    if hang_for is not None and explicit_timeout and timeout <= hang_for:
        raise click.UsageError(
            f"--timeout ({timeout:g} s) must be longer than --hang-for ({hang_for:g} s): "
            "work cannot resume before the master wakes up or fails over"
        )
    lab_kw["profile"] = profile
    lab_kw["load_rate"] = load_rate
    flags = {**lab_kw, **connection, **celery}
    if use_lab:
        given = [n for n in (*_GIVEN_ONLY, *_LAB_REFUSES) if n in flags and _given(ctx, n)]
        if given:
            raise click.UsageError(
                f"--lab starts its own cluster and worker; drop {_flag(ctx, given[0])}"
            )
    else:
        lab_only = [n for n in _LAB_ONLY if _given(ctx, n)]
        if lab_only:
            raise click.UsageError(f"{_flag(ctx, lab_only[0])} only applies with --lab")
        if scenario == "crash":
            raise click.UsageError(
                "the crash scenario kills the master's process, which hawatch can only do "
                "on its own lab: add --lab, or use --scenario failover or hang"
            )

    if use_lab:
        config = _lab_config(**lab_kw)
        options = _lab_celery(celery)
        if hang_for is None and scenario == "hang":
            hang_for = default_hang_for(config.down_after_ms)
        if hang_for is not None and not explicit_timeout:
            timeout = max(timeout, hang_for + 60.0)
        plan = DrillPlan(
            scenario=scenario,
            celery=options,
            timeout=timeout,
            hang_for=hang_for,
            warmup=warmup,
            slo=slo,
            master=config.master_name,
            settings_shown=_lab_shown(config, profile, load_rate),
        )
        recording = _open_journal(Settings(sentinels=()), journal, default_on=False)
        runs = _runs(
            repeat,
            lambda: _lab_run(plan, config, profile=profile, load_rate=load_rate, journal=recording),
            recording,
        )
    else:
        settings = load_settings(**connection, read_only=read_only)
        if settings.read_only:
            raise click.UsageError(
                "read-only mode forbids changing the cluster and a drill injects a fault; "
                "unset it (HAWATCH_READ_ONLY, read_only in the config file) for the drill"
            )
        if len(settings.masters) > 1:
            raise click.UsageError("name one master to drill (one --master)")
        if not yes:
            raise click.UsageError(
                f"a drill injects a real fault ({scenario}) into the cluster at "
                f"{', '.join(str(s) for s in settings.sentinels)}: add --yes to go ahead, "
                "or use --lab for a local cluster"
            )
        options = _celery_options(settings, celery)
        if hang_for is not None and not explicit_timeout:
            timeout = max(timeout, hang_for + 60.0)
        plan = DrillPlan(
            scenario=scenario,
            celery=options,
            timeout=timeout,
            hang_for=hang_for,
            warmup=warmup,
            slo=slo,
            master=settings.masters[0] if settings.masters else None,
            audit=True,
            settings_shown={"cluster": settings.describe()},
        )
        if scenario == "hang" and hang_for is None:
            # The default depends on the cluster's down-after: asked once, before the runs.
            name = plan.master
            info = _sentinel_master(settings, name) if name else None
            down_after = None
            with contextlib.suppress(KeyError, TypeError, ValueError):
                down_after = int(info["down-after-milliseconds"]) if info else None
            hang_for = default_hang_for(down_after)
            plan = replace(
                plan,
                hang_for=hang_for,
                timeout=timeout if explicit_timeout else max(timeout, hang_for + 60.0),
            )
        recording = _open_journal(settings, journal, default_on=False)
        runs = _runs(repeat, lambda: run_drill(plan, settings, journal=recording), recording)

    _print(runs, scenario=scenario, slo=slo, as_json=as_json, as_markdown=as_markdown)
    from hawatch.report import passed

    return 0 if all(passed(run.report, slo) for run in runs) else EXIT_FAILED


def _lab_celery(celery: dict[str, Any]) -> CeleryOptions:
    from hawatch.monitor import CeleryOptions

    return CeleryOptions(canary_rate=celery["canary_rate"], lost_after=celery["lost_after"])


def _runs(repeat: int, once: Callable[[], DrillRun], recording: Journal | None) -> list[DrillRun]:
    """Run the drill `repeat` times, one after the other, inside the signal guard."""
    from hawatch.lab import signals_raise_interrupt

    runs: list[DrillRun] = []
    try:
        with signals_raise_interrupt():
            for index in range(repeat):
                if repeat > 1:
                    _say(f"run {index + 1} of {repeat} ...")
                runs.append(once())
    finally:
        if recording is not None:
            recording.close()
    return runs


def _print(
    runs: list[DrillRun], *, scenario: str, slo: float | None, as_json: bool, as_markdown: bool
) -> None:
    from hawatch import report as fmt

    reports = [run.report for run in runs]
    # A summary shows the settings every run shared (not, say, each run's master).
    settings = {
        key: value
        for key, value in (runs[0].settings if runs else {}).items()
        if all(run.settings.get(key) == value for run in runs)
    }
    if len(runs) == 1:
        if as_json:
            text = json.dumps(
                fmt.as_json(reports[0], scenario=scenario, slo=slo, settings=settings),
                indent=2,
                ensure_ascii=False,
            )
            text += "\n"
        elif as_markdown:
            text = fmt.as_markdown(reports[0], scenario=scenario, slo=slo, settings=settings)
        else:
            text = fmt.as_text(reports[0], scenario=scenario, slo=slo, settings=settings)
    elif as_json:
        data = fmt.summary_json(reports, scenario=scenario, slo=slo, settings=settings)
        for item, run in zip(data["reports"], runs, strict=True):
            item["settings"] = run.settings
        text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    elif as_markdown:
        text = fmt.summary_markdown(reports, scenario=scenario, slo=slo, settings=settings)
    else:
        text = fmt.summary_text(reports, scenario=scenario, slo=slo, settings=settings)
    click.echo(text, nl=False)
