"""What people see: the lineage as a Rich tree, diagnostics as coloured lines, tables of runs
and deployments. Spinners and colours only on a terminal; piped output is never cut to a width."""

from __future__ import annotations

import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.durations import format_duration
from nbops.model.files import TAGGED
from nbops.model.lineage import endpoint_producer
from nbops.model.pipeline import CellRef, Pipeline
from nbops.run.comparison import RunDiff
from nbops.run.state import RunRecord, StepRecord

if TYPE_CHECKING:
    from rich.console import Console, Group
    from rich.table import Table
    from rich.tree import Tree

STYLES = {Severity.ERROR: "bold red", Severity.WARNING: "yellow", Severity.INFO: "cyan"}
# The width of piped output: as wide as the lines are, so a script or a pager gets whole ids and
# reasons rather than Rich's guess of 80 columns.
PIPED_WIDTH = 10_000


def console(stderr: bool = False, file: IO[str] | None = None) -> Console:
    """Rich's console for stdout (or stderr): colours only on a terminal (Rich's own rule)."""
    from rich.console import Console

    out = Console(stderr=stderr, file=file, highlight=False, soft_wrap=True)
    if out.is_terminal:
        return out
    return Console(stderr=stderr, file=file, highlight=False, soft_wrap=True, width=PIPED_WIDTH)


def show(out: Console, renderable: Any) -> None:
    """Print a table or tree: on a terminal narrower than it, long names wrap, never cut."""
    out.print(renderable, soft_wrap=False)


def _cells(refs: tuple[CellRef, ...]) -> str:
    indexes = ", ".join(str(r.index) for r in refs)
    return f"cell {indexes}" if len(refs) == 1 else f"cells {indexes}"


def lineage_tree(pipeline: Pipeline) -> Tree:
    from rich.markup import escape
    from rich.tree import Tree

    tree = Tree(f"[bold]{escape(pipeline.notebook.display_name)}[/]")
    if pipeline.parameters:
        branch = tree.add("[bold]parameters[/]")
        for p in pipeline.parameters:
            help_text = f" [dim]— {escape(p.help)}[/]" if p.help else ""
            branch.add(f"{p.name} = {escape(repr(p.default))} [dim]({p.type})[/]{help_text}")
    if pipeline.setup:
        tree.add(f"[bold]setup[/] [dim]{_cells(pipeline.setup)}[/]")
    steps = tree.add("[bold]steps[/]")
    for step in pipeline.steps:
        limit = f" [dim]timeout {format_duration(step.timeout_s)}[/]" if step.timeout_s else ""
        node = steps.add(
            f"[bold cyan]{escape(step.display_name)}[/] [dim]{_cells(step.cells)}[/]{limit}"
        )
        for edge in pipeline.edges:
            if edge.target == step.name:
                flow = ", ".join(edge.artifacts) if edge.artifacts else "[dim]after[/]"
                node.add(f"← {flow} [dim]from[/] {edge.source}")
        for data in step.files_read:
            how = " [dim](reads=)[/]" if data.found == TAGGED else ""
            node.add(f"← [dim]file[/] {escape(data.path)}{how}")
        if step.parameters:
            node.add(f"[dim]parameters:[/] {', '.join(step.parameters)}")
        if step.outputs:
            node.add(f"→ {', '.join(step.outputs)}")
    for endpoint in pipeline.endpoints:
        node = tree.add(f"[bold green]POST /{endpoint.route}[/] {escape(endpoint.signature())}")
        for artifact in endpoint.artifacts:
            producer = endpoint_producer(pipeline, endpoint, artifact)
            node.add(f"← {artifact} [dim]from[/] {producer}")
    for test in pipeline.tests:
        tree.add(f"[bold]test[/] of {test.step or '?'} [dim]{_cells(test.cells)}[/]")
    if pipeline.metrics.names:
        names = ", ".join(pipeline.metrics.names)
        tree.add(f"[bold]metrics[/] {names} [dim]{_cells(pipeline.metrics.cells)}[/]")
    return tree


def print_diagnostics(out: Console, notebook: str, diagnostics: tuple[Diagnostic, ...]) -> None:
    from rich.markup import escape

    for d in diagnostics:
        label = f"[{STYLES[d.severity]}]{d.severity.value}[/]"
        out.print(f"{label} {escape(d.location(notebook))}: {escape(d.message)}")
        if d.fix:
            out.print(f"  [dim]fix:[/] {escape(d.fix)}")


