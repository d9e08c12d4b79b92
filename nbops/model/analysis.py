"""Static analysis: a Notebook in, the Pipeline model out. Reads no file and runs no user code."""

from __future__ import annotations

import ast
import builtins
import difflib
from collections.abc import Iterable
from dataclasses import replace

from nbops.model.diagnostic import Diagnostic, Severity
from nbops.model.durations import parse_duration
from nbops.model.effects import function_effects
from nbops.model.endpoints import read_endpoints
from nbops.model.examples import batch_hints, example_diagnostics
from nbops.model.files import STATIC, TAGGED, DataFile
from nbops.model.imports import SetupModules, setup_modules
from nbops.model.notebook import Notebook
from nbops.model.parameters import read_parameters
from nbops.model.pipeline import (
    CellRef,
    Edge,
    Endpoint,
    Metrics,
    Parameter,
    ParameterCode,
    Pipeline,
    Step,
    Test,
)
from nbops.model.references import reference_hints
from nbops.model.sections import (
    CodeCell,
    Section,
    SectionNames,
    Use,
    group_sections,
    read_cells,
    section_names,
    untagged_diagnostics,
)
from nbops.model.tags import BATCH, READS, REFERENCE, TIMEOUT, Role, parse_flag, parse_reads

# Names a Jupyter kernel defines before the first cell runs.
KERNEL_NAMES = frozenset(
    {"get_ipython", "display", "In", "Out", "exit", "quit", "_", "__", "___", "_i", "_ii"}
    | {"_iii", "_oh", "_dh", "_ih"}
)
BUILTIN_NAMES = frozenset(dir(builtins)) | KERNEL_NAMES


def analyse(notebook: Notebook, observed: Iterable[tuple[str, str]] = ()) -> Pipeline:
    """Build the Pipeline model of a notebook; every problem found becomes a diagnostic.

    `observed` holds (step, name) for inputs a step was seen changing in place when it ran,
    which the code did not show: the step then produces them, and a warning says so.
    """
    return _Analysis(notebook, tuple(observed)).run()


