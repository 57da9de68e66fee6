"""hawatch's command line.

Every failure a user can cause (a bad address, a missing binary, a taken port)
ends in one sentence on standard error and a non-zero exit status, never a
traceback: exit status 2 for bad input, 1 when something could not be done,
130 when interrupted.
"""

from __future__ import annotations

import contextlib
import functools
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from hawatch import __version__
from hawatch.cli_extras import (
    extra_options,
    http_probe_options,
    option_group,
    prometheus_options,
)
from hawatch.monitor import DEFAULT_LOST_AFTER
from hawatch.settings import Settings, SettingsError, load_settings, redact_url

if TYPE_CHECKING:
    from hawatch.journal import Journal
    from hawatch.lab import LabCluster, LabConfig
    from hawatch.monitor import CeleryOptions, Monitor
    from hawatch.sources.http_probe import HttpProbeOptions
    from hawatch.sources.prometheus import PrometheusOptions
    from hawatch.views.options import ScreenOptions

F = TypeVar("F", bound=Callable[..., Any])

EXIT_USAGE = 2
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130


class DefaultGroup(click.Group):
    """A group whose default subcommand is `watch`: `hawatch --sentinel h:p` watches."""

    default_command = "watch"

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Put `watch` in front unless the first word is a command or a group option."""
        if not args or (
            args[0] not in self.commands and args[0] not in ("--help", "-h", "--version")
        ):
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


CONNECTION_FLAGS = (
    "sentinels",
    "url",
    "masters",
    "username",
    "node_username",
    "tls_ca_cert",
    "tls_cert",
    "tls_key",
    "config",
)
"""The `load_settings` arguments that `connection_options` adds as flags."""


def connection_options(func: F) -> F:
    """The options that say where the sentinels are, shared by every command that connects.

    The command receives them together as one `connection` mapping, ready for
    ``load_settings(**connection)``, so adding a connection flag touches no command.
    """

    @functools.wraps(func)
    def with_connection(*args: Any, **kwargs: Any) -> Any:
        connection = {name: kwargs.pop(name) for name in CONNECTION_FLAGS}
        return func(*args, connection=connection, **kwargs)

    options = [
        click.option(
            "--sentinel",
            "sentinels",
            multiple=True,
            metavar="HOST:PORT",
            help="A sentinel to ask (repeat for several; [v6]:PORT for IPv6).",
        ),
        click.option(
            "--url",
            metavar="URL",
            help="Sentinel URL: redis://[user:pw@]host:26379, rediss:// for TLS, or a kombu "
            "broker URL sentinel://:pw@h1:26379;sentinel://h2:26379. Default: $REDIS_ADDR.",
        ),
        click.option(
            "--master",
            "masters",
            multiple=True,
            metavar="NAME",
            help="Master name to watch (repeatable). Default: every master the sentinels monitor.",
        ),
        click.option("--username", metavar="USER", help="ACL user name for the sentinels."),
        click.option(
            "--node-username",
            metavar="USER",
            help="ACL user name for the data nodes (password: $HAWATCH_NODE_PASSWORD). "
            "Default: the sentinels' user and password.",
        ),
        click.option(
            "--tls-ca-cert",
            type=click.Path(path_type=str),
            metavar="FILE",
            help="PEM file of the CA that signed the servers' certificates; turns TLS on. "
            "Default: $HAWATCH_TLS_CA_CERT, else the system's CAs.",
        ),
        click.option(
            "--tls-cert",
            type=click.Path(path_type=str),
            metavar="FILE",
            help="PEM client certificate, for servers that ask for one. "
            "Default: $HAWATCH_TLS_CERT.",
        ),
        click.option(
            "--tls-key",
            type=click.Path(path_type=str),
            metavar="FILE",
            help="PEM key of --tls-cert, if not in the same file. Default: $HAWATCH_TLS_KEY.",
        ),
        click.option(
            "--config",
            type=click.Path(dir_okay=False, path_type=str),
            metavar="FILE",
            help="TOML config file. Default: ~/.config/hawatch/config.toml if it exists.",
        ),
    ]
    decorated: Any = with_connection
    for option in reversed(options):
        decorated = option(decorated)
    return decorated


@click.group(cls=DefaultGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="hawatch")
def cli() -> None:
    """Watch a Redis Sentinel failover from the application's side.

    Sentinel elects a new master in a second or two; Celery workers can take a
    minute to run tasks again. hawatch shows the master, the PENDING tasks and
    the gap between the election and the moment work resumes.

    Without a command, hawatch runs `watch`. Try `hawatch demo` for a local
    cluster, a worker and the screen, all in one.

    \b
    Password: put it in the URL, in $HAWATCH_PASSWORD or in the config file;
    it is never printed or shown.
    """


CELERY_FLAGS = ("broker", "app", "queues", "canary_rate", "lost_after", "celery_enabled")
"""The arguments that `celery_options` adds as flags."""


def celery_options(*, canary_default: float = 0.0) -> Callable[[F], F]:
    """The options of the Celery side, shared by every command that watches it.

    The command receives them together as one `celery` mapping, for `_celery_options`.
    """

    def decorate(func: F) -> F:
        options = [
            click.option(
                "--broker",
                metavar="URL",
                help="Celery broker URL (redis://, rediss://, sentinel://...). "
                "Default: the app's (--app), else the watched Sentinel cluster.",
            ),
            click.option(
                "--app",
                metavar="MODULE",
                help="Load this Celery app, as `celery -A` does, for its broker and queues.",
            ),
            click.option(
                "--queue",
                "queues",
                multiple=True,
                metavar="NAME",
                help="A queue whose depth to show (repeatable). Default: the app's queues, "
                "else celery.",
            ),
            click.option(
                "--canary",
                "canary_rate",
                type=click.FloatRange(0, 100),
                default=canary_default,
                show_default=True,
                metavar="RATE",
                help="Send the built-in task celery.accumulate RATE times a second, to see "
                "when tasks run again (0: never). Not with --read-only.",
            ),
            click.option(
                "--lost-after",
                type=click.FloatRange(0, 86_400),
                default=DEFAULT_LOST_AFTER,
                show_default=True,
                metavar="SECONDS",
                help="After a switch, a task sent before work resumed and not received "
                "this long after is flagged lost.",
            ),
            click.option(
                "--celery/--no-celery",
                "celery_enabled",
                default=True,
                show_default=True,
                help="Watch the Celery side (task events, queues) as well as Sentinel.",
            ),
        ]
        return option_group("celery", CELERY_FLAGS, options, func)

    return decorate


def _celery_options(settings: Settings, celery: dict[str, Any]) -> CeleryOptions:
    """The Celery side's options; the canary with --read-only is a usage error."""
    from hawatch.monitor import CeleryOptions

    broker = celery["broker"]
    if broker is not None:
        from hawatch.sources.celery_events import SUPPORTED_SCHEMES

        for part in broker.split(";"):
            scheme = part.strip().partition("://")[0].lower() if "://" in part else ""
            if scheme not in SUPPORTED_SCHEMES:
                shown = f"{scheme!r}" if scheme else "no scheme"
                raise click.UsageError(
                    f"--broker: {shown} is not a broker hawatch can read; "
                    "give a redis://, rediss:// or sentinel:// URL"
                )
    if celery["canary_rate"] > 0 and settings.read_only:
        raise click.UsageError(
            "--canary sends tasks and read-only mode forbids changing anything; "
            "drop --canary or read-only"
        )
    return CeleryOptions(
        enabled=celery["celery_enabled"],
        broker=celery["broker"],
        app=celery["app"],
        queues=tuple(celery["queues"]),
        canary_rate=celery["canary_rate"],
        lost_after=celery["lost_after"],
    )