def summary_line(pipeline: Pipeline) -> str:
    errors = sum(1 for d in pipeline.diagnostics if d.is_error)
    warnings = sum(1 for d in pipeline.diagnostics if d.severity is Severity.WARNING)
    parts = [
        _count(len(pipeline.steps), "step"),
        _count(len(pipeline.endpoints), "endpoint"),
        _count(errors, "error"),
        _count(warnings, "warning"),
    ]
    return f"{pipeline.notebook.display_name}: " + ", ".join(parts)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


class StepProgress:
    """One line per step: on a terminal, a spinner and the time so far while it runs (several
    at once when steps run side by side), then how it ended (ran in 1.2s, cached); piped, only
    the line of each step as it ends, so no spinner frame leaks."""

    def __init__(self, steps: list[str], out: Console) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn

        self.out = out
        self.live = out.is_interactive
        self.progress = Progress(
            SpinnerColumn(finished_text=" "),
            TextColumn("{task.description}"),
            TextColumn("[dim]{task.fields[clock]}"),
            console=out,
        )
        width = max((len(name) for name in steps), default=0)
        self.labels = {name: name.ljust(width) for name in steps}
        self.tasks = {
            name: self.progress.add_task(
                f"[dim]{label}  waiting[/]", total=1, start=False, clock=""
            )
            for name, label in self.labels.items()
        }
        self.started: dict[str, float] = {}

    def __enter__(self) -> StepProgress:
        if self.live:
            self.progress.start()
            self._tick()
        return self

    def __exit__(self, *_: object) -> None:
        if self.live:
            self.progress.stop()

    def __call__(self, step: str, event: str, record: StepRecord) -> None:
        task = self.tasks[step]
        if event == "start":
            self.progress.start_task(task)
            if record.status == "running":
                self.started[step] = time.monotonic()
                self.progress.update(task, description=f"[bold]{self.labels[step]}[/]  running")
            return
        self.started.pop(step, None)
        outcome = {
            "ran": f"[green]ran[/] in {record.duration_s:.2f}s",
            "cached": "[cyan]cached[/]",
            "failed": "[bold red]failed[/]",
            "timed-out": f"[bold red]timed out[/] after {record.duration_s:.1f}s",
            "cancelled": "[yellow]cancelled[/]",
        }.get(record.status, record.status)
        line = f"[bold]{self.labels[step]}[/]  {outcome}"
        if self.live:
            self.progress.update(task, description=line, completed=1, clock="")
        else:
            self.out.print(f"  {line}", highlight=False)

    def _tick(self) -> None:
        """Show each running step's time so far (Rich redraws; a timer keeps it current)."""
        import threading

        def tick() -> None:
            while self.progress.live.is_started:
                now = time.monotonic()
                for step, since in list(self.started.items()):
                    self.progress.update(self.tasks[step], clock=f"{now - since:.0f}s")
                time.sleep(0.5)

        threading.Thread(target=tick, name="nbops-progress", daemon=True).start()


def run_summary(record: RunRecord) -> str:
    counts = {s: sum(1 for step in record.steps if step.status == s) for s in ("ran", "cached")}
    seconds = (record.ended_at or record.started_at) - record.started_at
    text = (
        f"run {record.run_id} {record.status}: {counts['ran']} ran, {counts['cached']} cached, "
        f"{seconds:.1f}s"
    )
    if record.metrics:
        text += "; " + ", ".join(f"{k}={v:.4g}" for k, v in record.metrics.items())
    notes = [f"\n  {step.name}: {step.note}" for step in record.steps if step.note]
    return text + "".join(notes)


def runs_table(records: list[RunRecord]) -> Table:
    """The runs, a column per metric any of them recorded."""
    metrics = list(dict.fromkeys(m for r in records for m in r.metrics))
    table = _table("run", "notebook", "status", "started", "steps", *metrics, box=None)
    for record in records:
        started = _time(record.started_at)
        ran = sum(1 for s in record.steps if s.status == "ran")
        cached = sum(1 for s in record.steps if s.status == "cached")
        style = {"succeeded": "green", "failed": "red"}.get(record.status, "yellow")
        table.add_row(
            record.run_id,
            Path(record.notebook).name,
            f"[{style}]{record.status}[/]",
            started,
            f"{ran} ran, {cached} cached",
            *(f"{record.metrics[m]:.4g}" if m in record.metrics else "-" for m in metrics),
        )
    return _whole(
        table, {"run": [r.run_id for r in records], "status": [r.status for r in records]}
    )