class _Analysis:
    def __init__(self, notebook: Notebook, observed: tuple[tuple[str, str], ...] = ()) -> None:
        self.notebook = notebook
        self.observed = observed
        self.cells = read_cells(notebook)
        self.sections = group_sections(self.cells)
        self.imported = frozenset(n for code in self.cells for n in code.names.imports)
        self.effects = function_effects(
            f
            for code in self.cells
            if code.tags.role is not Role.SKIP
            for f in code.names.functions
        )
        self.names = {id(s): section_names(s, self.imported, self.effects) for s in self.sections}
        self.diagnostics: list[Diagnostic] = list(notebook.notes)
        self.parameters: tuple[Parameter, ...] = ()
        self.parameter_code: tuple[ParameterCode, ...] = ()
        self.globals: set[str] = set(BUILTIN_NAMES)
        self.latest: dict[str, str] = {}  # name -> the step that last wrote it
        self.producers: dict[str, dict[str, str]] = {}  # step -> its inputs' producers
        self.consumed: dict[str, set[str]] = {}  # step -> its names read downstream
        self.steps: list[Step] = []
        self.step_sections: dict[str, Section] = {}
        self.tests: list[Test] = []
        self.metrics = Metrics()
        self.endpoints: list[Endpoint] = []
        self.opaque = False
        self.setup_modules = SetupModules()

    def run(self) -> Pipeline:
        for code in self.cells:
            self.diagnostics.extend(code.tags.diagnostics)
            if code.python.syntax_error and code.tags.role is not Role.SKIP:
                self._syntax_error(code)
        self._read_parameters()
        self._check_shell_parameters()
        self._read_setup()
        self._name_steps()
        for section in self.sections:
            self._visit(section)
        edges = self._edges()
        self._check_unused_outputs(edges)
        steps = tuple(self._with_outputs(step) for step in self.steps)
        pipeline = Pipeline(
            notebook=self.notebook,
            parameters=self.parameters,
            parameter_code=self.parameter_code,
            setup=tuple(ref for s in self._sections(Role.SETUP) for ref in _refs(s)),
            steps=steps,
            edges=edges,
            endpoints=tuple(self.endpoints),
            tests=tuple(self.tests),
            metrics=self.metrics,
            diagnostics=tuple(sorted(self.diagnostics, key=_diagnostic_order)),
            cells=self.cells,
        )
        # Example cells and references are judged against the endpoints, which exist only now.
        examples = example_diagnostics(pipeline)
        if not pipeline.errors:
            examples += reference_hints(pipeline) + batch_hints(pipeline)
        if not examples:
            return pipeline
        found = sorted([*pipeline.diagnostics, *examples], key=_diagnostic_order)
        return replace(pipeline, diagnostics=tuple(found))

    def _sections(self, role: Role | None) -> list[Section]:
        return [s for s in self.sections if s.role is role]

    # parameters and setup: names every step can read

    def _read_parameters(self) -> None:
        sections = self._sections(Role.PARAMETERS)
        declared = [s for s in sections if not s.injected]
        for extra in declared[1:]:
            self._add(
                extra.first,
                1,
                "there is more than one parameters cell; papermill injects after the first only.",
                "Merge the parameters into one cell.",
            )
        # Every declared cell is read, so a second one is one error rather than many.
        used = declared + [s for s in sections if s.injected]
        cells = tuple(code for section in used for code in section.cells)
        self.parameters, self.parameter_code, problems = read_parameters(cells)
        self.diagnostics.extend(problems)
        self.globals.update(p.name for p in self.parameters)
        by_index = {code.cell.index: code for code in cells}
        for part in self.parameter_code:
            code = by_index[part.cell.index]
            for name in part.reads:
                if name not in self.globals:
                    self._add(
                        code,
                        None,
                        f"the parameters cell reads {name!r}, but it runs before setup and "
                        "every step, so only parameters and builtins exist there.",
                        "Compute the value in the setup cell or a step instead.",
                    )
            self.globals.update(part.writes)

    def _check_shell_parameters(self) -> None:
        """A parameter's value put into a shell line: `-p` and the REST API come from others."""
        parameters = {p.name for p in self.parameters}
        for code in self.cells:
            if code.tags.role is Role.SKIP:
                continue
            for name, line in code.names.shell_reads.items():
                if name in parameters:
                    self._add(
                        code,
                        line,
                        f"parameter {name!r} goes into a shell command here; a value given with "
                        "-p or through the REST API could run other commands.",
                        "nbops quotes it in its own runs and builds, but Jupyter and papermill "
                        "do not: pass it in the environment or use subprocess.run([...]).",
                        Severity.WARNING,
                    )

    def _read_setup(self) -> None:
        for section in self._sections(Role.SETUP):
            names = self.names[id(section)]
            self.opaque |= names.opaque
            for name, use in names.reads.items():
                if name not in self.globals:
                    self._unresolved(name, use, section, setup=True)
            self.globals.update(names.writes)
        self.setup_modules = setup_modules(
            code for section in self._sections(Role.SETUP) for code in section.cells
        )

    # steps, tests and metrics in notebook order

    def _name_steps(self) -> None:
        """Kale's rule: cells with the same step name are one step, at its first place; two
        names that become one Python name are an error (the second is renamed)."""
        merged: dict[str, Section] = {}
        kept: list[Section] = []
        for section in self.sections:
            name = section.name
            if section.role is not Role.STEP or name is None:
                kept.append(section)
                continue
            first = merged.get(name)
            if first is not None and first.title != section.title:
                unique = _unique(name, set(merged))
                self._add(
                    section.first,
                    None,
                    f"step names {first.title!r} (cell {first.first.cell.index}) and "
                    f"{section.title!r} both become the Python name {name!r}; nbops calls "
                    f"this one {unique!r}.",
                    f"Rename one of them, e.g. 'step:{unique}'.",
                )
                section = Section(section.role, unique, section.cells)
                first, name = None, unique
            if first is None:
                merged[name] = section
                kept.append(section)
                continue
            self._add(
                section.first,
                None,
                f"step {section.title!r} is also the name of cell {first.first.cell.index}; "
                "as in Kale, cells with the same step name are one step, run where it first "
                "appears.",
                "Nothing to do if that is meant; give this cell its own name to make it a "
                "step of its own.",
                Severity.INFO,
            )
            whole = Section(first.role, name, (*first.cells, *section.cells), first.injected)
            kept[next(i for i, s in enumerate(kept) if s is first)] = merged[name] = whole
        self.sections = tuple(kept)
        for section in self.sections:
            if id(section) not in self.names:
                self.names[id(section)] = section_names(section, self.imported, self.effects)

    def _visit(self, section: Section) -> None:
        names = self.names[id(section)]
        if section.role is None:
            self.diagnostics.extend(untagged_diagnostics(section, before_steps=not self.steps))
        elif section.role is Role.STEP:
            self._visit_step(section, names)
        elif section.role is Role.TEST:
            self._visit_test(section, names)
        elif section.role is Role.METRICS:
            self._visit_metrics(section, names)
        elif section.role is Role.SERVE:
            self._visit_serve(section, names)
        if section.role is not Role.STEP:
            self._check_after_outside_step(section)

    def _visit_step(self, section: Section, names: SectionNames) -> None:
        assert section.name is not None
        self.opaque |= names.opaque
        inputs = self._resolve(section, names)
        self.producers[section.name] = inputs
        parameter_names = {p.name for p in self.parameters}
        read = set(names.reads) | set(names.deferred)
        changed = self._observed_changes(section, names, inputs)
        step = Step(
            name=section.name,
            title=section.title if section.title != section.name else "",
            cells=_refs(section),
            reads=_without_builtins([*names.reads, *names.deferred]),
            writes=(*names.writes, *changed),
            inputs=tuple(inputs),
            parameters=tuple(p.name for p in self.parameters if p.name in read & parameter_names),
            after=tuple(dict.fromkeys(name for name, _ in section.after)),
            files_written=names.files,
            timeout_s=self._step_timeout(section),
            files_read=_files_read(section),
            imports=self.setup_modules.for_step(section.cells, read),
        )
        self.steps.append(step)
        self.step_sections[step.name] = section
        self.latest.update(dict.fromkeys(step.writes, step.name))

    def _step_timeout(self, section: Section) -> float | None:
        """The step's `timeout=` option; cells of one step that disagree are an error."""
        given = section.options(TIMEOUT)
        if not given:
            return None
        (first, first_code), seconds = given[0], parse_duration(given[0][0].value)
        for option, code in given[1:]:
            if parse_duration(option.value) != seconds:
                self._add(
                    code,
                    option.line,
                    f"step {section.name!r} has two timeouts: {first.tag!r} (cell "
                    f"{first_code.cell.index}) and {option.tag!r}; nbops uses {first.tag!r}.",
                    "Keep one 'timeout=' tag for the step.",
                    tag=option.tag,
                )
        return seconds

    def _observed_changes(
        self, section: Section, names: SectionNames, inputs: dict[str, str]
    ) -> list[str]:
        """Inputs a run saw this step change in place though its code does not show it."""
        changed = [
            name
            for step, name in self.observed
            if step == section.name and name in inputs and name not in names.writes
        ]
        for name in changed:
            self._add(
                section.first,
                None,
                f"step {section.name!r} changes {name!r} in place (seen when it ran); later "
                f"steps now read it from {section.name!r}, not {inputs[name]!r}.",
                f"Nothing to do: nbops passes the changed value on. To show it in the code, "
                f"assign it: '{name} = ...'.",
                Severity.WARNING,
            )
        return changed

    def _visit_test(self, section: Section, names: SectionNames) -> None:
        target = section.name or (self.steps[-1].name if self.steps else None)
        if section.name is None and target is None:
            self._add(
                section.first,
                None,
                "this test cell comes before any step, so there is no step above it to test.",
                "Tag it 'test:<step>' to name the step it checks, or move it below that step.",
            )
        elif section.name is not None and section.name not in self._step_names():
            self._unknown_step(section.first, section.name, f"test:{section.name}")
        inputs = self._resolve(section, names)
        self.tests.append(
            Test(target, _refs(section), _without_builtins(names.reads), tuple(inputs.items()))
        )

    def _visit_metrics(self, section: Section, names: SectionNames) -> None:
        inputs = self._resolve(section, names)
        bare = [
            n
            for code in section.cells
            for n in _bare_names(code)
            if n in names.reads or n in names.writes
        ]
        found = tuple(dict.fromkeys([*names.writes, *bare]))
        self.metrics = Metrics(
            names=tuple(dict.fromkeys([*self.metrics.names, *found])),
            cells=(*self.metrics.cells, *_refs(section)),
            reads=_without_builtins([*self.metrics.reads, *names.reads]),
            inputs=tuple({**dict(self.metrics.inputs), **inputs}.items()),
        )
        if not found:
            self._add(
                section.first,
                None,
                "this metrics cell records no value.",
                "Assign each metric to a name, e.g. 'accuracy = float(score)'.",
                Severity.WARNING,
            )

    def _visit_serve(self, section: Section, names: SectionNames) -> None:
        self._check_serve_statements(section)
        self.opaque |= names.opaque
        self._resolve(section, names, deferred=False)  # serve functions are checked one by one
        taken = {e.route for e in self.endpoints}
        batch = section.options(BATCH)
        endpoints, problems = read_endpoints(
            section,
            names,
            self._resolve_for_endpoint,
            taken,
            self.effects,
            batch=bool(batch) and parse_flag(batch[0][0].value),
            earlier=self.endpoints,
        )
        reference = self._reference(section)
        self.endpoints.extend(
            replace(
                e,
                inputs=tuple((a, self.latest[a]) for a in e.artifacts),
                reference=reference[1] if reference else None,
                reference_step=reference[0] if reference else None,
            )
            for e in endpoints
        )
        self.diagnostics.extend(problems)

    def _reference(self, section: Section) -> tuple[str, str] | None:
        """(step, name) of the serve cell's `reference=` artifact: the value an earlier step
        makes, the latest one or the named step's; an error with a did-you-mean otherwise."""
        given = section.options(REFERENCE)
        if not given:
            return None
        option, code = given[0]
        step_name, _, name = option.value.rpartition(".")
        writers = {s.name: s.writes for s in self.steps}
        producer = step_name if name in writers.get(step_name, ()) else self.latest.get(name)
        if step_name and step_name not in writers:
            close = difflib.get_close_matches(step_name, writers, n=1, cutoff=0.6)
            known = [f"{c}.{name}" for c in close]
        else:
            known = [f"{step_name}.{n}" for n in writers.get(step_name, ())] or list(self.latest)
        if producer is None or (step_name and producer != step_name):
            close = difflib.get_close_matches(option.value, known, n=1, cutoff=0.6)
            hint = f"Did you mean 'reference={close[0]}'? " if close else ""
            self._add(
                code,
                option.line,
                f"{option.tag!r} names no value a step above this cell makes, so the build "
                "cannot profile it.",
                f"{hint}Name a value an earlier step makes, e.g. a table of input rows.",
                tag=option.tag,
            )
            return None
        self.consumed.setdefault(producer, set()).add(name)  # the run keeps it for the build
        return producer, name

    def _check_serve_statements(self, section: Section) -> None:
        """The service runs its cells when it starts: anything but definitions runs there."""
        served = {f.name for code in section.cells for f in code.names.functions}
        for code in section.cells:
            if code.tags.example:  # its calls are the endpoint's example; the service skips it
                continue
            statement = next(
                (s for s in code.python.tree.body if not _is_definition(s, served)), None
            )
            if statement is not None:
                self._add(
                    code,
                    statement.lineno,
                    f"this serve cell runs '{_first_line(statement)}' when the service starts; "
                    "a failure there makes the whole service unready.",
                    "Move it to a test or skip cell: keep serve cells to imports, functions, "
                    "classes and constants (calls of the served function stay, as examples).",
                    Severity.WARNING,
                )

    def _step_names(self) -> set[str]:
        return {s.name for s in self.sections if s.role is Role.STEP and s.name}

    # name resolution

    def _resolve(
        self, section: Section, names: SectionNames, deferred: bool = True
    ) -> dict[str, str]:
        """The artifacts a section reads, each with the step that made it; unknowns reported."""
        artifacts: dict[str, str] = {}
        reads = [(name, use, False) for name, use in names.reads.items()]
        if deferred:
            reads += [(name, use, True) for name, use in names.deferred.items()]
        for name, use, in_function in reads:
            producer = self.latest.get(name)
            if producer is not None:
                self.consumed.setdefault(producer, set()).add(name)
                artifacts[name] = producer
            elif name not in self.globals and not self.opaque:
                self._unresolved(name, use, section, deferred=in_function)
        return artifacts

    def _resolve_for_endpoint(self, name: str) -> str | None:
        """`step`, `global` or None: where a serve function's free name comes from."""
        producer = self.latest.get(name)
        if producer is not None:
            self.consumed.setdefault(producer, set()).add(name)
            return "step"
        return "global" if name in self.globals or self.opaque else None

    def _unresolved(
        self,
        name: str,
        use: Use,
        section: Section,
        *,
        setup: bool = False,
        deferred: bool = False,
    ) -> None:
        writer = self._writer_elsewhere(name, use.code)
        if setup and writer is not None and writer.tags.role is Role.STEP:
            message = (
                f"the setup cell reads {name!r}, which step {writer.tags.name!r} "
                f"(cell {writer.cell.index}) computes; setup runs before every step."
            )
            fix = "Move this code into a step, or compute the value in setup itself."
        elif (
            writer is not None
            and writer.tags.role is Role.SKIP
            and use.code.tags.role is None
            and section.role is not None
        ):
            reader = use.code.cell.index
            message = f"{name!r} is read here but only cell {writer.cell.index} (skip) writes it."
            fix = (
                f"Cell {reader} is untagged, so it continues the {section.tag} cell above it "
                f"(skip cells in between do not end that). Tag cell {reader} 'skip' too if it "
                f"is exploration, or tag cell {writer.cell.index} 'setup' if {name!r} is needed."
            )
        elif writer is not None and writer.cell.index > use.code.cell.index:
            message = (
                f"{name!r} is read here but only cell {writer.cell.index}, further down, writes it."
            )
            fix = f"Move this cell below cell {writer.cell.index}, or compute {name!r} earlier."
        elif writer is not None:
            where, role = writer.cell.index, writer.tag or "untagged, so in no step"
            message = f"{name!r} is read here but only cell {where} ({role}) writes it."
            fix = f"Tag cell {where} 'setup' or make it a step, so steps can read {name!r}."
        else:
            message = f"{name!r} is read but no earlier step, setup or parameters cell writes it."
            fix = self._spelling_fix(name)
        if deferred:
            message = message.replace("is read", "is read inside a function", 1)
        severity = Severity.WARNING if deferred else Severity.ERROR
        self._add(use.code, use.line, message, fix, severity, section.tag)

    def _writer_elsewhere(self, name: str, reader: CodeCell) -> CodeCell | None:
        writers = [c for c in self.cells if c is not reader and name in c.names.writes]
        earlier = [c for c in writers if c.cell.index < reader.cell.index]
        if earlier:
            return earlier[-1]
        return writers[0] if writers else None

    def _spelling_fix(self, name: str) -> str:
        known = sorted(set(self.latest) | (self.globals - BUILTIN_NAMES))
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.8)
        if close:
            return f"Did you mean {close[0]!r}?"
        return "Define it in the setup cell or an earlier step, or check the spelling."

    # edges

    def _edges(self) -> tuple[Edge, ...]:
        order = {step.name: index for index, step in enumerate(self.steps)}
        edges: dict[tuple[str, str], Edge] = {}
        for step in self.steps:
            producers: dict[str, list[str]] = {}
            for name, producer in self.producers[step.name].items():
                producers.setdefault(producer, []).append(name)
            for producer in sorted(producers, key=order.__getitem__):
                edges[(producer, step.name)] = Edge(producer, step.name, tuple(producers[producer]))
        for step in self.steps:
            for name, code in self.step_sections[step.name].after:
                self._after_edge(step, name, code, order, edges)
        return tuple(sorted(edges.values(), key=lambda e: (order[e.target], order[e.source])))

    def _after_edge(
        self,
        step: Step,
        name: str,
        code: CodeCell,
        order: dict[str, int],
        edges: dict[tuple[str, str], Edge],
    ) -> None:
        if name not in order:
            self._unknown_step(code, name, f"after:{name}")
            return
        if order[name] < order[step.name]:
            edges.setdefault((name, step.name), Edge(name, step.name, (), kind="after"))
            return
        cycle = self._path(step.name, name, edges) if name != step.name else [name]
        if cycle:
            path = " -> ".join([*cycle, step.name])
            message = f"'after:{name}' makes a cycle: {path}."
            fix = f"Remove 'after:{name}'; a step cannot wait for one that depends on it."
        else:
            message = f"'after:{name}' names a step further down; steps run in notebook order."
            fix = f"Move step {name!r} above this cell, or drop the tag."
        self._add(code, None, message, fix, tag=f"after:{name}")

    @staticmethod
    def _path(start: str, goal: str, edges: dict[tuple[str, str], Edge]) -> list[str]:
        """A path start -> ... -> goal along the edges, or [] when there is none."""
        frontier: list[list[str]] = [[start]]
        seen = {start}
        while frontier:
            path = frontier.pop()
            if path[-1] == goal:
                return path
            for source, target in edges:
                if source == path[-1] and target not in seen:
                    seen.add(target)
                    frontier.append([*path, target])
        return []

    # checks on the whole

    def _check_unused_outputs(self, edges: tuple[Edge, ...]) -> None:
        ordered_after = {e.source for e in edges if e.kind == "after"}
        for step in self.steps:
            if step.writes and not self.consumed.get(step.name) and step.name not in ordered_after:
                section = self.step_sections[step.name]
                shown = ", ".join(repr(n) for n in step.writes[:4])
                more = ", ..." if len(step.writes) > 4 else ""
                self._add(
                    section.first,
                    None,
                    f"step {step.name!r} writes {shown}{more}, which nothing after it reads.",
                    "Read its outputs in a later step, test, metrics or serve cell, "
                    "or tag the cell 'skip' if it is exploration.",
                    Severity.WARNING,
                )

    def _check_after_outside_step(self, section: Section) -> None:
        for name, code in section.after:
            self._add(
                code,
                None,
                f"'after:{name}' is on a cell that is not part of a step, so it orders nothing.",
                "Put it on the step's cell.",
                Severity.WARNING,
                tag=f"after:{name}",
            )

    def _with_outputs(self, step: Step) -> Step:
        used = self.consumed.get(step.name, set())
        outputs = tuple(n for n in step.writes if n in used)
        return replace(step, outputs=outputs)

    def _unknown_step(self, code: CodeCell, name: str, tag: str) -> None:
        known = sorted(self._step_names())
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
        listing = ", ".join(known) or "none"
        fix = f"Did you mean {close[0]!r}?" if close else f"Steps are: {listing}."
        self._add(code, None, f"{tag!r} names no step.", fix, tag=tag)

    def _syntax_error(self, code: CodeCell) -> None:
        problem = code.python.syntax_error
        assert problem is not None
        self._add(
            code,
            problem.line,
            f"syntax error: {problem.message}; nbops cannot see what this cell reads or writes.",
            "Fix the syntax (run the cell to see Python's message).",
        )

    def _add(
        self,
        code: CodeCell,
        line: int | None,
        message: str,
        fix: str,
        severity: Severity = Severity.ERROR,
        tag: str | None = None,
    ) -> None:
        self.diagnostics.append(
            Diagnostic(
                severity,
                message,
                fix,
                cell_index=code.cell.index,
                cell_id=code.cell.id,
                line=line,
                tag=tag or code.tag,
            )
        )


