"""Incident reports for programs and for people: JSON, plain text and Markdown.

Pure formatting of `IncidentReport` (one incident) and of several reports of the
same drill repeated (a summary with the median, the minimum and the maximum). No
I/O and no clock: every time shown comes from the report, in UTC, so the same
report always prints the same way. The drill (`hawatch drill`) uses it, and so
can anything else that holds reports (a replayed journal, the screen's export):
the scenario, the SLO and the settings are optional.

**Passing.** Work *resumed* when a task ran after the (last) switch, or, for an
incident without a failover, when the incident closed (the master came back).
The figure checked against an SLO is the **gap** (resumed − switched); without a
switch, the **outage** (the time tasks did not run at all). A report passes when
work resumed and, given an SLO, that figure is within it (``<=``). An incident
still open, whose work never resumed, never passes.

**Users and Prometheus.** When HTTP probes ran (`IncidentReport.http_probed`) the
reports add the users' resume beside the Celery one: the users' gap (the first
successful HTTP probe − switched) and their outage (from the first failed probe);
when Prometheus was queried (`IncidentReport.prometheus_watched`), how long after the
switch it first showed the new master (the scraped view's lag behind the live one).
Neither changes the verdict. Reports without them print exactly as before.
"""

from __future__ import annotations

import statistics
import textwrap
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from hawatch.core.incidents import IncidentReport

__all__ = [
    "FIGURES",
    "PROMETHEUS_FIGURES",
    "USER_FIGURES",
    "as_json",
    "as_markdown",
    "as_text",
    "passed",
    "slo_figure",
    "summary",
    "summary_json",
    "summary_markdown",
    "summary_text",
    "verdict",
    "work_resumed",
]

#: The figures a summary gives the median, minimum and maximum of.
FIGURES: tuple[str, ...] = ("gap_s", "outage_s", "split_brain_s")
#: The users' figures (HTTP probes), in a summary when some run had probes.
USER_FIGURES: tuple[str, ...] = ("user_gap_s", "user_outage_s")
#: Prometheus's figure, in a summary when some run queried Prometheus.
PROMETHEUS_FIGURES: tuple[str, ...] = ("prometheus_lag_s",)

_FIGURE_WORDS = {
    "gap_s": ("gap", "resumed − switched: how long tasks waited after Sentinel's switch"),
    "outage_s": ("outage", "resumed − fault: how long no task ran"),
    "split_brain_s": (
        "split brain",
        "demoted − switched: how long the old master could still take writes",
    ),
}
_EXTRA_WORDS = {
    "user_gap_s": (
        "users' gap",
        "first successful HTTP probe − switched: how long users waited after the switch",
    ),
    "user_outage_s": (
        "users' outage",
        "first successful HTTP probe after the switch − first failed one",
    ),
    "prometheus_lag_s": (
        "Prometheus lag",
        "Prometheus first showed the new master − switched: the scraped view's delay",
    ),
}
_TASK_WORDS = (
    ("sent", "sent"),
    ("completed", "completed"),
    ("lost", "lost"),
    ("duplicated", "duplicated"),
    ("pending_at_switch", "pending at the switch"),
    ("results_at_risk", "results at risk"),
)
_NONE = "—"
_LABEL = 12
"""Columns of the labels in the text report."""
_WIDTH = 80
"""Columns of the text report's lines."""


# --------------------------------------------------------------------------- verdicts


def work_resumed(report: IncidentReport) -> bool:
    """True when work ran again: a task after the switch, or (without a failover) the
    incident closed because the master came back."""
    if report.switched is not None:
        return report.resumed is not None
    return report.status == "closed"


def slo_figure(report: IncidentReport) -> float | None:
    """The figure an SLO is checked against: the gap after a switch, the outage without
    one; None while work has not resumed."""
    if not work_resumed(report):
        return None
    return report.gap_s if report.switched is not None else report.outage_s


def passed(report: IncidentReport, slo: float | None = None) -> bool:
    """True when work resumed and, with an `slo` (seconds), `slo_figure` is within it."""
    if not work_resumed(report):
        return False
    if slo is None:
        return True
    figure = slo_figure(report)
    return figure is not None and figure <= slo