def run_diff_view(diff: RunDiff) -> Group:
    """`nbops runs diff A B`: what changed from A to B, section by section."""
    from rich.console import Group
    from rich.markup import escape
    from rich.text import Text

    a, b = diff.a.run_id, diff.b.run_id
    same = "the same notebook file" if not diff.notebook_changed else "notebook file changed"
    parts: list[Any] = [Text(f"runs {a} (A) and {b} (B): {same}")]
    if diff.parameters:
        table = _table("parameter", "A", "B", title="parameters that differ")
        for change in diff.parameters:
            table.add_row(change.name, _shown(change.before), _shown(change.after))
        parts.append(table)
    else:
        parts.append(Text("parameters: the same"))
    if diff.metrics:
        table = _table("metric", "A", "B", "B - A", title="metrics")
        for metric in diff.metrics:
            delta = metric.delta
            style = "green" if delta and delta > 0 else "red" if delta and delta < 0 else ""
            shown = "-" if delta is None else f"{delta:+.4g}"
            table.add_row(
                metric.name,
                _number(metric.before),
                _number(metric.after),
                f"[{style}]{shown}[/]" if style else shown,
            )
        parts.append(table)
    table = _table("step", "A", "B", "key", "changed", title="steps")
    for step in diff.steps:
        changed = [f"{c.name} {_short(c.before)} -> {_short(c.after)}" for c in step.outputs]
        changed += [f"{c.name}: {_shown(c.before)} -> {_shown(c.after)}" for c in step.inputs]
        table.add_row(
            step.name,
            step.before or "-",
            step.after or "-",
            "changed" if step.key_changed else "same",
            escape("; ".join(changed)) or "-",
        )
    parts.append(table)
    cells = ", ".join(str(c) for c in diff.cells)
    parts.append(Text(f"code cells: {cells}" if cells else "code cells: the same"))
    return Group(*parts)


def _shown(value: Any) -> str:
    return "-" if value is None else repr(value)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _short(digest: Any) -> str:
    return str(digest)[:12] if digest else "-"


def run_details(record: RunRecord) -> Group:
    """The run's summary line, a table of its steps on the run's timeline (when each started
    and ended, seconds from the run's start, and where it ran), and its parameters."""
    from rich.console import Group
    from rich.text import Text

    table = _table("step", "status", "start", "end", "seconds", "where", "outputs (sha256)")
    for step in record.steps:
        outputs = ", ".join(f"{n} {a.sha256[:12]}" for n, a in step.outputs.items())
        start = _offset(step.started_at, record.started_at)
        end = _offset(step.ended_at, record.started_at)
        duration = f"{step.duration_s:.2f}" if step.status != "cached" else "-"
        table.add_row(step.name, step.status, start, end, duration, step.worker or "-", outputs)
    _whole(table, {"step": [step.name for step in record.steps]})
    parts: list[Any] = [Text(run_summary(record)), table]
    overlapping = _side_by_side(record)
    if overlapping:
        parts.append(Text(f"ran side by side: {'; '.join(overlapping)}"))
    parameters = ", ".join(f"{k}={v!r}" for k, v in record.parameters.items())
    if parameters:
        parts.append(Text(f"parameters: {parameters}"))
    outside = [line for step in record.steps if (line := _provenance_line(step))]
    if outside:
        parts.append(Text("libraries and data files in the steps' cache keys:"))
        parts.extend(Text(f"  {line}") for line in outside)
    return Group(*parts)


def _provenance_line(step: StepRecord) -> str:
    """`train: scikit-learn 1.5.0, pandas 2.2.2; data.csv 3f2a9c1b2d4e`, or "" for none."""
    libraries = ", ".join(f"{d} {v}" for d, v in step.provenance.get("libraries", {}).items())
    files = ", ".join(f"{p} {h[:12]}" for p, h in step.provenance.get("files", {}).items())
    found = "; ".join(part for part in (libraries, files) if part)
    return f"{step.name}: {found}" if found else ""