def journal_option(*, default_on: bool) -> Callable[[F], F]:
    """``--journal PATH`` (and ``--no-journal`` when the journal is on by default)."""

    def decorate(func: F) -> F:
        func = click.option(
            "--journal",
            "journal",
            metavar="PATH",
            help="Append every event to this JSON-lines file (rotated at 64 MiB)."
            + (
                " Default: a new file under ~/.local/state/hawatch/journal/."
                if default_on
                else " Default: none (standard output is already the journal's format)."
            ),
        )(func)
        if default_on:
            func = click.option(
                "--no-journal", is_flag=True, help="Do not record the events to a journal."
            )(func)
        return func

    return decorate


SCREEN_FLAGS = ("theme", "bell", "refresh", "allow_failover")
"""The arguments that `screen_options` adds as flags."""

THEMES = ("default", "ansi")
"""``--theme`` values: Textual's own colours, or only the terminal's 16 ANSI colours."""


def screen_options(func: F) -> F:
    """How the screen looks and behaves, shared by `watch` and `demo`.

    The command receives them together as one `screen` mapping, for `_screen_options`.
    """
    options = [
        click.option(
            "--theme",
            type=click.Choice(THEMES),
            default=None,
            help="Colours: default, or ansi (only the terminal's 16 colours). "
            "Default: $HAWATCH_THEME, else default. NO_COLOR turns colour off in either.",
        ),
        click.option(
            "--bell/--no-bell",
            "bell",
            default=True,
            show_default=True,
            help="Ring the terminal bell on a switch, a resume, sentinel disagreement "
            "and a sentinel becoming unreachable (a notification is shown either way).",
        ),
        click.option(
            "--refresh",
            type=click.FloatRange(0.1, 10),
            default=None,
            metavar="SECONDS",
            help="Redraw the screen at most once per SECONDS, for slow links (default 0.25).",
        ),
        click.option(
            "--no-failover",
            "allow_failover",
            flag_value=False,
            default=True,
            help="Hide the failover key (the web view's default). --read-only implies it.",
        ),
    ]
    return option_group("screen", SCREEN_FLAGS, options, func)