def verdict(report: IncidentReport, slo: float | None = None) -> str:
    """One sentence: passed or failed, and why."""
    figure = slo_figure(report)
    what = "gap" if report.switched is not None else "outage"
    if not work_resumed(report):
        if report.switched is not None:
            waited = _seconds(report.gap_s) if report.gap_s is not None else "?"
            why = f"work never resumed after the switch (waited {waited})"
        else:
            waited = _seconds(report.outage_s) if report.outage_s is not None else "?"
            why = f"no failover happened and the master did not come back (waited {waited})"
        return f"FAILED: {why}."
    assert figure is not None
    extra = "" if report.switched is not None else " (no failover: the master came back)"
    if slo is None:
        return f"PASSED: work resumed, {what} {_seconds(figure)}{extra}; no SLO given."
    if figure <= slo:
        return f"PASSED: {what} {_seconds(figure)} is within the SLO of {_plain(slo)} s{extra}."
    return f"FAILED: {what} {_seconds(figure)} is over the SLO of {_plain(slo)} s{extra}."


# --------------------------------------------------------------------------- JSON


def as_json(
    report: IncidentReport,
    *,
    scenario: str | None = None,
    slo: float | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The report as one JSON-ready object: `IncidentReport.to_dict` (``master``,
    ``old_master``, ``new_master``, ``phases``, ``gap_s``, ``outage_s``, ``split_brain_s``,
    ``tasks``, ``blind_windows`` ...) with ``scenario``, ``work_resumed``, ``slo_s``,
    ``passed`` and ``settings``."""
    data: dict[str, Any] = {"scenario": scenario}
    data.update(report.to_dict())
    data["work_resumed"] = work_resumed(report)
    data["slo_s"] = slo
    data["passed"] = passed(report, slo)
    data["settings"] = dict(settings or {})
    return data


def summary(reports: Sequence[IncidentReport]) -> dict[str, dict[str, float | int | None]]:
    """Per figure (`FIGURES`): ``median``, ``min``, ``max`` over the reports where it is
    final (known, not still counting), and ``runs``, how many those were (None for the
    others when there were none). `USER_FIGURES` too when some report had HTTP probes,
    `PROMETHEUS_FIGURES` when some report queried Prometheus."""
    result: dict[str, dict[str, float | int | None]] = {}
    for name in _summary_figures(reports):
        values = [
            value
            for value in (getattr(r, name) for r in reports if name not in r.counting)
            if value is not None
        ]
        result[name] = {
            "median": statistics.median(values) if values else None,
            "min": min(values) if values else None,
            "max": max(values) if values else None,
            "runs": len(values),
        }
    return result


def _summary_figures(reports: Sequence[IncidentReport]) -> tuple[str, ...]:
    names = FIGURES
    if any(r.http_probed for r in reports):
        names += USER_FIGURES
    if any(r.prometheus_watched for r in reports):
        names += PROMETHEUS_FIGURES
    return names


def summary_json(
    reports: Sequence[IncidentReport],
    *,
    scenario: str | None = None,
    slo: float | None = None,
    settings: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Several runs of the same drill as one object: ``runs`` (their number), ``passed``
    (all did), ``summary`` (see `summary`) and ``reports`` (each as `as_json`)."""
    return {
        "scenario": scenario,
        "runs": len(reports),
        "slo_s": slo,
        "passed": bool(reports) and all(passed(r, slo) for r in reports),
        "summary": summary(reports),
        "reports": [as_json(r, scenario=scenario, slo=slo) for r in reports],
        "settings": dict(settings or {}),
    }


# --------------------------------------------------------------------------- text


def as_text(
    report: IncidentReport,
    *,
    scenario: str | None = None,
    slo: float | None = None,
    settings: Mapping[str, Any] | None = None,
) -> str:
    """The report for a terminal: lines of at most 80 columns (long values wrap under
    their label), UTC times, offsets from the fault."""
    lines = [_title(report, scenario), ""]
    add = lines.extend
    add(_labelled("master", _masters(report)))
    lines.append(f"{'phase':<{_LABEL}}{'time (UTC)':<15}since the fault")
    for name, ts in report.phases.items():
        lines.append(f"{name:<{_LABEL}}{_clock(ts):<15}{_offset(ts, report.fault)}")
    for name in FIGURES:
        word, meaning = _FIGURE_WORDS[name]
        shown = _figure(report, name, unit=" s")
        formula = f" ({meaning.split(':')[0]})" if getattr(report, name) is not None else ""
        add(_labelled(word, f"{shown}{formula}"))
    if report.http_probed:
        for index, part in enumerate(_users(report)):
            add(_labelled("users" if index == 0 else "", part))
    if report.prometheus_watched:
        add(_labelled("prometheus", _prometheus(report)))
    for index, group in enumerate(_tasks(report)):
        add(_labelled("tasks" if index == 0 else "", group))
    windows = _blind(report) or ["none: hawatch saw the Celery side throughout"]
    for index, window in enumerate(windows):
        add(_labelled("blind" if index == 0 else "", window))
    for index, (worker, ts) in enumerate(report.workers):
        label = "workers" if index == 0 else ""
        add(_labelled(label, f"{worker} resumed {_offset(ts, report.switched)} after the switch"))
    if report.note:
        add(_labelled("note", report.note))
    for index, (key, value) in enumerate((settings or {}).items()):
        add(_labelled("settings" if index == 0 else "", f"{key}: {value}"))
    add(_labelled("result", verdict(report, slo)))
    return "\n".join(lines) + "\n"


def summary_text(
    reports: Sequence[IncidentReport],
    *,
    scenario: str | None = None,
    slo: float | None = None,
    settings: Mapping[str, Any] | None = None,
) -> str:
    """Several runs for a terminal: one line per run, then median, min and max (80 columns)."""
    lines = [_summary_title(reports, scenario), ""]
    widths = (10, 10, 13)
    lines.append(f"{'run':<8}{'gap':>10}{'outage':>10}{'split brain':>13}  result")
    for index, report in enumerate(reports, 1):
        cells = "".join(f"{_final(report, n):>{w}}" for n, w in zip(FIGURES, widths, strict=True))
        lines.append(f"{index:<8}{cells}  {_outcome(report, slo)}")
    figures = summary(reports)
    for key in ("median", "min", "max"):
        cells = "".join(
            f"{_number(figures[n][key]):>{w}}" for n, w in zip(FIGURES, widths, strict=True)
        )
        lines.append(f"{key:<8}{cells}")
    lines.append(f"{'':<8}(seconds)")
    names = _summary_figures(reports)
    for label, group in (("users", USER_FIGURES), ("prometheus", PROMETHEUS_FIGURES)):
        if group[0] not in names:
            continue
        for index, name in enumerate(group):
            words = f"{_EXTRA_WORDS[name][0].split()[-1]} {_spread(figures[name])}"
            lines.extend(_labelled(label if index == 0 else "", words))
    for index, (key, value) in enumerate((settings or {}).items()):
        lines.extend(_labelled("settings" if index == 0 else "", f"{key}: {value}"))
    lines.extend(_labelled("result", _summary_verdict(reports, slo)))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- Markdown


def as_markdown(
    report: IncidentReport,
    *,
    scenario: str | None = None,
    slo: float | None = None,
    settings: Mapping[str, Any] | None = None,
    level: int = 2,
) -> str:
    """A postmortem-ready section: a title, the verdict, the phases with their offsets from
    the fault, the figures, the tasks, the blind windows and the settings.

    `level` is the title's heading level (2: ``##``); sub-headings are one deeper.
    """
    head = "#" * max(1, level)
    sub = "#" * max(1, level + 1)
    when = _date_time(report.fault)
    lines = [f"{head} {_title(report, scenario)} ({when})", ""]
    lines += [f"**{verdict(report, slo)}**", ""]
    lines += [f"Master `{report.master}`: {_masters(report, code=True)}.", ""]
    lines += ["| phase | time (UTC) | since the fault |", "| --- | --- | --- |"]
    for name, ts in report.phases.items():
        lines.append(f"| {name} | {_clock(ts)} | {_offset(ts, report.fault)} |")
    lines += ["", "| figure | seconds | meaning |", "| --- | --- | --- |"]
    for name in FIGURES:
        word, meaning = _FIGURE_WORDS[name]
        lines.append(f"| {word} | {_figure(report, name)} | {meaning} |")
    for name in _extra_figures(report):
        word, meaning = _EXTRA_WORDS[name]
        lines.append(f"| {word} | {_figure(report, name)} | {meaning} |")
    extra = []
    if report.http_probed:
        extra.append(f"Users: {'; '.join(_users(report))}.")
    if report.prometheus_watched:
        extra.append(f"Prometheus: {_prometheus(report)}.")
    if extra:
        lines += ["", *(f"- {line}" for line in extra)]
    lines += ["", f"{sub} Tasks", "", "| tasks | count |", "| --- | --- |"]
    values = report.to_dict()["tasks"]
    for key, word in _TASK_WORDS:
        value = values[key]
        lines.append(f"| {word} | {_NONE if value is None else value} |")
    lines += ["", f"{sub} Blind windows", ""]
    windows = _blind(report)
    if windows:
        lines.append(
            "Times hawatch's Celery side could not see events (task events may be missing):"
        )
        lines.append("")
        lines += [f"- {w}" for w in windows]
    else:
        lines.append("None: hawatch saw the Celery side throughout.")
    if report.workers:
        lines += [
            "",
            f"{sub} Workers",
            "",
            "| worker | resumed after the switch |",
            "| --- | --- |",
        ]
        for worker, ts in report.workers:
            lines.append(f"| `{worker}` | {_offset(ts, report.switched)} |")
    if report.note:
        lines += ["", f"Note: {report.note}"]
    if settings:
        lines += ["", f"{sub} Settings", "", "| setting | value |", "| --- | --- |"]
        for key, value in settings.items():
            lines.append(f"| {key} | {_cell(value)} |")
    return "\n".join(lines) + "\n"


def summary_markdown(
    reports: Sequence[IncidentReport],
    *,
    scenario: str | None = None,
    slo: float | None = None,
    settings: Mapping[str, Any] | None = None,
    level: int = 2,
) -> str:
    """Several runs as a postmortem-ready section: each run, then median, min and max."""
    head = "#" * max(1, level)
    sub = "#" * max(1, level + 1)
    lines = [f"{head} {_summary_title(reports, scenario)}", ""]
    lines += [f"**{_summary_verdict(reports, slo)}**", ""]
    lines += [
        "| run | fault (UTC) | gap (s) | outage (s) | split brain (s) | result |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for index, report in enumerate(reports, 1):
        cells = " | ".join(_final(report, n) for n in FIGURES)
        lines.append(f"| {index} | {_date_time(report.fault)} | {cells} | {verdict(report, slo)} |")
    figures = summary(reports)
    lines += ["", "| seconds | median | min | max |", "| --- | --- | --- | --- |"]
    for name in _summary_figures(reports):
        f = figures[name]
        word = _FIGURE_WORDS[name][0] if name in _FIGURE_WORDS else _EXTRA_WORDS[name][0]
        lines.append(
            f"| {word} | {_number(f['median'])} | {_number(f['min'])} | {_number(f['max'])} |"
        )
    if settings:
        lines += ["", f"{sub} Settings", "", "| setting | value |", "| --- | --- |"]
        for key, value in settings.items():
            lines.append(f"| {key} | {_cell(value)} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- pieces


def _labelled(label: str, text: str) -> list[str]:
    """`text` after `label`, wrapped to `_WIDTH` columns under itself."""
    indent = " " * _LABEL
    wrapped = textwrap.wrap(
        " ".join(text.split()),
        width=_WIDTH,
        initial_indent=f"{label:<{_LABEL}}",
        subsequent_indent=indent,
        break_on_hyphens=False,
    )
    return wrapped or [label]


def _summary_title(reports: Sequence[IncidentReport], scenario: str | None) -> str:
    master = ", ".join(sorted({r.master for r in reports})) or "no master"
    runs = f"{len(reports)} run" + ("" if len(reports) == 1 else "s")
    if scenario:
        return f"Failover drill: {scenario} of {master}, {runs}"
    return f"Failover incidents of {master}: {len(reports)}"


def _summary_verdict(reports: Sequence[IncidentReport], slo: float | None) -> str:
    failed = sum(1 for r in reports if not passed(r, slo))
    within = f" within the SLO of {_plain(slo)} s" if slo is not None else ""
    if reports and not failed:
        return f"PASSED: every run resumed{within}."
    missed = f" ({'over the SLO or ' if slo is not None else ''}work never resumed)"
    return f"FAILED: {failed} of {len(reports)} runs failed{missed}."


def _outcome(report: IncidentReport, slo: float | None) -> str:
    """A word for a table cell: passed, over the SLO, not resumed."""
    if not work_resumed(report):
        return "FAILED: not resumed"
    return "PASSED" if passed(report, slo) else "FAILED: over the SLO"


def _title(report: IncidentReport, scenario: str | None) -> str:
    if scenario:
        return f"Failover drill: {scenario} of {report.master}"
    return f"Failover incident {report.id} of {report.master} ({report.status})"


def _masters(report: IncidentReport, *, code: bool = False) -> str:
    def show(address: str | None) -> str:
        if address is None:
            return "unknown"
        return f"`{address}`" if code else address

    if report.new_master is None:
        return f"{show(report.old_master)}, no switch"
    return f"{show(report.old_master)} → {show(report.new_master)}"


def _figure(report: IncidentReport, name: str, unit: str = "") -> str:
    value = getattr(report, name)
    if value is None:
        return _NONE
    shown = _number(value) + unit
    return f"{shown} and counting" if name in report.counting else shown


def _extra_figures(report: IncidentReport) -> tuple[str, ...]:
    """The users' and Prometheus's figures that apply to `report`."""
    names: tuple[str, ...] = ()
    if report.http_probed:
        names += USER_FIGURES
    if report.prometheus_watched:
        names += PROMETHEUS_FIGURES
    return names


def _users(report: IncidentReport) -> list[str]:
    """The users' side in short parts: their gap, then their outage (or what is missing)."""
    if report.user_outage_s is not None and report.user_failed is not None:
        outage = _figure(report, "user_outage_s", unit=" s")
        failed = f"outage {outage} (failing since {_clock(report.user_failed)})"
    elif report.user_failed is not None:
        failed = f"failing since {_clock(report.user_failed)}"
    else:
        failed = "no HTTP probe failed"
    if report.switched is None:
        return ["no switch, so no users' gap", failed]
    if report.user_gap_s is None:
        return ["no HTTP probe succeeded after the switch", failed]
    gap = _figure(report, "user_gap_s", unit=" s")
    if "user_gap_s" in report.counting:
        return [f"gap {gap} (no HTTP probe succeeded since the switch)", failed]
    return [f"gap {gap} (first successful HTTP probe − switched)", failed]


def _prometheus(report: IncidentReport) -> str:
    """Prometheus's side in a few words: when it showed the new master."""
    if report.switched is None:
        return "no switch, so no lag to measure"
    if report.prometheus_lag_s is None:
        return "had not shown the new master"
    lag = _figure(report, "prometheus_lag_s", unit=" s")
    if "prometheus_lag_s" in report.counting:
        return f"lag {lag}: still not showing the new master"
    return f"lag {lag} (it first showed the new master at {_clock(report.prometheus_seen)})"


def _spread(figure: Mapping[str, float | int | None]) -> str:
    """``median 0.412, min 0.300, max 0.520`` (seconds), or ``—`` when no run had it."""
    if not figure.get("runs"):
        return _NONE
    return (
        f"median {_number(figure['median'])}, min {_number(figure['min'])}, "
        f"max {_number(figure['max'])}"
    )


def _tasks(report: IncidentReport) -> list[str]:
    """The task counts in two short groups: what happened to them, what was at stake."""
    values = report.to_dict()["tasks"]
    shown = [f"{word} {_NONE if values[key] is None else values[key]}" for key, word in _TASK_WORDS]
    return [", ".join(shown[:4]), ", ".join(shown[4:])]


def _final(report: IncidentReport, name: str) -> str:
    """A figure for a table of runs: ``>113.700`` while it is still counting."""
    value = getattr(report, name)
    if value is None:
        return _NONE
    return f">{_number(value)}" if name in report.counting else _number(value)


def _blind(report: IncidentReport) -> list[str]:
    """Each blind window: which source, from when, for how long, why."""
    shown = []
    for window in report.blind_windows:
        if window.end is None:
            length = ", still blind"
        else:
            length = f" for {_seconds(window.end - window.start)}"
        reason = f": {window.reason}" if window.reason else ""
        shown.append(f"{window.source} from {_clock(window.start)}{length}{reason}")
    return shown


def _cell(value: Any) -> str:
    """A value for a Markdown table cell: no line breaks, no stray column separators."""
    return " ".join(str(value).split()).replace("|", "\\|")


def _clock(ts: float | None) -> str:
    if ts is None:
        return _NONE
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S.%f")[:-3]


def _date_time(ts: float | None) -> str:
    if ts is None:
        return "time unknown"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _offset(ts: float | None, since: float | None) -> str:
    if ts is None or since is None:
        return _NONE
    return f"{ts - since:+.3f} s"


def _number(value: float | int | None) -> str:
    if value is None:
        return _NONE
    return f"{value:.3f}"


def _seconds(value: float | None) -> str:
    return _NONE if value is None else f"{value:.3f} s"


def _plain(value: float) -> str:
    """A number as a person writes it: 10, 0.25."""
    return f"{value:g}"