def _offset(moment: float | None, origin: float) -> str:
    return f"+{moment - origin:.2f}s" if moment is not None else "-"


def _side_by_side(record: RunRecord) -> list[str]:
    """Pairs of steps whose run intervals overlap."""
    timed = [s for s in record.steps if s.started_at is not None and s.ended_at is not None]
    return [
        f"{a.name} + {b.name}"
        for i, a in enumerate(timed)
        for b in timed[i + 1 :]
        if a.started_at < b.ended_at and b.started_at < a.ended_at  # type: ignore[operator]
    ]


def sweep_table(records: list[RunRecord], parameters: list[str], sort: str | None) -> Table:
    """A sweep's runs: their parameters and metrics, best first when sorted."""
    metrics = list(dict.fromkeys(m for r in records for m in r.metrics))
    title = f"sweep, best first by {sort}" if sort else "sweep"
    table = _table("run", "status", *parameters, *metrics, "steps", title=title)
    for record in records:
        ran = sum(1 for s in record.steps if s.status == "ran")
        cached = sum(1 for s in record.steps if s.status == "cached")
        style = {"succeeded": "green", "failed": "red"}.get(record.status, "yellow")
        table.add_row(
            record.run_id,
            f"[{style}]{record.status}[/]",
            *(repr(record.parameters.get(p)) for p in parameters),
            *(f"{record.metrics[m]:.4g}" if m in record.metrics else "-" for m in metrics),
            f"{ran} ran, {cached} cached",
        )
    return _whole(table, {"run": [r.run_id for r in records]})


def deployments_table(rows: list[dict[str, Any]]) -> Table:
    from rich.markup import escape

    table = _table(
        "name",
        "version",
        "status",
        "url",
        "workers",
        "uptime",
        "health",
        "requests",
        "watch",
        box=None,
    )
    notes = []
    for row in rows:
        state = "dead" if row["health"] == "dead" else row["status"]
        style = {"healthy": "green", "failed": "red", "dead": "bold red"}.get(state, "yellow")
        uptime = f"{row['uptime_s']:.0f}s" if row.get("uptime_s") is not None else "-"
        served = f"{row['requests']:.0f}" if row.get("requests") is not None else "-"
        table.add_row(
            row["name"],
            f"v{row['version']}",
            f"[{style}]{state}[/]",
            row["url"] or "-",
            str(row.get("workers") or 1),
            uptime,
            row["health"],
            served,
            escape(row.get("watch_summary") or "-"),
        )
        back = row.get("rolled_back")
        if back:
            notes.append(f"{row['name']} v{back['version']}: {back['reason']}")
    if not rows:
        table.caption = "nothing deployed yet: nbops deploy NOTEBOOK"
    elif notes:
        table.caption = escape("\n".join(notes))
    return _whole(
        table, {"name": [row["name"] for row in rows], "url": [row["url"] or "-" for row in rows]}
    )


PSI_BAR = 24  # characters of the widest drift bar


def monitor_view(snapshot: dict[str, Any]) -> Group:
    """`nbops monitor`: the deployment and its watch, then per route the window's figures and
    a drift bar per input field and output, red past the threshold."""
    from rich.console import Group
    from rich.markup import escape

    row = snapshot["deployment"]
    parts: list[Any] = [
        f"[bold]{escape(row['name'])}[/] v{row['version']} {row['status']}  "
        f"{escape(row.get('url') or '-')}  watch: {escape(row.get('watch_summary') or '-')}"
    ]
    back = row.get("rolled_back")
    if back:
        parts.append(f"[yellow]v{back['version']}: {escape(back['reason'])}[/]")
    proxy = snapshot.get("proxy") or {}
    for version, seen in (proxy.get("versions") or {}).items():
        parts.append(
            f"[dim]proxy, last {proxy.get('window_s', 60):g} s, v{version}: "
            f"{seen['requests']} requests, {seen['errors']} 5xx, p99 {_ms(seen.get('p99_ms'))}[/]"
        )
    data = snapshot.get("monitoring")
    if data is None:
        parts.append(f"[yellow]{escape(snapshot.get('monitoring_error') or 'no monitoring')}[/]")
        return Group(*parts)
    if not data.get("enabled", True):
        parts.append("[yellow]monitoring is off in the service (NBOPS_MONITORING=false)[/]")
        return Group(*parts)
    for route in data.get("routes", []):
        parts.extend(_route_view(route, data))
    return Group(*parts)