def _screen_options(screen: dict[str, Any]) -> ScreenOptions:
    """The screen's options; ``--refresh`` also caps Textual's own frame rate."""
    import math
    import os

    theme = screen["theme"] or os.environ.get("HAWATCH_THEME", "").strip().lower() or "default"
    if theme not in THEMES:
        raise click.UsageError(
            f"HAWATCH_THEME={theme!r} is not a theme; use one of {', '.join(THEMES)}"
        )
    refresh = screen["refresh"]
    if refresh is not None:
        # Textual reads its frame cap once, when it is first imported: before the views.
        os.environ["TEXTUAL_FPS"] = str(max(1, math.ceil(1 / refresh)))
    from hawatch.views.options import DEFAULT_REFRESH, ScreenOptions

    return ScreenOptions(
        theme=theme,
        bell=screen["bell"],
        refresh=refresh if refresh is not None else DEFAULT_REFRESH,
        allow_failover=screen["allow_failover"],
    )


def _open_journal(
    settings: Settings, path: str | None, *, default_on: bool, off: bool = False
) -> Journal | None:
    """The journal to write, if any. A named file that cannot be opened is a usage error;
    the default one that cannot be opened is a warning, and the run goes on without it."""
    from hawatch.journal import Journal, JournalError, default_journal_path

    if off or (path is None and not default_on):
        return None
    secrets = (settings.password, settings.node_password)
    try:
        return Journal(path or default_journal_path(), secrets=secrets)
    except JournalError as error:
        if path is not None:
            raise click.UsageError(str(error)) from None
        _say(f"warning: {error}; going on without a journal.")
        return None


@cli.command()
@connection_options
@celery_options()
@journal_option(default_on=True)
@screen_options
@extra_options
@click.option(
    "--read-only",
    "read_only",
    flag_value=True,
    default=None,
    help="Never change the cluster: no failover key. Default: $HAWATCH_READ_ONLY.",
)
def watch(
    connection: dict[str, Any],
    celery: dict[str, Any],
    read_only: bool | None,
    journal: str | None,
    no_journal: bool,
    screen: dict[str, Any],
    extras: dict[str, Any],
) -> None:
    """Open the live screen on a Sentinel deployment (the default command)."""
    settings = load_settings(**connection, read_only=read_only)
    options = _celery_options(settings, celery)
    look = _screen_options(screen)
    prometheus, probes = prometheus_options(extras), http_probe_options(extras)
    recording = _open_journal(settings, journal, default_on=True, off=no_journal)
    from hawatch.views.app import HawatchApp

    try:
        HawatchApp(
            settings,
            subtitle=settings.describe(),
            celery=options,
            journal=recording,
            screen=look,
            prometheus=prometheus,
            probes=probes,
        ).run()
    finally:
        if recording is not None:
            recording.close()


with_prometheus_option = click.option(
    "--with-prometheus",
    is_flag=True,
    default=False,
    help="Also run redis_exporter and Prometheus on loopback ports, scraping every "
    "node and sentinel every second (needs the prometheus and "
    "prometheus-redis-exporter commands).",
)
"""``--with-prometheus``, shared by `lab` and `demo`."""


