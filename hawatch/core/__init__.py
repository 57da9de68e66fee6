"""The pure core: the event vocabulary and the state folded from it.

Nothing here does I/O, reads a clock or imports Textual, so the same code runs
under the TUI, in a headless drill, in a journal replay and in fast unit tests.
"""

from hawatch.core.cluster import (
    ClusterSnapshot,
    ClusterState,
    MasterView,
    UnreachableSentinel,
    format_address,
)
from hawatch.core.events import (
    BlindInfo,
    Event,
    IncidentUpdate,
    MasterObserved,
    SentinelReachable,
    SentinelUnreachable,
    SwitchInfo,
    event_types,
    from_json,
    register,
    to_json,
)
from hawatch.core.incidents import IncidentModel, IncidentReport, IncidentsSnapshot
from hawatch.core.tasks import PendingTask, TasksSnapshot, TaskTracker

__all__ = [
    "BlindInfo",
    "ClusterSnapshot",
    "ClusterState",
    "Event",
    "IncidentModel",
    "IncidentReport",
    "IncidentUpdate",
    "IncidentsSnapshot",
    "MasterObserved",
    "MasterView",
    "PendingTask",
    "SentinelReachable",
    "SentinelUnreachable",
    "SwitchInfo",
    "TaskTracker",
    "TasksSnapshot",
    "UnreachableSentinel",
    "event_types",
    "format_address",
    "from_json",
    "register",
    "to_json",
]