def _route_view(route: dict[str, Any], data: dict[str, Any]) -> list[Any]:
    from rich.markup import escape

    window = data.get("window", {})
    latency = route.get("latency_ms") or {}
    rate = route.get("error_rate")
    lines: list[Any] = [
        "",
        f"[bold]/{escape(route['route'])}[/]  window {route['requests']} requests "
        f"(of {window.get('max_requests', '?')}, {window.get('max_seconds', '?')} s)  "
        f"errors {'-' if rate is None else f'{rate * 100:.1f}%'}  "
        f"p50 {_ms(latency.get('p50'))}  p99 {_ms(latency.get('p99'))}",
    ]
    if route.get("reason"):
        lines.append(f"[yellow]drift: {escape(route['reason'])}[/]")
        return lines
    limit = float(data.get("max_drift", 0.25))
    fields = [("in", f) for f in route.get("inputs", [])]
    fields += [("out", f) for f in route.get("outputs", [])]
    if fields and all(f.get("psi") is None for _, f in fields):
        need = window.get("min_requests", "?")
        lines.append(f"[dim]drift: too few requests yet (scores from {need})[/]")
    table = _table("", "field", "PSI", "", "p-value", box=None)
    for side, field in fields:
        table.add_row(side, escape(field["name"]), *_drift_cells(field, limit))
    lines.append(table)
    return lines


def _drift_cells(field: dict[str, Any], limit: float) -> tuple[str, str, str]:
    score = field.get("psi")
    if score is None:
        return "-", "", "-"
    scale = max(2 * limit, score)
    bar = "█" * max(1, round(PSI_BAR * score / scale)) if score > 0 else ""
    style = "red" if score > limit else "green"
    p_value = field.get("p_value")
    flag = " [red]drifted[/]" if score > limit else ""
    return (
        f"{score:.3f}",
        f"[{style}]{bar}[/]{flag}",
        "-" if p_value is None else f"{p_value:.3g}",
    )


def _ms(value: Any) -> str:
    return "-" if value is None else f"{float(value):.1f} ms"


def history_table(name: str, rows: list[dict[str, Any]]) -> Table:
    table = _table(
        "version", "status", "metrics", "build", "created", "started by", "reason", title=name
    )
    for row in rows:
        created = _time(row["created_at"])
        mark = " (current)" if row["current"] else ""
        metrics = row.get("metrics") or {}
        table.add_row(
            f"v{row['version']}{mark}",
            row["status"],
            " ".join(f"{k}={v:.4g}" for k, v in metrics.items()) or "-",
            row["build_id"],
            created,
            row["started_by"],
            row["reason"] or "",
        )
    versions = [f"v{row['version']} (current)" for row in rows]
    builds = [row["build_id"] for row in rows]
    return _whole(
        table, {"version": versions, "status": [r["status"] for r in rows], "build": builds}
    )


def _table(*columns: str, **options: Any) -> Table:
    """A table whose cells wrap (a word longer than its column folds) and are never cut."""
    from rich.table import Table

    table = Table(**options)
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


def _whole(table: Table, cells: dict[str, list[str]]) -> Table:
    """Keep these columns (ids, names, states) on one line each, as wide as their widest cell,
    so that a narrow terminal wraps the other columns rather than split an id."""
    for column in table.columns:
        if column.header in cells:
            column.no_wrap = True
            column.min_width = max(len(str(column.header)), *map(len, cells[str(column.header)]))
    return table


def _time(timestamp: float) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M:%S")


def print_failure(failure: Any, notebook: str) -> None:
    from rich.markup import escape

    from nbops.errors import StepFailed

    err = console(stderr=True)
    where = f"{escape(failure.where)}: " if failure.where else ""
    err.print(f"[bold red]error:[/] {where}{escape(failure.message)}")
    if failure.details:
        err.print(escape(failure.details.rstrip()), style="dim")
    err.print(f"  [dim]fix:[/] {escape(failure.fix)}")
    if isinstance(failure, StepFailed):
        err.print(f"  [dim]resume:[/] nbops run {escape(notebook)}")
