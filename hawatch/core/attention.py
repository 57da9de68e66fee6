"""What deserves the operator's attention now: the moments worth a notification and a bell.

`Attention` compares each new snapshot of the core with the one before and names
what just happened that an operator looking elsewhere must not miss: a master
switched, work resumed after a switch, the sentinels started to disagree about a
master, a sentinel became unreachable. Each is said once, when it happens, as a
`Notice`; the screen turns notices into notifications (and a terminal bell).

Pure: no clock, no I/O, no Textual; scripted snapshots test it.
"""

from __future__ import annotations

from dataclasses import dataclass

from hawatch.core.cluster import ClusterSnapshot
from hawatch.core.incidents import IncidentsSnapshot

__all__ = ["Attention", "Notice"]


@dataclass(frozen=True, slots=True)
class Notice:
    """One thing that just happened, in words: a short title and one sentence.

    `severity`: ``information`` (good news, such as a resume) or ``warning``.
    """

    kind: str
    """``switch``, ``resume``, ``disagreement`` or ``unreachable``."""
    title: str
    message: str
    severity: str = "warning"


class Attention:
    """Turn successive snapshots into notices of what changed.

    The first snapshot only sets what is known: a master already switched, or a
    sentinel already down, when hawatch starts is on the screen, not news.
    """

    def __init__(self) -> None:
        self._started = False
        self._addresses: dict[str, str] = {}
        self._disagreeing: set[str] = set()
        self._unreachable: set[str] = set()
        self._resumed: set[str] = set()

    def notices(self, cluster: ClusterSnapshot, incidents: IncidentsSnapshot) -> list[Notice]:
        """The notices for what changed since the last call, oldest kind of news first."""
        found: list[Notice] = []
        first = not self._started
        self._started = True
        for view in cluster.masters:
            before = self._addresses.get(view.name)
            if before is not None and before != view.address and not first:
                found.append(
                    Notice(
                        "switch",
                        f"{view.name}: new master",
                        f"{view.name} switched from {before} to {view.address}.",
                    )
                )
            self._addresses[view.name] = view.address
            disagree = view.known > 0 and view.agree < view.known
            if disagree and view.name not in self._disagreeing and not first:
                others = ", ".join(
                    f"{sentinel} names {where}" for sentinel, where, _ in view.dissent
                )
                found.append(
                    Notice(
                        "disagreement",
                        f"{view.name}: sentinels disagree",
                        f"only {view.agree} of {view.known} sentinels say {view.address} is "
                        f"master of {view.name}" + (f"; {others}." if others else "."),
                    )
                )
            if disagree:
                self._disagreeing.add(view.name)
            else:
                self._disagreeing.discard(view.name)
        for report in (*incidents.open, *incidents.history):
            if report.resumed is None or report.id in self._resumed:
                continue
            self._resumed.add(report.id)
            if first:
                continue
            gap = f" after a gap of {report.gap_s:.1f} s" if report.gap_s is not None else ""
            found.append(
                Notice(
                    "resume",
                    f"{report.master}: tasks run again",
                    f"work resumed on {report.new_master or report.master}{gap}.",
                    severity="information",
                )
            )
        down = {entry.sentinel: entry.reason for entry in cluster.unreachable}
        for sentinel, reason in down.items():
            if sentinel not in self._unreachable and not first:
                found.append(
                    Notice(
                        "unreachable",
                        "sentinel unreachable",
                        f"sentinel {sentinel} does not answer: {reason}.",
                    )
                )
        self._unreachable = set(down)
        return found