def lab_options(func: F) -> F:
    """Options that shape a lab cluster, shared by `lab` and `demo`."""
    options = [
        click.option(
            "--replicas",
            type=click.IntRange(0, 10),
            default=2,
            show_default=True,
            help="Number of replicas.",
        ),
        click.option(
            "--sentinels",
            "sentinel_count",
            type=click.IntRange(1, 9),
            default=3,
            show_default=True,
            help="Number of sentinels.",
        ),
        click.option(
            "--quorum",
            type=click.IntRange(1, 9),
            default=2,
            show_default=True,
            help="Sentinels that must agree the master is down.",
        ),
        click.option(
            "--master-name",
            default="mymaster",
            show_default=True,
            help="The name the sentinels monitor the master under.",
        ),
        click.option(
            "--down-after",
            "down_after_ms",
            type=click.IntRange(100, 600_000),
            default=5000,
            show_default=True,
            metavar="MS",
            help="Sentinel down-after-milliseconds.",
        ),
        click.option(
            "--failover-timeout",
            "failover_timeout_ms",
            type=click.IntRange(1000, 3_600_000),
            default=30_000,
            show_default=True,
            metavar="MS",
            help="Sentinel failover-timeout.",
        ),
        click.option(
            "--fast/--no-fast",
            default=True,
            show_default=True,
            help="Shorten Sentinel's internal periods (SENTINEL DEBUG) for quick drills.",
        ),
        click.option(
            "--profile",
            type=click.Choice(["default", "tuned"]),
            default="default",
            show_default=True,
            help="Celery settings of the demo worker: Celery's defaults, or tuned "
            "for fast recovery.",
        ),
        click.option(
            "--dir",
            "base_dir",
            type=click.Path(file_okay=False, path_type=Path),
            default=None,
            help="Where to make the lab's temporary directory.",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _lab_config(**kw: Any) -> LabConfig:
    """The lab's shape from the command's options; a bad shape is a usage error."""
    from hawatch.lab import FAST_SENTINEL_DEBUG, LabConfig, LabError

    try:
        return LabConfig(
            master_name=kw["master_name"],
            replicas=kw["replicas"],
            sentinels=kw["sentinel_count"],
            quorum=kw["quorum"],
            down_after_ms=kw["down_after_ms"],
            failover_timeout_ms=kw["failover_timeout_ms"],
            sentinel_debug=dict(FAST_SENTINEL_DEBUG) if kw["fast"] else {},
            base_dir=kw["base_dir"],
        )
    except LabError as exc:
        raise click.UsageError(str(exc)) from None


def _say(text: str) -> None:
    """One line for the user on standard error; a terminal that is gone is not an error."""
    with contextlib.suppress(OSError):
        click.echo(f"hawatch: {text}", err=True)


@cli.command()
@lab_options
@click.option(
    "--worker/--no-worker",
    default=False,
    show_default=True,
    help="Also start a Celery worker of the demo app.",
)
@click.option(
    "--load",
    "load_rate",
    type=click.FloatRange(0, 1000),
    default=0.0,
    show_default=True,
    metavar="RATE",
    help="Also send demo tasks at RATE per second (0: none).",
)
@with_prometheus_option
def lab(worker: bool, load_rate: float, profile: str, with_prometheus: bool, **kw: Any) -> None:
    """Run a real Sentinel cluster on loopback ports until Ctrl-C.

    A master, its replicas and its sentinels from redis-server (or
    valkey-server, or $HAWATCH_REDIS_SERVER), each in a temporary directory
    that is removed at the end. Optionally a Celery worker, a load generator,
    and Prometheus with redis_exporter. Everything stops on Ctrl-C.
    """
    from hawatch.lab import LabCluster, signals_raise_interrupt, start_loadgen, start_worker

    config = _lab_config(**kw)
    config.with_prometheus = with_prometheus
    with signals_raise_interrupt(), LabCluster(config) as cluster:
        _print_lab(cluster)
        if cluster.prometheus is not None:
            prometheus = cluster.prometheus
            click.echo(f"prometheus   {prometheus.url} (pid {prometheus.pid})")
            click.echo(
                f"exporter     {prometheus.exporter_url}/scrape?target=redis://HOST:PORT "
                f"(pid {prometheus.exporter_pid})"
            )
            click.echo(f"with it:     --prometheus {prometheus.url}")
        if worker:
            proc = start_worker(cluster, profile=profile)
            click.echo(f"worker       pid {proc.pid}, log {proc.log_path}")
        if load_rate > 0:
            proc = start_loadgen(cluster, rate=load_rate, profile=profile)
            click.echo(f"load         {load_rate:g} tasks/s, pid {proc.pid}, log {proc.log_path}")
        click.echo("ready; press Ctrl-C to stop everything.")
        sys.stdout.flush()
        while True:
            time.sleep(3600)


def _print_lab(cluster: LabCluster) -> None:
    sentinels = " ".join(f"--sentinel {a}" for a in cluster.sentinel_addresses)
    master = cluster.current_master()
    click.echo(f"master name  {cluster.master_name}")
    click.echo(f"master       {master.address} (pid {master.pid})")
    for node in cluster.data_nodes:
        if node is not master:
            click.echo(f"replica      {node.address} (pid {node.pid})")
    for node in cluster.sentinel_nodes:
        click.echo(f"sentinel     {node.address} (pid {node.pid})")
    click.echo(f"files        {cluster.directory}")
    click.echo(f"watch it:    hawatch watch {sentinels} --master {cluster.master_name}")
    click.echo(f"broker URL   {cluster.broker_url()}")
    click.echo(f"REDIS_ADDR   redis://{cluster.sentinel_addresses[0]}")


@cli.command()
@lab_options
@click.option(
    "--load",
    "load_rate",
    type=click.FloatRange(0.1, 1000),
    default=5.0,
    show_default=True,
    metavar="RATE",
    help="Demo tasks sent per second.",
)
@click.option(
    "--canary",
    "canary_rate",
    type=click.FloatRange(0, 100),
    default=1.0,
    show_default=True,
    metavar="RATE",
    help="Canary tasks (celery.accumulate) per second, to see when tasks run again.",
)
@journal_option(default_on=True)
@screen_options
@with_prometheus_option
def demo(
    load_rate: float,
    canary_rate: float,
    profile: str,
    journal: str | None,
    no_journal: bool,
    screen: dict[str, Any],
    with_prometheus: bool,
    **kw: Any,
) -> None:
    """Start a local cluster, a Celery worker, a load generator and a web endpoint that
    uses the cluster as a cache, then the screen (it probes the endpoint: the users'
    side of a failover).

    Everything started is stopped when the screen closes (q or Ctrl-C).
    """
    from hawatch.lab import (
        LabCluster,
        signals_raise_interrupt,
        start_demo_web,
        start_loadgen,
        start_worker,
    )
    from hawatch.monitor import CeleryOptions
    from hawatch.sources.http_probe import HttpProbeOptions
    from hawatch.sources.prometheus import PrometheusOptions
    from hawatch.views.app import HawatchApp

    config = _lab_config(**kw)
    config.with_prometheus = with_prometheus
    look = _screen_options(screen)
    _say("starting a Sentinel cluster on loopback ports ...")
    with signals_raise_interrupt():
        cluster = LabCluster(config).start()
    try:
        with signals_raise_interrupt():
            _say(f"cluster ready in {cluster.directory}; starting a Celery worker ...")
            start_worker(cluster, profile=profile)
            start_loadgen(cluster, rate=load_rate, profile=profile)
            web = start_demo_web(cluster)
            _say(f"web endpoint {web.url} (the screen probes it)")
        prometheus = None
        if cluster.prometheus is not None:
            prometheus = PrometheusOptions(url=cluster.prometheus.url, interval=0.5)
            _say(f"prometheus {cluster.prometheus.url}")
        addresses = ", ".join(str(a) for a in cluster.sentinel_addresses)
        settings = cluster.settings()
        recording = _open_journal(settings, journal, default_on=True, off=no_journal)
        try:
            HawatchApp(
                settings,
                subtitle=f"demo: {cluster.master_name} via sentinels {addresses}",
                celery=CeleryOptions(canary_rate=canary_rate),
                journal=recording,
                screen=look,
                prometheus=prometheus,
                probes=[HttpProbeOptions(web.url, interval=0.25)],
            ).run()
        finally:
            if recording is not None:
                recording.close()
    finally:
        _say("stopping the demo cluster, worker, load generator and web endpoint ...")
        cluster.stop()


# --------------------------------------------------------------------------- events

if TYPE_CHECKING:
    from hawatch.core.events import Event


class _JsonLinesOut:
    """Writes events to standard output, one UTF-8 JSON line each, flushed at once.

    When the reader goes away (``hawatch events | head -1``) it stops writing,
    points standard output at the null device so that Python's last flush at
    exit cannot complain, and calls `on_end` with status 0; any other write
    failure ends the run with status 1 and one sentence.
    """

    def __init__(self, on_end: Callable[[int], None]) -> None:
        self._on_end = on_end
        self.ended = False

    def write(self, event: Event) -> None:
        """Print `event` as one JSON line (the source calls this on the event loop)."""
        from hawatch.core.events import to_json

        if self.ended:
            return
        data = (to_json(event) + "\n").encode("utf-8", "replace")
        stream = getattr(sys.stdout, "buffer", None)
        try:
            if stream is None:
                sys.stdout.write(data.decode("utf-8"))
                sys.stdout.flush()
            else:
                stream.write(data)
                stream.flush()
        except BrokenPipeError:
            self._end(0)
        except OSError as error:
            _say(f"error: cannot write to standard output: {error.strerror or error}.")
            self._end(EXIT_FAILED)

    def _end(self, status: int) -> None:
        import os

        self.ended = True
        with contextlib.suppress(OSError, ValueError, AttributeError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        self._on_end(status)


async def _stream_events(
    settings: Settings,
    celery: CeleryOptions,
    journal: Journal | None = None,
    *,
    prometheus: PrometheusOptions | None = None,
    probes: Sequence[HttpProbeOptions] = (),
) -> int:
    """Run every source and print their events until a signal or a closed pipe.

    Returns the exit status: 0 after SIGTERM, SIGHUP or a closed pipe, 130
    after Ctrl-C. The source is cancelled and closes its connections first.
    """
    import asyncio
    import signal

    loop = asyncio.get_running_loop()
    finished: asyncio.Future[int] = loop.create_future()

    def finish(status: int) -> None:
        if not finished.done():
            finished.set_result(status)

    stops = {signal.SIGINT: EXIT_INTERRUPTED, signal.SIGTERM: 0, signal.SIGHUP: 0}
    for sig, status in stops.items():
        loop.add_signal_handler(sig, finish, status)
    out = _JsonLinesOut(finish)
    from hawatch.monitor import Monitor

    monitor = Monitor(
        settings,
        celery=celery,
        emit=out.write,
        journal=journal,
        prometheus=prometheus,
        probes=probes,
    )
    task = asyncio.create_task(_run_and_report(monitor), name="events source")
    try:
        waiters: set[asyncio.Future[Any]] = {task, finished}
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        task.cancel()
        await asyncio.wait({task})
        for sig in stops:
            loop.remove_signal_handler(sig)
    error = None if task.cancelled() else task.exception()
    if finished.done():
        return finished.result()
    raise click.ClickException(f"the sources stopped: {error or 'they ended by themselves'}.")


async def _run_and_report(monitor: Monitor) -> None:
    """Run `monitor`; say once on standard error when its Celery side cannot run."""
    import asyncio

    async def report() -> None:
        while monitor.celery.enabled and not monitor.celery_started:
            if monitor.celery_problem is not None:
                _say(f"warning: {monitor.celery_problem}")
                return
            await asyncio.sleep(0.1)

    reporter = asyncio.create_task(report())
    try:
        await monitor.run()
    finally:
        reporter.cancel()


@cli.command()
@connection_options
@celery_options()
@journal_option(default_on=False)
@extra_options
def events(
    connection: dict[str, Any],
    celery: dict[str, Any],
    journal: str | None,
    extras: dict[str, Any],
) -> int:
    """Print every event as one JSON line, for scripts.

    Runs without the screen: Sentinel messages (+switch-master, +sdown ...),
    each sentinel's view of its masters, data nodes' roles, sentinels going
    up and down; Celery task and worker events, queue depths, canary round
    trips, and the Celery side losing and regaining the broker. Each line
    is a JSON object with "type", "at" (Unix seconds) and the event's fields
    (see "Events as JSON lines" in the README).

    Stops quietly on Ctrl-C (status 130), SIGTERM, SIGHUP, or when the reader
    of the output goes away, as with `hawatch events | head -1` (status 0).
    """
    import asyncio

    settings = load_settings(**connection)
    options = _celery_options(settings, celery)
    prometheus, probes = prometheus_options(extras), http_probe_options(extras)
    recording = _open_journal(settings, journal, default_on=False)
    try:
        return asyncio.run(
            _stream_events(settings, options, recording, prometheus=prometheus, probes=probes)
        )
    finally:
        if recording is not None:
            recording.close()


def _drill_command() -> click.Command:
    """`hawatch drill` (hawatch/drill.py), built on the options above."""
    from hawatch.drill import command

    return command()


cli.add_command(_drill_command())
from hawatch.replay import replay_command  # noqa: E402  (the command lives with the replay)

cli.add_command(replay_command)


@cli.command()
@connection_options
@celery_options()
@screen_options
@extra_options
@click.option(
    "--read-only",
    "read_only",
    flag_value=True,
    default=None,
    help="Never change the cluster: no failover key. Default: $HAWATCH_READ_ONLY.",
)
@click.option(
    "--journal/--no-journal",
    "journal",
    default=False,
    show_default=True,
    help="Let each browser's screen record its own journal (a new file per screen under "
    "~/.local/state/hawatch/journal/). Off by default: every screen would record the same "
    "events again.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    metavar="ADDRESS",
    help="Address to listen on. Anything but a loopback address lets anyone who reaches "
    "the port see the screen, with no login.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    metavar="PORT",
    show_default=True,
    help="TCP port to listen on (0: any free port, printed at start).",
)
@click.option(
    "--allow-failover",
    "browser_failover",
    is_flag=True,
    default=False,
    help="Offer the failover key in the browser. Off by default: the page has no login, "
    "so anyone who can load it could fail the master over.",
)
def serve(
    connection: dict[str, Any],
    celery: dict[str, Any],
    screen: dict[str, Any],
    read_only: bool | None,
    journal: bool,
    host: str,
    port: int,
    browser_failover: bool,
    extras: dict[str, Any],
) -> int:
    """Serve the live screen to web browsers, for demos.

    Each browser that opens the page gets a `hawatch watch` screen of its own,
    run with the connection, Celery and screen options given here. The page
    has no login, so serve listens on 127.0.0.1 unless --host says otherwise
    and the failover key is off in the browser unless --allow-failover.
    Passwords reach the screens through their environment, never their
    command lines. Ctrl-C stops the server and every screen it started.
    """
    import asyncio

    from hawatch.serve import ServeError, ServeUsageError, WebServer, is_loopback, viewer_command

    if browser_failover and not screen["allow_failover"]:
        raise click.UsageError("--allow-failover and --no-failover contradict each other; give one")
    settings = load_settings(**connection, read_only=read_only)
    _celery_options(settings, celery)
    _screen_options(screen)
    prometheus_options(extras)
    http_probe_options(extras)
    try:
        viewer = viewer_command(
            connection,
            celery,
            screen,
            read_only=read_only,
            journal=journal,
            allow_failover=browser_failover,
            extras=extras,
        )
        loopback = is_loopback(host)
        server = WebServer(viewer, host=host, port=port)
    except ServeUsageError as error:
        raise click.UsageError(str(error)) from None
    if settings.read_only:
        failover = "read-only"
    elif browser_failover:
        failover = "failover on in the browser: anyone who loads the page can fail the master over"
    else:
        failover = "failover off in the browser; --allow-failover turns it on"

    def ready(url: str) -> None:
        if not loopback:
            _say(
                f"warning: {host} is not a loopback address, so anyone who can reach port "
                f"{server.port} gets the screen, with no login."
            )
        click.echo(f"serving hawatch at {url} ({failover})")
        sys.stdout.flush()

    try:
        status = asyncio.run(server.run(ready))
    except ServeError as error:
        raise click.ClickException(str(error)) from None
    _say("stopped the web server and every screen it started.")
    return status


def main(argv: list[str] | None = None) -> int:
    """Run the command line; turn every expected failure into one sentence and an exit status."""
    from hawatch.lab.procs import LabError

    try:
        result = cli.main(args=argv, prog_name="hawatch", standalone_mode=False)
    except SettingsError as exc:
        _say(f"error: {exc}")
        return EXIT_USAGE
    except click.UsageError as exc:
        message = redact_url(exc.format_message()).rstrip(".")
        _say(f"error: {message}. See `hawatch --help`.")
        return EXIT_USAGE
    except click.ClickException as exc:
        _say(f"error: {redact_url(exc.format_message())}")
        return exc.exit_code
    except LabError as exc:
        _say(f"error: {exc}")
        return EXIT_FAILED
    except (KeyboardInterrupt, click.Abort):
        _say("interrupted; everything hawatch started has been stopped.")
        return EXIT_INTERRUPTED
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
