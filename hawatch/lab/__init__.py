"""The lab: a real Sentinel cluster and a real Celery worker on this machine.

The demo, the drills and the tests all use it, so what the tests prove is what
the demo shows.
"""

from hawatch.lab.cluster import (
    FAST_SENTINEL_DEBUG,
    LabCluster,
    LabConfig,
    LabNode,
    find_server_binary,
    signals_raise_interrupt,
)
from hawatch.lab.procs import LabError, ManagedProcess, pid_alive, started_pids
from hawatch.lab.worker import start_loadgen, start_worker

__all__ = [
    "FAST_SENTINEL_DEBUG",
    "LabCluster",
    "LabConfig",
    "LabError",
    "LabNode",
    "ManagedProcess",
    "find_server_binary",
    "pid_alive",
    "signals_raise_interrupt",
    "start_loadgen",
    "start_worker",
    "started_pids",
]
