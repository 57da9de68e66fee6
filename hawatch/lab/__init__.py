"""The lab: a real Sentinel cluster and a real Celery worker on this machine.

The demo, the drills and the tests all use it, so what the tests prove is what
the demo shows. Besides the cluster: a Celery worker (`start_worker`), a load
generator (`start_loadgen`) and a web endpoint that uses the cluster as a Django
cache would (`start_demo_web`), for the users' side.
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
from hawatch.lab.prometheus import LabPrometheus
from hawatch.lab.worker import DemoWeb, start_demo_web, start_loadgen, start_worker

__all__ = [
    "FAST_SENTINEL_DEBUG",
    "DemoWeb",
    "LabCluster",
    "LabConfig",
    "LabError",
    "LabNode",
    "LabPrometheus",
    "ManagedProcess",
    "find_server_binary",
    "pid_alive",
    "signals_raise_interrupt",
    "start_demo_web",
    "start_loadgen",
    "start_worker",
    "started_pids",
]