def _without_builtins(names: Iterable[str]) -> tuple[str, ...]:
    return tuple(n for n in dict.fromkeys(names) if n not in BUILTIN_NAMES)


def _files_read(section: Section) -> tuple[DataFile, ...]:
    """The step's data files: path literals its code reads, then its `reads=` paths and globs."""
    static = (DataFile(path, STATIC) for code in section.cells for path in code.files_read)
    tagged = (
        DataFile(path, TAGGED)
        for option, _ in section.options(READS)
        for path in parse_reads(option.value)
    )
    unique: dict[str, DataFile] = {}
    for found in (*static, *tagged):
        unique.setdefault(found.path, found)
    return tuple(unique.values())


def _refs(section: Section) -> tuple[CellRef, ...]:
    return tuple(CellRef(code.cell.index, code.cell.id) for code in section.cells)


def _bare_names(code: CodeCell) -> list[str]:
    """Kale's metrics style: a line that is just a variable name records it."""
    return [
        s.value.id
        for s in code.python.tree.body
        if isinstance(s, ast.Expr) and isinstance(s.value, ast.Name)
    ]


def _unique(name: str, seen: set[str]) -> str:
    number = 2
    while f"{name}_{number}" in seen:
        number += 1
    return f"{name}_{number}"


def _diagnostic_order(diagnostic: Diagnostic) -> tuple[int, int, str]:
    return (
        diagnostic.cell_index if diagnostic.cell_index is not None else -1,
        diagnostic.line or 0,
        diagnostic.message,
    )


DEFINITIONS = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _is_definition(statement: ast.stmt, served: set[str]) -> bool:
    """Imports, defs, classes, docstrings, `pass`, assignments that call nothing, and calls of
    the cell's own functions as statements (examples, which the service leaves out)."""
    if isinstance(statement, (*DEFINITIONS, ast.Pass)):
        return True
    if isinstance(statement, ast.Expr):
        value = statement.value
        if isinstance(value, ast.Constant):
            return True
        return (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id in served
        )
    if isinstance(statement, (ast.Assign, ast.AnnAssign)) and statement.value is not None:
        return not any(isinstance(node, ast.Call) for node in ast.walk(statement.value))
    return isinstance(statement, ast.AnnAssign)


def _first_line(statement: ast.stmt) -> str:
    text = ast.unparse(statement).split("\n")[0]
    return text if len(text) <= 40 else text[:39] + "…"
